//! IMAP4rev2 (RFC 9051) next to IMAP4rev1, UTF8=ACCEPT (RFC 6855), COMPRESS=DEFLATE (RFC 4978)
//! and NOTIFY (RFC 5465), over real sockets, Maildirs and SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a failure is the test failing.

mod support;
use support::*;

use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

fn the<'a>(lines: &'a [String], prefix: &str) -> Vec<&'a String> {
    lines
        .iter()
        .filter(|line| line.starts_with(prefix))
        .collect()
}

#[tokio::test]
async fn capabilities_name_the_new_extensions_after_login() {
    let server = start(true).await;
    let mut client = server.client().await;
    let (lines, _) = client.run("CAPABILITY").await;
    assert!(lines[0].contains(" IMAP4rev1 IMAP4rev2 "), "{lines:?}");
    assert!(!lines[0].contains("COMPRESS"), "{lines:?}");
    let (_, done) = client.run("LOGIN alice@example.com secret").await;
    for capability in [
        "IMAP4rev2",
        "UTF8=ACCEPT",
        "COMPRESS=DEFLATE",
        "NOTIFY",
        "LITERAL+",
    ] {
        assert!(
            done.contains(&format!(" {capability}")),
            "{capability}: {done}"
        );
    }
}

/// Without ENABLE IMAP4rev2 a session keeps every IMAP4rev1 answer.
#[tokio::test]
async fn without_enable_the_answers_stay_imap4rev1() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "1")).await;
    let mut client = server.logged_in("alice").await;
    let (lines, done) = client.run("SELECT INBOX").await;
    assert!(done.starts_with("OK"), "{done}");
    assert!(lines.contains(&"* 1 RECENT".to_owned()), "{lines:?}");
    assert!(
        lines.contains(&"* OK [UNSEEN 1] First unseen.".to_owned()),
        "{lines:?}"
    );
    let (lines, _) = client.run("FETCH 1 FLAGS").await;
    assert_eq!(lines, ["* 1 FETCH (FLAGS (\\Recent))"]);
    let (lines, _) = client.run("SEARCH ALL").await;
    assert_eq!(lines, ["* SEARCH 1"]);
    let (_, done) = client.run("CREATE \"Entw&APw-rfe\"").await;
    assert!(done.starts_with("OK"), "{done}");
    let (lines, _) = client.run("LIST \"\" \"Entw*\"").await;
    assert_eq!(lines, ["* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe"]);
    let (lines, _) = client.run("SELECT INBOX").await;
    assert!(the(&lines, "* OK [CLOSED]").is_empty(), "{lines:?}");
    // SEARCH CHARSET stays allowed.
    let (_, done) = client.run("SEARCH CHARSET UTF-8 ALL").await;
    assert!(done.starts_with("OK"), "{done}");
}

