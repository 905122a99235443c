//! Sending mail through the real `mailstead serve`: msmtp and Python's smtplib submit on 587
//! (STARTTLS) and 465 (implicit TLS); the queue hands the mail to Postfix's smtp-sink over a
//! transport, signed with the domain's DKIM key (checked by dkimpy); a 5xx comes back as a
//! bounce, a 4xx is retried, an old message expires into a bounce; an alias's outside member
//! gets its copy; relaying and spoofing are refused; kill -9 in the middle loses nothing;
//! `mailstead queue` lists, holds, releases and removes.

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
const PASSWORD: &str = "alice-long-password-1";

/// Postfix's smtp-sink on a free port, appending every message to one dump file.
struct Sink {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Sink {
    /// `options`: smtp-sink's, e.g. `["-f", "RCPT"]` (5xx to every RCPT), `["-r", "RCPT"]` (4xx).
    fn start(options: &[&str]) -> Sink {
        Sink::start_on(support::free_port(), options)
    }

    fn start_on(port: u16, options: &[&str]) -> Sink {
        support::require("smtp-sink", "postfix");
        let dir = tempfile::tempdir().unwrap();
        // smtp-sink drops to `nobody`, which writes the dump.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let child = Command::new("/usr/sbin/smtp-sink")
            .args(["-u", "nobody", "-D"])
            .arg(dir.path().join("dump"))
            .args(options)
            .arg(format!("127.0.0.1:{port}"))
            .arg("100")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let sink = Sink { port, child, dir };
        support::wait_for_greeting(port, "220", "smtp-sink", String::new);
        sink
    }

    fn dump(&self) -> String {
        fs::read_to_string(self.dir.path().join("dump")).unwrap_or_default()
    }

    /// Waits until the dump holds `count` copies of `needle`.
    fn wait_for(&self, needle: &str, count: usize, log: impl Fn() -> String) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let dump = self.dump();
            if dump.matches(needle).count() >= count {
                return dump;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} did not reach the sink {count} times; dump:\n{dump}\nserver log:\n{}",
                log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data directory, config and (while running) `mailstead serve`.
struct Server {
    dir: tempfile::TempDir,
    smtp_port: u16,
    submission_port: u16,
    submissions_port: u16,
    queue_extra: String,
    child: Option<Child>,
}

impl Server {
    /// `queue_extra`: lines for `[queue]` (retry timings, relay_host).
    fn new(queue_extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        support::reachable_by_server(dir.path());
        let mut server = Server {
            dir,
            smtp_port: 0,
            submission_port: 0,
            submissions_port: 0,
            queue_extra: queue_extra.to_owned(),
            child: None,
        };
        server.write_config();
        server.cli(&["domain", "add", "example.com"], None);
        server.cli(&["mailbox", "add", "alice@example.com"], Some(PASSWORD));
        server.cli(&["mailbox", "add", "bob@example.com"], Some(PASSWORD));
        server
    }

