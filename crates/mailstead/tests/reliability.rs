//! Reliability of the real `mailstead serve`: a SIGKILL while twenty clients deliver loses
//! nothing that was acknowledged and leaves nothing partial in a Maildir; a message over quota
//! is refused after DATA without a trace and without breaking the connection; garbage and a
//! client that vanishes in the middle of DATA leave the server serving.
//!
//! Each test runs the binary in its own temporary directory with its own config file and free
//! loopback ports, and speaks SMTP itself over a plain `TcpStream`.

// The helpers below are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mailstead");
const DOMAIN: &str = "example.test";

/// A data directory, a config file, and (while running) a `mailstead serve` child.
struct Server {
    dir: tempfile::TempDir,
    smtp_port: u16,
    child: Option<Child>,
}

impl Server {
    fn new() -> Server {
        let dir = tempfile::tempdir().unwrap();
        support::reachable_by_server(dir.path());
        let mut server = Server {
            dir,
            smtp_port: 0,
            child: None,
        };
        server.write_config();
        server
    }

    /// Writes the config with fresh ports (a restart gets new ones, so nothing waits for the
    /// old sockets).
    fn write_config(&mut self) {
        self.smtp_port = support::free_port();
        let lmtp_port = support::free_port();
        let config = format!(
            "[server]\nhostname = \"mx.mailstead.test\"\ndata_dir = \"{}\"\n\n\
             [smtp]\nlisten = [\"127.0.0.1:{}\"]\n\n\
             [lmtp]\nlisten = [\"127.0.0.1:{lmtp_port}\", \"unix:{}\"]\n\n\
             [imap]\nlisten = []\nlisten_tls = []\n[pop3]\nlisten = []\nlisten_tls = []\n[managesieve]\nlisten = []\n[submission]\nlisten = []\nlisten_tls = []\n[http]\nlisten = []\n\n\
             [log]\nlevel = \"warn\"\n",
            self.data_dir().display(),
            self.smtp_port,
            self.lmtp_socket().display()
        );
        fs::write(self.config_path(), config).unwrap();
    }

