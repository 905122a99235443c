//! Tokens of RFC 5228 section 8.1.

use crate::Diagnostic;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    Identifier(String),
    Tag(String),
    Number(u64),
    /// Quoted string or `text:` block, escapes and dot-stuffing already removed.
    String(String),
    Semicolon,
    Comma,
    LeftBracket,
    RightBracket,
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
}

#[derive(Clone, Debug)]
pub(crate) struct Spanned {
    pub token: Token,
    pub line: usize,
}

fn error(line: usize, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        line,
        message: message.into(),
    }
}

pub(crate) fn tokenize(source: &str) -> Result<Vec<Spanned>, Diagnostic> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    while pos < bytes.len() {
        let c = bytes[pos];
        let start_line = line;
        match c {
            b'\n' => {
                line += 1;
                pos += 1;
            }
            b' ' | b'\t' | b'\r' => pos += 1,
            b'#' => {
                while pos < bytes.len() && bytes[pos] != b'\n' {
                    pos += 1;
                }
            }
            b'/' if bytes.get(pos + 1) == Some(&b'*') => {
                pos += 2;
                loop {
                    if pos + 1 >= bytes.len() {
                        return Err(error(start_line, "unterminated comment"));
                    }
                    if bytes[pos] == b'*' && bytes[pos + 1] == b'/' {
                        pos += 2;
                        break;
                    }
                    if bytes[pos] == b'\n' {
                        line += 1;
                    }
                    pos += 1;
                }
            }
            b';' | b',' | b'[' | b']' | b'(' | b')' | b'{' | b'}' => {
                let token = match c {
                    b';' => Token::Semicolon,
                    b',' => Token::Comma,
                    b'[' => Token::LeftBracket,
                    b']' => Token::RightBracket,
                    b'(' => Token::LeftParen,
                    b')' => Token::RightParen,
                    b'{' => Token::LeftBrace,
                    _ => Token::RightBrace,
                };
                tokens.push(Spanned { token, line });
                pos += 1;
            }
            b'"' => {
                pos += 1;
                let mut value = Vec::new();
                loop {
                    let Some(&b) = bytes.get(pos) else {
                        return Err(error(start_line, "unterminated string"));
                    };
                    match b {
                        b'"' => {
                            pos += 1;
                            break;
                        }
                        b'\\' => {
                            // RFC 5228 2.4.2: a backslash quotes the next character; unknown
                            // escapes just drop the backslash.
                            let Some(&next) = bytes.get(pos + 1) else {
                                return Err(error(start_line, "unterminated string"));
                            };
                            if next == b'\n' {
                                line += 1;
                            }
                            value.push(next);
                            pos += 2;
                        }
                        b'\n' => {
                            line += 1;
                            value.push(b);
                            pos += 1;
                        }
                        _ => {
                            value.push(b);
                            pos += 1;
                        }
                    }
                }
                let value = String::from_utf8(value)
                    .map_err(|_| error(start_line, "string is not valid UTF-8"))?;
                tokens.push(Spanned {
                    token: Token::String(value),
                    line: start_line,
                });
            }
            b'0'..=b'9' => {
                let mut value: u64 = 0;
                while let Some(d @ b'0'..=b'9') = bytes.get(pos) {
                    value = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(d - b'0')))
                        .ok_or_else(|| error(line, "number is too large"))?;
                    pos += 1;
                }
                let multiplier: u64 = match bytes.get(pos) {
                    Some(b'K' | b'k') => 1 << 10,
                    Some(b'M' | b'm') => 1 << 20,
                    Some(b'G' | b'g') => 1 << 30,
                    _ => 1,
                };
                if multiplier > 1 {
                    pos += 1;
                }
                let value = value
                    .checked_mul(multiplier)
                    .ok_or_else(|| error(line, "number is too large"))?;
                tokens.push(Spanned {
                    token: Token::Number(value),
                    line,
                });
            }
            b':' => {
                pos += 1;
                let start = pos;
                while pos < bytes.len()
                    && (bytes[pos].is_ascii_alphanumeric() || bytes[pos] == b'_')
                {
                    pos += 1;
                }
                if start == pos || bytes[start].is_ascii_digit() {
                    return Err(error(line, "expected a tag name after ':'"));
                }
                tokens.push(Spanned {
                    token: Token::Tag(source[start..pos].to_ascii_lowercase()),
                    line,
                });
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = pos;
                while pos < bytes.len()
                    && (bytes[pos].is_ascii_alphanumeric() || bytes[pos] == b'_')
                {
                    pos += 1;
                }
                let word = source[start..pos].to_ascii_lowercase();
                if word == "text" && bytes.get(pos) == Some(&b':') {
                    pos += 1;
                    let (value, end, lines) = multi_line(source, pos, line)?;
                    tokens.push(Spanned {
                        token: Token::String(value),
                        line,
                    });
                    pos = end;
                    line += lines;
                } else {
                    tokens.push(Spanned {
                        token: Token::Identifier(word),
                        line,
                    });
                }
            }
            _ => {
                let shown = source[pos..].chars().next().unwrap_or('?');
                return Err(error(line, format!("unexpected character '{shown}'")));
            }
        }
    }
    Ok(tokens)
}

