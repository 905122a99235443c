//! One IMAP session: the state machine (not authenticated, authenticated, selected, logout),
//! command dispatch, and the selected folder as this session sees it.
//!
//! A session keeps its own list of UIDs in sequence-number order, because sequence numbers may
//! only change when the session is told (EXPUNGE/VANISHED) and that may only happen at certain
//! points (never during FETCH, STORE or SEARCH, RFC 3501 7.4.1). The folder's shared state is a
//! copy-on-write snapshot in the store; `refresh` compares it with this session's view and
//! sends the untagged responses for what others changed: new messages, expunges, flags (found
//! by modification sequence, so a refresh with no changes costs nothing).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use mailstead_directory::account::Account as DirectoryAccount;
use mailstead_net::{Closing, ConnectionHandle, LogSafe, Slot};
use mailstead_store::{Folder, MailboxError, Snapshot};
use tokio::time::Instant;
use tracing::{debug, error, info};

use crate::cmd::search_context::SearchState;
use crate::command::{Command, Tagged};
use crate::connection::{Connection, Io};
use crate::framing::{Frame, FramingLimits};
use crate::parser::{ParseError, parse_append_head, parse_command};
use crate::uids::UidList;
use crate::{ImapContext, Limits};

/// What to do after a command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}

/// How a command ended: the tagged response to send after the untagged updates.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) status: Status,
    pub(crate) text: String,
    /// Close the connection after the response (LOGOUT, too many failed logins).
    pub(crate) close: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    No,
    Bad,
    /// The handler wrote the tagged response itself (STARTTLS must, before the handshake).
    Written,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok | Status::Written => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        }
    }
}

impl Done {
    pub(crate) fn ok(text: impl Into<String>) -> Done {
        Done {
            status: Status::Ok,
            text: text.into(),
            close: false,
        }
    }

    pub(crate) fn no(text: impl Into<String>) -> Done {
        Done {
            status: Status::No,
            text: text.into(),
            close: false,
        }
    }

    pub(crate) fn bad(text: impl Into<String>) -> Done {
        Done {
            status: Status::Bad,
            text: text.into(),
            close: false,
        }
    }

    pub(crate) fn written() -> Done {
        Done {
            status: Status::Written,
            text: String::new(),
            close: false,
        }
    }

    pub(crate) fn then_close(mut self) -> Done {
        self.close = true;
        self
    }
}

/// A logged-in user.
pub(crate) struct User {
    pub(crate) account: DirectoryAccount,
    pub(crate) mail: mailstead_store::Account,
    /// Counts this session against the user's connection limit until dropped.
    _slot: Slot<String>,
}

impl User {
    pub(crate) fn new(
        account: DirectoryAccount,
        mail: mailstead_store::Account,
        slot: Slot<String>,
    ) -> User {
        User {
            account,
            mail,
            _slot: slot,
        }
    }
}

/// The selected folder as this session knows it.
pub(crate) struct Selected {
    pub(crate) folder: Arc<Folder>,
    pub(crate) read_only: bool,
    /// UIDs by sequence number (index + 1), as last told to the client.
    pub(crate) uids: UidList,
    /// UIDs that are `\Recent` in this session.
    pub(crate) recent: UidList,
    /// Messages with a UID from here on have not been announced yet.
    pub(crate) uid_next: u32,
    /// Flag changes up to this modification sequence have been reported.
    pub(crate) known_modseq: u64,
    /// The snapshot's `expunge_serial` when expunges were last reported: while it stays, no
    /// command needs to look for expunged messages.
    pub(crate) known_expunges: u64,
    /// Keywords the client has been told about (`* FLAGS`).
    pub(crate) known_keywords: usize,
    /// Flag changes this session made and already reported, by UID: the modseq they got.
    pub(crate) own_changes: HashMap<u32, u64>,
    /// The saved search result (`$`) and the searches being updated.
    pub(crate) search: SearchState,
    /// A public folder with a private index: this user's own `\Seen` flags.
    pub(crate) private_seen: Option<mailstead_store::private_seen::PrivateSeen>,
}

