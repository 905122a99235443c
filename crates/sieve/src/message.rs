//! The message as the tests see it: header fields (editable for editheader), decoded values,
//! addresses, MIME body parts and dates.

use std::cell::OnceCell;

use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};

pub(crate) struct Field {
    /// As written (case kept for the rebuilt header).
    pub name: String,
    /// Everything after the colon, folding kept, line ends as CRLF.
    pub raw: String,
}

impl Field {
    /// The value unfolded and trimmed (RFC 5228 2.7.2 compares without the folding).
    pub fn unfolded(&self) -> String {
        let unfolded = self.raw.replace("\r\n", "").replace('\n', "");
        unfolded.trim().to_string()
    }

    /// Unfolded, with RFC 2047 encoded words decoded.
    pub fn decoded(&self) -> String {
        let unfolded = self.unfolded();
        if !unfolded.contains("=?") {
            return unfolded;
        }
        let synthetic = format!("Subject: {unfolded}\r\n\r\n");
        MessageParser::new()
            .parse_headers(synthetic.as_bytes())
            .and_then(|m| m.subject().map(str::to_string))
            .unwrap_or(unfolded)
    }

    /// The addresses in an address header ("a@b.c"), in order, groups flattened.
    pub fn addresses(&self) -> Vec<String> {
        parse_addresses(&self.unfolded())
    }
}

pub(crate) fn parse_addresses(value: &str) -> Vec<String> {
    let synthetic = format!("To: {value}\r\n\r\n");
    let Some(parsed) = MessageParser::new().parse_headers(synthetic.as_bytes()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for header in parsed.headers() {
        if let HeaderValue::Address(address) = header.value() {
            for addr in address.iter() {
                if let Some(a) = &addr.address {
                    out.push(a.trim().to_string());
                }
            }
        }
    }
    out
}

pub(crate) struct Message<'a> {
    pub fields: Vec<Field>,
    pub body: &'a [u8],
    /// Size of the original message in octets, for the size test.
    pub size: usize,
    pub edited: bool,
    whole: &'a [u8],
    parsed: OnceCell<Option<mail_parser::Message<'a>>>,
}

impl<'a> Message<'a> {
    pub fn new(bytes: &'a [u8]) -> Message<'a> {
        let (header, body) = split_header(bytes);
        Message {
            fields: parse_fields(header),
            body,
            size: bytes.len(),
            edited: false,
            whole: bytes,
            parsed: OnceCell::new(),
        }
    }

    pub fn fields_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Field> + 's {
        self.fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
    }

    /// The header section as CRLF text ending with the empty line (after editheader).
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for field in &self.fields {
            out.extend_from_slice(field.name.as_bytes());
            out.push(b':');
            out.extend_from_slice(field.raw.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Body texts for the body test: `None` = :raw (the undecoded body); `Some(types)` = the
    /// decoded parts whose Content-Type matches one of `types` ("" matches all, "text" all
    /// text/*, "text/html" exactly).
    pub fn body_texts(&self, types: Option<&[String]>) -> Vec<String> {
        let Some(types) = types else {
            return vec![String::from_utf8_lossy(self.body).into_owned()];
        };
        let parsed = self
            .parsed
            .get_or_init(|| MessageParser::new().parse(self.whole));
        let Some(parsed) = parsed else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for part in &parsed.parts {
            let (ctype, subtype) = match part.content_type() {
                Some(ct) => (
                    ct.ctype().to_ascii_lowercase(),
                    ct.subtype().unwrap_or("").to_ascii_lowercase(),
                ),
                None => ("text".to_string(), "plain".to_string()),
            };
            let wanted = types.iter().any(|t| {
                let t = t.to_ascii_lowercase();
                match t.split_once('/') {
                    None => t.is_empty() || t == ctype,
                    Some((a, b)) => a == ctype && b == subtype,
                }
            });
            if !wanted {
                continue;
            }
            match &part.body {
                PartType::Text(text) | PartType::Html(text) => out.push(text.to_string()),
                PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                    out.push(String::from_utf8_lossy(bytes).into_owned());
                }
                PartType::Message(_) | PartType::Multipart(_) => {}
            }
        }
        out
    }
}

fn split_header(bytes: &[u8]) -> (&[u8], &[u8]) {
    let mut pos = 0;
    // A message starting with an empty line has no header at all.
    loop {
        let end = bytes[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| pos + i);
        let line = &bytes[pos..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let next = (end + 1).min(bytes.len());
        if line.is_empty() {
            return (&bytes[..pos], &bytes[next..]);
        }
        if next >= bytes.len() {
            return (bytes, &[]);
        }
        pos = next;
    }
}

fn parse_fields(header: &[u8]) -> Vec<Field> {
    let text = String::from_utf8_lossy(header);
    let mut fields: Vec<Field> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.raw.push_str("\r\n");
                last.raw.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim_end();
            if super::validate::valid_field_name(name) {
                fields.push(Field {
                    name: name.to_string(),
                    raw: value.to_string(),
                });
            }
        }
    }
    fields
}

