//! What submission (587/465) adds to a session: SASL PLAIN and LOGIN decoding (RFC 4616,
//! the LOGIN draft), DSN parameters (RFC 3461), and the header facts the sender rules and
//! the added `Message-ID:`/`Date:` need.

use base64::Engine;
use mailstead_queue::{Notify, Ret};

use crate::cmd::Reply;

/// What a SASL continuation line said.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SaslResponse {
    Data(Vec<u8>),
    /// `*`: the client gave up (RFC 4954 §4).
    Cancelled,
}

/// Decodes one base64 SASL response (`=` is the empty response).
pub(crate) fn decode_response(text: &str) -> Result<SaslResponse, Reply> {
    let text = text.trim();
    if text == "*" {
        return Ok(SaslResponse::Cancelled);
    }
    if text == "=" {
        return Ok(SaslResponse::Data(Vec::new()));
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map(SaslResponse::Data)
        .map_err(|_| Reply::new(501, "5.5.2 Cannot decode response"))
}

/// RFC 3461 §4.1: `NOTIFY=NEVER` or a comma list of SUCCESS, FAILURE, DELAY.
pub(crate) fn parse_notify(value: &str) -> Option<Notify> {
    let mut notify = Notify::default();
    for word in value.split(',') {
        match word.to_ascii_uppercase().as_str() {
            "NEVER" => notify.never = true,
            "SUCCESS" => notify.success = true,
            "FAILURE" => notify.failure = true,
            "DELAY" => notify.delay = true,
            _ => return None,
        }
    }
    // NEVER stands alone.
    if notify.never && (notify.success || notify.failure || notify.delay) {
        return None;
    }
    Some(notify)
}

pub(crate) fn parse_ret(value: &str) -> Option<Ret> {
    match value.to_ascii_uppercase().as_str() {
        "FULL" => Some(Ret::Full),
        "HDRS" => Some(Ret::Hdrs),
        _ => None,
    }
}

/// Decodes xtext (RFC 3461 §4): `+XX` is a hex-coded byte; the result must be printable
/// ASCII (it ends up in reports).
pub(crate) fn decode_xtext(value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut bytes = value.bytes();
    while let Some(byte) = bytes.next() {
        let decoded = if byte == b'+' {
            let high = char::from(bytes.next()?).to_digit(16)?;
            let low = char::from(bytes.next()?).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()?
        } else {
            byte
        };
        if !(0x20..0x7f).contains(&decoded) {
            return None;
        }
        out.push(char::from(decoded));
    }
    (out.len() <= 500).then_some(out)
}

/// ORCPT: `addr-type;xtext`, kept as `rfc822;address`.
pub(crate) fn parse_orcpt(value: &str) -> Option<String> {
    let (kind, address) = value.split_once(';')?;
    let address = decode_xtext(address)?;
    Some(format!("{};{address}", kind.to_ascii_lowercase()))
}

/// What the header of a submitted message says about itself.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct HeaderFacts {
    /// The addresses in `From:` (RFC 5322 allows several).
    pub(crate) from: Vec<String>,
    pub(crate) has_message_id: bool,
    pub(crate) has_date: bool,
}

/// Reads the header block (as stored, LF line endings) with mail-parser.
pub(crate) fn header_facts(header: &[u8]) -> HeaderFacts {
    let Some(message) = mail_parser::MessageParser::new().parse_headers(header) else {
        return HeaderFacts::default();
    };
    let from = message
        .from()
        .map(|from| {
            from.iter()
                .filter_map(|addr| addr.address())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    HeaderFacts {
        from,
        has_message_id: message.message_id().is_some(),
        has_date: message.date().is_some(),
    }
}

/// The `Message-ID:`/`Date:` lines a submitted message lacks (Postfix's
/// `always_add_missing_headers` for submission), wire form.
pub(crate) fn missing_headers(facts: &HeaderFacts, queue_id: &str, hostname: &str) -> String {
    let mut lines = String::new();
    if !facts.has_message_id {
        lines.push_str(&format!(
            "Message-ID: <{queue_id}.{}@{hostname}>\r\n",
            random_tag()
        ));
    }
    if !facts.has_date {
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        lines.push_str(&format!("Date: {date}\r\n"));
    }
    lines
}

/// Eight hex digits that make a Message-ID unguessable from the queue id alone.
fn random_tag() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:08x}", hasher.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_parameters_parse_as_rfc_3461_writes_them() {
        let notify = parse_notify("success,FAILURE").unwrap();
        assert!(notify.success && notify.failure && !notify.delay && !notify.never);
        assert!(parse_notify("NEVER").unwrap().never);
        assert_eq!(parse_notify("NEVER,SUCCESS"), None);
        assert_eq!(parse_notify("SOMETIMES"), None);
        assert_eq!(parse_ret("hdrs"), Some(Ret::Hdrs));
        assert_eq!(parse_ret("part"), None);
        assert_eq!(
            parse_orcpt("rfc822;bob+2B1@example.com").as_deref(),
            Some("rfc822;bob+1@example.com")
        );
        assert_eq!(decode_xtext("a+0Db"), None);
        assert_eq!(decode_xtext("a+4"), None);
    }

    #[test]
    fn header_facts_find_from_addresses_and_missing_fields() {
        let facts = header_facts(
            b"Received: x\nFrom: Alice <alice@example.com>, bob@example.com\nSubject: s\n",
        );
        assert_eq!(facts.from, ["alice@example.com", "bob@example.com"]);
        assert!(!facts.has_message_id && !facts.has_date);
        let added = missing_headers(&facts, "ABC", "mx.example.com");
        assert!(added.starts_with("Message-ID: <ABC."), "{added}");
        assert!(added.contains("@mx.example.com>\r\nDate: "), "{added}");
        let facts = header_facts(
            b"From: a@example.com\nMessage-ID: <1@x>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n",
        );
        assert!(facts.has_message_id && facts.has_date);
        assert_eq!(missing_headers(&facts, "ABC", "mx"), "");
    }
}
