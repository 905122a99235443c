//! What FETCH and SEARCH read from a message: ENVELOPE, BODYSTRUCTURE, `BODY[section]`,
//! `BINARY[part]` and text matching.
//!
//! The MIME structure is our own (byte ranges into the CRLF message, found the way Dovecot
//! finds them), so sizes, line counts and sections agree with what clients saw from Dovecot;
//! mail-parser does the decoding (RFC 2047 words, charsets, dates). Header values in ENVELOPE
//! and BODYSTRUCTURE are written raw, as Dovecot does. Nothing here panics on message bytes:
//! every slice is taken with `get`, and nesting and part counts are bounded.
//!
//! # Layout
//!
//! A [`Message`] is the CRLF form of the stored bytes and byte ranges into it: the answers
//! are cut from those ranges, never from a second copy.
//! - `mod.rs`: [`Message`] and its answers (sections, BINARY, the SEARCH matches) over the
//!   CRLF form (the store's `form::WireForm`, the one conversion), the part (`Part`, `Kind`, `ContentType`) every module below shares.
//! - `header.rs`: where each field is in a header; unfolding; the decoded values SEARCH reads.
//! - `content_type.rs`: Content-Type and its parameters (RFC 2045, RFC 2231).
//! - `mime.rs`: the MIME tree, found as Dovecot finds it (boundaries, nesting bounded).
//! - `bodystructure.rs`, `envelope.rs`: BODY/BODYSTRUCTURE and ENVELOPE, written as Dovecot
//!   writes them.
//! - `decode.rs`: Content-Transfer-Encodings undone (BINARY), text for SEARCH BODY/TEXT.
//! - `preview.rs`: PREVIEW (RFC 8970), the first text part decoded by mail-parser.
//! - `subject.rs`: the RFC 5256 base subject (SORT SUBJECT, THREAD).
//! - `sort_values.rs`: what SORT and THREAD compare, as kept in the folder's cache.
//! - `stream.rs`: the whole message or a partial of it read from the file a buffer at a time
//!   (FETCH `BODY[]`, `RFC822`, `BINARY[]`), with no `Message` built.

use std::ops::Range;
use std::sync::OnceLock;

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;
use mailstead_store::form::{WireForm, find_lf};

use crate::command::{Section, SectionText};
use crate::wire::{nstring, string};
use envelope::write_envelope;

/// Deeper nesting than this is treated as an opaque leaf, so hostile input cannot recurse
/// without bound.
const MAX_DEPTH: usize = 64;
/// Parts past this count are not split further (Dovecot has a similar cap).
const MAX_PARTS: usize = 10_000;
/// Longer boundaries are cut to this, as Dovecot does.
const MAX_BOUNDARY: usize = 80;
/// Header fields that hold addresses: SEARCH matches their parsed `mailbox@host` too.
const ADDRESS_FIELDS: [&str; 6] = ["From", "To", "Cc", "Bcc", "Sender", "Reply-To"];

/// `BINARY` on a part whose Content-Transfer-Encoding we cannot decode (`[UNKNOWN-CTE]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown content transfer encoding {0:?}")]
pub struct UnknownEncoding(pub String);

/// A parsed message: its CRLF bytes, its top header, and its MIME tree as byte ranges.
#[derive(Debug, Clone)]
pub struct Message {
    raw: Vec<u8>,
    /// Where `raw` has a CR the stored file did not, when the file also has CRLF line ends of
    /// its own (then a bare LF is content, which BINARY of `binary` content gives back as it
    /// is; a file stored with LF alone cannot tell, and gets CRLF throughout, as Dovecot's).
    added_crs: Vec<usize>,
    /// The top header, enough for ENVELOPE and the header searches.
    header: Header,
    /// The MIME tree, built on first use: FETCH ENVELOPE of a large message never scans
    /// its body.
    tree: OnceLock<Part>,
    /// The decoded, lower-cased text of the text/* parts, built on first use, so that a
    /// SEARCH with many BODY keys decodes a message once, not once per key.
    body_texts: OnceLock<Vec<String>>,
    /// The same with the header fields of attached messages, for TEXT.
    all_texts: OnceLock<Vec<String>>,
}

#[derive(Debug, Clone)]
struct Part {
    /// Header fields, including the blank line that ends them (when there is one).
    header: Header,
    body: Range<usize>,
    content_type: ContentType,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Leaf,
    /// A multipart with a boundary; may have no children when the boundary never occurs.
    Multipart(Vec<Part>),
    /// message/rfc822: the embedded message (its header starts at our body).
    Message(Box<Part>),
}

#[derive(Debug, Clone)]
struct ContentType {
    /// Lower-cased, for decisions.
    kind: String,
    subtype: String,
    /// As written in the header (`None`: no or unusable Content-Type, the default applies).
    written: Option<(Vec<u8>, Vec<u8>)>,
    params: Params,
}

