//! ARGON2I / ARGON2ID in the PHC string format that libsodium (Dovecot),
//! PHP and the reference `argon2` tool write:
//! `$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>`, unpadded base64.
//!
//! The computation is the `argon2` crate's. The string is parsed here so the
//! memory and time caps apply before anything is allocated.

use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use subtle::ConstantTimeEq as _;

use crate::PasswordError;
use crate::encoding::{b64_decode_no_pad, b64_encode_no_pad};

/// Parameters for new hashes: m = 19 MiB, t = 2, p = 1, OWASP's first
/// Argon2id setting (Password Storage Cheat Sheet). Measured on this
/// project's reference machine (release build, one core): ~40 ms per verify,
/// against ~270 ms for Dovecot's default (libsodium "interactive", 64 MiB,
/// t = 3). See [`crate::hash`] for the reasoning.
pub(crate) const NEW_M_KIB: u32 = 19_456;
pub(crate) const NEW_T: u32 = 2;
pub(crate) const NEW_P: u32 = 1;
const NEW_SALT_LEN: usize = 16;
const NEW_HASH_LEN: usize = 32;

/// Highest memory we allocate for a stored hash: 1 GiB. libsodium's
/// "sensitive" preset (the largest Dovecot writes) is 1 GiB for Argon2id.
pub(crate) const MAX_M_KIB: u32 = 1024 * 1024;
/// Cap on passes times memory (KiB): 4 GiB-passes, about 5 s. It admits
/// libsodium's "sensitive" preset (1 GiB, t = 4) and bounds the time one
/// stored row can make a login take, as the bcrypt and SHA-crypt caps do.
pub(crate) const MAX_T_TIMES_M_KIB: u64 = 4 * 1024 * 1024;
/// Lanes; the reference and libsodium accept up to 2^24-1, nobody uses
/// more than a handful, and each lane costs a thread elsewhere.
const MAX_P: u32 = 255;

#[derive(Debug)]
pub(crate) struct Argon2Hash {
    algorithm: Algorithm,
    version: Version,
    m: u32,
    t: u32,
    p: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Argon2Hash {
    pub(crate) fn parse(s: &str) -> Result<Self, PasswordError> {
        let mut fields = s.split('$');
        if fields.next() != Some("") {
            return Err(malformed("does not start with '$'"));
        }
        let algorithm = match fields.next() {
            Some("argon2i") => Algorithm::Argon2i,
            Some("argon2id") => Algorithm::Argon2id,
            Some("argon2d") => {
                return Err(PasswordError::Unsupported {
                    scheme: "ARGON2ID",
                    reason: "argon2d is not a password hash (Dovecot does not accept it either)",
                });
            }
            _ => return Err(malformed("not $argon2i$ or $argon2id$")),
        };
        let scheme = scheme_of(algorithm);
        let mut next = fields
            .next()
            .ok_or(PasswordError::malformed(scheme, "no parameters"))?;
        // Strings from before version 1.3 have no "v=" field.
        let version = match next.strip_prefix("v=") {
            Some(v) => {
                let v = match v {
                    "16" => Version::V0x10,
                    "19" => Version::V0x13,
                    _ => return Err(PasswordError::malformed(scheme, "version is not 16 or 19")),
                };
                next = fields
                    .next()
                    .ok_or(PasswordError::malformed(scheme, "no parameters"))?;
                v
            }
            None => Version::V0x10,
        };
        let (m, t, p) = parse_params(scheme, next)?;
        let salt = fields
            .next()
            .ok_or(PasswordError::malformed(scheme, "no salt"))?;
        let hash = fields
            .next()
            .ok_or(PasswordError::malformed(scheme, "no hash"))?;
        if fields.next().is_some() {
            return Err(PasswordError::malformed(
                scheme,
                "extra '$' field after the hash",
            ));
        }
        let salt = b64_decode_no_pad(salt).ok_or(PasswordError::malformed(
            scheme,
            "salt is not unpadded base64",
        ))?;
        let hash = b64_decode_no_pad(hash).ok_or(PasswordError::malformed(
            scheme,
            "hash is not unpadded base64",
        ))?;
        // Limits of the Argon2 specification (RFC 9106, section 3.1).
        if salt.len() < 8 {
            return Err(PasswordError::malformed(
                scheme,
                "salt shorter than 8 bytes",
            ));
        }
        if hash.len() < 4 {
            return Err(PasswordError::malformed(
                scheme,
                "hash shorter than 4 bytes",
            ));
        }
        if t == 0 || p == 0 || u64::from(m) < 8 * u64::from(p) {
            return Err(PasswordError::malformed(
                scheme,
                "needs t >= 1, p >= 1 and m >= 8 * p",
            ));
        }
        if m > MAX_M_KIB || p > MAX_P || u64::from(t) * u64::from(m) > MAX_T_TIMES_M_KIB {
            return Err(PasswordError::CostTooHigh {
                scheme,
                detail: format!(
                    "m={m},t={t},p={p} exceeds the limits m <= {MAX_M_KIB} KiB, \
                     t*m <= {MAX_T_TIMES_M_KIB}, p <= {MAX_P}"
                ),
            });
        }
        Ok(Self {
            algorithm,
            version,
            m,
            t,
            p,
            salt,
            hash,
        })
    }

    pub(crate) fn scheme(&self) -> &'static str {
        scheme_of(self.algorithm)
    }