impl Selected {
    pub(crate) fn is_recent(&self, uid: u32) -> bool {
        self.recent.position(uid).is_some()
    }

    /// The first UID recent in this session: SELECT claims up to `uid_next`, EXAMINE only
    /// looks (RFC 3501 6.3.2).
    pub(crate) fn first_recent(&self, uid_next: u32) -> u32 {
        if self.read_only {
            self.folder.recent_from()
        } else {
            self.folder.claim_recent(uid_next)
        }
    }
}

/// What an idle connection before login closed to make room for a new one is told; a full
/// server's refusal says the same.
pub(crate) const EVICTED: &[u8] = b"* BYE Too many connections; try again later.\r\n";

pub(crate) struct Session {
    pub(crate) ctx: Arc<ImapContext>,
    pub(crate) conn: Connection,
    pub(crate) peer: IpAddr,
    pub(crate) user: Option<User>,
    /// Boxed: a connection waiting with no folder selected stays small.
    pub(crate) selected: Option<Box<Selected>>,
    /// Where the selected folder's ACL is (its account may be another user's).
    pub(crate) selected_place: Option<crate::cmd::acl::AclPlace>,
    /// The client is CONDSTORE-aware (ENABLE, SELECT (CONDSTORE), or a MODSEQ item or key).
    pub(crate) condstore: bool,
    /// ENABLE QRESYNC: expunges are reported as VANISHED.
    pub(crate) qresync: bool,
    /// ENABLE IMAP4rev2 (RFC 9051): the answers that differ from IMAP4rev1 follow rev2 (see
    /// `cmd/rev2.rs` for the list and where each is checked).
    pub(crate) imap4rev2: bool,
    /// ENABLE UTF8=ACCEPT (RFC 6855).
    pub(crate) utf8_accept: bool,
    /// NOTIFY SET (RFC 5465): what the client asked to hear about, boxed since few ask.
    pub(crate) notify: Option<Box<crate::cmd::notify::Notify>>,
    pub(crate) failed_logins: u32,
    bad_commands: u32,
    /// Asks the session to close (shutdown, eviction); told when it logs in.
    pub(crate) connection: ConnectionHandle,
    /// When an unauthenticated connection is closed, whatever it does.
    login_deadline: Instant,
    /// The address logins are counted and logged under: the peer's, or the one a trusted
    /// webmail or proxy forwarded in `ID ("x-originating-ip" …)` (Dovecot's forwarding).
    pub(crate) login_client: IpAddr,
}

impl Session {
    /// A trusted peer (`[auth] trusted_networks`: a webmail, a proxy) speaks for its users:
    /// before login, the client address it forwards in ID is the one the login penalty counts.
    /// From anyone else the field is ignored, so a client cannot choose its own address.
    fn take_forwarded_client(&mut self, fields: Option<&[(String, Option<String>)]>) {
        if self.user.is_some() || !self.ctx.auth.is_trusted(self.peer) {
            return;
        }
        let forwarded = fields.into_iter().flatten().find_map(|(name, value)| {
            name.eq_ignore_ascii_case("x-originating-ip")
                .then(|| value.as_deref()?.trim().parse::<IpAddr>().ok())
                .flatten()
        });
        if let Some(client) = forwarded {
            self.login_client = client;
        }
    }
}

pub(crate) async fn run(
    stream: Box<dyn Io>,
    peer: IpAddr,
    tls: bool,
    ctx: Arc<ImapContext>,
    connection: ConnectionHandle,
) {
    let conn = Connection::new(
        stream,
        framing_limits(&ctx.limits, false),
        tls,
        Arc::clone(&ctx.largest_input),
    );
    let login_deadline = Instant::now() + ctx.limits.login_timeout;
    let mut session = Session {
        ctx,
        conn,
        peer,
        user: None,
        selected: None,
        selected_place: None,
        condstore: false,
        qresync: false,
        imap4rev2: false,
        utf8_accept: false,
        notify: None,
        failed_logins: 0,
        bad_commands: 0,
        connection,
        login_deadline,
        login_client: peer,
    };
    if let Err(err) = session.serve().await {
        debug!(peer = %session.peer, cause = %err, "IMAP connection ended");
    }
    session.conn.shutdown().await;
}

