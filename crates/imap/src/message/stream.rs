//! The whole message in its CRLF form, or a `<partial>` of it, read from the stored file
//! (LF line ends) a buffer at a time: FETCH `BODY[]`, `RFC822` and `BINARY[]` of a 30 MB
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

/// Reads `stored` once: the span of the CRLF form from `offset` on, at most `count` bytes
/// (`None`: to the end), clamped to the message as FETCH's partials are.
///
/// # Errors
///
/// Reading the file.
pub fn scan(mut stored: impl Read, offset: u64, count: Option<u64>) -> io::Result<Span> {
    let mut buffer = vec![0u8; BUFFER];
    // Position in the CRLF form, and in the file.
    let mut crlf = 0u64;
    let mut file = 0u64;
    let mut previous = None;
    let mut start = None;
    let mut has_nul = false;
    let end = count.map(|count| offset.saturating_add(count));
    let in_range = |at: u64| at >= offset && end.is_none_or(|end| at < end);
    loop {
        let read = stored.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        for &byte in buffer.get(..read).unwrap_or_default() {
            if byte == b'\n' && previous != Some(b'\r') {
                // The added CR is at `crlf`, the LF after it.
                if crlf == offset && start.is_none() {
                    start = Some((file, false));
                }
                crlf += 1;
            }
            if crlf == offset && start.is_none() {
                // On an LF the answer starts after its CR, stored or added.
                start = Some((file, byte == b'\n'));
            }
            has_nul |= byte == 0 && in_range(crlf);
            crlf += 1;
            file += 1;
            previous = Some(byte);
        }
    }
    let (stored_start, starts_after_cr) = start.unwrap_or((file, false));
    let from = offset.min(crlf);
    let len = end.map_or(crlf, |end| end.min(crlf)) - from;
    Ok(Span {
        len,
        stored_start,
        starts_after_cr,
        has_nul,
    })
}

/// The read size of both passes: what one FETCH holds of a message.
pub const BUFFER: usize = 64 * 1024;

/// The second pass: stored bytes in, CRLF bytes out, exactly `span.len` of them.
#[derive(Debug)]
pub struct CrlfWriter {
    remaining: u64,
    previous_cr: bool,
}

impl CrlfWriter {
    /// For the bytes of the file from `span.stored_start` on.
    pub fn new(span: &Span) -> CrlfWriter {
        CrlfWriter {
            remaining: span.len,
            previous_cr: span.starts_after_cr,
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
            out.push(byte);
            self.remaining -= 1;
            self.previous_cr = byte == b'\r';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::to_crlf;

    /// Both passes over `stored`, as FETCH runs them.
    fn streamed(stored: &[u8], offset: u64, count: Option<u64>) -> (Span, Vec<u8>) {
        let span = scan(stored, offset, count).unwrap();
        let mut writer = CrlfWriter::new(&span);
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
    fn large_input_in_buffer_sized_pieces() {
        let stored: Vec<u8> = b"0123456789abcdef\n".repeat(BUFFER / 4);
        let whole = to_crlf(&stored).into_owned();
        let (span, out) = streamed(&stored, 100_000, Some(70_000));
        assert_eq!(span.len, 70_000);
        assert_eq!(out, &whole[100_000..170_000]);
    }
}
