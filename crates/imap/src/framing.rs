//! Finding where one command ends: a command is a line, or several lines joined by literals
//! (`{n}`, `{n+}` from LITERAL+, `~{n}` from BINARY). The framer enforces the size limits before
//! the bytes are buffered, so a client cannot make the server hold more than `max_command`
//! bytes, and it answers literals the way RFC 3501 and RFC 7888 want (continuation for a
//! synchronizing literal, `NO [TOOBIG]` for one that is too big; a non-synchronizing one that
//! is too big is on its way already: `NO [TOOBIG]` with its bytes dropped as they arrive,
//! never buffered, when it is at most `max_discard`, else `BYE`).
//!
//! An APPEND message literal over [`STREAM_LITERAL_ABOVE`] is not buffered: the framer hands
//! out the command up to it ([`Frame::Stream`]), the session takes its bytes as they arrive
//! ([`CommandFramer::take_streamed`]) into the spool, and then the rest of the command line
//! ([`Frame::Rest`]). Memory per connection stays one read whatever the message's size.
//!
//! Bare LF line ends are accepted like CRLF. A [`Frame::Command`] always ends with CRLF;
//! a bare LF after a literal announcement inside it is kept as sent (`parse_command` takes
//! both). Literal contents are never touched.

/// The largest refused non-synchronizing literal a logged-in client's connection survives:
/// its bytes are dropped as they come (no memory), so the bound is only on the time spent
/// reading what will be thrown away.
pub const MAX_DISCARD: u64 = 1 << 30;

/// APPEND message literals larger than this are streamed to disk instead of buffered.
pub const STREAM_LITERAL_ABOVE: u64 = 64 * 1024;

/// Size limits for one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramingLimits {
    /// One line without its literals.
    pub max_line: usize,
    /// One literal (APPEND's message).
    pub max_literal: usize,
    /// The whole command, literals included.
    pub max_command: usize,
    /// A non-synchronizing literal over `max_literal` but at most this big is read and
    /// dropped, and the command refused with `NO [TOOBIG]` (RFC 7888 4); a bigger one (or
    /// any, when 0) ends the connection with `BYE`.
    pub max_discard: u64,
}

impl Default for FramingLimits {
    fn default() -> Self {
        FramingLimits {
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_command: 64 * 1024 * 1024 + 64 * 1024,
            max_discard: 0,
        }
    }
}

/// What the session does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// One whole command, literals inline, ending with CRLF: feed it to `parse_command`.
    Command(Vec<u8>),
    /// A synchronizing literal was announced and accepted: send `+ Ready for literal data`.
    Continue,
    /// An APPEND whose message literal is streamed: `head` is the command up to and including
    /// the literal's announcement and line end. The session either takes the literal
    /// ([`CommandFramer::accept_stream`], then [`CommandFramer::take_streamed`] until it is
    /// complete, then [`Frame::Rest`]) or refuses it ([`CommandFramer::refuse_stream`]).
    Stream {
        head: Vec<u8>,
        size: u64,
        synchronizing: bool,
    },
    /// The rest of the command line after a streamed literal, with its line end.
    Rest(Vec<u8>),
    /// The command is refused; `response` is the text after the tag (`* ` when `tag` is
    /// `None`). The rest of that command has been, or will be, discarded.
    Reject {
        tag: Option<String>,
        response: String,
    },
    /// Send `* <response>` and close: the client is sending bytes we will not take.
    Fatal { response: String },
}

/// A raw line (see [`CommandFramer::next_line`]) was longer than `max_line`; the rest of it is
/// discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line too long")]
pub struct LineTooLong;

/// What a read between commands may fill, and what an empty buffer keeps: idle connections
/// must stay cheap.
const IDLE_CAPACITY: usize = 256;
/// What a read in the middle of a command may fill.
const BUSY_READ: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Scanning a line of the current command (which starts at `buf[0]`).
    Line {
        /// Bytes before this are scanned.
        scan: usize,
        /// Where this line starts (after the previous literal, if any).
        line_start: usize,
        /// Inside a quoted string (a `{n}` there is not a literal).
        quoted: bool,
        /// The previous byte was a backslash inside a quoted string.
        escaped: bool,
    },
    /// Waiting for a literal's bytes; it ends at `buf[end]`.
    Literal { end: usize },
    /// Dropping bytes up to and including the next LF (after a rejected line).
    Discard,
    /// Dropping the bytes of a refused non-synchronizing literal; then `Discard`.
    SkipLiteral { remaining: u64 },
    /// A streamed literal ([`Frame::Stream`]) of which `remaining` bytes have not been taken;
    /// `accepted` once the session took it (and sent the continuation of a synchronizing
    /// one).
    Stream {
        remaining: u64,
        synchronizing: bool,
        accepted: bool,
    },
    /// After a streamed literal: the rest of its command line.
    Rest,
    /// After [`Frame::Fatal`]: nothing more is taken.
    Closed,
}

