//! The session state machine: greeting, HELO/EHLO/LHLO, the mail transaction, DATA and BDAT,
//! STARTTLS, limits, and delivery through the store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use mailstead_auth::sasl::{Exchange, Mechanism, SaslError, Step};
use mailstead_directory::resolve::LocalRecipient;
use mailstead_directory::resolve::{Outcome, Recipient, Rejection};
use mailstead_directory::{Directory, DirectoryError};
use mailstead_events::{Event, Kind};
use mailstead_net::{Closing, ConnectionHandle, LogSafe, Peer};
use mailstead_queue::LocalOutcome;
use mailstead_store::{MessageWriter, QuotaLimit, StoreError};
use tracing::{info, warn};

use crate::cmd::{self, Command, PathCommand, Reply};
use crate::connection::{Connection, Io, Line};
use crate::data::DataDecoder;
use crate::{Mode, SmtpContext, submission};

/// Why a session stopped early or a message was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("timeout")]
    Timeout,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

/// The one place errors become replies: temporary → 4xx, permanent → 5xx.
pub(crate) fn reply_for(err: &SessionError) -> Reply {
    match err {
        SessionError::Timeout => Reply::new(421, "4.4.2 Error: timeout exceeded"),
        SessionError::Store(StoreError::OverQuota { .. }) => {
            Reply::new(552, "5.2.2 Error: mailbox is over quota")
        }
        SessionError::Store(StoreError::Io { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) =>
        {
            warn!(cause = %err, "store failure: out of disk space");
            Reply::new(452, "4.3.1 Insufficient system storage")
        }
        SessionError::Store(err) if err.is_temporary() => {
            warn!(cause = %err, "store failure");
            Reply::new(451, "4.3.0 Error: local delivery failed, try again later")
        }
        SessionError::Store(err) => {
            warn!(cause = %err, "store failure");
            Reply::new(451, "4.3.0 Error: local delivery failed, try again later")
        }
        SessionError::Directory(err) => {
            warn!(cause = %err, "directory failure");
            Reply::new(
                451,
                "4.3.0 Error: temporary lookup failure, try again later",
            )
        }
        SessionError::Io(err) => {
            warn!(cause = %err, "i/o failure");
            Reply::new(451, "4.3.0 Error: local error in processing")
        }
    }
}

/// What a client that stopped talking gets before the connection is closed (Postfix's words).
fn timeout_reply(hostname: &str) -> Reply {
    Reply::new(421, format!("4.4.2 {hostname} Error: timeout exceeded"))
}

/// A recipient accepted at RCPT time.
struct Accepted {
    /// As the client wrote it (LMTP replies name it).
    address: String,
    locals: Vec<LocalRecipient>,
    /// Addresses elsewhere it leads to (itself, or an alias's outside members): the queue's.
    externals: Vec<String>,
    notify: Option<mailstead_queue::Notify>,
    orcpt: Option<String>,
}

/// A BDAT transaction in progress.
struct Chunks {
    writer: Option<MessageWriter>,
    /// Why `writer` is gone, when a store failure took it.
    failure: Option<StoreError>,
    size: u64,
    queue_id: String,
}

struct Session {
    ctx: Arc<SmtpContext>,
    peer: Peer,
    helo: Option<String>,
    /// EHLO or LHLO was used: PIPELINING and the extensions are on.
    extended: bool,
    /// The TLS protocol and cipher once STARTTLS is done.
    tls: Option<String>,
    mail_from: Option<String>,
    recipients: Vec<Accepted>,
    chunks: Option<Chunks>,
    errors: u32,
    /// Tarpit delay owed before the queued error replies are sent.
    delay: std::time::Duration,
    /// The SASL login, once AUTH succeeded (submission).
    login: Option<String>,
    /// DSN's ENVID and RET from MAIL FROM.
    envid: Option<String>,
    ret: Option<mailstead_queue::Ret>,
    /// MAIL FROM's SIZE, for the quota check at RCPT time.
    declared_size: u64,
    /// Recipients refused for being over `max_recipients` in this transaction; up to
    /// `max_recipients` more of these are not counted as errors (Postfix's
    /// `smtpd_recipient_overshoot_limit`), so a big transaction is not tarpitted to death.
    overshoot: usize,
}

/// What to do after a command.
enum Next {
    Continue,
    Close,
}

pub(crate) async fn run(
    stream: Box<dyn Io>,
    peer: Peer,
    ctx: Arc<SmtpContext>,
    mut connection: ConnectionHandle,
) {
    let mut conn = Connection::new(stream, ctx.limits.max_line);
    let mut session = Session {
        ctx: Arc::clone(&ctx),
        peer,
        helo: None,
        extended: false,
        tls: None,
        mail_from: None,
        recipients: Vec::new(),
        chunks: None,
        errors: 0,
        delay: std::time::Duration::ZERO,
        login: None,
        envid: None,
        ret: None,
        declared_size: 0,
        overshoot: 0,
    };
    if session.peer.tls {
        session.tls = Some("implicit TLS".to_owned());
    }
    // Postfix's smtpd_forbid_unauth_pipelining: a client talking before the banner is not a
    // mail server waiting for it.
    if conn.input_ready_now().await {
        conn.queue(&Reply::new(554, "5.5.0 Error: SMTP protocol synchronization").to_wire());
        conn.shutdown().await;
        return;
    }
    let banner = match ctx.mode {
        Mode::Smtp | Mode::Submission => format!("{} ESMTP Mailstead", ctx.hostname),
        Mode::Lmtp => format!("{} LMTP Mailstead", ctx.hostname),
    };
    conn.queue(&Reply::new(220, banner).to_wire());

    loop {
        let line = tokio::select! {
            biased;
            closing = connection.closing() => {
                let reply = match closing {
                    Closing::Shutdown => Reply::new(421, format!("4.3.2 {} Service shutting down", ctx.hostname)),
                    Closing::Evicted => evicted_reply(&ctx.hostname),
                };
                conn.queue(&reply.to_wire());
                break;
            }
            line = tokio::time::timeout(ctx.limits.command_timeout, conn.read_line()) => line,
        };
        let line = match line {
            Ok(Ok(Line::Text(line))) => line,
            Ok(Ok(Line::Eof)) => break,
            Ok(Ok(Line::TooLong)) => {
                let reply = Reply::new(500, "5.5.2 Error: line too long");
                let next = session.send(&mut conn, reply);
                let delay = std::mem::take(&mut session.delay);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if let Next::Close = next {
                    break;
                }
                continue;
            }
            Ok(Err(err)) => {
                info!(peer = %session.peer.description, cause = %err, "connection lost");
                break;
            }
            Err(_elapsed) => {
                conn.queue(&timeout_reply(&ctx.hostname).to_wire());
                info!(peer = %session.peer.description, "timeout waiting for a command");
                break;
            }
        };
        // Pipelining is only for clients that said EHLO/LHLO (RFC 2920); anything else
        // sending ahead is refused like Postfix's smtpd_forbid_unauth_pipelining.
        if !session.extended && conn.has_buffered_input() {
            conn.queue(&Reply::new(554, "5.5.0 Error: SMTP protocol synchronization").to_wire());
            break;
        }
        let next = session.command(&mut conn, &line).await;
        // A session in a mail transaction is busy, not idle: the accept loop does not evict it.
        connection.set_pre_login(
            session.login.is_none() && session.mail_from.is_none() && session.chunks.is_none(),
        );
        connection.set_logged_in(session.login.is_some());
        // The error tarpit: replies are still queued, so sleeping here delays them.
        let delay = std::mem::take(&mut session.delay);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match next {
            Ok(Next::Continue) => {}
            Ok(Next::Close) => break,
            Err(err) => {
                match err {
                    SessionError::Io(_) => {}
                    SessionError::Timeout => conn.queue(&timeout_reply(&ctx.hostname).to_wire()),
                    _ => conn.queue(&reply_for(&err).to_wire()),
                }
                info!(peer = %session.peer.description, cause = %err, "session ended");
                break;
            }
        }
    }
    conn.shutdown().await;
}

/// What an idle connection closed to make room for a new one is told; the accept loop's
/// refusal of a full server says the same.
pub(crate) fn evicted_reply(hostname: &str) -> Reply {
    Reply::new(
        421,
        format!("4.7.0 {hostname} Error: too many connections; try again later"),
    )
}

/// Whether `address` is `local@domain` with a fully-qualified domain (one with a dot, not at
/// either end) or an address literal.
fn fully_qualified(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && ((domain.starts_with('[') && domain.ends_with(']'))
                    || (domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')))
        }
        None => false,
    }
}

/// The queue's recipients of a message: every outside address, and every mailbox that
/// failed while the message was taken (pending when temporary, failed and to be bounced when
/// permanent), each mailbox once.
fn queue_entries(
    recipients: &[Accepted],
    outcomes: &HashMap<PathBuf, Result<(), Reply>>,
) -> Vec<mailstead_queue::QueuedRecipient> {
    use mailstead_queue::{QueuedRecipient, RecipientState};
    let mut entries = Vec::new();
    let mut mailboxes = std::collections::HashSet::new();
    for recipient in recipients {
        let with_dsn = |mut entry: QueuedRecipient| {
            entry.notify = recipient.notify;
            entry.orcpt = recipient.orcpt.clone();
            entry
        };
        for external in &recipient.externals {
            entries.push(with_dsn(QueuedRecipient::pending(external.clone(), false)));
        }
        for local in &recipient.locals {
            let Some(Err(reply)) = outcomes.get(&local.location.maildir) else {
                continue;
            };
            if !mailboxes.insert(local.location.maildir.clone()) {
                continue;
            }
            let mut entry = with_dsn(QueuedRecipient::pending(local.address.to_string(), true));
            if reply.code >= 500 {
                let text = reply.lines.join(" ");
                entry.state = RecipientState::Failed;
                entry.status = text.split_whitespace().next().map(str::to_owned);
                entry.diagnostic = Some(format!("x-mailstead; {} {text}", reply.code));
            }
            entries.push(entry);
        }
    }
    entries
}

impl Session {
    /// Queues a reply, counting errors: past `soft_error_limit` each error reply owes the
    /// tarpit delay (Postfix's `smtpd_error_sleep_time`); at `max_errors` the session closes.
    fn send(&mut self, conn: &mut Connection, reply: Reply) -> Next {
        conn.queue(&reply.to_wire());
        if reply.code == 452
            && self.overshoot > 0
            && self.overshoot <= self.ctx.limits.max_recipients
        {
            // Too many recipients is the client's batch size, not misbehaviour.
            return Next::Continue;
        }
        if reply.is_error() {
            if self.errors >= self.ctx.limits.soft_error_limit {
                self.delay += self.ctx.limits.error_sleep;
            }
            self.errors += 1;
            if self.errors >= self.ctx.limits.max_errors {
                conn.queue(
                    &Reply::new(
                        421,
                        format!("4.7.0 {} Error: too many errors", self.ctx.hostname),
                    )
                    .to_wire(),
                );
                return Next::Close;
            }
        }
        Next::Continue
    }

    /// The reply for a failed local delivery: `reply_for`, except that over quota is
    /// temporary when `quota_full_tempfail` says so (Dovecot's setting of that name).
    fn delivery_reply(&self, err: StoreError) -> Reply {
        match err {
            StoreError::OverQuota { .. } if self.ctx.limits.quota_full_tempfail => {
                Reply::new(452, "4.2.2 Mailbox full")
            }
            err => reply_for(&SessionError::Store(err)),
        }
    }

    fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.recipients.clear();
        self.chunks = None;
        self.envid = None;
        self.ret = None;
        self.declared_size = 0;
        self.overshoot = 0;
    }

    async fn command(&mut self, conn: &mut Connection, line: &[u8]) -> Result<Next, SessionError> {
        let command = match cmd::parse(line) {
            Ok(command) => command,
            Err(reply) => return Ok(self.send(conn, reply)),
        };
        let lmtp = self.ctx.mode == Mode::Lmtp;
        let reply = match command {
            Command::Ehlo(_) | Command::Helo(_) if lmtp => {
                Reply::new(500, "5.5.1 Error: this is LMTP, use LHLO")
            }
            Command::Lhlo(_) if !lmtp => Reply::new(500, "5.5.2 Error: command not recognized"),
            Command::Ehlo(name) | Command::Lhlo(name) => {
                self.reset_transaction();
                self.helo = Some(name);
                self.extended = true;
                self.ehlo_reply()
            }
            Command::Helo(name) => {
                self.reset_transaction();
                self.helo = Some(name);
                self.extended = false;
                Reply::new(250, self.ctx.hostname.clone())
            }
            Command::Mail(path) => self.mail(path).await,
            Command::Rcpt(path) => self.rcpt(path).await,
            Command::Data => return self.data(conn).await,
            Command::Bdat { size, last } => return self.bdat(conn, size, last).await,
            Command::Rset => {
                self.reset_transaction();
                Reply::new(250, "2.0.0 Ok")
            }
            Command::Noop => Reply::new(250, "2.0.0 Ok"),
            Command::Quit => {
                conn.queue(&Reply::new(221, "2.0.0 Bye").to_wire());
                return Ok(Next::Close);
            }
            Command::Vrfy => Reply::new(502, "5.5.1 VRFY command is disabled"),
            Command::NotImplemented => Reply::new(502, "5.5.1 Error: command not implemented"),
            Command::StartTls => return self.start_tls(conn).await,
            Command::Auth { mechanism, initial } => {
                return self.auth(conn, &mechanism, initial).await;
            }
        };
        Ok(self.send(conn, reply))
    }

    fn ehlo_reply(&self) -> Reply {
        let mut lines = vec![
            self.ctx.hostname.clone(),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.ctx.limits.max_message_size),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
        ];
        if self.ctx.tls.is_some() && self.tls.is_none() && self.ctx.mode != Mode::Lmtp {
            lines.push("STARTTLS".to_string());
        }
        // RFC 4954 §4 / RFC 8314: never offer a password exchange in the clear.
        if self.ctx.mode == Mode::Submission && self.tls.is_some() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        if self.ctx.queue.is_some() && self.ctx.mode != Mode::Lmtp {
            lines.push("DSN".to_string());
        }
        lines.push("CHUNKING".to_string());
        Reply { code: 250, lines }
    }

    async fn mail(&mut self, path: PathCommand) -> Reply {
        if self.helo.is_none() {
            return Reply::new(503, "5.5.1 Error: send HELO/EHLO first");
        }
        if self.mail_from.is_some() {
            return Reply::new(503, "5.5.1 Error: nested MAIL command");
        }
        if self.ctx.mode == Mode::Submission && self.login.is_none() {
            return Reply::new(530, "5.7.0 Authentication required");
        }
        let dsn = self.ctx.queue.is_some() && self.ctx.mode != Mode::Lmtp;
        let (mut envid, mut ret, mut declared_size) = (None, None, 0);
        for (key, value) in &path.params {
            match (key.as_str(), value.as_deref()) {
                ("SIZE", Some(size)) => match size.parse::<u64>() {
                    Ok(size) if size > self.ctx.limits.max_message_size => {
                        return Reply::new(552, "5.3.4 Message size exceeds fixed limit");
                    }
                    Ok(size) => declared_size = size,
                    Err(_) => return Reply::new(501, "5.5.4 Bad SIZE parameter"),
                },
                ("BODY", Some(body))
                    if body.eq_ignore_ascii_case("7BIT")
                        || body.eq_ignore_ascii_case("8BITMIME") => {}
                ("SMTPUTF8", None) => {}
                // RFC 4954 §5: who submitted it originally; the login decides here.
                ("AUTH", Some(_)) if self.ctx.mode == Mode::Submission => {}
                ("RET", Some(value)) if dsn => match submission::parse_ret(value) {
                    Some(parsed) => ret = Some(parsed),
                    None => return Reply::new(501, "5.5.4 Bad RET parameter"),
                },
                ("ENVID", Some(value)) if dsn => match submission::decode_xtext(value) {
                    Some(parsed) => envid = Some(parsed),
                    None => return Reply::new(501, "5.5.4 Bad ENVID parameter"),
                },
                _ => return Reply::new(555, format!("5.5.4 Unsupported option: {key}")),
            }
        }
        if !path.address.is_empty() && self.ctx.limits.reject_non_fqdn_sender {
            // Postfix's reject_non_fqdn_sender.
            if !fully_qualified(&path.address) {
                return Reply::new(
                    504,
                    format!(
                        "5.5.2 <{}>: Sender address rejected: need fully-qualified address",
                        path.address
                    ),
                );
            }
        }
        if let Some(refusal) = self.sender_refusal(&path.address).await {
            info!(
                peer = %self.peer.description,
                login = %LogSafe(self.login.as_deref().unwrap_or("")),
                from = %LogSafe(&path.address),
                code = refusal.code,
                "sender refused"
            );
            return refusal;
        }
        self.mail_from = Some(path.address);
        self.envid = envid;
        self.ret = ret;
        self.declared_size = declared_size;
        Reply::new(250, "2.1.0 Ok")
    }

    /// Who may use this sender address. Submission: only an address the login owns (seed
    /// 000's sender-login map with `reject_sender_login_mismatch`); the null sender is not
    /// for clients. Port 25: no unauthenticated mail claiming one of our domains.
    async fn sender_refusal(&self, sender: &str) -> Option<Reply> {
        match self.ctx.mode {
            Mode::Lmtp => None,
            Mode::Submission => {
                let login = self.login.as_deref().unwrap_or_default();
                let owned = !sender.is_empty()
                    && match self.ctx.directory.may_send_as(login, sender).await {
                        Ok(owned) => owned,
                        Err(err) => return Some(reply_for(&SessionError::Directory(err))),
                    };
                (!owned).then(|| {
                    Reply::new(
                        553,
                        format!(
                            "5.7.1 <{sender}>: Sender address rejected: not owned by user {login}"
                        ),
                    )
                })
            }
            Mode::Smtp => {
                if sender.is_empty() {
                    return None;
                }
                let Ok(address) = Directory::parse_address(sender) else {
                    return None;
                };
                match self.ctx.directory.resolve_address(&address).await {
                    Ok(resolution)
                        if !matches!(resolution.outcome, Outcome::Reject(Rejection::NotHosted)) =>
                    {
                        Some(Reply::new(
                            553,
                            format!(
                                "5.7.1 <{sender}>: Sender address rejected: a local domain needs authentication; use submission (port 587)"
                            ),
                        ))
                    }
                    Ok(_) => None,
                    Err(err) => Some(reply_for(&SessionError::Directory(err))),
                }
            }
        }
    }

    async fn rcpt(&mut self, path: PathCommand) -> Reply {
        let reply = self.decide_recipient(path.clone()).await;
        if reply.is_error() {
            let mut event = Event::now(Kind::Rejected)
                .recipient(&path.address)
                .reason(&mailstead_events::reply_reason(
                    reply.code,
                    &reply.lines.join(" "),
                ))
                .client(self.peer.address())
                .service(self.ctx.mode.metric().name());
            if let Some(sender) = &self.mail_from {
                event = event.sender(sender);
            }
            mailstead_events::record(event);
            info!(
                peer = %self.peer.description,
                from = %LogSafe(self.mail_from.as_deref().unwrap_or("")),
                to = %LogSafe(&path.address),
                code = reply.code,
                reason = %LogSafe(&reply.lines.join(" ")),
                "recipient refused"
            );
        }
        reply
    }

    async fn decide_recipient(&mut self, path: PathCommand) -> Reply {
        if self.mail_from.is_none() {
            return Reply::new(503, "5.5.1 Error: need MAIL command");
        }
        let dsn = self.ctx.queue.is_some() && self.ctx.mode != Mode::Lmtp;
        let (mut notify, mut orcpt) = (None, None);
        for (key, value) in &path.params {
            match (key.as_str(), value.as_deref()) {
                ("NOTIFY", Some(value)) if dsn => match submission::parse_notify(value) {
                    Some(parsed) => notify = Some(parsed),
                    None => return Reply::new(501, "5.5.4 Bad NOTIFY parameter"),
                },
                ("ORCPT", Some(value)) if dsn => match submission::parse_orcpt(value) {
                    Some(parsed) => orcpt = Some(parsed),
                    None => return Reply::new(501, "5.5.4 Bad ORCPT parameter"),
                },
                _ => return Reply::new(555, format!("5.5.4 Unsupported option: {key}")),
            }
        }
        if self.recipients.len() >= self.ctx.limits.max_recipients {
            self.overshoot += 1;
            return Reply::new(452, "4.5.3 Error: too many recipients");
        }
        let mut written = path.address.clone();
        // RFC 5321 §4.5.1: a bare <postmaster> must work.
        if written.eq_ignore_ascii_case("postmaster") {
            match self.postmaster().await {
                Some(postmaster) => written = postmaster,
                None => {
                    return Reply::new(
                        550,
                        "5.1.1 <postmaster>: Recipient address rejected: no postmaster configured",
                    );
                }
            }
        }
        // Postfix's reject_non_fqdn_recipient.
        if self.ctx.limits.reject_non_fqdn_recipient && !fully_qualified(&written) {
            return Reply::new(
                504,
                format!(
                    "5.5.2 <{}>: Recipient address rejected: need fully-qualified address",
                    path.address
                ),
            );
        }
        let address = match Directory::parse_address(&written) {
            Ok(address) => address,
            Err(_) => {
                return Reply::new(
                    501,
                    format!("5.1.3 <{}>: Bad recipient address syntax", path.address),
                );
            }
        };
        let resolution = match self.ctx.directory.resolve_address(&address).await {
            Ok(resolution) => resolution,
            Err(err) => return reply_for(&SessionError::Directory(err)),
        };
        let shown = &path.address;
        let mut locals = Vec::new();
        let mut externals = Vec::new();
        match &resolution.outcome {
            // Submission relays for its users: an address elsewhere goes to the queue.
            Outcome::Reject(Rejection::NotHosted)
                if self.ctx.mode == Mode::Submission && self.ctx.queue.is_some() =>
            {
                externals.push(address.to_string());
            }
            Outcome::Reject(rejection) => {
                return match rejection {
                    Rejection::NotHosted => {
                        Reply::new(554, format!("5.7.1 <{shown}>: Relay access denied"))
                    }
                    Rejection::UnknownUser
                    | Rejection::MailboxInactive
                    | Rejection::AliasInactive
                    | Rejection::NoDeliverableRecipients => Reply::new(
                        550,
                        format!("5.1.1 <{shown}>: Recipient address rejected: User unknown"),
                    ),
                    Rejection::SendOnly => Reply::new(
                        554,
                        format!("5.7.1 <{shown}>: Recipient address rejected: Access denied"),
                    ),
                    Rejection::DomainInactive => Reply::new(
                        550,
                        format!("5.1.2 <{shown}>: Recipient address rejected: Domain not found"),
                    ),
                    Rejection::ExpansionLimit => Reply::new(
                        451,
                        format!("4.3.0 <{shown}>: Temporary lookup failure: alias expansion limit"),
                    ),
                };
            }
            Outcome::Deliver(recipients) => {
                for recipient in recipients {
                    match recipient {
                        Recipient::Local(local) => locals.push(local.clone()),
                        Recipient::External { address } if self.ctx.queue.is_some() => {
                            externals.push(address.to_string());
                        }
                        // Never accept what cannot be delivered: no queue on this listener.
                        Recipient::External { .. } => {
                            return Reply::new(
                                451,
                                format!("4.3.0 <{shown}>: remote recipients not accepted here"),
                            );
                        }
                    }
                }
            }
        }
        // Dovecot's lmtp_rcpt_check_quota: a mailbox that cannot take the message is refused
        // now, not bounced later. Only a recipient that is one mailbox (an alias's other
        // members must still get it), and only a clear "over quota": delivery decides the rest.
        if let ([local], []) = (locals.as_slice(), externals.as_slice())
            && let Err(err @ StoreError::OverQuota { .. }) = self
                .ctx
                .store
                .check_quota(
                    &local.location.maildir,
                    QuotaLimit::bytes(local.quota.bytes),
                    self.declared_size,
                )
                .await
        {
            let reply = self.delivery_reply(err);
            let text = reply.lines.join(" ");
            return Reply::new(reply.code, format!("{text} <{shown}>"));
        }
        self.recipients.push(Accepted {
            address: path.address.clone(),
            locals,
            externals,
            notify,
            orcpt,
        });
        Reply::new(250, "2.1.5 Ok")
    }

    /// The address a bare `<postmaster>` means.
    async fn postmaster(&self) -> Option<String> {
        if let Some(configured) = &self.ctx.policy.postmaster {
            return Some(configured.clone());
        }
        let domains = self.ctx.directory.list_domains().await.ok()?;
        let first = domains
            .into_iter()
            .filter(|domain| domain.active)
            .min_by_key(|domain| domain.id)?;
        Some(format!("postmaster@{}", first.domain))
    }

    /// A reply refusing DATA/BDAT before any body is read, or `None` when the transaction can
    /// take a body.
    fn body_precondition(&self) -> Option<Reply> {
        if self.mail_from.is_none() {
            return Some(Reply::new(503, "5.5.1 Error: need MAIL command"));
        }
        if self.recipients.is_empty() {
            return Some(Reply::new(554, "5.5.1 Error: no valid recipients"));
        }
        None
    }

    /// The Received: header, written before the body. (Return-Path: is written into each
    /// local copy at delivery, never into what is relayed.)
    fn trace_headers(&self, queue_id: &str, chunking: bool) -> String {
        let helo = self.helo.as_deref().unwrap_or("unknown");
        let ip = match self.peer.ip {
            Some(ip) => format!("[{ip}]"),
            None => "local".to_string(),
        };
        // RFC 3848's names; "A" for an authenticated client.
        let protocol = match (self.ctx.mode, self.tls.is_some(), self.login.is_some()) {
            (Mode::Lmtp, _, _) => "LMTP",
            (_, true, true) => "ESMTPSA",
            (_, false, true) => "ESMTPA",
            (_, true, false) => "ESMTPS",
            (_, false, false) if self.extended || chunking => "ESMTP",
            (_, false, false) => "SMTP",
        };
        let tls = match &self.tls {
            Some(tls) => format!("\r\n\t({tls})"),
            None => String::new(),
        };
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let helo: String = helo.chars().filter(|c| !c.is_control()).collect();
        format!(
            "Received: from {helo} ({ip}){tls}\r\n\tby {} (Mailstead) with {protocol} id {queue_id};\r\n\t{date}\r\n",
            self.ctx.hostname
        )
    }

    async fn data(&mut self, conn: &mut Connection) -> Result<Next, SessionError> {
        if self.chunks.is_some() {
            return Ok(self.send(
                conn,
                Reply::new(503, "5.5.1 Error: DATA during BDAT transaction"),
            ));
        }
        if let Some(reply) = self.body_precondition() {
            return Ok(self.send(conn, reply));
        }
        let queue_id = mailstead_queue::new_id();
        let mut writer = match self.ctx.store.begin().await {
            Ok(writer) => Some(writer),
            Err(err) => return Ok(self.send(conn, reply_for(&SessionError::Store(err)))),
        };
        let mut failure: Option<SessionError> = None;
        let headers = self.trace_headers(&queue_id, false);
        if let Some(open) = writer.as_mut()
            && let Err(err) = open.write_all(headers.as_bytes()).await
        {
            failure = Some(err.into());
            writer = None;
        }
        conn.queue(&Reply::new(354, "End data with <CR><LF>.<CR><LF>").to_wire());
        let mut decoder = DataDecoder::new();
        let mut size: u64 = 0;
        let mut oversize = false;
        let mut decoded = Vec::with_capacity(8192);
        loop {
            if !conn.has_buffered_input() {
                match tokio::time::timeout(self.ctx.limits.data_timeout, conn.fill()).await {
                    Err(_elapsed) => return Err(SessionError::Timeout),
                    // The spool file goes with the writer.
                    Ok(Ok(0)) => return Ok(Next::Close),
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return Err(err.into()),
                }
            }
            decoded.clear();
            let (consumed, ended) = decoder.feed(conn.buffered(), &mut decoded);
            conn.consume(consumed);
            size = size.saturating_add(decoded.len() as u64);
            if size > self.ctx.limits.max_message_size {
                oversize = true;
                writer = None;
            }
            if decoder.bare_line_ending {
                writer = None;
            }
            if let Some(open) = writer.as_mut()
                && let Err(err) = open.write_all(&decoded).await
            {
                failure = Some(err.into());
                writer = None;
            }
            if ended {
                break;
            }
        }
        if decoder.bare_line_ending {
            self.reset_transaction();
            return Ok(self.send(conn, Reply::new(550, "5.5.2 Error: bare <LF> received")));
        }
        if oversize {
            self.reset_transaction();
            return Ok(self.send(conn, Reply::new(552, "5.3.4 Error: message file too big")));
        }
        self.finish_message(conn, writer, failure, &queue_id).await
    }

    async fn bdat(
        &mut self,
        conn: &mut Connection,
        size: u64,
        last: bool,
    ) -> Result<Next, SessionError> {
        let refusal = match &self.chunks {
            Some(_) => None,
            None => self.body_precondition(),
        };
        if self.chunks.is_none() && refusal.is_none() {
            let queue_id = mailstead_queue::new_id();
            let headers = self.trace_headers(&queue_id, true);
            let (writer, failure) = match self.ctx.store.begin().await {
                Ok(mut writer) => match writer.write_all(headers.as_bytes()).await {
                    Ok(()) => (Some(writer), None),
                    Err(err) => {
                        warn!(cause = %err, "store failure");
                        (None, Some(err))
                    }
                },
                Err(err) => {
                    warn!(cause = %err, "store failure");
                    (None, Some(err))
                }
            };
            self.chunks = Some(Chunks {
                writer,
                failure,
                size: 0,
                queue_id,
            });
        }
        // The chunk is read whatever happens: its bytes are not commands.
        let mut remaining = size;
        let mut oversize = false;
        while remaining > 0 {
            if !conn.has_buffered_input() {
                match tokio::time::timeout(self.ctx.limits.data_timeout, conn.fill()).await {
                    Err(_elapsed) => return Err(SessionError::Timeout),
                    Ok(Ok(0)) => return Ok(Next::Close),
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return Err(err.into()),
                }
            }
            let available = conn
                .buffered()
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            if let (None, Some(chunks)) = (&refusal, self.chunks.as_mut()) {
                chunks.size = chunks.size.saturating_add(available as u64);
                if chunks.size > self.ctx.limits.max_message_size {
                    oversize = true;
                    chunks.writer = None;
                }
                if let Some(writer) = chunks.writer.as_mut()
                    && let Err(err) = writer.write_all(&conn.buffered()[..available]).await
                {
                    warn!(cause = %err, "store failure");
                    chunks.writer = None;
                    chunks.failure = Some(err);
                }
            }
            conn.consume(available);
            remaining -= available as u64;
        }
        if let Some(reply) = refusal {
            return Ok(self.send(conn, reply));
        }
        if oversize {
            self.reset_transaction();
            return Ok(self.send(conn, Reply::new(552, "5.3.4 Error: message file too big")));
        }
        if !last {
            return Ok(self.send(
                conn,
                Reply::new(250, format!("2.0.0 Ok: {size} bytes received")),
            ));
        }
        let Some(chunks) = self.chunks.take() else {
            return Ok(self.send(conn, Reply::new(503, "5.5.1 Error: no BDAT transaction")));
        };
        let failure = match (&chunks.writer, chunks.failure) {
            (Some(_), _) => None,
            (None, Some(err)) => Some(SessionError::Store(err)),
            (None, None) => Some(SessionError::Io(std::io::Error::other(
                "spool write failed",
            ))),
        };
        self.finish_message(conn, chunks.writer, failure, &chunks.queue_id)
            .await
    }

    /// Spools the message, delivers it to every local mailbox and hands the rest (remote
    /// recipients, mailboxes that failed while others took it) to the queue, then replies:
    /// one reply (SMTP) or one per accepted recipient (LMTP), only after every delivery
    /// returned and the queue has the message on disk.
    async fn finish_message(
        &mut self,
        conn: &mut Connection,
        writer: Option<MessageWriter>,
        failure: Option<SessionError>,
        queue_id: &str,
    ) -> Result<Next, SessionError> {
        let recipients = std::mem::take(&mut self.recipients);
        let sender = self.mail_from.take().unwrap_or_default();
        let (envid, ret) = (self.envid.take(), self.ret.take());
        self.chunks = None;
        let spooled = match (writer, failure) {
            (Some(writer), None) => writer.finish().await.map_err(SessionError::Store),
            (_, Some(err)) => Err(err),
            (None, None) => Err(SessionError::Io(std::io::Error::other(
                "spool write failed",
            ))),
        };
        let spooled = match spooled {
            Ok(spooled) => spooled,
            Err(err) => {
                let reply = reply_for(&err);
                let mut next = Next::Continue;
                let count = if self.ctx.mode == Mode::Lmtp {
                    recipients.len()
                } else {
                    1
                };
                for _ in 0..count {
                    next = self.send(conn, reply.clone());
                }
                return Ok(next);
            }
        };
        let added = if self.ctx.mode == Mode::Submission {
            match self.check_submitted(&spooled, queue_id).await {
                Ok(added) => added,
                Err(reply) => return Ok(self.send(conn, reply)),
            }
        } else {
            String::new()
        };
        // Each mailbox gets the message once, however many recipients lead to it.
        let mut outcomes: HashMap<PathBuf, Result<(), Reply>> = HashMap::new();
        for recipient in &recipients {
            for local in &recipient.locals {
                let maildir = local.location.maildir.clone();
                if outcomes.contains_key(&maildir) {
                    continue;
                }
                let request = mailstead_queue::LocalRequest {
                    queue_id,
                    sender: &sender,
                    recipient: local,
                    original_to: Some(&recipient.address),
                    added: &added,
                    lmtp: self.ctx.mode == Mode::Lmtp,
                };
                let outcome = match self.ctx.local.deliver(&spooled, &request).await {
                    Ok(LocalOutcome::Delivered) => Ok(()),
                    Ok(LocalOutcome::Refused(reason)) => {
                        let reason: String = reason
                            .chars()
                            .map(|c| if c.is_control() { ' ' } else { c })
                            .take(200)
                            .collect();
                        Err(Reply::new(550, format!("5.7.1 {reason}")))
                    }
                    Err(err) => {
                        warn!(queue_id, mailbox = %local.address, cause = %err, "delivery failed");
                        Err(self.delivery_reply(err))
                    }
                };
                outcomes.insert(maildir, outcome);
            }
        }
        let per_recipient: Vec<Result<(), Reply>> = recipients
            .iter()
            .map(|recipient| {
                let mut worst: Result<(), Reply> = Ok(());
                for local in &recipient.locals {
                    if let Some(Err(reply)) = outcomes.get(&local.location.maildir) {
                        // A temporary failure outranks a permanent one: retrying may work.
                        match &worst {
                            Err(current) if current.code < 500 => {}
                            _ => worst = Err(reply.clone()),
                        }
                    }
                }
                worst
            })
            .collect();
        let any_delivered = outcomes.values().any(Result::is_ok);
        let any_external = recipients
            .iter()
            .any(|recipient| !recipient.externals.is_empty());
        let any_failed = outcomes.values().any(Result::is_err);
        let mut queued = 0;
        if let Some(queue) = &self.ctx.queue
            && self.ctx.mode != Mode::Lmtp
            && (any_external || (any_delivered && any_failed))
        {
            let entries = queue_entries(&recipients, &outcomes);
            queued = entries.len();
            let dkim_domain = (self.ctx.mode == Mode::Submission)
                .then(|| {
                    sender
                        .rsplit_once('@')
                        .map(|(_, domain)| domain.to_ascii_lowercase())
                })
                .flatten();
            let message = mailstead_queue::NewMessage {
                id: Some(queue_id.to_owned()),
                sender: sender.clone(),
                envid,
                ret,
                prefix: added.clone(),
                submitted_by: self.login.clone(),
                dkim_domain,
                recipients: entries,
            };
            if let Err(err) = queue.enqueue(&spooled, message).await {
                // Mailboxes that have it get it again when the client retries: a duplicate,
                // never a loss.
                warn!(queue_id, cause = %err, "cannot queue the message");
                let reply = Reply::new(451, "4.3.0 Error: queue file write error, try again later");
                return Ok(self.send(conn, reply));
            }
        }
        let spooled_size = spooled.vsize();
        drop(spooled);
        if self.ctx.mode != Mode::Lmtp && queued == 0 && any_delivered && any_failed {
            // No queue on this listener to retry or bounce them: say so in the log.
            for (recipient, outcome) in recipients.iter().zip(&per_recipient) {
                if let Err(reply) = outcome {
                    warn!(
                        queue_id,
                        recipient = %LogSafe(&recipient.address),
                        reason = %LogSafe(&reply.lines.join(" ")),
                        code = reply.code,
                        "message accepted but not delivered to this recipient"
                    );
                }
            }
        }
        info!(
            queue_id,
            from = %LogSafe(&sender),
            login = %LogSafe(self.login.as_deref().unwrap_or("")),
            peer = %self.peer.description,
            recipients = recipients.len(),
            delivered = per_recipient.iter().filter(|outcome| outcome.is_ok()).count(),
            queued,
            "message received"
        );
        if any_delivered || queued > 0 {
            mailstead_metrics::message_received(self.ctx.mode.metric());
            mailstead_events::record(
                Event::now(Kind::Received)
                    .sender(&sender)
                    .recipients(recipients.len())
                    .size(spooled_size)
                    .client(self.peer.address())
                    .service(self.ctx.mode.metric().name()),
            );
        }
        match self.ctx.mode {
            Mode::Lmtp => {
                let mut next = Next::Continue;
                for (recipient, outcome) in recipients.iter().zip(per_recipient) {
                    let reply = match outcome {
                        Ok(()) => Reply::new(
                            250,
                            format!("2.0.0 <{}> {queue_id} Saved", recipient.address),
                        ),
                        Err(reply) => Reply {
                            code: reply.code,
                            lines: vec![format!(
                                "{} <{}>",
                                reply.lines.join(" "),
                                recipient.address
                            )],
                        },
                    };
                    next = self.send(conn, reply);
                }
                Ok(next)
            }
            // One reply covers every recipient: the mailboxes that failed are the queue's now
            // (retried, or bounced), so the client must not retry (duplicates) or bounce.
            Mode::Smtp | Mode::Submission if any_delivered || queued > 0 => Ok(self.send(
                conn,
                Reply::new(250, format!("2.0.0 Ok: queued as {queue_id}")),
            )),
            Mode::Smtp | Mode::Submission => {
                let temporary = per_recipient
                    .iter()
                    .find(|outcome| matches!(outcome, Err(reply) if reply.code < 500));
                let permanent = per_recipient.iter().find(|outcome| outcome.is_err());
                let reply = match (temporary, permanent) {
                    (Some(Err(reply)), _) | (None, Some(Err(reply))) => reply.clone(),
                    _ => Reply::new(250, format!("2.0.0 Ok: queued as {queue_id}")),
                };
                Ok(self.send(conn, reply))
            }
        }
    }

    /// Submission's rules for the message itself: every `From:` address must be one the
    /// login may send as (`[submission] check_from_header`). Returns the `Message-ID:` and
    /// `Date:` lines to add when missing.
    async fn check_submitted(
        &self,
        spooled: &mailstead_store::SpooledMessage,
        queue_id: &str,
    ) -> Result<String, Reply> {
        let header = spooled
            .header_block(self.ctx.limits.max_line.max(64 * 1024))
            .await
            .map_err(|err| reply_for(&SessionError::Store(err)))?;
        let facts = submission::header_facts(&header);
        if self.ctx.policy.check_from_header {
            let login = self.login.as_deref().unwrap_or_default();
            for from in &facts.from {
                let owned = self
                    .ctx
                    .directory
                    .may_send_as(login, from)
                    .await
                    .map_err(|err| reply_for(&SessionError::Directory(err)))?;
                if !owned {
                    info!(
                        peer = %self.peer.description,
                        login = %LogSafe(login),
                        header_from = %LogSafe(from),
                        "message refused: From: header not owned by the login"
                    );
                    return Err(Reply::new(
                        553,
                        format!("5.7.1 From: <{from}> is not an address of user {login}"),
                    ));
                }
            }
        }
        Ok(submission::missing_headers(
            &facts,
            queue_id,
            &self.ctx.hostname,
        ))
    }

    async fn auth(
        &mut self,
        conn: &mut Connection,
        mechanism: &str,
        initial: Option<String>,
    ) -> Result<Next, SessionError> {
        let reply = self.authenticate(conn, mechanism, initial).await?;
        Ok(self.send(conn, reply))
    }

    async fn authenticate(
        &mut self,
        conn: &mut Connection,
        mechanism: &str,
        initial: Option<String>,
    ) -> Result<Reply, SessionError> {
        let Some(authenticator) = self
            .ctx
            .auth
            .clone()
            .filter(|_| self.ctx.mode == Mode::Submission)
        else {
            return Ok(Reply::new(502, "5.5.1 Error: authentication not enabled"));
        };
        if self.tls.is_none() {
            return Ok(Reply::new(
                538,
                "5.7.11 Encryption required for requested authentication mechanism",
            ));
        }
        if self.login.is_some() {
            return Ok(Reply::new(503, "5.5.1 Error: already authenticated"));
        }
        if self.mail_from.is_some() {
            return Ok(Reply::new(503, "5.5.1 Error: MAIL transaction in progress"));
        }
        let initial = match initial.as_deref().map(submission::decode_response) {
            None => None,
            Some(Ok(submission::SaslResponse::Data(data))) => Some(data),
            Some(Ok(submission::SaslResponse::Cancelled)) => {
                return Ok(Reply::new(501, "5.7.0 Authentication aborted"));
            }
            Some(Err(reply)) => return Ok(reply),
        };
        let Some(mechanism) = Mechanism::from_name(mechanism) else {
            return Ok(Reply::new(504, "5.5.4 Unrecognized authentication type"));
        };
        let (mut exchange, mut step) = Exchange::start(mechanism, initial);
        let (login, password) = loop {
            step = match step {
                Step::Challenge(challenge) => match self.sasl_prompt(conn, challenge).await? {
                    Ok(response) => exchange.respond(response),
                    Err(reply) => return Ok(reply),
                },
                Step::Credentials { login, password } => break (login, password),
                Step::Refused(SaslError::MalformedPlain) => {
                    return Ok(Reply::new(501, "5.5.2 Invalid PLAIN response"));
                }
                Step::Refused(SaslError::OtherIdentity) => {
                    return Ok(Reply::new(535, "5.7.8 Authorization identity not allowed"));
                }
                Step::Refused(SaslError::InvalidUserName) => {
                    return Ok(Reply::new(501, "5.5.2 Invalid user name"));
                }
            };
        };
        let client = self.peer.address();
        let attempt = mailstead_auth::LoginAttempt {
            service: mailstead_auth::Service::Submission,
            client,
            login: &login,
            password: &password,
        };
        match authenticator.log_in(attempt).await {
            Ok(mailstead_auth::AuthOutcome::Accepted(account)) => {
                info!(peer = %self.peer.description, login = %LogSafe(&login), "authenticated");
                self.login = Some(account.address.to_string());
                Ok(Reply::new(235, "2.7.0 Authentication successful"))
            }
            Ok(mailstead_auth::AuthOutcome::Refused(refusal)) if refusal.is_temporary() => {
                Ok(Reply::new(454, "4.7.0 Temporary authentication failure"))
            }
            // The auth service logged the reason and already made the client wait.
            Ok(mailstead_auth::AuthOutcome::Refused(_)) => {
                Ok(Reply::new(535, "5.7.8 Error: authentication failed"))
            }
            Err(err) => {
                warn!(cause = %err, "authentication failure");
                Ok(Reply::new(454, "4.7.0 Temporary authentication failure"))
            }
        }
    }

    /// Sends a `334` challenge and reads the client's answer (bounded like a command line).
    async fn sasl_prompt(
        &mut self,
        conn: &mut Connection,
        challenge: &str,
    ) -> Result<Result<Vec<u8>, Reply>, SessionError> {
        conn.queue(&Reply::new(334, challenge).to_wire());
        let line = tokio::time::timeout(self.ctx.limits.command_timeout, conn.read_line())
            .await
            .map_err(|_| SessionError::Timeout)??;
        let text = match line {
            Line::Text(line) => line,
            Line::TooLong => {
                return Ok(Err(Reply::new(
                    500,
                    "5.5.6 Authentication exchange line is too long",
                )));
            }
            Line::Eof => {
                return Err(SessionError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        };
        let Ok(text) = std::str::from_utf8(&text) else {
            return Ok(Err(Reply::new(501, "5.5.2 Cannot decode response")));
        };
        Ok(match submission::decode_response(text) {
            Ok(submission::SaslResponse::Data(data)) => Ok(data),
            Ok(submission::SaslResponse::Cancelled) => {
                Err(Reply::new(501, "5.7.0 Authentication aborted"))
            }
            Err(reply) => Err(reply),
        })
    }

    async fn start_tls(&mut self, conn: &mut Connection) -> Result<Next, SessionError> {
        let config = match (&self.ctx.tls, &self.tls, self.ctx.mode) {
            (_, Some(_), _) => {
                return Ok(self.send(conn, Reply::new(554, "5.5.1 Error: TLS already active")));
            }
            (Some(config), None, Mode::Smtp | Mode::Submission) => config.get(),
            _ => return Ok(self.send(conn, Reply::new(454, "4.7.0 TLS not available"))),
        };
        if conn.has_buffered_input() {
            // Commands sent with STARTTLS would be taken as protected by TLS (CVE-2011-0411).
            conn.queue(
                &Reply::new(
                    554,
                    "5.5.1 Error: improper command pipelining after STARTTLS",
                )
                .to_wire(),
            );
            return Ok(Next::Close);
        }
        conn.queue(&Reply::new(220, "2.0.0 Ready to start TLS").to_wire());
        let upgraded =
            tokio::time::timeout(self.ctx.limits.command_timeout, conn.start_tls(config)).await;
        match upgraded {
            Ok(Ok(description)) => {
                // RFC 3207 §4.2: forget everything learned before TLS.
                self.reset_transaction();
                self.helo = None;
                self.extended = false;
                self.tls = Some(description);
                Ok(Next::Continue)
            }
            Ok(Err(err)) => {
                info!(peer = %self.peer.description, cause = %err, "TLS handshake failed");
                Ok(Next::Close)
            }
            Err(_elapsed) => Ok(Next::Close),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_io(kind: std::io::ErrorKind) -> SessionError {
        SessionError::Store(StoreError::Io {
            path: PathBuf::from("/spool/tmp/x"),
            source: std::io::Error::from(kind),
        })
    }

    #[test]
    fn out_of_space_is_452_4_3_1_and_other_io_is_451() {
        for kind in [
            std::io::ErrorKind::StorageFull,
            std::io::ErrorKind::QuotaExceeded,
        ] {
            let reply = reply_for(&store_io(kind));
            assert_eq!(reply.code, 452);
            assert_eq!(reply.lines, ["4.3.1 Insufficient system storage"]);
        }
        let reply = reply_for(&store_io(std::io::ErrorKind::PermissionDenied));
        assert_eq!(reply.code, 451);
        assert_eq!(timeout_reply("mx.example").code, 421);
    }
}
