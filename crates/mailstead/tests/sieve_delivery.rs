//! Local delivery through the real `mailstead serve`: Sieve scripts written into the
//! Pigeonhole layout on disk (`~/sieve/NAME.sieve`, `~/.dovecot.sieve` linking to it) decide
//! where mail sent over SMTP and LMTP goes (folders with flags, `:create`, editheader,
//! discard, redirect with its limits, reject and ereject, a broken script, a global
//! before-script, vacation); the queue hands what leaves to Postfix's smtp-sink over a
//! transport. Quota warnings as Dovecot's quota_warning sends them (one message and one
//! command run per crossing). Mail is read from the Maildir on disk.

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

use support::SmtpSink;

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
             [managesieve]\nlisten = []\n\n\
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

    /// Starts the server and waits until it takes mail; as root it has made its account.
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

    /// The files of a user's Maildir, for failure messages.
    fn tree(&self, user: &str) -> String {
        let output = Command::new("find")
            .arg(self.maildir(user))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the queue has delivered everything.
    fn wait_for_empty_queue(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let list: serde_json::Value =
                serde_json::from_str(&self.cli(&["--json", "queue", "list"], None)).unwrap();
            if list.as_array().unwrap().is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "queue: {list}\nlog:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes `user`'s script `name` as Pigeonhole keeps it and makes it the active one;
    /// everything under the homes then belongs to the account the server runs as.
    fn install_script(&self, user: &str, name: &str, source: &str) {
        let home = self.home(user);
        fs::create_dir_all(home.join("sieve")).unwrap();
        fs::write(home.join("sieve").join(format!("{name}.sieve")), source).unwrap();
        let link = home.join(".dovecot.sieve");
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(format!("sieve/{name}.sieve"), &link).unwrap();
        let mut chown = Command::new("chown");
        chown
            .args(["-R", "-h", "mailstead:mailstead"])
            .arg(self.data_dir().join("mailboxes"));
        support::run_ok(chown, "chown", None);
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

/// A message with these header lines and a short body.
fn message(headers: &str) -> String {
    format!("{headers}\nFrom: alice@remote.test\nTo: someone@example.com\n\nbody\n")
}

/// The server with a sink for what leaves: `remote.test` goes to it over a transport.
fn server_with_sink(extra: &str, users: &[&str]) -> (Server, SmtpSink) {
    let sink = SmtpSink::start(&[]);
    let mut server = Server::new(&format!(
        "[queue]\nmin_backoff = \"1s\"\nmax_backoff = \"1s\"\n\n{extra}"
    ));
    server.cli(
        &[
            "transport",
            "add",
            "remote.test",
            &format!("smtp:[127.0.0.1]:{}", sink.port),
        ],
        None,
    );
    for user in users {
        server.cli(
            &["mailbox", "add", &format!("{user}@example.com")],
            Some(PASSWORD),
        );
    }
    server.start();
    (server, sink)
}

#[test]
fn scripts_file_into_folders_with_flags_create_edit_and_discard() {
    let (server, _sink) = server_with_sink("", &["bob"]);
    server.install_script(
        "bob",
        "roundcube",
        r#"require ["fileinto", "imap4flags", "mailbox", "editheader"];
# rule:[work]
if header :contains "subject" "[work]" {
    fileinto :create :flags ["\\Seen", "$Work"] "Work";
    stop;
}
if header :contains "subject" "new folder" {
    fileinto :create "Projects/Alpha";
    stop;
}
if header :contains "subject" "missing" {
    fileinto "Nowhere";
    stop;
}
if header :contains "subject" "edit me" {
    addheader "X-Filtered" "by bob's script";
    fileinto "Archive";
    stop;
}
if header :contains "subject" "spam" {
    discard;
    stop;
}
"#,
    );
    let to = "bob@example.com";
    for subject in [
        "[work] report",
        "new folder",
        "missing folder",
        "edit me",
        "spam offer",
        "plain",
    ] {
        smtp(
            &server,
            "alice@remote.test",
            to,
            &message(&format!("Subject: {subject}")),
        );
    }
    // Filed with \Seen and the keyword, into a folder the script created.
    let work = server.folder("bob", "Work");
    assert_eq!(work.len(), 1, "{work:?}\n{}", server.log());
    assert!(work[0].1.contains("Subject: [work] report"));
    assert!(work[0].0.ends_with(":2,Sa"), "{}", work[0].0);
    let keywords = fs::read_to_string(server.maildir("bob").join("Work/dovecot-keywords")).unwrap();
    assert!(keywords.contains("$Work"), "{keywords}");
    // Every copy carries its own Return-Path: and Delivered-To:.
    assert!(
        work[0]
            .1
            .starts_with("Return-Path: <alice@remote.test>\nDelivered-To: bob@example.com\n")
    );
    // :create with a hierarchy.
    let alpha = server.folder("bob", "Projects/Alpha");
    assert_eq!(alpha.len(), 1, "{alpha:?}");
    // A missing folder without :create: INBOX, as Pigeonhole does.
    let inbox = server.folder("bob", "");
    let subjects: Vec<bool> = ["missing folder", "plain", "spam offer", "edit me"]
        .iter()
        .map(|subject| {
            inbox
                .iter()
                .any(|(_, text)| text.contains(&format!("Subject: {subject}")))
        })
        .collect();
    assert_eq!(subjects, [true, true, false, false], "{inbox:?}");
    assert!(!server.maildir("bob").join("Nowhere").exists());
    // editheader: the new header with the original body.
    let archive = server.folder("bob", "Archive");
    assert_eq!(archive.len(), 1);
    assert!(
        archive[0].1.contains("X-Filtered: by bob's script"),
        "{}",
        archive[0].1
    );
    assert!(archive[0].1.ends_with("\n\nbody\n"), "{}", archive[0].1);
    // Discarded: nowhere at all.
    let everywhere = ["", "Work", "Projects/Alpha", "Archive", "Junk", "Trash"]
        .iter()
        .flat_map(|folder| server.folder("bob", folder))
        .filter(|(_, text)| text.contains("spam offer"))
        .count();
    assert_eq!(everywhere, 0);
    assert!(
        server
            .log()
            .contains("discarded by the recipient's Sieve script")
    );
}

#[test]
fn redirect_goes_through_the_queue_within_its_limits() {
    let (server, sink) = server_with_sink("[sieve]\nmax_redirects_per_hour = 2\n", &["bob"]);
    server.install_script("bob", "forward", "redirect \"carol@remote.test\";\n");
    let to = "bob@example.com";
    smtp(&server, "alice@remote.test", to, &message("Subject: one"));
    let log = || server.log();
    let dump = sink.wait_for("X-Sieve-Redirected-From: bob@example.com", 1, log);
    assert!(dump.contains("Subject: one"), "{dump}");
    // The original envelope sender, to the redirect's address.
    assert!(dump.contains("alice@remote.test"), "{dump}");
    assert!(dump.contains("carol@remote.test"), "{dump}");
    assert!(
        server.folder("bob", "").is_empty(),
        "redirect cancels the keep"
    );

    // A loop: the message already came through bob's redirect; it stays with bob.
    smtp(
        &server,
        "alice@remote.test",
        to,
        &message("Subject: looped\nX-Sieve-Redirected-From: bob@example.com"),
    );
    assert_eq!(server.wait_for("bob", "", "Subject: looped", 1).len(), 1);

    // From the null sender: redirected from <> as Pigeonhole does.
    smtp(&server, "", to, &message("Subject: two"));
    let dump = sink.wait_for("X-Sieve-Redirected-From: bob@example.com", 2, log);
    assert!(dump.contains("Subject: two"), "{dump}");

    // The hourly allowance (2) is used up: the third stays in INBOX.
    smtp(&server, "alice@remote.test", to, &message("Subject: three"));
    assert_eq!(server.wait_for("bob", "", "Subject: three", 1).len(), 1);
    assert!(
        server
            .log()
            .contains("redirect refused: hourly limit reached")
    );
    server.wait_for_empty_queue();
    assert!(!sink.dump().contains("Subject: three"));
    assert!(!sink.dump().contains("Subject: looped"));
}

#[test]
fn reject_over_smtp_and_ereject_over_lmtp() {
    let (server, sink) = server_with_sink("", &["bob", "dave"]);
    server.install_script(
        "dave",
        "refuse",
        r#"require ["reject", "ereject"];
if header :contains "subject" "over lmtp" { ereject "I do not want this"; }
elsif header :contains "subject" "over smtp" { reject "Not wanted here"; }
"#,
    );
    // LMTP: 550 for dave only; bob gets it.
    let mut client = Client::connect(server.lmtp_port);
    let replies = client.send(
        true,
        "alice@remote.test",
        &["bob@example.com", "dave@example.com"],
        &message("Subject: over lmtp"),
    );
    assert!(replies[0].starts_with("250"), "{replies:?}");
    assert!(
        replies[1].starts_with("550 5.7.1 I do not want this"),
        "{replies:?}"
    );
    assert_eq!(server.wait_for("bob", "", "Subject: over lmtp", 1).len(), 1);
    assert!(server.folder("dave", "").is_empty());

    // SMTP: accepted, then a refusal to the sender through the queue.
    smtp(
        &server,
        "alice@remote.test",
        "dave@example.com",
        &message("Subject: over smtp"),
    );
    let dump = sink.wait_for("Not wanted here", 1, || server.log());
    assert!(dump.contains("disposition-notification"), "{dump}");
    assert!(dump.contains("Subject: Rejected: over smtp"), "{dump}");
    assert!(server.folder("dave", "").is_empty());
}

#[test]
fn a_broken_script_keeps_mail_in_inbox_and_tells_the_user_once() {
    let (server, _sink) = server_with_sink("", &["bob"]);
    server.install_script(
        "bob",
        "broken",
        "require \"fileinto\";\nif true {\n  filein \"Work\";\n}\n",
    );
    for subject in ["first", "second"] {
        smtp(
            &server,
            "alice@remote.test",
            "bob@example.com",
            &message(&format!("Subject: {subject}")),
        );
    }
    let inbox = server.folder("bob", "");
    for subject in ["first", "second"] {
        assert!(
            inbox
                .iter()
                .any(|(_, text)| text.contains(&format!("Subject: {subject}"))),
            "{inbox:?}"
        );
    }
    let notices: Vec<&String> = inbox
        .iter()
        .map(|(_, text)| text)
        .filter(|text| text.contains("Subject: Your Sieve script broken failed"))
        .collect();
    assert_eq!(notices.len(), 1, "{inbox:?}");
    assert!(notices[0].contains("line 3"), "{}", notices[0]);
}

#[test]
fn a_global_before_script_files_spam_into_junk() {
    let scripts = tempfile::tempdir().unwrap();
    support::reachable_by_server(scripts.path());
    let spam = scripts.path().join("spam.sieve");
    fs::write(
        &spam,
        "require \"fileinto\";\nif header :contains \"X-Spam-Flag\" \"YES\" { fileinto \"Junk\"; stop; }\n",
    )
    .unwrap();
    fs::set_permissions(&spam, fs::Permissions::from_mode(0o644)).unwrap();
    let (server, _sink) = server_with_sink(
        &format!("[sieve]\nbefore = [\"{}\"]\n", spam.display()),
        &["bob"],
    );
    smtp(
        &server,
        "alice@remote.test",
        "bob@example.com",
        &message("Subject: buy\nX-Spam-Flag: YES"),
    );
    smtp(
        &server,
        "alice@remote.test",
        "bob@example.com",
        &message("Subject: hello"),
    );
    let junk = server.folder("bob", "Junk");
    assert_eq!(
        junk.len(),
        1,
        "{junk:?}\n{}\n{}",
        server.log(),
        server.tree("bob")
    );
    assert!(junk[0].1.contains("Subject: buy"));
    let inbox = server.folder("bob", "");
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(inbox[0].1.contains("Subject: hello"));
}

#[test]
fn vacation_replies_once_per_sender_and_never_to_lists_bounces_or_robots() {
    let (server, sink) = server_with_sink("", &["erin"]);
    server.install_script(
        "erin",
        "away",
        "require \"vacation\";\nvacation :days 1 :subject \"Away until Monday\" \"I am away.\";\n",
    );
    let to = "erin@example.com";
    let addressed = |extra: &str, subject: &str, from: &str| {
        format!("Subject: {subject}\nFrom: {from}\nTo: {to}\n{extra}\nbody\n")
    };
    smtp(
        &server,
        "alice@remote.test",
        to,
        &addressed("", "one", "alice@remote.test"),
    );
    smtp(
        &server,
        "alice@remote.test",
        to,
        &addressed("", "two", "alice@remote.test"),
    );
    smtp(
        &server,
        "list-bounces@remote.test",
        to,
        &addressed("List-Id: <news.remote.test>\n", "list", "news@remote.test"),
    );
    smtp(
        &server,
        "",
        to,
        &addressed("", "bounce", "MAILER-DAEMON@remote.test"),
    );
    smtp(
        &server,
        "robot@remote.test",
        to,
        &addressed(
            "Auto-Submitted: auto-generated\n",
            "robot",
            "robot@remote.test",
        ),
    );
    smtp(
        &server,
        "frank@remote.test",
        to,
        &addressed("", "three", "frank@remote.test"),
    );
    // Every message is kept.
    assert_eq!(server.folder("erin", "").len(), 6);
    sink.wait_for("Subject: Away until Monday", 2, || server.log());
    // Every reply was queued before its message's 250: once the queue is empty the sink
    // has all there will be.
    server.wait_for_empty_queue();
    let dump = sink.dump();
    assert_eq!(
        dump.matches("Subject: Away until Monday").count(),
        2,
        "{dump}"
    );
    assert!(dump.contains("alice@remote.test") && dump.contains("frank@remote.test"));
    assert!(dump.contains("Auto-Submitted: auto-replied"), "{dump}");
    assert!(!dump.contains("robot@remote.test") && !dump.contains("news@remote.test"));
}

/// Dovecot's LMTP with Pigeonhole on loopback, run as root with mail as `nobody`: the
/// reference for where a script files mail.
struct Pigeonhole {
    dir: tempfile::TempDir,
    lmtp_port: u16,
}

impl Pigeonhole {
    const MAIL_UID: u32 = 65534;

    fn start() -> Pigeonhole {
        support::require("dovecot", "Debian's dovecot-lmtpd");
        support::require(
            "/usr/lib/dovecot/modules/lib90_sieve_plugin.so",
            "Debian's dovecot-sieve",
        );
        let dir = tempfile::tempdir().unwrap();
        support::reachable_by_server(dir.path());
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let d = dir.path().display().to_string();
        for sub in ["run", "state", "homes"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::os::unix::fs::chown(
            dir.path().join("homes"),
            Some(Self::MAIL_UID),
            Some(Self::MAIL_UID),
        )
        .unwrap();
        let lmtp_port = support::free_port();
        let uid = Self::MAIL_UID;
        fs::write(
            dir.path().join("dovecot.conf"),
            format!(
                r#"protocols = lmtp
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
instance_name = sieve-reference-{lmtp_port}
log_path = {d}/dovecot.log
ssl = no
first_valid_uid = 1
mail_uid = {uid}
mail_gid = {uid}
mail_location = maildir:~/Maildir:LAYOUT=fs
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={d}/homes/%d/%n allow_all_users=yes
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
  postmaster_address = postmaster@example.com
}}
plugin {{
  sieve = file:~/sieve;active=~/.dovecot.sieve
}}
"#
            ),
        )
        .unwrap();
        let status = Command::new("dovecot")
            .arg("-c")
            .arg(dir.path().join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("start.log")).unwrap())
            .status()
            .unwrap();
        let pigeonhole = Pigeonhole { dir, lmtp_port };
        assert!(
            status.success(),
            "dovecot failed to start:\n{}",
            pigeonhole.log()
        );
        support::wait_for_greeting(lmtp_port, "220", "dovecot lmtp", || pigeonhole.log());
        pigeonhole
    }

    fn log(&self) -> String {
        ["start.log", "dovecot.log"]
            .iter()
            .map(|name| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default())
            .collect()
    }

    fn home(&self, user: &str) -> PathBuf {
        self.dir.path().join("homes/example.com").join(user)
    }

    fn install_script(&self, user: &str, source: &str) {
        let home = self.home(user);
        fs::create_dir_all(home.join("sieve")).unwrap();
        fs::write(home.join("sieve/rules.sieve"), source).unwrap();
        std::os::unix::fs::symlink("sieve/rules.sieve", home.join(".dovecot.sieve")).unwrap();
        let mut chown = Command::new("chown");
        chown
            .args(["-R", "-h", &format!("{0}:{0}", Self::MAIL_UID)])
            .arg(self.dir.path().join("homes"));
        support::run_ok(chown, "chown", None);
    }
}

impl Drop for Pigeonhole {
    fn drop(&mut self) {
        let mut stop = Command::new("doveadm");
        stop.arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
    }
}

/// Every message below `maildir` as (folder, subject, IMAP flag letters), sorted.
fn placement(maildir: &std::path::Path) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let mut dirs = vec![maildir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !path.is_dir() {
                continue;
            }
            if name == "new" || name == "cur" {
                let folder = dir
                    .strip_prefix(maildir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                for message in fs::read_dir(&path).unwrap().filter_map(Result::ok) {
                    let file = message.file_name().to_string_lossy().into_owned();
                    let flags = file.split_once(":2,").map_or("", |(_, f)| f).to_owned();
                    let text = fs::read_to_string(message.path()).unwrap();
                    let subject = text
                        .lines()
                        .find_map(|line| line.strip_prefix("Subject: "))
                        .unwrap_or("")
                        .to_owned();
                    let folder = if folder.is_empty() {
                        "INBOX".to_owned()
                    } else {
                        folder.clone()
                    };
                    found.push((folder, subject, flags));
                }
            } else if name != "tmp" {
                dirs.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn folders_and_flags_agree_with_pigeonhole_over_lmtp() {
    let script = r#"require ["fileinto", "imap4flags", "mailbox", "copy", "envelope"];
if header :contains "subject" "[work]" { fileinto :create :flags ["\\Seen", "\\Flagged"] "Work"; stop; }
if address :domain "from" "lists.test" { fileinto :create "Lists/Test"; stop; }
if header :contains "subject" "missing" { fileinto "Nowhere"; stop; }
if header :contains "subject" "copy" { fileinto :copy :create "Copies"; }
if envelope :localpart "from" "boss" { addflag "\\Flagged"; }
if size :over 2K { fileinto :create "Big"; }
"#;
    let pigeonhole = Pigeonhole::start();
    pigeonhole.install_script("bob", script);
    let (server, _sink) = server_with_sink("", &["bob"]);
    server.install_script("bob", "rules", script);
    let big = "y".repeat(60);
    let big_body = (0..60).map(|_| big.as_str()).collect::<Vec<_>>().join("\n");
    let messages = [
        (
            "alice@remote.test",
            "Subject: [work] report\nFrom: alice@remote.test\n\nbody\n".to_owned(),
        ),
        (
            "news@lists.test",
            "Subject: newsletter\nFrom: news@lists.test\n\nbody\n".to_owned(),
        ),
        (
            "alice@remote.test",
            "Subject: missing folder\nFrom: alice@remote.test\n\nbody\n".to_owned(),
        ),
        (
            "alice@remote.test",
            "Subject: copy me\nFrom: alice@remote.test\n\nbody\n".to_owned(),
        ),
        (
            "boss@remote.test",
            "Subject: from the boss\nFrom: boss@remote.test\n\nbody\n".to_owned(),
        ),
        (
            "alice@remote.test",
            format!("Subject: big one\nFrom: alice@remote.test\n\n{big_body}\n"),
        ),
        (
            "alice@remote.test",
            "Subject: plain\nFrom: alice@remote.test\n\nbody\n".to_owned(),
        ),
    ];
    for (from, message) in &messages {
        for port in [pigeonhole.lmtp_port, server.lmtp_port] {
            let mut client = Client::connect(port);
            let replies = client.send(true, from, &["bob@example.com"], message);
            assert!(
                replies[0].starts_with("250"),
                "{port}: {replies:?}\n{}",
                pigeonhole.log()
            );
        }
    }
    let expected = placement(&pigeonhole.home("bob").join("Maildir"));
    let got = placement(&server.maildir("bob"));
    assert_eq!(
        expected.len(),
        messages.len() + 1,
        "{expected:?}\n{}",
        pigeonhole.log()
    );
    assert_eq!(got, expected, "\nserver log:\n{}", server.log());
}
