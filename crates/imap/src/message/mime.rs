//! The MIME tree: where each part's header and body are, found the way Dovecot finds
//! them (boundaries, nesting and part counts bounded).

use super::*;

/// A `--boundary` line found while scanning.
#[derive(Debug, Clone, Copy)]
pub(super) struct BoundaryLine {
    /// Where the line starts.
    pub(super) start: usize,
    /// Where the line after it starts (or the end of the message).
    pub(super) next: usize,
    /// Index of the matching boundary in the parser's stack.
    pub(super) level: usize,
    /// `--boundary--`.
    pub(super) close: bool,
}

/// One pass over the message with the stack of the enclosing multiparts' boundaries, as
/// Dovecot's parser does: a line ends the current part when it starts with `--` and one of the
/// active boundaries (the longest that matches wins), so an unterminated inner multipart ends
/// at its parent's boundary.
pub(super) struct Parser<'a> {
    pub(super) raw: &'a [u8],
    pub(super) boundaries: Vec<Vec<u8>>,
    pub(super) budget: usize,
}

impl Parser<'_> {
    /// The first boundary line at or after the line starting at `pos`.
    pub(super) fn next_boundary(&self, mut pos: usize) -> Option<BoundaryLine> {
        if self.boundaries.is_empty() {
            return None;
        }
        while pos < self.raw.len() {
            let rest = self.raw.get(pos..).unwrap_or_default();
            let line_len = find_lf(rest, 0).map_or(rest.len(), |lf| lf + 1);
            if let Some(found) = self.boundary_at(pos, line_len) {
                return Some(found);
            }
            pos += line_len;
        }
        None
    }

    pub(super) fn boundary_at(&self, start: usize, line_len: usize) -> Option<BoundaryLine> {
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
    pub(super) fn content_end(&self, from: usize, boundary: Option<BoundaryLine>) -> usize {
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
    pub(super) fn entity(
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
            let line_len = find_lf(rest, 0).map_or(rest.len(), |lf| lf + 1);
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
    pub(super) fn multipart(
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
pub(super) fn header_end(raw: &[u8], range: Range<usize>) -> usize {
    let mut line = range.start;
    while line < range.end {
        let rest = raw.get(line..range.end).unwrap_or_default();
        if rest.starts_with(b"\r\n") {
            return line + 2;
        }
        if rest.starts_with(b"\n") {
            return line + 1;
        }
        match find_lf(rest, 0) {
            Some(lf) => line += lf + 1,
            None => break,
        }
    }
    range.end
}

pub(super) fn transfer_encoding(raw: &[u8], header: &Header) -> Option<String> {
    let field =
        fields(raw, header).find(|f| f.name.eq_ignore_ascii_case(b"content-transfer-encoding"))?;
    // One token, or Dovecot ignores the field (`8 bit` is 7bit).
    match mime_tokens(field.value).as_slice() {
        [MimeToken::Word(token)] => Some(lossy(token)),
        _ => None,
    }
}