    #[cfg(test)]
    pub(crate) fn verify(&self, password: &[u8]) -> Result<bool, PasswordError> {
        self.verify_in(password, &mut HashMemory::default())
    }

    /// Verifies with `memory` as Argon2's working memory, grown when this hash needs more.
    pub(crate) fn verify_in(
        &self,
        password: &[u8],
        memory: &mut HashMemory,
    ) -> Result<bool, PasswordError> {
        let scheme = self.scheme();
        let internal = |e: argon2::Error| PasswordError::Internal {
            scheme,
            detail: e.to_string(),
        };
        let params =
            Params::new(self.m, self.t, self.p, Some(self.hash.len())).map_err(internal)?;
        let blocks = memory.blocks(params.block_count());
        let mut out = vec![0u8; self.hash.len()];
        Argon2::new(self.algorithm, self.version, params)
            .hash_password_into_with_memory(password, &self.salt, &mut out, blocks)
            .map_err(internal)?;
        Ok(out.ct_eq(&self.hash).into())
    }
}

/// Argon2's working memory (1 KiB blocks), kept between verifications by a thread that
/// verifies many passwords, so memory is allocated once per thread instead of once per login.
/// Argon2 overwrites every block before reading it, so nothing carries over between uses.
#[derive(Debug, Default)]
pub struct HashMemory {
    blocks: Vec<Block>,
}

impl HashMemory {
    /// Working memory kept after a verification: 64 MiB, Dovecot's own ARGON2ID default and
    /// more than three times ours. A rarer, larger stored hash gets its memory for the one
    /// verification and gives it back.
    pub const MAX_RETAINED_BYTES: usize = 64 * 1024 * 1024;

    /// Bytes held now.
    pub fn retained_bytes(&self) -> usize {
        self.blocks.len() * Block::SIZE
    }

    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::new());
        }
        &mut self.blocks[..count]
    }

    /// Frees the memory if it grew beyond [`HashMemory::MAX_RETAINED_BYTES`].
    pub(crate) fn trim(&mut self) {
        if self.retained_bytes() > Self::MAX_RETAINED_BYTES {
            self.blocks = Vec::new();
        }
    }
}

/// A new `{ARGON2ID}` string for `password` with a fresh random salt.
pub(crate) fn hash(password: &[u8]) -> Result<String, PasswordError> {
    let internal = |e: argon2::Error| PasswordError::Internal {
        scheme: "ARGON2ID",
        detail: e.to_string(),
    };
    let mut salt = [0u8; NEW_SALT_LEN];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| PasswordError::Random(e.to_string()))?;
    let params = Params::new(NEW_M_KIB, NEW_T, NEW_P, Some(NEW_HASH_LEN)).map_err(internal)?;
    let mut out = [0u8; NEW_HASH_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, &salt, &mut out)
        .map_err(internal)?;
    Ok(format!(
        "{{ARGON2ID}}$argon2id$v=19$m={NEW_M_KIB},t={NEW_T},p={NEW_P}${}${}",
        b64_encode_no_pad(&salt),
        b64_encode_no_pad(&out)
    ))
}

fn scheme_of(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Argon2i => "ARGON2I",
        _ => "ARGON2ID",
    }
}

fn malformed(reason: &'static str) -> PasswordError {
    PasswordError::malformed("ARGON2ID", reason)
}