const FRESH_LINE: State = State::Line {
    scan: 0,
    line_start: 0,
    quoted: false,
    escaped: false,
};

/// Splits the byte stream of one connection into commands.
#[derive(Debug)]
pub struct CommandFramer {
    limits: FramingLimits,
    /// Received bytes; the current command starts at `buf[head]`. Positions in `State` are
    /// relative to `head`, so that consumed commands are dropped lazily (no quadratic
    /// shifting when many small commands arrive in one read).
    buf: Vec<u8>,
    head: usize,
    state: State,
}

impl CommandFramer {
    pub fn new(limits: FramingLimits) -> Self {
        CommandFramer {
            limits,
            buf: Vec::new(),
            head: 0,
            state: FRESH_LINE,
        }
    }

    /// Changes the limits for the commands not yet scanned (the session passes from the
    /// small pre-login limits to the authenticated ones, and back for a new session state).
    /// Only called between commands, so the current command is scanned under one set.
    pub fn set_limits(&mut self, limits: FramingLimits) {
        self.limits = limits;
    }

    /// Bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        let start = self.buf.len();
        self.buf.extend_from_slice(bytes);
        self.absorb(start);
    }

    /// The buffer the next read appends to, with room for it: [`IDLE_CAPACITY`] between
    /// commands, so that an idle connection holds no more than that, [`BUSY_READ`] inside
    /// one. Call [`CommandFramer::absorb`] with the length it had before the read.
    pub fn read_buffer(&mut self) -> &mut Vec<u8> {
        self.compact();
        let room = if self.buf.is_empty() && self.state == FRESH_LINE {
            if self.buf.capacity() > IDLE_CAPACITY {
                self.buf = Vec::new();
            }
            IDLE_CAPACITY
        } else {
            BUSY_READ
        };
        self.buf.reserve_exact(room);
        &mut self.buf
    }

    /// Takes the bytes appended to the buffer from `start` on: bytes being dropped (a
    /// refused literal, the rest of a refused line) go at once, never kept.
    pub fn absorb(&mut self, start: usize) {
        if start > self.buf.len() {
            return;
        }
        if let State::SkipLiteral { remaining } = self.state {
            let arrived = self.buf.len() - start;
            let skipped = usize::try_from(remaining).map_or(arrived, |r| r.min(arrived));
            self.buf.drain(start..start + skipped);
            self.state = match remaining - skipped as u64 {
                0 => State::Discard,
                remaining => State::SkipLiteral { remaining },
            };
        }
        match self.state {
            State::Closed | State::SkipLiteral { .. } => self.buf.truncate(start),
            // Dropped here rather than buffered: an over-long line never sits in memory.
            State::Discard => {
                let new = self.buf.get(start..).unwrap_or_default();
                match new.iter().position(|&b| b == b'\n') {
                    Some(lf) => {
                        self.buf.drain(start..=start + lf);
                        self.state = FRESH_LINE;
                    }
                    None => self.buf.truncate(start),
                }
            }
            _ => {}
        }
    }

    /// Forgets consumed bytes when nothing after them is pending (positions in `State` are
    /// relative to `head`, so they stay valid).
    fn compact(&mut self) {
        if self.head > 0 && self.head >= self.buf.len() {
            self.buf.clear();
            self.head = 0;
        }
    }

    /// The memory the input buffer holds.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The session takes the streamed literal announced by [`Frame::Stream`]; returns whether
    /// it is synchronizing (the client waits for `+`). False too when no literal is being
    /// streamed.
    pub fn accept_stream(&mut self) -> bool {
        match &mut self.state {
            State::Stream {
                synchronizing,
                accepted,
                ..
            } => {
                *accepted = true;
                *synchronizing
            }
            _ => false,
        }
    }

    /// How much of the streamed literal has not been taken yet; `None` when none is being
    /// streamed.
    pub fn stream_remaining(&self) -> Option<u64> {
        match self.state {
            State::Stream { remaining, .. } => Some(remaining),
            _ => None,
        }
    }

    /// The buffered bytes of the streamed literal (no more than what remains of it), taken;
    /// empty when none are buffered. Once it is complete, [`Frame::Rest`] follows.
    pub fn take_streamed(&mut self) -> &[u8] {
        let State::Stream { remaining, .. } = self.state else {
            return &[];
        };
        let buffered = self.pending().len();
        let taken = usize::try_from(remaining).map_or(buffered, |r| r.min(buffered));
        let start = self.head;
        self.head += taken;
        let remaining = remaining - taken as u64;
        if remaining == 0 {
            self.state = State::Rest;
        } else if let State::Stream {
            remaining: left, ..
        } = &mut self.state
        {
            *left = remaining;
        }
        self.buf.get(start..start + taken).unwrap_or_default()
    }

    /// Drops the streamed literal the session does not take (refused, or given up part of
    /// the way): a synchronizing one not accepted never comes; otherwise its bytes and the
    /// rest of its line are dropped as they arrive. Does nothing when none is streamed.
    pub fn refuse_stream(&mut self) {
        let State::Stream {
            remaining,
            synchronizing,
            accepted,
        } = self.state
        else {
            return;
        };
        if synchronizing && !accepted {
            self.state = FRESH_LINE;
            return;
        }
        self.skip_literal(remaining);
    }

    /// Drops `size` literal bytes, the buffered ones now, the rest as they arrive, then the
    /// rest of the line.
    fn skip_literal(&mut self, size: u64) {
        let buffered = self.pending().len();
        let skipped = usize::try_from(size).map_or(buffered, |size| size.min(buffered));
        self.consume(skipped);
        self.state = match size - skipped as u64 {
            0 => State::Discard,
            remaining => State::SkipLiteral { remaining },
        };
    }

    /// How many bytes are waiting.
    pub fn buffered(&self) -> usize {
        self.pending().len()
    }

    /// The bytes from the start of the current command.
    fn pending(&self) -> &[u8] {
        self.buf.get(self.head..).unwrap_or_default()
    }

    /// Drops everything buffered and gives the memory back.
    fn clear(&mut self) {
        self.buf = Vec::new();
        self.head = 0;
    }

    /// The next step for the session, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.state {
                State::Closed | State::SkipLiteral { .. } => return None,
                // The session neither took nor refused it: nothing of it may be buffered.
                State::Stream { .. } => self.refuse_stream(),
                State::Rest => return self.scan_rest(),
                State::Discard => {
                    if !self.discard_to_line_end() {
                        return None;
                    }
                }
                State::Literal { end } => {
                    if self.pending().len() < end {
                        return None;
                    }
                    self.state = State::Line {
                        scan: end,
                        line_start: end,
                        quoted: false,
                        escaped: false,
                    };
                }
                State::Line {
                    scan,
                    line_start,
                    quoted,
                    escaped,
                } => {
                    if let Some(frame) = self.scan_line(scan, line_start, quoted, escaped) {
                        return Some(frame);
                    }
                    // Still on the line: waiting for bytes. Else a literal follows.
                    if matches!(self.state, State::Line { .. }) {
                        return None;
                    }
                }
            }
        }
    }

    /// Scans the current line from `scan`. Returns a frame, or `None` after updating
    /// `self.state` (to wait for bytes, or to go on with a non-synchronizing literal).
    fn scan_line(
        &mut self,
        scan: usize,
        line_start: usize,
        mut quoted: bool,
        mut escaped: bool,
    ) -> Option<Frame> {
        let mut lf = None;
        for (offset, &byte) in self
            .pending()
            .get(scan..)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if byte == b'\n' {
                lf = Some(scan + offset);
                break;
            }
            if quoted {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    quoted = false;
                }
            } else if byte == b'"' {
                quoted = true;
            }
        }
        let Some(lf) = lf else {
            let pending = self.pending().len();
            if pending.saturating_sub(line_start) > self.limits.max_line
                || pending > self.limits.max_command
            {
                return Some(self.reject_line());
            }
            self.state = State::Line {
                scan: pending,
                line_start,
                quoted,
                escaped,
            };
            return None;
        };
        // Bare LF is taken for CRLF. Only the command's final line end is rewritten (in
        // `consume`): inserting here would shift everything buffered after it.
        let content_end = if lf > line_start && self.pending().get(lf - 1) == Some(&b'\r') {
            lf - 1
        } else {
            lf
        };
        if content_end - line_start > self.limits.max_line || lf + 1 > self.limits.max_command {
            let tag = self.tag();
            self.consume(lf + 1);
            return Some(Frame::Reject {
                tag,
                response: "BAD Command line too long".into(),
            });
        }
        let literal = if quoted {
            None
        } else {
            self.pending()
                .get(line_start..content_end)
                .and_then(literal_announcement)
        };
        let Some((size, synchronizing)) = literal else {
            let mut command = self.consume(lf + 1);
            if !command.ends_with(b"\r\n") {
                command.pop();
                command.extend_from_slice(b"\r\n");
            }
            return Some(Frame::Command(command));
        };
        let too_big = size > self.limits.max_literal as u64
            || (lf as u64 + 1).saturating_add(size) > self.limits.max_command as u64;
        if too_big {
            if synchronizing {
                let tag = self.tag();
                self.consume(lf + 1);
                return Some(Frame::Reject {
                    tag,
                    response: "NO [TOOBIG] Literal too big".into(),
                });
            }
            if size <= self.limits.max_discard {
                let tag = self.tag();
                self.consume(lf + 1);
                // What of the literal is buffered already goes now, the rest in `absorb`.
                self.skip_literal(size);
                return Some(Frame::Reject {
                    tag,
                    response: "NO [TOOBIG] Literal too big".into(),
                });
            }
            self.clear();
            self.state = State::Closed;
            return Some(Frame::Fatal {
                response: "BYE [TOOBIG] Literal too big".into(),
            });
        }
        if size > STREAM_LITERAL_ABOVE && self.is_append() {
            let head = self.consume(lf + 1);
            self.state = State::Stream {
                remaining: size,
                synchronizing,
                accepted: false,
            };
            return Some(Frame::Stream {
                head,
                size,
                synchronizing,
            });
        }
        // Fits in usize: checked against max_command above.
        let end = lf + 1 + size as usize;
        self.state = State::Literal { end };
        synchronizing.then_some(Frame::Continue)
    }

    /// Whether the buffered command stores a message: `<tag> APPEND `, `<tag> REPLACE ` or
    /// `<tag> UID REPLACE ` (RFC 8508).
    fn is_append(&self) -> bool {
        let pending = self.pending();
        let Some(space) = pending.iter().position(|&b| b == b' ') else {
            return false;
        };
        let after_tag = pending.get(space + 1..).unwrap_or_default();
        let starts = |word: &[u8]| {
            after_tag
                .get(..word.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(word))
        };
        starts(b"APPEND ") || starts(b"REPLACE ") || starts(b"UID REPLACE ")
    }

    /// After the [`Frame::Rest`] of a streamed literal announced one more (MULTIAPPEND): the
    /// next `size` bytes are that literal, streamed like the first ([`Frame::Stream`] without
    /// a head); the session takes it or refuses it as it would the first.
    pub fn stream_next(&mut self, size: u64, synchronizing: bool) {
        self.state = State::Stream {
            remaining: size,
            synchronizing,
            accepted: false,
        };
    }

    /// In `Rest`: the line after a streamed literal, or a refusal when it is too long (the
    /// session answers under the command's tag).
    fn scan_rest(&mut self) -> Option<Frame> {
        let too_long = Frame::Reject {
            tag: None,
            response: "BAD Command line too long".into(),
        };
        match self.pending().iter().position(|&b| b == b'\n') {
            Some(lf) if lf <= self.limits.max_line => Some(Frame::Rest(self.consume(lf + 1))),
            Some(lf) => {
                self.consume(lf + 1);
                Some(too_long)
            }
            None if self.pending().len() <= self.limits.max_line => None,
            None => {
                self.clear();
                self.state = State::Discard;
                Some(too_long)
            }
        }
    }

    /// Rejects an over-long line: what is buffered goes, the rest of the line is dropped as
    /// it arrives.
    fn reject_line(&mut self) -> Frame {
        let tag = self.tag();
        self.clear();
        self.state = State::Discard;
        Frame::Reject {
            tag,
            response: "BAD Command line too long".into(),
        }
    }

    /// In `Discard`: drops buffered bytes through the next LF. False when there is none yet.
    fn discard_to_line_end(&mut self) -> bool {
        match self.pending().iter().position(|&b| b == b'\n') {
            Some(lf) => {
                self.consume(lf + 1);
                true
            }
            None => {
                self.clear();
                false
            }
        }
    }

    /// Takes the first `len` pending bytes out, and starts a fresh line.
    fn consume(&mut self, len: usize) -> Vec<u8> {
        let start = self.head;
        let end = start.saturating_add(len).min(self.buf.len());
        let taken = if start == 0 && end * 2 >= self.buf.len() {
            // A big command (APPEND) keeps its allocation; only the smaller rest is copied.
            let rest = self.buf.split_off(end);
            std::mem::replace(&mut self.buf, rest)
        } else {
            let taken = self.buf.get(start..end).unwrap_or_default().to_vec();
            self.head = end;
            taken
        };
        if self.head >= self.buf.len() {
            self.buf.clear();
            self.head = 0;
        } else if self.head * 2 > self.buf.len() {
            // Amortised: each byte is shifted at most once per halving.
            self.buf.drain(..self.head);
            self.head = 0;
        }
        if self.buf.is_empty() && self.buf.capacity() > IDLE_CAPACITY {
            self.buf = Vec::new();
        }
        self.state = FRESH_LINE;
        taken
    }

    /// The tag of the buffered command, if it has a plausible one, for a Reject.
    fn tag(&self) -> Option<String> {
        let pending = self.pending();
        let end = pending.iter().position(|&b| b == b' ')?;
        let tag = pending.get(..end)?;
        let valid = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .iter()
                .all(|&b| crate::wire::is_astring_char(b) && b != b'+');
        valid.then(|| String::from_utf8_lossy(tag).into_owned())
    }

    /// A raw line without its line end (AUTHENTICATE responses, IDLE's `DONE`); call it only
    /// between commands.
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, LineTooLong>> {
        if self.state == State::Closed
            || (self.state == State::Discard && !self.discard_to_line_end())
        {
            return None;
        }
        match self.pending().iter().position(|&b| b == b'\n') {
            Some(lf) => {
                let mut line = self.consume(lf + 1);
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Some(Ok(line))
            }
            None if self.pending().len() > self.limits.max_line => {
                self.clear();
                self.state = State::Discard;
                Some(Err(LineTooLong))
            }
            None => None,
        }
    }
}

