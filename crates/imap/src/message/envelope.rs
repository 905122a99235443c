//! ENVELOPE (RFC 3501 7.4.2) the way Dovecot writes it: raw header values, names and
//! subjects with their whitespace tidied, lenient address parsing with Dovecot's
//! `MISSING_MAILBOX`/`MISSING_DOMAIN` fillers.

use super::{Header, fields, no_nul, quoted_string, skip_comment, trim_start, unfold};
use crate::wire::nstring;

/// Dovecot's `imap_append_string_for_humans` (subjects and address names): whitespace runs
/// become one space, line breaks go, the ends are trimmed, NUL becomes 0x80.
fn for_humans(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    let mut last_space = true;
    for &byte in src {
        match byte {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => {
                if !last_space {
                    out.push(b' ');
                }
                last_space = true;
            }
            0 => {
                out.push(0x80);
                last_space = false;
            }
            _ => {
                out.push(byte);
                last_space = false;
            }
        }
    }
    if last_space && out.last() == Some(&b' ') {
        out.pop();
    }
    out
}

pub(super) fn write_envelope(raw: &[u8], header: &Header, out: &mut Vec<u8>) {
    // Dovecot keeps the last occurrence of each field.
    let last = |name: &str| {
        fields(raw, header)
            .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
            .last()
    };
    let text = |out: &mut Vec<u8>, name: &str| {
        let value = last(name).map(|f| no_nul(trim_start(&unfold(f.value)).to_vec()));
        nstring(out, value.as_deref());
    };
    let addresses = |name: &str| -> Option<Vec<Address>> {
        let field = last(name)?;
        let list = parse_addresses(&unfold(field.value));
        (!list.is_empty()).then_some(list)
    };
    out.push(b'(');
    text(out, "date");
    out.push(b' ');
    let subject = last("subject").map(|f| for_humans(f.value));
    nstring(out, subject.as_deref());
    let from = addresses("from");
    for (name, default) in [
        ("from", None),
        ("sender", from.as_ref()),
        ("reply-to", from.as_ref()),
        ("to", None),
        ("cc", None),
        ("bcc", None),
    ] {
        out.push(b' ');
        let list = if name == "from" {
            from.clone()
        } else {
            addresses(name).or_else(|| default.cloned())
        };
        write_addresses(out, list.as_deref());
    }
    out.push(b' ');
    text(out, "in-reply-to");
    out.push(b' ');
    text(out, "message-id");
    out.push(b')');
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Address {
    pub(super) name: Option<Vec<u8>>,
    route: Option<Vec<u8>>,
    pub(super) mailbox: Option<Vec<u8>>,
    pub(super) host: Option<Vec<u8>>,
}

fn write_addresses(out: &mut Vec<u8>, list: Option<&[Address]>) {
    let Some(list) = list else {
        out.extend_from_slice(b"NIL");
        return;
    };
    out.push(b'(');
    for address in list {
        out.push(b'(');
        nstring(out, address.name.as_deref().map(for_humans).as_deref());
        out.push(b' ');
        nstring(out, address.route.as_deref());
        out.push(b' ');
        nstring(out, address.mailbox.as_deref());
        out.push(b' ');
        nstring(out, address.host.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

/// `(NIL NIL "MISSING_MAILBOX" host)`.
fn missing(host: &[u8]) -> Address {
    Address {
        name: None,
        route: None,
        mailbox: Some(b"MISSING_MAILBOX".to_vec()),
        host: Some(host.to_vec()),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum AddrToken {
    Word(Vec<u8>),
    Quoted(Vec<u8>),
    Special(u8),
    Comment(Vec<u8>),
    /// A quoted string without its closing quote.
    Broken,
}

fn address_tokens(value: &[u8]) -> Vec<AddrToken> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&byte) = value.get(i) {
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                let (next, text) = skip_comment(value, i);
                tokens.push(AddrToken::Comment(text));
                i = next;
            }
            b'"' => {
                let (text, next) = quoted_string(value, i);
                let closed = next > i + 1 && value.get(next - 1) == Some(&b'"');
                tokens.push(if closed {
                    AddrToken::Quoted(text)
                } else {
                    AddrToken::Broken
                });
                i = next;
            }
            b'[' => {
                // A domain literal, kept whole.
                let start = i;
                while let Some(&b) = value.get(i) {
                    i += 1;
                    if b == b']' {
                        break;
                    }
                }
                tokens.push(AddrToken::Word(
                    value.get(start..i).unwrap_or_default().to_vec(),
                ));
            }
            b'<' | b'>' | b'@' | b',' | b':' | b';' => {
                tokens.push(AddrToken::Special(byte));
                i += 1;
            }
            _ => {
                let start = i;
                while let Some(&b) = value.get(i) {
                    if b.is_ascii_whitespace()
                        || matches!(
                            b,
                            b'(' | b'"' | b'[' | b'<' | b'>' | b'@' | b',' | b':' | b';'
                        )
                    {
                        break;
                    }
                    i += 1;
                }
                tokens.push(AddrToken::Word(
                    value.get(start..i).unwrap_or_default().to_vec(),
                ));
            }
        }
    }
    tokens
}

/// `mailbox@host` of each address in a header value, lower-cased, comments and display
/// names left out (SEARCH FROM/TO/CC match these as well as the raw text, as Dovecot does).
pub(super) fn address_specs(value: &[u8]) -> Vec<String> {
    parse_addresses(&unfold(value))
        .into_iter()
        .filter_map(|address| {
            let mailbox = address.mailbox?;
            let host = address.host?;
            if mailbox == b"MISSING_MAILBOX" || host == b"MISSING_DOMAIN" {
                return None;
            }
            let mut spec = String::from_utf8_lossy(&mailbox).into_owned();
            spec.push('@');
            spec.push_str(&String::from_utf8_lossy(&host));
            Some(spec.to_lowercase())
        })
        .collect()
}

/// The first address in a header value as ENVELOPE lists it: its display name (as written,
/// encoded words not decoded), mailbox and host; a group's start has its name as the
/// mailbox and no host (SORT FROM/TO/CC, DISPLAYFROM).
pub(super) fn first_address(value: &[u8]) -> Option<Address> {
    parse_addresses(&unfold(value))
        .into_iter()
        .next()
        .filter(|address| address.mailbox.is_some())
}

/// An RFC 5322 address list, leniently, into ENVELOPE addresses (groups as start and end
/// markers). Names are kept as written (encoded words not decoded), as Dovecot does.
fn parse_addresses(value: &[u8]) -> Vec<Address> {
    let tokens = address_tokens(value);
    let mut parser = AddressParser {
        tokens: &tokens,
        pos: 0,
        out: Vec::new(),
        domain_comment: None,
    };
    parser.list(false);
    parser.out
}

struct AddressParser<'a> {
    tokens: &'a [AddrToken],
    pos: usize,
    out: Vec<Address>,
    /// The last comment inside a domain: `a@b (Name)` uses it as the name.
    domain_comment: Option<Vec<u8>>,
}

impl AddressParser<'_> {
    fn peek(&self) -> Option<&AddrToken> {
        self.tokens.get(self.pos)
    }

    fn is_special(&self, special: u8) -> bool {
        self.peek() == Some(&AddrToken::Special(special))
    }

    /// Mailboxes (and groups, at the top level) until the end or, in a group, `;`.
    fn list(&mut self, in_group: bool) {
        let mut after_comma = false;
        while let Some(token) = self.peek() {
            match token {
                AddrToken::Special(b',') => {
                    if after_comma {
                        // An empty element between commas (Dovecot reports it).
                        self.out.push(missing(b"MISSING_DOMAIN"));
                    }
                    after_comma = true;
                    self.pos += 1;
                    continue;
                }
                AddrToken::Special(b';') if in_group => return,
                // Dovecot gives up at a syntax error, keeping what it has.
                AddrToken::Special(b';' | b'>' | b':') => return,
                _ => self.mailbox_or_group(in_group),
            }
            after_comma = false;
        }
    }

    /// Dovecot stops at anything but a separator after an address, keeping what it has.
    fn expect_separator(&mut self) {
        while let Some(AddrToken::Comment(_)) = self.peek() {
            self.pos += 1;
        }
        if !matches!(self.peek(), None | Some(AddrToken::Special(b',' | b';'))) {
            self.pos = self.tokens.len();
        }
    }

    fn mailbox_or_group(&mut self, in_group: bool) {
        let start = self.pos;
        let mut phrase: Vec<Vec<u8>> = Vec::new();
        let mut comment: Option<Vec<u8>> = None;
        while let Some(token) = self.peek() {
            match token {
                AddrToken::Word(w) | AddrToken::Quoted(w) => phrase.push(w.clone()),
                AddrToken::Comment(c) => comment = Some(c.clone()),
                AddrToken::Special(_) => break,
                AddrToken::Broken => {
                    // An unterminated quote: Dovecot gives one empty address and stops.
                    self.out.push(missing(b"MISSING_DOMAIN"));
                    self.pos = self.tokens.len();
                    return;
                }
            }
            self.pos += 1;
        }
        let joined_name = |words: &[Vec<u8>]| -> Option<Vec<u8>> {
            (!words.is_empty()).then(|| words.join(&b' '))
        };
        match self.peek() {
            Some(AddrToken::Special(b':')) if !in_group => {
                self.pos += 1;
                self.out.push(Address {
                    mailbox: Some(joined_name(&phrase).unwrap_or_default()),
                    ..Address::default()
                });
                self.list(true);
                if self.is_special(b';') {
                    self.pos += 1;
                }
                self.out.push(Address::default());
            }
            Some(AddrToken::Special(b'<')) => {
                self.pos += 1;
                let mut address = self.angle_addr();
                address.name = joined_name(&phrase).or(comment);
                self.out.push(address);
                self.expect_separator();
            }
            Some(AddrToken::Special(b'@')) => {
                self.pos += 1;
                self.domain_comment = None;
                let host = self.domain();
                let mailbox = self.local_part(start);
                let comment = self.domain_comment.take().or(comment);
                self.out.push(Address {
                    name: comment,
                    route: None,
                    mailbox: Some(mailbox),
                    host: Some(host),
                });
                self.expect_separator();
            }
            _ => match phrase.len() {
                0 => {}
                // One word is a local part without a domain; more are a name (Dovecot).
                1 => self.out.push(Address {
                    name: comment,
                    route: None,
                    mailbox: Some(self.local_part(start)),
                    host: Some(b"MISSING_DOMAIN".to_vec()),
                }),
                _ => self.out.push(Address {
                    name: joined_name(&phrase),
                    route: None,
                    mailbox: Some(b"MISSING_MAILBOX".to_vec()),
                    host: Some(b"MISSING_DOMAIN".to_vec()),
                }),
            },
        }
    }

    /// The local part as written between `start` and the `@`: words joined without spaces;
    /// `MISSING_MAILBOX` when there are none (as Dovecot).
    fn local_part(&self, start: usize) -> Vec<u8> {
        let mut local = Vec::new();
        for token in self.tokens.get(start..).unwrap_or_default() {
            match token {
                AddrToken::Word(w) | AddrToken::Quoted(w) => local.extend_from_slice(w),
                AddrToken::Comment(_) | AddrToken::Broken => {}
                AddrToken::Special(_) => break,
            }
        }
        if local.is_empty() {
            b"MISSING_MAILBOX".to_vec()
        } else {
            local
        }
    }

    /// Domain words until a special; `MISSING_DOMAIN` when there are none (as Dovecot).
    fn domain(&mut self) -> Vec<u8> {
        let mut domain = Vec::new();
        while let Some(token) = self.peek() {
            match token {
                AddrToken::Word(w) | AddrToken::Quoted(w) => domain.extend_from_slice(w),
                AddrToken::Comment(c) => self.domain_comment = Some(c.clone()),
                AddrToken::Broken => {}
                AddrToken::Special(_) => break,
            }
            self.pos += 1;
        }
        if domain.is_empty() {
            b"MISSING_DOMAIN".to_vec()
        } else {
            domain
        }
    }

    /// After `<`: `[@route,@route:]local@domain>`.
    fn angle_addr(&mut self) -> Address {
        let mut route = Vec::new();
        if self.is_special(b'@') {
            // Obsolete source route: everything up to the colon.
            while let Some(token) = self.peek() {
                match token {
                    AddrToken::Special(b':') => {
                        self.pos += 1;
                        break;
                    }
                    AddrToken::Special(b'>') => break,
                    AddrToken::Special(s) => route.push(*s),
                    AddrToken::Word(w) | AddrToken::Quoted(w) => route.extend_from_slice(w),
                    AddrToken::Comment(_) | AddrToken::Broken => {}
                }
                self.pos += 1;
            }
        }
        let start = self.pos;
        while let Some(token) = self.peek() {
            match token {
                AddrToken::Special(_) => break,
                _ => self.pos += 1,
            }
        }
        let mailbox = self.local_part(start);
        let host = if self.is_special(b'@') {
            self.pos += 1;
            Some(self.domain())
        } else {
            None
        };
        let mut host = host.unwrap_or_else(|| b"MISSING_DOMAIN".to_vec());
        if self.is_special(b'>') {
            self.pos += 1;
        } else {
            host = b"SYNTAX_ERROR".to_vec(); // what Dovecot reports for a missing `>`
        }
        Address {
            name: None,
            route: (!route.is_empty()).then_some(route),
            mailbox: Some(mailbox),
            host: Some(host),
        }
    }
}
