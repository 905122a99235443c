//! What FETCH and SEARCH read from a message: ENVELOPE, BODYSTRUCTURE, `BODY[section]`,
//! `BINARY[part]` and text matching.
//!
//! The MIME structure is our own (byte ranges into the CRLF message, found the way Dovecot
//! finds them), so sizes, line counts and sections agree with what clients saw from Dovecot;
//! mail-parser does the decoding (RFC 2047 words, charsets, dates). Header values in ENVELOPE
//! and BODYSTRUCTURE are written raw, as Dovecot does. Nothing here panics on message bytes:
//! every slice is taken with `get`, and nesting and part counts are bounded.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

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

/// LF to CRLF (a lone CR kept), borrowing when already CRLF.
pub fn to_crlf(stored: &[u8]) -> Cow<'_, [u8]> {
    to_crlf_noting(stored, |_| {})
}

/// [`to_crlf`], calling `added` with the position in the output of each CR it adds.
fn to_crlf_noting(stored: &[u8], mut added: impl FnMut(usize)) -> Cow<'_, [u8]> {
    let mut bare_lf = None;
    let mut pos = 0;
    while let Some(lf) = memchr_lf(stored, pos) {
        if lf == 0 || stored.get(lf - 1) != Some(&b'\r') {
            bare_lf = Some(lf);
            break;
        }
        pos = lf + 1;
    }
    let Some(first) = bare_lf else {
        return Cow::Borrowed(stored);
    };
    let mut out = Vec::with_capacity(stored.len() + stored.len() / 32 + 2);
    out.extend_from_slice(stored.get(..first).unwrap_or_default());
    let mut pos = first;
    while let Some(lf) = memchr_lf(stored, pos) {
        out.extend_from_slice(stored.get(pos..lf).unwrap_or_default());
        if lf == 0 || stored.get(lf - 1) != Some(&b'\r') {
            added(out.len());
            out.push(b'\r');
        }
        out.push(b'\n');
        pos = lf + 1;
    }
    out.extend_from_slice(stored.get(pos..).unwrap_or_default());
    Cow::Owned(out)
}

/// The first LF at or after `from`. Eight bytes at a time: every FETCH walks the lines of the
/// whole message, so this is the parser's hot loop.
fn memchr_lf(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let haystack = bytes.get(from..)?;
    let mut chunks = haystack.chunks_exact(8);
    let mut offset = from;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b'\n'));
        // The lowest set bit marks the first zero byte, i.e. the first LF.
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| offset + i)
}

