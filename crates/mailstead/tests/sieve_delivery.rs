//! Local delivery through the real `mailstead serve`: quota warnings as Dovecot's
//! quota_warning sends them (one message and one command run per crossing), with mail sent
//! over SMTP and read from the Maildir on disk.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mailstead");
const PASSWORD: &str = "bob-long-password-1";

/// A data directory, config and (while running) `mailstead serve`.
struct Server {
    dir: tempfile::TempDir,
    smtp_port: u16,
    lmtp_port: u16,
    child: Option<Child>,
}

impl Server {
    /// `extra`: more configuration sections.
    fn new(extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        support::reachable_by_server(dir.path());
        let smtp_port = support::free_port();
        let lmtp_port = support::free_port();
        let data_dir = dir.path().join("data");
        let config = format!(
            "[server]\nhostname = \"mx.example.com\"\ndata_dir = \"{}\"\n\n\
             [smtp]\nlisten = [\"127.0.0.1:{smtp_port}\"]\n\n\
             [lmtp]\nlisten = [\"127.0.0.1:{lmtp_port}\"]\n\n\
             [submission]\nlisten = []\nlisten_tls = []\n\n\
             [imap]\nlisten = []\nlisten_tls = []\n\n\
             [pop3]\nlisten = []\nlisten_tls = []\n\n\
             [http]\nlisten = []\n\n\
             [log]\nlevel = \"info\"\n\n{extra}\n",
            data_dir.display(),
        );
        fs::write(dir.path().join("mailstead.toml"), config).unwrap();
        let server = Server {
            dir,
            smtp_port,
            lmtp_port,
            child: None,
        };
        server.cli(&["domain", "add", "example.com"], None);
        server
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn home(&self, user: &str) -> PathBuf {
        self.data_dir().join("mailboxes/example.com").join(user)
    }

    fn maildir(&self, user: &str) -> PathBuf {
        self.home(user).join("Maildir")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(self.dir.path().join("mailstead.toml"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("MAILSTEAD_CONFIG")
            .env_remove("RUST_LOG");
        command
    }

    fn cli(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = support::run_ok(self.command(args), &format!("mailstead {args:?}"), stdin);
        String::from_utf8(output.stdout).unwrap()
    }

    fn start(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))
            .unwrap();
        self.child = Some(
            self.command(&["serve"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let log = || self.log();
        support::wait_for_greeting(self.smtp_port, "220", "mailstead", log);
        support::wait_for_greeting(self.lmtp_port, "220", "mailstead lmtp", log);
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Every message file of a folder (`""` for INBOX), `new/` and `cur/`, with its name.
    fn folder(&self, user: &str, folder: &str) -> Vec<(String, String)> {
        let dir = self.maildir(user).join(folder);
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                found.push((name, fs::read_to_string(entry.path()).unwrap_or_default()));
            }
        }
        found.sort();
        found
    }

    /// Waits until `user`'s folder holds `count` messages containing `needle`.
    fn wait_for(&self, user: &str, folder: &str, needle: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found: Vec<String> = self
                .folder(user, folder)
                .into_iter()
                .map(|(_, text)| text)
                .filter(|text| text.contains(needle))
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{count} x {needle:?} not in {user}/{folder}; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
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

/// A plain SMTP/LMTP client.
struct Client {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut client = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        };
        assert!(client.reply().starts_with("220"));
        client
    }

    fn reply(&mut self) -> String {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).unwrap() > 0,
                "closed after {text}"
            );
            text.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return text;
            }
        }
    }

    fn command(&mut self, line: &str) -> String {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }

    /// One transaction; returns the replies after the final dot (one per recipient in LMTP).
    fn send(&mut self, lmtp: bool, from: &str, to: &[&str], message: &str) -> Vec<String> {
        let hello = if lmtp { "LHLO" } else { "EHLO" };
        assert!(
            self.command(&format!("{hello} client.test"))
                .starts_with("250")
        );
        assert!(
            self.command(&format!("MAIL FROM:<{from}>"))
                .starts_with("250")
        );
        for rcpt in to {
            let reply = self.command(&format!("RCPT TO:<{rcpt}>"));
            assert!(reply.starts_with("250"), "RCPT {rcpt}: {reply}");
        }
        assert!(self.command("DATA").starts_with("354"));
        let mut data = message.replace("\r\n", "\n").replace('\n', "\r\n");
        if !data.ends_with("\r\n") {
            data.push_str("\r\n");
        }
        self.stream
            .write_all(format!("{data}.\r\n").as_bytes())
            .unwrap();
        let count = if lmtp { to.len() } else { 1 };
        (0..count).map(|_| self.reply()).collect()
    }
}

