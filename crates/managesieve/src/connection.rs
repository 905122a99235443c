//! All bytes of a session: commands framed with their literals (bounded), buffered replies
//! (written before the next blocking read) and the STARTTLS upgrade, which throws away any
//! plaintext read ahead.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) use mailstead_net::Io;
use mailstead_store::form::find_lf;

use crate::parser::literal_announcement;

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;
/// A literal over the limit but at most this big is read and dropped after login, so the
/// client (which sends `{n+}` literals without waiting) stays in step; a bigger one ends the
/// connection.
pub(crate) const MAX_DISCARD: u64 = 1 << 30;

/// Size limits for one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FramingLimits {
    /// One line, without its literals.
    pub(crate) max_line: usize,
    /// One literal (PUTSCRIPT's script).
    pub(crate) max_literal: u64,
    /// The whole command, literals included.
    pub(crate) max_command: usize,
    /// A literal over `max_literal` up to this size is dropped and the command refused; a
    /// bigger one (or any, when 0) ends the connection.
    pub(crate) max_discard: u64,
}

/// What the session gets from [`Connection::read_command`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// One whole command, literals inline.
    Command(Vec<u8>),
    /// A literal over the limit was read and dropped, with the rest of its command.
    LiteralTooBig,
    /// A line or literal over what may be dropped: the session ends.
    TooBig,
}

pub(crate) struct Connection {
    stream: Box<dyn Io>,
    /// Bytes read and not yet taken.
    input: Vec<u8>,
    output: Vec<u8>,
    pub(crate) tls: bool,
}

impl Connection {
    pub(crate) fn new(stream: Box<dyn Io>, tls: bool) -> Connection {
        Connection {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            tls,
        }
    }