/// A bare mailbox address (local@domain), as redirect and vacation's :addresses accept.
pub(crate) fn valid_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && (local.starts_with('"') && local.ends_with('"') && local.len() >= 2
            || local.split('.').all(|atom| {
                !atom.is_empty()
                    && atom
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
            }));
    let domain_ok = !domain.is_empty()
        && domain.len() <= 255
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    local_ok && domain_ok
}

/// The address a redirect goes to: a bare address, or one in angle brackets with an optional
/// display name (Pigeonhole accepts both).
pub(crate) fn redirect_address(value: &str) -> Option<String> {
    let value = value.trim();
    if valid_address(value) {
        return Some(value.to_string());
    }
    if !value.contains('<') {
        return None;
    }
    first_address(value)
}

/// The first address in a From-style value ("Name <a@b.c>" or "a@b.c").
pub(crate) fn first_address(value: &str) -> Option<String> {
    parse_addresses(value)
        .into_iter()
        .next()
        .filter(|a| valid_address(a))
}

/// Splits an address into the part an address test compares.
pub(crate) fn address_part(address: &str, part: &str) -> Option<String> {
    let (local, domain) = match address.rsplit_once('@') {
        Some((local, domain)) => (local, domain),
        None => (address, ""),
    };
    match part {
        "localpart" => Some(local.to_string()),
        "domain" => Some(domain.to_string()),
        "user" => Some(
            local
                .split_once('+')
                .map_or(local, |(user, _)| user)
                .to_string(),
        ),
        "detail" => local.split_once('+').map(|(_, detail)| detail.to_string()),
        _ => Some(address.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_and_decoding() {
        let message = Message::new(
            b"Subject: =?UTF-8?Q?caf=C3=A9?=\n  au lait\nTo: A <a@x.org>, b@y.org\n\nbody\n",
        );
        assert_eq!(message.fields.len(), 2);
        assert_eq!(message.fields[0].decoded(), "caf\u{e9} au lait");
        assert_eq!(message.fields[1].addresses(), ["a@x.org", "b@y.org"]);
        assert_eq!(message.body, b"body\n");
        assert_eq!(
            message.header_bytes(),
            b"Subject: =?UTF-8?Q?caf=C3=A9?=\r\n  au lait\r\nTo: A <a@x.org>, b@y.org\r\n\r\n"
        );
    }

    #[test]
    fn addresses() {
        assert!(valid_address("a.b+c@example.com"));
        assert!(!valid_address("a b@example.com"));
        assert!(!valid_address("ab@"));
        assert_eq!(address_part("u+d@x", "user").unwrap(), "u");
        assert_eq!(address_part("u+d@x", "detail").unwrap(), "d");
        assert!(address_part("u@x", "detail").is_none());
        assert_eq!(first_address("Me <me@x.org>").unwrap(), "me@x.org");
    }

    #[test]
    fn body_parts() {
        let message = Message::new(
            b"Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nplain words\n--b\nContent-Type: text/html\n\n<p>html words</p>\n--b--\n",
        );
        let text = message.body_texts(Some(&["text/plain".to_string()]));
        assert_eq!(text.len(), 1);
        assert!(text[0].contains("plain words"));
        assert_eq!(message.body_texts(Some(&["text".to_string()])).len(), 2);
    }
}