/// What the framer accepts in each state: the configured limits once logged in; before, lines
/// and literals of at most `max_input_before_login` (a LOGIN with two literals fits), so an
/// unauthenticated client cannot make the server buffer much.
pub(crate) fn framing_limits(limits: &Limits, authenticated: bool) -> FramingLimits {
    if authenticated {
        FramingLimits {
            max_line: limits.max_line,
            max_literal: limits.max_literal,
            max_command: limits.max_literal.saturating_add(limits.max_line),
            max_discard: crate::framing::MAX_DISCARD,
        }
    } else {
        let max_line = limits.max_line.min(limits.max_input_before_login);
        let max_literal = limits.max_literal.min(limits.max_input_before_login);
        FramingLimits {
            max_line,
            max_literal,
            max_command: max_line.saturating_add(max_literal.saturating_mul(2)),
            max_discard: 0,
        }
    }
}

impl Session {
    async fn serve(&mut self) -> io::Result<()> {
        let greeting = format!(
            "* OK [CAPABILITY {}] {} Mailstead ready.\r\n",
            self.capabilities(),
            self.ctx.hostname
        );
        self.conn.write(greeting.as_bytes()).await?;
        loop {
            // The one place that decides what a client may send in its state.
            let authenticated = self.user.is_some();
            self.conn
                .set_limits(framing_limits(&self.ctx.limits, authenticated));
            let flow = if authenticated {
                self.step(Some(self.ctx.limits.idle_timeout)).await?
            } else {
                // The whole unauthenticated life is bounded, not each wait: commands that
                // keep the connection busy (NOOP every 45 s) do not extend it.
                match tokio::time::timeout_at(self.login_deadline, self.step(None)).await {
                    Ok(flow) => flow?,
                    Err(_elapsed) => {
                        self.conn.write(b"* BYE Login timed out.\r\n").await?;
                        return Ok(());
                    }
                }
            };
            // Logged in, the session is no longer evictable to make room for others.
            self.connection.set_pre_login(self.user.is_none());
            self.connection.set_logged_in(self.user.is_some());
            if flow == Flow::Close {
                return Ok(());
            }
        }
    }