impl Message {
    /// Stored bytes (LF or CRLF line endings, possibly garbage).
    pub fn parse(stored: &[u8]) -> Message {
        let mut added_crs = Vec::new();
        let raw = to_crlf_noting(stored, |at| added_crs.push(at)).into_owned();
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
        let addresses = ADDRESS_FIELDS
            .iter()
            .any(|name| name.eq_ignore_ascii_case(field));
        fields(&self.raw, &self.header).any(|f| {
            f.name.eq_ignore_ascii_case(field.as_bytes())
                && (needle.is_empty()
                    || decode_header_value(f.value).contains(&needle)
                    || addresses
                        && envelope::address_specs(f.value)
                            .iter()
                            .any(|spec| spec.contains(&needle)))
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

/// Dovecot's `imap_bodystructure_is_plain_7bit` for the top part: text/plain, at most
/// `charset=us-ascii`, 7bit, and none of the other MIME fields.
fn is_plain_7bit(raw: &[u8], root: &Part) -> bool {
    let ct = &root.content_type;
    let header = &root.header;
    let has =
        |name: &str| fields(raw, header).any(|f| f.name.eq_ignore_ascii_case(name.as_bytes()));
    matches!(root.kind, Kind::Leaf)
        && ct.is("text", "plain")
        && match ct.params.as_slice() {
            [] => true,
            [(name, value)] => {
                name.eq_ignore_ascii_case(b"charset") && value.eq_ignore_ascii_case(b"us-ascii")
            }
            _ => false,
        }
        && transfer_encoding(raw, header).is_none_or(|e| e.eq_ignore_ascii_case("7bit"))
        && !has("content-id")
        && !has("content-description")
        && !has("content-md5")
        && !has("content-disposition")
        && !has("content-language")
        && !has("content-location")
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

// ---------------------------------------------------------------------------------------------
// MIME structure

/// A `--boundary` line found while scanning.
#[derive(Debug, Clone, Copy)]
struct BoundaryLine {
    /// Where the line starts.
    start: usize,
    /// Where the line after it starts (or the end of the message).
    next: usize,
    /// Index of the matching boundary in the parser's stack.
    level: usize,
    /// `--boundary--`.
    close: bool,
}

/// One pass over the message with the stack of the enclosing multiparts' boundaries, as
/// Dovecot's parser does: a line ends the current part when it starts with `--` and one of the
/// active boundaries (the longest that matches wins), so an unterminated inner multipart ends
/// at its parent's boundary.
struct Parser<'a> {
    raw: &'a [u8],
    boundaries: Vec<Vec<u8>>,
    budget: usize,
}

impl Parser<'_> {
    /// The first boundary line at or after the line starting at `pos`.
    fn next_boundary(&self, mut pos: usize) -> Option<BoundaryLine> {
        if self.boundaries.is_empty() {
            return None;
        }
        while pos < self.raw.len() {
            let rest = self.raw.get(pos..).unwrap_or_default();
            let line_len = memchr_lf(rest, 0).map_or(rest.len(), |lf| lf + 1);
            if let Some(found) = self.boundary_at(pos, line_len) {
                return Some(found);
            }
            pos += line_len;
        }
        None
    }

    fn boundary_at(&self, start: usize, line_len: usize) -> Option<BoundaryLine> {
        let line = self.raw.get(start..start + line_len)?;
        let after_dashes = line.strip_prefix(b"--")?;
        let (level, boundary) = self
            .boundaries
            .iter()
            .enumerate()
            .filter(|(_, b)| after_dashes.starts_with(b))
            .max_by_key(|(level, b)| (b.len(), *level))?;
        let close = after_dashes
            .get(boundary.len()..)
            .is_some_and(|rest| rest.starts_with(b"--"));
        Some(BoundaryLine {
            start,
            next: start + line_len,
            level,
            close,
        })
    }

    /// Where content that runs up to `boundary` ends: the line break before a boundary line
    /// belongs to the boundary.
    fn content_end(&self, from: usize, boundary: Option<BoundaryLine>) -> usize {
        let Some(boundary) = boundary else {
            return self.raw.len();
        };
        let mut end = boundary.start;
        if end > from && self.raw.get(end - 1) == Some(&b'\n') {
            end -= 1;
            if end > from && self.raw.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
        }
        end.max(from)
    }

    /// Parses the entity starting at `start`; returns it, the boundary line that ended it
    /// (`None`: the end of the message), and where its bytes end for its container (which
    /// keeps a line break the entity's own header gave up to the boundary).
    fn entity(
        &mut self,
        start: usize,
        digest_parent: bool,
        depth: usize,
    ) -> (Part, Option<BoundaryLine>, usize) {
        self.budget = self.budget.saturating_sub(1);
        let mut header_end = header_end(self.raw, start..self.raw.len());
        // A boundary inside the header ends the part there.
        let mut ended = None;
        let mut line = start;
        while line < header_end {
            let rest = self.raw.get(line..header_end).unwrap_or_default();
            let line_len = memchr_lf(rest, 0).map_or(rest.len(), |lf| lf + 1);
            if let Some(found) = self.boundary_at(line, line_len) {
                ended = Some(found);
                header_end = line;
                break;
            }
            line += line_len;
        }
        let mut header = Header::new(self.raw, start..header_end);
        let content_type = fields(self.raw, &header)
            .find(|f| f.name.eq_ignore_ascii_case(b"content-type"))
            .and_then(|f| parse_content_type(f.value))
            .unwrap_or_else(|| ContentType::default_for(digest_parent));
        let body_start = header_end;
        let leaf = |parser: &Self, ended: Option<BoundaryLine>| {
            let ended = ended.or_else(|| parser.next_boundary(body_start));
            (body_start..parser.content_end(body_start, ended), ended)
        };
        if ended.is_some() {
            let (body, ended) = leaf(self, ended);
            let extent = body.end.max(header_end);
            // The line break before the boundary is the boundary's, not the header's.
            header.truncate(self.content_end(start, ended));
            let kind = if content_type.kind == "multipart" {
                Kind::Multipart(Vec::new())
            } else {
                Kind::Leaf
            };
            let part = Part {
                header,
                body,
                content_type,
                kind,
            };
            return (part, ended, extent);
        }

        let nestable = depth < MAX_DEPTH && self.budget > 0;
        let (kind, body, ended) = if content_type.kind == "multipart" && nestable {
            let boundary = content_type.param("boundary").unwrap_or_default().to_vec();
            let digest = content_type.subtype == "digest";
            let (children, ended, min_end) = self.multipart(body_start, &boundary, digest, depth);
            let body = body_start..self.content_end(min_end, ended).max(min_end);
            (Kind::Multipart(children), body, ended)
        } else if content_type.is("message", "rfc822") && nestable {
            // Parsed whatever its Content-Transfer-Encoding claims, as Dovecot does.
            let (inner, ended, extent) = self.entity(body_start, false, depth + 1);
            let body = body_start..extent.max(body_start);
            (Kind::Message(Box::new(inner)), body, ended)
        } else {
            let (body, ended) = leaf(self, None);
            (Kind::Leaf, body, ended)
        };
        let extent = body.end.max(header_end);
        if body.is_empty() && ended.is_some() {
            // A boundary right after the header takes the blank line's line break.
            header.truncate(self.content_end(start, ended));
        }
        let part = Part {
            header,
            body,
            content_type,
            kind,
        };
        (part, ended, extent)
    }

    /// The children of a multipart whose body starts at `body_start`, the boundary line of an
    /// enclosing multipart that ended it, and the least end of its body. Without a boundary there are no children
    /// (Dovecot then reports one empty text/plain part).
    fn multipart(
        &mut self,
        body_start: usize,
        boundary: &[u8],
        digest: bool,
        depth: usize,
    ) -> (Vec<Part>, Option<BoundaryLine>, usize) {
        let mut children: Vec<Part> = Vec::new();
        if boundary.is_empty() {
            return (children, self.next_boundary(body_start), body_start);
        }
        // Dovecot truncates boundaries to 80 bytes (RFC 2046 allows 70).
        self.boundaries
            .push(boundary.get(..MAX_BOUNDARY).unwrap_or(boundary).to_vec());
        let own = self.boundaries.len() - 1;
        let mut found = self.next_boundary(body_start);
        // The line break ending a closing boundary line stays in the multipart.
        let mut min_end = body_start;
        let ended = loop {
            match found {
                Some(line) if line.level == own && !line.close && self.budget == 0 => {
                    // Too many parts: the rest is left unsplit, like an epilogue.
                    self.boundaries.truncate(own);
                    min_end = min_end.max(line.start);
                    break self.next_boundary(line.next);
                }
                Some(line) if line.level == own && !line.close => {
                    let (child, ended, extent) = self.entity(line.next, digest, depth + 1);
                    children.push(child);
                    min_end = min_end.max(extent);
                    found = ended;
                }
                Some(line) if line.level == own => {
                    // The closing boundary: the epilogue runs to an enclosing boundary.
                    self.boundaries.truncate(own);
                    min_end = min_end.max(line.next);
                    break self.next_boundary(line.next);
                }
                other => {
                    // An enclosing boundary (or the end): this multipart is unterminated.
                    self.boundaries.truncate(own);
                    break other;
                }
            }
        };
        (children, ended, min_end)
    }
}

/// Where the header at `range` ends: after the first empty line, or at the end of the range.
fn header_end(raw: &[u8], range: Range<usize>) -> usize {
    let mut line = range.start;
    while line < range.end {
        let rest = raw.get(line..range.end).unwrap_or_default();
        if rest.starts_with(b"\r\n") {
            return line + 2;
        }
        if rest.starts_with(b"\n") {
            return line + 1;
        }
        match memchr_lf(rest, 0) {
            Some(lf) => line += lf + 1,
            None => break,
        }
    }
    range.end
}

fn transfer_encoding(raw: &[u8], header: &Header) -> Option<String> {
    let field =
        fields(raw, header).find(|f| f.name.eq_ignore_ascii_case(b"content-transfer-encoding"))?;
    // One token, or Dovecot ignores the field (`8 bit` is 7bit).
    match mime_tokens(field.value).as_slice() {
        [MimeToken::Word(token)] => Some(lossy(token)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Header fields

struct Field<'a> {
    name: &'a [u8],
    /// After the colon, up to and including the final line ending, folded lines included.
    value: &'a [u8],
}

/// A header block and where its fields are, found once at parse time (FETCH and SEARCH look
/// fields up many times).
#[derive(Debug, Clone)]
struct Header {
    range: Range<usize>,
    /// Per field: where it starts, its colon, where it ends (absolute offsets).
    spans: Vec<(usize, usize, usize)>,
    /// Lines (with their continuations) that have no field name: kept by
    /// HEADER.FIELDS.NOT, as Dovecot does, and invisible otherwise.
    junk: Vec<Range<usize>>,
}

impl Header {
    /// Indexes the fields of the block at `range`. Lines without a colon are skipped.
    fn new(raw: &[u8], range: Range<usize>) -> Header {
        let block = raw.get(range.clone()).unwrap_or_default();
        let mut spans = Vec::new();
        let mut junk = Vec::new();
        let mut pos = 0;
        while let Some(rest) = block.get(pos..).filter(|r| !r.is_empty()) {
            if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
                break; // the blank line ending the header
            }
            // The field runs to the first line ending not followed by a space or tab.
            let mut end = 0;
            loop {
                match memchr_lf(rest, end) {
                    Some(lf) => {
                        end = lf + 1;
                        if !matches!(rest.get(end), Some(b' ' | b'\t')) {
                            break;
                        }
                    }
                    None => {
                        end = rest.len();
                        break;
                    }
                }
            }
            let whole = rest.get(..end).unwrap_or_default();
            let start = range.start + pos;
            let colon = whole.iter().position(|&b| b == b':').filter(|&colon| {
                let name = trim(whole.get(..colon).unwrap_or_default());
                !name.is_empty() && !name.contains(&b'\n')
            });
            match colon {
                Some(colon) => spans.push((start, start + colon, start + end)),
                None => junk.push(start..start + end),
            }
            pos += end;
        }
        Header { range, spans, junk }
    }

    /// Cuts the header at `end` (a boundary right after it owns the last line break).
    fn truncate(&mut self, end: usize) {
        if end >= self.range.end {
            return;
        }
        self.range.end = end.max(self.range.start);
        let end = self.range.end;
        self.spans.retain(|&(start, ..)| start < end);
        for span in &mut self.spans {
            span.2 = span.2.min(end);
            span.1 = span.1.min(span.2);
        }
        self.junk.retain(|r| r.start < end);
        for junk in &mut self.junk {
            junk.end = junk.end.min(end);
        }
    }
}

/// The fields of a header, in order.
fn fields<'a>(raw: &'a [u8], header: &'a Header) -> impl Iterator<Item = Field<'a>> + 'a {
    header.spans.iter().map(move |&(start, colon, end)| Field {
        name: trim(raw.get(start..colon).unwrap_or_default()),
        value: raw.get(colon + 1..end).unwrap_or_default(),
    })
}

/// The value with line breaks removed (folding whitespace kept), as Dovecot's "nolf" output.
fn unfold(value: &[u8]) -> Vec<u8> {
    value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    bytes.get(start..end.max(start)).unwrap_or_default()
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// A header value as SEARCH sees it: RFC 2047 words decoded, unfolded, lower-cased.
fn decode_header_value(value: &[u8]) -> String {
    let mut with_end = value.to_vec();
    if !with_end.ends_with(b"\n") {
        with_end.extend_from_slice(b"\r\n");
    }
    match MessageStream::new(&with_end).parse_unstructured() {
        HeaderValue::Text(text) => text.to_lowercase(),
        _ => String::from_utf8_lossy(trim(&unfold(value))).to_lowercase(),
    }
}

/// The first occurrence of a field, unfolded, leading whitespace skipped (Dovecot gives
/// `""` for an empty field); `None` when absent.
fn first_value(raw: &[u8], header: &Header, name: &str) -> Option<Vec<u8>> {
    let field = fields(raw, header).find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))?;
    let value = unfold(field.value);
    Some(no_nul(trim_start(&value).to_vec()))
}

// ---------------------------------------------------------------------------------------------
// Content-Type and parameters (RFC 2045, RFC 2231)

/// Tokens of a structured MIME header: tokens, quoted strings and `/ ; =` specials, comments
/// skipped.
#[derive(Debug, PartialEq)]
enum MimeToken {
    Word(Vec<u8>),
    Quoted(Vec<u8>),
    Special(u8),
}

fn mime_tokens(value: &[u8]) -> Vec<MimeToken> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&byte) = value.get(i) {
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => i = skip_comment(value, i).0,
            b'"' => {
                let (text, next) = quoted_string(value, i);
                tokens.push(MimeToken::Quoted(text));
                i = next;
            }
            b'/' | b';' | b'=' | b',' => {
                tokens.push(MimeToken::Special(byte));
                i += 1;
            }
            _ => {
                let start = i;
                while let Some(&b) = value.get(i) {
                    if b.is_ascii_whitespace()
                        || matches!(b, b'(' | b'"' | b'/' | b';' | b'=' | b',')
                    {
                        break;
                    }
                    i += 1;
                }
                tokens.push(MimeToken::Word(
                    value.get(start..i).unwrap_or_default().to_vec(),
                ));
            }
        }
    }
    tokens
}

