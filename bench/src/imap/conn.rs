//! A minimal IMAP4rev1 client over plain TCP: tagged commands, untagged replies with literals
//! (counted and skipped, never kept), synchronizing literals for APPEND, IDLE. Every server
//! reply that is not what the command expects is an error naming the command and the line.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long one command may take before the run is declared broken.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest response line (without literals) accepted.
const MAX_LINE: usize = 4 << 20;

pub struct Conn {
    stream: BufReader<TcpStream>,
    next_tag: u32,
    line: Vec<u8>,
    scratch: Vec<u8>,
}

/// The reply to one command.
#[derive(Default)]
pub struct Reply {
    /// Untagged responses (`* …`), literals replaced by their `{n}` marker.
    pub untagged: Vec<Vec<u8>>,
    /// Bytes received inside literals.
    pub literal_bytes: usize,
    /// The tagged status line, without the tag.
    pub status: Vec<u8>,
}

impl Reply {
    /// `* N EXISTS`, the last one given.
    pub fn exists(&self) -> Option<u32> {
        self.untagged.iter().rev().find_map(|line| {
            let text = std::str::from_utf8(line).ok()?;
            let rest = text.strip_prefix("* ")?;
            let (n, word) = rest.split_once(' ')?;
            word.trim_end()
                .eq_ignore_ascii_case("EXISTS")
                .then(|| n.parse().ok())?
        })
    }

    /// How many `* N FETCH` responses came.
    pub fn fetches(&self) -> usize {
        self.untagged
            .iter()
            .filter(|line| {
                let mut words = line.split(|&b| b == b' ');
                words.next() == Some(b"*")
                    && words
                        .next()
                        .is_some_and(|n| n.iter().all(u8::is_ascii_digit))
                    && words.next().is_some_and(|w| {
                        w.eq_ignore_ascii_case(b"FETCH") || w.starts_with(b"FETCH")
                    })
            })
            .count()
    }

    /// The numbers of `* SEARCH …` (UIDs for UID SEARCH).
    pub fn search(&self) -> Result<Vec<u32>> {
        let mut found = None;
        for line in &self.untagged {
            let text = String::from_utf8_lossy(line);
            let mut words = text.split_ascii_whitespace();
            if words.next() == Some("*")
                && words
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case("SEARCH"))
            {
                let uids = words
                    .map(|w| {
                        w.parse::<u32>()
                            .with_context(|| format!("bad number {w:?} in {}", shorten(line)))
                    })
                    .collect::<Result<Vec<u32>>>()?;
                found.get_or_insert_with(Vec::new).extend(uids);
            }
        }
        found.ok_or_else(|| anyhow!("no * SEARCH response"))
    }

    /// The UID of `[APPENDUID validity uid]` (UIDPLUS, RFC 4315) in the status line.
    pub fn append_uid(&self) -> Option<u32> {
        let text = String::from_utf8_lossy(&self.status);
        let upper = text.to_ascii_uppercase();
        let at = upper.find("[APPENDUID ")?;
        let rest = &text[at + "[APPENDUID ".len()..];
        let end = rest.find(']')?;
        let mut words = rest[..end].split_ascii_whitespace();
        let _validity = words.next()?;
        words.next()?.parse().ok()
    }
}

/// The first 200 bytes of a line, printable, for error messages.
pub fn shorten(line: &[u8]) -> String {
    let cut = &line[..line.len().min(200)];
    let mut text = String::from_utf8_lossy(cut).trim_end().to_owned();
    if line.len() > 200 {
        text.push('…');
    }
    text
}

