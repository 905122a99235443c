//! Command parsing (hand-written; see the crate docs) and replies.
//!
//! # Format
//!
//! `VERB [argument]`, the verb case-insensitive. `MAIL FROM:<path> [KEY[=VALUE] ...]` and
//! `RCPT TO:<path> [KEY[=VALUE] ...]` (RFC 5321 §4.1.1), `BDAT <size> [LAST]` (RFC 3030).

use std::fmt::Write as _;

/// A reply: a code and one or more lines of text (the text starts with the enhanced status
/// code where there is one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) lines: Vec<String>,
}

impl Reply {
    pub(crate) fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    pub(crate) fn is_error(&self) -> bool {
        self.code >= 400
    }

    pub(crate) fn to_wire(&self) -> Vec<u8> {
        let mut wire = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (index, line) in self.lines.iter().enumerate() {
            let separator = if index == last { ' ' } else { '-' };
            let _ = write!(wire, "{}{}{}\r\n", self.code, separator, line);
        }
        wire.into_bytes()
    }
}

/// A parsed `MAIL FROM` or `RCPT TO`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PathCommand {
    /// The address inside `<>`, without a source route; empty for the null sender `<>`.
    pub(crate) address: String,
    /// Parameters, keys upper-cased.
    pub(crate) params: Vec<(String, Option<String>)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Ehlo(String),
    Helo(String),
    Lhlo(String),
    Mail(PathCommand),
    Rcpt(PathCommand),
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy,
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    /// A known verb this server does not offer (EXPN, ETRN, HELP, TURN).
    NotImplemented,
}

/// Parses one command line (without its line ending).
///
/// # Errors
/// The reply to send: `500 5.5.2` for an unknown verb or unreadable line, `501 5.5.4` for
/// bad arguments.
pub(crate) fn parse(line: &[u8]) -> Result<Command, Reply> {
    if line.contains(&0) {
        return Err(Reply::new(500, "5.5.2 Error: NUL character in command"));
    }
    let Ok(line) = std::str::from_utf8(line) else {
        return Err(Reply::new(500, "5.5.2 Error: command is not valid UTF-8"));
    };
    let line = line.trim_end_matches([' ', '\t']);
    let (verb, argument) = match line.split_once([' ', '\t']) {
        Some((verb, argument)) => (verb, argument.trim_start_matches([' ', '\t'])),
        None => (line, ""),
    };
    let no_argument = |command: Command| {
        if argument.is_empty() {
            Ok(command)
        } else {
            Err(Reply::new(501, "5.5.4 Syntax error: no arguments allowed"))
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" => hello(argument, "EHLO").map(Command::Ehlo),
        "HELO" => hello(argument, "HELO").map(Command::Helo),
        "LHLO" => hello(argument, "LHLO").map(Command::Lhlo),
        "MAIL" => path_command(argument, "FROM:").map(Command::Mail),
        "RCPT" => path_command(argument, "TO:").map(Command::Rcpt),
        "DATA" => no_argument(Command::Data),
        "BDAT" => bdat(argument),
        "RSET" => no_argument(Command::Rset),
        // NOOP and QUIT may carry an argument (RFC 5321 §4.1.1.9); it is ignored.
        "NOOP" => Ok(Command::Noop),
        "QUIT" => Ok(Command::Quit),
        "VRFY" => Ok(Command::Vrfy),
        "STARTTLS" => no_argument(Command::StartTls),
        "AUTH" => auth(argument),
        "EXPN" | "ETRN" | "HELP" | "TURN" => Ok(Command::NotImplemented),
        _ => Err(Reply::new(500, "5.5.2 Error: command not recognized")),
    }
}

fn hello(argument: &str, verb: &str) -> Result<String, Reply> {
    match argument.split_whitespace().next() {
        Some(name) => Ok(name.to_string()),
        None => Err(Reply::new(501, format!("5.5.4 Syntax: {verb} hostname"))),
    }
}

fn auth(argument: &str) -> Result<Command, Reply> {
    let mut words = argument.split_whitespace();
    let Some(mechanism) = words.next() else {
        return Err(Reply::new(501, "5.5.4 Syntax: AUTH mechanism"));
    };
    let initial = words.next().map(str::to_owned);
    if words.next().is_some() {
        return Err(Reply::new(
            501,
            "5.5.4 Syntax: AUTH mechanism [initial-response]",
        ));
    }
    Ok(Command::Auth {
        mechanism: mechanism.to_ascii_uppercase(),
        initial,
    })
}

fn bdat(argument: &str) -> Result<Command, Reply> {
    let syntax = || Reply::new(501, "5.5.4 Syntax: BDAT size [LAST]");
    let mut words = argument.split_whitespace();
    let size = words.next().ok_or_else(syntax)?;
    if !size.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(syntax());
    }
    let size: u64 = size.parse().map_err(|_| syntax())?;
    let last = match words.next() {
        None => false,
        Some(word) if word.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(syntax()),
    };
    if words.next().is_some() {
        return Err(syntax());
    }
    Ok(Command::Bdat { size, last })
}