    /// Reads one frame (with `idle_timeout` on the wait, if any) and acts on it.
    async fn step(&mut self, idle_timeout: Option<Duration>) -> io::Result<Flow> {
        // What NOTIFY sends does not keep a silent client alive.
        let deadline = idle_timeout.map(|timeout| Instant::now() + timeout);
        let frame = loop {
            if self.notify.is_some() {
                // Written whole before waiting: the read below may be cancelled by a
                // notification, and a write must never be.
                self.conn.flush().await?;
                self.notify_prepare();
            }
            tokio::select! {
                biased;
                closing = self.connection.closing() => {
                    let goodbye: &[u8] = match closing {
                        Closing::Shutdown => b"* BYE Server shutting down.\r\n",
                        Closing::Evicted => EVICTED,
                    };
                    self.conn.write(goodbye).await?;
                    return Ok(Flow::Close);
                }
                frame = read_with_timeout(&mut self.conn, deadline) => break frame,
                wake = crate::cmd::notify::wait(&mut self.notify) => {
                    Box::pin(self.notify_wake(wake)).await?;
                }
            }
        };
        let frame = match frame {
            None => {
                self.conn
                    .write(b"* BYE Disconnected for inactivity.\r\n")
                    .await?;
                return Ok(Flow::Close);
            }
            Some(frame) => frame?,
        };
        let Some(frame) = frame else {
            return Ok(Flow::Close);
        };
        match frame {
            Frame::Continue => {
                self.conn.write(b"+ Ready for literal data\r\n").await?;
                self.conn.flush().await?;
                Ok(Flow::Continue)
            }
            Frame::Reject { tag, response } => {
                let tag = tag.unwrap_or_else(|| "*".to_owned());
                self.conn
                    .write(format!("{tag} {response}\r\n").as_bytes())
                    .await?;
                self.count_bad().await
            }
            Frame::Fatal { response } => {
                self.conn
                    .write(format!("* {response}\r\n").as_bytes())
                    .await?;
                Ok(Flow::Close)
            }
            // Boxed: a parsed command and its state are held only while it runs, not by every
            // idle connection's future.
            Frame::Command(bytes) => match parse_command(&bytes) {
                Ok(tagged) => Box::pin(self.execute(tagged)).await,
                Err(err) => self.parse_error(err).await,
            },
            Frame::Stream { head, .. } => {
                let flow = match parse_append_head(&head) {
                    Ok(tagged) => Box::pin(self.execute(tagged)).await,
                    Err(err) => self.parse_error(err).await,
                };
                // A literal the command did not take (refused, or a failure part of the way)
                // is dropped, never buffered.
                self.conn.refuse_stream();
                flow
            }
            // Only after a streamed literal, which APPEND reads to its end itself.
            Frame::Rest(_) => Ok(Flow::Continue),
        }
    }

    async fn parse_error(&mut self, err: ParseError) -> io::Result<Flow> {
        let tag = err.tag.unwrap_or_else(|| "*".to_owned());
        self.conn
            .write(format!("{tag} BAD {}\r\n", err.message).as_bytes())
            .await?;
        self.count_bad().await
    }

    async fn count_bad(&mut self) -> io::Result<Flow> {
        self.bad_commands += 1;
        if self.bad_commands >= self.ctx.limits.max_bad_commands {
            self.conn
                .write(b"* BYE Too many invalid commands.\r\n")
                .await?;
            return Ok(Flow::Close);
        }
        Ok(Flow::Continue)
    }

    /// Runs one command in the state it is allowed in, then tells the client what changed in
    /// the selected folder, then answers with the tagged response.
    async fn execute(&mut self, tagged: Tagged) -> io::Result<Flow> {
        let Tagged { tag, command } = tagged;
        let authenticated = self.user.is_some();
        let selected = self.selected.is_some();
        let allowed = match &command {
            Command::Capability | Command::Noop | Command::Logout | Command::Id(_) => true,
            Command::StartTls | Command::Login { .. } | Command::Authenticate { .. } => {
                !authenticated
            }
            Command::Check
            | Command::Close
            | Command::Unselect
            | Command::Expunge
            | Command::UidExpunge(_)
            | Command::CancelUpdate(_)
            | Command::Search(_)
            | Command::Sort(_)
            | Command::Thread(_)
            | Command::Fetch(_)
            | Command::Store(_)
            | Command::Copy { .. }
            | Command::Move { .. }
            | Command::Replace { .. } => selected,
            _ => authenticated,
        };
        if !allowed {
            let message = if authenticated && !selected {
                "No mailbox selected."
            } else if authenticated {
                "Already logged in."
            } else {
                "Please log in first."
            };
            self.bad(&tag, message).await?;
            return self.count_bad().await;
        }
        // Sequence numbers must not change during these (RFC 3501 7.4.1).
        let expunges_allowed = match &command {
            Command::Fetch(fetch) => fetch.uid,
            Command::Store(store) => store.uid,
            Command::Search(search) => search.uid,
            Command::Sort(sort) => sort.uid,
            Command::Thread(thread) => thread.uid,
            _ => true,
        };
        let mut command = command;
        if self.utf8_names() {
            crate::cmd::rev2::names_to_store(&mut command);
        }
        // SELECT has just built the view from a fresh sync: a refresh would sync again.
        let refresh_after = !matches!(&command, Command::Select(_) | Command::Examine(_));
        let done = match command {
            // IDLE lasts as long as the client idles: its own state is small and stays
            // unboxed. Every other command's, as large as the largest, is boxed while it runs.
            Command::Idle => self.idle().await?,
            command => Box::pin(self.dispatch(&tag, command)).await?,
        };
        if done.status == Status::Written {
            return Ok(if done.close {
                Flow::Close
            } else {
                Flow::Continue
            });
        }
        if done.status != Status::Bad && refresh_after {
            Box::pin(self.refresh(expunges_allowed)).await?;
        }
        let line = format!("{tag} {} {}\r\n", done.status.word(), done.text);
        self.conn.write(line.as_bytes()).await?;
        if done.close {
            return Ok(Flow::Close);
        }
        if done.status == Status::Bad {
            return self.count_bad().await;
        }
        Ok(Flow::Continue)
    }

