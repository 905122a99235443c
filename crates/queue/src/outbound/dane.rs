//! DANE for SMTP (RFC 7672): the TLSA records of an MX host, and the certificate check they
//! stand for. Only DANE-EE (3) and DANE-TA (2) are usable for SMTP (§3.1.3); PKIX-TA and
//! PKIX-EE records are ignored, as are unknown selectors and matching types.

use hickory_resolver::proto::rr::rdata::TLSA;
use rustls::RootCertStore;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::ParsedCertificate;
use sha2::{Digest, Sha256, Sha512};

use super::dns::{Answer, Dns};
use super::route::Host;
use super::tls::{NamePattern, certificate_matches, verify_chain};

const DANE_TA: u8 = 2;
const DANE_EE: u8 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DaneRecord {
    pub(crate) usage: u8,
    /// 0: the whole certificate, 1: its SubjectPublicKeyInfo.
    pub(crate) selector: u8,
    /// 0: the data itself, 1: SHA-256, 2: SHA-512.
    pub(crate) matching: u8,
    pub(crate) data: Vec<u8>,
}

impl DaneRecord {
    fn usable(tlsa: &TLSA) -> Option<DaneRecord> {
        let record = DaneRecord {
            usage: u8::from(tlsa.cert_usage),
            selector: u8::from(tlsa.selector),
            matching: u8::from(tlsa.matching),
            data: tlsa.cert_data.clone(),
        };
        let known = matches!(record.usage, DANE_TA | DANE_EE)
            && record.selector <= 1
            && record.matching <= 2;
        known.then_some(record)
    }

    fn matches(&self, cert: &CertificateDer<'_>) -> bool {
        let selected: Vec<u8> = match self.selector {
            0 => cert.as_ref().to_vec(),
            _ => match ParsedCertificate::try_from(cert) {
                Ok(parsed) => parsed.subject_public_key_info().as_ref().to_vec(),
                Err(_) => return false,
            },
        };
        match self.matching {
            0 => selected == self.data,
            1 => Sha256::digest(&selected).as_slice() == self.data.as_slice(),
            _ => Sha512::digest(&selected).as_slice() == self.data.as_slice(),
        }
    }
}

/// The usable TLSA records for `host`; empty when DANE does not apply (the host's name or
/// addresses, or the TLSA answer, were not DNSSEC-validated, or there are none).
///
/// # Errors
/// The TLSA lookup failed for a host whose DNS is validated: RFC 7672 §2.2 says to defer
/// rather than deliver without the records that may exist.
pub(crate) async fn usable_records(
    dns: &Dns,
    host: &Host,
    addresses_secure: bool,
) -> Result<Vec<DaneRecord>, String> {
    if host.ip().is_some() || !host.name_secure || !addresses_secure {
        return Ok(Vec::new());
    }
    let name = format!("_{}._tcp.{}", host.port, host.name);
    match dns.tlsa(&name).await {
        Ok(Answer::Found {
            records,
            secure: true,
        }) => Ok(records.iter().filter_map(DaneRecord::usable).collect()),
        Ok(_) => Ok(Vec::new()),
        Err(failure) => Err(format!("TLSA lookup failed: {}", failure.0)),
    }
}

/// # Errors
/// Why no record matches the chain the server sent.
pub(crate) fn verify(
    records: &[DaneRecord],
    names: &[NamePattern],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<(), String> {
    // DANE-EE: the key is the identity; neither names nor expiry count (RFC 7672 §3.1.1).
    if records
        .iter()
        .any(|record| record.usage == DANE_EE && record.matches(end_entity))
    {
        return Ok(());
    }
    let mut problems = Vec::new();
    for anchor in intermediates {
        if !records
            .iter()
            .any(|record| record.usage == DANE_TA && record.matches(anchor))
        {
            continue;
        }
        let mut roots = RootCertStore::empty();
        if let Err(err) = roots.add(anchor.clone().into_owned()) {
            problems.push(format!("matched trust anchor unusable: {err}"));
            continue;
        }
        let checked = verify_chain(&roots, end_entity, intermediates, now, algorithms)
            .and_then(|()| certificate_matches(end_entity, names));
        match checked {
            Ok(()) => return Ok(()),
            Err(why) => problems.push(why),
        }
    }
    if problems.is_empty() {
        return Err(format!(
            "no TLSA record matches the server's certificate chain ({} usable record(s))",
            records.len()
        ));
    }
    Err(problems.join("; "))
}
