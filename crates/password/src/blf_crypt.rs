//! BLF-CRYPT: bcrypt, `$2a$`, `$2b$`, `$2x$`, `$2y$` (the `bcrypt` crate).
//!
//! We check the shape ourselves before handing the string over, so that
//! the cost cap applies and oddities the crate tolerates (a `+` in the cost
//! field) are refused as libxcrypt refuses them.

use crate::PasswordError;
use crate::encoding::crypt_value;

const SCHEME: &str = "BLF-CRYPT";
const MIN_COST: u32 = 4;
/// Highest cost we compute. The format allows 31 (2^31 key expansions,
/// about three days of CPU); cost 16 takes ~8 s (release build). PHP and MUM
/// write 10, Dovecot 5.
pub(crate) const MAX_COST: u32 = 16;

#[derive(Debug)]
pub(crate) struct BlfCrypt {
    /// The whole `$2y$...` string, already checked.
    text: String,
    /// `$2x$` marks hashes from crypt_blowfish's sign-extension bug.
    buggy_2x: bool,
}

impl BlfCrypt {
    pub(crate) fn parse(s: &str) -> Result<Self, PasswordError> {
        let b = s.as_bytes();
        let (variant, cost, rest) = match b {
            [b'$', b'2', v, b'$', c1, c2, b'$', rest @ ..] => (*v, [*c1, *c2], rest),
            _ => {
                return Err(PasswordError::malformed(
                    SCHEME,
                    "does not start with $2?$NN$",
                ));
            }
        };
        if !matches!(variant, b'a' | b'b' | b'x' | b'y') {
            return Err(PasswordError::malformed(
                SCHEME,
                "version is not 2a, 2b, 2x or 2y",
            ));
        }
        let cost = match cost {
            [d1 @ b'0'..=b'9', d2 @ b'0'..=b'9'] => {
                u32::from(d1 - b'0') * 10 + u32::from(d2 - b'0')
            }
            _ => return Err(PasswordError::malformed(SCHEME, "cost is not two digits")),
        };
        if !(MIN_COST..=31).contains(&cost) {
            return Err(PasswordError::malformed(SCHEME, "cost outside 04..31"));
        }
        if cost > MAX_COST {
            return Err(PasswordError::CostTooHigh {
                scheme: SCHEME,
                detail: format!("cost {cost} exceeds the limit of {MAX_COST}"),
            });
        }
        // 22 characters of salt and 31 of hash, bcrypt's own base64 alphabet
        // (same characters as crypt's, different order).
        if rest.len() != 53 || !rest.iter().all(|&c| crypt_value(c).is_some()) {
            return Err(PasswordError::malformed(
                SCHEME,
                "salt and hash are not 53 characters of ./0-9A-Za-z",
            ));
        }
        // The last salt and hash characters carry unused bits, which must be
        // zero: crypt_blowfish re-encodes them canonically, so a value with
        // stray bits there could never verify in Dovecot either.
        if s.parse::<bcrypt::HashParts>().is_err() {
            return Err(PasswordError::malformed(
                SCHEME,
                "salt or hash has non-zero padding bits",
            ));
        }
        Ok(Self {
            text: s.to_owned(),
            buggy_2x: variant == b'x',
        })
    }

    pub(crate) fn verify(&self, password: &[u8]) -> Result<bool, PasswordError> {
        // `$2x$` hashes were made by crypt_blowfish's sign-extending code.
        // For 7-bit passwords that is plain bcrypt; for 8-bit ones we would
        // have to emulate the bug, which the crate does not do, so we say so
        // instead of answering "mismatch".
        if self.buggy_2x && !password.is_ascii() {
            return Err(PasswordError::Unsupported {
                scheme: SCHEME,
                reason: "$2x$ hashes of passwords with 8-bit bytes need the crypt_blowfish bug emulation",
            });
        }
        bcrypt::verify(password, &self.text).map_err(|e| PasswordError::Internal {
            scheme: SCHEME,
            detail: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::is_crypt_alphabet;

    #[test]
    fn parse_rejects_malformed() {
        let tail = "5avEkMSOuiQPa/8WKEzAUOJoop1mgSsEmfuBSj6jTuEd3iuwQOJ/2";
        assert!(is_crypt_alphabet(tail));
        assert!(BlfCrypt::parse(&format!("$2y$05${tail}")).is_ok());
        for bad in [
            String::new(),
            "$2y$".into(),
            "$2y$05$".into(),
            format!("$2c$05${tail}"),
            format!("$2y$+5${tail}"),
            format!("$2y$03${tail}"),
            format!("$2y$32${tail}"),
            format!("$2y$05${tail}x"),
            format!("$2y$05${}", &tail[1..]),
            format!("$2y$05${}€", &tail[3..]),
            format!("$2y$05${}$", &tail[1..]),
        ] {
            assert!(BlfCrypt::parse(&bad).is_err(), "{bad}");
        }
        assert!(matches!(
            BlfCrypt::parse(&format!("$2y$17${tail}")),
            Err(PasswordError::CostTooHigh { .. })
        ));
    }

    #[test]
    fn two_x_with_eight_bit_password_is_an_error() {
        let h = BlfCrypt::parse("$2x$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW")
            .unwrap();
        // Made by libxcrypt: crypt("secret", "$2x$04$abcdefghijklmnopqrstuu").
        assert!(h.verify(b"secret").unwrap());
        assert!(!h.verify(b"secreT").unwrap());
        assert!(h.verify("s\u{e9}cret".as_bytes()).is_err());
    }
}
