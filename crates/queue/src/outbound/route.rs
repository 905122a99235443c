//! Where a transaction goes: the transport, else the relay host, else the domain's MX hosts
//! (RFC 5321 §5.1: by preference, the null MX of RFC 7505, the implicit MX).

use mailstead_directory::model::{HopProtocol, NextHop};

use super::dns::{Answer, Dns};
use super::{Attempt, AttemptResult, DeliveryRequest, OutboundConfig};

/// The hosts to try, in order, for one transaction.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub(crate) protocol: HopProtocol,
    /// Postfix's next-hop domain: the recipient domain, or the transport's or relay's host;
    /// the name `secure` matches certificates against by default.
    pub(crate) nexthop: String,
    /// The relay host from the configuration: the only place AUTH is used.
    pub(crate) is_relay: bool,
    pub(crate) hosts: Vec<Host>,
}

#[derive(Clone, Debug)]
pub(crate) struct Host {
    /// A host name (lower case, no final dot) or an IP address.
    pub(crate) name: String,
    pub(crate) port: u16,
    /// The name came from an MX answer (not written by an administrator).
    pub(crate) from_mx: bool,
    /// The MX answer that named this host was DNSSEC-validated; true for a host written in
    /// the configuration or an implicit MX, whose names no DNS answer chose.
    pub(crate) name_secure: bool,
}

impl Host {
    pub(crate) fn ip(&self) -> Option<std::net::IpAddr> {
        self.name.parse().ok()
    }
}

/// # Errors
/// The attempt every recipient gets when no host can be found: NXDOMAIN and the null MX fail,
/// a DNS failure defers.
pub(crate) async fn resolve(
    dns: &Dns,
    config: &OutboundConfig,
    request: &DeliveryRequest<'_>,
) -> Result<Route, Attempt> {
    let (hop, is_relay) = match (request.transport, config.relay_host.as_ref()) {
        (Some(transport), _) => (Some(transport), false),
        (None, Some(relay)) => (Some(relay), true),
        (None, None) => (None, false),
    };
    let Some(hop) = hop else {
        let hosts = mx_hosts(dns, request.domain, config.smtp_port).await?;
        return Ok(Route {
            protocol: HopProtocol::Smtp,
            nexthop: request.domain.to_ascii_lowercase(),
            is_relay: false,
            hosts,
        });
    };
    let port = hop.port.unwrap_or(config.smtp_port);
    let hosts = if hop_is_literal(hop) {
        vec![Host {
            name: hop.host.clone(),
            port,
            from_mx: false,
            name_secure: true,
        }]
    } else {
        mx_hosts(dns, &hop.host, port).await?
    };
    Ok(Route {
        protocol: hop.protocol,
        nexthop: hop.host.clone(),
        is_relay,
        hosts,
    })
}

fn hop_is_literal(hop: &NextHop) -> bool {
    hop.no_mx || hop.protocol == HopProtocol::Lmtp
}

async fn mx_hosts(dns: &Dns, domain: &str, port: u16) -> Result<Vec<Host>, Attempt> {
    let answer = dns.mx(domain).await.map_err(|failure| {
        no_route(
            AttemptResult::Deferred,
            "4.4.3",
            format!("Host or domain name not found, try again: {}", failure.0),
        )
    })?;
    match answer {
        Answer::NxDomain => Err(no_route(
            AttemptResult::Failed,
            "5.1.2",
            format!("Host or domain name not found: {domain} does not exist (NXDOMAIN)"),
        )),
        // RFC 5321 §5.1: no MX, the domain itself is the host (its addresses are looked up
        // when it is tried). No DNS answer chose that name, so there is none to distrust.
        Answer::Empty => Ok(vec![Host {
            name: domain.to_ascii_lowercase(),
            port,
            from_mx: false,
            name_secure: true,
        }]),
        Answer::Found {
            mut records,
            secure,
        } => {
            // RFC 7505: a single MX "." says the domain takes no mail.
            if records.iter().any(|(_, exchange)| exchange.is_empty()) {
                return Err(no_route(
                    AttemptResult::Failed,
                    "5.1.10",
                    format!("Domain {domain} does not accept mail (nullMX)"),
                ));
            }
            records.sort_by_key(|(preference, _)| *preference);
            records.dedup_by(|a, b| a.1 == b.1);
            Ok(records
                .into_iter()
                .map(|(_, exchange)| Host {
                    name: exchange,
                    port,
                    from_mx: true,
                    name_secure: secure,
                })
                .collect())
        }
    }
}

fn no_route(result: AttemptResult, status: &str, why: String) -> Attempt {
    Attempt {
        result,
        status: status.to_owned(),
        diagnostic: format!("x-mailstead; {why}"),
        remote: None,
    }
}