/// `text:` up to a line holding only "."; returns the text, the position after it and the
/// number of lines consumed.
fn multi_line(
    source: &str,
    mut pos: usize,
    line: usize,
) -> Result<(String, usize, usize), Diagnostic> {
    let bytes = source.as_bytes();
    // Rest of the `text:` line: only white space or a hash comment.
    while pos < bytes.len() && (bytes[pos] == b' ' || bytes[pos] == b'\t') {
        pos += 1;
    }
    if bytes.get(pos) == Some(&b'#') {
        while pos < bytes.len() && bytes[pos] != b'\n' {
            pos += 1;
        }
    }
    if bytes.get(pos) == Some(&b'\r') {
        pos += 1;
    }
    if bytes.get(pos) != Some(&b'\n') {
        return Err(error(line, "expected a line break after 'text:'"));
    }
    pos += 1;
    let mut lines = 1;
    let mut value = String::new();
    loop {
        if pos >= bytes.len() {
            return Err(error(
                line,
                "unterminated multi-line string (missing '.' line)",
            ));
        }
        let end = source[pos..].find('\n').map_or(bytes.len(), |i| pos + i);
        let mut text = &source[pos..end];
        text = text.strip_suffix('\r').unwrap_or(text);
        let next = (end + 1).min(bytes.len());
        lines += 1;
        if text == "." {
            return Ok((value, next, lines));
        }
        let text = text
            .strip_prefix('.')
            .filter(|t| t.starts_with('.'))
            .unwrap_or(text);
        value.push_str(text);
        value.push_str("\r\n");
        pos = next;
        if end == bytes.len() {
            return Err(error(
                line,
                "unterminated multi-line string (missing '.' line)",
            ));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<Token> {
        tokenize(source)
            .unwrap()
            .into_iter()
            .map(|t| t.token)
            .collect()
    }

    #[test]
    fn strings_numbers_tags() {
        assert_eq!(
            kinds(r#"size :over 10K; "a\"b\\c\d""#),
            vec![
                Token::Identifier("size".into()),
                Token::Tag("over".into()),
                Token::Number(10240),
                Token::Semicolon,
                Token::String("a\"b\\cd".into()),
            ]
        );
    }

    #[test]
    fn multi_line_dot_stuffing_and_comments() {
        let tokens = tokenize("# c\n/* x\n y */ text: # note\nline\n..dot\n.\n;").unwrap();
        assert_eq!(tokens[0].token, Token::String("line\r\n.dot\r\n".into()));
        assert_eq!(tokens[0].line, 3);
        assert_eq!(tokens[1].line, 7);
    }

    #[test]
    fn errors_have_lines() {
        assert_eq!(tokenize("\n\"abc").unwrap_err().line, 2);
        assert!(tokenize("99999999999999999999").is_err());
        assert!(tokenize("99999999999G").is_err());
        assert!(tokenize("text:\nno end").is_err());
    }
}
