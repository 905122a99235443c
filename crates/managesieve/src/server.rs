//! ManageSieve as the shared accept loop sees it (`mailstead_net::serve`): the session to run
//! and the `BYE` of a refusal.

use std::future::Future;
use std::sync::Arc;

use mailstead_net::{ConnectionHandle, Connections, Io, ListenerOptions, Protocol, Refusal};
use tokio::net::TcpListener;

use crate::response::{Code, Status, response};
use crate::{ManageSieveContext, Security, session};

struct ManageSieve(Arc<ManageSieveContext>);

impl Protocol for ManageSieve {
    fn name(&self) -> &'static str {
        "ManageSieve"
    }

    fn max_connections_per_address(&self) -> usize {
        self.0.limits.max_connections_per_ip
    }

    fn refusal(&self, why: Refusal) -> Vec<u8> {
        match why {
            Refusal::ServerFull => session::evicted(),
            Refusal::AddressFull => response(
                Status::Bye,
                Some(&Code::TryLater),
                "Too many connections from your address.",
            ),
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
    ctx: Arc<ManageSieveContext>,
    security: Security,
    connections: Connections,
    shutdown: impl Future,
) {
    let Some(options) = ListenerOptions::for_security(security, ctx.tls.as_ref()) else {
        return;
    };
    mailstead_net::serve(
        listener.into(),
        Arc::new(ManageSieve(ctx)),
        options,
        connections,
        shutdown,
    )
    .await;
}
