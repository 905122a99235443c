//! Writing IMAP strings into responses: quoted where the bytes allow it, a literal otherwise,
//! `NIL` for nothing. Every response that carries data from a message or a client goes
//! through these, so no CR, LF, `"` or `\` can break the response syntax.

/// Appends `bytes` as an IMAP string: quoted when short and free of CR, LF, NUL and 8-bit
/// bytes, a `{n}` literal otherwise.
pub fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() <= MAX_QUOTED && bytes.iter().all(|&b| is_quotable(b)) {
        quoted(out, bytes);
    } else {
        literal(out, bytes);
    }
}

/// Longer strings go as literals.
const MAX_QUOTED: usize = 1024;

/// Appends `"bytes"`, escaping `"` and `\`; the caller has checked they may be quoted.
fn quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &byte in bytes {
        if byte == b'"' || byte == b'\\' {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out.push(b'"');
}

/// A mailbox name: an [`astring`], except that with `utf8` (IMAP4rev2 or UTF8=ACCEPT
/// enabled) a name with UTF-8 characters is quoted rather than sent as a literal (RFC 9051's
/// QUOTED-CHAR and RFC 6855 3 take UTF-8).
pub fn mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    let quotable_utf8 = utf8
        && !name.is_ascii()
        && name.len() <= MAX_QUOTED
        && name.bytes().all(|b| b >= 0x80 || is_quotable(b));
    if quotable_utf8 {
        quoted(out, name.as_bytes());
    } else {
        astring(out, name.as_bytes());
    }
}

/// Appends `{n}\r\n` and the bytes.
pub fn literal(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
}

/// Appends a number in decimal, without the formatting machinery (a SORT of a large folder
/// writes one per message).
pub fn number(out: &mut Vec<u8>, number: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(number).as_bytes());
}

/// `NIL` or [`string`].
pub fn nstring(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => string(out, bytes),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// An astring: bare when it is a plain atom (mailbox names like `INBOX`, `Sent`), else
/// [`string`].
pub fn astring(out: &mut Vec<u8>, bytes: &[u8]) {
    if !bytes.is_empty() && bytes.iter().all(|&b| is_astring_char(b)) {
        out.extend_from_slice(bytes);
    } else {
        string(out, bytes);
    }
}

fn is_quotable(byte: u8) -> bool {
    (0x01..=0x7f).contains(&byte) && byte != b'\r' && byte != b'\n'
}

/// RFC 3501 ASTRING-CHAR: ATOM-CHAR or `]`.
pub fn is_astring_char(byte: u8) -> bool {
    is_atom_char(byte) || byte == b']'
}

/// RFC 3501 ATOM-CHAR: any CHAR except atom-specials.
pub fn is_atom_char(byte: u8) -> bool {
    (0x21..0x7f).contains(&byte)
        && !matches!(byte, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn quotes_escape_and_literals() {
        assert_eq!(render(|o| string(o, b"a \"b\" \\c")), r#""a \"b\" \\c""#);
        assert_eq!(
            render(|o| string(o, b"line\r\nbreak")),
            "{11}\r\nline\r\nbreak"
        );
        assert_eq!(render(|o| string(o, "é".as_bytes())), "{2}\r\né");
        assert_eq!(render(|o| nstring(o, None)), "NIL");
        assert_eq!(render(|o| astring(o, b"INBOX")), "INBOX");
        assert_eq!(render(|o| astring(o, b"My Folder")), "\"My Folder\"");
        assert_eq!(render(|o| astring(o, b"")), "\"\"");
        assert_eq!(render(|o| astring(o, b"a%b")), "\"a%b\"");
    }

    #[test]
    fn utf8_mailbox_names_are_quoted_only_when_utf8_is_on() {
        assert_eq!(render(|o| mailbox(o, "Entwürfe", true)), "\"Entwürfe\"");
        assert_eq!(render(|o| mailbox(o, "Entwürfe", false)), "{9}\r\nEntwürfe");
        assert_eq!(
            render(|o| mailbox(o, "日本 \"x\"", true)),
            "\"日本 \\\"x\\\"\""
        );
        assert_eq!(render(|o| mailbox(o, "INBOX", true)), "INBOX");
        assert_eq!(render(|o| mailbox(o, "My Folder", true)), "\"My Folder\"");
        assert_eq!(render(|o| mailbox(o, "a\nü", true)), "{4}\r\na\nü");
        let long = "ü".repeat(600);
        assert!(render(|o| mailbox(o, &long, true)).starts_with("{1200}\r\n"));
    }
}