/// `{n}`, `{n+}` or `~{n}` at the end of a line: the size and whether it is synchronizing.
pub(crate) fn literal_announcement(line: &[u8]) -> Option<(u64, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let (inner, synchronizing) = match inner.strip_suffix(b"+") {
        Some(inner) => (inner, false),
        None => (inner, true),
    };
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = inner.get(open + 1..)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Saturates: a 30-digit size is just too big.
    let size = digits.iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    Some((size, synchronizing))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> FramingLimits {
        FramingLimits {
            max_line: 40,
            max_literal: 100,
            max_command: 200,
            max_discard: 0,
        }
    }

    fn frames(framer: &mut CommandFramer) -> Vec<Frame> {
        std::iter::from_fn(|| framer.next_frame()).collect()
    }

    fn cmd(s: &str) -> Frame {
        Frame::Command(s.as_bytes().to_vec())
    }

    #[test]
    fn lines_and_pipelining() {
        let mut f = CommandFramer::new(FramingLimits::default());
        f.push(b"a NOOP\r\nb CAPA");
        assert_eq!(frames(&mut f), vec![cmd("a NOOP\r\n")]);
        f.push(b"BILITY\nc LOGOUT\r\n");
        assert_eq!(
            frames(&mut f),
            vec![cmd("b CAPABILITY\r\n"), cmd("c LOGOUT\r\n")]
        );
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn many_pipelined_commands_in_one_read() {
        let mut f = CommandFramer::new(FramingLimits::default());
        let mut input = Vec::new();
        for i in 0..5000 {
            input.extend_from_slice(format!("t{i} NOOP\n").as_bytes());
        }
        input.extend_from_slice(b"last {2}\r\n");
        f.push(&input);
        let got = frames(&mut f);
        assert_eq!(got.len(), 5001);
        assert_eq!(got[4999], cmd("t4999 NOOP\r\n"));
        assert_eq!(got[5000], Frame::Continue);
        assert_eq!(f.buffered(), "last {2}\r\n".len());
        f.push(b"ab\r\n");
        assert_eq!(frames(&mut f), vec![cmd("last {2}\r\nab\r\n")]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn synchronizing_literal() {
        let mut f = CommandFramer::new(FramingLimits::default());
        f.push(b"a LOGIN {4}\r\n");
        assert_eq!(frames(&mut f), vec![Frame::Continue]);
        f.push(b"us\r\n");
        assert_eq!(frames(&mut f), vec![]);
        f.push(b"r pass\r\n");
        assert_eq!(frames(&mut f), vec![cmd("a LOGIN {4}\r\nus\r\nr pass\r\n")]);
    }

    #[test]
    fn non_synchronizing_and_binary_literals() {
        let mut f = CommandFramer::new(FramingLimits::default());
        f.push(b"a LOGIN {3+}\nabc {2+}\r\nxy\nb APPEND x ~{3}\r\n");
        assert_eq!(
            frames(&mut f),
            vec![cmd("a LOGIN {3+}\nabc {2+}\r\nxy\r\n"), Frame::Continue]
        );
        f.push(b"\0\n\r\r\n");
        assert_eq!(frames(&mut f), vec![cmd("b APPEND x ~{3}\r\n\0\n\r\r\n")]);
    }

    #[test]
    fn braces_in_quoted_strings_are_not_literals() {
        let mut f = CommandFramer::new(FramingLimits::default());
        f.push(b"a LOGIN u \"p\\\"{5}\"\r\nb LOGIN u \"{5}\r\n");
        assert_eq!(
            frames(&mut f),
            vec![
                cmd("a LOGIN u \"p\\\"{5}\"\r\n"),
                cmd("b LOGIN u \"{5}\r\n")
            ]
        );
    }

    #[test]
    fn sync_literal_too_big_is_rejected_and_the_connection_goes_on() {
        let mut f = CommandFramer::new(small());
        f.push(b"a1 APPEND x {101}\r\nb NOOP\r\n");
        assert_eq!(
            frames(&mut f),
            vec![
                Frame::Reject {
                    tag: Some("a1".into()),
                    response: "NO [TOOBIG] Literal too big".into()
                },
                cmd("b NOOP\r\n")
            ]
        );
        // Over max_command with earlier literals.
        f.push(b"c LOGIN {90}\r\n");
        assert_eq!(frames(&mut f), vec![Frame::Continue]);
        f.push(&[b'x'; 90]);
        f.push(b" {99}\r\n");
        assert!(matches!(&frames(&mut f)[..], [Frame::Reject { tag: Some(t), .. }] if t == "c"));
        let mut f = CommandFramer::new(small());
        f.push(b"a APPEND x {99999999999999999999999999}\r\n");
        assert!(matches!(&frames(&mut f)[..], [Frame::Reject { .. }]));
    }

    #[test]
    fn non_sync_literal_too_big_is_fatal() {
        let mut f = CommandFramer::new(small());
        f.push(b"a APPEND x {101+}\r\nxxxxx");
        assert_eq!(
            frames(&mut f),
            vec![Frame::Fatal {
                response: "BYE [TOOBIG] Literal too big".into()
            }]
        );
        f.push(b"b NOOP\r\n");
        assert_eq!(frames(&mut f), vec![]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn non_sync_literal_too_big_is_dropped_when_discarding_is_allowed() {
        let mut f = CommandFramer::new(FramingLimits {
            max_discard: 1000,
            ..small()
        });
        f.push(b"a APPEND x {150+}\r\n");
        f.push(&[b'x'; 20]);
        assert_eq!(
            frames(&mut f),
            vec![Frame::Reject {
                tag: Some("a".into()),
                response: "NO [TOOBIG] Literal too big".into()
            }]
        );
        for _ in 0..13 {
            f.push(&[b'y'; 10]);
            assert_eq!(f.buffered(), 0, "never buffered");
        }
        f.push(b"\r\nb NOOP\r\n");
        assert_eq!(frames(&mut f), vec![cmd("b NOOP\r\n")]);
        // Over max_discard: the connection ends.
        f.push(b"c APPEND x {1001+}\r\n");
        assert!(matches!(&frames(&mut f)[..], [Frame::Fatal { .. }]));
    }

    #[test]
    fn new_limits_apply_from_the_next_command() {
        let mut f = CommandFramer::new(small());
        f.push(b"a LOGIN {50}\r\n");
        assert_eq!(frames(&mut f), vec![Frame::Continue]);
        f.push(&[b'u'; 50]);
        f.push(b" p\r\n");
        assert!(matches!(&frames(&mut f)[..], [Frame::Command(_)]));
        f.set_limits(FramingLimits {
            max_line: 40,
            max_literal: 10,
            max_command: 100,
            max_discard: 0,
        });
        f.push(b"b LOGIN {50}\r\n");
        assert_eq!(
            frames(&mut f),
            vec![Frame::Reject {
                tag: Some("b".into()),
                response: "NO [TOOBIG] Literal too big".into()
            }]
        );
    }

    #[test]
    fn long_line_is_rejected_and_discarded() {
        let mut f = CommandFramer::new(small());
        f.push(b"t1 NOOP ");
        f.push(&[b'x'; 50]);
        assert_eq!(
            frames(&mut f),
            vec![Frame::Reject {
                tag: Some("t1".into()),
                response: "BAD Command line too long".into()
            }]
        );
        assert_eq!(f.buffered(), 0);
        f.push(&[b'y'; 5000]);
        assert_eq!(f.buffered(), 0);
        f.push(b"yyy\r\nt2 NOOP\r\n");
        assert_eq!(frames(&mut f), vec![cmd("t2 NOOP\r\n")]);
        // A complete over-long line in one push.
        let mut line = b"t3 X ".to_vec();
        line.extend_from_slice(&[b'z'; 60]);
        line.extend_from_slice(b"\r\nt4 NOOP\r\n");
        f.push(&line);
        assert_eq!(
            frames(&mut f),
            vec![
                Frame::Reject {
                    tag: Some("t3".into()),
                    response: "BAD Command line too long".into()
                },
                cmd("t4 NOOP\r\n")
            ]
        );
    }

    #[test]
    fn raw_lines() {
        let mut f = CommandFramer::new(small());
        f.push(b"dXNlcg==\r\nDONE\na NOOP\r\n");
        assert_eq!(f.next_line(), Some(Ok(b"dXNlcg==".to_vec())));
        assert_eq!(f.next_line(), Some(Ok(b"DONE".to_vec())));
        assert_eq!(frames(&mut f), vec![cmd("a NOOP\r\n")]);
        assert_eq!(f.next_line(), None);
        f.push(&[b'A'; 41]);
        assert_eq!(f.next_line(), Some(Err(LineTooLong)));
        f.push(b"AA\r\nDONE\r\n");
        assert_eq!(f.next_line(), Some(Ok(b"DONE".to_vec())));
    }

    #[test]
    fn buffer_is_released_after_a_big_command() {
        let mut f = CommandFramer::new(FramingLimits::default());
        f.push(b"a SEARCH TEXT {100000+}\r\n");
        f.push(&vec![b'm'; 100_000]);
        f.push(b"\r\n");
        assert!(matches!(f.next_frame(), Some(Frame::Command(c)) if c.len() > 100_000));
        assert_eq!(f.buf.capacity(), 0);
    }

    /// Streams the literal of the pending `Frame::Stream`, `piece` bytes pushed at a time;
    /// returns what was taken and the most the buffer held meanwhile.
    fn take_all(f: &mut CommandFramer, literal: &[u8], piece: usize) -> (Vec<u8>, usize) {
        let mut taken = f.take_streamed().to_vec();
        let mut largest = f.capacity();
        for chunk in literal.chunks(piece) {
            f.push(chunk);
            largest = largest.max(f.capacity());
            taken.extend_from_slice(f.take_streamed());
        }
        (taken, largest)
    }

    #[test]
    fn a_large_append_literal_is_streamed_not_buffered() {
        let mut f = CommandFramer::new(FramingLimits::default());
        let literal: Vec<u8> = (0..1_000_000u32).map(|n| (n % 251) as u8).collect();
        // The head and the literal's first bytes arrive together.
        let mut first = b"a1 append \"My Box\" (\\Seen) {1000000}\r\n".to_vec();
        first.extend_from_slice(&literal[..1000]);
        f.push(&first);
        assert_eq!(
            f.next_frame(),
            Some(Frame::Stream {
                head: b"a1 append \"My Box\" (\\Seen) {1000000}\r\n".to_vec(),
                size: 1_000_000,
                synchronizing: true
            })
        );
        assert!(
            f.accept_stream(),
            "synchronizing: the session sends the continuation"
        );
        let (mut taken, largest) = take_all(&mut f, &[], 1);
        assert_eq!(taken.len(), 1000);
        let (rest, largest) = {
            let (more, more_largest) = take_all(&mut f, &literal[1000..], 4096);
            (more, largest.max(more_largest))
        };
        taken.extend_from_slice(&rest);
        assert!(taken == literal, "every byte once, in order");
        assert!(largest <= 8 * 1024, "the buffer held {largest} bytes");
        assert_eq!(f.stream_remaining(), None);
        f.push(b"\r\nb NOOP\r\n");
        assert_eq!(
            frames(&mut f),
            vec![Frame::Rest(b"\r\n".to_vec()), cmd("b NOOP\r\n")]
        );
        // Only APPEND streams; a small literal stays inline.
        f.push(b"c LOGIN {70000+}\r\n");
        assert_eq!(frames(&mut f), vec![]);
        let mut f = CommandFramer::new(FramingLimits::default());
        f.push(b"d APPEND x {5}\r\n");
        assert_eq!(frames(&mut f), vec![Frame::Continue]);
    }

    #[test]
    fn a_refused_stream_is_dropped() {
        // Synchronizing, refused before the continuation: the client sends no literal.
        let mut f = CommandFramer::new(FramingLimits::default());
        f.push(b"a APPEND x {100000}\r\nb NOOP\r\n");
        assert!(matches!(f.next_frame(), Some(Frame::Stream { .. })));
        f.refuse_stream();
        assert_eq!(frames(&mut f), vec![cmd("b NOOP\r\n")]);
        // Non-synchronizing, refused part of the way: the rest of it and its line are dropped
        // as they arrive.
        f.push(b"c APPEND x {100000+}\r\n");
        f.push(&[b'm'; 30_000]);
        assert!(matches!(
            f.next_frame(),
            Some(Frame::Stream {
                synchronizing: false,
                ..
            })
        ));
        assert!(!f.accept_stream());
        assert_eq!(f.take_streamed().len(), 30_000);
        f.push(&[b'm'; 10_000]);
        f.refuse_stream();
        assert_eq!(f.buffered(), 0);
        f.push(&[b'm'; 60_000]);
        assert_eq!(f.buffered(), 0, "never buffered");
        f.push(b" {5}\r\nd NOOP\r\n");
        assert_eq!(frames(&mut f), vec![cmd("d NOOP\r\n")]);
        // A stream the session neither takes nor refuses is dropped all the same.
        f.push(b"e APPEND x {100000+}\r\n");
        assert!(matches!(f.next_frame(), Some(Frame::Stream { .. })));
        f.push(&[b'm'; 100_000]);
        f.push(b"\r\nf NOOP\r\n");
        assert_eq!(frames(&mut f), vec![cmd("f NOOP\r\n")]);
    }

    #[test]
    fn an_idle_connection_offers_a_small_read_buffer() {
        let mut f = CommandFramer::new(FramingLimits::default());
        assert_eq!(f.read_buffer().capacity(), IDLE_CAPACITY);
        f.push(b"a NOOP");
        assert!(f.read_buffer().capacity() >= BUSY_READ, "inside a command");
        f.push(b"\r\n");
        assert_eq!(frames(&mut f), vec![cmd("a NOOP\r\n")]);
        f.push(&[b'x'; 5000]);
        f.push(b"\r\n");
        assert_eq!(frames(&mut f).len(), 1);
        assert!(f.read_buffer().capacity() <= IDLE_CAPACITY, "given back");
        // Bytes read straight into the buffer go through the same rules as pushed ones.
        let buf = f.read_buffer();
        let start = buf.len();
        buf.extend_from_slice(b"b NOOP\r\n");
        f.absorb(start);
        assert_eq!(frames(&mut f), vec![cmd("b NOOP\r\n")]);
    }

    #[test]
    fn byte_at_a_time_matches_all_at_once() {
        let input: &[u8] =
            b"a LOGIN {3+}\r\nabc \"p{2}\"\nb APPEND x (\\Seen) {5}\r\nhello\r\nc NOOP\r\n";
        let mut whole = CommandFramer::new(FramingLimits::default());
        whole.push(input);
        let expected = frames(&mut whole);
        let mut split = CommandFramer::new(FramingLimits::default());
        let mut got = Vec::new();
        for &byte in input {
            split.push(&[byte]);
            got.extend(frames(&mut split));
        }
        assert_eq!(got, expected);
        assert_eq!(expected.len(), 4);
    }

    /// Random IMAP-ish byte soup in random chunks: the framer never panics, every command it
    /// hands out is within the limits and ends with CRLF, and the parser takes each one.
    #[test]
    fn random_input_stays_within_limits() {
        let pieces: &[&[u8]] = &[
            b"a ",
            b"{",
            b"}",
            b"+}",
            b"~{",
            b"3",
            b"99999",
            b"\r\n",
            b"\n",
            b"\r",
            b"\"",
            b"\\",
            b"(",
            b")",
            b"FETCH 1:* ",
            b"APPEND x ",
            b"x",
            b" ",
            b"\0",
            b"\xff",
        ];
        let limits = small();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..300 {
            let mut input = Vec::new();
            for _ in 0..(next() % 200) {
                input.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
            }
            let mut f = CommandFramer::new(limits);
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = ((next() % 17) as usize + 1).min(rest.len());
                f.push(&rest[..n]);
                rest = &rest[n..];
                while let Some(frame) = f.next_frame() {
                    if let Frame::Command(c) = frame {
                        assert!(c.len() <= limits.max_command && c.ends_with(b"\r\n"));
                        let _ = crate::parser::parse_command(&c);
                    }
                }
                assert!(f.buffered() <= limits.max_command + 17);
            }
        }
    }
}
