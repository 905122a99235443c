//! `mailstead serve` as an administrator starts it: as root, on an empty data directory, under
//! a low open-file limit; and the systemd unit shipped in `dist/`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a failure is the test failing.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_mailstead");
const DOMAIN: &str = "example.test";

/// A `mailstead serve` child with its own data directory and loopback ports.
struct Server {
    dir: tempfile::TempDir,
    smtp_port: u16,
    lmtp_port: u16,
    imap_port: u16,
    child: Option<Child>,
}

impl Server {
    fn new(extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        support::reachable_by_server(dir.path());
        Server::in_dir(dir, extra)
    }

    /// In `dir` as it is (tempfile makes it 0700, as root's home is).
    fn in_dir(dir: tempfile::TempDir, extra: &str) -> Server {
        let server = Server {
            dir,
            smtp_port: support::free_port(),
            lmtp_port: support::free_port(),
            imap_port: support::free_port(),
            child: None,
        };
        fs::write(
            server.config(),
            format!(
                "[server]\nhostname = \"mx.mailstead.test\"\ndata_dir = \"{}\"\n\n\
                 [smtp]\nlisten = [\"127.0.0.1:{}\"]\n\n\
                 [lmtp]\nlisten = [\"127.0.0.1:{}\"]\n\n\
                 [submission]\nlisten = []\nlisten_tls = []\n\n\
                 [pop3]\nlisten = []\nlisten_tls = []\n\n\
                 [managesieve]\nlisten = []\n\n\
                 [http]\nlisten = []\n\n\
                 [imap]\nlisten = [\"127.0.0.1:{}\"]\nlisten_tls = []\n\
                 max_connections_per_ip = 100000\n\n\
                 [log]\nlevel = \"info\"\n{extra}",
                server.data_dir().display(),
                server.smtp_port,
                server.lmtp_port,
                server.imap_port,
            ),
        )
        .unwrap();
        server
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("mailstead.toml")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env_remove("RUST_LOG");
        command
    }

    fn add_mailbox(&self, user: &str) {
        support::run_ok(self.command(&["domain", "add", DOMAIN]), "domain add", None);
        support::run_ok(
            self.command(&["mailbox", "add", &format!("{user}@{DOMAIN}")]),
            "mailbox add",
            Some("a-long-enough-secret-1\n"),
        );
    }

    /// Starts `serve`, under `prlimit --nofile=LIMIT:LIMIT` when given, and waits for SMTP.
    fn serve(&mut self, file_limit: Option<u32>) {
        let log = fs::File::create(self.dir.path().join("serve.log")).unwrap();
        let mut command = match file_limit {
            Some(limit) => {
                support::require("prlimit", "Debian's util-linux");
                let mut command = Command::new("prlimit");
                command
                    .arg(format!("--nofile={limit}:{limit}"))
                    .arg("--")
                    .arg(BIN)
                    .arg("--config")
                    .arg(self.config())
                    .arg("serve");
                command
            }
            None => self.command(&["serve"]),
        };
        self.child = Some(
            command
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        support::wait_for_greeting(self.smtp_port, "220", "mailstead smtp", || self.log());
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn maildir_new(&self, user: &str) -> PathBuf {
        self.data_dir()
            .join("mailboxes")
            .join(DOMAIN)
            .join(user)
            .join("Maildir/new")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"))
}

/// Reads one reply line (or the last line of a multi-line reply).
fn reply(reader: &mut BufReader<TcpStream>) -> String {
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.as_bytes().get(3) != Some(&b'-') {
            return line;
        }
    }
}

/// One message over LMTP (or SMTP); returns the reply to the end of DATA.
fn deliver(port: u16, greeting_verb: &str, to: &str) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let banner = reply(&mut reader);
    assert!(banner.starts_with("220"), "{banner}");
    let mut say = |line: &str, expect: &str| {
        writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        let answer = reply(&mut reader);
        assert!(answer.starts_with(expect), "{line} -> {answer}");
        answer
    };
    say(&format!("{greeting_verb} client.example.org"), "250");
    say("MAIL FROM:<sender@example.org>", "250");
    say(&format!("RCPT TO:<{to}>"), "250");
    say("DATA", "354");
    say(
        "Subject: hello\r\nFrom: sender@example.org\r\n\r\nbody\r\n.",
        "250",
    )
}

fn id(flag: &str, user: &str) -> u32 {
    let output = Command::new("id").args([flag, user]).output().unwrap();
    assert!(output.status.success(), "id {flag} {user}");
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn serve_started_as_root_runs_as_mailstead_and_keeps_its_files_private() {
    if !is_root() {
        eprintln!("skipped: the privilege drop is only tried when the test runs as root");
        return;
    }
    let mut server = Server::new("");
    server.add_mailbox("alice");
    server.serve(None);

    // Every thread, the runtime's workers included, is the mailstead user: real, effective,
    // saved and filesystem ids.
    let uid = id("-u", "mailstead");
    let gid = id("-g", "mailstead");
    assert_ne!(uid, 0);
    let tasks = fs::read_dir(format!("/proc/{}/task", server.pid())).unwrap();
    let mut threads = 0;
    for task in tasks {
        let status = fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        for (key, want) in [("Uid:", uid), ("Gid:", gid)] {
            let line = status.lines().find(|line| line.starts_with(key)).unwrap();
            let ids: Vec<u32> = line
                .split_whitespace()
                .skip(1)
                .map(|id| id.parse().unwrap())
                .collect();
            assert_eq!(ids, vec![want; 4], "{line}\nlog:\n{}", server.log());
        }
        let groups = status
            .lines()
            .find(|line| line.starts_with("Groups:"))
            .unwrap();
        assert_eq!(
            groups.split_whitespace().nth(1),
            Some(gid.to_string().as_str()),
            "{groups}"
        );
        threads += 1;
    }
    assert!(threads > 1, "a multi-threaded runtime");

    // The data directory and the password hashes in it are the server's alone.
    let data_dir = server.data_dir();
    let database = data_dir.join("mailstead.db");
    for path in [&data_dir, &database] {
        let metadata = fs::metadata(path).unwrap();
        assert_eq!(metadata.uid(), uid, "{} owned by mailstead", path.display());
        assert_eq!(
            metadata.mode() & 0o027,
            0,
            "{} is {:o}: not world-readable, not group-writable",
            path.display(),
            metadata.mode()
        );
    }
    assert_eq!(mode(&data_dir.join("tls/key.pem")), 0o600);

    // What the server writes now is the mailstead user's.
    let answer = deliver(server.smtp_port, "EHLO", &format!("alice@{DOMAIN}"));
    assert!(answer.starts_with("250"), "{answer}");
    let delivered = fs::read_dir(server.maildir_new("alice"))
        .unwrap()
        .next()
        .expect("one message")
        .unwrap()
        .path();
    let metadata = fs::metadata(&delivered).unwrap();
    assert_eq!(metadata.uid(), uid);
    assert_eq!(metadata.mode() & 0o077, 0, "{:o}", metadata.mode());
}

#[test]
fn an_existing_data_dir_is_made_private() {
    // A data directory as an earlier version left it: 0755, database 0644.
    let server = Server::new("");
    server.add_mailbox("alice");
    let data_dir = server.data_dir();
    fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let database = data_dir.join("mailstead.db");
    fs::set_permissions(&database, fs::Permissions::from_mode(0o644)).unwrap();
    let mut server = server;
    server.serve(None);
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&database), 0o600);
}

