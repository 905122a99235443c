//! The DATA body decoder.
//!
//! Only `<CR><LF>.<CR><LF>` ends the body (the `<CR><LF>` of the DATA command counts as the
//! first one, so an empty body is just `.<CR><LF>`). A dot at the start of a line is removed
//! (RFC 5321 §4.5.2). A bare LF (not after CR) or a bare CR (not before LF) marks the message
//! as refused: this is Postfix's `smtpd_forbid_bare_newline = reject`, applied to CR too,
//! which closes every SMTP smuggling variant (`\n.\n`, `\r.\r`, `\n.\r\n`, `\r\n.\n`,
//! `\r.\r\n`): none of them ends the body, and the message carrying them is refused.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Just after CRLF (or at the start of the body).
    LineStart,
    /// A dot at the start of a line.
    Dot,
    /// A dot at the start of a line, then CR.
    DotCr,
    /// Inside a line.
    Middle,
    /// CR inside a line.
    Cr,
}

#[derive(Debug)]
pub(crate) struct DataDecoder {
    state: State,
    /// A bare CR or LF was seen; the message must be refused.
    pub(crate) bare_line_ending: bool,
}

impl DataDecoder {
    pub(crate) fn new() -> DataDecoder {
        DataDecoder {
            state: State::LineStart,
            bare_line_ending: false,
        }
    }

    /// Decodes `input`, appending the message bytes (CRLF line endings, dots unstuffed) to
    /// `out`. Returns how many bytes were consumed and whether the end marker was among them;
    /// bytes after the end marker are not consumed (they are the next command).
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
        for (index, &byte) in input.iter().enumerate() {
            if self.step(byte, out) {
                return (index + 1, true);
            }
        }
        (input.len(), false)
    }

    /// One byte; true when it completes the end marker.
    fn step(&mut self, byte: u8, out: &mut Vec<u8>) -> bool {
        match self.state {
            State::LineStart => match byte {
                b'.' => self.state = State::Dot,
                _ => self.middle(byte, out),
            },
            State::Dot => match byte {
                b'\r' => self.state = State::DotCr,
                // The stuffed dot is dropped; the byte after it starts the line's text.
                _ => self.middle(byte, out),
            },
            State::DotCr => {
                if byte == b'\n' {
                    self.state = State::LineStart;
                    return true;
                }
                // `.` CR not followed by LF: a bare CR after an unstuffed dot.
                self.bare_line_ending = true;
                out.push(b'\r');
                self.state = State::Middle;
                self.middle(byte, out);
            }
            State::Middle => self.middle(byte, out),
            State::Cr => match byte {
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.state = State::LineStart;
                }
                _ => {
                    self.bare_line_ending = true;
                    out.push(b'\r');
                    self.state = State::Middle;
                    self.middle(byte, out);
                }
            },
        }
        false
    }

    /// A byte inside a line.
    fn middle(&mut self, byte: u8, out: &mut Vec<u8>) {
        match byte {
            b'\r' => self.state = State::Cr,
            b'\n' => {
                // A bare LF: never a line start, so never the start of an end marker.
                self.bare_line_ending = true;
                out.push(b'\n');
                self.state = State::Middle;
            }
            _ => {
                out.push(byte);
                self.state = State::Middle;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8]) -> (Vec<u8>, usize, bool, bool) {
        let mut decoder = DataDecoder::new();
        let mut out = Vec::new();
        let (consumed, ended) = decoder.feed(input, &mut out);
        (out, consumed, ended, decoder.bare_line_ending)
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf_and_unstuffs() {
        let (out, consumed, ended, bare) = decode(b"a\r\n..b\r\n.\r\nQUIT\r\n");
        assert_eq!(out, b"a\r\n.b\r\n");
        assert_eq!(consumed, 11);
        assert!(ended);
        assert!(!bare);
    }

    #[test]
    fn empty_body() {
        let (out, consumed, ended, _) = decode(b".\r\n");
        assert!(out.is_empty());
        assert_eq!(consumed, 3);
        assert!(ended);
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let input = b"x\r\n.y\r\nz\r\n.\r\n";
        let mut decoder = DataDecoder::new();
        let mut out = Vec::new();
        let mut ended_at = None;
        for (index, byte) in input.iter().enumerate() {
            if decoder.feed(std::slice::from_ref(byte), &mut out).1 {
                ended_at = Some(index);
                break;
            }
        }
        assert_eq!(ended_at, Some(input.len() - 1));
        assert_eq!(out, b"x\r\ny\r\nz\r\n");
    }

    #[test]
    fn smuggling_variants_never_end_and_are_flagged() {
        for variant in [
            &b"a\n.\nMAIL FROM:<x@y.z>\r\n"[..],
            b"a\r.\rMAIL FROM:<x@y.z>\r\n",
            b"a\n.\r\nMAIL FROM:<x@y.z>\r\n",
            b"a\r\n.\nMAIL FROM:<x@y.z>\r\n",
            b"a\r.\r\nMAIL FROM:<x@y.z>\r\n",
        ] {
            let (_, consumed, ended, bare) = decode(variant);
            assert!(!ended, "{variant:?} ended DATA");
            assert_eq!(consumed, variant.len());
            assert!(bare, "{variant:?} not flagged");
        }
    }
}