    /// Queues reply bytes; they go out before the next read or at [`Connection::flush`].
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if !self.output.is_empty() {
            let result = self.stream.write_all(&self.output).await;
            self.output.clear();
            if self.output.capacity() > 64 * 1024 {
                self.output = Vec::new();
            }
            result?;
        }
        self.stream.flush().await
    }

    /// The next command with its literals; `None` at end of stream (also in the middle of a
    /// command: a half-sent command is not run).
    pub(crate) async fn read_command(
        &mut self,
        limits: FramingLimits,
    ) -> io::Result<Option<Frame>> {
        let mut command = Vec::new();
        let mut dropping = false;
        loop {
            let Some(line) = self.read_line(limits.max_line).await? else {
                return Ok(None);
            };
            let Some(line) = line else {
                return Ok(Some(Frame::TooBig));
            };
            let literal = literal_announcement(&line);
            if !dropping {
                command.extend_from_slice(&line);
                command.extend_from_slice(b"\r\n");
            }
            let Some(size) = literal else {
                if dropping {
                    return Ok(Some(Frame::LiteralTooBig));
                }
                return Ok(Some(Frame::Command(command)));
            };
            let fits = size <= limits.max_literal
                && (command.len() as u64).saturating_add(size) <= limits.max_command as u64;
            if !dropping && fits {
                if !self.read_exact_into(size, Some(&mut command)).await? {
                    return Ok(None);
                }
                continue;
            }
            if size > limits.max_discard {
                return Ok(Some(Frame::TooBig));
            }
            dropping = true;
            command = Vec::new();
            if !self.read_exact_into(size, None).await? {
                return Ok(None);
            }
        }
    }

    /// One line without its line end (CRLF or a bare LF); `Some(None)` for a line over
    /// `max_line`, noticed as soon as the limit is passed; `None` at end of stream.
    async fn read_line(&mut self, max_line: usize) -> io::Result<Option<Option<Vec<u8>>>> {
        let mut searched = 0;
        loop {
            if let Some(lf) = find_lf(&self.input, searched) {
                let mut line: Vec<u8> = self.input.drain(..=lf).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > max_line {
                    return Ok(Some(None));
                }
                return Ok(Some(Some(line)));
            }
            searched = self.input.len();
            if self.input.len() > max_line {
                return Ok(Some(None));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Takes `size` bytes, into `into` or nowhere; `false` when the stream ends first.
    async fn read_exact_into(
        &mut self,
        size: u64,
        mut into: Option<&mut Vec<u8>>,
    ) -> io::Result<bool> {
        let mut remaining = size;
        loop {
            let available = (self.input.len() as u64).min(remaining);
            // `available` is at most `input.len()`, a usize.
            let taken = usize::try_from(available).unwrap_or(self.input.len());
            if let Some(into) = into.as_deref_mut() {
                into.extend_from_slice(self.input.get(..taken).unwrap_or_default());
            }
            self.input.drain(..taken);
            remaining -= available;
            if remaining == 0 {
                return Ok(true);
            }
            if !self.fill().await? {
                return Ok(false);
            }
        }
    }

    /// Reads more input after writing out the replies queued; `false` at end of stream.
    async fn fill(&mut self) -> io::Result<bool> {
        self.flush().await?;
        let start = self.input.len();
        self.input.resize(start + READ_CHUNK, 0);
        let read = self
            .stream
            .read(self.input.get_mut(start..).unwrap_or_default())
            .await;
        self.input.truncate(start + *read.as_ref().unwrap_or(&0));
        Ok(read? != 0)
    }

    /// Upgrades to TLS. Plaintext read ahead is discarded first: it was sent before the
    /// handshake and must not be taken as coming over TLS (CVE-2011-0411's lesson).
    pub(crate) async fn start_tls(&mut self, config: Arc<rustls::ServerConfig>) -> io::Result<()> {
        self.flush().await?;
        self.input = Vec::new();
        let placeholder: Box<dyn Io> =
            Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink()));
        let plain = std::mem::replace(&mut self.stream, placeholder);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let tls = acceptor.accept(plain).await?;
        self.stream = Box::new(tls);
        self.tls = true;
        Ok(())
    }

    pub(crate) async fn shutdown(&mut self) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const LIMITS: FramingLimits = FramingLimits {
        max_line: 40,
        max_literal: 10,
        max_command: 60,
        max_discard: 100,
    };

    async fn frames(input: &[u8], limits: FramingLimits) -> Vec<Frame> {
        let (client, server) = tokio::io::duplex(1024);
        let mut conn = Connection::new(Box::new(server), false);
        let mut client = client;
        client.write_all(input).await.unwrap();
        drop(client);
        let mut frames = Vec::new();
        while let Some(frame) = conn.read_command(limits).await.unwrap() {
            let end = frame == Frame::TooBig;
            frames.push(frame);
            if end {
                break;
            }
        }
        frames
    }

    #[tokio::test]
    async fn commands_are_framed_with_their_literals() {
        let got = frames(
            b"NOOP\nPUTSCRIPT \"a\" {5+}\r\nkeep;\r\nPUTSCRIPT {1}\r\nb {3+}\r\n{1}\r\n",
            LIMITS,
        )
        .await;
        assert_eq!(
            got,
            vec![
                Frame::Command(b"NOOP\r\n".to_vec()),
                Frame::Command(b"PUTSCRIPT \"a\" {5+}\r\nkeep;\r\n".to_vec()),
                Frame::Command(b"PUTSCRIPT {1}\r\nb {3+}\r\n{1}\r\n".to_vec()),
            ]
        );
    }

    #[tokio::test]
    async fn a_literal_too_big_is_dropped_and_the_next_command_read() {
        let got = frames(
            b"PUTSCRIPT \"a\" {20+}\r\n01234567890123456789 \"tail\"\r\nNOOP\r\n",
            LIMITS,
        )
        .await;
        assert_eq!(
            got,
            vec![Frame::LiteralTooBig, Frame::Command(b"NOOP\r\n".to_vec())]
        );
        // Two literals that fit alone but not together.
        let got = frames(
            b"RENAMESCRIPT {10+}\r\n0123456789 {10+}\r\n0123456789\r\nNOOP\r\n",
            FramingLimits {
                max_command: 30,
                ..LIMITS
            },
        )
        .await;
        assert_eq!(
            got,
            vec![Frame::LiteralTooBig, Frame::Command(b"NOOP\r\n".to_vec())]
        );
    }

    #[tokio::test]
    async fn lines_and_literals_beyond_the_limits_end_the_session() {
        let long_line = [b'A'; 50];
        assert_eq!(frames(&long_line, LIMITS).await, vec![Frame::TooBig]);
        assert_eq!(
            frames(b"PUTSCRIPT \"a\" {101+}\r\n", LIMITS).await,
            vec![Frame::TooBig]
        );
        assert_eq!(
            frames(
                b"PUTSCRIPT \"a\" {11+}\r\n",
                FramingLimits {
                    max_discard: 0,
                    ..LIMITS
                }
            )
            .await,
            vec![Frame::TooBig]
        );
        // A half-sent command is no command.
        assert_eq!(frames(b"PUTSCRIPT \"a\" {5+}\r\nke", LIMITS).await, vec![]);
    }
}
