//! The header values SEARCH matches, decoded once and kept in the folder's cache
//! (`CacheKey::SearchHeaders`), so a repeated SEARCH FROM/SUBJECT/SENTSINCE compares strings
//! instead of parsing headers and RFC 2047 words again.
//!
//! The cached form is a marker line, then `name TAB value LF` per value (names and values
//! lower-cased, one line per occurrence plus one per parsed address) and `\0date TAB
//! YYYY-MM-DD` for the sent date. An entry without the marker is the raw header fields an
//! older version cached: it is parsed as a message, as before.

use time::Date;

use super::Message;

/// Starts the decoded form; NUL cannot start a header field, so raw headers never do.
const MARKER: &[u8] = b"\0search-values 1\n";
const DATE: &str = "\0date";

/// The decoded header values of one message.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SearchValues {
    /// Lower-cased field name and one value SEARCH matches.
    values: Vec<(String, String)>,
    sent: Option<Date>,
}

impl SearchValues {
    /// The values of `fields` in `message`.
    pub fn of(message: &Message, fields: &[&str]) -> SearchValues {
        let mut values = Vec::new();
        for field in fields {
            let name = field.to_ascii_lowercase();
            for occurrence in message.search_values(field) {
                for value in occurrence {
                    // A value is one line in the cached form.
                    values.push((name.clone(), value.replace(['\n', '\t'], " ")));
                }
            }
        }
        SearchValues {
            values,
            sent: message.sent_date(),
        }
    }

    /// The cached form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MARKER.to_vec();
        for (name, value) in &self.values {
            out.extend_from_slice(format!("{name}\t{value}\n").as_bytes());
        }
        if let Some(date) = self.sent {
            let (year, month, day) = (date.year(), u8::from(date.month()), date.day());
            out.extend_from_slice(format!("{DATE}\t{year:04}-{month:02}-{day:02}\n").as_bytes());
        }
        out
    }

    /// Reads the cached form; `None` for anything else (raw headers cached before).
    pub fn decode(bytes: &[u8]) -> Option<SearchValues> {
        let text = std::str::from_utf8(bytes.strip_prefix(MARKER)?).ok()?;
        let mut decoded = SearchValues::default();
        for line in text.lines() {
            let (name, value) = line.split_once('\t')?;
            if name == DATE {
                decoded.sent = parse_date(value);
            } else {
                decoded.values.push((name.to_owned(), value.to_owned()));
            }
        }
        Some(decoded)
    }

    /// As [`Message::header_contains`], for the fields the values were taken from.
    pub fn header_contains(&self, field: &str, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        self.values.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case(field) && (needle.is_empty() || value.contains(&needle))
        })
    }

    /// As [`Message::sent_date`].
    pub fn sent_date(&self) -> Option<Date> {
        self.sent
    }
}

fn parse_date(value: &str) -> Option<Date> {
    let mut parts = value.splitn(3, '-');
    let year = parts.next()?.parse().ok()?;
    let month = time::Month::try_from(parts.next()?.parse::<u8>().ok()?).ok()?;
    let day = parts.next()?.parse().ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_values_answer_as_the_message_does() {
        let message = Message::parse(
            b"From: =?ISO-8859-1?Q?Caf=E9?= <user (c)@ (d) example.org>\r\n\
              Subject: Hello\r\n\tWorld\r\nDate: Sat, 21 Nov 2026 23:30:00 -0500\r\n\r\nbody\r\n",
        );
        let fields = ["From", "Subject", "Date", "Cc"];
        let cached = SearchValues::decode(&SearchValues::of(&message, &fields).encode()).unwrap();
        for (field, needle) in [
            ("From", "café"),
            ("From", "user@example.org"),
            ("from", "(c)"),
            ("Subject", "hello world"),
            ("Subject", ""),
            ("Cc", ""),
            ("Subject", "nothing"),
        ] {
            assert_eq!(
                cached.header_contains(field, needle),
                message.header_contains(field, needle),
                "{field} {needle}"
            );
        }
        assert_eq!(cached.sent_date(), message.sent_date());
        assert!(cached.sent_date().is_some());
        assert_eq!(SearchValues::decode(b"From: a@b\r\n\r\n"), None);
    }
}
