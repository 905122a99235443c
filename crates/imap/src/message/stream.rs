//! The whole message in its CRLF form, or a `<partial>` of it, read from the stored file
//! (LF line ends) a buffer at a time: FETCH `BODY[]`, `BODY[TEXT]`, `RFC822` and `BINARY[]`
//! of a 30 MB
//! message hold a buffer, not the message. One pass over the file finds the CRLF size (the
//! literal's length, which comes first), where the partial starts in the file and whether it
//! has a NUL (BINARY's `~`), stopping where a partial ends; a second pass converts on the
//! fly. Both convert with the store's `form::WireForm`, the one LF-to-CRLF rule. Messages
//! small enough to hold are answered from one read instead (FETCH's `SMALL_ENOUGH_TO_HOLD`).

use std::io::{self, Read};

use mailstead_store::form::{WireForm, find_lf};

/// What the first pass learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Bytes of the answer (the literal's length).
    pub len: u64,
    /// Where in the stored file the answer starts.
    pub stored_start: u64,
    /// The answer starts on the LF of a line end: its CR (stored or added) is not sent.
    pub starts_after_cr: bool,
    /// The answer has a NUL byte.
    pub has_nul: bool,
}

/// Where the answer is cut from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum From {
    /// The whole message.
    Message,
    /// The body after the header's first empty line (`TEXT`), as `Message::section` cuts it.
    Body,
}

/// Reads `stored` once, up to the end of the answer: the span of the CRLF form (of the
/// message or its body) from `offset` on, at most `count` bytes (`None`: to the end),
/// clamped as FETCH's partials are. A partial that ends before the file does is found
/// without reading the rest.
///
/// # Errors
///
/// Reading the file.
pub fn scan(
    mut stored: impl Read,
    from: From,
    offset: u64,
    count: Option<u64>,
) -> io::Result<Span> {
    let mut buffer = vec![0u8; BUFFER];
    let mut wire = Vec::with_capacity(BUFFER * 2);
    let mut added = Vec::new();
    let mut form = WireForm::default();
    // Bytes of the file read.
    let mut file = 0u64;
    // Where the current line starts in the CRLF form, until the header's end is found.
    let mut line_start = 0u64;
    // Where the answer's range starts and ends in the CRLF form; for `Body` known only once
    // the header's empty line is passed.
    let mut range = match from {
        From::Message => Some(range_from(0, offset, count)),
        From::Body => None,
    };
    let mut start = None;
    let mut has_nul = false;
    loop {
        let read = stored.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        let piece = buffer.get(..read).unwrap_or_default();
        let piece_file = file;
        file += read as u64;
        let piece_start = form.len();
        wire.clear();
        added.clear();
        form.convert_noting(piece, &mut wire, |at| added.push(at));
        let piece_end = form.len();
        if range.is_none() {
            let mut next = 0;
            while let Some(lf) = find_lf(&wire, next) {
                let lf_at = piece_start + lf as u64;
                // Every LF of the CRLF form follows a CR: a line of one byte is empty.
                if lf_at == line_start + 1 {
                    range = Some(range_from(lf_at + 1, offset, count));
                    break;
                }
                line_start = lf_at + 1;
                next = lf + 1;
            }
        }
        if let Some((first, last)) = range {
            if start.is_none() && (piece_start..piece_end).contains(&first) {
                let at = (first - piece_start) as usize;
                // Before `at`, the piece has `at` bytes of CRLF form, some of them added CRs.
                let added_before = added.partition_point(|&cr| cr < at);
                // On an LF the answer starts after its CR, stored or added.
                start = Some((
                    piece_file + (at - added_before) as u64,
                    wire.get(at) == Some(&b'\n'),
                ));
            }
            // The answer's bytes in this piece.
            let within = |at: u64| (at.clamp(piece_start, piece_end) - piece_start) as usize;
            let (low, high) = (within(first), last.map_or(wire.len(), within));
            has_nul |= wire
                .get(low..high.max(low))
                .is_some_and(|answer| answer.contains(&0));
            if last.is_some_and(|last| last <= piece_end) {
                break;
            }
        }
    }
    let total = form.len();
    // A header without an empty line has an empty body at the end.
    let (first, last) = range.unwrap_or_else(|| range_from(total, offset, count));
    let (stored_start, starts_after_cr) = start.unwrap_or((file, false));
    let first = first.min(total);
    let len = last.map_or(total, |last| last.min(total)).max(first) - first;
    Ok(Span {
        len,
        stored_start,
        starts_after_cr,
        has_nul,
    })
}

/// The CRLF range of a partial of what starts at `base`.
fn range_from(base: u64, offset: u64, count: Option<u64>) -> (u64, Option<u64>) {
    let first = base.saturating_add(offset);
    (first, count.map(|count| first.saturating_add(count)))
}

/// The read size of both passes: what one FETCH holds of a message.
pub const BUFFER: usize = 64 * 1024;

/// The second pass: stored bytes in, CRLF bytes out, exactly `span.len` of them.
#[derive(Debug)]
pub struct CrlfWriter {
    remaining: u64,
    wire: WireForm,
    /// A NUL goes out as 0x80, as in every section but `BODY[]` and `BINARY` (a literal
    /// cannot carry NUL; Dovecot does the same).
    replace_nul: bool,
}

