//! Header fields: where each field is in a header, unfolding, and the values SEARCH and
//! ENVELOPE read.

use super::*;

pub(super) struct Field<'a> {
    pub(super) name: &'a [u8],
    /// After the colon, up to and including the final line ending, folded lines included.
    pub(super) value: &'a [u8],
}

/// A header block and where its fields are, found once at parse time (FETCH and SEARCH look
/// fields up many times).
#[derive(Debug, Clone)]
pub(super) struct Header {
    pub(super) range: Range<usize>,
    /// Per field: where it starts, its colon, where it ends (absolute offsets).
    pub(super) spans: Vec<(usize, usize, usize)>,
    /// Lines (with their continuations) that have no field name: kept by
    /// HEADER.FIELDS.NOT, as Dovecot does, and invisible otherwise.
    pub(super) junk: Vec<Range<usize>>,
}

impl Header {
    /// Indexes the fields of the block at `range`. Lines without a colon are skipped.
    pub(super) fn new(raw: &[u8], range: Range<usize>) -> Header {
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
                match find_lf(rest, end) {
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
    pub(super) fn truncate(&mut self, end: usize) {
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
pub(super) fn fields<'a>(
    raw: &'a [u8],
    header: &'a Header,
) -> impl Iterator<Item = Field<'a>> + 'a {
    header.spans.iter().map(move |&(start, colon, end)| Field {
        name: trim(raw.get(start..colon).unwrap_or_default()),
        value: raw.get(colon + 1..end).unwrap_or_default(),
    })
}

/// The value with line breaks removed (folding whitespace kept), as Dovecot's "nolf" output.
pub(super) fn unfold(value: &[u8]) -> Vec<u8> {
    value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

pub(super) fn trim(bytes: &[u8]) -> &[u8] {
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

pub(super) fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// A header value as SEARCH sees it: RFC 2047 words decoded, unfolded, lower-cased.
pub(super) fn decode_header_value(value: &[u8]) -> String {
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
pub(super) fn first_value(raw: &[u8], header: &Header, name: &str) -> Option<Vec<u8>> {
    let field = fields(raw, header).find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))?;
    let value = unfold(field.value);
    Some(no_nul(trim_start(&value).to_vec()))
}
