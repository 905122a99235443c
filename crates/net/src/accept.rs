//! The one accept loop every listener runs, whatever it speaks: admission through the
//! process-wide [`Connections`] registry (evicting the oldest idle connection before login
//! when full), the per-address cap, the implicit-TLS handshake, one back-off policy on failed
//! accepts, and draining on shutdown. The protocol supplies the session and the words for a
//! refusal.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, error, warn};

use crate::registry::{ConnectionHandle, Connections};
use crate::{ConnectionCounter, TlsConfig};

/// A byte stream a session runs on: TCP, a Unix socket, or TLS over either.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A TLS handshake that has not finished by then is abandoned.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a refused connection is given to take its goodbye.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an evicted session may take to say goodbye before it is dropped.
const EVICTION_GRACE: Duration = Duration::from_secs(10);
/// Back-off after a failed accept (out of descriptors, out of memory): doubled on each
/// failure in a row up to the maximum, back to the first after a success.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Listener {
        Listener::Tcp(listener)
    }
}

impl From<UnixListener> for Listener {
    fn from(listener: UnixListener) -> Listener {
        Listener::Unix(listener)
    }
}

/// The other end of a connection.
#[derive(Clone, Debug)]
pub struct Peer {
    /// `None` on a Unix socket.
    pub ip: Option<IpAddr>,
    /// For logs: `address:port` or "unix socket".
    pub description: String,
    /// The connection started in TLS (an implicit-TLS listener).
    pub tls: bool,
}

impl Peer {
    /// The client's address for limits and login penalties: a peer on a Unix socket is on
    /// this host, so it counts as `::1`.
    pub fn address(&self) -> IpAddr {
        self.ip.unwrap_or(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST))
    }
}

impl Listener {
    /// Where it listens, for the metrics: `address:port` or the socket's path.
    fn local_description(&self) -> String {
        let described = match self {
            Listener::Tcp(listener) => listener.local_addr().map(|address| address.to_string()),
            Listener::Unix(listener) => listener.local_addr().map(|address| {
                address
                    .as_pathname()
                    .map(|path| format!("unix:{}", path.display()))
                    .unwrap_or_else(|| "unix".to_owned())
            }),
        };
        described.unwrap_or_else(|_| "unknown".to_owned())
    }

    async fn accept(&self) -> std::io::Result<(Box<dyn Io>, Peer)> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, address) = listener.accept().await?;
                // Replies are small and latency matters more than packet count.
                let _ = stream.set_nodelay(true);
                Ok((
                    Box::new(stream),
                    Peer {
                        ip: Some(address.ip()),
                        description: address.to_string(),
                        tls: false,
                    },
                ))
            }
            Listener::Unix(listener) => {
                let (stream, _address) = listener.accept().await?;
                Ok((
                    Box::new(stream),
                    Peer {
                        ip: None,
                        description: "unix socket".to_owned(),
                        tls: false,
                    },
                ))
            }
        }
    }
}

/// Why a connection is turned away at accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The server is full and no idle connection could make room.
    ServerFull,
    /// The client's address holds its maximum of connections.
    AddressFull,
}

/// What a listener speaks.
pub trait Protocol: Send + Sync + 'static {
    /// For logs: "SMTP", "LMTP", "IMAP".
    fn name(&self) -> &'static str;
    /// Connections one client address may hold on this listener.
    fn max_connections_per_address(&self) -> usize;
    /// The line sent to a refused connection before it is closed (`421 4.7.0 …`, `* BYE …`).
    fn refusal(&self, why: Refusal) -> Vec<u8>;
    /// Runs one session. It marks itself logged in through `connection` and says goodbye
    /// when [`ConnectionHandle::closing`] completes.
    fn session(
        self: Arc<Self>,
        stream: Box<dyn Io>,
        peer: Peer,
        connection: ConnectionHandle,
    ) -> impl Future<Output = ()> + Send + 'static;
}

/// How one listener treats its connections.
pub struct ListenerOptions {
    /// Implicit TLS (993, 995, 465): the handshake runs before the session starts.
    pub implicit_tls: Option<Arc<TlsConfig>>,
}

/// Whether a listener's connections start in TLS (993, 995, 465) or plain, where the protocol
/// offers STARTTLS (143, 110, 587).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    StartTls,
    ImplicitTls,
}

impl ListenerOptions {
    /// The options for a listener of `security` given the server's certificate, if it has one;
    /// `None`, logged, for implicit TLS without one: such a listener cannot serve anybody.
    pub fn for_security(
        security: Security,
        tls: Option<&Arc<TlsConfig>>,
    ) -> Option<ListenerOptions> {
        let implicit_tls = match security {
            Security::StartTls => None,
            Security::ImplicitTls => match tls {
                Some(tls) => Some(Arc::clone(tls)),
                None => {
                    tracing::error!("implicit TLS listener without a certificate; not serving it");
                    return None;
                }
            },
        };
        Some(ListenerOptions { implicit_tls })
    }
}

