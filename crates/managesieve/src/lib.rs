//! Mailstead's ManageSieve server (RFC 5804): users list, upload, check, activate, download,
//! rename and delete their Sieve scripts from mail clients (Thunderbird's sieve extension,
//! Roundcube's managesieve plugin, `sieve-connect`).
//!
//! # SUMMARY
//!
//! [`serve`] accepts connections (plain with STARTTLS, port 4190) through the shared accept
//! loop of `mailstead-net` and runs one session each. A session logs in through the login
//! service ([`Authenticator`], the one IMAP, POP3 and submission ask, so failures and their
//! delays count across protocols) with SASL PLAIN or LOGIN, and then works on the account's
//! scripts through the store's `ScriptStore`, in Pigeonhole's layout under the account's home
//! (`~/sieve/NAME.sieve`, the active one linked from `~/.dovecot.sieve`), so Dovecot's
//! `managesieved` and delivery agree with it on the same files.
//! PUTSCRIPT and CHECKSCRIPT compile the script with `mailstead-sieve` and answer `NO` with
//! the compiler's messages (line numbers included) when it does not compile; SETACTIVE does
//! the same, so no script delivery cannot run becomes active.
//!
//! # STANDARDS
//!
//! RFC 5804 (ManageSieve, VERSION 1.0: CHECKSCRIPT, RENAMESCRIPT, NOOP, UNAUTHENTICATE;
//! response codes QUOTA/MAXSCRIPTS, QUOTA/MAXSIZE, NONEXISTENT, ACTIVE, ALREADYEXISTS,
//! TRYLATER, ENCRYPT-NEEDED, TAG, and Pigeonhole's QUOTA/MAXSTORAGE), 4616 (PLAIN), 5228 and
//! the extensions `mailstead-sieve` implements (the SIEVE capability). Not offered: NOTIFY
//! (no enotify), SASL security layers.
//!
//! # SECURITY
//!
//! Everything read from the socket is untrusted. Before login a line and a literal are at
//! most [`Limits::max_input_before_login`] (a bigger one ends the connection) and the whole
//! unauthenticated life of a connection is [`Limits::login_timeout`]; after login a line is
//! at most [`Limits::max_line`], a literal at most [`Limits::max_script_size`] (a bigger one
//! is read and dropped and answered `NO (QUOTA/MAXSIZE)`, up to 1 GiB, beyond which the
//! connection ends), and a silent client is dropped after [`Limits::idle_timeout`].
//! Connections are bounded per listener, per client address and per user. No password is
//! accepted before TLS unless the client is on loopback and the configuration allows it
//! (AUTHENTICATE answers `NO (ENCRYPT-NEEDED)`, the SASL capability is empty). Script names
//! are checked by the store (RFC 5804's rules, no '/'), so they never leave `~/sieve`;
//! the number and total size of a user's scripts are bounded.
//!
//! # Layout
//!
//! - `lib.rs`: `ManageSieveContext`, `Limits`, `serve`.
//! - `server.rs`: ManageSieve for the shared accept loop of `mailstead_net`.
//! - `connection.rs`: all bytes: commands framed with their literals, replies, STARTTLS.
//! - `session.rs`: the states, command dispatch, login, the script commands.
//! - `response.rs`: `OK`/`NO`/`BYE` with response codes, quoted strings and literals.
//! - `command.rs`, `parser.rs`: one framed command to a [`command::Command`].

#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mailstead_auth::AuthOptions;
pub use mailstead_auth::Authenticator;
use mailstead_directory::Directory;
use mailstead_net::ConnectionCounter;
pub use mailstead_net::{Connections, Security, TlsConfig};
use tokio::net::TcpListener;

pub mod command;
mod connection;
pub mod parser;
pub mod response;
mod server;
mod session;