#[tokio::test]
async fn enable_imap4rev2_switches_to_rfc9051_answers() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "1")).await;
    server.deliver("alice", &message("two", "2")).await;
    let mut client = server.logged_in("alice").await;
    let (lines, done) = client.run("ENABLE IMAP4rev2").await;
    assert_eq!(lines, ["* ENABLED IMAP4rev2"]);
    assert!(done.starts_with("OK"), "{done}");
    let (lines, _) = client.run("SELECT INBOX").await;
    assert!(the(&lines, "* 2 EXISTS").len() == 1, "{lines:?}");
    assert!(
        lines.iter().all(|line| !line.contains("RECENT")),
        "{lines:?}"
    );
    // RFC 9051 has no UNSEEN response code.
    assert!(
        lines.iter().all(|line| !line.contains("[UNSEEN")),
        "{lines:?}"
    );
    let (lines, _) = client.run("FETCH 1:* FLAGS").await;
    assert_eq!(lines, ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"]);
    // SEARCH answers ESEARCH.
    let (lines, _) = client.run("SEARCH ALL").await;
    assert_eq!(
        lines,
        [format!(
            "* ESEARCH (TAG \"a{}\") ALL 1:2",
            client.next_tag - 1
        )]
    );
    let (lines, _) = client.run("UID SEARCH SUBJECT nothing").await;
    assert_eq!(
        lines,
        [format!("* ESEARCH (TAG \"a{}\") UID", client.next_tag - 1)]
    );
    // New mail: EXISTS, no RECENT.
    server.deliver("alice", &message("three", "3")).await;
    let (lines, _) = client.run("NOOP").await;
    assert_eq!(lines, ["* 3 EXISTS"]);
    // STATUS DELETED and SIZE.
    client.run("STORE 1 +FLAGS (\\Deleted)").await;
    let (lines, _) = client.run("STATUS INBOX (MESSAGES DELETED SIZE)").await;
    assert!(
        lines[0].starts_with("* STATUS INBOX (MESSAGES 3 DELETED 1 SIZE "),
        "{lines:?}"
    );
    // Selecting again closes the first mailbox with [CLOSED].
    let (lines, _) = client.run("EXAMINE INBOX").await;
    assert_eq!(the(&lines, "* OK [CLOSED]").len(), 1, "{lines:?}");
    // UTF-8 mailbox names.
    let (_, done) = client.run("CREATE \"Entwürfe\"").await;
    assert!(done.starts_with("OK"), "{done}");
    let (lines, _) = client.run("LIST \"\" \"Entw*\"").await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("* LIST (\\HasNoChildren) \"/\" "),
        "{lines:?}"
    );
    // Quoted, not a literal: UTF-8 is allowed in quoted strings under IMAP4rev2.
    assert!(lines[0].ends_with(" \"Entwürfe\""), "{lines:?}");
    assert!(server.maildir("alice").await.join("Entw&APw-rfe").is_dir());
}

#[tokio::test]
async fn utf8_accept_names_round_trip_and_append_takes_utf8_literals() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    // The UTF8 form before ENABLE is refused.
    client
        .send(b"u1 APPEND INBOX UTF8 (~{5+}\r\nhello)\r\n")
        .await;
    let (_, done) = client.until_tagged("u1").await;
    assert!(done.starts_with("BAD"), "{done}");
    let (lines, _) = client.run("ENABLE UTF8=ACCEPT").await;
    assert_eq!(lines, ["* ENABLED UTF8=ACCEPT"]);
    for name in ["Entwürfe", "日本語", "A&B"] {
        let (_, done) = client.run(&format!("CREATE \"{name}\"")).await;
        assert!(done.starts_with("OK"), "{name}: {done}");
    }
    let maildir = server.maildir("alice").await;
    for on_disk in ["Entw&APw-rfe", "&ZeVnLIqe-", "A&-B"] {
        assert!(maildir.join(on_disk).is_dir(), "{on_disk}");
    }
    let (lines, _) = client.run("LIST \"\" *").await;
    let listed = lines.join("\n");
    for name in ["Entwürfe", "日本語", "A&B"] {
        assert!(listed.contains(name), "{name}: {listed}");
    }
    // A rev1 session sees the same folders in modified UTF-7.
    let mut other = server.logged_in("alice").await;
    let (lines, _) = other.run("LIST \"\" \"Entw*\"").await;
    assert_eq!(lines, ["* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe"]);
    // APPEND with the UTF8 literal form, then read back by its UTF-8 name.
    let body = message("Grüße", "Schöne Grüße").replacen(
        "\r\n\r\n",
        "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        1,
    );
    client
        .send(format!("u2 APPEND \"Entwürfe\" UTF8 (~{{{}}}\r\n", body.len()).as_bytes())
        .await;
    assert!(client.line().await.starts_with('+'));
    client.send(format!("{body})\r\n").as_bytes()).await;
    let (_, done) = client.until_tagged("u2").await;
    assert!(done.starts_with("OK [APPENDUID"), "{done}");
    let (lines, done) = client.run("SELECT \"Entwürfe\"").await;
    assert!(done.starts_with("OK"), "{done}");
    assert!(lines.contains(&"* 1 EXISTS".to_owned()), "{lines:?}");
    let (lines, _) = client.run("FETCH 1 BODY.PEEK[TEXT]").await;
    assert!(lines[0].contains("Schöne Grüße"), "{lines:?}");
    let (lines, _) = client.run("STATUS \"日本語\" (MESSAGES)").await;
    assert!(lines[0].contains("日本語"), "{lines:?}");
    // SEARCH CHARSET is not allowed after ENABLE UTF8=ACCEPT (RFC 6855 3).
    let (_, done) = client.run("SEARCH CHARSET UTF-8 TEXT Grüße").await;
    assert!(done.starts_with("BAD"), "{done}");
    let (lines, _) = client.run("SEARCH BODY \"Grüße\"").await;
    assert_eq!(lines, ["* SEARCH 1"]);
}

