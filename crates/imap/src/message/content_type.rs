//! Content-Type and its parameters (RFC 2045, RFC 2231), from the tokens of a structured
//! header.

use super::*;

/// Tokens of a structured MIME header: tokens, quoted strings and `/ ; =` specials, comments
/// skipped.
#[derive(Debug, PartialEq)]
pub(super) enum MimeToken {
    Word(Vec<u8>),
    Quoted(Vec<u8>),
    Special(u8),
}

pub(super) fn mime_tokens(value: &[u8]) -> Vec<MimeToken> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&byte) = value.get(i) {
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => i = skip_comment(value, i).0,
            b'"' => {
                let (text, next) = quoted_string(value, i);
                tokens.push(MimeToken::Quoted(text));
                i = next;
            }
            b'/' | b';' | b'=' | b',' => {
                tokens.push(MimeToken::Special(byte));
                i += 1;
            }
            _ => {
                let start = i;
                while let Some(&b) = value.get(i) {
                    if b.is_ascii_whitespace()
                        || matches!(b, b'(' | b'"' | b'/' | b';' | b'=' | b',')
                    {
                        break;
                    }
                    i += 1;
                }
                tokens.push(MimeToken::Word(
                    value.get(start..i).unwrap_or_default().to_vec(),
                ));
            }
        }
    }
    tokens
}

/// Skips a (nested) comment starting at `start`; returns the index after it and its text.
pub(super) fn skip_comment(value: &[u8], start: usize) -> (usize, Vec<u8>) {
    let mut depth = 0usize;
    let mut text = Vec::new();
    let mut i = start;
    while let Some(&b) = value.get(i) {
        i += 1;
        match b {
            b'\\' => {
                if let Some(&next) = value.get(i) {
                    text.push(next);
                    i += 1;
                }
            }
            b'(' => {
                if depth > 0 {
                    text.push(b);
                }
                depth += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return (i, text);
                }
                text.push(b);
            }
            b'\r' | b'\n' => {}
            _ => text.push(b),
        }
    }
    (i, text)
}

/// A quoted string starting at `start` (the `"`): its unescaped text and the index after it.
pub(super) fn quoted_string(value: &[u8], start: usize) -> (Vec<u8>, usize) {
    let mut text = Vec::new();
    let mut i = start + 1;
    while let Some(&b) = value.get(i) {
        i += 1;
        match b {
            b'"' => return (text, i),
            b'\\' => {
                if let Some(&next) = value.get(i) {
                    text.push(next);
                    i += 1;
                }
            }
            b'\r' | b'\n' => {}
            _ => text.push(b),
        }
    }
    (text, i)
}

pub(super) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(super) fn parse_content_type(value: &[u8]) -> Option<ContentType> {
    let tokens = mime_tokens(value);
    let (kind, subtype, rest) = match tokens.as_slice() {
        [
            MimeToken::Word(kind),
            MimeToken::Special(b'/'),
            MimeToken::Word(subtype),
            rest @ ..,
        ] => (kind, subtype, rest),
        _ => return None,
    };
    // Dovecot gives up on a Content-Type with junk after the subtype: an empty type.
    if rest.first().is_some_and(|t| *t != MimeToken::Special(b';')) {
        return Some(ContentType {
            kind: String::new(),
            subtype: String::new(),
            written: Some((Vec::new(), Vec::new())),
            params: Vec::new(),
        });
    }
    let params = parse_params(rest);
    Some(ContentType {
        kind: lossy(kind).to_ascii_lowercase(),
        subtype: lossy(subtype).to_ascii_lowercase(),
        written: Some((kind.clone(), subtype.clone())),
        params,
    })
}

/// Parameter names and values as written (values may be 8-bit).
pub(super) type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// `; name=value` pairs, RFC 2231 continuations joined the way Dovecot reports them: plain
/// pieces concatenated under `name`, pieces with a charset under `name*` still %-encoded.
pub(super) fn parse_params(tokens: &[MimeToken]) -> Params {
    let mut plain: Params = Vec::new();
    // (name, index, extended, value)
    let mut continued: Vec<(&[u8], u32, bool, &[u8])> = Vec::new();
    let mut i = 0;
    let mut after_semicolon = false;
    while i < tokens.len() {
        // Dovecot skips a parameter not introduced by `;`.
        let (true, Some(MimeToken::Word(name)), Some(MimeToken::Special(b'='))) =
            (after_semicolon, tokens.get(i), tokens.get(i + 1))
        else {
            after_semicolon = tokens.get(i) == Some(&MimeToken::Special(b';'));
            i += 1;
            continue;
        };
        after_semicolon = false;
        let value: &[u8] = match tokens.get(i + 2) {
            Some(MimeToken::Word(v) | MimeToken::Quoted(v)) => {
                i += 3;
                v
            }
            _ => {
                i += 2;
                b""
            }
        };
        // name*N or name*N* is a continuation; name* alone is a single extended value.
        let star = name.iter().position(|&b| b == b'*');
        let split = star.map(|at| (name.get(..at).unwrap_or_default(), name.get(at + 1..)));
        match split {
            Some((base, Some(index))) if !index.is_empty() && index != b"*" => {
                let extended = index.ends_with(b"*");
                let number = index.strip_suffix(b"*").unwrap_or(index);
                match std::str::from_utf8(number)
                    .ok()
                    .and_then(|n| n.parse::<u32>().ok())
                {
                    Some(n) => continued.push((base, n, extended, value)),
                    None => plain.push((name.clone(), value.to_vec())),
                }
            }
            _ => plain.push((name.clone(), value.to_vec())),
        }
    }
    let mut bases: Vec<&[u8]> = Vec::new();
    for (base, ..) in &continued {
        if !bases.iter().any(|b| b.eq_ignore_ascii_case(base)) {
            bases.push(base);
        }
    }
    for base in bases {
        let mut pieces: Vec<&(&[u8], u32, bool, &[u8])> = continued
            .iter()
            .filter(|(b, ..)| b.eq_ignore_ascii_case(base))
            .collect();
        pieces.sort_by_key(|(_, n, ..)| *n);
        let extended = pieces.first().is_some_and(|(_, _, e, _)| *e);
        let mut joined = Vec::new();
        for (_, _, piece_extended, value) in pieces {
            if extended && !piece_extended {
                for &byte in value.iter() {
                    if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
                        joined.push(byte);
                    } else {
                        joined.extend_from_slice(format!("%{byte:02X}").as_bytes());
                    }
                }
            } else {
                joined.extend_from_slice(value);
            }
        }
        let mut name = base.to_vec();
        if extended {
            name.push(b'*');
        }
        plain.push((name, joined));
    }
    plain
}

/// NUL cannot be sent in a string; Dovecot sends 0x80 instead.
pub(super) fn no_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    for byte in &mut bytes {
        if *byte == 0 {
            *byte = 0x80;
        }
    }
    bytes
}