/// Bounds on what one client may make the server do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest line after login, without its literals.
    pub max_line: usize,
    /// Longest line and largest literal before login, AUTHENTICATE's responses included
    /// (8 KiB, as IMAP's): an unauthenticated client cannot make the server buffer much.
    pub max_input_before_login: usize,
    /// Largest script (PUTSCRIPT, CHECKSCRIPT, HAVESPACE) and so largest literal; also what
    /// the Sieve compiler accepts (Pigeonhole's `sieve_max_script_size`, 1 MiB).
    pub max_script_size: u64,
    /// Scripts one user may have (Pigeonhole's `sieve_quota_max_scripts`).
    pub max_scripts: usize,
    /// Total size of one user's scripts (Pigeonhole's `sieve_quota_max_storage`).
    pub max_storage: u64,
    /// How long a logged-in client may stay silent.
    pub idle_timeout: Duration,
    /// How long a connection may stay unauthenticated, counted from its start whatever the
    /// client sends.
    pub login_timeout: Duration,
    /// Concurrent connections from one client address.
    pub max_connections_per_ip: usize,
    /// Concurrent logged-in sessions of one user.
    pub max_connections_per_user: usize,
    /// Failed logins after which the connection is closed. (How long each failure waits is
    /// the login service's penalty, counted across connections.)
    pub max_failed_logins: u32,
    /// Unknown, malformed or out-of-state commands after which the connection is closed.
    pub max_bad_commands: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: 8 * 1024,
            max_input_before_login: 8 * 1024,
            max_script_size: 1024 * 1024,
            max_scripts: 20,
            max_storage: 10 * 1024 * 1024,
            idle_timeout: Duration::from_secs(30 * 60),
            login_timeout: Duration::from_secs(60),
            max_connections_per_ip: 50,
            max_connections_per_user: 10,
            max_failed_logins: 3,
            max_bad_commands: 20,
        }
    }
}

/// Everything a session needs; shared by every session of every ManageSieve listener.
pub struct ManageSieveContext {
    /// Whether a login is good: the one login service, shared with the other protocols.
    pub auth: Authenticator,
    /// For STARTTLS; replaceable while serving (certificate renewal).
    pub tls: Option<Arc<TlsConfig>>,
    pub limits: Limits,
    /// Allow AUTHENTICATE without TLS from 127.0.0.0/8 and ::1 (local tools, tests), as
    /// `[imap] login_on_loopback_without_tls` does.
    pub login_on_loopback_without_tls: bool,
    /// Logged-in sessions per user, across ManageSieve listeners.
    user_sessions: ConnectionCounter<String>,
}

impl ManageSieveContext {
    pub fn new(
        directory: Directory,
        tls: Option<Arc<TlsConfig>>,
        limits: Limits,
        login_on_loopback_without_tls: bool,
    ) -> ManageSieveContext {
        ManageSieveContext {
            auth: Authenticator::new(directory, AuthOptions::default()),
            tls,
            limits,
            login_on_loopback_without_tls,
            user_sessions: ConnectionCounter::default(),
        }
    }

    /// Uses `auth`, the process's one login service, so failures count across listeners and
    /// protocols (by default a context has its own).
    #[must_use]
    pub fn with_authenticator(mut self, auth: Authenticator) -> ManageSieveContext {
        self.auth = auth;
        self
    }
}

/// Serves ManageSieve on a bound listener until `shutdown` completes, then tells every
/// session `BYE (TRYLATER)` (a command in progress finishes first) and waits for them to end.
/// `connections` is the process-wide registry every listener shares.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<ManageSieveContext>,
    security: Security,
    connections: Connections,
    shutdown: impl Future,
) {
    server::run(listener, ctx, security, connections, shutdown).await;
}

/// Runs one plain session over any byte stream, as if accepted from `peer_ip`; for fuzzing and
/// tests that need no socket.
#[doc(hidden)]
pub async fn serve_stream<S>(stream: S, peer_ip: std::net::IpAddr, ctx: Arc<ManageSieveContext>)
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