/// RFC 9051 7.5.2: an unsolicited FETCH (another session changed the flags) carries the
/// UID under IMAP4rev2; rev1 keeps it short, as before.
#[tokio::test]
async fn unsolicited_fetch_carries_the_uid_under_rev2() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "1")).await;
    let mut rev2 = server.logged_in("alice").await;
    rev2.run("ENABLE IMAP4rev2").await;
    rev2.run("SELECT INBOX").await;
    let mut rev1 = server.logged_in("alice").await;
    rev1.run("SELECT INBOX").await;
    let mut other = server.logged_in("alice").await;
    other.run("SELECT INBOX").await;
    other.run("STORE 1 +FLAGS.SILENT (\\Flagged)").await;
    let (lines, _) = rev2.run("NOOP").await;
    assert_eq!(lines, ["* 1 FETCH (UID 1 FLAGS (\\Flagged))"]);
    let (lines, _) = rev1.run("NOOP").await;
    assert_eq!(lines, ["* 1 FETCH (FLAGS (\\Flagged))"]);
}

/// A large UTF8 literal is streamed like any large APPEND, `)` closing the line.
#[tokio::test]
async fn a_streamed_utf8_append_is_stored() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    client.run("ENABLE UTF8=ACCEPT").await;
    let body = message("big", &"ä".repeat(33_000));
    client
        .send(format!("u1 APPEND INBOX UTF8 (~{{{}+}}\r\n{body})\r\n", body.len()).as_bytes())
        .await;
    let (_, done) = client.until_tagged("u1").await;
    assert!(done.starts_with("OK [APPENDUID"), "{done}");
    let (_, done) = client.run("SELECT INBOX").await;
    assert!(done.starts_with("OK"), "{done}");
    let (lines, _) = client.run("FETCH 1 RFC822.SIZE").await;
    assert_eq!(lines, [format!("* 1 FETCH (RFC822.SIZE {})", body.len())]);
}

/// The client's half of COMPRESS=DEFLATE, with flate2 as a real deflate peer.
struct Deflated<S> {
    stream: S,
    compress: Compress,
    decompress: Decompress,
    /// Decompressed bytes not yet taken.
    input: Vec<u8>,
    wire_in: usize,
    next_tag: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Deflated<S> {
    fn new(stream: S) -> Deflated<S> {
        Deflated {
            stream,
            compress: Compress::new(Compression::default(), false),
            decompress: Decompress::new(false),
            input: Vec::new(),
            wire_in: 0,
            next_tag: 100,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        let mut out = Vec::with_capacity(bytes.len() + 1024);
        self.compress
            .compress_vec(bytes, &mut out, FlushCompress::Sync)
            .unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    /// Reads and decompresses until `n` bytes are at hand.
    async fn fill(&mut self, n: usize) {
        while self.input.len() < n {
            let mut raw = vec![0; 64 * 1024];
            let read = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut raw))
                .await
                .expect("server answered within 10 s")
                .unwrap();
            assert!(read > 0, "connection closed");
            self.wire_in += read;
            let mut raw = &raw[..read];
            while !raw.is_empty() {
                self.input.reserve(256 * 1024);
                let before = self.decompress.total_in();
                self.decompress
                    .decompress_vec(raw, &mut self.input, FlushDecompress::Sync)
                    .unwrap();
                raw = &raw[(self.decompress.total_in() - before) as usize..];
            }
        }
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(end) = self.input.iter().position(|&byte| byte == b'\n') {
                let line: Vec<u8> = self.input.drain(..=end).collect();
                return String::from_utf8_lossy(&line).into_owned();
            }
            let want = self.input.len() + 1;
            self.fill(want).await;
        }
    }

