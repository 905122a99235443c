//! Responses as RFC 5804 4 writes them: `OK`, `NO` or `BYE`, an optional response code in
//! parentheses, an optional human-readable string; strings quoted when they can be, literals
//! (`{n}` CRLF then the octets) when not.

use crate::parser::MAX_QUOTED;

/// The response codes of RFC 5804 1.3 this server sends, plus Pigeonhole's
/// `QUOTA/MAXSTORAGE` for the total size of a user's scripts (a client that does not know it
/// reads it as `QUOTA`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Code {
    AuthTooWeak,
    EncryptNeeded,
    Quota,
    QuotaMaxScripts,
    QuotaMaxSize,
    QuotaMaxStorage,
    Active,
    NonExistent,
    AlreadyExists,
    TryLater,
    Warnings,
    Tag(String),
}

impl Code {
    fn write(&self, out: &mut Vec<u8>) {
        let name = match self {
            Code::AuthTooWeak => "AUTH-TOO-WEAK",
            Code::EncryptNeeded => "ENCRYPT-NEEDED",
            Code::Quota => "QUOTA",
            Code::QuotaMaxScripts => "QUOTA/MAXSCRIPTS",
            Code::QuotaMaxSize => "QUOTA/MAXSIZE",
            Code::QuotaMaxStorage => "QUOTA/MAXSTORAGE",
            Code::Active => "ACTIVE",
            Code::NonExistent => "NONEXISTENT",
            Code::AlreadyExists => "ALREADYEXISTS",
            Code::TryLater => "TRYLATER",
            Code::Warnings => "WARNINGS",
            Code::Tag(tag) => {
                out.extend_from_slice(b"(TAG ");
                write_string(out, tag.as_bytes());
                out.push(b')');
                return;
            }
        };
        out.push(b'(');
        out.extend_from_slice(name.as_bytes());
        out.push(b')');
    }
}

/// `OK`, `NO` or `BYE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bye,
}

/// One response line (or more, when its text is a literal).
pub fn response(status: Status, code: Option<&Code>, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 16);
    out.extend_from_slice(match status {
        Status::Ok => b"OK",
        Status::No => b"NO",
        Status::Bye => b"BYE",
    });
    if let Some(code) = code {
        out.push(b' ');
        code.write(&mut out);
    }
    if !text.is_empty() {
        out.push(b' ');
        write_string(&mut out, text.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Appends `value` as a quoted string when it may be one (UTF-8 without CR, LF or NUL, at most
/// [`MAX_QUOTED`] octets), else as a literal.
pub fn write_string(out: &mut Vec<u8>, value: &[u8]) {
    let quotable = value.len() <= MAX_QUOTED
        && std::str::from_utf8(value).is_ok()
        && !value.iter().any(|&byte| matches!(byte, b'\r' | b'\n' | 0));
    if quotable {
        out.push(b'"');
        for &byte in value {
            if matches!(byte, b'"' | b'\\') {
                out.push(b'\\');
            }
            out.push(byte);
        }
        out.push(b'"');
    } else {
        write_literal(out, value);
    }
}

/// Appends `{n}` CRLF and the octets (GETSCRIPT's answer, multi-line texts).
pub fn write_literal(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", value.len()).as_bytes());
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap_or_default()
    }

    #[test]
    fn responses() {
        assert_eq!(text(response(Status::Ok, None, "")), "OK\r\n");
        assert_eq!(
            text(response(
                Status::No,
                Some(&Code::NonExistent),
                "No such script."
            )),
            "NO (NONEXISTENT) \"No such script.\"\r\n"
        );
        assert_eq!(
            text(response(
                Status::Ok,
                Some(&Code::Tag("a\"b".into())),
                "Done."
            )),
            "OK (TAG \"a\\\"b\") \"Done.\"\r\n"
        );
        assert_eq!(
            text(response(
                Status::No,
                None,
                "line 2: unknown command 'x'\nline 3: missing ';'"
            )),
            "NO {47}\r\nline 2: unknown command 'x'\nline 3: missing ';'\r\n"
        );
        assert_eq!(
            text(response(Status::Bye, Some(&Code::TryLater), "Bye.")),
            "BYE (TRYLATER) \"Bye.\"\r\n"
        );
    }
}
