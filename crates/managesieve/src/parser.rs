//! One whole command (literals inline, as the connection frames it) to a [`Command`]
//! (RFC 5804 4: a case-insensitive command name, then strings and numbers separated by
//! spaces, ending with CRLF).
//!
//! # Format
//!
//! - A string is quoted (`"..."`, at most 1024 octets, `\"` and `\\` the only escapes, no CR,
//!   LF or NUL) or a literal, `{n+}` CRLF then n octets. `{n}` is taken the same way: ManageSieve
//!   has no continuation for literals, so a client that sends one sends its octets at once.
//! - A number is 1 to 10 digits, at most 4294967295.
//! - A bare LF ends a line as CRLF does (clients typed by hand send it).

use crate::command::Command;

/// Why a command cannot be run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command")]
    Unknown,
    #[error("{0}")]
    Syntax(&'static str),
}

/// RFC 5804 4: "quoted strings are limited to 1024 octets".
pub const MAX_QUOTED: usize = 1024;
/// RFC 5804 4: numbers are 0 to 4294967295.
const MAX_NUMBER: u64 = 4_294_967_295;

/// Parses one command.
///
/// # Errors
///
/// [`ParseError::Unknown`] for a command name this server does not know,
/// [`ParseError::Syntax`] for wrong arguments.
pub fn parse_command(input: &[u8]) -> Result<Command, ParseError> {
    let mut tokens = Tokens::new(input);
    let name = tokens.command_name()?;
    let command = match name.as_slice() {
        b"CAPABILITY" => Command::Capability,
        b"STARTTLS" => Command::StartTls,
        b"LOGOUT" => Command::Logout,
        b"UNAUTHENTICATE" => Command::Unauthenticate,
        b"LISTSCRIPTS" => Command::ListScripts,
        b"NOOP" => Command::Noop(tokens.optional_string()?.map(text).transpose()?),
        b"AUTHENTICATE" => Command::Authenticate {
            mechanism: text(tokens.string()?)?,
            initial_response: tokens.optional_string()?,
        },
        b"HAVESPACE" => Command::HaveSpace {
            name: text(tokens.string()?)?,
            size: tokens.number()?,
        },
        b"PUTSCRIPT" => Command::PutScript {
            name: text(tokens.string()?)?,
            script: tokens.string()?,
        },
        b"CHECKSCRIPT" => Command::CheckScript {
            script: tokens.string()?,
        },
        b"SETACTIVE" => Command::SetActive(text(tokens.string()?)?),
        b"GETSCRIPT" => Command::GetScript(text(tokens.string()?)?),
        b"DELETESCRIPT" => Command::DeleteScript(text(tokens.string()?)?),
        b"RENAMESCRIPT" => Command::RenameScript {
            old: text(tokens.string()?)?,
            new: text(tokens.string()?)?,
        },
        _ => return Err(ParseError::Unknown),
    };
    tokens.finish()?;
    Ok(command)
}

/// Parses a client's answer to an AUTHENTICATE challenge: one string, CRLF.
///
/// # Errors
///
/// [`ParseError::Syntax`] when the line is not exactly one string.
pub fn parse_sasl_response(input: &[u8]) -> Result<Vec<u8>, ParseError> {
    let mut tokens = Tokens::new(input);
    let response = tokens.string()?;
    tokens.finish()?;
    Ok(response)
}

/// The size a line announces when it ends with a literal's `{n}` or `{n+}`; `None` when it
/// does not end with one.
pub fn literal_announcement(line: &[u8]) -> Option<u64> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&byte| byte == b'{')?;
    let digits = inner.get(open + 1..)?;
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    number_from(digits).ok()
}

fn number_from(digits: &[u8]) -> Result<u64, ParseError> {
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::Syntax("Invalid number"));
    }
    let value = digits
        .iter()
        .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'));
    if value > MAX_NUMBER {
        return Err(ParseError::Syntax("Number too large"));
    }
    Ok(value)
}

/// Script names, mechanisms and tags are UTF-8 (RFC 5804 1.6).
fn text(bytes: Vec<u8>) -> Result<String, ParseError> {
    String::from_utf8(bytes).map_err(|_| ParseError::Syntax("String is not UTF-8"))
}