    async fn run(&mut self, command: &str) -> (Vec<String>, String) {
        let tag = format!("z{}", self.next_tag);
        self.next_tag += 1;
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        let mut untagged = Vec::new();
        loop {
            let mut line = self.line().await;
            while let Some(size) = literal_size(&line) {
                self.fill(size).await;
                let data: Vec<u8> = self.input.drain(..size).collect();
                line.push_str(&String::from_utf8_lossy(&data));
                line.push_str(&self.line().await);
            }
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return (untagged, rest.trim_end().to_owned());
            }
            untagged.push(line.trim_end().to_owned());
        }
    }
}

/// Turns COMPRESS on for a logged-in client and hands over its stream.
async fn compress<S: AsyncRead + AsyncWrite + Unpin>(mut client: Client<S>) -> Deflated<S> {
    let (lines, done) = client.run("COMPRESS DEFLATE").await;
    assert!(lines.is_empty(), "{lines:?}");
    assert!(done.starts_with("OK"), "{done}");
    assert!(client.stream.buffer().is_empty());
    Deflated::new(client.stream.into_inner())
}

#[tokio::test]
async fn compress_deflate_carries_the_session_both_ways() {
    let server = start(true).await;
    for n in 0..20 {
        server
            .deliver(
                "alice",
                &message(
                    &format!("m{n}"),
                    &"Lorem ipsum dolor sit amet. ".repeat(200),
                ),
            )
            .await;
    }
    let mut plain = server.logged_in("alice").await;
    plain.run("SELECT INBOX").await;
    let (expected, _) = plain.run("FETCH 1:* (ENVELOPE BODY.PEEK[])").await;

    let mut client = compress(server.logged_in("alice").await).await;
    let (lines, done) = client.run("CAPABILITY").await;
    assert!(done.starts_with("OK"), "{done}");
    assert!(!lines[0].contains("COMPRESS=DEFLATE"), "{lines:?}");
    client.run("SELECT INBOX").await;
    let before = client.wire_in;
    let (lines, done) = client.run("FETCH 1:* (ENVELOPE BODY.PEEK[])").await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(lines, expected);
    let plain_bytes: usize = lines.iter().map(String::len).sum();
    let wire = client.wire_in - before;
    assert!(
        wire * 5 < plain_bytes,
        "{wire} bytes on the wire for {plain_bytes}"
    );
    // A second COMPRESS is refused, and the session goes on compressed.
    let (_, done) = client.run("COMPRESS DEFLATE").await;
    assert!(done.starts_with("NO [COMPRESSIONACTIVE]"), "{done}");
    // A message appended through the compressed stream arrives whole.
    let body = message("up", &"x".repeat(90_000));
    let (_, done) = client
        .run(&format!("APPEND INBOX {{{}+}}\r\n{body}", body.len()))
        .await;
    assert!(done.starts_with("OK [APPENDUID"), "{done}");
    let (lines, _) = client.run("FETCH 21 BODY.PEEK[]").await;
    assert!(lines[0].contains(&body), "{}", &lines[0][..80]);
    let (lines, done) = client.run("LOGOUT").await;
    assert_eq!(lines, ["* BYE Logging out."]);
    assert!(done.starts_with("OK"), "{done}");
}

#[tokio::test]
async fn compress_works_over_tls_and_refuses_other_mechanisms() {
    let server = start(false).await;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.tls_port))
        .await
        .unwrap();
    let tls = server
        .tls_connector()
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let mut client = Client::new(tls);
    assert!(client.line().await.starts_with("* OK"));
    let (_, done) = client.run("COMPRESS DEFLATE").await;
    assert!(done.starts_with("BAD"), "before login: {done}");
    let (_, done) = client.run("LOGIN alice@example.com secret").await;
    assert!(done.starts_with("OK"), "{done}");
    let (_, done) = client.run("COMPRESS BZIP2").await;
    assert!(done.starts_with("BAD"), "{done}");
    let mut client = compress(client).await;
    let (lines, done) = client.run("LIST \"\" INBOX").await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(lines, ["* LIST (\\HasNoChildren) \"/\" INBOX"]);
}