fn path_command(argument: &str, keyword: &str) -> Result<PathCommand, Reply> {
    let syntax = || {
        let verb = if keyword == "FROM:" {
            "MAIL FROM"
        } else {
            "RCPT TO"
        };
        Reply::new(501, format!("5.5.4 Syntax: {verb}:<address>"))
    };
    let Some(head) = argument.get(..keyword.len()) else {
        return Err(syntax());
    };
    if !head.eq_ignore_ascii_case(keyword) {
        return Err(syntax());
    }
    // Postfix accepts a space after the colon; so do we.
    let rest = argument[keyword.len()..].trim_start_matches([' ', '\t']);
    let Some(rest) = rest.strip_prefix('<') else {
        return Err(syntax());
    };
    let Some(close) = rest.find('>') else {
        return Err(syntax());
    };
    let mut path = &rest[..close];
    let params_text = &rest[close + 1..];
    if !params_text.is_empty() && !params_text.starts_with([' ', '\t']) {
        return Err(syntax());
    }
    // A source route (`@a,@b:user@domain`) is ignored, as RFC 5321 §4.1.1.3 allows.
    if path.starts_with('@') {
        match path.find(':') {
            Some(colon) => path = &path[colon + 1..],
            None => return Err(syntax()),
        }
    }
    if path.contains(['<', ' ', '\t']) || path.chars().any(char::is_control) {
        return Err(Reply::new(501, "5.1.7 Bad address syntax"));
    }
    let mut params = Vec::new();
    for param in params_text.split_whitespace() {
        let (key, value) = match param.split_once('=') {
            Some((key, value)) => (key, Some(value.to_string())),
            None => (param, None),
        };
        if key.is_empty()
            || !key
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        {
            return Err(Reply::new(501, "5.5.4 Bad parameter syntax"));
        }
        params.push((key.to_ascii_uppercase(), value));
    }
    Ok(PathCommand {
        address: path.to_string(),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mail_with_params() {
        let command = parse(b"mail from: <a@b.example> SIZE=100 body=8BITMIME").unwrap();
        assert_eq!(
            command,
            Command::Mail(PathCommand {
                address: "a@b.example".to_string(),
                params: vec![
                    ("SIZE".to_string(), Some("100".to_string())),
                    ("BODY".to_string(), Some("8BITMIME".to_string())),
                ],
            })
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse(b"\0\0").unwrap_err().code, 500);
        assert_eq!(parse(b"\xff\xfe").unwrap_err().code, 500);
        assert_eq!(parse(b"FOO").unwrap_err().code, 500);
        assert_eq!(parse(b"MAIL FROM").unwrap_err().code, 501);
        assert_eq!(parse(b"RCPT TO:<a@b").unwrap_err().code, 501);
        assert_eq!(parse(b"BDAT x").unwrap_err().code, 501);
        assert_eq!(
            parse(b"BDAT 99999999999999999999999").unwrap_err().code,
            501
        );
        assert_eq!(parse(b"").unwrap_err().code, 500);
        assert_eq!(parse(b"AUTH").unwrap_err().code, 501);
        assert_eq!(parse(b"AUTH PLAIN a b").unwrap_err().code, 501);
    }

    #[test]
    fn auth_takes_a_mechanism_and_an_initial_response() {
        assert_eq!(
            parse(b"auth plain AGJvYgBzZWNyZXQ=").unwrap(),
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGJvYgBzZWNyZXQ=".into())
            }
        );
        assert_eq!(
            parse(b"AUTH LOGIN").unwrap(),
            Command::Auth {
                mechanism: "LOGIN".into(),
                initial: None
            }
        );
    }

    #[test]
    fn bdat_and_route() {
        assert_eq!(
            parse(b"BDAT 10 last").unwrap(),
            Command::Bdat {
                size: 10,
                last: true
            }
        );
        match parse(b"RCPT TO:<@relay.example:bob@example.com>").unwrap() {
            Command::Rcpt(path) => assert_eq!(path.address, "bob@example.com"),
            other => panic!("{other:?}"),
        }
    }
}
