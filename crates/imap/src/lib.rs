//! Mailstead's IMAP4rev1 server (RFC 3501 and the extensions clients rely on), and IMAP4rev2
//! (RFC 9051) for clients that enable it, reading and changing the store's Maildir folders
//! for the accounts of the directory.
//!
//! # SUMMARY
//!
//! [`serve`] accepts connections (plain with STARTTLS on 143, implicit TLS on 993) and runs
//! one session each. A session logs in against the [`Directory`], opens the account's folders
//! through the store's [`MailStore`] (which shares one in-memory state per folder between all
//! sessions and the SMTP/LMTP delivery), and answers commands. Changes made by other sessions
//! or by delivery reach a session as untagged EXISTS/EXPUNGE/FETCH responses at the points the
//! RFC allows, and wake an IDLE at once.
//!
//! # STANDARDS
//!
//! RFC 3501 (IMAP4rev1), 2177 (IDLE), 4315 (UIDPLUS), 6851 (MOVE), 7888 (LITERAL+), 4959
//! (SASL-IR), 5161 (ENABLE), 2971 (ID), 2342 (NAMESPACE), 3691 (UNSELECT), 3348 (CHILDREN),
//! 6154 (SPECIAL-USE), 5258 (LIST-EXTENDED, the parts clients send), 5819 (LIST-STATUS), 4731
//! (ESEARCH), 9208 (QUOTA), 7162 (CONDSTORE, QRESYNC), 3516 (BINARY), 7889 (APPENDLIMIT),
//! 4616 (PLAIN), 9051 (IMAP4rev2, after `ENABLE IMAP4rev2`; `cmd/rev2.rs` lists where the
//! answers differ from rev1: SELECT's LIST, NFC names with OLDNAME, quoted UTF-8 names, ...), 6855 (UTF8=ACCEPT), 4978 (COMPRESS=DEFLATE), 5465 (NOTIFY; the
//! events supported are listed in `cmd/notify.rs`).
//! Also 3502 (MULTIAPPEND), 4469 (CATENATE, with RFC 5092 URLs to the account's own
//! messages) and 5550 (URL-PARTIAL), 8508 (REPLACE), 8514 (SAVEDATE), 8474 (OBJECTID;
//! THREADID is NIL) and 8970 (PREVIEW).
//! And 5256 (SORT, THREAD=ORDEREDSUBJECT, THREAD=REFERENCES), 5957 (SORT=DISPLAY),
//! 5267 (ESORT, with PARTIAL of its section 4.4), 5051 (i;unicode-casemap, as SORT compares),
//! draft-ietf-morg-inthread (THREAD=REFS, as Dovecot implements it).
//! And 5032 (WITHIN), 5182 (SEARCHRES), 5267 (CONTEXT=SEARCH, and CONTEXT=SORT with positions in the sort order).
//! And 4314 (ACL, RIGHTS=texk, when configured; `cmd/acl.rs`) with 2342's other users'
//! namespace (`Shared/<owner>/...`, `cmd/shared.rs`).
//!
//! # SECURITY
//!
//! Everything read from the socket is untrusted: command lines and literals are bounded by the
//! framer, every read has a timeout, connections are bounded per listener, per client address
//! and per user, logins go to the login service (`mailstead-auth`), which delays and counts
//! failures across connections. No password is accepted before TLS
//! unless the client is on loopback and the configuration allows it. Mailbox names are checked
//! by the store before they reach a path.
//!
//! After login a literal (APPEND's message) is at most [`Limits::max_literal`]
//! (`[imap] max_append_size`, advertised as `APPENDLIMIT`); an APPEND message over 64 KiB
//! (or a CATENATE TEXT part: a CATENATE is built in the spool) goes to the store's spool as
//! it arrives, so memory per connection stays one read whatever the limit. A synchronizing one over it gets
//! `NO [TOOBIG]` without a continuation, a LITERAL+ one is read and dropped (never buffered,
//! up to 1 GiB; beyond, `* BYE`) and then refused `NO [TOOBIG]`.
//!
//! Before login, lines, literals and AUTHENTICATE responses are at most
//! [`Limits::max_input_before_login`] (8 KiB; a synchronizing literal over it gets
//! `NO [TOOBIG]` without a continuation, a LITERAL+ one `* BYE`), and the connection is closed
//! [`Limits::login_timeout`] after it started, whatever the client sends meanwhile.
//! Under COMPRESS=DEFLATE input is inflated into the framer's buffer no faster than a plain
//! read fills it, so compressed input meets the same line and literal limits; a compressed
//! idle connection keeps the inflater's 32 KiB window (49 KiB in all, measured), the deflater is
//! made per burst of responses and dropped while the session waits. NOTIFY watches at most
//! 100 mailboxes per session.
//! What one command can cost is bounded in the parser: 1,000 search keys nested 32 deep,
//! 256 items in a list, LIST patterns of 1 KiB, sequence sets held as at most 16,384 merged
//! ranges however they are written (`1:*,1:*,...` is one range). A session keeps at most 8
//! searches updated (`NO [NOUPDATE]` beyond), each matched only against the messages that
//! changed, unless its criteria name sequence numbers, `*` or WITHIN's clock. CPU-heavy work (matching
//! SEARCH keys against messages, MIME parsing for FETCH, LIST pattern matching, which takes at
//! most pattern x name steps, never backtracking; SORT and THREAD, whose reply chains are
//! walked with loops, never recursion, and whose loop checks stop after 4,096 ancestors) runs in a pool of blocking threads bounded
//! to two per core, so that it never delays another session's I/O.
//!
//! # Layout
//!
//! - `lib.rs`: `ImapContext`, `Limits`, `serve`.
//! - `server.rs`: IMAP for the shared accept loop of `mailstead_net` (caps, eviction of idle
//!   connections, implicit TLS, shutdown and draining): the session and the `* BYE` of a refusal.
//! - `connection.rs`: all bytes: framing, buffered responses, STARTTLS.
//! - `compress.rs`: COMPRESS=DEFLATE's deflate and inflate between the socket and the framer.
//! - `cpu.rs`: the bounded pool where CPU-heavy command work runs, off the I/O threads.
//! - `session.rs`: the state machine, the selected folder's view and its untagged updates;
//!   commands other than IDLE run boxed, so a connection waiting for the client stays small.
//! - `uids.rs`: the view's UIDs as runs of consecutive UIDs.
//! - `cmd/`: one file per group of commands (`append.rs`: APPEND, inline or streamed,
//!   MULTIAPPEND and REPLACE; `catenate.rs`: CATENATE's parts and URLs; `rev2.rs`: the
//!   IMAP4rev2 and UTF8=ACCEPT differences; `notify.rs`: NOTIFY, which wakes a session
//!   waiting for its next command; `sort.rs` and `thread.rs`: SORT and THREAD over SEARCH's
//!   matches, with what they compare kept in the folder's cache;
//!   `search_context.rs`: the saved search result `$` and the searches kept updated).
//! - `command.rs`: the commands as the parser hands them to the session.
//! - `framing.rs`: where a command ends (lines and literals) and the size limits.
//! - `parser.rs`: bytes of one command to a [`command::Tagged`].
//! - `utf7.rs`: modified UTF-7 mailbox names (RFC 3501 5.1.3).
//! - `wire.rs`: strings in responses (quoted, literal, NIL).
//! - `message/`: what FETCH and SEARCH read from a message (ENVELOPE, BODYSTRUCTURE,
//!   sections, text matching), on top of mail-parser; the whole message, its TEXT and
//!   their partials are streamed from the file a buffer at a time (`message/stream.rs`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mailstead_auth::AuthOptions;
pub use mailstead_auth::Authenticator;
use mailstead_directory::Directory;
use mailstead_net::ConnectionCounter;
pub use mailstead_net::{Connections, TlsConfig};
use mailstead_store::MailStore;
use tokio::net::TcpListener;

