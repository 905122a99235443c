//! DNS lookups for routing and DANE: MX, A/AAAA and TLSA, each with whether the answer came
//! DNSSEC-validated (the AD bit from a resolver we trust).
//!
//! The resolver's pool of name servers is used directly, not `Resolver::lookup`: the resolver
//! neither asks for DNSSEC (the DO bit) unless it validates itself, nor hands back the header of
//! the answer, and both are needed to trust the AD bit of a validating resolver on loopback,
//! which is how Postfix does DANE.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::{DnsHandle, FirstAnswer};
use hickory_resolver::proto::op::{DnsRequestOptions, Query};
use hickory_resolver::proto::rr::rdata::TLSA;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig};

use super::OutboundError;

/// What the name servers said about one name and type.
#[derive(Clone, Debug)]
pub(crate) enum Answer<T> {
    /// Records of the type asked for; `secure` when the answer was DNSSEC-validated.
    Found { records: Vec<T>, secure: bool },
    /// The name exists without records of this type.
    Empty,
    /// The name does not exist.
    NxDomain,
}

/// The lookup could not be answered now (SERVFAIL, timeout, no server reachable).
#[derive(Clone, Debug)]
pub(crate) struct DnsFailure(pub(crate) String);

pub(crate) struct Dns {
    pool: NameServerPool<TokioRuntimeProvider>,
    options: DnsRequestOptions,
    trust_ad_bit: bool,
}

impl Dns {
    pub(crate) fn new(
        name_servers: &[std::net::SocketAddr],
        trust_ad_bit: bool,
    ) -> Result<Dns, OutboundError> {
        let (servers, options) = if name_servers.is_empty() {
            let (config, options) = hickory_resolver::system_conf::read_system_conf()
                .map_err(|err| OutboundError::SystemDns(err.to_string()))?;
            (config.name_servers().to_vec(), options)
        } else {
            let servers = name_servers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            (servers, ResolverOpts::default())
        };
        let mut request = DnsRequestOptions::default();
        request.recursion_desired = true;
        request.use_edns = true;
        request.edns_payload_len = options.edns_payload_len;
        // DO: a validating resolver sets AD only for a client that shows it understands DNSSEC
        // (RFC 6840 §5.7).
        request.edns_set_dnssec_ok = true;
        let tls = TlsConfig::new().map_err(|err| OutboundError::SystemDns(err.to_string()))?;
        let context = Arc::new(PoolContext::new(options, tls));
        let pool = NameServerPool::from_config(servers, context, TokioRuntimeProvider::default());
        Ok(Dns {
            pool,
            options: request,
            trust_ad_bit,
        })
    }

    /// MX records of `domain`, as (preference, exchange without the final dot); the null MX
    /// is the exchange `""`.
    pub(crate) async fn mx(&self, domain: &str) -> Result<Answer<(u16, String)>, DnsFailure> {
        self.lookup(domain, RecordType::MX, |data| match data {
            RData::MX(mx) => Some((mx.preference, exchange_name(&mx.exchange))),
            _ => None,
        })
        .await
    }

    /// IPv4 then IPv6 addresses of `host`; secure only when every answer that had records was.
    pub(crate) async fn addresses(&self, host: &str) -> Result<Answer<IpAddr>, DnsFailure> {
        let (v4, v6) = tokio::join!(
            self.lookup(host, RecordType::A, |data| match data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            }),
            self.lookup(host, RecordType::AAAA, |data| match data {
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            }),
        );
        let mut all = Vec::new();
        let mut secure = true;
        let mut failure = None;
        let mut nxdomain = false;
        for answer in [v4, v6] {
            match answer {
                Ok(Answer::Found {
                    records,
                    secure: this_secure,
                }) => {
                    all.extend(records);
                    secure &= this_secure;
                }
                Ok(Answer::Empty) => {}
                Ok(Answer::NxDomain) => nxdomain = true,
                Err(err) => failure = Some(err),
            }
        }
        match (all.is_empty(), failure, nxdomain) {
            (false, _, _) => Ok(Answer::Found {
                records: all,
                secure,
            }),
            (true, Some(failure), _) => Err(failure),
            (true, None, true) => Ok(Answer::NxDomain),
            (true, None, false) => Ok(Answer::Empty),
        }
    }

    pub(crate) async fn tlsa(&self, name: &str) -> Result<Answer<TLSA>, DnsFailure> {
        self.lookup(name, RecordType::TLSA, |data| match data {
            RData::TLSA(tlsa) => Some(tlsa.clone()),
            _ => None,
        })
        .await
    }

    async fn lookup<T>(
        &self,
        name: &str,
        record_type: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Answer<T>, DnsFailure> {
        let fqdn = if name.ends_with('.') {
            name.to_owned()
        } else {
            format!("{name}.")
        };
        let query_name = Name::from_ascii(&fqdn)
            .map_err(|err| DnsFailure(format!("bad name {name:?}: {err}")))?;
        let query = Query::query(query_name, record_type);
        let response = self.pool.lookup(query, self.options).first_answer().await;
        let response = match response {
            Ok(response) => response,
            Err(err) if err.is_nx_domain() => return Ok(Answer::NxDomain),
            Err(err) if err.is_no_records_found() => return Ok(Answer::Empty),
            Err(err) => return Err(failure(name, record_type, &err)),
        };
        let records: Vec<T> = response
            .answers
            .iter()
            .filter(|record| record.record_type() == record_type)
            .filter_map(|record| pick(&record.data))
            .collect();
        if records.is_empty() {
            return Ok(Answer::Empty);
        }
        Ok(Answer::Found {
            records,
            secure: self.trust_ad_bit && response.metadata.authentic_data,
        })
    }
}

fn exchange_name(name: &Name) -> String {
    let text = name.to_ascii();
    text.trim_end_matches('.').to_ascii_lowercase()
}

fn failure(name: &str, record_type: RecordType, err: &NetError) -> DnsFailure {
    DnsFailure(format!(
        "name service error for name={name} type={record_type}: {err}"
    ))
}