    /// Runs one command allowed in the session's state.
    async fn dispatch(&mut self, tag: &str, command: Command) -> io::Result<Done> {
        let command = match self.acl_gate(command).await {
            Ok(command) => command,
            Err(refused) => return Ok(refused),
        };
        Ok(match command {
            Command::Capability => {
                let line = format!("* CAPABILITY {}\r\n", self.capabilities());
                self.conn.write(line.as_bytes()).await?;
                Done::ok("Capability completed.")
            }
            Command::Noop => Done::ok("NOOP completed."),
            Command::Check => Done::ok("CHECK completed."),
            Command::Logout => {
                // Nothing may follow the BYE but the tagged OK (RFC 3501 7.1.5): no refresh.
                self.selected = None;
                self.conn.write(b"* BYE Logging out.\r\n").await?;
                Done::ok("Logout completed.").then_close()
            }
            Command::Id(fields) => {
                self.take_forwarded_client(fields.as_deref());
                let line = format!(
                    "* ID (\"name\" \"Mailstead\" \"version\" \"{}\")\r\n",
                    env!("CARGO_PKG_VERSION")
                );
                self.conn.write(line.as_bytes()).await?;
                Done::ok("ID completed.")
            }
            Command::StartTls => self.starttls(tag).await?,
            Command::Login { user, password } => self.login(&user, password.as_bytes()).await?,
            Command::Authenticate {
                mechanism,
                initial_response,
            } => self.authenticate(&mechanism, initial_response).await?,
            Command::Enable(names) => self.enable(&names).await?,
            Command::Select(select) => self.select(select, false).await?,
            Command::Examine(select) => self.select(select, true).await?,
            Command::Create {
                mailbox,
                special_use,
            } => self.create(&mailbox, &special_use).await?,
            Command::Delete(mailbox) => self.delete(&mailbox).await?,
            Command::Rename { from, to } => self.rename(&from, &to).await?,
            Command::Subscribe(mailbox) => self.subscribe(&mailbox, true).await?,
            Command::Unsubscribe(mailbox) => self.subscribe(&mailbox, false).await?,
            Command::List(list) => self.list(list).await?,
            Command::Lsub { reference, pattern } => self.lsub(&reference, &pattern).await?,
            Command::Namespace => self.namespace().await?,
            Command::Status { mailbox, items } => self.status(&mailbox, &items).await?,
            Command::Append {
                mailbox,
                flags,
                date,
                message,
                utf8,
            } => self.append(&mailbox, &flags, date, message, utf8).await?,
            Command::MultiAppend { mailbox, messages } => {
                self.multi_append(&mailbox, messages).await?
            }
            Command::Replace {
                uid,
                target,
                mailbox,
                message,
            } => self.replace(uid, target, &mailbox, message).await?,
            Command::Compress(mechanism) => self.compress(tag, &mechanism).await?,
            Command::GetAcl(mailbox) => self.get_acl(&mailbox).await?,
            Command::SetAcl {
                mailbox,
                identifier,
                rights,
            } => self.set_acl(&mailbox, &identifier, Some(&rights)).await?,
            Command::DeleteAcl {
                mailbox,
                identifier,
            } => self.set_acl(&mailbox, &identifier, None).await?,
            Command::ListRights {
                mailbox,
                identifier,
            } => self.list_rights(&mailbox, &identifier).await?,
            Command::MyRights(mailbox) => self.my_rights(&mailbox).await?,
            Command::Notify(notify) => self.notify_command(notify).await?,
            Command::Idle => self.idle().await?,
            Command::GetQuota(root) => self.get_quota(&root).await?,
            Command::GetQuotaRoot(mailbox) => self.get_quota_root(&mailbox).await?,
            Command::SetQuota(_) => Done::no("[NOPERM] Quotas are set by the administrator."),
            Command::Close => self.close(true).await?,
            Command::Unselect => self.close(false).await?,
            Command::Expunge => self.expunge(None).await?,
            Command::UidExpunge(set) => self.expunge(Some(set)).await?,
            Command::CancelUpdate(tags) => self.cancel_update(&tags),
            Command::Search(search) => self.search(tag, search).await?,
            Command::Sort(sort) => self.sort(tag, sort).await?,
            Command::Thread(thread) => self.thread(thread).await?,
            Command::Fetch(fetch) => self.fetch(fetch).await?,
            Command::Store(store) => self.store(store).await?,
            Command::Copy { uid, set, mailbox } => self.copy(uid, &set, &mailbox, false).await?,
            Command::Move { uid, set, mailbox } => self.copy(uid, &set, &mailbox, true).await?,
        })
    }

