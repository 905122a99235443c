//! COMPRESS=DEFLATE (RFC 4978): bytes on the wire and server CPU for a FETCH of every message
//! of INBOX (1,000 in bench/compress.sh), once `(BODY.PEEK[])` and once `(ENVELOPE)`, on one
//! connection with and without COMPRESS. The client inflates with flate2 (its own CPU is not
//! counted); the server's CPU is its process tree's, read from /proc before and after.
//!
//! [`idle`] measures what an idle connection costs the server with and without COMPRESS:
//! N connections log in (with COMPRESS, turn it on), SELECT INBOX and FETCH one message (so
//! both directions of the stream have been used), then wait; the server's RSS is read before
//! and while they wait.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proctree::{clock_ticks, tree_cpu_ticks};

pub struct CompressArgs {
    pub addr: String,
    pub pid: u32,
    pub login: String,
    pub password: String,
    pub label: String,
    pub compress: bool,
    pub repeat: usize,
}

/// One line of the result: label, COMPRESS, command, wire bytes and decompressed bytes per
/// FETCH, server CPU ms per FETCH.
pub struct Measured {
    pub command: &'static str,
    pub wire: usize,
    pub plain: usize,
    pub cpu_ms: f64,
}

struct Client {
    stream: TcpStream,
    deflate: Option<(Compress, Decompress)>,
    /// Plain bytes received and not yet taken.
    input: Vec<u8>,
    wire_in: usize,
    plain_in: usize,
    next_tag: u32,
}

impl Client {
    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        match self.deflate.as_mut() {
            Some((compress, _)) => {
                let mut out = Vec::with_capacity(bytes.len() + 1024);
                compress.compress_vec(bytes, &mut out, FlushCompress::Sync)?;
                self.stream.write_all(&out).await?;
            }
            None => self.stream.write_all(bytes).await?,
        }
        Ok(())
    }

    async fn fill(&mut self) -> Result<()> {
        let mut raw = vec![0; 64 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(60), self.stream.read(&mut raw))
            .await
            .context("server silent for 60 s")??;
        ensure!(n > 0, "server closed the connection");
        self.wire_in += n;
        let before = self.input.len();
        match self.deflate.as_mut() {
            Some((_, decompress)) => {
                let mut raw = raw.get(..n).unwrap_or_default();
                while !raw.is_empty() {
                    self.input.reserve(256 * 1024);
                    let consumed = decompress.total_in();
                    decompress.decompress_vec(raw, &mut self.input, FlushDecompress::Sync)?;
                    let used = usize::try_from(decompress.total_in() - consumed)?;
                    raw = raw.get(used..).unwrap_or_default();
                }
            }
            None => self
                .input
                .extend_from_slice(raw.get(..n).unwrap_or_default()),
        }
        self.plain_in += self.input.len() - before;
        Ok(())
    }

    /// Runs a command; the tagged status line. Literals are skipped by their size.
    async fn command(&mut self, command: &str) -> Result<String> {
        let tag = format!("c{}", self.next_tag);
        self.next_tag += 1;
        self.send(format!("{tag} {command}\r\n").as_bytes()).await?;
        let mut skip = 0usize;
        loop {
            if skip > 0 {
                let n = skip.min(self.input.len());
                self.input.drain(..n);
                skip -= n;
                if skip > 0 {
                    self.fill().await?;
                    continue;
                }
            }
            let Some(end) = self.input.iter().position(|&b| b == b'\n') else {
                self.fill().await?;
                continue;
            };
            let line: Vec<u8> = self.input.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            let trimmed = text.trim_end();
            if let Some(size) = trimmed
                .strip_suffix('}')
                .and_then(|rest| rest.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok())
            {
                skip = size;
                continue;
            }
            if let Some(status) = trimmed.strip_prefix(&format!("{tag} ")) {
                if !status.starts_with("OK") {
                    bail!("{command}: {status}");
                }
                return Ok(status.to_owned());
            }
        }
    }
}

fn server_ms(pid: u32) -> f64 {
    tree_cpu_ticks(pid) as f64 * 1000.0 / clock_ticks()
}

/// A connection logged in as `login`, with COMPRESS on when `compress`.
async fn open(addr: &str, login: &str, password: &str, compress: bool) -> Result<Client> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut client = Client {
        stream,
        deflate: None,
        input: Vec::new(),
        wire_in: 0,
        plain_in: 0,
        next_tag: 1,
    };
    while !client.input.contains(&b'\n') {
        client.fill().await?;
    }
    client.input.clear();
    client
        .command(&format!(
            "LOGIN {} {}",
            crate::conn::quote(login),
            crate::conn::quote(password)
        ))
        .await?;
    if compress {
        client.command("COMPRESS DEFLATE").await?;
        ensure!(client.input.is_empty(), "data after the COMPRESS OK");
        client.deflate = Some((
            Compress::new(Compression::default(), false),
            Decompress::new(false),
        ));
    }
    client.command("SELECT INBOX").await?;
    Ok(client)
}

pub async fn run(args: &CompressArgs) -> Result<Vec<Measured>> {
    let mut client = open(&args.addr, &args.login, &args.password, args.compress).await?;
    let mut results = Vec::new();
    for (command, name) in [
        ("FETCH 1:* (BODY.PEEK[])", "FETCH 1:* (BODY.PEEK[])"),
        ("FETCH 1:* (ENVELOPE)", "FETCH 1:* (ENVELOPE)"),
    ] {
        // Once untimed: the server's caches (and Dovecot's index) are warm for both runs.
        client.command(command).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cpu_before = server_ms(args.pid);
        let (wire_before, plain_before) = (client.wire_in, client.plain_in);
        for _ in 0..args.repeat {
            client.command(command).await?;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let repeat = args.repeat.max(1);
        results.push(Measured {
            command: name,
            wire: (client.wire_in - wire_before) / repeat,
            plain: (client.plain_in - plain_before) / repeat,
            cpu_ms: (server_ms(args.pid) - cpu_before) / repeat as f64,
        });
    }
    client.command("LOGOUT").await.ok();
    Ok(results)
}

/// Tab-separated lines: label, compress, command, wire bytes, plain bytes, server CPU ms.
pub fn print(args: &CompressArgs, results: &[Measured]) {
    for result in results {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{:.1}",
            args.label,
            if args.compress { "COMPRESS" } else { "plain" },
            result.command,
            result.wire,
            result.plain,
            result.cpu_ms
        );
    }
}

/// The server's RSS growth per idle connection, in KiB, for `connections` connections (see
/// the module comment).
pub async fn idle(args: &CompressArgs, connections: usize) -> Result<f64> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = crate::idle::measure(args.pid, true)?.rss_kib;
    let mut open_connections = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut client = open(&args.addr, &args.login, &args.password, args.compress).await?;
        client.command("FETCH 1 (BODY.PEEK[])").await?;
        open_connections.push(client);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = crate::idle::measure(args.pid, true)?.rss_kib;
    for client in &mut open_connections {
        client.command("NOOP").await?;
    }
    Ok(after.saturating_sub(before) as f64 / connections.max(1) as f64)
}
