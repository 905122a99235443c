//! What SORT and THREAD compare of a message, taken from its header once and kept in the
//! folder's cache (`CacheKey::SortValues`), so sorting a large folder again reads no file.
//!
//! The cached form is a marker line, then one line per field in [`SortValues`] order (line
//! breaks inside a value become spaces; the references are separated by spaces, which a
//! message ID cannot hold).

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

use super::envelope::first_address;
use super::subject::{base_subject, casemap};
use super::{Message, fields};

/// Starts the cached form; NUL cannot start a header field.
const MARKER: &str = "\0sort-values 1\n";

/// The values of one message that SORT and THREAD read. Strings that are compared are
/// case-mapped already (upper case).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SortValues {
    /// The Date: header in Unix seconds, `None` when missing or unreadable (INTERNALDATE
    /// stands in).
    pub sent: Option<i64>,
    /// RFC 5256 2.1 base subject.
    pub subject: String,
    /// Whether the subject had a `Re:`/`Fwd:` removed (THREAD REFERENCES).
    pub reply_or_forward: bool,
    /// The mailbox (local part) of the first From:, To: and Cc: address (RFC 5256 SORT); a
    /// group's name when the field starts with a group, as Dovecot takes it.
    pub from: String,
    pub to: String,
    pub cc: String,
    /// RFC 5957: the first address's display name, or its `mailbox@host` without one.
    pub display_from: String,
    pub display_to: String,
    /// Message IDs without their angle brackets (THREAD REFERENCES).
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
}

impl SortValues {
    pub fn of(message: &Message) -> SortValues {
        let first = |name: &str| {
            fields(&message.raw, &message.header)
                .find(|field| field.name.eq_ignore_ascii_case(name.as_bytes()))
                .map(|field| field.value)
        };
        let address = |name: &str| first(name).and_then(first_address);
        let mailbox = |name: &str| {
            address(name)
                .and_then(|address| address.mailbox)
                .map(|mailbox| upper(&String::from_utf8_lossy(&mailbox)))
                .unwrap_or_default()
        };
        let display = |name: &str| {
            address(name)
                .map(|address| {
                    let mailbox = address.mailbox.unwrap_or_default();
                    let host = address.host;
                    let display = address.name.map(|bytes| decode_words(&bytes));
                    match (display.filter(|text| !text.trim().is_empty()), host) {
                        (Some(text), _) => upper(text.trim()),
                        (None, Some(host)) => upper(&format!(
                            "{}@{}",
                            String::from_utf8_lossy(&mailbox),
                            String::from_utf8_lossy(&host)
                        )),
                        // A group: its name.
                        (None, None) => upper(&String::from_utf8_lossy(&mailbox)),
                    }
                })
                .unwrap_or_default()
        };
        let subject = base_subject(&first("subject").map(decode_words).unwrap_or_default());
        let references = first("references").map(message_ids).unwrap_or_default();
        SortValues {
            sent: first("date").and_then(timestamp),
            subject: subject.text,
            reply_or_forward: subject.reply_or_forward,
            from: mailbox("from"),
            to: mailbox("to"),
            cc: mailbox("cc"),
            display_from: display("from"),
            display_to: display("to"),
            message_id: first("message-id").and_then(|value| message_ids(value).into_iter().next()),
            in_reply_to: first("in-reply-to")
                .and_then(|value| message_ids(value).into_iter().next()),
            references,
        }
    }

    /// The cached form.
    pub fn encode(&self) -> Vec<u8> {
        let one_line = |value: &str| value.replace(['\r', '\n'], " ");
        let lines = [
            self.sent.map(|sent| sent.to_string()).unwrap_or_default(),
            if self.reply_or_forward { "1" } else { "0" }.to_owned(),
            one_line(&self.subject),
            one_line(&self.from),
            one_line(&self.to),
            one_line(&self.cc),
            one_line(&self.display_from),
            one_line(&self.display_to),
            self.message_id.clone().unwrap_or_default(),
            self.in_reply_to.clone().unwrap_or_default(),
            self.references.join(" "),
        ];
        let mut out = String::from(MARKER);
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
        out.into_bytes()
    }

    /// Whether `bytes` start as the cached form does (a cheap look before a decode).
    pub fn is_encoded(bytes: &[u8]) -> bool {
        bytes.starts_with(MARKER.as_bytes())
    }

