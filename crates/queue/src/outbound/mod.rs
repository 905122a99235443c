//! The SMTP client: where a message for one remote domain goes (transport, relay host or MX),
//! with the TLS that domain's policy demands, and what each recipient's server answered.
//!
//! The queue calls [`Outbound::deliver`] with one transaction (one sender, recipients of one
//! domain, the message) and records each recipient's [`Attempt`]; it never speaks SMTP itself.
//!
//! # Layout
//! - `route.rs`: the hosts to try (transport, relay host, MX, implicit MX, null MX).
//! - `dns.rs`: MX, A/AAAA and TLSA lookups, with whether the answer was DNSSEC-validated.
//! - `tls.rs`: the TLS policies (Postfix's levels) and the certificate verifier behind them.
//! - `dane.rs`: TLSA records and DANE-EE/DANE-TA checks (RFC 7672).
//! - `client.rs`: one SMTP/LMTP session and its transactions.
//! - `pool.rs`: connection limits and idle connections kept for reuse.

mod client;
mod dane;
mod dns;
mod pool;
mod route;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mailstead_directory::model::{HopProtocol, NextHop, TlsPolicy};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;

use self::client::{Sent, Target};
use self::dns::{Answer, Dns};
use self::pool::{Permits, Pool, PoolKey};
use self::tls::{Plan, PolicyVerifier, Verifier};

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

/// Why an [`Outbound`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("cannot read the system's DNS configuration: {0}")]
    SystemDns(String),
    #[error("unusable certificate in extra_roots: {0}")]
    ExtraRoot(String),
    #[error("max_connections and max_connections_per_destination must be at least 1")]
    NoConnections,
}

/// The SMTP client, shared by every delivery (put it in an `Arc`).
pub struct Outbound {
    config: OutboundConfig,
    dns: Dns,
    /// Web PKI roots plus `extra_roots`, for `verify` and `secure`.
    roots: Arc<RootCertStore>,
    /// The verifier of opportunistic TLS: any certificate.
    any_certificate: Arc<PolicyVerifier>,
    pool: Arc<Pool>,
}

impl Outbound {
    /// # Errors
    /// The system's resolver configuration is unreadable (when `name_servers` is empty), a
    /// certificate in `extra_roots` is not a usable trust anchor, or a connection limit is 0.
    pub fn new(config: OutboundConfig) -> Result<Outbound, OutboundError> {
        if config.max_connections == 0 || config.max_connections_per_destination == 0 {
            return Err(OutboundError::NoConnections);
        }
        let dns = Dns::new(&config.name_servers, config.trust_ad_bit)?;
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for root in &config.extra_roots {
            roots
                .add(root.clone())
                .map_err(|err| OutboundError::ExtraRoot(err.to_string()))?;
        }
        let pool = Arc::new(Pool::new(
            config.max_connections,
            config.max_connections_per_destination,
            config.idle_connection_time,
        ));
        Ok(Outbound {
            config,
            dns,
            roots: Arc::new(roots),
            any_certificate: Arc::new(PolicyVerifier::new(Verifier::Any)),
            pool,
        })
    }

    /// Delivers one transaction; one [`Attempt`] per recipient of `request`, in its order.
    ///
    /// Hosts are tried in order (MX preference, then each address) while a host cannot take
    /// the mail (no connection, a refusing greeting, a TLS policy it cannot meet); once a
    /// session reaches MAIL FROM, the server's answers are the results.
    pub async fn deliver(&self, request: &DeliveryRequest<'_>) -> Vec<Attempt> {
        let n_recipients = request.recipients.len();
        if n_recipients == 0 {
            return Vec::new();
        }
        let all = |attempt: Attempt| vec![attempt; n_recipients];
        let policy = match tls::Policy::from_directory(request.tls_policy) {
            Ok(policy) => policy,
            Err(why) => return all(unmet(why, None)),
        };
        let route = match route::resolve(&self.dns, &self.config, request).await {
            Ok(route) => route,
            Err(attempt) => return all(attempt),
        };
        let mut last_failure = None;
        for host in &route.hosts {
            let (addresses, addresses_secure) = match self.addresses(host).await {
                Ok(found) => found,
                Err(attempt) => {
                    last_failure = Some(attempt);
                    continue;
                }
            };
            let plan = match tls::plan(
                &policy,
                &route,
                host,
                addresses_secure,
                &self.dns,
                &self.roots,
            )
            .await
            {
                Ok(plan) => plan,
                Err(tls::Unmet(why)) => {
                    last_failure = Some(unmet(why, None));
                    continue;
                }
            };
            for ip in addresses {
                let addr = SocketAddr::new(ip, host.port);
                match self.deliver_to(request, &route, host, addr, &plan).await {
                    Ok(attempts) => return attempts,
                    Err(attempt) => last_failure = Some(attempt),
                }
            }
        }
        all(last_failure.unwrap_or_else(|| Attempt {
            result: AttemptResult::Deferred,
            status: "4.4.4".to_owned(),
            diagnostic: format!("x-mailstead; no host to deliver to for {}", route.nexthop),
            remote: None,
        }))
    }