    /// The capabilities for the current state.
    pub(crate) fn capabilities(&self) -> String {
        let mut caps = String::from("IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE LITERAL+");
        if self.user.is_none() {
            if !self.conn.tls && self.ctx.tls.is_some() {
                caps.push_str(" STARTTLS");
            }
            if self.login_allowed() {
                caps.push_str(" AUTH=PLAIN AUTH=LOGIN");
            } else {
                caps.push_str(" LOGINDISABLED");
            }
        } else {
            caps.push_str(
                " UIDPLUS MOVE NAMESPACE UNSELECT CHILDREN SPECIAL-USE LIST-EXTENDED \
                 LIST-STATUS ESEARCH QUOTA QUOTA=RES-STORAGE CONDSTORE QRESYNC BINARY \
                 STATUS=SIZE WITHIN SEARCHRES CONTEXT=SEARCH CONTEXT=SORT",
            );
            caps.push_str(
                " SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES THREAD=REFS ESORT",
            );
            caps.push_str(&format!(" APPENDLIMIT={}", self.ctx.limits.max_literal));
            caps.push_str(" MULTIAPPEND CATENATE URL-PARTIAL REPLACE SAVEDATE OBJECTID PREVIEW");
            caps.push_str(" UTF8=ACCEPT NOTIFY");
            if self.ctx.acls.is_some() {
                caps.push_str(" ACL RIGHTS=texk");
            }
            if !self.conn.compressed() {
                caps.push_str(" COMPRESS=DEFLATE");
            }
        }
        caps
    }

    /// Passwords only over TLS, or on loopback when configured.
    pub(crate) fn login_allowed(&self) -> bool {
        self.conn.tls || (self.ctx.login_on_loopback_without_tls && self.peer.is_loopback())
    }

    pub(crate) async fn bad(&mut self, tag: &str, text: &str) -> io::Result<()> {
        self.conn
            .write(format!("{tag} BAD {text}\r\n").as_bytes())
            .await
    }

