//! Inbound SMTP (the MX on port 25) and LMTP: one session state machine for both.
//!
//! # SUMMARY
//!
//! [`serve`] (TCP) and [`serve_unix`] (LMTP over a Unix socket) accept connections and run
//! one session each. Every `RCPT TO` is decided by the directory; after `DATA` (or the last
//! `BDAT` chunk) the message is spooled once by the store and delivered into every local
//! mailbox, fsync'd, before the `250` (SMTP) or the per-recipient replies (LMTP) are sent.
//! External recipients are refused with a temporary error until the outbound queue exists:
//! nothing is ever accepted and then dropped.
//!
//! # STANDARDS
//!
//! RFC 5321 (SMTP), RFC 2033 (LMTP), RFC 1870 (SIZE), RFC 2920 (PIPELINING), RFC 3030
//! (CHUNKING), RFC 3207 (STARTTLS), RFC 6531 (SMTPUTF8), RFC 2034 (ENHANCEDSTATUSCODES).
//!
//! # SECURITY
//!
//! Everything read from the socket is untrusted. Lines are bounded (`Limits::max_line`),
//! messages are bounded while streaming (`Limits::max_message_size`), every read has a
//! timeout, connections are bounded per process (the shared registry) and per client address. Only
//! `<CR><LF>.<CR><LF>` ends DATA; a bare CR or LF anywhere in DATA refuses the message
//! (SMTP smuggling, CVE-2023-51764). Plaintext pipelined after STARTTLS is discarded and the
//! connection closed. This crate builds no Maildir paths and issues no SQL: it asks the
//! `Directory` and hands messages to the `Store`.
//!
//! # Layout
//!
//! - `lib.rs`: `SmtpContext`, `Limits`, `Mode`, `serve`, `serve_unix`.
//! - `server.rs`: SMTP/LMTP for the shared accept loop of `mailstead_net` (caps, eviction
//!   of idle connections, shutdown and draining): the session and the `421` of a refusal.
//! - `connection.rs`: all bytes: bounded line reads, buffered replies, STARTTLS upgrade.
//! - `data.rs`: the DATA decoder (end marker, dot-unstuffing, bare CR/LF detection).
//! - `cmd/mod.rs`: the command parser (verbs, paths, parameters) and `Reply`.
//! - `session.rs`: the state machine, recipient decisions, delivery and `reply_for`.
//!
//! Command parsing is hand-written: the grammar needed here (a verb, one path, `KEY=VALUE`
//! parameters) is some 150 lines, and owning it lets the parser refuse NUL bytes, invalid
//! UTF-8 and unknown parameters with the exact replies this server sends. `smtp-proto` (fuzzed,
//! zero-copy) is the crate to weigh against it; it has not been evaluated in depth yet, so
//! moving to it stays open. The `smtp_session` fuzz target covers this parser.

#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mailstead_directory::Directory;
use mailstead_net::ConnectionHandle;
use mailstead_store::Store;
use tokio::net::{TcpListener, UnixListener};

mod cmd;
mod connection;
mod data;
mod server;
mod session;
mod submission;

/// Which protocol a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Inbound SMTP from other mail servers (port 25).
    Smtp,
    /// LMTP (RFC 2033) from a local MTA: `LHLO`, and one reply per recipient after DATA.
    Lmtp,
    /// Submission from mail clients (587 with STARTTLS, 465 with implicit TLS, RFC 6409): AUTH
    /// only over TLS, nothing without AUTH, a sender the login owns, any recipient.
    Submission,
}

impl Mode {
    fn metric(self) -> mailstead_metrics::Protocol {
        match self {
            Mode::Smtp => mailstead_metrics::Protocol::Smtp,
            Mode::Lmtp => mailstead_metrics::Protocol::Lmtp,
            Mode::Submission => mailstead_metrics::Protocol::Submission,
        }
    }
}

