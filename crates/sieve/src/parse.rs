//! The generic grammar of RFC 5228 section 8.2: commands with arguments, tests and blocks.
//! What each command means is `validate.rs`'s business.

use crate::Diagnostic;
use crate::lexer::{Spanned, Token, tokenize};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Argument {
    Tag(String),
    Number(u64),
    String(String),
    StringList(Vec<String>),
}

#[derive(Clone, Debug)]
pub(crate) struct Test {
    pub name: String,
    pub line: usize,
    pub arguments: Vec<Argument>,
    pub tests: Vec<Test>,
    /// Whether the tests were written as a parenthesised list.
    pub test_list: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Command {
    pub name: String,
    pub line: usize,
    pub arguments: Vec<Argument>,
    pub tests: Vec<Test>,
    pub test_list: bool,
    pub block: Option<Vec<Command>>,
}

pub(crate) fn parse(source: &str, max_nesting: usize) -> Result<Vec<Command>, Diagnostic> {
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        max_nesting,
    };
    let commands = parser.commands(0)?;
    if let Some(extra) = parser.tokens.get(parser.pos) {
        return Err(err(extra.line, "unexpected '}'"));
    }
    Ok(commands)
}

fn err(line: usize, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        line,
        message: message.into(),
    }
}

struct Parser {
    tokens: Vec<Spanned>,
    pos: usize,
    max_nesting: usize,
}

fn describe(token: &Token) -> String {
    match token {
        Token::Identifier(name) => format!("identifier '{name}'"),
        Token::Tag(name) => format!("tag ':{name}'"),
        Token::Number(n) => format!("number {n}"),
        Token::String(_) => "string".to_string(),
        Token::Semicolon => "';'".to_string(),
        Token::Comma => "','".to_string(),
        Token::LeftBracket => "'['".to_string(),
        Token::RightBracket => "']'".to_string(),
        Token::LeftParen => "'('".to_string(),
        Token::RightParen => "')'".to_string(),
        Token::LeftBrace => "'{'".to_string(),
        Token::RightBrace => "'}'".to_string(),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|t| &t.token)
    }

    fn line(&self) -> usize {
        self.tokens
            .get(self.pos)
            .or_else(|| self.tokens.last())
            .map_or(1, |t| t.line)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).map(|t| t.token.clone());
        if token.is_some() {
            self.pos += 1;
        }
        token
    }

    fn unexpected(&self, expected: &str) -> Diagnostic {
        match self.peek() {
            Some(token) => err(
                self.line(),
                format!(
                    "syntax error: expected {expected}, found {}",
                    describe(token)
                ),
            ),
            None => err(
                self.line(),
                format!("syntax error: expected {expected}, found end of script"),
            ),
        }
    }

    fn commands(&mut self, depth: usize) -> Result<Vec<Command>, Diagnostic> {
        let mut commands = Vec::new();
        while let Some(token) = self.peek() {
            match token {
                Token::Identifier(_) => commands.push(self.command(depth)?),
                Token::RightBrace if depth > 0 => break,
                _ => return Err(self.unexpected("a command")),
            }
        }
        Ok(commands)
    }

    fn command(&mut self, depth: usize) -> Result<Command, Diagnostic> {
        let line = self.line();
        let Some(Token::Identifier(name)) = self.next() else {
            return Err(self.unexpected("a command"));
        };
        let arguments = self.arguments()?;
        let (tests, test_list) = self.tests(depth)?;
        let block = match self.peek() {
            Some(Token::Semicolon) => {
                self.pos += 1;
                None
            }
            Some(Token::LeftBrace) => {
                if depth + 1 > self.max_nesting {
                    return Err(err(self.line(), "blocks are nested too deeply"));
                }
                self.pos += 1;
                let block = self.commands(depth + 1)?;
                if self.next() != Some(Token::RightBrace) {
                    return Err(err(line, "syntax error: missing '}' to close the block"));
                }
                Some(block)
            }
            _ => return Err(self.unexpected("';' or a block")),
        };
        Ok(Command {
            name,
            line,
            arguments,
            tests,
            test_list,
            block,
        })
    }

    fn arguments(&mut self) -> Result<Vec<Argument>, Diagnostic> {
        let mut arguments = Vec::new();
        loop {
            let argument = match self.peek() {
                Some(Token::Tag(tag)) => Argument::Tag(tag.clone()),
                Some(Token::Number(n)) => Argument::Number(*n),
                Some(Token::String(s)) => Argument::String(s.clone()),
                Some(Token::LeftBracket) => {
                    self.pos += 1;
                    let mut list = Vec::new();
                    loop {
                        match self.next() {
                            Some(Token::String(s)) => list.push(s),
                            _ => {
                                self.pos -= 1;
                                return Err(self.unexpected("a string in the string list"));
                            }
                        }
                        match self.next() {
                            Some(Token::Comma) => continue,
                            Some(Token::RightBracket) => break,
                            _ => {
                                self.pos -= 1;
                                return Err(self.unexpected("',' or ']'"));
                            }
                        }
                    }
                    arguments.push(Argument::StringList(list));
                    continue;
                }
                _ => return Ok(arguments),
            };
            self.pos += 1;
            arguments.push(argument);
        }
    }

    fn tests(&mut self, depth: usize) -> Result<(Vec<Test>, bool), Diagnostic> {
        match self.peek() {
            Some(Token::Identifier(_)) => Ok((vec![self.test(depth + 1)?], false)),
            Some(Token::LeftParen) => {
                self.pos += 1;
                let mut tests = Vec::new();
                loop {
                    tests.push(self.test(depth + 1)?);
                    match self.next() {
                        Some(Token::Comma) => continue,
                        Some(Token::RightParen) => break,
                        _ => {
                            self.pos = self.pos.saturating_sub(1);
                            return Err(self.unexpected("',' or ')'"));
                        }
                    }
                }
                Ok((tests, true))
            }
            _ => Ok((Vec::new(), false)),
        }
    }

    fn test(&mut self, depth: usize) -> Result<Test, Diagnostic> {
        if depth > self.max_nesting {
            return Err(err(self.line(), "tests are nested too deeply"));
        }
        let line = self.line();
        let name = match self.next() {
            Some(Token::Identifier(name)) => name,
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return Err(self.unexpected("a test"));
            }
        };
        let arguments = self.arguments()?;
        let (tests, test_list) = self.tests(depth)?;
        Ok(Test {
            name,
            line,
            arguments,
            tests,
            test_list,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nested_structure() {
        let commands = parse(
            "require [\"fileinto\"];\nif anyof (header :is \"a\" \"b\", not exists \"c\") {\n fileinto \"x\";\n} else { stop; }",
            32,
        )
        .unwrap();
        assert_eq!(commands.len(), 3);
        assert_eq!(commands[1].name, "if");
        assert_eq!(commands[1].tests[0].tests.len(), 2);
        assert!(commands[1].tests[0].test_list);
        assert_eq!(commands[1].block.as_ref().unwrap()[0].line, 3);
        assert_eq!(commands[2].name, "else");
    }

    #[test]
    fn syntax_errors() {
        assert!(parse("keep", 32).is_err());
        assert!(parse("if true { keep;", 32).is_err());
        assert!(parse("}", 32).is_err());
        assert!(parse("x [\"a\" \"b\"];", 32).is_err());
        assert!(parse("if not not not true { keep; }", 2).is_err());
    }
}
