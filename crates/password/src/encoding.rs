//! Text encodings found in stored passwords: hex, RFC 4648 base64, and the
//! `./0-9A-Za-z` alphabet of crypt(3).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, STANDARD_PAD_INDIFFERENT};

/// The crypt(3) alphabet, in value order: `.` is 0, `z` is 63.
pub(crate) const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Value of a crypt(3) alphabet character, `None` for any other byte.
pub(crate) fn crypt_value(c: u8) -> Option<u8> {
    match c {
        b'.' => Some(0),
        b'/' => Some(1),
        b'0'..=b'9' => Some(c - b'0' + 2),
        b'A'..=b'Z' => Some(c - b'A' + 12),
        b'a'..=b'z' => Some(c - b'a' + 38),
        _ => None,
    }
}

pub(crate) fn is_crypt_alphabet(s: &str) -> bool {
    s.bytes().all(|c| crypt_value(c).is_some())
}

/// Character for the low six bits of `v`.
pub(crate) fn crypt_char(v: u32) -> u8 {
    // The mask keeps the index in 0..64, so this cannot go out of bounds.
    CRYPT_ALPHABET[(v & 0x3f) as usize]
}

/// Appends `b2 b1 b0` as `n` characters, least significant six bits first.
///
/// This is the `b64_from_24bit` / `to64` step that MD5-crypt and SHA-crypt
/// share (their byte order differs from RFC 4648, hence no base64 crate).
pub(crate) fn push_24bit(out: &mut Vec<u8>, b2: u8, b1: u8, b0: u8, n: usize) {
    let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
    for _ in 0..n {
        out.push(crypt_char(w));
        w >>= 6;
    }
}

/// Lower- or upper-case hex to bytes; `None` if odd length or not hex.
pub(crate) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

/// Standard-alphabet base64. Padding is optional: Dovecot writes it, but
/// LDAP tools and hand-made rows often drop it, and accepting both costs nothing.
pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD_PAD_INDIFFERENT.decode(s).ok()
}

/// Unpadded standard base64, as the PHC string format (Argon2) requires.
pub(crate) fn b64_decode_no_pad(s: &str) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(s).ok()
}

pub(crate) fn b64_encode_no_pad(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypt_alphabet_round_trips() {
        for (i, &c) in CRYPT_ALPHABET.iter().enumerate() {
            assert_eq!(crypt_value(c), Some(i as u8));
            assert_eq!(crypt_char(i as u32), c);
        }
        assert_eq!(crypt_value(b'$'), None);
        assert_eq!(crypt_value(b'+'), None);
    }

    #[test]
    fn hex() {
        assert_eq!(hex_decode("00fFa0"), Some(vec![0, 0xff, 0xa0]));
        assert_eq!(hex_decode(""), Some(vec![]));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_decode("é1"), None);
    }

    #[test]
    fn base64_padding_is_optional() {
        assert_eq!(b64_decode("c2VjcmV0"), Some(b"secret".to_vec()));
        assert_eq!(b64_decode("c2VjcmV0MQ=="), Some(b"secret1".to_vec()));
        assert_eq!(b64_decode("c2VjcmV0MQ"), Some(b"secret1".to_vec()));
        assert_eq!(b64_decode("c2V$"), None);
        assert_eq!(b64_decode_no_pad("c2VjcmV0MQ=="), None);
    }
}
