//! A multi-line response body (RFC 1939 3): the wire form of a message with every line that
//! starts with `.` given one more, cut after the header and `n` body lines for TOP, ended
//! with CRLF (added when the message lacks it) and `.` CRLF. It takes the message a piece
//! at a time, so RETR holds one buffer, not the message.

use mailstead_store::form::find_lf;

/// Where the walk through the message is.
#[derive(Debug)]
pub struct MultiLine {
    /// Bytes of the current line so far (0: at the start of a line).
    line_len: usize,
    /// The header's empty line has been passed.
    in_body: bool,
    /// Body lines still to send (TOP); `None`: all.
    body_lines_left: Option<u64>,
    /// Nothing more is sent (TOP's lines are out).
    done: bool,
}

impl MultiLine {
    /// The whole message (RETR).
    pub fn whole() -> MultiLine {
        MultiLine {
            line_len: 0,
            in_body: false,
            body_lines_left: None,
            done: false,
        }
    }

    /// The header, the empty line and `lines` lines of the body (TOP).
    pub fn top(lines: u32) -> MultiLine {
        MultiLine {
            body_lines_left: Some(u64::from(lines)),
            ..MultiLine::whole()
        }
    }

    /// RETR's walk, not TOP's.
    pub fn is_whole_message(&self) -> bool {
        self.body_lines_left.is_none()
    }

    /// Whether the rest of the message is not needed.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Appends the next piece of the message's wire form (CRLF line ends), dot-stuffed.
    pub fn push(&mut self, mut wire: &[u8], out: &mut Vec<u8>) {
        out.reserve(wire.len() + 8);
        while !wire.is_empty() && !self.done {
            if self.line_len == 0 {
                if self.in_body && self.body_lines_left == Some(0) {
                    self.done = true;
                    return;
                }
                if wire.first() == Some(&b'.') {
                    out.push(b'.');
                }
            }
            match find_lf(wire, 0) {
                Some(lf) => {
                    out.extend_from_slice(wire.get(..=lf).unwrap_or_default());
                    let line_len = self.line_len + lf + 1;
                    self.line_len = 0;
                    if self.in_body {
                        self.body_lines_left = self.body_lines_left.map(|n| n.saturating_sub(1));
                    } else if line_len <= 2 {
                        // The empty line (CRLF) that ends the header.
                        self.in_body = true;
                    }
                    wire = wire.get(lf + 1..).unwrap_or_default();
                }
                None => {
                    out.extend_from_slice(wire);
                    self.line_len += wire.len();
                    wire = &[];
                }
            }
        }
    }

    /// Ends the response: CRLF if the last line has none, then `.` CRLF.
    pub fn finish(self, out: &mut Vec<u8>) {
        if self.line_len != 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces of every size, which must all give the same answer.
    fn send(mut walk: impl FnMut() -> MultiLine, wire: &[u8]) -> Vec<u8> {
        let mut first: Option<Vec<u8>> = None;
        for piece in 1..=wire.len().max(1) {
            let mut multi = walk();
            let mut out = Vec::new();
            for chunk in wire.chunks(piece) {
                multi.push(chunk, &mut out);
            }
            multi.finish(&mut out);
            match &first {
                None => first = Some(out),
                Some(first) => assert_eq!(&out, first, "piece size {piece}"),
            }
        }
        first.unwrap_or_default()
    }

    #[test]
    fn lines_starting_with_a_dot_get_another() {
        let out = send(
            MultiLine::whole,
            b"Subject: x\r\n\r\n.\r\n..two\r\nend.\r\n.",
        );
        assert_eq!(
            out,
            b"Subject: x\r\n\r\n..\r\n...two\r\nend.\r\n..\r\n.\r\n"
        );
    }

    #[test]
    fn a_message_without_a_final_line_end_gets_one() {
        assert_eq!(
            send(MultiLine::whole, b"a\r\n\r\nbody"),
            b"a\r\n\r\nbody\r\n.\r\n"
        );
        assert_eq!(send(MultiLine::whole, b""), b".\r\n");
    }

    #[test]
    fn top_sends_the_header_and_n_body_lines() {
        let message = b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n.three\r\n";
        assert_eq!(
            send(|| MultiLine::top(0), message),
            b"A: 1\r\nB: 2\r\n\r\n.\r\n"
        );
        assert_eq!(
            send(|| MultiLine::top(1), message),
            b"A: 1\r\nB: 2\r\n\r\none\r\n.\r\n"
        );
        assert_eq!(
            send(|| MultiLine::top(3), message),
            b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n..three\r\n.\r\n"
        );
        assert_eq!(
            send(|| MultiLine::top(100), message),
            send(MultiLine::whole, message)
        );
        // A header without the empty line: all of it.
        assert_eq!(
            send(|| MultiLine::top(0), b"A: 1\r\nB: 2"),
            b"A: 1\r\nB: 2\r\n.\r\n"
        );
    }
}