mod cmd;
pub mod command;
mod compress;
mod connection;
mod cpu;
pub mod framing;
pub mod message;
pub mod parser;
mod server;
mod session;
mod uids;
pub mod utf7;
pub mod wire;

/// Bounds on what one client may make the server do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line without its literals (Dovecot's `imap_max_line_length`, 64 KiB).
    pub max_line: usize,
    /// Largest literal, which bounds APPEND (`[imap] max_append_size`, advertised as
    /// `APPENDLIMIT`, RFC 7889); apart from SMTP's message size limit, since users save
    /// messages they already have.
    pub max_literal: usize,
    /// How long an authenticated client may stay silent (RFC 3501 5.4: at least 30 minutes).
    pub idle_timeout: Duration,
    /// How often IDLE looks at the folder when no inotify watch tells it of changes.
    pub idle_check_interval: Duration,
    /// Longest line and largest literal before login, AUTHENTICATE responses included
    /// (8 KiB, like Dovecot's pre-login buffers): an unauthenticated client cannot make the
    /// server hold more than a few times this.
    pub max_input_before_login: usize,
    /// How long a connection may stay unauthenticated, counted from its start whatever the
    /// client sends; then `* BYE`.
    pub login_timeout: Duration,
    /// Concurrent connections from one client address.
    pub max_connections_per_ip: usize,
    /// Concurrent logged-in sessions of one user.
    pub max_connections_per_user: usize,
    /// Failed logins after which the connection is closed. (How long each failure waits is
    /// the login service's penalty, counted across connections.)
    pub max_failed_logins: u32,
    /// Malformed or refused commands after which the connection is closed.
    pub max_bad_commands: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: 64 * 1024,
            max_literal: 50 * 1024 * 1024,
            idle_timeout: Duration::from_secs(30 * 60),
            idle_check_interval: Duration::from_secs(30),
            max_input_before_login: 8 * 1024,
            login_timeout: Duration::from_secs(60),
            max_connections_per_ip: 200,
            max_connections_per_user: 20,
            max_failed_logins: 3,
            max_bad_commands: 20,
        }
    }
}