    /// Reads the cached form; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<SortValues> {
        SortValues::decode_only(bytes, Wanted::ALL)
    }

    /// Reads the cached form, copying out only the `wanted` strings (the others stay empty).
    pub fn decode_only(bytes: &[u8], wanted: Wanted) -> Option<SortValues> {
        let lines = CachedFields::parse(bytes)?.all()?;
        let line = |field: Field| lines[field as usize];
        let text = |want: bool, field: Field| -> Option<String> {
            if !want {
                return Some(String::new());
            }
            std::str::from_utf8(line(field)).ok().map(str::to_owned)
        };
        let optional = |value: String| (!value.is_empty()).then_some(value);
        let references = text(wanted.ids, Field::References)?
            .split(' ')
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect();
        Some(SortValues {
            sent: sent(line(Field::Sent))?,
            subject: text(wanted.subject, Field::Subject)?,
            reply_or_forward: line(Field::ReplyOrForward) == b"1",
            from: text(wanted.addresses, Field::From)?,
            to: text(wanted.addresses, Field::To)?,
            cc: text(wanted.addresses, Field::Cc)?,
            display_from: text(wanted.addresses, Field::DisplayFrom)?,
            display_to: text(wanted.addresses, Field::DisplayTo)?,
            message_id: optional(text(wanted.ids, Field::MessageId)?),
            in_reply_to: optional(text(wanted.ids, Field::InReplyTo)?),
            references,
        })
    }
}

/// The lines of the cached form, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Sent,
    ReplyOrForward,
    Subject,
    From,
    To,
    Cc,
    DisplayFrom,
    DisplayTo,
    MessageId,
    InReplyTo,
    References,
}

impl Field {
    const COUNT: usize = 11;
}

/// The cached form's fields as borrowed bytes, found without copying or checking them: SORT
/// compares the case-mapped strings as bytes (UTF-8 bytes order as their code points do), so
/// sorting a large folder allocates nothing per message.
#[derive(Debug, Clone, Copy)]
pub struct CachedFields<'a> {
    /// The lines after the marker.
    lines: &'a [u8],
}

impl<'a> CachedFields<'a> {
    /// `None` for anything but the cached form (a line goes missing only later, in
    /// [`CachedFields::get`]).
    pub fn parse(bytes: &'a [u8]) -> Option<CachedFields<'a>> {
        bytes
            .strip_prefix(MARKER.as_bytes())
            .map(|lines| CachedFields { lines })
    }

    /// One field, looking no further than its line (SORT reads one or two of them); `None`
    /// when the form ends before it.
    pub fn get(&self, field: Field) -> Option<&'a [u8]> {
        let mut rest = self.lines;
        for _ in 0..field as usize {
            rest = rest.get(memchr::memchr(b'\n', rest)? + 1..)?;
        }
        rest.get(..memchr::memchr(b'\n', rest)?)
    }

    /// Every field, in one pass; `None` when one is missing.
    pub fn all(&self) -> Option<[&'a [u8]; Field::COUNT]> {
        let mut rest = self.lines;
        let mut lines: [&[u8]; Field::COUNT] = [&[]; Field::COUNT];
        for line in &mut lines {
            let end = memchr::memchr(b'\n', rest)?;
            *line = rest.get(..end)?;
            rest = rest.get(end + 1..)?;
        }
        Some(lines)
    }

    /// The Date: header in Unix seconds: `Some(None)` when the message has none; `None` when
    /// the line is damaged or missing.
    pub fn sent(&self) -> Option<Option<i64>> {
        sent(self.get(Field::Sent)?)
    }
}

fn sent(line: &[u8]) -> Option<Option<i64>> {
    match line {
        [] => Some(None),
        digits => std::str::from_utf8(digits).ok()?.parse().ok().map(Some),
    }
}

/// Which strings of the cached form a command reads (the dates and the reply flag always).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub subject: bool,
    /// From, To, Cc and their display forms.
    pub addresses: bool,
    /// Message-ID, In-Reply-To, References.
    pub ids: bool,
}

impl Wanted {
    pub const ALL: Wanted = Wanted {
        subject: true,
        addresses: true,
        ids: true,
    };
}

/// [`casemap`]ped, on one line (an encoded word can decode to a line break).
fn upper(text: &str) -> String {
    casemap(text).replace(['\r', '\n'], " ")
}