/// Skips a (nested) comment starting at `start`; returns the index after it and its text.
fn skip_comment(value: &[u8], start: usize) -> (usize, Vec<u8>) {
    let mut depth = 0usize;
    let mut text = Vec::new();
    let mut i = start;
    while let Some(&b) = value.get(i) {
        i += 1;
        match b {
            b'\\' => {
                if let Some(&next) = value.get(i) {
                    text.push(next);
                    i += 1;
                }
            }
            b'(' => {
                if depth > 0 {
                    text.push(b);
                }
                depth += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return (i, text);
                }
                text.push(b);
            }
            b'\r' | b'\n' => {}
            _ => text.push(b),
        }
    }
    (i, text)
}

/// A quoted string starting at `start` (the `"`): its unescaped text and the index after it.
fn quoted_string(value: &[u8], start: usize) -> (Vec<u8>, usize) {
    let mut text = Vec::new();
    let mut i = start + 1;
    while let Some(&b) = value.get(i) {
        i += 1;
        match b {
            b'"' => return (text, i),
            b'\\' => {
                if let Some(&next) = value.get(i) {
                    text.push(next);
                    i += 1;
                }
            }
            b'\r' | b'\n' => {}
            _ => text.push(b),
        }
    }
    (text, i)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn parse_content_type(value: &[u8]) -> Option<ContentType> {
    let tokens = mime_tokens(value);
    let (kind, subtype, rest) = match tokens.as_slice() {
        [
            MimeToken::Word(kind),
            MimeToken::Special(b'/'),
            MimeToken::Word(subtype),
            rest @ ..,
        ] => (kind, subtype, rest),
        _ => return None,
    };
    // Dovecot gives up on a Content-Type with junk after the subtype: an empty type.
    if rest.first().is_some_and(|t| *t != MimeToken::Special(b';')) {
        return Some(ContentType {
            kind: String::new(),
            subtype: String::new(),
            written: Some((Vec::new(), Vec::new())),
            params: Vec::new(),
        });
    }
    let params = parse_params(rest);
    Some(ContentType {
        kind: lossy(kind).to_ascii_lowercase(),
        subtype: lossy(subtype).to_ascii_lowercase(),
        written: Some((kind.clone(), subtype.clone())),
        params,
    })
}

/// Parameter names and values as written (values may be 8-bit).
type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// `; name=value` pairs, RFC 2231 continuations joined the way Dovecot reports them: plain
/// pieces concatenated under `name`, pieces with a charset under `name*` still %-encoded.
fn parse_params(tokens: &[MimeToken]) -> Params {
    let mut plain: Params = Vec::new();
    // (name, index, extended, value)
    let mut continued: Vec<(&[u8], u32, bool, &[u8])> = Vec::new();
    let mut i = 0;
    let mut after_semicolon = false;
    while i < tokens.len() {
        // Dovecot skips a parameter not introduced by `;`.
        let (true, Some(MimeToken::Word(name)), Some(MimeToken::Special(b'='))) =
            (after_semicolon, tokens.get(i), tokens.get(i + 1))
        else {
            after_semicolon = tokens.get(i) == Some(&MimeToken::Special(b';'));
            i += 1;
            continue;
        };
        after_semicolon = false;
        let value: &[u8] = match tokens.get(i + 2) {
            Some(MimeToken::Word(v) | MimeToken::Quoted(v)) => {
                i += 3;
                v
            }
            _ => {
                i += 2;
                b""
            }
        };
        // name*N or name*N* is a continuation; name* alone is a single extended value.
        let star = name.iter().position(|&b| b == b'*');
        let split = star.map(|at| (name.get(..at).unwrap_or_default(), name.get(at + 1..)));
        match split {
            Some((base, Some(index))) if !index.is_empty() && index != b"*" => {
                let extended = index.ends_with(b"*");
                let number = index.strip_suffix(b"*").unwrap_or(index);
                match std::str::from_utf8(number)
                    .ok()
                    .and_then(|n| n.parse::<u32>().ok())
                {
                    Some(n) => continued.push((base, n, extended, value)),
                    None => plain.push((name.clone(), value.to_vec())),
                }
            }
            _ => plain.push((name.clone(), value.to_vec())),
        }
    }
    let mut bases: Vec<&[u8]> = Vec::new();
    for (base, ..) in &continued {
        if !bases.iter().any(|b| b.eq_ignore_ascii_case(base)) {
            bases.push(base);
        }
    }
    for base in bases {
        let mut pieces: Vec<&(&[u8], u32, bool, &[u8])> = continued
            .iter()
            .filter(|(b, ..)| b.eq_ignore_ascii_case(base))
            .collect();
        pieces.sort_by_key(|(_, n, ..)| *n);
        let extended = pieces.first().is_some_and(|(_, _, e, _)| *e);
        let mut joined = Vec::new();
        for (_, _, piece_extended, value) in pieces {
            if extended && !piece_extended {
                for &byte in value.iter() {
                    if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
                        joined.push(byte);
                    } else {
                        joined.extend_from_slice(format!("%{byte:02X}").as_bytes());
                    }
                }
            } else {
                joined.extend_from_slice(value);
            }
        }
        let mut name = base.to_vec();
        if extended {
            name.push(b'*');
        }
        plain.push((name, joined));
    }
    plain
}