struct Tokens<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Tokens<'a> {
    fn new(input: &'a [u8]) -> Tokens<'a> {
        Tokens { input, at: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    /// The command name, upper-cased: letters only.
    fn command_name(&mut self) -> Result<Vec<u8>, ParseError> {
        let start = self.at;
        while self.peek().is_some_and(|byte| byte.is_ascii_alphabetic()) {
            self.at += 1;
        }
        let name = self.input.get(start..self.at).unwrap_or_default();
        if name.is_empty() {
            return Err(ParseError::Unknown);
        }
        // Anything glued to the name ("NOOPX", "NOOP\"x\"") makes an unknown name.
        match self.peek() {
            None | Some(b' ' | b'\r' | b'\n') => Ok(name.to_ascii_uppercase()),
            Some(_) => Err(ParseError::Unknown),
        }
    }

    /// Spaces before an argument; `false` at the end of the command.
    fn argument_follows(&mut self) -> Result<bool, ParseError> {
        let start = self.at;
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
        match self.peek() {
            None | Some(b'\r' | b'\n') => Ok(false),
            // A SASL answer is a string at the start of its line.
            Some(_) if self.at == start && start != 0 => Err(ParseError::Syntax("Missing space")),
            Some(_) => Ok(true),
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, ParseError> {
        match self.optional_string()? {
            Some(string) => Ok(string),
            None => Err(ParseError::Syntax("Missing argument")),
        }
    }

    fn optional_string(&mut self) -> Result<Option<Vec<u8>>, ParseError> {
        if !self.argument_follows()? {
            return Ok(None);
        }
        match self.peek() {
            Some(b'"') => self.quoted().map(Some),
            Some(b'{') => self.literal().map(Some),
            _ => Err(ParseError::Syntax("Expected a string")),
        }
    }

    fn number(&mut self) -> Result<u64, ParseError> {
        if !self.argument_follows()? {
            return Err(ParseError::Syntax("Missing argument"));
        }
        let start = self.at;
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.at += 1;
        }
        number_from(self.input.get(start..self.at).unwrap_or_default())
    }

    fn quoted(&mut self) -> Result<Vec<u8>, ParseError> {
        self.at += 1;
        let mut value = Vec::new();
        loop {
            let Some(byte) = self.peek() else {
                return Err(ParseError::Syntax("Unterminated quoted string"));
            };
            self.at += 1;
            match byte {
                b'"' => break,
                b'\\' => match self.peek() {
                    Some(escaped @ (b'"' | b'\\')) => {
                        self.at += 1;
                        value.push(escaped);
                    }
                    _ => return Err(ParseError::Syntax("Invalid escape in quoted string")),
                },
                b'\r' | b'\n' => return Err(ParseError::Syntax("Unterminated quoted string")),
                0 => return Err(ParseError::Syntax("NUL in quoted string")),
                byte => value.push(byte),
            }
            if value.len() > MAX_QUOTED {
                return Err(ParseError::Syntax("Quoted string too long"));
            }
        }
        Ok(value)
    }

    /// `{n+}` or `{n}`, CRLF (or LF), then n octets.
    fn literal(&mut self) -> Result<Vec<u8>, ParseError> {
        let rest = self.input.get(self.at..).unwrap_or_default();
        let Some(close) = rest.iter().position(|&byte| byte == b'}') else {
            return Err(ParseError::Syntax("Invalid literal"));
        };
        let announcement = rest.get(..=close).unwrap_or_default();
        let size = literal_announcement(announcement)
            .filter(|_| announcement.first() == Some(&b'{'))
            .ok_or(ParseError::Syntax("Invalid literal"))?;
        self.at += close + 1;
        match (self.peek(), self.input.get(self.at + 1)) {
            (Some(b'\r'), Some(b'\n')) => self.at += 2,
            (Some(b'\n'), _) => self.at += 1,
            _ => return Err(ParseError::Syntax("Literal must end its line")),
        }
        let size = usize::try_from(size).map_err(|_| ParseError::Syntax("Literal too large"))?;
        let end = self
            .at
            .checked_add(size)
            .filter(|&end| end <= self.input.len())
            .ok_or(ParseError::Syntax("Literal shorter than announced"))?;
        let value = self.input.get(self.at..end).unwrap_or_default().to_vec();
        self.at = end;
        Ok(value)
    }

    /// Nothing but the line end may follow the arguments.
    fn finish(mut self) -> Result<(), ParseError> {
        if self.argument_follows()? {
            return Err(ParseError::Syntax("Too many arguments"));
        }
        match self.input.get(self.at..).unwrap_or_default() {
            b"" | b"\r\n" | b"\n" => Ok(()),
            _ => Err(ParseError::Syntax("Garbage after the command")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Result<Command, ParseError> {
        parse_command(input.as_bytes())
    }

    #[test]
    fn the_rfc_5804_commands() {
        assert_eq!(parse("CAPABILITY\r\n"), Ok(Command::Capability));
        assert_eq!(parse("starttls\r\n"), Ok(Command::StartTls));
        assert_eq!(parse("Logout\n"), Ok(Command::Logout));
        assert_eq!(parse("UNAUTHENTICATE\r\n"), Ok(Command::Unauthenticate));
        assert_eq!(parse("LISTSCRIPTS\r\n"), Ok(Command::ListScripts));
        assert_eq!(parse("NOOP\r\n"), Ok(Command::Noop(None)));
        assert_eq!(
            parse("NOOP \"STARTTLS-SYNC-42\"\r\n"),
            Ok(Command::Noop(Some("STARTTLS-SYNC-42".into())))
        );
        assert_eq!(
            parse("AUTHENTICATE \"PLAIN\" \"AGpvZQBzZWNyZXQ=\"\r\n"),
            Ok(Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: Some(b"AGpvZQBzZWNyZXQ=".to_vec())
            })
        );
        assert_eq!(
            parse("AUTHENTICATE \"PLAIN\" {16+}\r\nAGpvZQBzZWNyZXQ=\r\n"),
            Ok(Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: Some(b"AGpvZQBzZWNyZXQ=".to_vec())
            })
        );
        assert_eq!(
            parse("AUTHENTICATE \"LOGIN\"\r\n"),
            Ok(Command::Authenticate {
                mechanism: "LOGIN".into(),
                initial_response: None
            })
        );
        assert_eq!(
            parse("HAVESPACE \"myscript\" 999999\r\n"),
            Ok(Command::HaveSpace {
                name: "myscript".into(),
                size: 999_999
            })
        );
        assert_eq!(
            parse("Putscript \"foo\" {31+}\r\n#comment\r\nInvalidSieveCommand\r\n\r\n"),
            Ok(Command::PutScript {
                name: "foo".into(),
                script: b"#comment\r\nInvalidSieveCommand\r\n".to_vec()
            })
        );
        // A synchronizing literal is taken as a non-synchronizing one.
        assert_eq!(
            parse("PUTSCRIPT {3}\r\nfoo {5}\r\nkeep;\r\n"),
            Ok(Command::PutScript {
                name: "foo".into(),
                script: b"keep;".to_vec()
            })
        );
        assert_eq!(
            parse("CHECKSCRIPT {5+}\nkeep;\n"),
            Ok(Command::CheckScript {
                script: b"keep;".to_vec()
            })
        );
        assert_eq!(
            parse("SETACTIVE \"\"\r\n"),
            Ok(Command::SetActive(String::new()))
        );
        assert_eq!(
            parse("GETSCRIPT \"my \\\"best\\\" \\\\script\"\r\n"),
            Ok(Command::GetScript("my \"best\" \\script".into()))
        );
        assert_eq!(
            parse("DELETESCRIPT \"foo\"\r\n"),
            Ok(Command::DeleteScript("foo".into()))
        );
        assert_eq!(
            parse("RENAMESCRIPT \"a\"  \"b\"\r\n"),
            Ok(Command::RenameScript {
                old: "a".into(),
                new: "b".into()
            })
        );
        assert_eq!(
            parse("GETSCRIPT \"\u{fc}ber\"\r\n"),
            Ok(Command::GetScript("\u{fc}ber".into()))
        );
    }

    #[test]
    fn wrong_arguments_are_syntax_errors() {
        for input in [
            "GETSCRIPT\r\n",
            "GETSCRIPT foo\r\n",
            "GETSCRIPT \"foo\" \"bar\"\r\n",
            "GETSCRIPT \"foo\r\n",
            "GETSCRIPT \"foo\\n\"\r\n",
            "HAVESPACE \"a\"\r\n",
            "HAVESPACE \"a\" x\r\n",
            "HAVESPACE \"a\" 4294967296\r\n",
            "HAVESPACE \"a\" 12345678901\r\n",
            "HAVESPACE \"a\" -1\r\n",
            "PUTSCRIPT \"a\"\r\n",
            "PUTSCRIPT \"a\" {10+}\r\nshort\r\n",
            "PUTSCRIPT \"a\" {+}\r\nx\r\n",
            "PUTSCRIPT \"a\" {5+} \r\nkeep;\r\n",
            "PUTSCRIPT \"a\" {5+}\r\nkeep;x\r\n",
            "RENAMESCRIPT \"a\"\r\n",
            "CAPABILITY now\r\n",
            "LOGOUT \"x\"\r\n",
            "AUTHENTICATE\r\n",
            "AUTHENTICATE \"PLAIN\" \"a\" \"b\"\r\n",
            "NOOP \"a\" \"b\"\r\n",
        ] {
            assert!(
                matches!(parse(input), Err(ParseError::Syntax(_))),
                "{input:?} parsed as {:?}",
                parse(input)
            );
        }
        assert!(matches!(
            parse_command(b"GETSCRIPT \"\xff\"\r\n"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse_command(b"GETSCRIPT \"a\0b\"\r\n"),
            Err(ParseError::Syntax(_))
        ));
        let long = format!("GETSCRIPT \"{}\"\r\n", "a".repeat(MAX_QUOTED + 1));
        assert_eq!(
            parse(&long),
            Err(ParseError::Syntax("Quoted string too long"))
        );
        // A literal may be as long as the framing allowed.
        let big = format!("GETSCRIPT {{2000+}}\r\n{}\r\n", "a".repeat(2000));
        assert_eq!(parse(&big), Ok(Command::GetScript("a".repeat(2000))));
    }

    #[test]
    fn unknown_commands() {
        for input in [
            "",
            "\r\n",
            " NOOP\r\n",
            "XYZZY\r\n",
            "NOOPX\r\n",
            "NOOP1\r\n",
            "\"NOOP\"\r\n",
            "GETSCRIPT\"foo\"\r\n",
        ] {
            assert_eq!(parse(input), Err(ParseError::Unknown), "{input:?}");
        }
    }

    #[test]
    fn sasl_responses() {
        assert_eq!(
            parse_sasl_response(b"\"dGVzdA==\"\r\n"),
            Ok(b"dGVzdA==".to_vec())
        );
        assert_eq!(
            parse_sasl_response(b"{4+}\r\nabcd\r\n"),
            Ok(b"abcd".to_vec())
        );
        assert_eq!(parse_sasl_response(b"\"*\"\r\n"), Ok(b"*".to_vec()));
        assert!(parse_sasl_response(b"dGVzdA==\r\n").is_err());
        assert!(parse_sasl_response(b"\"a\" \"b\"\r\n").is_err());
    }

    #[test]
    fn literal_announcements() {
        assert_eq!(literal_announcement(b"PUTSCRIPT \"a\" {12+}"), Some(12));
        assert_eq!(literal_announcement(b"PUTSCRIPT \"a\" {12}"), Some(12));
        assert_eq!(literal_announcement(b"{0+}"), Some(0));
        assert_eq!(literal_announcement(b"PUTSCRIPT \"a\" {x}"), None);
        assert_eq!(literal_announcement(b"PUTSCRIPT \"a\" {}"), None);
        assert_eq!(
            literal_announcement(b"PUTSCRIPT \"a\" {99999999999+}"),
            None
        );
        assert_eq!(literal_announcement(b"PUTSCRIPT \"a\""), None);
    }
}