    fn write_config(&mut self) {
        self.smtp_port = support::free_port();
        self.submission_port = support::free_port();
        self.submissions_port = support::free_port();
        let config = format!(
            "[server]\nhostname = \"mx.example.com\"\ndata_dir = \"{}\"\n\n\
             [smtp]\nlisten = [\"127.0.0.1:{}\"]\n\n\
             [submission]\nlisten = [\"127.0.0.1:{}\"]\nlisten_tls = [\"127.0.0.1:{}\"]\n\n\
             [imap]\nlisten = []\nlisten_tls = []\n\n\
             [pop3]\nlisten = []\nlisten_tls = []\n\n\
             [managesieve]\nlisten = []\n\n\
             [http]\nlisten = []\n\n\
             [queue]\nmin_backoff = \"1s\"\nmax_backoff = \"1s\"\n{}\n\n\
             [log]\nlevel = \"info\"\n",
            self.data_dir().display(),
            self.smtp_port,
            self.submission_port,
            self.submissions_port,
            self.queue_extra,
        );
        fs::write(self.dir.path().join("mailstead.toml"), config).unwrap();
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn maildir(&self, user: &str) -> PathBuf {
        self.data_dir()
            .join("mailboxes/example.com")
            .join(user)
            .join("Maildir")
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
        assert!(self.child.is_none());
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
        support::wait_for_greeting(self.submission_port, "220", "mailstead", log);
    }

    fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// The messages in a mailbox's `new/`.
    fn messages(&self, user: &str) -> Vec<String> {
        let mut found: Vec<String> = fs::read_dir(self.maildir(user).join("new"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| fs::read_to_string(entry.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }

    /// Waits until a message in `user`'s INBOX contains `needle`; returns it.
    fn wait_for_message(&self, user: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(found) = self.messages(user).into_iter().find(|m| m.contains(needle)) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no message with {needle:?} for {user}; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn queue_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.cli(&["--json", "queue", "list"], None)).unwrap()
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

/// A plain SMTP client for the refusal tests.
struct Client {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
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
}

/// Submits with msmtp; `implicit_tls` for port 465.
fn msmtp(server: &Server, port: u16, implicit_tls: bool, from: &str, to: &str, message: &str) {
    msmtp_to(server, port, implicit_tls, from, &[to], message);
}

/// [`msmtp`] to several recipients in one transaction.
fn msmtp_to(
    server: &Server,
    port: u16,
    implicit_tls: bool,
    from: &str,
    to: &[&str],
    message: &str,
) {
    support::require("msmtp", "msmtp");
    // Implicit TLS logs in with LOGIN, STARTTLS with PLAIN: both mechanisms meet a real client.
    let mechanism = if implicit_tls { "login" } else { "plain" };
    let config = server.dir.path().join(format!("msmtprc-{port}"));
    fs::write(
        &config,
        format!(
            "account default\nhost 127.0.0.1\nport {port}\nauth {mechanism}\nuser {from}\n\
             password {PASSWORD}\nfrom {from}\ntls on\ntls_starttls {}\ntls_certcheck off\n",
            if implicit_tls { "off" } else { "on" }
        ),
    )
    .unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
    let mut command = Command::new("msmtp");
    command.arg("-C").arg(&config).args(to);
    support::run_ok(command, "msmtp", Some(message));
}

/// Submits with Python's smtplib over STARTTLS; returns what it printed (the refusal, if any).
fn smtplib(port: u16, login: &str, from: &str, to: &str, message: &str) -> String {
    let script = r#"
import smtplib, ssl, sys
port, login, password, sender, rcpt = sys.argv[1:6]
message = sys.stdin.read()
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(port)) as client:
    client.starttls(context=context)
    client.login(login, password)
    try:
        client.sendmail(sender, [rcpt], message)
        print("sent")
    except smtplib.SMTPException as err:
        print("refused", err)
"#;
    let mut command = Command::new("python3");
    command
        .arg("-c")
        .arg(script)
        .arg(port.to_string())
        .arg(login)
        .arg(PASSWORD)
        .arg(from)
        .arg(to);
    let output = support::run_ok(command, "smtplib", Some(message));
    String::from_utf8(output.stdout).unwrap()
}

fn message(from: &str, to: &str, token: &str) -> String {
    format!("From: {from}\r\nTo: {to}\r\nSubject: {token}\r\n\r\nbody of {token}\r\n")
}

#[test]
fn msmtp_and_smtplib_submit_and_the_queue_delivers_signed_mail_over_a_transport() {
    let sink = Sink::start(&[]);
    let mut server = Server::new("");
    server.cli(
        &[
            "transport",
            "add",
            "remote.test",
            &format!("smtp:[127.0.0.1]:{}", sink.port),
        ],
        None,
    );
    let record = server.cli(
        &["dkim", "generate", "example.com", "--selector", "s1"],
        None,
    );
    assert!(record.contains("v=DKIM1; k=ed25519; p="), "{record}");
    server.start();

    msmtp(
        &server,
        server.submission_port,
        false,
        "alice@example.com",
        "carol@remote.test",
        &message("alice@example.com", "carol@remote.test", "via-587"),
    );
    msmtp(
        &server,
        server.submissions_port,
        true,
        "alice@example.com",
        "carol@remote.test",
        &message("alice@example.com", "carol@remote.test", "via-465"),
    );
    let sent = smtplib(
        server.submission_port,
        "alice@example.com",
        "alice@example.com",
        "dave@remote.test",
        // No Message-ID or Date: the server adds them.
        &message("alice@example.com", "dave@remote.test", "via-smtplib"),
    );
    assert_eq!(sent.trim(), "sent");
    let dump = sink.wait_for("X-Rcpt-Args:", 3, || server.log());
    for token in ["via-587", "via-465", "via-smtplib"] {
        assert!(dump.contains(&format!("Subject: {token}")), "{dump}");
    }
    assert!(dump.contains("with ESMTPSA id"), "{dump}");
    // Relayed as submitted: no empty line gained at the end.
    assert!(dump.contains("body of via-587\n\n"), "{dump}");
    assert!(!dump.contains("body of via-587\n\n\n"), "{dump}");
    assert!(!dump.contains("Return-Path:"), "{dump}");

    // The message smtplib sent, as the sink got it, checked by dkimpy against the record
    // `dkim generate` printed, with the Message-ID and Date the server added.
    let start = dump.find("X-Rcpt-Args: <dave@remote.test>").unwrap();
    let rest = &dump[start..];
    let body_end = rest.find("body of via-smtplib").unwrap() + "body of via-smtplib\n".len();
    let received =
        rest[rest.find('\n').unwrap() + 1..body_end].trim_start_matches(|c| c != 'R' && c != 'D');
    assert!(received.contains("Message-ID: <"), "{received}");
    assert!(received.contains("\nDate: "), "{received}");
    assert!(received.contains("DKIM-Signature: "), "{received}");
    let txt = record
        .split('"')
        .skip(1)
        .step_by(2)
        .collect::<Vec<_>>()
        .concat();
    let verify = r#"
import dkim, sys
txt = sys.argv[1].encode()
message = sys.stdin.buffer.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
ok = dkim.verify(message, dnsfunc=lambda name, timeout=5: txt if name.startswith(b"s1._domainkey.example.com") else None)
print("pass" if ok else "fail")
"#;
    support::require("/usr/bin/python3", "python3");
    let mut command = Command::new("/usr/bin/python3");
    command.arg("-c").arg(verify).arg(&txt);
    let output = support::run_ok(command, "dkimpy (python3-dkim)", Some(received));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "pass",
        "{received}"
    );
}

#[test]
fn a_5xx_bounces_to_the_local_sender_and_a_4xx_is_retried_until_it_expires() {
    let hard = Sink::start(&["-f", "RCPT"]);
    let soft = Sink::start(&["-r", "RCPT"]);
    let mut server = Server::new("max_age = \"4s\"\ndelay_warning = \"1s\"");
    server.cli(
        &[
            "transport",
            "add",
            "hard.test",
            &format!("smtp:[127.0.0.1]:{}", hard.port),
        ],
        None,
    );
    server.cli(
        &[
            "transport",
            "add",
            "soft.test",
            &format!("smtp:[127.0.0.1]:{}", soft.port),
        ],
        None,
    );
    server.start();
    msmtp(
        &server,
        server.submission_port,
        false,
        "alice@example.com",
        "nobody@hard.test",
        &message("alice@example.com", "nobody@hard.test", "hard-one"),
    );
    let bounce = server.wait_for_message("alice", "Undelivered Mail Returned to Sender");
    assert!(bounce.contains("multipart/report"), "{bounce}");
    assert!(
        bounce.contains("Final-Recipient: rfc822; nobody@hard.test"),
        "{bounce}"
    );
    assert!(bounce.contains("Action: failed"), "{bounce}");
    assert!(bounce.contains("Status: 5."), "{bounce}");
    assert!(bounce.contains("Subject: hard-one"), "{bounce}");
    assert!(bounce.contains("Return-Path: <>"), "{bounce}");

    msmtp(
        &server,
        server.submission_port,
        false,
        "alice@example.com",
        "later@soft.test",
        &message("alice@example.com", "later@soft.test", "soft-one"),
    );
    // Deferred, listed with the remote answer, tried again, then given up after max_age.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let queue = server.queue_json();
        let attempts = queue
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|message| message["recipients"].as_array().unwrap().clone())
            .filter(|recipient| recipient["address"] == "later@soft.test")
            .map(|recipient| recipient["attempts"].as_u64().unwrap())
            .max();
        if attempts.unwrap_or(0) >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no retry; queue: {queue}");
        thread::sleep(Duration::from_millis(100));
    }
    let warning = server.wait_for_message("alice", "Delayed Mail (still being retried)");
    assert!(warning.contains("Action: delayed"), "{warning}");
    assert!(
        warning.contains("Final-Recipient: rfc822; later@soft.test"),
        "{warning}"
    );
    assert!(warning.contains("Will-Retry-Until: "), "{warning}");
    let expired = server.wait_for_message("alice", "Action: failed\nStatus: 4.4.7");
    assert!(expired.contains("Action: failed"), "{expired}");
    assert!(expired.contains("Status: 4.4.7"), "{expired}");
    assert!(expired.contains("message too old"), "{expired}");
    // Both are done: nothing left queued, and no bounce went to the null sender's bounce.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.queue_json().as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "{}", server.queue_json());
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        server.messages("alice").len(),
        3,
        "a bounce, a warning, an expiry"
    );

