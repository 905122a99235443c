//! The SMTP client: where a message for one remote domain goes (transport, relay host or MX),
//! with the TLS that domain's policy demands, and what each recipient's server answered.
//!
//! The queue calls [`Outbound::deliver`] with one transaction (one sender, recipients of one
//! domain, the message) and records each recipient's [`Attempt`]; it never speaks SMTP itself.

use std::net::SocketAddr;
use std::time::Duration;

use mailstead_directory::model::{NextHop, TlsPolicy};
use rustls_pki_types::CertificateDer;

/// How the client finds and talks to other servers.
#[derive(Clone, Debug)]
pub struct OutboundConfig {
    /// The EHLO name.
    pub hostname: String,
    /// Name servers to ask instead of the system's (`/etc/resolv.conf`); tests point this at a
    /// responder on loopback.
    pub name_servers: Vec<SocketAddr>,
    /// Treat answers with the AD bit from these name servers as DNSSEC-validated (DANE), as
    /// Postfix does with a validating resolver on loopback.
    pub trust_ad_bit: bool,
    /// Every remote domain without a transport goes here instead of to its MX
    /// (Postfix's `relayhost`).
    pub relay_host: Option<NextHop>,
    /// Login and password for AUTH at the relay host.
    pub relay_auth: Option<Credentials>,
    /// Trust anchors for `verify` and `secure` besides the Web PKI roots (a private CA).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Port for MX hosts (25; tests use another).
    pub smtp_port: u16,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Most connections open to one destination at once.
    pub max_connections_per_destination: usize,
    /// Most outbound connections open at once.
    pub max_connections: usize,
    /// How long an idle connection is kept for the next message to the same destination.
    pub idle_connection_time: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub login: String,
    pub password: String,
}

/// DSN's NOTIFY (RFC 3461 §4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notify {
    pub never: bool,
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

/// One recipient of a transaction.
#[derive(Clone, Debug)]
pub struct OutboundRecipient {
    pub address: String,
    /// NOTIFY given on submission, passed on to a server that offers DSN.
    pub notify: Option<Notify>,
    /// ORCPT, `rfc822;addr` form, passed on likewise.
    pub orcpt: Option<String>,
}

/// One transaction for the next hop of `domain`.
#[derive(Clone, Debug)]
pub struct DeliveryRequest<'a> {
    /// The recipients' domain (all share it), ASCII (IDNA) form.
    pub domain: &'a str,
    /// The domain's transport from the directory; `None`: `relay_host`, else the MX.
    pub transport: Option<&'a NextHop>,
    /// The domain's TLS policy from the directory; `None`: opportunistic (`may`).
    pub tls_policy: Option<&'a TlsPolicy>,
    /// The envelope sender; empty for the null sender.
    pub sender: &'a str,
    /// DSN's ENVID and RET, passed on to a server that offers DSN.
    pub envid: Option<&'a str>,
    pub ret_full: Option<bool>,
    pub recipients: &'a [OutboundRecipient],
    /// The message with CRLF line endings, not dot-stuffed.
    pub message: &'a [u8],
}

/// What happened to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub result: AttemptResult,
    /// The enhanced status code for the DSN (`2.0.0`, `4.4.1`, `5.1.1`).
    pub status: String,
    /// RFC 3464's Diagnostic-Code, e.g. `smtp; 550 5.1.1 <u@x>: user unknown`, or a sentence
    /// of ours when no server answered (`x-mailstead; TLS required by policy, not offered`).
    pub diagnostic: String,
    /// The server that answered (`mx.example.net[192.0.2.1]:25`), when one did.
    pub remote: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered,
    /// Try again later.
    Deferred,
    /// Bounce now.
    Failed,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{0}")]
    Config(String),
}

/// Interim client until the SMTP client lands: defers everything.
pub struct Outbound {
    _config: OutboundConfig,
}

impl Outbound {
    pub fn new(config: OutboundConfig) -> Result<Outbound, OutboundError> {
        Ok(Outbound { _config: config })
    }

    pub async fn deliver(&self, request: &DeliveryRequest<'_>) -> Vec<Attempt> {
        request
            .recipients
            .iter()
            .map(|_| Attempt {
                result: AttemptResult::Deferred,
                status: "4.3.0".into(),
                diagnostic: "x-mailstead; outbound delivery not available".into(),
                remote: None,
            })
            .collect()
    }
}
