//! Traditional DES crypt(3): 13 characters, two of salt and eleven of hash.
//!
//! Hand-written because nothing suitable exists: RustCrypto's `des` cannot
//! do it (the salt swaps bits of DES's expansion table, which a block-cipher
//! API does not expose), and the crates that do (`pwhash`, its forks
//! `crypt3_rs` and `unix-crypt`) are unmaintained or pin the previous
//! generation of RustCrypto crates. The algorithm is frozen since 1979, so
//! a slow, table-driven, bit-at-a-time DES is enough: 25 encryptions per
//! verify. Correctness is pinned by the FIPS 46 known answer below and by
//! `doveadm pw -s DES-CRYPT` vectors in `tests/data`.
//!
//! Tables are the 1-based bit positions of FIPS 46-3, bit 1 the most
//! significant.

use subtle::ConstantTimeEq as _;

use crate::PasswordError;
use crate::encoding::{crypt_char, crypt_value};

const SCHEME: &str = "DES-CRYPT";
pub(crate) const LEN: usize = 13;

const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, //
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8, //
    57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, //
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];

const FP: [u8; 64] = [
    40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31, //
    38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29, //
    36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27, //
    34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
];

const E: [u8; 48] = [
    32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, //
    8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, //
    16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25, //
    24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];

const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, //
    2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
];

const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, //
    10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36, //
    63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, //
    14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];

const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, //
    23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, //
    41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, //
    44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

const SHIFTS: [u32; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

/// S-boxes, each as four rows of sixteen.
const S: [[u8; 64]; 8] = [
    [
        14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, //
        0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8, //
        4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, //
        15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
    ],
    [
        15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, //
        3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5, //
        0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, //
        13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
    ],
    [
        10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, //
        13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1, //
        13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, //
        1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
    ],
    [
        7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, //
        13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9, //
        10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, //
        3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
    ],
    [
        2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, //
        14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6, //
        4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, //
        11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
    ],
    [
        12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, //
        10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8, //
        9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, //
        4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
    ],
    [
        4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, //
        13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6, //
        1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, //
        6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
    ],
    [
        13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, //
        1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2, //
        7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, //
        2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
    ],
];

#[derive(Debug)]
pub(crate) struct DesCrypt {
    salt: [u8; 2],
    hash: Vec<u8>,
}

impl DesCrypt {
    /// True for 13 characters of the crypt alphabet, the only shape a
    /// traditional crypt string has (used to recognise bare values).
    pub(crate) fn looks_like(s: &str) -> bool {
        s.len() == LEN && s.bytes().all(|c| crypt_value(c).is_some())
    }

    pub(crate) fn parse(s: &str) -> Result<Self, PasswordError> {
        if !Self::looks_like(s) {
            return Err(PasswordError::malformed(
                SCHEME,
                "not 13 characters of ./0-9A-Za-z",
            ));
        }
        match s.as_bytes() {
            [s0, s1, hash @ ..] => Ok(Self {
                salt: [*s0, *s1],
                hash: hash.to_vec(),
            }),
            _ => Err(PasswordError::malformed(SCHEME, "too short")),
        }
    }

    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        des_crypt(password, self.salt).ct_eq(&self.hash).into()
    }
}

/// The eleven hash characters for `password` and a two-character salt.
fn des_crypt(password: &[u8], salt: [u8; 2]) -> Vec<u8> {
    // Only the low seven bits of the first eight bytes count, placed in the
    // top seven bits of each key byte (DES ignores the lowest, parity bit).
    let mut key = 0u64;
    for i in 0..8 {
        key = (key << 8) | u64::from(password.get(i).copied().unwrap_or(0) << 1);
    }

    // Each set salt bit swaps two entries of the expansion table; that is
    // the whole point of the salt (it defeated off-the-shelf DES hardware).
    let mut e = E;
    for (i, &c) in salt.iter().enumerate() {
        let v = crypt_value(c).unwrap_or(0);
        for j in 0..6 {
            if (v >> j) & 1 == 1 {
                e.swap(6 * i + j, 6 * i + j + 24);
            }
        }
    }

    let keys = key_schedule(key);
    let mut block = 0u64;
    for _ in 0..25 {
        block = des_encrypt(block, &keys, &e);
    }

    // 64 bits as eleven 6-bit characters, most significant first; the last
    // character carries the final four bits and two zero bits.
    let mut out = Vec::with_capacity(LEN - 2);
    for i in 0..10 {
        out.push(crypt_char((block >> (58 - 6 * i)) as u32));
    }
    out.push(crypt_char(((block & 0xf) << 2) as u32));
    out
}