    /// The addresses of `host` and whether they were DNSSEC-validated.
    async fn addresses(&self, host: &route::Host) -> Result<(Vec<IpAddr>, bool), Attempt> {
        if let Some(ip) = host.ip() {
            return Ok((vec![ip], true));
        }
        let no_address = |result, status: &str, why: String| Attempt {
            result,
            status: status.to_owned(),
            diagnostic: format!("x-mailstead; {why}"),
            remote: None,
        };
        // An MX host without an address is one bad host among others; a domain without MX
        // and without address has nowhere to take mail.
        let missing = if host.from_mx {
            AttemptResult::Deferred
        } else {
            AttemptResult::Failed
        };
        let missing_status = if host.from_mx { "4.4.4" } else { "5.4.4" };
        match self.dns.addresses(&host.name).await {
            Ok(Answer::Found { records, secure }) => Ok((records, secure)),
            Ok(Answer::Empty | Answer::NxDomain) => Err(no_address(
                missing,
                missing_status,
                format!(
                    "Host or domain name not found: no address for {}",
                    host.name
                ),
            )),
            Err(failure) => Err(no_address(
                AttemptResult::Deferred,
                "4.4.3",
                format!("Host or domain name not found, try again: {}", failure.0),
            )),
        }
    }

    /// One address: a pooled session or a new one, then the transaction.
    ///
    /// # Errors
    /// The attempt for every recipient when this address cannot take the mail now.
    async fn deliver_to(
        &self,
        request: &DeliveryRequest<'_>,
        route: &route::Route,
        host: &route::Host,
        addr: SocketAddr,
        plan: &Plan,
    ) -> Result<Vec<Attempt>, Attempt> {
        let key = PoolKey {
            host: host.name.clone(),
            addr,
            tls: plan.label(),
        };
        let credentials = if route.is_relay {
            self.config.relay_auth.as_ref()
        } else {
            None
        };
        let target = Target {
            addr,
            host_name: &host.name,
            lmtp: route.protocol == HopProtocol::Lmtp,
            plan,
            auth: credentials,
            ehlo_name: &self.config.hostname,
            connect_timeout: self.config.connect_timeout,
            command_timeout: self.config.command_timeout,
            any_certificate: &self.any_certificate,
        };
        let permits = loop {
            while let Some((mut connection, permits)) = self.pool.take(&key) {
                match connection.send(request, true).await {
                    Sent::Stale => continue,
                    Sent::Done { attempts, reusable } => {
                        self.finish(key, connection, permits, reusable).await;
                        return Ok(attempts);
                    }
                }
            }
            // `None`: a connection was parked meanwhile; look for an idle one again.
            if let Some(permits) = self.pool.acquire(&key, &route.nexthop).await {
                break permits;
            }
        };
        let mut connection = client::open(&target).await?;
        match connection.send(request, false).await {
            Sent::Done { attempts, reusable } => {
                self.finish(key, connection, permits, reusable).await;
                Ok(attempts)
            }
            Sent::Stale => Err(Attempt {
                result: AttemptResult::Deferred,
                status: "4.4.2".to_owned(),
                diagnostic: format!("x-mailstead; lost connection with {}", connection.remote),
                remote: Some(connection.remote.clone()),
            }),
        }
    }

    async fn finish(
        &self,
        key: PoolKey,
        mut connection: client::Connection,
        permits: Permits,
        reusable: bool,
    ) {
        if reusable && connection.reset().await {
            self.pool.park(key, connection, permits);
        } else {
            connection.quit().await;
        }
    }
}

fn unmet(why: String, remote: Option<String>) -> Attempt {
    Attempt {
        result: AttemptResult::Deferred,
        status: "4.7.5".to_owned(),
        diagnostic: format!("x-mailstead; {why}"),
        remote,
    }
}
