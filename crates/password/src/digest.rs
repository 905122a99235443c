//! Plain and salted message digests: `{SHA}`, `{SHA256}`, `{SHA512}`,
//! `{PLAIN-MD5}`, `{SSHA}`, `{SSHA256}`, `{SSHA512}`, `{SMD5}`.
//!
//! Dovecot stores `digest` or `digest || salt`, base64 by default or hex with
//! a `.HEX` suffix. The salted forms hash `password || salt`.

use md5::Md5;
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq as _;

use crate::PasswordError;
use crate::encoding::{b64_decode, hex_decode};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DigestAlg {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl DigestAlg {
    pub(crate) const fn len(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// Digest of the concatenation of `parts`.
    pub(crate) fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Self::Md5 => run::<Md5>(parts),
            Self::Sha1 => run::<Sha1>(parts),
            Self::Sha256 => run::<Sha256>(parts),
            Self::Sha512 => run::<Sha512>(parts),
        }
    }
}

/// How the digest bytes are written after the `{SCHEME}` prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// No `.HEX`/`.B64` suffix: the scheme's default applies.
    Default,
    Hex,
    Base64,
}

/// Decodes the digest part of a value of an unsalted scheme.
///
/// Without a suffix Dovecot guesses (password-scheme.c, `password_decode`):
/// a string exactly twice the digest length is hex, falling back to base64
/// if it is not valid hex; anything else is base64. `{SHA}` values written by
/// `sha1sum`-style tools are hex, LDAP's are base64, so both occur in practice.
pub(crate) fn decode_unsalted(
    scheme: &'static str,
    alg: DigestAlg,
    encoding: Encoding,
    text: &str,
) -> Result<Vec<u8>, PasswordError> {
    let raw = match encoding {
        Encoding::Hex => {
            hex_decode(text).ok_or(PasswordError::malformed(scheme, "not valid hex"))?
        }
        Encoding::Base64 => {
            b64_decode(text).ok_or(PasswordError::malformed(scheme, "not valid base64"))?
        }
        Encoding::Default => {
            let hex = if text.len() == alg.len() * 2 {
                hex_decode(text)
            } else {
                None
            };
            match hex {
                Some(raw) => raw,
                None => b64_decode(text)
                    .ok_or(PasswordError::malformed(scheme, "neither hex nor base64"))?,
            }
        }
    };
    if raw.len() != alg.len() {
        return Err(PasswordError::malformed(
            scheme,
            "digest has the wrong length for this scheme",
        ));
    }
    Ok(raw)
}

/// Decodes `digest || salt` of a salted scheme and splits it.
pub(crate) fn decode_salted(
    scheme: &'static str,
    alg: DigestAlg,
    encoding: Encoding,
    text: &str,
) -> Result<(Vec<u8>, Vec<u8>), PasswordError> {
    // Salted schemes have no fixed length, so Dovecot makes no hex guess.
    let mut raw = match encoding {
        Encoding::Hex => {
            hex_decode(text).ok_or(PasswordError::malformed(scheme, "not valid hex"))?
        }
        Encoding::Default | Encoding::Base64 => {
            b64_decode(text).ok_or(PasswordError::malformed(scheme, "not valid base64"))?
        }
    };
    // Dovecot requires a non-empty salt; an unsalted digest under a salted
    // scheme name is more likely a mix-up than a design.
    if raw.len() <= alg.len() {
        return Err(PasswordError::malformed(
            scheme,
            "too short to hold digest and salt",
        ));
    }
    let salt = raw.split_off(alg.len());
    Ok((raw, salt))
}

pub(crate) fn verify_unsalted(alg: DigestAlg, expected: &[u8], password: &[u8]) -> bool {
    alg.hash(&[password]).ct_eq(expected).into()
}

pub(crate) fn verify_salted(alg: DigestAlg, expected: &[u8], salt: &[u8], password: &[u8]) -> bool {
    alg.hash(&[password, salt]).ct_eq(expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        // RFC 1321 / FIPS 180 test value "abc".
        assert_eq!(
            DigestAlg::Md5.hash(&[b"a", b"bc"]),
            hex_decode("900150983cd24fb0d6963f7d28e17f72").unwrap()
        );
        assert_eq!(
            DigestAlg::Sha1.hash(&[b"abc"]),
            hex_decode("a9993e364706816aba3e25717850c26c9cd0d89d").unwrap()
        );
        for alg in [
            DigestAlg::Md5,
            DigestAlg::Sha1,
            DigestAlg::Sha256,
            DigestAlg::Sha512,
        ] {
            assert_eq!(alg.hash(&[b""]).len(), alg.len());
        }
    }

    #[test]
    fn hex_guess_falls_back_to_base64() {
        // 32 base64 characters that happen to be the hex length of MD5 but
        // are not hex: must be read as base64 (24 bytes), then rejected for
        // length rather than panicking.
        let text = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";
        let err = decode_unsalted("PLAIN-MD5", DigestAlg::Md5, Encoding::Default, text);
        assert!(err.is_err());
    }

    #[test]
    fn salted_needs_salt() {
        let digest_only = crate::encoding::b64_encode_no_pad(&[0u8; 20]);
        assert!(decode_salted("SSHA", DigestAlg::Sha1, Encoding::Default, &digest_only).is_err());
    }
}
