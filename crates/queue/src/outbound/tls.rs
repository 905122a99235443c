//! TLS per destination, as Postfix's `smtp_tls_policy_maps` levels: what each level asks of a
//! host (the [`Plan`]) and the certificate verifiers that enforce it.

use std::sync::Arc;

use mailstead_directory::model::{TlsPolicy, TlsPolicyKind};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use super::dane::{self, DaneRecord};
use super::route::{Host, Route};

/// The policy of one transaction, parsed once.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub(crate) kind: TlsPolicyKind,
    /// `match=` values as written (several `match=` attributes are joined).
    matches: Vec<String>,
}

impl Policy {
    /// # Errors
    /// A sentence for the diagnostic when the parameters cannot be used.
    pub(crate) fn from_directory(policy: Option<&TlsPolicy>) -> Result<Policy, String> {
        let Some(policy) = policy.filter(|policy| policy.active) else {
            return Ok(Policy {
                kind: TlsPolicyKind::May,
                matches: Vec::new(),
            });
        };
        let matches: Vec<String> = policy
            .params
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|attribute| attribute.strip_prefix("match="))
            .map(str::to_owned)
            .collect();
        if policy.policy == TlsPolicyKind::Fingerprint && fingerprints(&matches).is_empty() {
            return Err(format!(
                "TLS policy \"fingerprint\" for {} has no usable SHA-256 fingerprint in match=",
                policy.domain
            ));
        }
        Ok(Policy {
            kind: policy.policy,
            matches,
        })
    }
}

/// What to do about TLS with one host.
#[derive(Clone)]
pub(crate) enum Plan {
    /// `none`: never STARTTLS.
    Plain,
    /// `may`, and `dane` without usable TLSA: STARTTLS when offered, any certificate; a
    /// failed handshake is retried in plaintext, as Postfix does.
    Opportunistic,
    /// TLS or no delivery; the verifier decides about the certificate.
    Required {
        /// The policy's name for diagnostics (`verify`, `dane-only`, ...).
        policy: &'static str,
        verifier: Arc<PolicyVerifier>,
    },
}

impl Plan {
    /// Tells apart connections in the pool: a connection made under a weaker plan must not
    /// carry mail that requires a stronger one.
    pub(crate) fn label(&self) -> String {
        match self {
            Plan::Plain => "none".to_owned(),
            Plan::Opportunistic => "may".to_owned(),
            Plan::Required { policy, verifier } => format!("{policy} {}", verifier.describe()),
        }
    }
}

/// A host whose policy cannot be met: `4.7.5` and why.
pub(crate) struct Unmet(pub(crate) String);

/// The plan for `host` under `policy`; looks up TLSA records for `dane` and `dane-only`.
///
/// # Errors
/// [`Unmet`] when the policy cannot be met with this host whatever it offers.
pub(crate) async fn plan(
    policy: &Policy,
    route: &Route,
    host: &Host,
    addresses_secure: bool,
    dns: &super::dns::Dns,
    roots: &Arc<RootCertStore>,
) -> Result<Plan, Unmet> {
    let kind = policy.kind;
    let required = |verifier: Verifier| Plan::Required {
        policy: kind.as_str(),
        verifier: Arc::new(PolicyVerifier::new(verifier)),
    };
    match kind {
        TlsPolicyKind::None => Ok(Plan::Plain),
        TlsPolicyKind::May => Ok(Plan::Opportunistic),
        TlsPolicyKind::Encrypt => Ok(required(Verifier::Any)),
        TlsPolicyKind::Fingerprint => Ok(required(Verifier::Fingerprint(fingerprints(
            &policy.matches,
        )))),
        TlsPolicyKind::Verify | TlsPolicyKind::Secure => {
            let names = name_patterns(policy, route, host)?;
            Ok(required(Verifier::Pki {
                roots: roots.clone(),
                names,
            }))
        }
        TlsPolicyKind::Dane | TlsPolicyKind::DaneOnly => {
            match dane::usable_records(dns, host, addresses_secure).await {
                Ok(records) if !records.is_empty() => Ok(required(Verifier::Dane {
                    records,
                    names: vec![
                        NamePattern::Exact(host.name.clone()),
                        NamePattern::Exact(route.nexthop.clone()),
                    ],
                })),
                Ok(_) if kind == TlsPolicyKind::Dane => Ok(Plan::Opportunistic),
                Ok(_) => Err(Unmet(format!(
                    "TLS policy \"dane-only\": no usable DNSSEC-validated TLSA records for {}",
                    host.name
                ))),
                Err(why) => Err(Unmet(format!("TLS policy \"{}\": {why}", kind.as_str()))),
            }
        }
    }
}