    /// The tagged NO for a store error: the client learns the kind, the log the details.
    pub(crate) fn no_for(&self, err: &MailboxError) -> Done {
        let text = match err {
            MailboxError::NotFound(_) => "[NONEXISTENT] Mailbox doesn't exist.".to_owned(),
            MailboxError::AlreadyExists(_) => "[ALREADYEXISTS] Mailbox already exists.".to_owned(),
            MailboxError::InvalidName { reason, .. } => {
                format!("[CANNOT] Invalid mailbox name: {reason}.")
            }
            MailboxError::CannotDeleteInbox => "[CANNOT] INBOX can't be deleted.".to_owned(),
            MailboxError::HasChildren(_) => {
                "[INUSE] Mailbox has children, delete them first.".to_owned()
            }
            MailboxError::OverQuota { .. } => "[OVERQUOTA] Quota exceeded.".to_owned(),
            MailboxError::LockTimeout { .. } => {
                "[UNAVAILABLE] Mailbox is locked by another process, try again later.".to_owned()
            }
            other => {
                // Store errors can name the client's mailbox names.
                error!(user = ?self.user.as_ref().map(|u| u.account.address.to_string()), cause = %LogSafe(&other.to_string()), "IMAP store error");
                "[SERVERBUG] Internal error occurred. Refer to server log for more information."
                    .to_owned()
            }
        };
        Done::no(text)
    }

    pub(crate) fn mail(&self) -> Option<&mailstead_store::Account> {
        self.user.as_ref().map(|user| &user.mail)
    }

    /// Picks up changes in the selected folder and tells the client: new messages (EXISTS,
    /// RECENT), flag changes by others (FETCH), and, when `expunges` is true, expunged
    /// messages (EXPUNGE, or VANISHED with QRESYNC).
    pub(crate) async fn refresh(&mut self, expunges: bool) -> io::Result<()> {
        let Some(selected) = self.selected.as_ref() else {
            return Ok(());
        };
        let snapshot = match selected.folder.sync().await {
            Ok(snapshot) => snapshot,
            Err(err) => {
                error!(cause = %LogSafe(&err.to_string()), "cannot sync folder");
                selected.folder.snapshot()
            }
        };
        let snapshot = self.seen_view(snapshot);
        // RFC 5267 4.3.4: a search's expunged matches leave it before the expunge is told.
        if expunges
            && snapshot.expunge_serial != selected.known_expunges
            && !selected.search.is_empty()
        {
            let gone: Vec<u32> = gone_from_view(&selected.uids, &snapshot)
                .into_iter()
                .map(|(_, uid)| uid)
                .collect();
            let removals = self.removals_before_expunge(&gone);
            if !removals.is_empty() {
                self.conn.write(&removals).await?;
            }
        }
        self.apply_snapshot(&snapshot, expunges).await?;
        self.update_contexts(&snapshot).await
    }