/// `{123}` or `{123+}` at the end of a line (CRLF already removed): the literal's size.
fn literal_len(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

impl Conn {
    /// Connects and reads the greeting, which must be `* OK`.
    pub async fn connect(addr: &str) -> Result<Conn> {
        Conn::connect_from(addr, None).await
    }

    /// [`Conn::connect`] from a chosen local address (another loopback address than the
    /// victims', so that penalties per client address tell attacker and victim apart).
    pub async fn connect_from(addr: &str, source: Option<std::net::IpAddr>) -> Result<Conn> {
        let stream = tokio::time::timeout(COMMAND_TIMEOUT, open_stream(addr, source))
            .await
            .with_context(|| format!("connecting to {addr}: timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        let mut conn = Conn {
            stream: BufReader::with_capacity(8 << 10, stream),
            next_tag: 1,
            line: Vec::with_capacity(256),
            scratch: Vec::new(),
        };
        let greeting = conn
            .timed("greeting", async |c| {
                let (line, _) = c.read_response().await?;
                Ok(line)
            })
            .await?;
        if !greeting.starts_with(b"* OK") {
            bail!("greeting from {addr} is not * OK: {}", shorten(&greeting));
        }
        Ok(conn)
    }

    async fn timed<T>(
        &mut self,
        what: &str,
        f: impl AsyncFnOnce(&mut Conn) -> Result<T>,
    ) -> Result<T> {
        match tokio::time::timeout(COMMAND_TIMEOUT, f(self)).await {
            Ok(result) => result.with_context(|| what.to_owned()),
            Err(_) => bail!("{what}: no reply within {COMMAND_TIMEOUT:?}"),
        }
    }

    fn tag(&mut self) -> String {
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    /// One response line with its literals: (line with `{n}` markers, literal bytes).
    async fn read_response(&mut self) -> Result<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        let mut literal_bytes = 0;
        loop {
            self.line.clear();
            let n = (&mut self.stream)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut self.line)
                .await
                .context("reading from the server")?;
            if n == 0 {
                bail!(
                    "the server closed the connection{}",
                    if out.is_empty() {
                        String::new()
                    } else {
                        format!(" after {}", shorten(&out))
                    }
                );
            }
            if !self.line.ends_with(b"\n") {
                bail!("response line longer than {MAX_LINE} bytes");
            }
            let body = self.line.trim_ascii_end();
            out.extend_from_slice(body);
            match literal_len(body) {
                Some(len) => {
                    self.scratch.resize(len.min(64 << 10), 0);
                    let mut left = len;
                    while left > 0 {
                        let chunk = left.min(self.scratch.len());
                        self.stream
                            .read_exact(&mut self.scratch[..chunk])
                            .await
                            .with_context(|| format!("reading a literal of {len} bytes"))?;
                        left -= chunk;
                    }
                    literal_bytes += len;
                }
                None => return Ok((out, literal_bytes)),
            }
        }
    }

    /// Reads responses until the one tagged `tag`; it must be OK.
    async fn read_reply(&mut self, tag: &str) -> Result<Reply> {
        let mut reply = Reply::default();
        loop {
            let (line, literal_bytes) = self.read_response().await?;
            reply.literal_bytes += literal_bytes;
            if line.starts_with(b"* ") {
                reply.untagged.push(line);
            } else if let Some(status) = line
                .strip_prefix(tag.as_bytes())
                .and_then(|rest| rest.strip_prefix(b" "))
            {
                if status.len() >= 2 && status[..2].eq_ignore_ascii_case(b"OK") {
                    reply.status = status.to_vec();
                    return Ok(reply);
                }
                bail!("server answered {}", shorten(&line));
            } else {
                bail!("unexpected response line {}", shorten(&line));
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        let stream = self.stream.get_mut();
        stream
            .write_all(bytes)
            .await
            .context("writing to the server")?;
        Ok(())
    }

    /// Sends `tag command` and reads the reply, which must end in OK.
    pub async fn command(&mut self, command: &str) -> Result<Reply> {
        let tag = self.tag();
        let what = format!("{tag} {}", shorten(command.as_bytes()));
        self.timed(&what, async |c| {
            c.send(format!("{tag} {command}\r\n").as_bytes()).await?;
            c.read_reply(&tag).await
        })
        .await
    }

    /// `APPEND mailbox (flags) {n}` with a synchronizing literal (no LITERAL+ assumed).
    pub async fn append(&mut self, mailbox: &str, flags: &str, message: &[u8]) -> Result<Reply> {
        let tag = self.tag();
        let head = format!("{tag} APPEND {mailbox} ({flags}) {{{}}}\r\n", message.len());
        let what = head.trim_end().to_owned();
        self.timed(&what, async |c| {
            c.send(head.as_bytes()).await?;
            c.wait_continuation(&tag).await?;
            c.send(message).await?;
            c.send(b"\r\n").await?;
            c.read_reply(&tag).await
        })
        .await
    }

    /// Sends `tag head` and, when the server asks for it with `+`, `literal` and `tail`;
    /// returns the tagged status line whatever it says (attacks expect NO and BAD).
    pub async fn exchange(&mut self, head: &str, literal: &[u8], tail: &str) -> Result<Vec<u8>> {
        let tag = self.tag();
        let what = format!("{tag} {}", shorten(head.as_bytes()));
        self.timed(&what, async |c| {
            c.send(format!("{tag} {head}\r\n").as_bytes()).await?;
            let mut sent_literal = literal.is_empty();
            loop {
                let (line, _) = c.read_response().await?;
                if line.starts_with(b"+") && !sent_literal {
                    c.send(literal).await?;
                    c.send(format!("{tail}\r\n").as_bytes()).await?;
                    sent_literal = true;
                } else if let Some(status) = line
                    .strip_prefix(tag.as_bytes())
                    .and_then(|rest| rest.strip_prefix(b" "))
                {
                    return Ok(status.to_vec());
                } else if !line.starts_with(b"* ") {
                    bail!("unexpected response line {}", shorten(&line));
                }
            }
        })
        .await
    }

    /// Reads until a `+` continuation; a tagged reply first is an error.
    async fn wait_continuation(&mut self, tag: &str) -> Result<Vec<u8>> {
        loop {
            let (line, _) = self.read_response().await?;
            if line.starts_with(b"+") {
                return Ok(line);
            }
            if line.starts_with(b"* ") {
                continue;
            }
            if line.starts_with(tag.as_bytes()) {
                bail!(
                    "server answered {} instead of a continuation",
                    shorten(&line)
                );
            }
            bail!("unexpected response line {}", shorten(&line));
        }
    }

    /// Sends `IDLE` and waits for the `+ idling` continuation; returns the tag for [`Conn::done`].
    pub async fn idle(&mut self) -> Result<String> {
        let tag = self.tag();
        self.timed("IDLE", async |c| {
            c.send(format!("{tag} IDLE\r\n").as_bytes()).await?;
            c.wait_continuation(&tag).await
        })
        .await?;
        Ok(tag)
    }

    /// Ends IDLE: `DONE`, then the tagged OK of the IDLE command.
    pub async fn done(&mut self, tag: &str) -> Result<Reply> {
        self.timed("DONE (end of IDLE)", async |c| {
            c.send(b"DONE\r\n").await?;
            c.read_reply(tag).await
        })
        .await
    }

    /// `LOGOUT`: the reply must carry `* BYE` and the tagged OK.
    pub async fn logout(mut self) -> Result<()> {
        let reply = self.command("LOGOUT").await?;
        if !reply.untagged.iter().any(|l| l.starts_with(b"* BYE")) {
            bail!("LOGOUT: no * BYE before the tagged OK");
        }
        Ok(())
    }
}

async fn open_stream(addr: &str, source: Option<std::net::IpAddr>) -> std::io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr).await;
    };
    let target = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{addr} resolves to nothing")))?;
    let socket = if target.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(std::net::SocketAddr::new(source, 0))?;
    socket.connect(target).await
}

/// An IMAP quoted string.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_sizes() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {123}"), Some(123));
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12+}"), Some(12));
        assert_eq!(literal_len(b"* OK {x}"), None);
        assert_eq!(literal_len(b"* OK done"), None);
    }

    #[test]
    fn reply_parsing() {
        let reply = Reply {
            untagged: vec![
                b"* 1000 EXISTS".to_vec(),
                b"* 0 RECENT".to_vec(),
                b"* 1 FETCH (FLAGS (\\Seen))".to_vec(),
                b"* 2 FETCH (FLAGS ())".to_vec(),
                b"* SEARCH 3 5 8".to_vec(),
            ],
            literal_bytes: 0,
            status: b"OK [APPENDUID 1700000000 1234] Append completed.".to_vec(),
        };
        assert_eq!(reply.exists(), Some(1000));
        assert_eq!(reply.fetches(), 2);
        assert_eq!(reply.search().unwrap(), vec![3, 5, 8]);
        assert_eq!(reply.append_uid(), Some(1234));
    }
}
