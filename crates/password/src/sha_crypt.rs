//! SHA256-CRYPT (`$5$`) and SHA512-CRYPT (`$6$`), Ulrich Drepper's scheme.
//!
//! The digest loop comes from the `sha-crypt` crate. Parsing and the final
//! base64 step are ours: the crate's own verifier accepts only what its MCF
//! parser accepts, and we want libxcrypt's rules (the `crypt()` Dovecot calls)
//! plus a cap on `rounds=` with an error that says so.

use sha_crypt::Params;
use subtle::ConstantTimeEq as _;

use crate::PasswordError;
use crate::encoding::{is_crypt_alphabet, push_24bit};

/// Rounds when the string has no `rounds=` field.
const DEFAULT_ROUNDS: u32 = 5_000;
/// Lowest `rounds=` libxcrypt accepts (it refuses, rather than clamps, below).
const MIN_ROUNDS: u32 = 1_000;
/// Highest `rounds=` we compute. The format allows 999,999,999 (about
/// nine minutes of CPU); 10 million is ~15x passlib's default of 656,000
/// and takes ~5 s (release build), which bounds what one stored row can
/// make a login cost.
pub(crate) const MAX_ROUNDS: u32 = 10_000_000;
const MAX_SALT: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Variant {
    Sha256,
    Sha512,
}

impl Variant {
    pub(crate) const fn scheme(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA256-CRYPT",
            Self::Sha512 => "SHA512-CRYPT",
        }
    }

    const fn hash_len(self) -> usize {
        match self {
            Self::Sha256 => 43,
            Self::Sha512 => 86,
        }
    }
}

