//! The accept loop: a semaphore permit before `accept()`, a per-address connection count,
//! exponential back-off on failed accepts, and draining on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mailstead_net::ConnectionCounter;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, warn};

use crate::SmtpContext;
use crate::connection::Io;
use crate::session::{self, Peer};

pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
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
                    },
                ))
            }
            Listener::Unix(listener) => {
                let (stream, _address) = listener.accept().await?;
                Ok((
                    Box::new(stream),
                    Peer {
                        ip: None,
                        description: "unix socket".to_string(),
                    },
                ))
            }
        }
    }
}

pub(crate) async fn run(listener: Listener, ctx: Arc<SmtpContext>, shutdown: impl Future) {
    let semaphore = Arc::new(Semaphore::new(ctx.limits.max_connections.max(1)));
    let per_address: ConnectionCounter = ConnectionCounter::default();
    let (shutdown_sender, shutdown_receiver) = watch::channel(false);
    let mut sessions = JoinSet::new();
    let mut backoff = Duration::from_secs(1);
    tokio::pin!(shutdown);

    loop {
        // Reap finished sessions so the set does not grow without bound.
        while sessions.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept_with_permit(&listener, &semaphore) => accepted,
        };
        let (permit, mut stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = Duration::from_secs(1);
                accepted
            }
            Err(err) => {
                error!(cause = %err, "accept failed; retrying in {backoff:?}");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(64));
                continue;
            }
        };
        let slot = match peer.ip {
            Some(ip) => match per_address.take(ip, ctx.limits.max_connections_per_ip) {
                Some(slot) => Some(slot),
                None => {
                    warn!(peer = %peer.description, "too many connections from one address");
                    sessions.spawn(async move {
                        let _ = stream
                            .write_all(
                                b"421 4.7.0 Error: too many connections from your address\r\n",
                            )
                            .await;
                        let _ = stream.shutdown().await;
                        drop(permit);
                    });
                    continue;
                }
            },
            None => None,
        };
        let ctx = Arc::clone(&ctx);
        let receiver = shutdown_receiver.clone();
        sessions.spawn(async move {
            debug!(peer = %peer.description, "connection");
            session::run(stream, peer, ctx, receiver).await;
            drop(slot);
            drop(permit);
        });
    }
    // Idle sessions answer 421 and close; sessions receiving a message finish it first.
    let _ = shutdown_sender.send(true);
    while sessions.join_next().await.is_some() {}
}

async fn accept_with_permit(
    listener: &Listener,
    semaphore: &Arc<Semaphore>,
) -> std::io::Result<(tokio::sync::OwnedSemaphorePermit, Box<dyn Io>, Peer)> {
    let permit = match Arc::clone(semaphore).acquire_owned().await {
        Ok(permit) => permit,
        Err(_closed) => return Err(std::io::Error::other("connection semaphore closed")),
    };
    let (stream, peer) = listener.accept().await?;
    Ok((permit, stream, peer))
}