/// Postfix's `match=` for `verify` and `secure`: `hostname`, `nexthop`, `dot-nexthop`,
/// `.domain` (any subdomain) or a name; colon-separated.
fn name_patterns(policy: &Policy, route: &Route, host: &Host) -> Result<Vec<NamePattern>, Unmet> {
    let secure = policy.kind == TlsPolicyKind::Secure;
    let written: Vec<String> = if policy.matches.is_empty() {
        let default = if secure {
            "nexthop:dot-nexthop"
        } else {
            "hostname"
        };
        vec![default.to_owned()]
    } else {
        policy.matches.clone()
    };
    let mut names = Vec::new();
    for token in written.iter().flat_map(|value| value.split(':')) {
        let token = token.trim().to_ascii_lowercase();
        match token.as_str() {
            "" => {}
            // An MX name from DNS without DNSSEC could be an attacker's: `secure` only
            // matches it when the MX answer was validated (Postfix does the same).
            "hostname" if secure && !host.name_secure => {}
            "hostname" => names.push(NamePattern::Exact(host.name.clone())),
            "nexthop" => names.push(NamePattern::Exact(route.nexthop.clone())),
            "dot-nexthop" => names.push(NamePattern::Subdomain(route.nexthop.clone())),
            _ => match token.strip_prefix('.') {
                Some(parent) => names.push(NamePattern::Subdomain(parent.to_owned())),
                None => names.push(NamePattern::Exact(token.clone())),
            },
        }
    }
    if names.is_empty() {
        return Err(Unmet(format!(
            "TLS policy \"{}\": no name to match the certificate of {} against (an MX name from DNS without DNSSEC is not trusted)",
            policy.kind.as_str(),
            host.name
        )));
    }
    Ok(names)
}