    fn lmtp_socket(&self) -> PathBuf {
        self.dir.path().join("lmtp.sock")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("mailstead.toml")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn maildir(&self, user: &str) -> PathBuf {
        self.data_dir()
            .join("mailboxes")
            .join(DOMAIN)
            .join(user)
            .join("Maildir")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("MAILSTEAD_CONFIG")
            .env_remove("RUST_LOG");
        command
    }

    /// Runs a CLI command (with `stdin` piped in, if any) and expects success.
    fn cli(&self, args: &[&str], stdin: Option<&str>) {
        support::run_ok(self.command(args), &format!("mailstead {args:?}"), stdin);
    }

    fn add_mailbox(&self, user: &str, extra: &[&str]) {
        let address = format!("{user}@{DOMAIN}");
        let mut args = vec!["mailbox", "add", address.as_str()];
        args.extend_from_slice(extra);
        self.cli(&args, Some("a-long-enough-secret-1\n"));
    }

    /// Starts `serve` and waits until its SMTP listener greets.
    fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))
            .unwrap();
        let child = self
            .command(&["serve"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.smtp_port)) {
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut line = String::new();
                if BufReader::new(&stream).read_line(&mut line).is_ok() && line.starts_with("220") {
                    let _ = (&stream).write_all(b"QUIT\r\n");
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("serve exited with {status}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "serve did not listen; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn connect(&self) -> Client {
        Client::connect(self.smtp_port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A minimal SMTP client: one command, one reply.
struct Client {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

#[derive(Debug)]
struct Reply {
    code: u16,
    text: String,
}

impl Client {
    fn try_connect(port: u16) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        let mut client = Client {
            reader: BufReader::new(stream.try_clone()?),
            stream,
        };
        let banner = client.read_reply()?;
        if banner.code != 220 {
            return Err(std::io::Error::other(format!("banner {banner:?}")));
        }
        let ehlo = client.command("EHLO client.test")?;
        if ehlo.code != 250 {
            return Err(std::io::Error::other(format!("EHLO {ehlo:?}")));
        }
        Ok(client)
    }

    fn connect(port: u16) -> Client {
        Client::try_connect(port).unwrap()
    }

    fn read_reply(&mut self) -> std::io::Result<Reply> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end();
            if line.len() < 3 {
                return Err(std::io::Error::other(format!("bad reply line {line:?}")));
            }
            text.push_str(line);
            text.push('\n');
            if line.as_bytes().get(3) != Some(&b'-') {
                let code = line[..3]
                    .parse()
                    .map_err(|_| std::io::Error::other(format!("bad reply line {line:?}")))?;
                return Ok(Reply { code, text });
            }
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    fn command(&mut self, line: &str) -> std::io::Result<Reply> {
        self.send_raw(format!("{line}\r\n").as_bytes())?;
        self.read_reply()
    }

    fn expect(&mut self, line: &str, code: u16) -> Reply {
        let reply = self.command(line).unwrap();
        assert_eq!(reply.code, code, "{line}: {reply:?}");
        reply
    }

    /// MAIL, RCPT, DATA and the body; returns the reply to the final dot. `body` uses CRLF
    /// and needs no dot-stuffing (no line starts with a dot).
    fn send_message(&mut self, to: &str, body: &str) -> std::io::Result<Reply> {
        for (line, code) in [
            ("MAIL FROM:<sender@client.test>".to_owned(), 250),
            (format!("RCPT TO:<{to}>"), 250),
            ("DATA".to_owned(), 354),
        ] {
            let reply = self.command(&line)?;
            if reply.code != code {
                return Err(std::io::Error::other(format!("{line}: {reply:?}")));
            }
        }
        self.send_raw(body.as_bytes())?;
        self.send_raw(b".\r\n")?;
        self.read_reply()
    }
}

/// A message whose every line names `token`, `filler` lines long after the headers.
fn message(token: &str, filler: usize) -> String {
    let mut body = format!("Subject: {token}\r\nMessage-ID: <{token}@client.test>\r\n\r\n");
    for line in 0..filler {
        body.push_str(&format!(
            "{token} line {line:05} abcdefghijklmnopqrstuvwxyz0123456789\r\n"
        ));
    }
    body.push_str(&format!("end of {token}\r\n"));
    body
}

/// The files of a Maildir's `new/` and `cur/` (none when the Maildir does not exist yet).
fn delivered(maildir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = fs::read_dir(maildir.join(sub)) {
            for entry in entries {
                files.push(entry.unwrap().path());
            }
        }
    }
    files.sort();
    files
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    match fs::read_dir(dir) {
        Ok(entries) => entries.map(|entry| entry.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// The `,S=<size>` of a Maildir file name.
fn size_in_name(path: &Path) -> u64 {
    let name = path.file_name().unwrap().to_str().unwrap();
    let start = name
        .find(",S=")
        .unwrap_or_else(|| panic!("no ,S= in {name}"))
        + 3;
    let rest = &name[start..];
    let end = rest.find([',', ':']).unwrap_or(rest.len());
    rest[..end].parse().unwrap()
}

/// Checks that `path` is whole: its size is its `,S=` and it ends with one of `sent`
/// (CRLF turned into LF as on disk). Returns the token it carries.
fn check_whole(path: &Path, sent: &BTreeMap<String, String>) -> String {
    let content = fs::read(path).unwrap();
    assert_eq!(
        content.len() as u64,
        size_in_name(path),
        "{} is not whole",
        path.display()
    );
    let text = String::from_utf8(content).unwrap();
    let subject = text
        .lines()
        .find_map(|line| line.strip_prefix("Subject: "))
        .unwrap_or_else(|| panic!("{} has no Subject", path.display()));
    let body = sent
        .get(subject)
        .unwrap_or_else(|| panic!("{} carries {subject}, never sent", path.display()));
    assert!(
        text.ends_with(&body.replace("\r\n", "\n")),
        "{} does not end with the message sent",
        path.display()
    );
    subject.to_owned()
}

fn setup(mailboxes: &[(&str, &[&str])]) -> Server {
    let server = Server::new();
    server.cli(&["domain", "add", DOMAIN], None);
    for (user, extra) in mailboxes {
        server.add_mailbox(user, extra);
    }
    server
}

#[test]
fn kill_9_while_20_clients_deliver_loses_nothing_acknowledged() {
    let mut server = setup(&[("user1", &[])]);
    server.start();
    let port = server.smtp_port;
    let to = format!("user1@{DOMAIN}");

    let sent = Arc::new(Mutex::new(BTreeMap::<String, String>::new()));
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let running = Arc::new(AtomicBool::new(true));
    let clients: Vec<_> = (0..20)
        .map(|client| {
            let (sent, acknowledged, running, to) = (
                Arc::clone(&sent),
                Arc::clone(&acknowledged),
                Arc::clone(&running),
                to.clone(),
            );
            thread::spawn(move || {
                let Ok(mut smtp) = Client::try_connect(port) else {
                    return;
                };
                let mut number = 0usize;
                while running.load(Ordering::SeqCst) {
                    let token = format!("token-c{client:02}-m{number:05}");
                    // From a few hundred bytes to about 40 KiB, so the kill lands mid-write.
                    let body = message(&token, (client * 37 + number * 53) % 500);
                    number += 1;
                    sent.lock().unwrap().insert(token.clone(), body.clone());
                    match smtp.send_message(&to, &body) {
                        Ok(reply) if reply.code == 250 => acknowledged.lock().unwrap().push(token),
                        Ok(reply) => panic!("{token}: unexpected {reply:?}"),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();

    thread::sleep(Duration::from_millis(1500));
    server.kill();
    running.store(false, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }

    let sent = sent.lock().unwrap().clone();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 20,
        "only {} messages acknowledged before the kill",
        acknowledged.len()
    );

    let maildir = server.maildir("user1");
    let mut copies = BTreeMap::<String, usize>::new();
    for path in delivered(&maildir) {
        *copies.entry(check_whole(&path, &sent)).or_default() += 1;
    }
    for (token, count) in &copies {
        assert_eq!(*count, 1, "{token} delivered {count} times");
    }
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|token| !copies.contains_key(*token))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the Maildir: {missing:?}"
    );
    eprintln!(
        "{} acknowledged, {} in the Maildir, {} sent",
        acknowledged.len(),
        copies.len(),
        sent.len()
    );

    // A restart cleans the spool and delivers again.
    server.write_config();
    server.start();
    let spool_tmp = server.data_dir().join("spool/tmp");
    assert!(
        files_in(&spool_tmp).is_empty(),
        "spool/tmp after restart: {:?}",
        files_in(&spool_tmp)
    );
    let mut sent_after = sent.clone();
    let body = message("token-after-restart", 3);
    sent_after.insert("token-after-restart".to_owned(), body.clone());
    let mut smtp = server.connect();
    let reply = smtp.send_message(&to, &body).unwrap();
    assert_eq!(reply.code, 250, "{reply:?}");
    smtp.expect("QUIT", 221);
    let after: BTreeSet<String> = delivered(&maildir)
        .iter()
        .map(|path| check_whole(path, &sent_after))
        .collect();
    assert!(after.contains("token-after-restart"));
    assert_eq!(after.len(), copies.len() + 1);
}

#[test]
fn over_quota_mid_stream_gives_552_and_no_partial_file_and_the_connection_stays_usable() {
    let mut server = setup(&[("small", &["--quota", "10K"])]);
    server.start();
    let to = format!("small@{DOMAIN}");
    let maildir = server.maildir("small");

    let mut smtp = server.connect();
    // About 50 KiB.
    let big = message("token-big", 900);
    assert!(big.len() >= 50 * 1024, "{}", big.len());
    let reply = smtp.send_message(&to, &big).unwrap();
    assert_eq!(reply.code, 552, "{reply:?}");
    assert!(reply.text.contains("5.2.2"), "{reply:?}");
    assert!(delivered(&maildir).is_empty(), "{:?}", delivered(&maildir));
    assert!(files_in(&maildir.join("tmp")).is_empty());

    smtp.expect("RSET", 250);
    let small = message("token-small", 2);
    let reply = smtp.send_message(&to, &small).unwrap();
    assert_eq!(reply.code, 250, "{reply:?}");
    smtp.expect("QUIT", 221);

    let sent = BTreeMap::from([("token-small".to_owned(), small)]);
    let files = delivered(&maildir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(check_whole(&files[0], &sent), "token-small");
}

#[test]
fn garbage_and_a_client_that_stops_mid_data() {
    let mut server = setup(&[("user1", &[])]);
    server.start();
    let to = format!("user1@{DOMAIN}");
    let maildir = server.maildir("user1");

    // NUL bytes in a command.
    let mut smtp = server.connect();
    smtp.send_raw(b"NO\0OP\0\r\n").unwrap();
    let reply = smtp.read_reply().unwrap();
    assert_eq!(reply.code, 500, "{reply:?}");
    assert!(reply.text.contains("NUL"), "{reply:?}");
    smtp.expect("NOOP", 250);

    // A 10,000-byte line.
    let mut long = vec![b'A'; 10_000];
    long.extend_from_slice(b"\r\n");
    smtp.send_raw(&long).unwrap();
    let reply = smtp.read_reply().unwrap();
    assert_eq!(reply.code, 500, "{reply:?}");
    assert!(reply.text.contains("line too long"), "{reply:?}");
    smtp.expect("NOOP", 250);
    smtp.expect("QUIT", 221);

    // Half a DATA body, then the client is gone.
    let mut half = server.connect();
    half.expect("MAIL FROM:<sender@client.test>", 250);
    half.expect(&format!("RCPT TO:<{to}>"), 250);
    half.expect("DATA", 354);
    let body = message("token-half", 200);
    half.send_raw(&body.as_bytes()[..body.len() / 2]).unwrap();
    half.stream.shutdown(Shutdown::Both).unwrap();
    drop(half);

    // The server notices, drops the spooled half, and delivers nothing.
    let spool_tmp = server.data_dir().join("spool/tmp");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !files_in(&spool_tmp).is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        files_in(&spool_tmp).is_empty(),
        "half a message left in the spool: {:?}",
        files_in(&spool_tmp)
    );
    assert!(delivered(&maildir).is_empty(), "{:?}", delivered(&maildir));

    // A new connection is served.
    let mut smtp = server.connect();
    let whole = message("token-whole", 5);
    let reply = smtp.send_message(&to, &whole).unwrap();
    assert_eq!(reply.code, 250, "{reply:?}");
    smtp.expect("QUIT", 221);
    let sent = BTreeMap::from([("token-whole".to_owned(), whole)]);
    let files = delivered(&maildir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(check_whole(&files[0], &sent), "token-whole");
    // Nothing was written for the half message.
    let rest = files_in(&maildir.join("tmp"));
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn leftovers_in_maildir_tmp_are_cleaned_at_start_and_live_files_are_not() {
    let mut server = setup(&[("user1", &[]), ("user2", &[])]);
    let mut leftovers = Vec::new();
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for user in ["user1", "user2"] {
        let tmp = server.maildir(user).join("tmp");
        fs::create_dir_all(&tmp).unwrap();
        let path = tmp.join(format!("1.M1P1Q1.crashed-{user}"));
        let file = fs::File::create(&path).unwrap();
        file.set_modified(an_hour_ago).unwrap();
        leftovers.push(path);
    }
    server.start();
    // Written after the start: it may be a delivery in progress and must stay.
    let live = server.maildir("user1").join("tmp/2.M1P1Q2.live");
    fs::write(&live, b"being written").unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while leftovers.iter().any(|path| path.exists()) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    for path in &leftovers {
        assert!(!path.exists(), "{} not cleaned", path.display());
    }
    assert!(live.exists(), "a file newer than the start was removed");

    // Delivery still works into the cleaned Maildir.
    let mut smtp = server.connect();
    let body = message("token-clean", 2);
    let reply = smtp
        .send_message(&format!("user1@{DOMAIN}"), &body)
        .unwrap();
    assert_eq!(reply.code, 250, "{reply:?}");
    smtp.expect("QUIT", 221);
    assert_eq!(delivered(&server.maildir("user1")).len(), 1);
}

#[test]
fn configured_timeouts_close_idle_and_stalled_clients_without_leaving_files() {
    let mut server = setup(&[("user1", &[])]);
    let mut config = fs::read_to_string(server.config_path()).unwrap();
    config.push_str("\n[limits]\ncommand_timeout = \"1s\"\ndata_timeout = \"1s\"\n");
    fs::write(server.config_path(), config).unwrap();
    server.start();
    let maildir = server.maildir("user1");
    let spool_tmp = server.data_dir().join("spool/tmp");

    let mut idle = server.connect();
    let started = Instant::now();
    let reply = idle.read_reply().unwrap();
    assert_eq!(reply.code, 421, "{reply:?}");
    assert!(
        reply.text.contains("4.4.2") && reply.text.contains("Error: timeout exceeded"),
        "{reply:?}"
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    let eof = idle.read_reply().unwrap_err();
    assert_eq!(eof.kind(), std::io::ErrorKind::UnexpectedEof, "{eof:?}");

    let mut stalled = server.connect();
    stalled.expect("MAIL FROM:<sender@client.test>", 250);
    stalled.expect(&format!("RCPT TO:<user1@{DOMAIN}>"), 250);
    stalled.expect("DATA", 354);
    let body = message("token-stalled", 100);
    stalled
        .send_raw(&body.as_bytes()[..body.len() / 2])
        .unwrap();
    let reply = stalled.read_reply().unwrap();
    assert_eq!(reply.code, 421, "{reply:?}");
    assert!(reply.text.contains("4.4.2"), "{reply:?}");
    assert!(stalled.read_reply().is_err(), "still connected");
    assert!(
        files_in(&spool_tmp).is_empty(),
        "{:?}",
        files_in(&spool_tmp)
    );
    assert!(delivered(&maildir).is_empty(), "{:?}", delivered(&maildir));
    assert!(files_in(&maildir.join("tmp")).is_empty());
}

/// A tmpfs mounted for one test, unmounted (lazily if still busy) when dropped.
struct TmpfsMount {
    path: PathBuf,
}

impl TmpfsMount {
    /// `None` when mounting is not permitted here (not root, or no CAP_SYS_ADMIN).
    fn try_mount(path: &Path, size: &str) -> Option<TmpfsMount> {
        fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| TmpfsMount {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

#[test]
fn disk_full_mid_stream_gives_4xx_and_no_partial_file_and_the_connection_stays_usable() {
    let mut server = Server::new();
    // The directory lives outside the tiny filesystem; only the data directory (spool,
    // Maildirs, certificate) is on it.
    // Outside the data directory the server does not hand files over to the user it drops
    // to, so the test runs it as `nobody` and gives it the database's directory.
    let database_dir = server.dir.path().join("directory");
    fs::create_dir(&database_dir).unwrap();
    let mut config = fs::read_to_string(server.config_path()).unwrap().replace(
        "[server]\n",
        "[server]\nuser = \"nobody\"\ngroup = \"nogroup\"\n",
    );
    config.push_str(&format!(
        "\n[directory]\nurl = \"sqlite://{}\"\n",
        database_dir.join("directory.db").display()
    ));
    fs::write(server.config_path(), config).unwrap();
    // The test suite runs as root (scripts/test.sh installs and starts services): a tmpfs that
    // cannot be mounted fails the test rather than letting it pass having checked nothing.
    let mount = TmpfsMount::try_mount(&server.data_dir(), "256k")
        .expect("cannot mount a 256k tmpfs: the disk-full test needs root");
    server.cli(&["domain", "add", DOMAIN], None);
    server.add_mailbox("user1", &[]);
    give_to_nobody(&database_dir);
    server.start();
    let to = format!("user1@{DOMAIN}");
    let maildir = server.maildir("user1");
    let spool_tmp = server.data_dir().join("spool/tmp");

    let mut smtp = server.connect();
    // About 1 MiB, four times the whole filesystem.
    let big = message("token-big", 18_000);
    assert!(big.len() >= 1 << 20, "{}", big.len());
    let reply = smtp.send_message(&to, &big).unwrap();
    assert!(
        reply.code == 452 && reply.text.contains("4.3.1 Insufficient system storage"),
        "{reply:?}; log:\n{}",
        server.log()
    );
    assert!(delivered(&maildir).is_empty(), "{:?}", delivered(&maildir));
    assert!(files_in(&maildir.join("tmp")).is_empty());
    assert!(
        files_in(&spool_tmp).is_empty(),
        "{:?}",
        files_in(&spool_tmp)
    );

    smtp.expect("NOOP", 250);
    smtp.expect("RSET", 250);
    // The space came back with the failed message: a small one is delivered whole.
    let small = message("token-small", 2);
    let reply = smtp.send_message(&to, &small).unwrap();
    assert_eq!(reply.code, 250, "{reply:?}");
    smtp.expect("QUIT", 221);
    let sent = BTreeMap::from([("token-small".to_owned(), small)]);
    let files = delivered(&maildir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(check_whole(&files[0], &sent), "token-small");

    // Stop the server before unmounting its data directory.
    server.kill();
    drop(mount);
}

#[test]
fn lmtp_over_a_unix_socket_answers_per_recipient_and_delivers() {
    use std::os::unix::net::UnixStream;

    let mut server = Server::new();
    server.cli(&["domain", "add", DOMAIN], None);
    server.add_mailbox("user1", &[]);
    server.add_mailbox("user2", &[]);
    server.start();
    let stream = UnixStream::connect(server.lmtp_socket()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut reply = || {
        // Multi-line replies end at the line whose code is followed by a space.
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "connection closed");
            if line.as_bytes().get(3) == Some(&b' ') {
                return line;
            }
        }
    };
    assert!(reply().starts_with("220"));
    let mut send = |text: &str| writer.write_all(text.as_bytes()).unwrap();
    send("LHLO client.example.org\r\n");
    assert!(reply().starts_with("250"));
    send("MAIL FROM:<someone@example.org>\r\n");
    assert!(reply().starts_with("250"));
    for user in ["user1", "user2", "nobody"] {
        send(&format!("RCPT TO:<{user}@{DOMAIN}>\r\n"));
        let answer = reply();
        let expected = if user == "nobody" { "550 5.1.1" } else { "250" };
        assert!(answer.starts_with(expected), "{user}: {answer}");
    }
    send("DATA\r\n");
    assert!(reply().starts_with("354"));
    send("Subject: over a unix socket\r\n\r\nhello\r\n.\r\n");
    // One reply per accepted recipient, in order (RFC 2033).
    for user in ["user1", "user2"] {
        let answer = reply();
        assert!(answer.starts_with("250 2.0.0"), "{user}: {answer}");
        assert!(
            answer.contains(&format!("<{user}@{DOMAIN}>")),
            "{user}: {answer}"
        );
    }
    send("QUIT\r\n");
    assert!(reply().starts_with("221"));
    for user in ["user1", "user2"] {
        let new = server.maildir(user).join("new");
        let files = fs::read_dir(&new).unwrap().count();
        assert_eq!(files, 1, "{user}: {}", new.display());
    }
}

/// Chowns `dir` and what is in it to `nobody` (65534), as an administrator would for a
/// database the server opens outside its data directory.
fn give_to_nobody(dir: &Path) {
    const NOBODY: u32 = 65534;
    std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    for entry in fs::read_dir(dir).unwrap() {
        std::os::unix::fs::lchown(entry.unwrap().path(), Some(NOBODY), Some(NOBODY)).unwrap();
    }
}