#[derive(Debug)]
pub(crate) struct ShaCrypt {
    variant: Variant,
    rounds: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl ShaCrypt {
    pub(crate) fn parse(s: &str) -> Result<Self, PasswordError> {
        let (variant, rest) = if let Some(rest) = s.strip_prefix("$5$") {
            (Variant::Sha256, rest)
        } else if let Some(rest) = s.strip_prefix("$6$") {
            (Variant::Sha512, rest)
        } else {
            return Err(PasswordError::malformed(
                "SHA512-CRYPT",
                "does not start with $5$ or $6$",
            ));
        };
        let scheme = variant.scheme();
        let mut fields = rest.split('$');
        let mut salt = fields.next().unwrap_or_default();
        let mut rounds = DEFAULT_ROUNDS;
        if let Some(n) = salt.strip_prefix("rounds=") {
            rounds = parse_rounds(scheme, n)?;
            salt = fields
                .next()
                .ok_or(PasswordError::malformed(scheme, "no salt after rounds="))?;
        }
        let hash = fields
            .next()
            .ok_or(PasswordError::malformed(scheme, "no '$' after the salt"))?;
        if fields.next().is_some() {
            return Err(PasswordError::malformed(
                scheme,
                "extra '$' field after the hash",
            ));
        }
        // crypt() cuts the salt at 16 characters, so a longer one was not
        // written by it and cannot round-trip.
        if salt.len() > MAX_SALT {
            return Err(PasswordError::malformed(
                scheme,
                "salt longer than 16 characters",
            ));
        }
        if hash.len() != variant.hash_len() || !is_crypt_alphabet(hash) {
            return Err(PasswordError::malformed(
                scheme,
                "hash has the wrong length or characters outside ./0-9A-Za-z",
            ));
        }
        Ok(Self {
            variant,
            rounds,
            salt: salt.as_bytes().to_vec(),
            hash: hash.as_bytes().to_vec(),
        })
    }

    pub(crate) const fn variant(&self) -> Variant {
        self.variant
    }

    pub(crate) fn verify(&self, password: &[u8]) -> Result<bool, PasswordError> {
        let params = Params::new(self.rounds)
            .map_err(|_| PasswordError::malformed(self.variant.scheme(), "rounds out of range"))?;
        let encoded = match self.variant {
            Variant::Sha256 => encode256(&sha_crypt::sha256_crypt(password, &self.salt, params)),
            Variant::Sha512 => encode512(&sha_crypt::sha512_crypt(password, &self.salt, params)),
        };
        Ok(encoded.ct_eq(&self.hash).into())
    }
}

fn parse_rounds(scheme: &'static str, n: &str) -> Result<u32, PasswordError> {
    // libxcrypt wants plain decimal: no sign, no leading zero.
    if n.is_empty() || n.starts_with('0') || !n.bytes().all(|c| c.is_ascii_digit()) {
        return Err(PasswordError::malformed(
            scheme,
            "rounds= is not a plain number",
        ));
    }
    // All digits, so parsing fails only on overflow: far above the cap.
    let rounds: u64 = n.parse().unwrap_or(u64::MAX);
    if rounds < u64::from(MIN_ROUNDS) {
        return Err(PasswordError::malformed(scheme, "rounds= below 1000"));
    }
    if rounds > u64::from(MAX_ROUNDS) {
        return Err(PasswordError::CostTooHigh {
            scheme,
            detail: format!("rounds={rounds} exceeds the limit of {MAX_ROUNDS}"),
        });
    }
    u32::try_from(rounds).map_err(|_| PasswordError::malformed(scheme, "rounds= out of range"))
}

/// glibc's output order for SHA-256-crypt: ten byte triples, each rotated
/// one step further, then the last two bytes.
fn encode256(d: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(43);
    for i in 0..10 {
        let (a, b, c) = (d[i], d[i + 10], d[i + 20]);
        match i % 3 {
            0 => push_24bit(&mut out, a, b, c, 4),
            1 => push_24bit(&mut out, c, a, b, 4),
            _ => push_24bit(&mut out, b, c, a, 4),
        }
    }
    push_24bit(&mut out, 0, d[31], d[30], 3);
    out
}

/// glibc's output order for SHA-512-crypt: 21 byte triples, rotated the
/// other way round than SHA-256's, then the last byte.
fn encode512(d: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(86);
    for i in 0..21 {
        let (a, b, c) = (d[i], d[i + 21], d[i + 42]);
        match i % 3 {
            0 => push_24bit(&mut out, a, b, c, 4),
            1 => push_24bit(&mut out, b, c, a, 4),
            _ => push_24bit(&mut out, c, a, b, 4),
        }
    }
    push_24bit(&mut out, 0, 0, d[63], 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drepper_reference_vectors() {
        // From the test vectors in Drepper's SHA-crypt specification.
        let h = ShaCrypt::parse(
            "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5",
        )
        .unwrap();
        assert!(h.verify(b"This is just a test").unwrap());
        let h = ShaCrypt::parse(
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJu\
             esI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
        )
        .unwrap();
        assert!(h.verify(b"Hello world!").unwrap());
        assert!(!h.verify(b"Hello world").unwrap());
    }

    #[test]
    fn rounds_limits() {
        let hash86 = "a".repeat(86);
        for (rounds, ok) in [
            ("1000", true),
            ("999", false),
            ("0999", false),
            ("+5000", false),
        ] {
            let s = format!("$6$rounds={rounds}$salt${hash86}");
            assert_eq!(ShaCrypt::parse(&s).is_ok(), ok, "{s}");
        }
        let s = format!("$6$rounds={}$salt${hash86}", MAX_ROUNDS + 1);
        assert!(matches!(
            ShaCrypt::parse(&s),
            Err(PasswordError::CostTooHigh { .. })
        ));
        let s = format!("$6$rounds=99999999999999999999999$salt${hash86}");
        assert!(matches!(
            ShaCrypt::parse(&s),
            Err(PasswordError::CostTooHigh { .. })
        ));
    }

    #[test]
    fn malformed() {
        for bad in [
            "$6$",
            "$6$salt",
            "$6$salt$",
            "$6$rounds=5000$",
            "$6$salt$abc",
            "$5$salt$abc",
            "$6$12345678901234567$abc",
        ] {
            assert!(ShaCrypt::parse(bad).is_err(), "{bad}");
        }
    }
}