impl ContentType {
    fn default_for(digest_parent: bool) -> ContentType {
        let (kind, subtype) = if digest_parent {
            ("message", "rfc822")
        } else {
            ("text", "plain")
        };
        ContentType {
            kind: kind.to_string(),
            subtype: subtype.to_string(),
            written: None,
            params: Vec::new(),
        }
    }

    fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind == kind && self.subtype == subtype
    }

    fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }
}

impl Message {
    /// Stored bytes (LF or CRLF line endings, possibly garbage).
    pub fn parse(stored: &[u8]) -> Message {
        let mut added_crs = Vec::new();
        let mut raw = Vec::new();
        WireForm::default().convert_noting(stored, &mut raw, |at| added_crs.push(at));
        if !added_crs.is_empty() && !stored.windows(2).any(|pair| pair == b"\r\n") {
            added_crs = Vec::new();
        }
        let header = Header::new(&raw, 0..header_end(&raw, 0..raw.len()));
        Message {
            raw,
            added_crs,
            header,
            tree: OnceLock::new(),
            body_texts: OnceLock::new(),
            all_texts: OnceLock::new(),
        }
    }

    /// The whole MIME tree (its top part has the same header as `self.header`).
    fn root(&self) -> &Part {
        self.tree.get_or_init(|| {
            let mut parser = Parser {
                raw: &self.raw,
                boundaries: Vec::new(),
                budget: MAX_PARTS,
            };
            parser.entity(0, false, 0).0
        })
    }

    /// RFC822.SIZE: the size with CRLF line endings.
    pub fn size(&self) -> usize {
        self.raw.len()
    }

    /// The whole message with CRLF line endings, as stored otherwise (NUL bytes included:
    /// `section` with an empty section gives the same bytes ready for a literal).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// ENVELOPE: `(date subject from sender reply-to to cc bcc in-reply-to message-id)`.
    pub fn envelope(&self, out: &mut Vec<u8>) {
        write_envelope(&self.raw, &self.header, out);
    }

    /// BODYSTRUCTURE (`extensible`) or BODY.
    pub fn body_structure(&self, out: &mut Vec<u8>, extensible: bool) {
        if is_plain_7bit(&self.raw, self.root()) {
            // Dovecot answers these from sizes alone, in this canonical spelling.
            let body = self.raw.get(self.root().body.clone()).unwrap_or_default();
            let lines = body.iter().filter(|&&b| b == b'\n').count();
            out.extend_from_slice(
                format!(
                    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" {} {lines}{})",
                    body.len(),
                    if extensible { " NIL NIL NIL NIL" } else { "" }
                )
                .as_bytes(),
            );
            return;
        }
        write_body(&self.raw, self.root(), out, extensible);
    }

    /// `BODY[section]` before any `<partial>`; `None` when the part does not exist. NUL bytes
    /// come out as 0x80 (a literal cannot carry NUL; Dovecot does the same).
    pub fn section(&self, section: &Section) -> Option<Vec<u8>> {
        self.section_bytes(section).map(no_nul)
    }

    fn section_bytes(&self, section: &Section) -> Option<Vec<u8>> {
        let raw = &self.raw;
        let bytes = |range: &Range<usize>| raw.get(range.clone()).map(<[u8]>::to_vec);
        if section.part.is_empty() {
            return match &section.text {
                None => Some(raw.clone()),
                Some(SectionText::Mime) => None,
                // Without the MIME tree: HEADER.FIELDS is what mail clients fetch most.
                Some(text) => {
                    message_text(raw, &self.header, self.header.range.end..raw.len(), text)
                }
            };
        }
        let part = self.find(&section.part)?;
        match &section.text {
            None => bytes(&part.body),
            Some(SectionText::Mime) => bytes(&part.header.range),
            Some(text) => match &part.kind {
                Kind::Message(inner) => message_text(raw, &inner.header, inner.body.clone(), text),
                _ => None,
            },
        }
    }

    /// `BINARY[part]`: the part's body with its Content-Transfer-Encoding removed.
    pub fn binary(&self, part: &[u32]) -> Result<Option<Vec<u8>>, UnknownEncoding> {
        if part.is_empty() {
            return Ok(Some(self.raw.clone()));
        }
        let Some(found) = self.find(part) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        write_binary_body(&self.raw, &self.added_crs, found, &mut out)?;
        Ok(Some(out))
    }

    /// SEARCH HEADER/FROM/TO/...: a case-insensitive substring of the decoded value of any
    /// occurrence of `field`; an empty needle matches when the field is present.
    pub fn header_contains(&self, field: &str, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        self.search_values(field)
            .any(|values| needle.is_empty() || values.iter().any(|v| v.contains(&needle)))
    }

    /// What SEARCH matches of each occurrence of `field`: the decoded, lower-cased value and,
    /// for an address field, each parsed `mailbox@host` (so comments inside an address do
    /// not hide it).
    fn search_values<'a>(&'a self, field: &'a str) -> impl Iterator<Item = Vec<String>> + 'a {
        let addresses = ADDRESS_FIELDS
            .iter()
            .any(|name| name.eq_ignore_ascii_case(field));
        fields(&self.raw, &self.header)
            .filter(move |f| f.name.eq_ignore_ascii_case(field.as_bytes()))
            .map(move |f| {
                let mut values = vec![decode_header_value(f.value)];
                if addresses {
                    values.extend(envelope::address_specs(f.value));
                }
                values
            })
    }