/// A few KiB that inflate to 64 MiB of one line meet the line limit, as plain input does;
/// the server holds no more than it would for plain input.
#[tokio::test]
async fn a_compressed_bomb_meets_the_plain_limits() {
    let server = start(true).await;
    let mut client = compress(server.logged_in("alice").await).await;
    let mut bomb = b"z1 NOOP ".to_vec();
    bomb.extend(std::iter::repeat_n(b'a', 64 << 20));
    bomb.extend_from_slice(b"\r\n");
    let mut compressed = Vec::with_capacity(1 << 20);
    client
        .compress
        .compress_vec(&bomb, &mut compressed, FlushCompress::Sync)
        .unwrap();
    assert!(compressed.len() < 1 << 20, "{}", compressed.len());
    client.stream.write_all(&compressed).await.unwrap();
    let line = client.line().await;
    assert!(line.contains("BAD") && line.contains("too long"), "{line}");
    let (_, done) = client.run("NOOP").await;
    assert!(done.starts_with("OK"), "{done}");
    let largest = server.ctx.largest_input_buffer();
    assert!(largest <= 128 * 1024, "an input buffer of {largest} bytes");
}

/// Python's imaplib over a zlib stream: a real client's deflate, not ours.
#[tokio::test]
async fn python_imaplib_speaks_compressed() {
    let server = start(true).await;
    server.deliver("alice", &message("py", "from python")).await;
    let script = r#"
import imaplib, sys, zlib

imaplib.Commands['COMPRESS'] = ('AUTH', 'SELECTED')

class Compressed(imaplib.IMAP4):
    def start_compress(self):
        typ, data = self._simple_command('COMPRESS', 'DEFLATE')
        assert typ == 'OK', (typ, data)
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._inflate = zlib.decompressobj(-15)
        self._pending = b''
    def send(self, data):
        if hasattr(self, '_deflate'):
            data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)
    def _fill(self):
        raw = self.sock.recv(65536)
        if not raw:
            raise EOFError
        self._pending += self._inflate.decompress(raw)
    def read(self, size):
        if not hasattr(self, '_deflate'):
            return super().read(size)
        while len(self._pending) < size:
            self._fill()
        out, self._pending = self._pending[:size], self._pending[size:]
        return out
    def readline(self):
        if not hasattr(self, '_deflate'):
            return super().readline()
        while b'\n' not in self._pending:
            self._fill()
        end = self._pending.index(b'\n') + 1
        out, self._pending = self._pending[:end], self._pending[end:]
        return out

imap = Compressed('127.0.0.1', int(sys.argv[1]))
imap.login('alice@example.com', 'secret')
imap.start_compress()
typ, data = imap.select('INBOX')
assert typ == 'OK' and data == [b'1'], (typ, data)
typ, data = imap.fetch('1', '(BODY.PEEK[TEXT])')
assert typ == 'OK' and b'from python' in data[0][1], data
typ, data = imap.status('INBOX', '(MESSAGES)')
assert data == [b'INBOX (MESSAGES 1)'], data
imap.logout()
print('compressed ok')
"#;
    let output = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(server.port.to_string())
        .output()
        .await
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "compressed ok\n");
}

/// Python's imaplib with UTF8=ACCEPT sends and reads UTF-8 mailbox names.
#[tokio::test]
async fn python_imaplib_uses_utf8_names() {
    let server = start(true).await;
    let script = r#"
import imaplib, sys
imap = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
imap.login('alice@example.com', 'secret')
typ, data = imap.enable('UTF8=ACCEPT')
assert typ == 'OK', data
assert imap.create('"Entwürfe"')[0] == 'OK'
typ, data = imap.list('""', '"Entw*"')
assert typ == 'OK', data
assert 'Entwürfe' in repr([d.decode() if isinstance(d, bytes) else d[1].decode() for d in data]), data
assert imap.select('"Entwürfe"')[0] == 'OK'
imap.logout()
print('utf8 ok')
"#;
    let output = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(server.port.to_string())
        .output()
        .await
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(server.maildir("alice").await.join("Entw&APw-rfe").is_dir());
}

/// Reads unsolicited lines until one starts with `prefix`; the lines before it.
async fn until_line<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<S>,
    prefix: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let line = client.line().await.trim_end().to_owned();
        let found = line.starts_with(prefix);
        seen.push(line);
        if found {
            return seen;
        }
    }
}