/// NUL cannot be sent in a string; Dovecot sends 0x80 instead.
fn no_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    for byte in &mut bytes {
        if *byte == 0 {
            *byte = 0x80;
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------------
// BODYSTRUCTURE

fn write_body(raw: &[u8], part: &Part, out: &mut Vec<u8>, extensible: bool) {
    let header = &part.header;
    out.push(b'(');
    if let Kind::Multipart(children) = &part.kind {
        if children.is_empty() {
            // The grammar needs a part: an empty text/plain as Dovecot writes it.
            out.extend_from_slice(
                b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0",
            );
            if extensible {
                out.extend_from_slice(b" NIL NIL NIL NIL");
            }
            out.push(b')');
        }
        for child in children {
            write_body(raw, child, out, extensible);
        }
        out.push(b' ');
        let subtype = part
            .content_type
            .written
            .as_ref()
            .map_or(&b"x-unknown"[..], |(_, s)| s.as_slice());
        string(out, subtype);
        if extensible {
            out.push(b' ');
            write_params(out, &part.content_type.params);
            write_extension(raw, header, out);
        }
        out.push(b')');
        return;
    }

    let ct = &part.content_type;
    let (kind, subtype) = match (&part.kind, &ct.written) {
        // Dovecot spells an embedded message in lower case whatever the header says.
        (Kind::Message(_), _) => (&b"message"[..], &b"rfc822"[..]),
        (_, Some((kind, subtype))) => (kind.as_slice(), subtype.as_slice()),
        (_, None) => (ct.kind.as_bytes(), ct.subtype.as_bytes()),
    };
    string(out, kind);
    out.push(b' ');
    string(out, subtype);
    out.push(b' ');
    if ct.kind == "text" && ct.param("charset").is_none() {
        // Text without a charset is us-ascii (RFC 2045 5.2); Dovecot adds it last.
        let mut params = ct.params.clone();
        params.push((b"charset".to_vec(), b"us-ascii".to_vec()));
        write_params(out, &params);
    } else {
        write_params(out, &ct.params);
    }
    out.push(b' ');
    nstring(out, first_value(raw, header, "content-id").as_deref());
    out.push(b' ');
    nstring(
        out,
        first_value(raw, header, "content-description").as_deref(),
    );
    out.push(b' ');
    let encoding = transfer_encoding(raw, header);
    string(out, encoding.as_deref().unwrap_or("7bit").as_bytes());
    out.push(b' ');
    let body = raw.get(part.body.clone()).unwrap_or_default();
    out.extend_from_slice(body.len().to_string().as_bytes());
    let lines = || body.iter().filter(|&&b| b == b'\n').count().to_string();
    match &part.kind {
        Kind::Message(inner) => {
            out.push(b' ');
            write_envelope(raw, &inner.header, out);
            out.push(b' ');
            write_body(raw, inner, out, extensible);
            out.push(b' ');
            out.extend_from_slice(lines().as_bytes());
        }
        _ if ct.kind == "text" => {
            out.push(b' ');
            out.extend_from_slice(lines().as_bytes());
        }
        _ => {}
    }
    if extensible {
        out.push(b' ');
        nstring(out, first_value(raw, header, "content-md5").as_deref());
        write_extension(raw, header, out);
    }
    out.push(b')');
}

fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, &no_nul(name.clone()));
        out.push(b' ');
        string(out, &no_nul(value.clone()));
    }
    out.push(b')');
}

