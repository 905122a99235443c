//! SMTP and LMTP as the shared accept loop sees them (`mailstead_net::serve`): the session
//! to run and the `421` a refused connection gets.

use std::sync::Arc;

use mailstead_net::{ConnectionHandle, Io, Protocol, Refusal};

use crate::SmtpContext;
use crate::session;

pub(crate) struct Smtp {
    pub(crate) ctx: Arc<SmtpContext>,
}

impl Protocol for Smtp {
    fn name(&self) -> &'static str {
        match self.ctx.mode {
            crate::Mode::Smtp => "SMTP",
            crate::Mode::Lmtp => "LMTP",
            crate::Mode::Submission => "submission",
        }
    }

    fn max_connections_per_address(&self) -> usize {
        self.ctx.limits.max_connections_per_ip
    }

    fn refusal(&self, why: Refusal) -> Vec<u8> {
        match why {
            Refusal::ServerFull => session::evicted_reply(&self.ctx.hostname).to_wire(),
            Refusal::AddressFull => {
                b"421 4.7.0 Error: too many connections from your address\r\n".to_vec()
            }
        }
    }

    fn session(
        self: Arc<Self>,
        stream: Box<dyn Io>,
        peer: mailstead_net::Peer,
        connection: ConnectionHandle,
    ) -> impl Future<Output = ()> + Send + 'static {
        // Port 465's handshake is done already: `peer.tls` says so.
        session::run(stream, peer, Arc::clone(&self.ctx), connection)
    }
}