#[tokio::test]
async fn notify_tells_one_session_what_another_does() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "1")).await;
    let mut watcher = server.logged_in("alice").await;
    let mut other = server.logged_in("alice").await;
    other.run("CREATE Archive").await;
    // IMAP4rev2: no RECENT lines between the ones looked for.
    watcher.run("ENABLE IMAP4rev2").await;
    watcher.run("SELECT INBOX").await;
    let (lines, done) = watcher
        .run(
            "NOTIFY SET STATUS (SELECTED (MessageNew MessageExpunge FlagChange)) \
             (PERSONAL (MessageNew MessageExpunge MailboxName SubscriptionChange))",
        )
        .await;
    assert!(done.starts_with("OK"), "{done}");
    // STATUS: every watched mailbox but the selected one, now.
    // The account's special-use folders are there too; INBOX, selected, is not.
    let archive = the(&lines, "* STATUS Archive ");
    assert_eq!(archive.len(), 1, "{lines:?}");
    assert!(
        archive[0].starts_with("* STATUS Archive (MESSAGES 0 UIDNEXT 1 UIDVALIDITY "),
        "{lines:?}"
    );
    assert!(the(&lines, "* STATUS INBOX").is_empty(), "{lines:?}");

    // New mail in the selected mailbox, by delivery: EXISTS without any command.
    server.deliver("alice", &message("two", "2")).await;
    let seen = until_line(&mut watcher, "* 2 EXISTS").await;
    assert_eq!(seen, ["* 2 EXISTS"]);
    // A flag set by the other session.
    other.run("SELECT INBOX").await;
    other.run("STORE 1 +FLAGS (\\Flagged)").await;
    let seen = until_line(&mut watcher, "* 1 FETCH").await;
    // Unsolicited, so with its UID (RFC 9051 7.5.2).
    assert_eq!(seen, ["* 1 FETCH (UID 1 FLAGS (\\Flagged))"]);
    // An expunge.
    other.run("STORE 2 +FLAGS (\\Deleted)").await;
    other.run("EXPUNGE").await;
    let seen = until_line(&mut watcher, "* 2 EXPUNGE").await;
    assert_eq!(seen.last().unwrap(), "* 2 EXPUNGE");
    // A message in another mailbox: STATUS.
    let body = message("archived", "a");
    let (_, done) = other
        .run(&format!("APPEND Archive {{{}+}}\r\n{body}", body.len()))
        .await;
    assert!(done.starts_with("OK"), "{done}");
    let seen = until_line(&mut watcher, "* STATUS Archive").await;
    assert!(
        seen.last()
            .unwrap()
            .starts_with("* STATUS Archive (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "),
        "{seen:?}"
    );
    // A mailbox created, subscribed, deleted.
    other.run("CREATE Projects").await;
    let seen = until_line(&mut watcher, "* LIST").await;
    assert_eq!(seen, ["* LIST (\\HasNoChildren) \"/\" Projects"]);
    other.run("SUBSCRIBE Projects").await;
    let seen = until_line(&mut watcher, "* LIST").await;
    assert_eq!(seen, ["* LIST (\\Subscribed) \"/\" Projects"]);
    other.run("UNSUBSCRIBE Projects").await;
    let seen = until_line(&mut watcher, "* LIST").await;
    assert_eq!(seen, ["* LIST () \"/\" Projects"]);
    other.run("DELETE Projects").await;
    let seen = until_line(&mut watcher, "* LIST (\\NonExistent)").await;
    assert_eq!(
        seen.last().unwrap(),
        "* LIST (\\NonExistent) \"/\" Projects"
    );
    // The session's own mailbox changes are not told back to it.
    let (lines, done) = watcher.run("CREATE Mine").await;
    assert!(
        done.starts_with("OK") && lines.is_empty(),
        "{lines:?} {done}"
    );
    let (lines, _) = watcher.run("NOOP").await;
    assert!(lines.is_empty(), "{lines:?}");

    // NOTIFY NONE: nothing more is sent unasked; NOOP tells as before.
    let (_, done) = watcher.run("NOTIFY NONE").await;
    assert!(done.starts_with("OK"), "{done}");
    server.deliver("alice", &message("three", "3")).await;
    let quiet = tokio::time::timeout(Duration::from_millis(500), watcher.line()).await;
    assert!(quiet.is_err(), "unsolicited after NOTIFY NONE: {quiet:?}");
    let (lines, _) = watcher.run("NOOP").await;
    assert_eq!(lines, ["* 2 EXISTS"]);
}

