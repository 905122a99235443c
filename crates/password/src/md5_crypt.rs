//! MD5-crypt (`$1$salt$hash`, Poul-Henning Kamp's FreeBSD algorithm).
//!
//! Hand-written on top of `md-5`: it is ~50 lines, frozen since 1994, and
//! the crates that package it (`pwhash`, `md5crypt`, `crypt3_rs`) are either
//! unmaintained or pin the previous generation of RustCrypto crates, which
//! would put a second copy of `md-5`/`digest` into the build for this alone.
//! Correctness is pinned by the `doveadm pw` vectors in `tests/data`.

use md5::{Digest as _, Md5};
use subtle::ConstantTimeEq as _;

use crate::PasswordError;
use crate::encoding::{is_crypt_alphabet, push_24bit};

const SCHEME: &str = "MD5-CRYPT";
const MAGIC: &[u8] = b"$1$";
const MAX_SALT: usize = 8;
const HASH_LEN: usize = 22;

#[derive(Debug)]
pub(crate) struct Md5Crypt {
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Md5Crypt {
    pub(crate) fn parse(s: &str) -> Result<Self, PasswordError> {
        let rest = s
            .strip_prefix("$1$")
            .ok_or(PasswordError::malformed(SCHEME, "does not start with $1$"))?;
        let (salt, hash) = rest
            .split_once('$')
            .ok_or(PasswordError::malformed(SCHEME, "no '$' after the salt"))?;
        // crypt() cuts the salt at 8 characters, so a longer one was not
        // written by it and cannot round-trip.
        if salt.len() > MAX_SALT {
            return Err(PasswordError::malformed(
                SCHEME,
                "salt longer than 8 characters",
            ));
        }
        if hash.len() != HASH_LEN || !is_crypt_alphabet(hash) {
            return Err(PasswordError::malformed(
                SCHEME,
                "hash is not 22 characters of ./0-9A-Za-z",
            ));
        }
        Ok(Self {
            salt: salt.as_bytes().to_vec(),
            hash: hash.as_bytes().to_vec(),
        })
    }

    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        encode(&md5_crypt(password, &self.salt))
            .ct_eq(&self.hash)
            .into()
    }
}

fn md5_crypt(pw: &[u8], salt: &[u8]) -> [u8; 16] {
    let alt: [u8; 16] = Md5::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize()
        .into();

    let mut ctx = Md5::new()
        .chain_update(pw)
        .chain_update(MAGIC)
        .chain_update(salt);
    let mut left = pw.len();
    while left > 0 {
        let n = left.min(alt.len());
        ctx.update(&alt[..n]);
        left -= n;
    }
    // One byte per bit of the length: NUL for a set bit, the first password
    // byte for a clear one. The C original passed a just-zeroed buffer here,
    // probably by mistake; every implementation has to keep the quirk.
    let first = pw.first().copied().unwrap_or(0);
    let mut i = pw.len();
    while i > 0 {
        ctx.update([if i & 1 == 1 { 0 } else { first }]);
        i >>= 1;
    }
    let mut fin: [u8; 16] = ctx.finalize().into();

    // The 1000 rounds are the algorithm's fixed cost ("slow down" in 1994).
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(pw);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(pw);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(pw);
        }
        fin = c.finalize().into();
    }
    fin
}

fn encode(f: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HASH_LEN);
    push_24bit(&mut out, f[0], f[6], f[12], 4);
    push_24bit(&mut out, f[1], f[7], f[13], 4);
    push_24bit(&mut out, f[2], f[8], f[14], 4);
    push_24bit(&mut out, f[3], f[9], f[15], 4);
    push_24bit(&mut out, f[4], f[10], f[5], 4);
    push_24bit(&mut out, 0, 0, f[11], 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_malformed() {
        for bad in [
            "",
            "$1$",
            "$1$salt",
            "$1$salt$",
            "$1$salt$tooshort",
            "$1$123456789$0ES1NO/LFlxwiTqqgafiB1",
            "$1$ahbtSLZq$0ES1NO/LFlxwiTqqgafiB1x",
            "$1$ahbtSLZq$0ES1NO/LFlxwiTqqgafiB$",
            "$1$ahbtSLZq$0ES1NO/LFlxwiTqqgafi€",
            "$6$ahbtSLZq$0ES1NO/LFlxwiTqqgafiB1",
        ] {
            assert!(Md5Crypt::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn empty_password_and_salt_do_not_panic() {
        let h = Md5Crypt::parse("$1$$0ES1NO/LFlxwiTqqgafiB1").unwrap();
        assert!(!h.verify(b""));
    }
}