/// Picks bits of `input` (`width` bits wide) in the order `table` lists.
fn permute(input: u64, width: u32, table: &[u8]) -> u64 {
    table.iter().fold(0, |out, &pos| {
        (out << 1) | ((input >> (width - u32::from(pos))) & 1)
    })
}

fn key_schedule(key: u64) -> [u64; 16] {
    const MASK28: u64 = (1 << 28) - 1;
    let cd = permute(key, 64, &PC1);
    let (mut c, mut d) = (cd >> 28, cd & MASK28);
    let mut keys = [0u64; 16];
    for (k, &shift) in keys.iter_mut().zip(SHIFTS.iter()) {
        c = ((c << shift) | (c >> (28 - shift))) & MASK28;
        d = ((d << shift) | (d >> (28 - shift))) & MASK28;
        *k = permute((c << 28) | d, 56, &PC2);
    }
    keys
}

fn feistel(r: u64, k: u64, e: &[u8; 48]) -> u64 {
    let x = permute(r, 32, e) ^ k;
    let mut out = 0u64;
    for (b, sbox) in S.iter().enumerate() {
        let six = (x >> (42 - 6 * b)) & 0x3f;
        let row = ((six >> 4) & 0b10) | (six & 1);
        let col = (six >> 1) & 0xf;
        // row < 4 and col < 16, so the index is < 64.
        out = (out << 4) | u64::from(sbox[(row * 16 + col) as usize]);
    }
    permute(out, 32, &P)
}

fn des_encrypt(block: u64, keys: &[u64; 16], e: &[u8; 48]) -> u64 {
    const MASK32: u64 = (1 << 32) - 1;
    let ip = permute(block, 64, &IP);
    let (mut l, mut r) = (ip >> 32, ip & MASK32);
    for &k in keys {
        (l, r) = (r, l ^ feistel(r, k, e));
    }
    // The halves are not swapped back after the last round.
    permute((r << 32) | l, 64, &FP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fips46_known_answer() {
        // The worked example from FIPS 46 tutorials (unsalted DES).
        let keys = key_schedule(0x1334_5779_9BBC_DFF1);
        assert_eq!(
            des_encrypt(0x0123_4567_89AB_CDEF, &keys, &E),
            0x85E8_1354_0F0A_B405
        );
    }

    #[test]
    fn tables_are_permutations() {
        let mut seen = [false; 64];
        for (i, &p) in IP.iter().enumerate() {
            seen[usize::from(p) - 1] = true;
            // FP is the inverse of IP.
            assert_eq!(usize::from(FP[usize::from(p) - 1]), i + 1);
        }
        assert!(seen.iter().all(|&s| s));
        for sbox in &S {
            for row in sbox.chunks(16) {
                let mut seen = [false; 16];
                for &v in row {
                    seen[usize::from(v)] = true;
                }
                assert!(seen.iter().all(|&s| s));
            }
        }
    }

    #[test]
    fn parse_rejects_malformed() {
        for bad in [
            "",
            "abc",
            "pSaWuPtQn7CD",
            "pSaWuPtQn7CDs1",
            "pSaWuPtQn7CD$",
            "pSaWuPtQn7C€",
        ] {
            assert!(DesCrypt::parse(bad).is_err(), "{bad}");
        }
    }
}