    // NOTIFY=NEVER: no report, however it ends.
    let quiet = smtplib_with_notify(
        server.submission_port,
        "nobody@hard.test",
        &message("alice@example.com", "nobody@hard.test", "quiet-one"),
        "NEVER",
    );
    assert_eq!(quiet.trim(), "sent");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("nobody@hard.test\" relay")
        || !server.queue_json().as_array().unwrap().is_empty()
    {
        assert!(Instant::now() < deadline, "{}", server.log());
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        server.messages("alice").len(),
        3,
        "no report for NOTIFY=NEVER"
    );
}

/// smtplib as alice, with a NOTIFY= parameter on the one recipient.
fn smtplib_with_notify(port: u16, to: &str, message: &str, notify: &str) -> String {
    let script = r#"
import smtplib, ssl, sys
port, password, rcpt, notify = sys.argv[1:5]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(port)) as client:
    client.starttls(context=context)
    client.login("alice@example.com", password)
    client.sendmail("alice@example.com", [rcpt], sys.stdin.read(), rcpt_options=["NOTIFY=" + notify])
    print("sent")
"#;
    let mut command = Command::new("python3");
    command
        .arg("-c")
        .arg(script)
        .arg(port.to_string())
        .arg(PASSWORD)
        .arg(to)
        .arg(notify);
    let output = support::run_ok(command, "smtplib", Some(message));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_mailbox_over_quota_among_others_gets_a_bounce_and_the_rest_is_delivered() {
    let sink = Sink::start(&[]);
    let mut server = Server::new(&format!("relay_host = \"[127.0.0.1]:{}\"", sink.port));
    server.cli(
        &["mailbox", "update", "bob@example.com", "--quota", "1K"],
        None,
    );
    server.start();
    let big = format!(
        "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: too-big\r\n\r\n{}\r\n",
        "x".repeat(4000)
    );
    msmtp_to(
        &server,
        server.submission_port,
        false,
        "alice@example.com",
        &["bob@example.com", "carol@outside.test"],
        &big,
    );
    sink.wait_for("Subject: too-big", 1, || server.log());
    let bounce = server.wait_for_message("alice", "Undelivered Mail Returned to Sender");
    assert!(
        bounce.contains("Final-Recipient: rfc822; bob@example.com"),
        "{bounce}"
    );
    assert!(bounce.contains("Status: 5.2.2"), "{bounce}");
    assert!(!bounce.contains("carol@outside.test>: "), "{bounce}");
    assert!(server.messages("bob").is_empty());
}

#[test]
fn an_alias_reaches_its_outside_member_and_relaying_and_spoofing_are_refused() {
    let sink = Sink::start(&[]);
    let mut server = Server::new(&format!("relay_host = \"[127.0.0.1]:{}\"", sink.port));
    server.cli(
        &[
            "alias",
            "add",
            "team@example.com",
            "bob@example.com",
            "carol@outside.test",
        ],
        None,
    );
    server.cli(
        &[
            "alias",
            "add",
            "postmaster@example.com",
            "alice@example.com",
        ],
        None,
    );
    server.start();

    // Port 25: the alias delivers to bob and queues carol's copy; a bare <postmaster> works.
    let mut client = Client::connect(server.smtp_port);
    assert!(client.command("EHLO client.test").starts_with("250"));
    assert!(
        client
            .command("MAIL FROM:<someone@sender.test>")
            .starts_with("250")
    );
    assert!(
        client
            .command("RCPT TO:<team@example.com>")
            .starts_with("250")
    );
    assert!(client.command("RCPT TO:<postmaster>").starts_with("250"));
    assert!(client.command("DATA").starts_with("354"));
    let reply = client.command("Subject: to-the-team\r\n\r\nhello team\r\n.");
    assert!(reply.starts_with("250"), "{reply}");
    server.wait_for_message("bob", "to-the-team");
    server.wait_for_message("alice", "to-the-team");
    sink.wait_for("X-Rcpt-Args: <carol@outside.test>", 1, || server.log());

    // The open-relay battery on port 25: nothing for elsewhere, however it is written.
    assert!(
        client
            .command("MAIL FROM:<someone@sender.test>")
            .starts_with("250")
    );
    for (rcpt, refused) in [
        ("<victim@outside.test>", "554 5.7.1"),
        ("<victim%outside.test@example.com>", "550 5.1.1"),
        ("<@example.com:victim@outside.test>", "554 5.7.1"),
        ("<\"victim@outside.test\"@example.com>", "5"),
        ("<victim@outside.test@example.com>", "501"),
        ("<victim@[127.0.0.1]>", "5"),
    ] {
        let reply = client.command(&format!("RCPT TO:{rcpt}"));
        assert!(reply.starts_with(refused), "{rcpt}: {reply}");
    }
    // Mail claiming one of our domains needs authentication.
    assert!(client.command("RSET").starts_with("250"));
    let reply = client.command("MAIL FROM:<alice@example.com>");
    assert!(reply.starts_with("553 5.7.1"), "{reply}");
    assert!(
        server.log().contains("recipient refused"),
        "refusals are logged"
    );

    // Submission: nothing before AUTH, no AUTH before TLS, no other user's address.
    let mut plain = Client::connect(server.submission_port);
    let ehlo = plain.command("EHLO client.test");
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    let reply = plain.command("AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHg=");
    assert!(reply.starts_with("538 5.7.11"), "{reply}");
    let reply = plain.command("MAIL FROM:<alice@example.com>");
    assert!(reply.starts_with("530 5.7.0"), "{reply}");
    let spoofed = smtplib(
        server.submission_port,
        "alice@example.com",
        "bob@example.com",
        "x@outside.test",
        &message("bob@example.com", "x@outside.test", "spoof-envelope"),
    );
    assert!(
        spoofed.contains("refused") && spoofed.contains("553"),
        "{spoofed}"
    );
    let spoofed = smtplib(
        server.submission_port,
        "alice@example.com",
        "alice@example.com",
        "x@outside.test",
        &message("bob@example.com", "x@outside.test", "spoof-header"),
    );
    assert!(
        spoofed.contains("refused") && spoofed.contains("553"),
        "{spoofed}"
    );
    assert!(!sink.dump().contains("spoof-"), "{}", sink.dump());
}

#[test]
fn kill_9_with_mail_queued_loses_nothing_and_the_queue_commands_work() {
    let port = support::free_port();
    let mut server = Server::new(&format!("relay_host = \"[127.0.0.1]:{port}\""));
    server.start();
    // The relay is down: everything waits in the queue.
    for index in 0..5 {
        msmtp(
            &server,
            server.submission_port,
            false,
            "alice@example.com",
            "x@outside.test",
            &message(
                "alice@example.com",
                "x@outside.test",
                &format!("queued-{index}"),
            ),
        );
    }
    let queue = server.queue_json();
    let ids: Vec<String> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 5, "{queue}");
    server.cli(&["queue", "hold", &ids[0]], None);
    server.cli(&["queue", "remove", &ids[1]], None);
    let text = server.cli(&["queue", "list"], None);
    assert!(text.contains(&format!("{}!", ids[0])), "{text}");
    assert!(!text.contains(&ids[1]), "{text}");