/// Bounds on what one client may make the server do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, in bytes as received (Postfix's `message_size_limit`).
    pub max_message_size: u64,
    /// Most recipients in one transaction; more get `452 4.5.3`.
    pub max_recipients: usize,
    /// Longest command line in bytes; longer ones get `500 5.5.2 line too long`.
    pub max_line: usize,
    /// How long to wait for a command.
    pub command_timeout: Duration,
    /// How long to wait for each piece of a message body.
    pub data_timeout: Duration,
    /// Concurrent connections from one client address (Postfix's anvil default is 50).
    pub max_connections_per_ip: usize,
    /// Errors (4xx/5xx replies) after which the session is closed with `421 4.7.0`
    /// (Postfix's `smtpd_hard_error_limit`, 20).
    pub max_errors: u32,
    /// Errors after which every further error reply is delayed by `error_sleep` (Postfix's
    /// `smtpd_soft_error_limit`, 10).
    pub soft_error_limit: u32,
    /// The tarpit delay (Postfix's `smtpd_error_sleep_time`, 1 s).
    pub error_sleep: Duration,
    /// Refuse `MAIL FROM` addresses whose domain is not fully qualified (Postfix's
    /// `reject_non_fqdn_sender`).
    pub reject_non_fqdn_sender: bool,
    /// Refuse `RCPT TO` addresses whose domain is not fully qualified (Postfix's
    /// `reject_non_fqdn_recipient`).
    pub reject_non_fqdn_recipient: bool,
    /// Answer a mailbox over quota with `452 4.2.2 Mailbox full` (try again later) instead of
    /// `552 5.2.2` (Dovecot's `quota_full_tempfail`).
    pub quota_full_tempfail: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message_size: 10_240_000,
            max_recipients: 1000,
            // 1000 is RFC 5321's text line limit; the slack allows long SMTPUTF8 paths with
            // parameters, as Postfix's `line_length_limit` of 2048 does.
            max_line: 2048,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(300),
            max_connections_per_ip: 50,
            max_errors: 20,
            soft_error_limit: 10,
            error_sleep: Duration::from_secs(1),
            reject_non_fqdn_sender: true,
            reject_non_fqdn_recipient: true,
            quota_full_tempfail: false,
        }
    }
}

/// Everything a session needs; shared by every session of one listener.
pub struct SmtpContext {
    /// Decides every recipient.
    pub directory: Directory,
    /// Spools and delivers every accepted message.
    pub store: Store,
    /// The name in the banner, EHLO reply and Received: header.
    pub hostname: String,
    /// Offered as STARTTLS when present; replaceable while serving (certificate renewal).
    pub tls: Option<Arc<TlsConfig>>,
    pub limits: Limits,
    pub mode: Mode,
    /// Takes what cannot be delivered at once (remote recipients, a mailbox failing for now).
    /// Without it remote recipients get `451` (LMTP from a server with its own queue).
    pub queue: Option<mailstead_queue::Queue>,
    /// Every local recipient's delivery (the queue's own, so both behave alike).
    pub local: mailstead_queue::LocalDelivery,
    /// Verifies AUTH (submission).
    pub auth: Option<mailstead_auth::Authenticator>,
    pub policy: Policy,
}

/// The sender and recipient rules that are choices, not protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Submission: every `From:` header address must be one the login may send as (the
    /// same rule as MAIL FROM).
    pub check_from_header: bool,
    /// Where `RCPT TO:<postmaster>` (no domain, RFC 5321 §4.5.1) goes; `None`: the
    /// postmaster of the first hosted domain.
    pub postmaster: Option<String>,
}

pub use mailstead_net::{Connections, TlsConfig};

/// Serves SMTP or LMTP (per `ctx.mode`) on a bound TCP listener until `shutdown` completes,
/// then tells idle sessions `421` and waits for every session to end (messages being
/// received are finished). `connections` is the process-wide registry every listener
/// shares: its capacity bounds all listeners together.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<SmtpContext>,
    connections: Connections,
    shutdown: impl Future,
) {
    serve_listener(listener.into(), ctx, connections, shutdown).await;
}

/// [`serve`] on a Unix socket (LMTP from a local MTA); no per-address limit applies.
pub async fn serve_unix(
    listener: UnixListener,
    ctx: Arc<SmtpContext>,
    connections: Connections,
    shutdown: impl Future,
) {
    serve_listener(listener.into(), ctx, connections, shutdown).await;
}

async fn serve_listener(
    listener: mailstead_net::Listener,
    ctx: Arc<SmtpContext>,
    connections: Connections,
    shutdown: impl Future,
) {
    let options = mailstead_net::ListenerOptions { implicit_tls: None };
    let protocol = server::Smtp { ctx };
    mailstead_net::serve(listener, Arc::new(protocol), options, connections, shutdown).await;
}

/// Serves submission with implicit TLS (port 465, RFC 8314): the handshake comes first.
/// (Port 587 is [`serve`] with `ctx.mode` [`Mode::Submission`]: STARTTLS.)
pub async fn serve_implicit_tls(
    listener: TcpListener,
    ctx: Arc<SmtpContext>,
    tls: Arc<TlsConfig>,
    connections: Connections,
    shutdown: impl Future,
) {
    let options = mailstead_net::ListenerOptions {
        implicit_tls: Some(tls),
    };
    let protocol = server::Smtp { ctx };
    mailstead_net::serve(
        listener.into(),
        Arc::new(protocol),
        options,
        connections,
        shutdown,
    )
    .await;
}

/// Runs one session over any byte stream, as if accepted from `peer_ip`; for fuzzing and
/// tests that need no socket.
#[doc(hidden)]
pub async fn serve_stream<S>(stream: S, peer_ip: std::net::IpAddr, ctx: Arc<SmtpContext>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = mailstead_net::Peer {
        ip: Some(peer_ip),
        description: peer_ip.to_string(),
        tls: false,
    };
    session::run(Box::new(stream), peer, ctx, ConnectionHandle::detached()).await;
}
