//! HTTP as the shared accept loop sees it: each accepted (and, off loopback, TLS) stream is
//! one hyper HTTP/1.1 connection running the axum router.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use mailstead_net::{
    ConnectionHandle, Connections, Io, ListenerOptions, Peer, Protocol, Refusal, TlsConfig,
};
use tokio::net::TcpListener;
use tower_http::add_extension::AddExtension;
use tracing::debug;

use crate::api::ClientInfo;
use crate::{HttpContext, MAX_HEAD_BYTES, MAX_HEADERS, routes};

/// How long a connection asked to close (shutdown, eviction) may take to finish its answer.
const CLOSING_GRACE: Duration = Duration::from_secs(5);

/// What a refused connection is told.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Content-Length: 20\r\nConnection: close\r\n\r\nserver busy, retry.\n";

struct Http {
    router: Router,
    ctx: Arc<HttpContext>,
}

impl Protocol for Http {
    fn name(&self) -> &'static str {
        "HTTP"
    }

    fn max_connections_per_address(&self) -> usize {
        self.ctx.limits.max_connections_per_ip
    }

    fn refusal(&self, _why: Refusal) -> Vec<u8> {
        BUSY.to_vec()
    }

    fn session(
        self: Arc<Self>,
        stream: Box<dyn Io>,
        peer: Peer,
        connection: ConnectionHandle,
    ) -> impl Future<Output = ()> + Send + 'static {
        serve_connection(
            stream,
            peer,
            connection,
            self.router.clone(),
            self.ctx.limits.request_timeout,
        )
    }
}

/// Runs one connection until the client closes it, the head timeout cuts it, or the
/// listener asks it to close (it then finishes the answer in progress).
async fn serve_connection(
    stream: Box<dyn Io>,
    peer: Peer,
    mut connection: ConnectionHandle,
    router: Router,
    request_timeout: Duration,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(request_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    // Who is on the other end, for the API's audit lines and login penalties.
    let client = ClientInfo {
        ip: peer.address(),
        tls: peer.tls,
    };
    let service = AddExtension::new(router, client);
    let served = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        _ = connection.closing() => {
            served.as_mut().graceful_shutdown();
            match tokio::time::timeout(CLOSING_GRACE, served.as_mut()).await {
                Ok(result) => result,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(err) = result {
        debug!(peer = %peer.description, cause = %err, "HTTP connection ended");
    }
}

pub(crate) async fn run(
    listener: TcpListener,
    ctx: Arc<HttpContext>,
    tls: Option<Arc<TlsConfig>>,
    connections: Connections,
    shutdown: impl Future,
) {
    let router = routes::router(Arc::clone(&ctx));
    mailstead_net::serve(
        listener.into(),
        Arc::new(Http { router, ctx }),
        ListenerOptions { implicit_tls: tls },
        connections,
        shutdown,
    )
    .await;
}