/// Everything a session needs; shared by every session of every IMAP listener.
pub struct ImapContext {
    /// Whether a login is good: the one login service, shared with the other protocols.
    pub auth: Authenticator,
    /// The account behind a login.
    pub directory: Directory,
    /// The folders, shared with delivery so IDLE wakes on new mail.
    pub mail: MailStore,
    /// The name in the greeting.
    pub hostname: String,
    /// For STARTTLS and implicit TLS; replaceable while serving (certificate renewal).
    pub tls: Option<Arc<TlsConfig>>,
    pub limits: Limits,
    /// Allow LOGIN/AUTHENTICATE without TLS from 127.0.0.0/8 and ::1 (local tools, tests).
    pub login_on_loopback_without_tls: bool,
    /// Logged-in sessions per user, across listeners.
    user_sessions: ConnectionCounter<String>,
    /// Where CPU-heavy command work runs, off the I/O threads.
    pub(crate) cpu: cpu::CpuPool,
    /// The largest input buffer any session has had (see
    /// [`ImapContext::largest_input_buffer`]).
    pub(crate) largest_input: Arc<AtomicUsize>,
    /// Wakes a user's NOTIFY sessions when another session changes the mailbox list.
    pub(crate) account_changes: cmd::notify::AccountChanges,
    /// RFC 4314 ACLs in Dovecot's files; `None`: off, every user has every right on their
    /// own folders and the ACL commands are not offered.
    pub(crate) acls: Option<Arc<mailstead_store::acl::Acls>>,
    /// The shared namespace (`Shared/owner@domain/Folder`), when configured.
    pub(crate) shared: Option<Arc<SharedNamespace>>,
    /// The public namespace (`Public/Folder`), when configured.
    pub(crate) public: Option<Arc<PublicNamespace>>,
}

/// Folders every user may open, as `<prefix><folder>` (RFC 2342 "shared namespace"): a
/// Maildir tree outside any account, with rights from its `dovecot-acl` files only.
pub struct PublicNamespace {
    /// E.g. `Public/`; ends with the separator, `/`.
    pub prefix: String,
    /// The Maildir tree (its root is not a folder, as in Dovecot's public namespace).
    pub location: std::path::PathBuf,
    pub layout: mailstead_store::FolderLayout,
    /// The directory (`~/public`, `~` is the user's home) where each user's own `\Seen`
    /// flags of public folders are kept; `None`: `\Seen` is shared, as the other flags.
    pub private_index: Option<String>,
}