/// ` disposition language location`.
fn write_extension(raw: &[u8], header: &Header, out: &mut Vec<u8>) {
    out.push(b' ');
    let disposition = first_value(raw, header, "content-disposition").and_then(|value| {
        let tokens = mime_tokens(&value);
        match tokens.split_first() {
            Some((MimeToken::Word(kind), rest)) => Some((kind.clone(), parse_params(rest))),
            _ => None,
        }
    });
    match disposition {
        Some((kind, params)) => {
            out.push(b'(');
            string(out, &kind);
            out.push(b' ');
            write_params(out, &params);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let languages: Vec<Vec<u8>> = first_value(raw, header, "content-language")
        .map(|value| {
            mime_tokens(&value)
                .into_iter()
                .filter_map(|t| match t {
                    MimeToken::Word(w) | MimeToken::Quoted(w) => Some(w),
                    MimeToken::Special(_) => None,
                })
                .collect()
        })
        .unwrap_or_default();
    match languages.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        // Dovecot writes a list even for one language; both forms are valid.
        many => {
            out.push(b'(');
            for (i, language) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, language);
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    nstring(out, first_value(raw, header, "content-location").as_deref());
}

// ---------------------------------------------------------------------------------------------
// Decoding and text search

fn decode_transfer(raw: &[u8], part: &Part, body: &[u8]) -> Result<Vec<u8>, UnknownEncoding> {
    let Some(encoding) = transfer_encoding(raw, &part.header) else {
        // A Content-Transfer-Encoding that is not one token cannot be decoded (Dovecot).
        return match fields(raw, &part.header)
            .find(|f| f.name.eq_ignore_ascii_case(b"content-transfer-encoding"))
        {
            Some(field) => Err(UnknownEncoding(lossy(trim(&unfold(field.value))))),
            None => Ok(body.to_vec()),
        };
    };
    match encoding.to_ascii_lowercase().as_str() {
        "7bit" | "8bit" | "binary" => Ok(body.to_vec()),
        "base64" => Ok(decode_base64(body)),
        "quoted-printable" => Ok(decode_quoted_printable(body)),
        _ => Err(UnknownEncoding(encoding)),
    }
}

/// The body of `part` for BINARY. A multipart or message/rfc822 keeps its structure with
/// every part below it decoded and relabelled `Content-Transfer-Encoding: binary`, as
/// Dovecot does.
fn write_binary_body(
    raw: &[u8],
    added_crs: &[usize],
    part: &Part,
    out: &mut Vec<u8>,
) -> Result<(), UnknownEncoding> {
    let bytes = |range: Range<usize>| raw.get(range).unwrap_or_default();
    match &part.kind {
        Kind::Leaf
            if transfer_encoding(raw, &part.header)
                .is_some_and(|encoding| encoding.eq_ignore_ascii_case("binary")) =>
        {
            // RFC 3516: binary content comes back byte for byte, its bare LFs included.
            let mut pos = part.body.start;
            let first = added_crs.partition_point(|&at| at < part.body.start);
            for &at in added_crs
                .iter()
                .skip(first)
                .take_while(|&&at| at < part.body.end)
            {
                out.extend_from_slice(bytes(pos..at));
                pos = at + 1;
            }
            out.extend_from_slice(bytes(pos..part.body.end.max(pos)));
        }
        Kind::Leaf => {
            let body = bytes(part.body.clone());
            out.extend_from_slice(&decode_transfer(raw, part, body)?);
        }
        Kind::Multipart(children) => {
            let mut pos = part.body.start;
            for child in children {
                let start = child.header.range.start.max(pos);
                out.extend_from_slice(bytes(pos..start));
                pos = write_binary_entity(raw, added_crs, child, out)?.max(pos);
            }
            out.extend_from_slice(bytes(pos..part.body.end.max(pos)));
        }
        Kind::Message(inner) => {
            let pos = write_binary_entity(raw, added_crs, inner, out)?.max(part.body.start);
            out.extend_from_slice(bytes(pos..part.body.end.max(pos)));
        }
    }
    Ok(())
}

/// Header and BINARY body of `part`; returns where the part ends in `raw`.
fn write_binary_entity(
    raw: &[u8],
    added_crs: &[usize],
    part: &Part,
    out: &mut Vec<u8>,
) -> Result<usize, UnknownEncoding> {
    let bytes = |range: Range<usize>| raw.get(range).unwrap_or_default();
    let header = &part.header;
    let decoded = matches!(part.kind, Kind::Leaf)
        && transfer_encoding(raw, header).is_some_and(|e| {
            e.eq_ignore_ascii_case("base64") || e.eq_ignore_ascii_case("quoted-printable")
        });
    if decoded {
        // Dovecot drops the old field and adds the new one after the last field.
        let fields_end = header
            .spans
            .iter()
            .map(|&(.., end)| end)
            .chain(header.junk.iter().map(|r| r.end))
            .max()
            .unwrap_or(header.range.start);
        let mut pos = header.range.start;
        for &(start, colon, end) in &header.spans {
            if trim(bytes(start..colon)).eq_ignore_ascii_case(b"content-transfer-encoding") {
                out.extend_from_slice(bytes(pos..start));
                pos = end;
            }
        }
        out.extend_from_slice(bytes(pos..fields_end.max(pos)));
        if out.last().is_some_and(|&b| b != b'\n') {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Transfer-Encoding: binary\r\n");
        out.extend_from_slice(bytes(fields_end.max(pos)..header.range.end));
    } else {
        out.extend_from_slice(bytes(header.range.clone()));
    }
    let gap_start = header.range.end.min(part.body.start);
    out.extend_from_slice(bytes(gap_start..part.body.start));
    write_binary_body(raw, added_crs, part, out)?;
    Ok(part.body.end.max(header.range.end))
}

/// Lenient base64: characters outside the alphabet are skipped, decoding stops at `=`.
fn decode_base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &byte in input {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// Quoted-printable: `=XX`, soft line breaks, trailing whitespace on lines dropped; invalid
/// escapes kept as written.
fn decode_quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for line in input.split_inclusive(|&b| b == b'\n') {
        let (content, ending): (&[u8], &[u8]) = if let Some(c) = line.strip_suffix(b"\r\n") {
            (c, b"\r\n")
        } else if let Some(c) = line.strip_suffix(b"\n") {
            (c, b"\n")
        } else {
            (line, b"")
        };
        let content_end = content
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |i| i + 1);
        let content = content.get(..content_end).unwrap_or_default();
        let mut i = 0;
        let mut soft_break = false;
        while let Some(&byte) = content.get(i) {
            if byte == b'=' {
                if i + 1 == content.len() {
                    soft_break = true;
                    break;
                }
                let high = content.get(i + 1).and_then(|&b| hex_value(b));
                let low = content.get(i + 2).and_then(|&b| hex_value(b));
                if let (Some(high), Some(low)) = (high, low) {
                    out.push(high << 4 | low);
                    i += 3;
                    continue;
                }
            }
            out.push(byte);
            i += 1;
        }
        if !soft_break {
            out.extend_from_slice(ending);
        }
    }
    out
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Whether a text/* part (or, for TEXT, an embedded message's header) anywhere below `part`
/// contains `needle` (already lower-cased).
/// The decoded, lower-cased text of every text/* part under `part` and, `with_headers`, the
/// decoded header fields of the messages attached under it.
fn collect_texts(raw: &[u8], part: &Part, with_headers: bool, out: &mut Vec<String>) {
    match &part.kind {
        Kind::Multipart(children) => {
            for child in children {
                collect_texts(raw, child, with_headers, out);
            }
        }
        Kind::Message(inner) => {
            if with_headers {
                out.extend(fields(raw, &inner.header).map(|f| decode_header_value(f.value)));
            }
            collect_texts(raw, inner, with_headers, out);
        }
        Kind::Leaf if part.content_type.kind == "text" => {
            let body = raw.get(part.body.clone()).unwrap_or_default();
            let decoded = decode_transfer(raw, part, body).unwrap_or_else(|_| body.to_vec());
            let text = match part
                .content_type
                .param("charset")
                .and_then(|c| mail_parser::decoders::charsets::map::charset_decoder(c))
            {
                Some(decoder) => decoder(&decoded),
                None => String::from_utf8_lossy(&decoded).into_owned(),
            };
            out.push(text.to_lowercase());
        }
        Kind::Leaf => {}
    }
}

mod envelope;
pub mod stream;
#[cfg(test)]
mod tests;
