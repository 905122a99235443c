//! crypt(3) strings, recognised by their self-describing prefix.

use crate::PasswordError;
use crate::argon::{Argon2Hash, HashMemory};
use crate::blf_crypt::BlfCrypt;
use crate::des_crypt::DesCrypt;
use crate::md5_crypt::Md5Crypt;
use crate::sha_crypt::ShaCrypt;

#[derive(Debug)]
pub(crate) enum Crypt {
    Des(DesCrypt),
    Md5(Md5Crypt),
    Sha(ShaCrypt),
    Blf(BlfCrypt),
    Argon2(Argon2Hash),
}

/// Formats libxcrypt (and so Dovecot's `{CRYPT}`) may hold that we do not
/// compute; named so that an import report can say what they are.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("$y$", "yescrypt ($y$) is not supported"),
    ("$gy$", "gost-yescrypt ($gy$) is not supported"),
    ("$7$", "scrypt ($7$) is not supported"),
    ("$sha1$", "NetBSD sha1crypt ($sha1$) is not supported"),
    ("$md5", "Sun MD5 crypt ($md5$) is not supported"),
    ("$apr1$", "Apache MD5 ($apr1$) is not supported"),
    ("$3$", "NT-hash crypt ($3$) is not supported"),
    ("$2$", "original bcrypt ($2$) is not supported"),
];

impl Crypt {
    /// Reads `s` by its prefix. `Ok(None)` means it is not a crypt string at
    /// all (the caller knows whether that is an error, and which).
    pub(crate) fn parse(s: &str) -> Result<Option<Self>, PasswordError> {
        let crypt = if s.starts_with("$1$") {
            Self::Md5(Md5Crypt::parse(s)?)
        } else if s.starts_with("$5$") || s.starts_with("$6$") {
            Self::Sha(ShaCrypt::parse(s)?)
        } else if is_bcrypt_prefix(s) {
            Self::Blf(BlfCrypt::parse(s)?)
        } else if s.starts_with("$argon2") {
            Self::Argon2(Argon2Hash::parse(s)?)
        } else if DesCrypt::looks_like(s) {
            Self::Des(DesCrypt::parse(s)?)
        } else if let Some((_, reason)) = UNSUPPORTED.iter().find(|(p, _)| s.starts_with(p)) {
            return Err(PasswordError::Unsupported {
                scheme: "CRYPT",
                reason,
            });
        } else if s.len() == 20 && s.starts_with('_') {
            return Err(PasswordError::Unsupported {
                scheme: "CRYPT",
                reason: "BSDi extended DES (_...) is not supported",
            });
        } else {
            return Ok(None);
        };
        Ok(Some(crypt))
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Des(_) => "DES-CRYPT",
            Self::Md5(_) => "MD5-CRYPT",
            Self::Sha(h) => h.variant().scheme(),
            Self::Blf(_) => "BLF-CRYPT",
            Self::Argon2(h) => h.scheme(),
        }
    }

    pub(crate) fn verify(
        &self,
        password: &[u8],
        memory: &mut HashMemory,
    ) -> Result<bool, PasswordError> {
        match self {
            Self::Des(h) => Ok(h.verify(password)),
            Self::Md5(h) => Ok(h.verify(password)),
            Self::Sha(h) => h.verify(password),
            Self::Blf(h) => h.verify(password),
            Self::Argon2(h) => h.verify_in(password, memory),
        }
    }
}

/// `$2a$`, `$2b$`, `$2x$`, `$2y$` and malformed cousins such as `$2c$`, so
/// that those get bcrypt's error message rather than "not a crypt string".
fn is_bcrypt_prefix(s: &str) -> bool {
    matches!(s.as_bytes(), [b'$', b'2', v, b'$', ..] if v.is_ascii_lowercase())
}
