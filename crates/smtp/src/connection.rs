//! All bytes of a session: bounded line reads, raw reads for message bodies, buffered
//! replies (flushed before the next blocking read, so pipelined commands get their replies in
//! one write), and the STARTTLS upgrade, which throws away any plaintext read ahead.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Any stream a session can run over: TCP, a Unix socket, TLS over either, or memory.
pub(crate) use mailstead_net::Io;

/// One line read from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// The line without its `\r\n` or `\n`.
    Text(Vec<u8>),
    /// The line was longer than the limit; it was read and thrown away.
    TooLong,
    /// The client closed the connection.
    Eof,
}

pub(crate) struct Connection {
    stream: Box<dyn Io>,
    /// Bytes read and not yet consumed.
    input: Vec<u8>,
    /// Replies not yet written.
    output: Vec<u8>,
    max_line: usize,
}

impl Connection {
    pub(crate) fn new(stream: Box<dyn Io>, max_line: usize) -> Connection {
        Connection {
            stream,
            input: Vec::with_capacity(4096),
            output: Vec::with_capacity(512),
            max_line,
        }
    }

    /// Whether the client has sent bytes that have not been consumed yet (pipelining).
    pub(crate) fn has_buffered_input(&self) -> bool {
        !self.input.is_empty()
    }

    /// The unconsumed input.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.input
    }

    /// Drops the first `n` unconsumed bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.input.len());
        self.input.drain(..n);
    }

    /// Queues a reply; it is written before the next blocking read or by `flush`.
    pub(crate) fn queue(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if !self.output.is_empty() {
            let result = self.stream.write_all(&self.output).await;
            self.output.clear();
            result?;
        }
        self.stream.flush().await
    }

    /// Reads more bytes into the input buffer, writing pending replies first; returns how many
    /// were read (0 at end of stream).
    pub(crate) async fn fill(&mut self) -> io::Result<usize> {
        self.flush().await?;
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        self.input.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Polls once for input without waiting; true if the client had already sent something.
    pub(crate) async fn input_ready_now(&mut self) -> bool {
        if self.has_buffered_input() {
            return true;
        }
        let mut chunk = [0u8; 512];
        match tokio::time::timeout(std::time::Duration::ZERO, self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.input.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    /// Reads one command line, ended by LF (a CR before it is removed).
    pub(crate) async fn read_line(&mut self) -> io::Result<Line> {
        let mut discarding = false;
        loop {
            if let Some(end) = self.input.iter().position(|&byte| byte == b'\n') {
                if discarding || end > self.max_line {
                    self.consume(end + 1);
                    return Ok(Line::TooLong);
                }
                let mut line: Vec<u8> = self.input.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Line::Text(line));
            }
            if self.input.len() > self.max_line {
                self.input.clear();
                discarding = true;
            }
            if self.fill().await? == 0 {
                return Ok(Line::Eof);
            }
        }
    }

    /// Upgrades to TLS. Plaintext read ahead is discarded first (it was sent before the
    /// handshake and must not be taken as coming over TLS); returns the protocol and cipher.
    pub(crate) async fn start_tls(
        &mut self,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<String> {
        self.flush().await?;
        self.input.clear();
        let placeholder: Box<dyn Io> =
            Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink()));
        let plain = std::mem::replace(&mut self.stream, placeholder);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let tls = acceptor.accept(plain).await?;
        let (_, connection) = tls.get_ref();
        let version = connection
            .protocol_version()
            .and_then(|version| version.as_str())
            .unwrap_or("TLS")
            .replace('_', ".");
        let cipher = connection
            .negotiated_cipher_suite()
            .and_then(|suite| suite.suite().as_str())
            .unwrap_or("unknown");
        let description = format!("using {version} with cipher {cipher}");
        self.stream = Box::new(tls);
        Ok(description)
    }

    pub(crate) async fn shutdown(&mut self) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}