/// Other users' folders, as `<prefix><owner>/<folder>` (RFC 2342 "other users' namespace").
pub struct SharedNamespace {
    /// E.g. `Shared/`; ends with the separator, `/`.
    pub prefix: String,
    /// Who shared folders with whom, for LIST (also filled at start-up, see
    /// [`mailstead_store::acl::SharedIndex::record_owner`]).
    pub index: Arc<mailstead_store::acl::SharedIndex>,
}

impl ImapContext {
    pub fn new(
        directory: Directory,
        mail: MailStore,
        hostname: String,
        tls: Option<Arc<TlsConfig>>,
        limits: Limits,
        login_on_loopback_without_tls: bool,
    ) -> ImapContext {
        ImapContext {
            auth: Authenticator::new(directory.clone(), AuthOptions::default()),
            directory,
            mail,
            hostname,
            tls,
            limits,
            login_on_loopback_without_tls,
            user_sessions: ConnectionCounter::default(),
            cpu: cpu::CpuPool::for_this_machine(),
            largest_input: Arc::default(),
            account_changes: cmd::notify::AccountChanges::default(),
            acls: None,
            shared: None,
            public: None,
        }
    }

    /// The most memory any session's input buffer has held, in bytes: what a client can make
    /// a connection hold for what it sends (a large APPEND is streamed to disk, not held).
    pub fn largest_input_buffer(&self) -> usize {
        self.largest_input.load(Ordering::Relaxed)
    }
}

impl ImapContext {
    /// Uses `auth`, the process's one login service, so failures count across listeners and
    /// protocols (by default a context has its own).
    #[must_use]
    pub fn with_authenticator(mut self, auth: Authenticator) -> ImapContext {
        self.auth = auth;
        self
    }

    /// Turns ACLs on (the `ACL` capability and its commands; every command checks rights),
    /// with the global ACLs, if any, in `global`.
    #[must_use]
    pub fn with_acls(mut self, global: Option<mailstead_store::acl::GlobalAcl>) -> ImapContext {
        self.acls = Some(Arc::new(mailstead_store::acl::Acls::new(global)));
        self
    }

    /// Offers other users' folders as `<prefix><owner>/<folder>`, as their ACLs allow (ACLs
    /// are turned on if they are not).
    #[must_use]
    pub fn with_shared_namespace(mut self, shared: SharedNamespace) -> ImapContext {
        if self.acls.is_none() {
            self = self.with_acls(None);
        }
        self.shared = Some(Arc::new(shared));
        self
    }

    /// Offers the public namespace, as its ACL files allow (ACLs are turned on if they are
    /// not).
    #[must_use]
    pub fn with_public_namespace(mut self, public: PublicNamespace) -> ImapContext {
        if self.acls.is_none() {
            self = self.with_acls(None);
        }
        self.public = Some(Arc::new(public));
        self
    }
}

pub use mailstead_net::Security;

/// Serves IMAP on a bound listener until `shutdown` completes, then says `* BYE` to every
/// session (a command in progress finishes first) and waits for them to end. `connections`
/// is the process-wide registry every listener shares: its capacity bounds all listeners
/// together.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<ImapContext>,
    security: Security,
    connections: Connections,
    shutdown: impl Future,
) {
    server::run(listener, ctx, security, connections, shutdown).await;
}

/// Runs one plain session over any byte stream, as if accepted from `peer_ip`; for fuzzing and
/// tests that need no socket.
#[doc(hidden)]
pub async fn serve_stream<S>(stream: S, peer_ip: std::net::IpAddr, ctx: Arc<ImapContext>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    session::run(
        Box::new(stream),
        peer_ip,
        false,
        ctx,
        mailstead_net::ConnectionHandle::detached(),
    )
    .await;
}
