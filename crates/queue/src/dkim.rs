//! DKIM signing of submitted mail with the sending domain's key from the directory
//! (`mailstead dkim generate`), by mail-auth.

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use mailstead_directory::model::{DkimAlgorithm, DkimKey};

/// The header fields signed: RFC 6376 §5.4.1's list, as OpenDKIM signs by default.
const SIGNED_HEADERS: [&str; 14] = [
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Id",
    "List-Unsubscribe",
];

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("the DKIM key of {domain} (selector {selector}) cannot be used: {reason}")]
    BadKey {
        domain: String,
        selector: String,
        reason: String,
    },
    #[error("signing failed: {0}")]
    Sign(String),
}

/// The `DKIM-Signature:` header line (CRLF-terminated) for `message` (wire form).
pub fn sign(key: &DkimKey, message: &[u8]) -> Result<String, DkimError> {
    let info = &key.info;
    let bad_key = |reason: String| DkimError::BadKey {
        domain: info.domain.clone(),
        selector: info.selector.clone(),
        reason,
    };
    // PKCS#8 ("PRIVATE KEY") for Ed25519, PKCS#1 ("RSA PRIVATE KEY", OpenDKIM's files) or
    // PKCS#8 for RSA.
    let der = PrivateKeyDer::from_pem_slice(key.private_key_pem().as_bytes())
        .map_err(|err| bad_key(format!("not a PEM private key: {err}")))?;
    let signature = match info.algorithm {
        DkimAlgorithm::Ed25519 => {
            let signing_key = Ed25519Key::from_pkcs8_der(der.secret_der())
                .map_err(|err| bad_key(err.to_string()))?;
            DkimSigner::from_key(signing_key)
                .domain(info.domain.clone())
                .selector(info.selector.clone())
                .headers(SIGNED_HEADERS)
                .sign(message)
        }
        DkimAlgorithm::Rsa => {
            let signing_key =
                RsaKey::<Sha256>::from_key_der(der).map_err(|err| bad_key(err.to_string()))?;
            DkimSigner::from_key(signing_key)
                .domain(info.domain.clone())
                .selector(info.selector.clone())
                .headers(SIGNED_HEADERS)
                .sign(message)
        }
    };
    signature
        .map(|signature| signature.to_header())
        .map_err(|err| DkimError::Sign(err.to_string()))
}
