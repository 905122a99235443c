//! All bytes of a session: reading into the framer, buffered responses (flushed before the
//! next blocking read, so pipelined commands get their responses in one write), the
//! STARTTLS upgrade, which throws away any plaintext read ahead, and COMPRESS=DEFLATE
//! (`compress.rs`), which sits between the socket and the framer in both directions.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::compress::Deflate;
use crate::framing::{CommandFramer, Frame, FramingLimits, LineTooLong};

/// Any stream a session can run over: TCP, TLS over it, or memory.
pub(crate) use mailstead_net::Io;

/// Responses are written out once this much is queued, so a large FETCH streams instead of
/// being held whole in memory.
const FLUSH_AT: usize = 64 * 1024;
/// Buffers larger than this are given back after use: thousands of idle sessions must not
/// each keep the largest response they ever sent.
const KEEP_CAPACITY: usize = 16 * 1024;

pub(crate) struct Connection {
    stream: Box<dyn Io>,
    framer: CommandFramer,
    limits: FramingLimits,
    /// The largest input buffer of any connection sharing it (see
    /// `ImapContext::largest_input_buffer`).
    largest_input: Arc<AtomicUsize>,
    output: Vec<u8>,
    pub(crate) tls: bool,
    /// COMPRESS=DEFLATE once the client asked for it (RFC 4978); boxed, so a connection
    /// without it stays small.
    deflate: Option<Box<Deflate>>,
}

impl Connection {
    pub(crate) fn new(
        stream: Box<dyn Io>,
        limits: FramingLimits,
        tls: bool,
        largest_input: Arc<AtomicUsize>,
    ) -> Connection {
        Connection {
            stream,
            framer: CommandFramer::new(limits),
            limits,
            largest_input,
            output: Vec::new(),
            tls,
            deflate: None,
        }
    }

    /// Whether COMPRESS=DEFLATE is on.
    pub(crate) fn compressed(&self) -> bool {
        self.deflate.is_some()
    }

    /// Turns COMPRESS=DEFLATE on: what is queued is written as it is (the tagged OK), then
    /// everything both ways is compressed. Bytes the client sent before it could see the OK
    /// and that are already read are taken as they are.
    pub(crate) async fn start_deflate(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.deflate = Some(Box::default());
        Ok(())
    }

    /// The limits for the next commands (see [`CommandFramer::set_limits`]).
    pub(crate) fn set_limits(&mut self, limits: FramingLimits) {
        if self.limits != limits {
            self.limits = limits;
            self.framer.set_limits(limits);
        }
    }

    /// Queues response bytes; written before the next blocking read, by `flush`, or once
    /// enough has accumulated.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.output.extend_from_slice(bytes);
        if self.output.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if !self.output.is_empty() {
            let result = match self.deflate.as_mut() {
                Some(deflate) => {
                    let compressed = deflate.compress(&self.output)?;
                    self.stream.write_all(compressed).await
                }
                None => self.stream.write_all(&self.output).await,
            };
            self.output.clear();
            if self.output.capacity() > KEEP_CAPACITY {
                self.output = Vec::new();
            }
            result?;
        }
        self.stream.flush().await
    }

    /// The next frame; `None` at end of stream. Pending output is written first.
    pub(crate) async fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.framer.next_frame() {
                return Ok(Some(frame));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// One raw line (AUTHENTICATE responses, IDLE's DONE); `None` at end of stream.
    pub(crate) async fn read_line(&mut self) -> io::Result<Option<Result<Vec<u8>, LineTooLong>>> {
        loop {
            if let Some(line) = self.framer.next_line() {
                return Ok(Some(line));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// The session takes the literal of a [`Frame::Stream`]: a synchronizing one gets its
    /// continuation.
    pub(crate) async fn accept_stream(&mut self) -> io::Result<()> {
        if self.framer.accept_stream() {
            self.write(b"+ Ready for literal data\r\n").await?;
            self.flush().await?;
        }
        Ok(())
    }

    /// The next piece of the literal of a [`Frame::Stream`]; empty once all of it was taken
    /// (then [`Frame::Rest`] follows). End of stream is an error.
    pub(crate) async fn read_streamed(&mut self) -> io::Result<&[u8]> {
        loop {
            match self.framer.stream_remaining() {
                None | Some(0) => return Ok(&[]),
                Some(_) if self.framer.buffered() > 0 => return Ok(self.framer.take_streamed()),
                Some(_) => {}
            }
            if !self.fill().await? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in a literal",
                ));
            }
        }
    }

    /// The literal announced at the end of a [`Frame::Rest`] is streamed next (see
    /// [`CommandFramer::stream_next`]).
    pub(crate) fn stream_next(&mut self, size: u64, synchronizing: bool) {
        self.framer.stream_next(size, synchronizing);
    }

    /// Drops what is left of a [`Frame::Stream`]'s literal (see
    /// [`CommandFramer::refuse_stream`]); does nothing when there is none.
    pub(crate) fn refuse_stream(&mut self) {
        self.framer.refuse_stream();
    }

    /// Reads more bytes into the framer's own buffer (no buffer of the connection's, and a
    /// small one between commands); false at end of stream.
    async fn fill(&mut self) -> io::Result<bool> {
        self.flush().await?;
        // Waiting for the client: what the responses took goes back.
        if self.output.capacity() > 0 {
            self.output = Vec::new();
        }
        if let Some(deflate) = self.deflate.as_mut() {
            deflate.rest();
            return self.fill_inflated().await;
        }
        let buf = self.framer.read_buffer();
        let start = buf.len();
        let n = self.stream.read_buf(buf).await?;
        let capacity = buf.capacity();
        if capacity > self.largest_input.load(Ordering::Relaxed) {
            self.largest_input.fetch_max(capacity, Ordering::Relaxed);
        }
        if n == 0 {
            return Ok(false);
        }
        self.framer.absorb(start);
        Ok(true)
    }

    /// [`Connection::fill`] under COMPRESS: decompresses into the framer's buffer no more than
    /// a plain read would put there, so what the client sends compressed meets the same line
    /// and literal limits as plain input, however well it compresses.
    async fn fill_inflated(&mut self) -> io::Result<bool> {
        let Some(deflate) = self.deflate.as_mut() else {
            return Ok(false);
        };
        loop {
            let buf = self.framer.read_buffer();
            let start = buf.len();
            let room = buf.capacity() - start;
            let produced = deflate.decompress_into(buf)?;
            let capacity = buf.capacity();
            if capacity > self.largest_input.load(Ordering::Relaxed) {
                self.largest_input.fetch_max(capacity, Ordering::Relaxed);
            }
            if produced > 0 {
                self.framer.absorb(start);
                return Ok(true);
            }
            if deflate.ended() {
                return Ok(false);
            }
            // The only wait: cancelling it (IDLE's select) loses nothing.
            if !deflate.read_from(&mut self.stream, room).await? {
                return Ok(false);
            }
        }
    }

    /// Upgrades to TLS. Plaintext read ahead is discarded first: it was sent before the
    /// handshake and must not be taken as coming over TLS (CVE-2011-0411's lesson).
    pub(crate) async fn start_tls(&mut self, config: Arc<rustls::ServerConfig>) -> io::Result<()> {
        self.flush().await?;
        self.framer = CommandFramer::new(self.limits);
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