/// RFC 2047 words decoded, not lower-cased (SEARCH's values are).
fn decode_words(value: &[u8]) -> String {
    let mut with_end = value.to_vec();
    if !with_end.ends_with(b"\n") {
        with_end.extend_from_slice(b"\r\n");
    }
    match MessageStream::new(&with_end).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::from_utf8_lossy(value).into_owned(),
    }
}

/// The Date: header's instant, in Unix seconds.
fn timestamp(value: &[u8]) -> Option<i64> {
    let mut with_end = value.to_vec();
    if !with_end.ends_with(b"\n") {
        with_end.extend_from_slice(b"\r\n");
    }
    match MessageStream::new(&with_end).parse_date() {
        HeaderValue::DateTime(date) if date.is_valid() => Some(date.to_timestamp()),
        _ => None,
    }
}

/// The `<id>`s of a header value, angle brackets, whitespace and line breaks taken out;
/// text outside brackets (comments, broken IDs) is skipped. At most [`MAX_REFERENCES`].
fn message_ids(value: &[u8]) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.iter().position(|&b| b == b'<') {
        let after = rest.get(open + 1..).unwrap_or_default();
        let Some(close) = after.iter().position(|&b| b == b'>') else {
            break;
        };
        let id: Vec<u8> = after
            .get(..close)
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace() && *b != b'<')
            .collect();
        if !id.is_empty() && ids.len() < MAX_REFERENCES {
            ids.push(String::from_utf8_lossy(&id).into_owned());
        }
        rest = after.get(close + 1..).unwrap_or_default();
    }
    ids
}

/// References kept per message: real threads are far shallower, and THREAD's work grows
/// with them.
const MAX_REFERENCES: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_a_message_survive_the_cache() {
        let message = Message::parse(
            b"From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\r\n\
              To: undisclosed:;, Bob <bob@example.net>\r\n\
              Cc: carol@example.com\r\n\
              Subject: Re: [list] =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= (fwd)\r\n\
              Date: Sat, 21 Nov 2026 23:30:00 -0500\r\n\
              Message-ID: <a1@example.org>\r\n\
              In-Reply-To: <a0@example.org> (comment)\r\n\
              References: <root@example.org>\r\n <a0@ex ample.org>\r\n\r\nbody\r\n",
        );
        let values = SortValues::of(&message);
        assert_eq!(values.sent, Some(1_795_321_800));
        assert!(values.reply_or_forward);
        assert_eq!(values.from, "ANDRE");
        assert_eq!(values.to, "UNDISCLOSED");
        assert_eq!(values.cc, "CAROL");
        assert_eq!(values.display_from, "ANDRE\u{301}");
        assert_eq!(values.subject, "GRU\u{308}SSE");
        assert_eq!(values.display_to, "UNDISCLOSED");
        assert_eq!(values.message_id.as_deref(), Some("a1@example.org"));
        assert_eq!(values.in_reply_to.as_deref(), Some("a0@example.org"));
        assert_eq!(values.references, ["root@example.org", "a0@example.org"]);
        assert_eq!(SortValues::decode(&values.encode()), Some(values));
    }

    #[test]
    fn missing_fields_are_empty_and_a_bare_address_displays_as_itself() {
        let values = SortValues::of(&Message::parse(b"From: joe@example.org\r\n\r\nbody\r\n"));
        assert_eq!(values.sent, None);
        assert_eq!(values.subject, "");
        assert_eq!(values.display_from, "JOE@EXAMPLE.ORG");
        assert_eq!(values.to, "");
        assert_eq!(values.message_id, None);
        assert_eq!(SortValues::decode(&values.encode()), Some(values));
        // A line break inside an encoded word stays on the value's one line.
        let values = SortValues::of(&Message::parse(
            b"From: =?UTF-8?Q?a=0D=0Ab?= <x@y>\r\nSubject: =?UTF-8?Q?c=0Ad?=\r\n\r\n",
        ));
        assert_eq!(values.display_from, "A  B");
        assert_eq!(SortValues::decode(&values.encode()), Some(values.clone()));
        let dates_only = Wanted {
            subject: false,
            addresses: false,
            ids: false,
        };
        let decoded = SortValues::decode_only(&values.encode(), dates_only).unwrap();
        assert_eq!(
            (decoded.sent, decoded.display_from.as_str()),
            (values.sent, "")
        );
        assert_eq!(SortValues::decode(b"\0sort-values 1\nx\n"), None);
        assert_eq!(SortValues::decode(b"From: a\r\n"), None);
    }
}
