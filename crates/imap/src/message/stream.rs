//! The whole message in its CRLF form, or a `<partial>` of it, read from the stored file
//! (LF line ends) a buffer at a time: FETCH `BODY[]`, `BODY[TEXT]`, `RFC822` and `BINARY[]`
//! of a 30 MB
//! message hold a buffer, not the message. One pass over the file finds the CRLF size (the
//! literal's length, which comes first), where the partial starts in the file and whether it
//! has a NUL (BINARY's `~`); a second pass converts on the fly.

use std::io::{self, Read};

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

/// Reads `stored` once: the span of the CRLF form (of the message or its body) from `offset`
/// on, at most `count` bytes (`None`: to the end), clamped as FETCH's partials are.
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
    // Position in the CRLF form, and in the file.
    let mut crlf = 0u64;
    let mut file = 0u64;
    let mut previous = None;
    // Bytes of the current stored line before its LF.
    let mut line_bytes = 0u64;
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
        for &byte in buffer.get(..read).unwrap_or_default() {
            let bare_lf = byte == b'\n' && previous != Some(b'\r');
            if let Some((first, last)) = range {
                if bare_lf && crlf == first && start.is_none() {
                    // The answer starts with the added CR: the LF after it is stored here.
                    start = Some((file, false));
                }
                // On an LF the answer starts after its CR, stored or added.
                let at = if bare_lf { crlf + 1 } else { crlf };
                if at == first && start.is_none() {
                    start = Some((file, byte == b'\n'));
                }
                has_nul |= byte == 0 && at >= first && last.is_none_or(|last| at < last);
            }
            crlf += if bare_lf { 2 } else { 1 };
            file += 1;
            if byte == b'\n' {
                // An empty line (`LF` or `CR LF`) ends the header.
                if range.is_none()
                    && (line_bytes == 0 || line_bytes == 1 && previous == Some(b'\r'))
                {
                    range = Some(range_from(crlf, offset, count));
                }
                line_bytes = 0;
            } else {
                line_bytes += 1;
            }
            previous = Some(byte);
        }
    }
    // A header without an empty line has an empty body at the end.
    let (first, last) = range.unwrap_or_else(|| range_from(crlf, offset, count));
    let (stored_start, starts_after_cr) = start.unwrap_or((file, false));
    let first = first.min(crlf);
    let len = last.map_or(crlf, |last| last.min(crlf)).max(first) - first;
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
    previous_cr: bool,
    /// A NUL goes out as 0x80, as in every section but `BODY[]` and `BINARY` (a literal
    /// cannot carry NUL; Dovecot does the same).
    replace_nul: bool,
}

impl CrlfWriter {
    /// For the bytes of the file from `span.stored_start` on.
    pub fn new(span: &Span, replace_nul: bool) -> CrlfWriter {
        CrlfWriter {
            remaining: span.len,
            previous_cr: span.starts_after_cr,
            replace_nul,
        }
    }

    /// Whether every byte of the answer has been written.
    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }

    /// Appends the CRLF form of the next stored bytes to `out`, never more than the span.
    pub fn convert(&mut self, stored: &[u8], out: &mut Vec<u8>) {
        for &byte in stored {
            if self.remaining == 0 {
                return;
            }
            if byte == b'\n' && !self.previous_cr {
                out.push(b'\r');
                self.remaining -= 1;
                if self.remaining == 0 {
                    return;
                }
            }
            out.push(if byte == 0 && self.replace_nul {
                0x80
            } else {
                byte
            });
            self.remaining -= 1;
            self.previous_cr = byte == b'\r';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, to_crlf};

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
        let whole = to_crlf(stored).into_owned();
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

    #[test]
    fn large_input_in_buffer_sized_pieces() {
        let stored: Vec<u8> = b"0123456789abcdef\n".repeat(BUFFER / 4);
        let whole = to_crlf(&stored).into_owned();
        let (span, out) = streamed(&stored, 100_000, Some(70_000));
        assert_eq!(span.len, 70_000);
        assert_eq!(out, &whole[100_000..170_000]);
    }
}
