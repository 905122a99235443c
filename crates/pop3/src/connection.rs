//! All bytes of a session: command lines (bounded), buffered replies (written before the next
//! blocking read, so pipelined commands get their replies in one write, RFC 2449 PIPELINING),
//! and the STLS upgrade, which throws away any plaintext read ahead.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) use mailstead_net::Io;
use mailstead_store::form::find_lf;

/// Replies are written out once this much is queued, so RETR of a large message streams.
const FLUSH_AT: usize = 64 * 1024;
/// How much is read from the socket at a time.
const READ_CHUNK: usize = 4 * 1024;

/// A line longer than the limit arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LineTooLong;

pub(crate) struct Connection {
    stream: Box<dyn Io>,
    /// Bytes read and not yet taken as lines; at most `max_line` plus one read.
    input: Vec<u8>,
    max_line: usize,
    output: Vec<u8>,
    pub(crate) tls: bool,
}

impl Connection {
    pub(crate) fn new(stream: Box<dyn Io>, max_line: usize, tls: bool) -> Connection {
        Connection {
            stream,
            input: Vec::new(),
            max_line,
            output: Vec::new(),
            tls,
        }
    }

    /// Queues reply bytes.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.output.extend_from_slice(bytes);
        if self.output.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// The queued replies, to append to before [`Connection::write_queued`].
    pub(crate) fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    /// Writes out what was appended through [`Connection::output`] once it is large.
    pub(crate) async fn write_queued(&mut self) -> io::Result<()> {
        if self.output.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if !self.output.is_empty() {
            let result = self.stream.write_all(&self.output).await;
            self.output.clear();
            if self.output.capacity() > FLUSH_AT * 2 {
                self.output = Vec::new();
            }
            result?;
        }
        self.stream.flush().await
    }

    /// The next line without its line end (CRLF, or a bare LF as clients send); `None` at
    /// end of stream. A line over the limit is `Err(LineTooLong)` as soon as the limit is
    /// passed: the session then closes, so nothing more is read for it.
    pub(crate) async fn read_line(&mut self) -> io::Result<Option<Result<Vec<u8>, LineTooLong>>> {
        let mut searched = 0;
        loop {
            if let Some(lf) = find_lf(&self.input, searched) {
                let mut line: Vec<u8> = self.input.drain(..=lf).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > self.max_line {
                    return Ok(Some(Err(LineTooLong)));
                }
                return Ok(Some(Ok(line)));
            }
            searched = self.input.len();
            if self.input.len() > self.max_line {
                return Ok(Some(Err(LineTooLong)));
            }
            self.flush().await?;
            if self.input.capacity() == 0 {
                self.input.reserve(READ_CHUNK);
            }
            let start = self.input.len();
            self.input.resize(start + READ_CHUNK, 0);
            let read = self
                .stream
                .read(self.input.get_mut(start..).unwrap_or_default())
                .await;
            self.input.truncate(start + *read.as_ref().unwrap_or(&0));
            if read? == 0 {
                return Ok(None);
            }
        }
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
