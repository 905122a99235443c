//! IMAP as the shared accept loop sees it (`mailstead_net::serve`, which also runs the
//! handshake of implicit-TLS listeners): the session to run and the `* BYE` a refused
//! connection gets.

use std::future::Future;
use std::sync::Arc;

use mailstead_net::{ConnectionHandle, Connections, Io, ListenerOptions, Protocol, Refusal};
use tokio::net::TcpListener;

use crate::{ImapContext, Security, session};

struct Imap(Arc<ImapContext>);

impl Protocol for Imap {
    fn name(&self) -> &'static str {
        "IMAP"
    }

    fn max_connections_per_address(&self) -> usize {
        self.0.limits.max_connections_per_ip
    }

    fn refusal(&self, why: Refusal) -> Vec<u8> {
        match why {
            Refusal::ServerFull => session::EVICTED.to_vec(),
            Refusal::AddressFull => b"* BYE Too many connections from your address\r\n".to_vec(),
        }
    }

    fn session(
        self: Arc<Self>,
        stream: Box<dyn Io>,
        peer: mailstead_net::Peer,
        connection: ConnectionHandle,
    ) -> impl Future<Output = ()> + Send + 'static {
        session::run(
            stream,
            peer.address(),
            peer.tls,
            Arc::clone(&self.0),
            connection,
        )
    }
}

pub(crate) async fn run(
    listener: TcpListener,
    ctx: Arc<ImapContext>,
    security: Security,
    connections: Connections,
    shutdown: impl Future,
) {
    let Some(options) = ListenerOptions::for_security(security, ctx.tls.as_ref()) else {
        return;
    };
    mailstead_net::serve(
        listener.into(),
        Arc::new(Imap(ctx)),
        options,
        connections,
        shutdown,
    )
    .await;
}
