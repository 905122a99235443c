//! The accept loop: a semaphore permit before `accept()`, a per-address connection count, the
//! TLS handshake of implicit-TLS listeners, and draining on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mailstead_net::ConnectionCounter;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, warn};

use crate::connection::Io;
use crate::{ImapContext, Security, session};

/// A TLS handshake that has not finished by then is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn run(
    listener: TcpListener,
    ctx: Arc<ImapContext>,
    security: Security,
    shutdown: impl Future,
) {
    let semaphore = Arc::new(Semaphore::new(ctx.limits.max_connections.max(1)));
    let per_address: ConnectionCounter = ConnectionCounter::default();
    let (shutdown_sender, shutdown_receiver) = watch::channel(false);
    let mut sessions = JoinSet::new();
    let mut backoff = Duration::from_millis(100);
    tokio::pin!(shutdown);

    loop {
        while sessions.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = Arc::clone(&semaphore).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, address) = match accepted {
            Ok(accepted) => {
                backoff = Duration::from_millis(100);
                accepted
            }
            Err(err) => {
                // Out of file descriptors and the like: wait rather than spin.
                error!(cause = %err, "accept failed; retrying in {backoff:?}");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let ip = address.ip();
        let Some(slot) = per_address.take(ip, ctx.limits.max_connections_per_ip) else {
            warn!(peer = %address, "too many IMAP connections from one address");
            let tls = ctx.tls.as_ref().map(|tls| tls.get());
            sessions.spawn(async move {
                let message = b"* BYE Too many connections from your address\r\n";
                match (security, tls) {
                    (Security::ImplicitTls, Some(config)) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        if let Ok(Ok(mut tls)) =
                            tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        {
                            let _ = tls.write_all(message).await;
                            let _ = tls.shutdown().await;
                        }
                    }
                    _ => {
                        let mut stream = stream;
                        let _ = stream.write_all(message).await;
                        let _ = stream.shutdown().await;
                    }
                }
                drop(permit);
            });
            continue;
        };
        let ctx = Arc::clone(&ctx);
        let receiver = shutdown_receiver.clone();
        sessions.spawn(async move {
            debug!(peer = %address, "IMAP connection");
            let stream: Box<dyn Io> = match security {
                Security::StartTls => Box::new(stream),
                Security::ImplicitTls => {
                    let Some(tls) = ctx.tls.as_ref() else {
                        error!("implicit TLS listener without a certificate");
                        return;
                    };
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.get());
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => Box::new(tls),
                        Ok(Err(err)) => {
                            debug!(peer = %address, cause = %err, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            debug!(peer = %address, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            let tls = security == Security::ImplicitTls;
            session::run(stream, ip, tls, ctx, receiver).await;
            drop(slot);
            drop(permit);
        });
    }
    let _ = shutdown_sender.send(true);
    while sessions.join_next().await.is_some() {}
}
