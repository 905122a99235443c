//! DKIM keys: making a key pair in the forms the directory stores (and OpenDKIM reads), and
//! the DNS TXT record that publishes its public half.
//!
//! # Format
//! - ed25519 (RFC 8463): the private key is PKCS#8 DER in a `PRIVATE KEY` PEM block; `p=` is
//!   the raw 32-byte public key in base64.
//! - rsa (RFC 6376): the private key is PKCS#1 DER in an `RSA PRIVATE KEY` PEM block; `p=` is
//!   the SubjectPublicKeyInfo DER in base64, what `openssl rsa -pubout` and `opendkim-genkey`
//!   publish (OpenDKIM reads no other form; most verifiers read both).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mail_auth::dkim::generate::DkimKeyPair;

use mailstead_directory::model::DkimAlgorithm;

use crate::AdminError;

/// RSA sizes `generate` accepts. RFC 8301 lets verifiers take 1024 bits, but the signer
/// (mail-auth on ring) refuses to sign with fewer than 2048, so a smaller key would be stored
/// and never used; above 4096 the record no longer fits in one DNS answer for many resolvers.
pub const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;
/// The RSA size when none is asked for (RFC 8301 asks signers for at least 2048).
pub const DEFAULT_RSA_BITS: usize = 2048;

/// A new key pair, ready for `Directory::add_dkim_key`.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    /// PEM, in the form `DkimAlgorithm::pem_label` names.
    pub private_key_pem: String,
    /// Base64 of the DNS record's `p=` value.
    pub public_key_b64: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("private_key_pem", &"<redacted>")
            .field("public_key_b64", &self.public_key_b64)
            .finish()
    }
}

/// Makes a key pair; `rsa_bits` is used for RSA only.
///
/// # Errors
/// [`AdminError::Usage`] for an RSA size outside [`RSA_BITS`] or not a multiple of 8, and
/// [`AdminError::Dkim`] when the crypto library fails (the random generator, in practice).
pub fn generate(algorithm: DkimAlgorithm, rsa_bits: usize) -> Result<GeneratedKey, AdminError> {
    let crypto = |err: mail_auth::Error| AdminError::Dkim(err.to_string());
    match algorithm {
        DkimAlgorithm::Ed25519 => {
            let pair = DkimKeyPair::generate_ed25519().map_err(crypto)?;
            Ok(GeneratedKey {
                private_key_pem: pem(algorithm.pem_label(), pair.private_key()),
                public_key_b64: STANDARD.encode(pair.public_key()),
            })
        }
        DkimAlgorithm::Rsa => {
            if !RSA_BITS.contains(&rsa_bits) || !rsa_bits.is_multiple_of(8) {
                return Err(AdminError::Usage(format!(
                    "an RSA key of {rsa_bits} bits is not allowed; use a multiple of 8 from {} to {} (2048 is the usual choice; the signer cannot use fewer)",
                    RSA_BITS.start(),
                    RSA_BITS.end()
                )));
            }
            let pair = DkimKeyPair::generate_rsa(rsa_bits).map_err(crypto)?;
            Ok(GeneratedKey {
                private_key_pem: pem(algorithm.pem_label(), pair.private_key()),
                public_key_b64: STANDARD.encode(rsa_subject_public_key_info(pair.public_key())),
            })
        }
    }
}

/// The selector a new key gets when none is named: `s` and the UTC year and month, so a new
/// key each month gets a new name, and the name says how old the key is.
pub fn default_selector() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("s{:04}{:02}", now.year(), u8::from(now.month()))
}

/// The TXT record publishing a key, as one zone-file line:
/// `s202612._domainkey.example.com. IN TXT "v=DKIM1; k=ed25519; p=…"`. A value longer than
/// 255 bytes (any RSA key) is split into several quoted strings, which DNS joins.
pub fn dns_record(
    selector: &str,
    domain: &str,
    algorithm: DkimAlgorithm,
    public_key_b64: &str,
) -> String {
    let value = format!("v=DKIM1; k={}; p={public_key_b64}", algorithm.as_str());
    let strings: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect();
    format!(
        "{selector}._domainkey.{domain}. IN TXT {}",
        strings.join(" ")
    )
}