    server.kill();
    // Offline, the CLI works on the files itself.
    let text = server.cli(&["queue", "show", &ids[2]], None);
    assert!(text.contains("x@outside.test"), "{text}");
    let sink = Sink::start_on(port, &[]);
    server.write_config_keeping_relay(port);
    server.start();
    server.cli(&["queue", "flush"], None);
    for index in [2, 3, 4] {
        sink.wait_for(&format!("Subject: queued-{index}"), 1, || server.log());
    }
    // Held stays held until released; removed never comes.
    thread::sleep(Duration::from_millis(500));
    assert!(!sink.dump().contains("queued-0"));
    server.cli(&["queue", "release", &ids[0]], None);
    sink.wait_for("Subject: queued-0", 1, || server.log());
    assert!(!sink.dump().contains("queued-1"));
    for index in [0, 2, 3, 4] {
        assert_eq!(
            sink.dump()
                .matches(&format!("Subject: queued-{index}\n"))
                .count(),
            1,
            "sent once"
        );
    }
    // The seed's clean-up: everything from one sender goes, without a bounce.
    server.kill();
    drop(sink);
    server.write_config_keeping_relay(support::free_port());
    server.start();
    for index in 5..7 {
        msmtp(
            &server,
            server.submission_port,
            false,
            "alice@example.com",
            "x@outside.test",
            &message(
                "alice@example.com",
                "x@outside.test",
                &format!("queued-{index}"),
            ),
        );
    }
    assert_eq!(server.queue_json().as_array().unwrap().len(), 2);
    let removed = server.cli(&["queue", "remove", "--sender", "ALICE@example.com"], None);
    assert!(removed.contains("2 message(s) changed"), "{removed}");
    assert!(server.queue_json().as_array().unwrap().is_empty());
}

impl Server {
    /// New listener ports, the same relay.
    fn write_config_keeping_relay(&mut self, relay_port: u16) {
        self.queue_extra = format!("relay_host = \"[127.0.0.1]:{relay_port}\"");
        self.write_config();
    }
}

#[test]
fn a_large_transaction_keeps_its_session_past_max_recipients() {
    let mut server = Server::new("");
    server.start();
    let mut client = Client::connect(server.smtp_port);
    assert!(client.command("EHLO client.test").starts_with("250"));
    assert!(
        client
            .command("MAIL FROM:<someone@sender.test>")
            .starts_with("250")
    );
    let mut accepted = 0;
    let mut too_many = 0;
    for index in 0..1500 {
        let reply = client.command(&format!("RCPT TO:<bob+{index}@example.com>"));
        if reply.starts_with("250") {
            accepted += 1;
        } else {
            assert!(reply.starts_with("452 4.5.3"), "{reply}");
            too_many += 1;
        }
    }
    assert_eq!((accepted, too_many), (1000, 500));
    assert!(client.command("DATA").starts_with("354"));
    let reply = client.command("Subject: many\r\n\r\nmany\r\n.");
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(server.messages("bob").len(), 1);
}

#[test]
fn kill_9_while_the_queue_is_delivering_sends_every_message_after_the_restart() {
    let port = support::free_port();
    // The relay takes 3 s to answer each DATA: the kill comes while deliveries are open.
    let slow = Sink::start_on(port, &["-w", "3"]);
    let mut server = Server::new(&format!("relay_host = \"[127.0.0.1]:{port}\""));
    server.start();
    for index in 0..3 {
        msmtp(
            &server,
            server.submission_port,
            false,
            "alice@example.com",
            "x@outside.test",
            &message(
                "alice@example.com",
                "x@outside.test",
                &format!("inflight-{index}"),
            ),
        );
    }
    // Wait until the relay has a message in DATA, then kill.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.log().contains("queued") {
        assert!(Instant::now() < deadline, "{}", server.log());
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(500));
    server.kill();
    drop(slow);
    let sink = Sink::start_on(port, &[]);
    server.write_config_keeping_relay(port);
    server.start();
    for index in 0..3 {
        sink.wait_for(&format!("Subject: inflight-{index}"), 1, || server.log());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.queue_json().as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "{}", server.queue_json());
        thread::sleep(Duration::from_millis(100));
    }
}
