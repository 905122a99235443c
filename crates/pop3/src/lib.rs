//! Mailstead's POP3 server (RFC 1939 with CAPA, STLS and SASL), serving each account's INBOX
//! from the store's Maildir to the accounts of the directory.
//!
//! # SUMMARY
//!
//! [`serve`] accepts connections (plain with STLS on 110, implicit TLS on 995) through the
//! shared accept loop of `mailstead-net` and runs one session each. A session logs in through
//! the login service ([`Authenticator`], the same one IMAP and submission ask), opens the
//! account's INBOX through the store's [`MailStore`] (the folder state IMAP sessions and
//! delivery share) and fixes the maildrop for the session: message numbers, CRLF sizes (the
//! store's `W=`, one size rule for IMAP and POP3) and UIDLs. At QUIT, and only then, messages
//! marked with DELE are expunged through the store's expunge path and retrieved ones get
//! `\Seen` (Dovecot's default, `pop3_no_flag_updates = no`); a connection that drops changes
//! nothing.
//!
//! UIDLs are what Dovecot 2.3 gives with its default `pop3_uidl_format = %08Xu%08Xv` (UID and
//! UIDVALIDITY as eight hex digits, lower-case as Dovecot 2.3 writes them), or the UIDL `dovecot-uidlist` records for a
//! message (its `P` field, written by Dovecot's `pop3_save_uidl` or a migration; messages
//! with an `O` field are listed first, in that order, as Dovecot does), so a POP3 client
//! moved from Dovecot to the same Maildir downloads nothing again.
//!
//! The maildrop is not locked against other sessions (Dovecot's default,
//! `pop3_lock_session = no`): a client whose old connection hangs is not locked out, and two
//! sessions deleting the same message both succeed. `[IN-USE]` answers a login over the
//! per-user connection limit, as Dovecot's does.
//!
//! # STANDARDS
//!
//! RFC 1939 (POP3; APOP is not offered), 2449 (CAPA: TOP, UIDL, USER, SASL, RESP-CODES,
//! PIPELINING, STLS, IMPLEMENTATION), 2595 (STLS), 5034 (AUTH with PLAIN and LOGIN, initial
//! responses), 3206 (`[AUTH]`, `[SYS/TEMP]` response codes), 4616 (PLAIN).
//!
//! # SECURITY
//!
//! Everything read from the socket is untrusted: a command line is at most
//! [`Limits::max_line`] (the session ends after a longer one), the whole unauthenticated
//! life of a connection is [`Limits::login_timeout`], a logged-in client may stay silent for
//! [`Limits::idle_timeout`]; connections are bounded per listener, per client address and
//! per user, and logins go to the login service, which delays and counts failures across
//! connections and protocols. No password is accepted before TLS unless the client is on
//! loopback and the configuration allows it (USER and AUTH answer `-ERR [AUTH]`, CAPA does
//! not offer them). RETR and TOP read the message file a buffer at a time and stream it, so a
//! session holds a buffer whatever the message's size.
//!
//! # Layout
//!
//! - `lib.rs`: `Pop3Context`, `Limits`, `serve`.
//! - `server.rs`: POP3 for the shared accept loop of `mailstead_net`.
//! - `connection.rs`: all bytes: lines, buffered replies, STLS.
//! - `session.rs`: the states, command dispatch, login and the UPDATE state.
//! - `maildrop.rs`: the maildrop as a session sees it: numbers, sizes, UIDLs, deletions.
//! - `multiline.rs`: dot-stuffing and TOP's cut of a message streamed a piece at a time.
//! - `command.rs`, `parser.rs`: one line to a [`command::Command`].

#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mailstead_auth::AuthOptions;
pub use mailstead_auth::Authenticator;
use mailstead_directory::Directory;
use mailstead_net::ConnectionCounter;
pub use mailstead_net::{Connections, TlsConfig};
use mailstead_store::MailStore;
use tokio::net::TcpListener;

pub mod command;
mod connection;
pub mod maildrop;
pub mod multiline;
pub mod parser;
mod server;
mod session;

/// Bounds on what one client may make the server do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line, AUTH responses included (RFC 2449 allows 255 octets for a
    /// command; a SASL PLAIN response with a 1,024-byte password needs about 1,400).
    pub max_line: usize,
    /// How long a logged-in client may stay silent (RFC 1939 3: at least 10 minutes).
    pub idle_timeout: Duration,
    /// How long a connection may stay unauthenticated, counted from its start whatever the
    /// client sends.
    pub login_timeout: Duration,
    /// Concurrent connections from one client address.
    pub max_connections_per_ip: usize,
    /// Concurrent logged-in sessions of one user (Dovecot's `mail_max_userip_connections`).
    pub max_connections_per_user: usize,
    /// Failed logins after which the connection is closed. (How long each failure waits is
    /// the login service's penalty, counted across connections.)
    pub max_failed_logins: u32,
    /// Unknown or malformed commands after which the connection is closed.
    pub max_bad_commands: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: 8 * 1024,
            idle_timeout: Duration::from_secs(10 * 60),
            login_timeout: Duration::from_secs(60),
            max_connections_per_ip: 200,
            max_connections_per_user: 10,
            max_failed_logins: 3,
            max_bad_commands: 20,
        }
    }
}

/// Everything a session needs; shared by every session of every POP3 listener.
pub struct Pop3Context {
    /// Whether a login is good: the one login service, shared with the other protocols.
    pub auth: Authenticator,
    /// The mail of an account, shared with IMAP and delivery.
    pub mail: MailStore,
    /// For STLS and implicit TLS; replaceable while serving (certificate renewal).
    pub tls: Option<Arc<TlsConfig>>,
    pub limits: Limits,
    /// Allow USER/PASS and AUTH without TLS from 127.0.0.0/8 and ::1 (local tools, tests).
    pub login_on_loopback_without_tls: bool,
    /// Logged-in sessions per user, across POP3 listeners.
    user_sessions: ConnectionCounter<String>,
}

impl Pop3Context {
    pub fn new(
        directory: Directory,
        mail: MailStore,
        tls: Option<Arc<TlsConfig>>,
        limits: Limits,
        login_on_loopback_without_tls: bool,
    ) -> Pop3Context {
        Pop3Context {
            auth: Authenticator::new(directory, AuthOptions::default()),
            mail,
            tls,
            limits,
            login_on_loopback_without_tls,
            user_sessions: ConnectionCounter::default(),
        }
    }

    /// Uses `auth`, the process's one login service, so failures count across listeners and
    /// protocols (by default a context has its own).
    #[must_use]
    pub fn with_authenticator(mut self, auth: Authenticator) -> Pop3Context {
        self.auth = auth;
        self
    }
}

pub use mailstead_net::Security;

/// Serves POP3 on a bound listener until `shutdown` completes, then tells every session
/// `-ERR [SYS/TEMP] Server shutting down.` (a command in progress finishes first) and waits
/// for them to end. `connections` is the process-wide registry every listener shares.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<Pop3Context>,
    security: Security,
    connections: Connections,
    shutdown: impl Future,
) {
    server::run(listener, ctx, security, connections, shutdown).await;
}

/// Runs one plain session over any byte stream, as if accepted from `peer_ip`; for fuzzing and
/// tests that need no socket.
#[doc(hidden)]
pub async fn serve_stream<S>(stream: S, peer_ip: std::net::IpAddr, ctx: Arc<Pop3Context>)
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