/// SHA-256 fingerprints from `match=`: hex with or without colons, several separated by `|`,
/// `,` or spaces (Postfix's forms); others (MD5, SHA-1 lengths) are ignored.
fn fingerprints(matches: &[String]) -> Vec<Vec<u8>> {
    matches
        .iter()
        .flat_map(|value| value.split(['|', ',', ' ']))
        .filter_map(|value| {
            let hex: String = value.chars().filter(|c| *c != ':').collect();
            let bytes = decode_hex(&hex)?;
            (bytes.len() == 32).then_some(bytes)
        })
        .collect()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NamePattern {
    Exact(String),
    /// Any name below this domain, not the domain itself.
    Subdomain(String),
}

impl NamePattern {
    /// `dns_name` from the certificate may be a wildcard (`*.example.com`), which stands for
    /// exactly one label.
    fn matches(&self, dns_name: &str) -> bool {
        let dns_name = dns_name.trim_end_matches('.').to_ascii_lowercase();
        match self {
            NamePattern::Exact(name) => match dns_name.strip_prefix("*.") {
                Some(parent) => name
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => dns_name == *name,
            },
            NamePattern::Subdomain(parent) => {
                let base = dns_name.strip_prefix("*.").unwrap_or(&dns_name);
                let below = base.len() > parent.len() + 1
                    && base.ends_with(parent.as_str())
                    && base.as_bytes()[base.len() - parent.len() - 1] == b'.';
                below || (dns_name.starts_with("*.") && base == parent)
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            NamePattern::Exact(name) => name.clone(),
            NamePattern::Subdomain(parent) => format!(".{parent}"),
        }
    }
}

/// Whether the leaf certificate names one of `patterns` (its subjectAltName DNS names).
pub(crate) fn certificate_matches(
    end_entity: &CertificateDer<'_>,
    patterns: &[NamePattern],
) -> Result<(), String> {
    let cert = webpki::EndEntityCert::try_from(end_entity)
        .map_err(|err| format!("unreadable certificate: {err}"))?;
    let names: Vec<&str> = cert.valid_dns_names().collect();
    if names
        .iter()
        .any(|name| patterns.iter().any(|pattern| pattern.matches(name)))
    {
        return Ok(());
    }
    Err(format!(
        "certificate names {} match none of {}",
        if names.is_empty() {
            "(none)".to_owned()
        } else {
            names.join(", ")
        },
        patterns
            .iter()
            .map(NamePattern::describe)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

pub(crate) enum Verifier {
    /// `encrypt`, and opportunistic TLS: any certificate.
    Any,
    Fingerprint(Vec<Vec<u8>>),
    Pki {
        roots: Arc<RootCertStore>,
        names: Vec<NamePattern>,
    },
    Dane {
        records: Vec<DaneRecord>,
        /// For DANE-TA: the TLSA base domain and the next-hop domain (RFC 7672 §3.2.2).
        names: Vec<NamePattern>,
    },
}

/// The one `ServerCertVerifier` behind every policy; handshake signatures are always checked,
/// so even an unverified peer proves it holds the key of the certificate it sent.
pub(crate) struct PolicyVerifier {
    verifier: Verifier,
    algorithms: WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for PolicyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PolicyVerifier({})", self.describe())
    }
}

impl PolicyVerifier {
    pub(crate) fn new(verifier: Verifier) -> PolicyVerifier {
        PolicyVerifier {
            verifier,
            algorithms: provider().signature_verification_algorithms,
        }
    }

    fn describe(&self) -> String {
        match &self.verifier {
            Verifier::Any => "any".to_owned(),
            Verifier::Fingerprint(digests) => digests
                .iter()
                .map(|digest| hex(digest))
                .collect::<Vec<_>>()
                .join("|"),
            Verifier::Pki { names, .. } | Verifier::Dane { names, .. } => names
                .iter()
                .map(NamePattern::describe)
                .collect::<Vec<_>>()
                .join(":"),
        }
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), String> {
        match &self.verifier {
            Verifier::Any => Ok(()),
            Verifier::Fingerprint(digests) => {
                let parsed = ParsedCertificate::try_from(end_entity)
                    .map_err(|err| format!("unreadable certificate: {err}"))?;
                let cert_digest = Sha256::digest(end_entity.as_ref());
                let spki_digest = Sha256::digest(parsed.subject_public_key_info().as_ref());
                let found = digests.iter().any(|digest| {
                    digest.as_slice() == cert_digest.as_slice()
                        || digest.as_slice() == spki_digest.as_slice()
                });
                if found {
                    Ok(())
                } else {
                    Err(format!(
                        "certificate fingerprint {} (public key {}) is not in match=",
                        hex(&cert_digest),
                        hex(&spki_digest)
                    ))
                }
            }
            Verifier::Pki { roots, names } => {
                verify_chain(roots, end_entity, intermediates, now, &self.algorithms)?;
                certificate_matches(end_entity, names)
            }
            Verifier::Dane { records, names } => dane::verify(
                records,
                names,
                end_entity,
                intermediates,
                now,
                &self.algorithms,
            ),
        }
    }
}

/// The chain from `end_entity` through `intermediates` to one of `roots`, for server
/// authentication, valid now.
pub(crate) fn verify_chain(
    roots: &RootCertStore,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<(), String> {
    let parsed = ParsedCertificate::try_from(end_entity)
        .map_err(|err| format!("unreadable certificate: {err}"))?;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        roots,
        intermediates,
        now,
        algorithms.all,
    )
    .map_err(|err| format!("certificate chain not trusted: {err}"))
}

impl ServerCertVerifier for PolicyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The names come from the policy, not from the SNI name rustls was given.
        self.check(end_entity, intermediates, now)
            .map(|()| ServerCertVerified::assertion())
            .map_err(rustls::Error::General)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

pub(crate) fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// # Errors
/// rustls refuses the protocol versions (never with the ring provider's defaults).
pub(crate) fn client_config(verifier: Arc<PolicyVerifier>) -> Result<ClientConfig, String> {
    let config = ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_postfix_does() {
        let exact = NamePattern::Exact("mx.example.net".into());
        assert!(exact.matches("mx.example.net"));
        assert!(exact.matches("*.example.net"));
        assert!(!exact.matches("example.net"));
        assert!(!exact.matches("*.mx.example.net"));
        let below = NamePattern::Subdomain("example.net".into());
        assert!(below.matches("mx.example.net"));
        assert!(below.matches("a.b.example.net"));
        assert!(below.matches("*.example.net"));
        assert!(!below.matches("example.net"));
        assert!(!below.matches("badexample.net"));
    }

    #[test]
    fn fingerprints_in_postfix_forms() {
        let one = "AA:".repeat(31) + "AA";
        let two = "bb".repeat(32);
        let found = fingerprints(&[format!("{one}|{two}"), "12:34".into()]);
        assert_eq!(found, vec![vec![0xAA; 32], vec![0xBB; 32]]);
    }
}