#[test]
fn root_is_refused_as_the_account_to_run_as() {
    let server = Server::new("");
    let config = fs::read_to_string(server.config())
        .unwrap()
        .replace("[server]\n", "[server]\nuser = \"root\"\n");
    fs::write(server.config(), config).unwrap();
    let output = support::run(server.command(&["serve"]), None);
    assert_eq!(output.status.code(), Some(78), "EX_CONFIG");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.user"), "{stderr}");
}

/// 1,000 silent connections under a 1,024 file limit made every accept fail with EMFILE, so
/// deliveries stopped. The cap now fits in the limit, and when it is reached the oldest idle
/// connection before login makes room.
#[test]
fn a_low_file_limit_keeps_accepting_and_delivering() {
    let mut server = Server::new("");
    server.add_mailbox("alice");
    server.serve(Some(256));
    let log = server.log();
    assert!(
        log.contains("limits.max_connections lowered"),
        "the cap is clamped and logged:\n{log}"
    );

    // More silent IMAP clients than descriptors: every one is still accepted and greeted
    // (or told the server is full), none hangs.
    let mut silent = Vec::new();
    for _ in 0..300 {
        let stream = TcpStream::connect(("127.0.0.1", server.imap_port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut greeting = String::new();
        reader.read_line(&mut greeting).unwrap();
        assert!(
            greeting.starts_with("* OK") || greeting.starts_with("* BYE Too many connections"),
            "{greeting:?}\nlog:\n{}",
            server.log()
        );
        silent.push(reader);
    }
    // The oldest silent ones were told to go and closed.
    let oldest = &mut silent[0];
    let mut rest = String::new();
    oldest.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("* BYE Too many connections"), "{rest:?}");

    // New clients still get in, and mail is still delivered.
    let answer = deliver(server.lmtp_port, "LHLO", &format!("alice@{DOMAIN}"));
    assert!(answer.starts_with("250"), "{answer}");
    let answer = deliver(server.smtp_port, "EHLO", &format!("alice@{DOMAIN}"));
    assert!(answer.starts_with("250"), "{answer}");
    assert_eq!(
        fs::read_dir(server.maildir_new("alice")).unwrap().count(),
        2
    );
    assert!(
        !server.log().contains("accept failed"),
        "no accept ran out of descriptors:\n{}",
        server.log()
    );
}

#[test]
fn the_systemd_unit_verifies() {
    support::require("systemd-analyze", "Debian's systemd");
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/mailstead.service");
    let text = fs::read_to_string(&unit).unwrap();
    for wanted in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/mailstead",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
        "User=mailstead",
    ] {
        assert!(text.contains(wanted), "the unit has {wanted:?}");
    }
    // systemd-analyze checks that ExecStart exists: point it at this build.
    let temp = tempfile::tempdir().unwrap();
    let copy = temp.path().join("mailstead.service");
    fs::write(&copy, text.replace("/usr/local/bin/mailstead", BIN)).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("mailstead.service"),
        "warnings about the unit:\n{stderr}"
    );
}

/// The README's first command runs `serve` as root in a checkout, often under root's 0700 home:
/// the server's user must still reach `./data` after the drop.
#[test]
fn a_data_dir_below_a_private_directory_is_reached_after_the_drop() {
    if !is_root() {
        eprintln!("skipped: the privilege drop is only tried when the test runs as root");
        return;
    }
    let private = tempfile::tempdir().unwrap();
    fs::set_permissions(private.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let mut server = Server::in_dir(private, "");
    server.add_mailbox("alice");
    server.serve(None);
    let answer = deliver(server.smtp_port, "EHLO", &format!("alice@{DOMAIN}"));
    assert!(
        answer.starts_with("250"),
        "{answer}\nlog:\n{}",
        server.log()
    );
    assert_eq!(
        mode(server.dir.path()) & 0o777,
        0o701,
        "search only, no listing, for others"
    );
}