#[tokio::test]
async fn notify_refuses_what_it_does_not_support() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let (_, done) = client
        .run("NOTIFY SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER]) MessageExpunge))")
        .await;
    assert!(done.starts_with("NO [BADEVENT ("), "{done}");
    let (_, done) = client.run("NOTIFY SET (PERSONAL (AnnotationChange))").await;
    assert!(done.starts_with("NO [BADEVENT ("), "{done}");
    let (_, done) = client.run("NOTIFY SET (SELECTED (MessageNew))").await;
    assert!(done.starts_with("BAD"), "{done}");
    let (_, done) = client.run("NOTIFY SET (SELECTED (FlagChange))").await;
    assert!(done.starts_with("BAD"), "{done}");
    let (_, done) = client.run("NOTIFY SET (NOWHERE (MessageNew))").await;
    assert!(done.starts_with("BAD"), "{done}");
    let (_, done) = client.run("NOTIFY SET").await;
    assert!(done.starts_with("BAD"), "{done}");
    // SUBTREE with a list, and NONE as the events.
    let (_, done) = client
        .run("NOTIFY SET (SUBTREE (INBOX Archive) (MessageNew MessageExpunge)) (INBOXES NONE)")
        .await;
    assert!(done.starts_with("OK"), "{done}");
    // More mailboxes than one session watches.
    for n in 0..=mailstead_imap_max_watched() {
        let (_, done) = client.run(&format!("CREATE f{n}")).await;
        assert!(done.starts_with("OK"), "{done}");
    }
    let (_, done) = client
        .run("NOTIFY SET (PERSONAL (MessageNew MessageExpunge))")
        .await;
    assert!(done.starts_with("NO [LIMIT]"), "{done}");
}

/// The bound on watched mailboxes (`cmd::notify::MAX_WATCHED`).
fn mailstead_imap_max_watched() -> usize {
    100
}

/// NOTIFY's other mailboxes are told during IDLE too, and after SELECT of a watched mailbox
/// its changes come as EXISTS, not STATUS.
#[tokio::test]
async fn notify_goes_on_during_idle_and_follows_the_selection() {
    let server = start(true).await;
    let mut watcher = server.logged_in("alice").await;
    let mut other = server.logged_in("alice").await;
    watcher.run("ENABLE IMAP4rev2").await;
    watcher.run("SELECT INBOX").await;
    let (_, done) = watcher
        .run("NOTIFY SET (SELECTED (MessageNew MessageExpunge)) (PERSONAL (MessageNew MessageExpunge))")
        .await;
    assert!(done.starts_with("OK"), "{done}");
    watcher.send(b"i1 IDLE\r\n").await;
    assert!(watcher.line().await.starts_with('+'));
    let body = message("archived", "a");
    other
        .run(&format!("APPEND Archive {{{}+}}\r\n{body}", body.len()))
        .await;
    let seen = until_line(&mut watcher, "* STATUS Archive").await;
    assert!(
        seen.last()
            .unwrap()
            .starts_with("* STATUS Archive (MESSAGES 1 UIDNEXT 2 "),
        "{seen:?}"
    );
    watcher.send(b"DONE\r\n").await;
    let (_, done) = watcher.until_tagged("i1").await;
    assert!(done.starts_with("OK"), "{done}");
    // Archive selected: its new mail is EXISTS; INBOX, no longer selected, is STATUS.
    let (_, done) = watcher.run("SELECT Archive").await;
    assert!(done.starts_with("OK"), "{done}");
    other
        .run(&format!("APPEND Archive {{{}+}}\r\n{body}", body.len()))
        .await;
    let seen = until_line(&mut watcher, "* 2 EXISTS").await;
    assert!(
        seen.iter().all(|line| !line.starts_with("* STATUS")),
        "{seen:?}"
    );
    server.deliver("alice", &message("new", "n")).await;
    let seen = until_line(&mut watcher, "* STATUS INBOX").await;
    assert!(
        seen.last()
            .unwrap()
            .starts_with("* STATUS INBOX (MESSAGES 1 UIDNEXT 2 "),
        "{seen:?}"
    );
}
