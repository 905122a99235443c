//! One POP3 command line (without its CRLF) to a [`Command`] (RFC 1939 3: a keyword of three
//! or four characters, case-insensitive, then arguments separated by single spaces).

use crate::command::Command;

/// Why a line is not a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command")]
    Unknown,
    #[error("{0}")]
    Syntax(&'static str),
}

/// Longest argument RFC 1939 allows (40 characters); PASS, whose argument is the rest of the
/// line, is bounded by the line limit only.
const MAX_ARGUMENT: usize = 40;

/// Parses one command line.
///
/// # Errors
///
/// [`ParseError::Unknown`] for a keyword this server does not know (APOP included),
/// [`ParseError::Syntax`] for wrong arguments.
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let (keyword, rest) = match line.iter().position(|&byte| byte == b' ') {
        Some(space) => (
            line.get(..space).unwrap_or_default(),
            Some(line.get(space + 1..).unwrap_or_default()),
        ),
        None => (line, None),
    };
    let keyword = keyword.to_ascii_uppercase();
    // PASS takes the rest of the line as it is: passwords may hold spaces.
    if keyword == b"PASS" {
        return match rest {
            Some(password) => Ok(Command::Pass(password.to_vec())),
            None => Err(ParseError::Syntax("PASS needs a password")),
        };
    }
    let args = Arguments::split(rest)?;
    let command = match keyword.as_slice() {
        b"CAPA" => Command::Capa,
        b"QUIT" => Command::Quit,
        b"STLS" => Command::Stls,
        b"STAT" => Command::Stat,
        b"NOOP" => Command::Noop,
        b"RSET" => Command::Rset,
        b"USER" => {
            return args
                .exactly_one()
                .map(|user| Command::User(user.to_owned()));
        }
        b"AUTH" => {
            let mut args = args;
            let mechanism = args.next().map(str::to_owned);
            let initial_response = args.next().map(str::to_owned);
            args.finish()?;
            return Ok(Command::Auth {
                mechanism,
                initial_response,
            });
        }
        b"LIST" => return args.optional_number().map(Command::List),
        b"UIDL" => return args.optional_number().map(Command::Uidl),
        b"RETR" => return args.one_number().map(Command::Retr),
        b"DELE" => return args.one_number().map(Command::Dele),
        b"TOP" => {
            let mut args = args;
            let message = number(
                args.next()
                    .ok_or(ParseError::Syntax("TOP needs two numbers"))?,
            )?;
            let lines = number(
                args.next()
                    .ok_or(ParseError::Syntax("TOP needs two numbers"))?,
            )?;
            args.finish()?;
            return Ok(Command::Top { message, lines });
        }
        _ => return Err(ParseError::Unknown),
    };
    args.finish()?;
    Ok(command)
}

/// The arguments after the keyword.
struct Arguments<'a> {
    parts: std::vec::IntoIter<&'a str>,
}

impl<'a> Arguments<'a> {
    fn split(rest: Option<&'a [u8]>) -> Result<Arguments<'a>, ParseError> {
        let parts = match rest {
            None => Vec::new(),
            Some(rest) => {
                let text = std::str::from_utf8(rest)
                    .map_err(|_| ParseError::Syntax("Arguments must be text"))?;
                // Several spaces in a row, or a trailing one, are forgiven (clients send them).
                text.split(' ').filter(|part| !part.is_empty()).collect()
            }
        };
        if parts.iter().any(|part| part.len() > MAX_ARGUMENT) {
            return Err(ParseError::Syntax("Argument too long"));
        }
        Ok(Arguments {
            parts: parts.into_iter(),
        })
    }

    fn next(&mut self) -> Option<&'a str> {
        self.parts.next()
    }

    fn finish(mut self) -> Result<(), ParseError> {
        match self.parts.next() {
            None => Ok(()),
            Some(_) => Err(ParseError::Syntax("Too many arguments")),
        }
    }

    fn exactly_one(mut self) -> Result<&'a str, ParseError> {
        let one = self.next().ok_or(ParseError::Syntax("Missing argument"))?;
        self.finish()?;
        Ok(one)
    }

    fn one_number(self) -> Result<u32, ParseError> {
        number(self.exactly_one()?)
    }

    fn optional_number(mut self) -> Result<Option<u32>, ParseError> {
        let Some(arg) = self.next() else {
            return Ok(None);
        };
        self.finish()?;
        number(arg).map(Some)
    }
}

/// A message number or a line count: decimal digits only.
fn number(arg: &str) -> Result<u32, ParseError> {
    if !arg.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ParseError::Syntax("Invalid number"));
    }
    arg.parse()
        .map_err(|_| ParseError::Syntax("Invalid number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, ParseError> {
        parse_command(line.as_bytes())
    }

    #[test]
    fn the_rfc_1939_commands() {
        assert_eq!(parse("USER mrose"), Ok(Command::User("mrose".into())));
        assert_eq!(parse("pass tan ya"), Ok(Command::Pass(b"tan ya".to_vec())));
        assert_eq!(parse("PASS "), Ok(Command::Pass(Vec::new())));
        assert_eq!(parse("stat"), Ok(Command::Stat));
        assert_eq!(parse("LIST"), Ok(Command::List(None)));
        assert_eq!(parse("LIST 2"), Ok(Command::List(Some(2))));
        assert_eq!(parse("RETR 1"), Ok(Command::Retr(1)));
        assert_eq!(parse("DELE 1"), Ok(Command::Dele(1)));
        assert_eq!(parse("NOOP"), Ok(Command::Noop));
        assert_eq!(parse("RSET"), Ok(Command::Rset));
        assert_eq!(parse("QUIT"), Ok(Command::Quit));
        assert_eq!(
            parse("TOP 1 10"),
            Ok(Command::Top {
                message: 1,
                lines: 10
            })
        );
        assert_eq!(parse("UIDL"), Ok(Command::Uidl(None)));
        assert_eq!(parse("uidl 2"), Ok(Command::Uidl(Some(2))));
        assert_eq!(parse("CAPA"), Ok(Command::Capa));
        assert_eq!(parse("STLS"), Ok(Command::Stls));
        assert_eq!(
            parse("AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: Some("dGVzdAB0ZXN0AHRlc3Q=".into())
            })
        );
        assert_eq!(
            parse("AUTH"),
            Ok(Command::Auth {
                mechanism: None,
                initial_response: None
            })
        );
    }

    #[test]
    fn wrong_arguments_are_syntax_errors() {
        for line in [
            "RETR",
            "RETR x",
            "RETR -1",
            "RETR +1",
            "RETR 1 2",
            "LIST 1 2",
            "TOP 1",
            "TOP 1 x",
            "DELE 99999999999",
            "USER",
            "USER a b",
            "STAT x",
            "QUIT now",
            "PASS",
            "AUTH a b c",
        ] {
            assert!(
                matches!(parse(line), Err(ParseError::Syntax(_))),
                "{line} parsed as {:?}",
                parse(line)
            );
        }
        assert_eq!(
            parse(&format!("USER {}", "a".repeat(41))),
            Err(ParseError::Syntax("Argument too long"))
        );
        assert!(matches!(
            parse_command(b"USER \xff"),
            Err(ParseError::Syntax(_))
        ));
    }

    #[test]
    fn unknown_keywords() {
        for line in [
            "",
            " ",
            "APOP mrose c4c9334bac560ecc979e58001b3e22fb",
            "XTND",
            "RETRX 1",
        ] {
            assert_eq!(parse(line), Err(ParseError::Unknown), "{line}");
        }
    }
}