    /// SEARCH BODY: the decoded text of the text/* parts, case-insensitive.
    pub fn body_contains(&self, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        needle.is_empty() || self.texts(false).iter().any(|text| text.contains(&needle))
    }

    /// SEARCH TEXT: the header or the body.
    pub fn text_contains(&self, needle: &str) -> bool {
        let lowered = needle.to_lowercase();
        fields(&self.raw, &self.header).any(|f| {
            let name = String::from_utf8_lossy(f.name).to_lowercase();
            name.contains(&lowered) || decode_header_value(f.value).contains(&lowered)
        }) || self.texts(true).iter().any(|text| text.contains(&lowered))
    }

    /// What BODY (`with_headers` false) or the body part of TEXT searches, decoded once.
    fn texts(&self, with_headers: bool) -> &[String] {
        let cell = if with_headers {
            &self.all_texts
        } else {
            &self.body_texts
        };
        cell.get_or_init(|| {
            let mut texts = Vec::new();
            collect_texts(&self.raw, self.root(), with_headers, &mut texts);
            texts
        })
    }

    /// The Date: header's calendar date in the header's own zone (SENTBEFORE/ON/SINCE).
    pub fn sent_date(&self) -> Option<time::Date> {
        let field =
            fields(&self.raw, &self.header).find(|f| f.name.eq_ignore_ascii_case(b"date"))?;
        let mut value = field.value.to_vec();
        if !value.ends_with(b"\n") {
            value.extend_from_slice(b"\r\n"); // mail-parser reads up to the line end
        }
        let HeaderValue::DateTime(date) = MessageStream::new(&value).parse_date() else {
            return None;
        };
        let month = time::Month::try_from(date.month).ok()?;
        time::Date::from_calendar_date(i32::from(date.year), month, date.day).ok()
    }

    /// The part at an IMAP part path (`1.2.3`), resolved as Dovecot's `imap_msgpart_find`:
    /// a non-multipart part is its own part 1 (only at the end of the path, unless it is a
    /// message/rfc822), and a number after a message/rfc822 part goes into its message.
    fn find(&self, path: &[u32]) -> Option<&Part> {
        let mut part = self.root();
        for (i, &number) in path.iter().enumerate() {
            let more = i + 1 < path.len();
            match &part.kind {
                Kind::Multipart(children) => {
                    let index = usize::try_from(number).ok()?.checked_sub(1)?;
                    part = children.get(index)?;
                }
                Kind::Message(_) if number == 1 => {}
                Kind::Leaf if number == 1 && !more => {}
                _ => return None,
            }
            if more && let Kind::Message(inner) = &part.kind {
                part = inner;
            }
        }
        Some(part)
    }
}

/// HEADER, HEADER.FIELDS (NOT) or TEXT of a message (the top one or an embedded one).
fn message_text(
    raw: &[u8],
    header: &Header,
    body: Range<usize>,
    text: &SectionText,
) -> Option<Vec<u8>> {
    match text {
        SectionText::Header => raw.get(header.range.clone()).map(<[u8]>::to_vec),
        SectionText::Text => raw.get(body).map(<[u8]>::to_vec),
        SectionText::HeaderFields { not, fields: names } => {
            // Fields and (for NOT) nameless lines, in their original order.
            let mut lines: Vec<Range<usize>> = Vec::new();
            for &(start, colon, end) in &header.spans {
                let name = trim(raw.get(start..colon).unwrap_or_default());
                let listed = names
                    .iter()
                    .any(|n| n.as_bytes().eq_ignore_ascii_case(name));
                if listed != *not {
                    lines.push(start..end);
                }
            }
            if *not {
                lines.extend(header.junk.iter().cloned());
                lines.sort_by_key(|r| r.start);
            }
            let mut out = Vec::new();
            for line in lines {
                let whole = raw.get(line).unwrap_or_default();
                out.extend_from_slice(whole);
                if !whole.ends_with(b"\n") {
                    out.extend_from_slice(b"\r\n");
                }
            }
            // The blank line is the header's own; Dovecot adds one to a header without it
            // only when some field was kept.
            let block = raw.get(header.range.clone()).unwrap_or_default();
            let has_blank_line = block == b"\r\n" || block.ends_with(b"\n\r\n");
            if has_blank_line || !out.is_empty() {
                out.extend_from_slice(b"\r\n");
            }
            Some(out)
        }
        SectionText::Mime => None,
    }
}

mod bodystructure;
mod content_type;
mod decode;
mod envelope;
mod header;
mod mime;
mod preview;
pub mod search_cache;
pub mod sort_values;
pub mod stream;
pub mod subject;

use bodystructure::*;
use content_type::*;
use decode::*;
use header::*;
use mime::*;
#[cfg(test)]
mod tests;