/// `m=<KiB>,t=<passes>,p=<lanes>`, in that order, as libsodium requires.
fn parse_params(scheme: &'static str, s: &str) -> Result<(u32, u32, u32), PasswordError> {
    let bad = || PasswordError::malformed(scheme, "parameters are not m=N,t=N,p=N");
    let mut it = s.split(',');
    let mut get = |key: &str| -> Result<u32, PasswordError> {
        let v = it
            .next()
            .and_then(|kv| kv.strip_prefix(key))
            .ok_or_else(bad)?;
        if v.is_empty() || v.len() > 10 || !v.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        v.parse().map_err(|_| bad())
    };
    let m = get("m=")?;
    let t = get("t=")?;
    let p = get("p=")?;
    if it.next().is_some() {
        return Err(PasswordError::Unsupported {
            scheme,
            reason: "parameters beyond m, t, p (keyid=, data=) are not supported",
        });
    }
    Ok((m, t, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAIL: &str = "$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    #[test]
    fn parses_what_libsodium_writes() {
        let h = Argon2Hash::parse(&format!("$argon2id$v=19$m=8,t=1,p=1{TAIL}")).unwrap();
        assert_eq!((h.m, h.t, h.p), (8, 1, 1));
        assert_eq!(h.version, Version::V0x13);
        let h = Argon2Hash::parse(&format!("$argon2i$m=8,t=1,p=1{TAIL}")).unwrap();
        assert_eq!(h.version, Version::V0x10);
        assert_eq!(h.scheme(), "ARGON2I");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            String::new(),
            "$argon2id".into(),
            "$argon2id$".into(),
            "$argon2id$v=19".into(),
            "$argon2id$v=19$m=8,t=1,p=1".into(),
            "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ".into(),
            "$argon2x$v=19$m=8,t=1,p=1$c29tZXNhbHQ$aGFzaA".into(),
            format!("$argon2id$v=18$m=8,t=1,p=1{TAIL}"),
            format!("$argon2id$v=19$t=1,m=8,p=1{TAIL}"),
            format!("$argon2id$v=19$m=8,t=1{TAIL}"),
            format!("$argon2id$v=19$m=-8,t=1,p=1{TAIL}"),
            format!("$argon2id$v=19$m=8,t=0,p=1{TAIL}"),
            format!("$argon2id$v=19$m=8,t=1,p=0{TAIL}"),
            format!("$argon2id$v=19$m=8,t=1,p=2{TAIL}"),
            format!("$argon2id$v=19$m=99999999999,t=1,p=1{TAIL}"),
            format!("$argon2id$v=19$m=8,t=1,p=1,keyid=abc{TAIL}"),
            format!("$argon2id$v=19$m=8,t=1,p=1{TAIL}$"),
            format!("$argon2id$v=19$m=8,t=1,p=1{TAIL}=="),
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG".into(),
            "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$aGE".into(),
            "$argon2d$v=19$m=8,t=1,p=1$c29tZXNhbHQ$aGFzaA".into(),
        ] {
            assert!(Argon2Hash::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resource_caps() {
        let too_much_memory = format!("$argon2id$v=19$m={},t=1,p=1{TAIL}", MAX_M_KIB + 1);
        let too_much_time = format!("$argon2id$v=19$m={MAX_M_KIB},t=5,p=1{TAIL}");
        let too_many_lanes = format!("$argon2id$v=19$m=4096,t=1,p=256{TAIL}");
        for s in [too_much_memory, too_much_time, too_many_lanes] {
            assert!(
                matches!(
                    Argon2Hash::parse(&s),
                    Err(PasswordError::CostTooHigh { .. })
                ),
                "{s}"
            );
        }
        let max = format!("$argon2id$v=19$m={MAX_M_KIB},t=4,p=4{TAIL}");
        assert!(Argon2Hash::parse(&max).is_ok());
    }

    #[test]
    fn reference_cli_vectors() {
        // Made with the reference implementation's CLI (Debian package
        // `argon2`), e.g. `echo -n password | argon2 somesalt -id -t 2 -k 64
        // -p 1 -l 24 -e`; small memory so they run fast in debug builds.
        for (password, stored) in [
            (
                "password",
                "$argon2id$v=19$m=64,t=2,p=1$c29tZXNhbHQ$Bo1ismRVk2qm6+YAYLCmWHDb+j3fjUH3",
            ),
            (
                "pässwörd",
                "$argon2i$v=19$m=32,t=3,p=2$c2FsdHNhbHRzYWx0$4b2NdEuHkteIPo/QzeRWrt6GW4X0AH/r7wyJJTxfGnY",
            ),
            (
                "password",
                "$argon2i$v=16$m=16,t=2,p=1$c29tZXNhbHQ$uibPo4kNbW60RrEFx4lodA",
            ),
        ] {
            let h = Argon2Hash::parse(stored).unwrap();
            assert!(h.verify(password.as_bytes()).unwrap(), "{stored}");
            assert!(!h.verify(b"passwore").unwrap(), "{stored}");
        }
    }

    #[test]
    fn new_hash_has_the_documented_shape() {
        let made = hash(b"password").unwrap();
        let stored = made.strip_prefix("{ARGON2ID}").unwrap();
        let h = Argon2Hash::parse(stored).unwrap();
        assert_eq!((h.m, h.t, h.p), (NEW_M_KIB, NEW_T, NEW_P));
        assert_eq!(h.algorithm, Algorithm::Argon2id);
        assert_eq!(h.version, Version::V0x13);
        assert_eq!(h.salt.len(), NEW_SALT_LEN);
        assert_eq!(h.hash.len(), NEW_HASH_LEN);
    }
}
