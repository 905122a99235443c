//! Modified UTF-7 mailbox names (RFC 3501 5.1.3): printable ASCII stands for itself except
//! `&`, which is written `&-`; anything else is UTF-16BE in a base64 variant (`,` for `/`, no
//! padding) between `&` and `-`.

/// Why a name is not valid modified UTF-7.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Utf7Error {
    #[error("mailbox name has a character that is not printable ASCII")]
    NotPrintable,
    #[error("mailbox name has an unterminated &... sequence")]
    Unterminated,
    #[error("mailbox name has an invalid modified base64 sequence")]
    InvalidBase64,
    #[error("mailbox name encodes printable ASCII in base64")]
    EncodedAscii,
    #[error("mailbox name encodes invalid UTF-16")]
    InvalidUtf16,
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn sextet(byte: u8) -> Option<u32> {
    let value = match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b',' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

fn is_printable(c: u32) -> bool {
    (0x20..=0x7e).contains(&c)
}

/// Decodes a name as sent on the wire into UTF-8. Strict: non-canonical encodings (ASCII in
/// base64, non-zero padding bits) are errors, as RFC 3501 forbids them.
pub fn decode(name: &str) -> Result<String, Utf7Error> {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if !is_printable(u32::from(byte)) {
            return Err(Utf7Error::NotPrintable);
        }
        i += 1;
        if byte != b'&' {
            out.push(char::from(byte));
            continue;
        }
        let Some(len) = bytes
            .get(i..)
            .and_then(|rest| rest.iter().position(|&b| b == b'-'))
        else {
            return Err(Utf7Error::Unterminated);
        };
        let encoded = bytes.get(i..i + len).unwrap_or_default();
        i += len + 1;
        if encoded.is_empty() {
            out.push('&');
            continue;
        }
        let units = decode_base64(encoded)?;
        for c in char::decode_utf16(units) {
            let c = c.map_err(|_| Utf7Error::InvalidUtf16)?;
            if is_printable(u32::from(c)) {
                return Err(Utf7Error::EncodedAscii);
            }
            out.push(c);
        }
    }
    Ok(out)
}

/// Modified base64 to UTF-16 code units.
fn decode_base64(encoded: &[u8]) -> Result<Vec<u16>, Utf7Error> {
    let mut units = Vec::with_capacity(encoded.len() * 6 / 16);
    let mut bits = 0u32;
    let mut nbits = 0u32;
    for &byte in encoded {
        bits = (bits << 6) | sextet(byte).ok_or(Utf7Error::InvalidBase64)?;
        nbits += 6;
        if nbits >= 16 {
            nbits -= 16;
            // Truncation intended: the 16 bits just completed.
            units.push(((bits >> nbits) & 0xffff) as u16);
            bits &= (1 << nbits) - 1;
        }
    }
    // Leftover bits are padding: fewer than 6 of them, and zero.
    if nbits >= 6 || bits != 0 {
        return Err(Utf7Error::InvalidBase64);
    }
    Ok(units)
}

/// Encodes a UTF-8 name to modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_printable(u32::from(c)) {
            flush(&mut out, &mut pending);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

fn flush(out: &mut String, pending: &mut Vec<u16>) {
    if pending.is_empty() {
        return;
    }
    out.push('&');
    let mut bits = 0u32;
    let mut nbits = 0u32;
    for unit in pending.drain(..) {
        bits = (bits << 16) | u32::from(unit);
        nbits += 16;
        while nbits >= 6 {
            nbits -= 6;
            out.push(char::from(ALPHABET[((bits >> nbits) & 0x3f) as usize]));
        }
        bits &= (1 << nbits) - 1;
    }
    if nbits > 0 {
        out.push(char::from(
            ALPHABET[((bits << (6 - nbits)) & 0x3f) as usize],
        ));
    }
    out.push('-');
}

/// Whether `name` is valid modified UTF-7.
pub fn is_valid(name: &str) -> bool {
    decode(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples() {
        // RFC 3501 5.1.3.
        let name = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        assert_eq!(decode(name).unwrap(), "~peter/mail/台北/日本語");
        assert_eq!(encode("~peter/mail/台北/日本語"), name);
        assert_eq!(decode("&Jjo-!").unwrap(), "☺!");
        assert_eq!(encode("☺!"), "&Jjo-!");
    }

    #[test]
    fn ampersand_and_plain_ascii() {
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode("Tom &- Jerry").unwrap(), "Tom & Jerry");
        assert_eq!(decode("INBOX").unwrap(), "INBOX");
        assert_eq!(encode(""), "");
    }

    #[test]
    fn round_trips() {
        for name in [
            "Entwürfe",
            "Éléments envoyés",
            "Отправленные",
            "😀 emoji",
            "a\u{1}b",
            "日本語&more",
            "x\u{7f}",
        ] {
            let encoded = encode(name);
            assert!(is_valid(&encoded), "{encoded}");
            assert_eq!(decode(&encoded).unwrap(), name);
        }
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
    }

    #[test]
    fn invalid_names() {
        assert_eq!(decode("a&Jjo"), Err(Utf7Error::Unterminated));
        assert_eq!(decode("a&Jj!-"), Err(Utf7Error::InvalidBase64));
        assert_eq!(decode("&AGE-"), Err(Utf7Error::EncodedAscii)); // "a"
        assert_eq!(decode("&Jjp-"), Err(Utf7Error::InvalidBase64)); // non-zero pad bits
        assert_eq!(decode("&AGEA-"), Err(Utf7Error::InvalidBase64)); // 8 bits left over
        assert_eq!(decode("&2D0-"), Err(Utf7Error::InvalidUtf16)); // lone high surrogate
        assert_eq!(decode("Entwürfe"), Err(Utf7Error::NotPrintable));
        assert_eq!(decode("tab\there"), Err(Utf7Error::NotPrintable));
        assert!(!is_valid("&"));
        assert!(is_valid("&-"));
    }
}
