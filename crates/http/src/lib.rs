//! Mailstead's HTTP listener (`[http] listen`): `/healthz`, `/readyz`, `/metrics` (Prometheus
//! text) and client autoconfiguration for the hosted domains (Thunderbird's
//! `config-v1.1.xml`, Outlook's POX autodiscover, the MTA-STS policy), and the JSON API under
//! `/api/` (see [`api`]), and the web console under `/console/` (server-rendered pages over
//! the same API; `/` leads there).
//!
//! The web stack is axum on hyper (HTTP/1.1 only): hyper is the HTTP implementation most of
//! the Rust ecosystem runs on, so its parser is the best exercised one, and axum is the
//! router the tokio project keeps on top of it; the later API needs its extractors. axum's
//! own `serve` is not used: connections come from the one accept loop (`mailstead_net::serve`),
//! so the global connection cap, the per-address cap, eviction, the TLS handshake timeout and
//! shutdown apply to HTTP as to every other listener, and each accepted stream is handed to
//! hyper's `serve_connection`.
//!
//! Limits (see [`Limits`]): the request head (line and headers) must fit
//! [`MAX_HEAD_BYTES`] (more is answered `431`) with at most [`MAX_HEADERS`] headers; a body
//! is at most [`MAX_BODY_BYTES`] (`413`); the head must arrive within `request_timeout`, which
//! also closes a keep-alive connection left idle that long (slowloris), and a request must be
//! answered within it too (`408`).

#![forbid(unsafe_code)]

pub mod api;
mod autoconfig;
pub mod charts;
mod console;
mod mobileconfig;
mod monitoring_access;
mod mta_sts;
mod routes;
mod server;
mod stats;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailstead_directory::Directory;
use mailstead_net::{Connections, TlsConfig};
use tokio::net::TcpListener;

pub use api::ApiContext;
pub use autoconfig::{Endpoint, MailServices, Security};
pub use mailstead_auth::Network;

/// The most bytes a request line and its headers may take (hyper's smallest read buffer).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// The most headers a request may have.
pub const MAX_HEADERS: usize = 64;
/// The most bytes a request body may have (an autodiscover request is a few hundred).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How the listener treats its connections.
#[derive(Clone, Debug)]
pub struct Limits {
    /// For a request head to arrive (and for an idle keep-alive connection), and for an
    /// answer.
    pub request_timeout: Duration,
    /// Connections one client address may hold.
    pub max_connections_per_ip: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(30),
            max_connections_per_ip: 100,
        }
    }
}

/// RFC 8461's policy modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MtaStsMode {
    Enforce,
    Testing,
    None,
}

impl MtaStsMode {
    pub fn name(self) -> &'static str {
        match self {
            MtaStsMode::Enforce => "enforce",
            MtaStsMode::Testing => "testing",
            MtaStsMode::None => "none",
        }
    }
}

/// The MTA-STS policy served at `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
#[derive(Clone, Debug)]
pub struct MtaSts {
    pub mode: MtaStsMode,
    /// How long senders may keep the policy.
    pub max_age: Duration,
}

/// Everything the HTTP listener answers from.
pub struct HttpContext {
    pub directory: Directory,
    /// The server's name: the host in autoconfiguration, the `mx` of the MTA-STS policy.
    pub hostname: String,
    /// The mail services clients are told about, from the configured listeners.
    pub services: MailServices,
    pub mta_sts: MtaSts,
    /// Which listeners must be serving for `/readyz`.
    pub readiness: Readiness,
    pub limits: Limits,
    /// Sessions, logins and the queue, for `/api/`.
    pub api: ApiContext,
    /// Who may read `/metrics`, `/readyz` and `/stats/*.svg` (`[http] metrics_allow`,
    /// loopback by default); others get 403.
    pub metrics_allow: Vec<Network>,
    /// The event log's directory, read for the traffic charts.
    pub events_dir: std::path::PathBuf,
}

/// The listeners of the process and whether each is still serving, for `/readyz`.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    listeners: Arc<Mutex<Vec<TrackedListener>>>,
}

/// A listener's name and whether its accept loop still runs.
type TrackedListener = (String, Arc<AtomicBool>);

impl Readiness {
    /// Wraps a listener's accept loop: it counts as serving from now until the loop ends.
    pub fn track<F: Future>(
        &self,
        name: String,
        serving: F,
    ) -> impl Future<Output = F::Output> + use<F> {
        let up = Arc::new(AtomicBool::new(true));
        self.listeners
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push((name, Arc::clone(&up)));
        async move {
            let output = serving.await;
            up.store(false, Ordering::Relaxed);
            output
        }
    }

    /// The listeners that stopped serving.
    fn not_serving(&self) -> Vec<String> {
        self.listeners
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .iter()
            .filter(|(_, up)| !up.load(Ordering::Relaxed))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Serves HTTP on `listener` until `shutdown` completes: over TLS with `tls` (the server's
/// renewable certificate), plain without.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<HttpContext>,
    tls: Option<Arc<TlsConfig>>,
    connections: Connections,
    shutdown: impl Future,
) {
    server::run(listener, ctx, tls, connections, shutdown).await;
}

/// Whether a listener on `address` is served in plain HTTP: on loopback only, where nothing
/// crosses a network; everywhere else it is HTTPS.
pub fn plain_on(address: &SocketAddr) -> bool {
    address.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listener_whose_loop_ended_is_not_ready() {
        let readiness = Readiness::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(readiness.track("imap 0.0.0.0:143".to_owned(), async move {
            let _ = stopped.await;
        }));
        // Never polled: a listener that has not ended is serving.
        let _still_serving =
            readiness.track("pop3 0.0.0.0:110".to_owned(), std::future::pending::<()>());
        assert!(readiness.not_serving().is_empty());
        let _ = stop.send(());
        serving.await.unwrap();
        assert_eq!(readiness.not_serving(), ["imap 0.0.0.0:143"]);
    }
}