/// Accepts connections on `listener` until `shutdown` completes, then asks every session of
/// this listener to close and waits until they all have.
pub async fn serve<P: Protocol>(
    listener: Listener,
    protocol: Arc<P>,
    options: ListenerOptions,
    connections: Connections,
    shutdown: impl Future,
) {
    let per_address: ConnectionCounter = ConnectionCounter::default();
    let (shutdown_sender, shutdown_receiver) = watch::channel(false);
    let mut sessions = JoinSet::new();
    let mut backoff = FIRST_BACKOFF;
    let name = protocol.name();
    let metric_name = name.to_ascii_lowercase();
    let open_gauge =
        mailstead_metrics::connections_open(&metric_name, &listener.local_description());
    let logged_in_gauge = mailstead_metrics::sessions_logged_in(&metric_name);
    tokio::pin!(shutdown);

    loop {
        // Reap finished sessions so the set does not grow without bound.
        while sessions.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = FIRST_BACKOFF;
                accepted
            }
            Err(err) => {
                error!(protocol = name, cause = %err, "accept failed; retrying in {backoff:?}");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let tls = options.implicit_tls.as_ref().map(|tls| tls.get());
        let address_slot = match peer.ip {
            Some(ip) => match per_address.take(ip, protocol.max_connections_per_address()) {
                Some(slot) => Some(slot),
                None => {
                    warn!(protocol = name, peer = %peer.description, "too many connections from one address");
                    refuse(
                        &mut sessions,
                        &connections,
                        stream,
                        tls,
                        protocol.refusal(Refusal::AddressFull),
                    );
                    continue;
                }
            },
            None => None,
        };
        let connection = match connections.admit(shutdown_receiver.clone()) {
            Ok(connection) => connection.counting_logins_in(logged_in_gauge.clone()),
            Err(_full) => {
                warn!(protocol = name, peer = %peer.description, capacity = connections.capacity(), "server full; refusing a connection");
                refuse(
                    &mut sessions,
                    &connections,
                    stream,
                    tls,
                    protocol.refusal(Refusal::ServerFull),
                );
                continue;
            }
        };
        let protocol = Arc::clone(&protocol);
        let open = OpenConnection::new(&open_gauge);
        sessions.spawn(async move {
            debug!(protocol = name, peer = %peer.description, "connection");
            let mut evicted = connection.evicted_signal();
            let mut peer = peer;
            let stream: Box<dyn Io> = match tls {
                None => stream,
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            peer.tls = true;
                            Box::new(tls)
                        }
                        Ok(Err(err)) => {
                            debug!(protocol = name, peer = %peer.description, cause = %err, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            debug!(protocol = name, peer = %peer.description, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            // An evicted session says goodbye itself; one that cannot (its client does not
            // read) is dropped after a grace, so its descriptor comes back.
            tokio::select! {
                _ = protocol.session(stream, peer, connection) => {}
                _ = async {
                    let _ = evicted.wait_for(|evicted| *evicted).await;
                    tokio::time::sleep(EVICTION_GRACE).await;
                } => {}
            }
            drop(address_slot);
            drop(open);
        });
    }
    // Idle sessions say goodbye and close; busy ones finish what they are doing first.
    let _ = shutdown_sender.send(true);
    while sessions.join_next().await.is_some() {}
}

/// One connection in its listener's `connections_open` gauge, until dropped.
struct OpenConnection(mailstead_metrics::Gauge);

impl OpenConnection {
    fn new(gauge: &mailstead_metrics::Gauge) -> OpenConnection {
        gauge.inc();
        OpenConnection(gauge.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Tells a connection that was not admitted why (after the handshake on implicit-TLS
/// listeners), then closes it; without a word when too many are being refused already.
fn refuse(
    sessions: &mut JoinSet<()>,
    connections: &Connections,
    mut stream: Box<dyn Io>,
    tls: Option<Arc<rustls::ServerConfig>>,
    message: Vec<u8>,
) {
    let Some(refusing) = connections.refusing() else {
        return;
    };
    sessions.spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async move {
            match tls {
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        let _ = tls.write_all(&message).await;
                        let _ = tls.shutdown().await;
                    }
                }
                None => {
                    let _ = stream.write_all(&message).await;
                    let _ = stream.shutdown().await;
                }
            }
        })
        .await;
        drop(refusing);
    });
}