/// Sends one message over SMTP and expects it taken.
fn smtp(server: &Server, from: &str, to: &str, message: &str) {
    let mut client = Client::connect(server.smtp_port);
    let replies = client.send(false, from, &[to], message);
    assert!(replies[0].starts_with("250"), "{replies:?}");
}

#[test]
fn quota_warning_once_per_crossing_with_message_and_command() {
    let hooks = tempfile::tempdir().unwrap();
    support::reachable_by_server(hooks.path());
    // The server runs as its own account: the hook's output directory is open to it.
    fs::set_permissions(hooks.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let record = hooks.path().join("calls");
    let hook = hooks.path().join("quota-hook");
    fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$1 $2 $(id -u)\" >> {}\n",
            record.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    let mut server = Server::new(&format!(
        "[quota]\nwarning_command = \"{}\"\nwarnings = [{{ percent = 80, message = \"Your mailbox is {{percent}}% full.\" }}, {{ percent = 95 }}]\n",
        hook.display()
    ));
    server.cli(
        &["mailbox", "add", "bob@example.com", "--quota", "20K"],
        Some(PASSWORD),
    );
    server.start();

    // 10 KiB of 20: under 80 %.
    let filler = "x".repeat(70);
    let body = |lines: usize| {
        (0..lines)
            .map(|_| filler.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let message = |subject: &str, lines: usize| {
        format!(
            "From: alice@example.org\nTo: bob@example.com\nSubject: {subject}\n\n{}\n",
            body(lines)
        )
    };
    smtp(
        &server,
        "alice@example.org",
        "bob@example.com",
        &message("first", 140),
    );
    server.wait_for("bob", "", "Subject: first", 1);
    // Over 80 % (about 16.5 KiB): one warning, one command run.
    smtp(
        &server,
        "alice@example.org",
        "bob@example.com",
        &message("second", 90),
    );
    server.wait_for("bob", "", "Subject: second", 1);
    let warnings = server.wait_for("bob", "", "Subject: Quota warning", 1);
    assert_eq!(warnings.len(), 1);
    let warning = &warnings[0];
    assert!(
        warning.contains("From: Mail Delivery System <postmaster@example.com>"),
        "{warning}"
    );
    assert!(warning.contains("Your mailbox is 80% full."), "{warning}");
    assert!(
        warning.contains("Auto-Submitted: auto-generated"),
        "{warning}"
    );
    // The delivery waits for the command: it has run by the time the 250 came.
    assert!(
        record.exists(),
        "the hook never ran; log:\n{}",
        server.log()
    );
    // A small message while still over 80 % and under 95 %: no new warning.
    smtp(
        &server,
        "alice@example.org",
        "bob@example.com",
        &message("third", 2),
    );
    server.wait_for("bob", "", "Subject: third", 1);
    // The hook ran once, as the server's account, with the address and the percent.
    let calls = fs::read_to_string(&record).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 1, "{calls}");
    let fields: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(fields[..2], ["bob@example.com", "80"], "{calls}");
    assert_ne!(fields[2], "0", "the hook ran as root");
    let all = server.folder("bob", "");
    assert_eq!(
        all.iter()
            .filter(|(_, text)| text.contains("Subject: Quota warning"))
            .count(),
        1
    );
}