impl CrlfWriter {
    /// For the bytes of the file from `span.stored_start` on.
    pub fn new(span: &Span, replace_nul: bool) -> CrlfWriter {
        CrlfWriter {
            remaining: span.len,
            wire: WireForm::after_cr(span.starts_after_cr),
            replace_nul,
        }
    }

    /// Whether every byte of the answer has been written.
    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }

    /// Appends the CRLF form of the next stored bytes to `out`, never more than the span.
    pub fn convert(&mut self, stored: &[u8], out: &mut Vec<u8>) {
        if self.remaining == 0 {
            return;
        }
        let start = out.len();
        self.wire.convert(stored, out);
        let kept = ((out.len() - start) as u64).min(self.remaining);
        self.remaining -= kept;
        out.truncate(start + usize::try_from(kept).unwrap_or(usize::MAX));
        if self.replace_nul {
            for byte in out.get_mut(start..).unwrap_or_default() {
                if *byte == 0 {
                    *byte = 0x80;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use mailstead_store::form::to_wire;

    /// Both passes over `stored`, as FETCH runs them.
    fn streamed(stored: &[u8], offset: u64, count: Option<u64>) -> (Span, Vec<u8>) {
        streamed_from(stored, From::Message, offset, count)
    }

    fn streamed_from(
        stored: &[u8],
        from: From,
        offset: u64,
        count: Option<u64>,
    ) -> (Span, Vec<u8>) {
        let span = scan(stored, from, offset, count).unwrap();
        let mut writer = CrlfWriter::new(&span, from == From::Body);
        let mut out = Vec::new();
        let start = usize::try_from(span.stored_start).unwrap();
        for chunk in stored.get(start..).unwrap().chunks(3) {
            writer.convert(chunk, &mut out);
        }
        assert!(writer.is_done());
        (span, out)
    }

    #[test]
    fn every_partial_matches_the_converted_message_sliced() {
        let stored: &[u8] = b"A: b\nC: d\r\n\nline\n\nx\0y\r\nlast\rline\n";
        let whole = to_wire(stored).into_owned();
        for offset in 0..=whole.len() + 2 {
            for count in [None, Some(0), Some(1), Some(2), Some(5), Some(100)] {
                let (span, out) = streamed(stored, offset as u64, count.map(|c: usize| c as u64));
                let start = offset.min(whole.len());
                let end = count.map_or(whole.len(), |c| (start + c).min(whole.len()));
                let expected = &whole[start..end];
                assert_eq!(out, expected, "offset {offset} count {count:?}");
                assert_eq!(span.len as usize, expected.len());
                assert_eq!(span.has_nul, expected.contains(&0), "offset {offset}");
            }
        }
    }

    #[test]
    fn text_partials_match_the_section() {
        use crate::command::{Section, SectionText};
        let text = Section {
            part: Vec::new(),
            text: Some(SectionText::Text),
        };
        for stored in [
            &b"A: b\n\nbody\nx\r\n"[..],
            b"A: b\r\nC: d\r\n\r\n\nbody\r\n",
            b"A: b\nno empty line\n",
            b"\nstarts empty\n",
            b"A: b\r\n\r\n",
            b"A: b\n\r\n\r\nlast",
        ] {
            let whole = Message::parse(stored).section(&text).unwrap();
            for offset in 0..=whole.len() + 1 {
                for count in [None, Some(1), Some(3)] {
                    let (span, out) =
                        streamed_from(stored, From::Body, offset as u64, count.map(|c| c as u64));
                    let start = offset.min(whole.len());
                    let end = count.map_or(whole.len(), |c| (start + c).min(whole.len()));
                    assert_eq!(out, &whole[start..end], "{stored:?} <{offset}.{count:?}>");
                    assert_eq!(span.len as usize, end - start);
                }
            }
        }
    }

    /// A partial near the start of a large file is found without reading the rest of the
    /// file; the whole message is read to its end.
    #[test]
    fn a_partial_reads_the_file_only_up_to_its_end() {
        use std::io::{Seek, SeekFrom, Write};
        let mut stored = b"A: b\n\n".to_vec();
        stored.extend(b"0123456789abcdef\n".repeat(2 * 1024 * 1024 / 17));
        let whole = to_wire(&stored).into_owned();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&stored).unwrap();
        for from in [From::Message, From::Body] {
            file.seek(SeekFrom::Start(0)).unwrap();
            let span = scan(&mut file, from, 100, Some(1024)).unwrap();
            assert_eq!(span.len, 1024);
            let read = file.stream_position().unwrap();
            assert!(read <= BUFFER as u64, "{from:?}: {read} bytes read");
        }
        file.seek(SeekFrom::Start(0)).unwrap();
        let span = scan(&mut file, From::Message, 0, None).unwrap();
        assert_eq!(span.len, whole.len() as u64);
        assert_eq!(file.stream_position().unwrap(), stored.len() as u64);
    }

    #[test]
    fn large_input_in_buffer_sized_pieces() {
        let stored: Vec<u8> = b"0123456789abcdef\n".repeat(BUFFER / 4);
        let whole = to_wire(&stored).into_owned();
        let (span, out) = streamed(&stored, 100_000, Some(70_000));
        assert_eq!(span.len, 70_000);
        assert_eq!(out, &whole[100_000..170_000]);
    }
}