    pub(crate) async fn apply_snapshot(
        &mut self,
        snapshot: &Snapshot,
        expunges: bool,
    ) -> io::Result<()> {
        let condstore = self.condstore;
        let qresync = self.qresync;
        let imap4rev2 = self.imap4rev2;
        let Some(selected) = self.selected.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        if expunges && snapshot.expunge_serial != selected.known_expunges {
            selected.known_expunges = snapshot.expunge_serial;
            let gone = gone_from_view(&selected.uids, snapshot);
            if !gone.is_empty() {
                let uids: Vec<u32> = gone.iter().map(|(_, uid)| *uid).collect();
                if qresync {
                    out.extend_from_slice(
                        format!("* VANISHED {}\r\n", crate::cmd::uid_set_string(&uids)).as_bytes(),
                    );
                } else {
                    // Highest first, so each number is still valid when the client reads it.
                    for (index, _) in gone.iter().rev() {
                        out.extend_from_slice(format!("* {} EXPUNGE\r\n", index + 1).as_bytes());
                    }
                }
                selected.uids.remove(&uids);
                selected.recent.remove(&uids);
            }
        }
        if snapshot.keywords.len() != selected.known_keywords {
            selected.known_keywords = snapshot.keywords.len();
            out.extend_from_slice(&crate::cmd::flags_announcement(
                snapshot,
                selected.read_only,
            ));
        }
        if snapshot.highest_modseq > selected.known_modseq {
            let known = selected.known_modseq;
            // Both in ascending UIDs: one pass over each.
            let mut metas = snapshot.messages.iter().peekable();
            for (index, uid) in selected.uids.iter().enumerate() {
                while metas.next_if(|meta| meta.uid < uid).is_some() {}
                let Some(meta) = metas.next_if(|meta| meta.uid == uid) else {
                    continue;
                };
                if meta.modseq <= known || selected.own_changes.get(&uid) == Some(&meta.modseq) {
                    continue;
                }
                out.extend_from_slice(format!("* {} FETCH (", index + 1).as_bytes());
                // RFC 9051 7.5.2: an unsolicited FETCH always carries the UID.
                if qresync || imap4rev2 {
                    out.extend_from_slice(format!("UID {} ", meta.uid).as_bytes());
                }
                crate::cmd::write_flags(&mut out, meta, snapshot, selected.is_recent(uid));
                if condstore {
                    out.extend_from_slice(format!(" MODSEQ ({})", meta.modseq).as_bytes());
                }
                out.extend_from_slice(b")\r\n");
            }
            selected.known_modseq = snapshot.highest_modseq;
            selected.own_changes.clear();
        }
        if snapshot.uid_next > selected.uid_next {
            let first_new = selected.uid_next;
            let start = snapshot
                .messages
                .partition_point(|meta| meta.uid < first_new);
            let new: Vec<u32> = snapshot
                .messages
                .get(start..)
                .unwrap_or_default()
                .iter()
                .map(|meta| meta.uid)
                .collect();
            selected.uid_next = snapshot.uid_next;
            if !new.is_empty() {
                let first_recent = selected.first_recent(snapshot.uid_next);
                // IMAP4rev2 has no \Recent: the list stays empty.
                if !imap4rev2 {
                    selected
                        .recent
                        .extend(new.iter().copied().filter(|uid| *uid >= first_recent));
                }
                selected.uids.extend(new);
                out.extend_from_slice(format!("* {} EXISTS\r\n", selected.uids.len()).as_bytes());
                if !imap4rev2 {
                    out.extend_from_slice(
                        format!("* {} RECENT\r\n", selected.recent.len()).as_bytes(),
                    );
                }
            }
        }
        if !out.is_empty() {
            self.conn.write(&out).await?;
        }
        Ok(())
    }

    pub(crate) fn log_login(&self, address: &str) {
        info!(peer = %self.peer, user = %LogSafe(address), tls = self.conn.tls, "IMAP login");
    }
}

/// The messages of the view (position, UID) that are no longer in the folder.
fn gone_from_view(view: &UidList, snapshot: &Snapshot) -> Vec<(usize, u32)> {
    let mut gone = Vec::new();
    // Both in ascending UIDs: one pass over each.
    let mut present = snapshot.messages.iter().map(|meta| meta.uid).peekable();
    for (index, uid) in view.iter().enumerate() {
        while present.next_if(|present| *present < uid).is_some() {}
        if present.next_if_eq(&uid).is_none() {
            gone.push((index, uid));
        }
    }
    gone
}

/// The next frame, `None` when `deadline` passed first.
async fn read_with_timeout(
    conn: &mut Connection,
    deadline: Option<Instant>,
) -> Option<io::Result<Option<Frame>>> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, conn.read_frame())
            .await
            .ok(),
        None => Some(conn.read_frame().await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what `f` returns, without calling it.
    fn returned_size<F, R>(_: &F) -> usize
    where
        F: Fn(Box<dyn Io>, IpAddr, bool, Arc<ImapContext>, ConnectionHandle) -> R,
    {
        std::mem::size_of::<R>()
    }

    /// A connection waiting for its next command holds the session's future: commands'
    /// larger states are boxed while they run, so an idle connection stays small.
    #[test]
    fn an_idle_session_is_small() {
        let size = returned_size(&run);
        assert!(size <= 3 * 1024, "the session future is {size} bytes");
    }
}