/// A PEM block with 64-character lines (RFC 7468).
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Wraps a PKCS#1 `RSAPublicKey` in a SubjectPublicKeyInfo:
/// `SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { 0 unused bits, key } }`.
fn rsa_subject_public_key_info(pkcs1: &[u8]) -> Vec<u8> {
    // 1.2.840.113549.1.1.1 (rsaEncryption) with its NULL parameters, already DER.
    const ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x00];
    bit_string.extend_from_slice(pkcs1);
    let mut body = ALGORITHM.to_vec();
    body.extend(der_element(0x03, &bit_string));
    der_element(0x30, &body)
}

/// One DER element: tag, length (short or long form), contents.
fn der_element(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|byte| *byte == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(contents);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};

    use super::*;

    fn pem_body(pem: &str, label: &str) -> Vec<u8> {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines.first().copied(), Some(begin.as_str()));
        assert_eq!(lines.last().copied(), Some(end.as_str()));
        let body = &lines[1..lines.len() - 1];
        assert!(body.iter().all(|line| line.len() <= 64), "{pem}");
        STANDARD.decode(body.concat()).unwrap()
    }

    #[test]
    fn ed25519_keys_load_back_and_sign() {
        let key = generate(DkimAlgorithm::Ed25519, DEFAULT_RSA_BITS).unwrap();
        let der = pem_body(&key.private_key_pem, "PRIVATE KEY");
        let loaded = Ed25519Key::from_pkcs8_der(&der).unwrap();
        assert_eq!(
            STANDARD.encode(loaded.public_key()),
            key.public_key_b64,
            "the published key is the private key's"
        );
        let signature = loaded.sign(&b"From: a@example.com\r\n"[..]).unwrap();
        assert_eq!(signature.len(), 64);
        assert!(!format!("{key:?}").contains(&key.private_key_pem[30..60]));
    }

    #[test]
    #[allow(deprecated)] // from_rsa_pem: the form OpenDKIM stores is exactly what is tested.
    fn rsa_keys_load_back_and_sign_and_publish_spki() {
        let key = generate(DkimAlgorithm::Rsa, 2048).unwrap();
        pem_body(&key.private_key_pem, "RSA PRIVATE KEY");
        let loaded = RsaKey::<Sha256>::from_rsa_pem(&key.private_key_pem).unwrap();
        let signature = loaded.sign(&b"From: a@example.com\r\n"[..]).unwrap();
        assert_eq!(signature.len(), 256);
        // SubjectPublicKeyInfo: it starts with the rsaEncryption algorithm and ends with the
        // PKCS#1 key the private key holds.
        let spki = STANDARD.decode(&key.public_key_b64).unwrap();
        assert_eq!(spki[0], 0x30);
        assert!(spki.windows(11).any(|w| w
            == [
                0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01
            ]));
        assert!(spki.ends_with(&loaded.public_key()));
    }

    #[test]
    fn rsa_sizes_are_checked() {
        for bits in [1024, 2044, 8192] {
            let err = generate(DkimAlgorithm::Rsa, bits).unwrap_err().to_string();
            assert!(err.contains("2048 to 4096"), "{bits}: {err}");
        }
    }

    #[test]
    fn dns_records_split_long_values_into_255_byte_strings() {
        let short = dns_record("s202612", "example.com", DkimAlgorithm::Ed25519, "cHVi");
        assert_eq!(
            short,
            "s202612._domainkey.example.com. IN TXT \"v=DKIM1; k=ed25519; p=cHVi\""
        );
        let long_key = "A".repeat(400);
        let long = dns_record("s1", "example.com", DkimAlgorithm::Rsa, &long_key);
        let strings: Vec<&str> = long.split('"').skip(1).step_by(2).collect();
        assert_eq!(strings.len(), 2, "{long}");
        assert!(strings.iter().all(|s| s.len() <= 255), "{long}");
        assert_eq!(strings.concat(), format!("v=DKIM1; k=rsa; p={long_key}"));
    }
}
