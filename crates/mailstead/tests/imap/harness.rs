//! What the IMAP end-to-end tests share: a `mailstead serve` with IMAP (and SMTP for mail to
//! arrive through), a Debian Dovecot IMAP server run as root with `mail_uid` 65534 (the peer
//! of the migration test), mail delivery over SMTP/LMTP, and the checks that the client
//! programs are installed. Included with `#[path = "imap/harness.rs"] mod harness;`.
//!
//! `MAILSTEAD_IMAP_TEST_TARGET=dovecot` runs the client suites against Dovecot instead of
//! Mailstead: a way to check that a suite itself is right (Dovecot being the reference
//! server), never a way to skip anything.

#![allow(dead_code, clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support;
pub use crate::support::{require, wait_for_greeting};

pub const BIN: &str = env!("CARGO_BIN_EXE_mailstead");
pub const DOMAIN: &str = "example.test";
pub const PASSWORD: &str = "imap-test-secret-1";
/// The uid Dovecot accesses mail as (it refuses root): Debian's `nobody`.
pub const MAIL_UID: u32 = 65534;
/// `[server]` keys for a Mailstead that shares Maildirs with that Dovecot: it runs as the
/// same account.
pub const MAIL_ACCOUNT: &str = "user = \"nobody\"\ngroup = \"nogroup\"\n";

/// The directory of the Python scripts and mbsync templates.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/imap")
}

/// Both output streams of a finished program, for failure messages and logs.
pub fn both(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout:\n{}\n--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a Python script of tests/imap with `args`; returns its output (not checked).
pub fn python(script: &str, args: &[String]) -> Output {
    require("python3", "python3");
    Command::new("python3")
        .arg("-u")
        .arg(scripts_dir().join(script))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Waits until something accepts TCP connections on `port` (a TLS-only port).
pub fn wait_for_listener(port: u16, what: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port}; log:\n{}",
            log()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// How mail gets into the server under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Smtp(u16),
    Lmtp(u16),
}

impl Delivery {
    /// The form the Python scripts take: `smtp://127.0.0.1:PORT` or `lmtp://...`.
    pub fn url(self) -> String {
        match self {
            Delivery::Smtp(port) => format!("smtp://127.0.0.1:{port}"),
            Delivery::Lmtp(port) => format!("lmtp://127.0.0.1:{port}"),
        }
    }

    /// Delivers `message` (CRLF line ends) to `rcpt`, failing the test on any refusal.
    pub fn deliver(self, rcpt: &str, message: &str) {
        // One recipient: LMTP's one reply per recipient after DATA is SMTP's one reply.
        let (port, hello) = match self {
            Delivery::Smtp(port) => (port, "EHLO client.test"),
            Delivery::Lmtp(port) => (port, "LHLO client.test"),
        };
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut transcript = String::new();
        fn expect(reader: &mut BufReader<TcpStream>, transcript: &mut String, code: &str) {
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                transcript.push_str("S: ");
                transcript.push_str(&line);
                assert!(
                    line.len() >= 4,
                    "short reply {line:?}; transcript:\n{transcript}"
                );
                if line.as_bytes()[3] != b'-' {
                    assert!(
                        line.starts_with(code),
                        "expected {code}, got {line:?}; transcript:\n{transcript}"
                    );
                    return;
                }
            }
        }
        expect(&mut reader, &mut transcript, "220");
        for (command, code) in [
            (hello.to_owned(), "250"),
            ("MAIL FROM:<sender@client.test>".to_owned(), "250"),
            (format!("RCPT TO:<{rcpt}>"), "250"),
            ("DATA".to_owned(), "354"),
        ] {
            transcript.push_str(&format!("C: {command}\r\n"));
            writer
                .write_all(format!("{command}\r\n").as_bytes())
                .unwrap();
            expect(&mut reader, &mut transcript, code);
        }
        let mut data = String::new();
        for line in message.split_inclusive("\r\n") {
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
        }
        if !data.ends_with("\r\n") {
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        writer.write_all(data.as_bytes()).unwrap();
        expect(&mut reader, &mut transcript, "250");
        writer.write_all(b"QUIT\r\n").unwrap();
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
    }
}

pub fn chown_recursive(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for entry in fs::read_dir(path).unwrap() {
            chown_recursive(&entry.unwrap().path(), uid);
        }
    }
}

/// A self-signed certificate for 127.0.0.1/localhost/mail.example.test, as PEM (cert, key).
pub fn self_signed() -> (String, String) {
    let names = vec![
        "mail.example.test".to_owned(),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
    ];
    let params = rcgen::CertificateParams::new(names).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A Dovecot instance (IMAP, IMAPS, LMTP) with its own config and run directory, started as
/// root with mail access as [`MAIL_UID`]; stopped on drop.
pub struct Dovecot {
    pub dir: PathBuf,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub lmtp_port: u16,
    /// POP3 (plain, no STLS needed) when started by [`Dovecot::start_with_pop3`]; else 0.
    pub pop3_port: u16,
    pub cert: PathBuf,
    master_pid: Option<u32>,
}

impl Dovecot {
    /// Starts Dovecot in `dir` for `users` (full addresses, password [`PASSWORD`]), with
    /// `mail_location` and homes `home_root/%d/%n`. `dir` and `home_root` must be reachable by
    /// [`MAIL_UID`] (mode 755 up the path).
    pub fn start(dir: &Path, users: &[String], mail_location: &str, home_root: &Path) -> Dovecot {
        Dovecot::start_full(dir, users, mail_location, home_root, false)
    }

    /// [`Dovecot::start`] with POP3 too (Debian's dovecot-pop3d), its defaults unchanged
    /// (`pop3_uidl_format = %08Xu%08Xv`).
    pub fn start_with_pop3(
        dir: &Path,
        users: &[String],
        mail_location: &str,
        home_root: &Path,
    ) -> Dovecot {
        require("/usr/lib/dovecot/pop3", "Debian's dovecot-pop3d");
        Dovecot::start_full(dir, users, mail_location, home_root, true)
    }

    fn start_full(
        dir: &Path,
        users: &[String],
        mail_location: &str,
        home_root: &Path,
        pop3: bool,
    ) -> Dovecot {
        require("dovecot", "Debian's dovecot-imapd and dovecot-lmtpd");
        require("doveadm", "Debian's dovecot-core");
        for sub in ["run", "state"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir_all(home_root).unwrap();
        chown_recursive(home_root, MAIL_UID);
        let (cert_pem, key_pem) = self_signed();
        let cert = dir.join("cert.pem");
        fs::write(&cert, cert_pem).unwrap();
        fs::write(dir.join("key.pem"), key_pem).unwrap();
        fs::write(
            dir.join("users"),
            users
                .iter()
                .map(|user| format!("{user}:{{PLAIN}}{PASSWORD}::::::\n"))
                .collect::<String>(),
        )
        .unwrap();
        fs::set_permissions(dir.join("users"), fs::Permissions::from_mode(0o644)).unwrap();
        let imap_port = support::free_port();
        let imaps_port = support::free_port();
        let lmtp_port = support::free_port();
        let (pop3_protocol, pop3_port) = if pop3 {
            (" pop3", support::free_port())
        } else {
            ("", 0)
        };
        let d = dir.display();
        let home = home_root.display();
        fs::write(
            dir.join("dovecot.conf"),
            format!(
                r#"protocols = imap lmtp{pop3_protocol}
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
instance_name = mailstead-test-{imap_port}
log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_uid = {MAIL_UID}
mail_gid = {MAIL_UID}
mail_location = {mail_location}
mail_max_userip_connections = 1000
mail_plugins = quota
imap_capability = +SPECIAL-USE
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_UID} home={home}/%d/%n
}}
namespace inbox {{
  inbox = yes
  mailbox Drafts {{
    special_use = \Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \Junk
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \Archive
    auto = subscribe
  }}
}}
plugin {{
  quota = maildir:User quota
  quota_rule = *:storage=100M
}}
protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@example.test
}}
"#
            ),
        )
        .unwrap();
        let status = Command::new("dovecot")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("start.log")).unwrap())
            .env(
                "PATH",
                format!(
                    "{}:/usr/sbin:/sbin",
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .status()
            .unwrap();
        let mut dovecot = Dovecot {
            dir: dir.to_owned(),
            imap_port,
            imaps_port,
            lmtp_port,
            pop3_port,
            cert,
            master_pid: None,
        };
        assert!(
            status.success(),
            "dovecot failed to start:\n{}",
            dovecot.log()
        );
        // The daemon writes its pid file after the parent has exited.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pid = fs::read_to_string(dir.join("run/master.pid")).unwrap_or_default();
            if let Ok(pid) = pid.trim().parse() {
                dovecot.master_pid = Some(pid);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dovecot wrote no master.pid:\n{}",
                dovecot.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        wait_for_greeting(imap_port, "* OK", "dovecot imap", || dovecot.log());
        wait_for_greeting(lmtp_port, "220", "dovecot lmtp", || dovecot.log());
        wait_for_listener(imaps_port, "dovecot imaps", || dovecot.log());
        if pop3 {
            wait_for_greeting(pop3_port, "+OK", "dovecot pop3", || dovecot.log());
        }
        dovecot
    }

    pub fn log(&self) -> String {
        format!(
            "{}{}",
            fs::read_to_string(self.dir.join("start.log")).unwrap_or_default(),
            fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
        )
    }

    /// Stops the master (which takes its children along) and waits until it is gone.
    pub fn stop(&mut self) {
        let Some(pid) = self.master_pid.take() else {
            return;
        };
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let process = PathBuf::from("/proc").join(pid.to_string());
        let deadline = Instant::now() + Duration::from_secs(20);
        while process.exists() && Instant::now() < deadline {
            // A zombie counts as gone (its parent is not us: dovecot daemonized).
            let state = fs::read_to_string(process.join("stat")).unwrap_or_default();
            if state.split_whitespace().nth(2) == Some("Z") {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !process.exists()
                || fs::read_to_string(process.join("stat"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .nth(2)
                    == Some("Z"),
            "dovecot master {pid} did not stop"
        );
        // Its port must be free again before a later start reuses the Maildir.
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.imap_port)).is_ok() {
            assert!(Instant::now() < deadline, "dovecot still listens");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Some(pid) = self.master_pid.take() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// `mailstead serve` with IMAP, IMAPS and SMTP on loopback, in its own data directory.
pub struct Mailstead {
    pub dir: PathBuf,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub smtp_port: u16,
    /// POP3 with passwords accepted on loopback without TLS.
    pub pop3_port: u16,
    /// ManageSieve with STARTTLS (passwords only over TLS).
    pub managesieve_port: u16,
    /// Plain HTTP (loopback): health, metrics, autoconfiguration.
    pub http_port: u16,
    child: Option<Child>,
}

impl Mailstead {
    /// Writes the config (with `extra` appended: keys of `[http]`, the last section, or more
    /// sections),
    /// creates `users` (full addresses, password [`PASSWORD`]) and starts `serve`.
    pub fn start(dir: &Path, users: &[String], imap_extra: &str, extra: &str) -> Mailstead {
        Mailstead::start_as(dir, users, "", imap_extra, extra)
    }

    /// [`Mailstead::start`] with `server_extra` in the `[server]` section (the account to run
    /// as, [`MAIL_ACCOUNT`]).
    pub fn start_as(
        dir: &Path,
        users: &[String],
        server_extra: &str,
        imap_extra: &str,
        extra: &str,
    ) -> Mailstead {
        fs::create_dir_all(dir).unwrap();
        support::reachable_by_server(dir);
        let imap_port = support::free_port();
        let imaps_port = support::free_port();
        let smtp_port = support::free_port();
        let pop3_port = support::free_port();
        let managesieve_port = support::free_port();
        let http_port = support::free_port();
        fs::write(
            dir.join("mailstead.toml"),
            format!(
                "[server]\nhostname = \"mail.example.test\"\ndata_dir = \"{data}\"\n{server_extra}\n\
                 [imap]\nlisten = [\"127.0.0.1:{imap_port}\"]\n\
                 listen_tls = [\"127.0.0.1:{imaps_port}\"]\n\
                 max_connections_per_user = 20\nmax_connections_per_ip = 200\n{imap_extra}\n\
                 [smtp]\nlisten = [\"127.0.0.1:{smtp_port}\"]\n\n\
                 [submission]\nlisten = []\nlisten_tls = []\n\n\
                 [pop3]\nlisten = [\"127.0.0.1:{pop3_port}\"]\nlisten_tls = []\n\
                 login_on_loopback_without_tls = true\n\n\
                 [managesieve]\nlisten = [\"127.0.0.1:{managesieve_port}\"]\n\n\
                 [log]\nlevel = \"info\"\n\n\
                 [http]\nlisten = [\"127.0.0.1:{http_port}\"]\n{extra}",
                data = dir.join("data").display()
            ),
        )
        .unwrap();
        let mut mailstead = Mailstead {
            dir: dir.to_owned(),
            imap_port,
            imaps_port,
            smtp_port,
            pop3_port,
            managesieve_port,
            http_port,
            child: None,
        };
        let mut domains: Vec<&str> = users
            .iter()
            .map(|user| user.split_once('@').unwrap().1)
            .collect();
        domains.sort_unstable();
        domains.dedup();
        for domain in domains {
            mailstead.cli(&["domain", "add", domain], None);
        }
        for user in users {
            // 100M, as the Dovecot of [`Dovecot::start`] has (`quota_rule = *:storage=100M`).
            mailstead.cli(
                // A Maildir Dovecot left there is the account's own (the migration tests).
                &[
                    "mailbox",
                    "add",
                    user,
                    "--quota",
                    "100M",
                    "--keep-existing-mail",
                ],
                Some(&format!("{PASSWORD}\n")),
            );
        }
        mailstead.serve();
        mailstead
    }

    /// (Re)starts `serve` on the same config and ports.
    pub fn serve(&mut self) {
        assert!(self.child.is_none(), "already serving");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("serve.log"))
            .unwrap();
        self.child = Some(
            self.command(&["serve"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        // Fail at once, with its log, if serve exits (a config it rejects, a port in use).
        let exited = |this: &mut Mailstead| {
            let status = this.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                status.is_none(),
                "mailstead serve exited ({status:?}); log:\n{}",
                this.log()
            );
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        for port in [
            self.smtp_port,
            self.imap_port,
            self.imaps_port,
            self.pop3_port,
            self.managesieve_port,
            self.http_port,
        ] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                exited(self);
                assert!(
                    Instant::now() < deadline,
                    "mailstead serve did not listen on {port}; log:\n{}",
                    self.log()
                );
                thread::sleep(Duration::from_millis(50));
            }
        }
        wait_for_greeting(self.smtp_port, "220", "mailstead smtp", || self.log());
        wait_for_greeting(self.imap_port, "* OK", "mailstead imap", || self.log());
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(self.dir.join("mailstead.toml"))
            .args(args)
            .current_dir(&self.dir)
            .env_remove("MAILSTEAD_CONFIG")
            .env_remove("RUST_LOG");
        command
    }

    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        support::run_ok(self.command(args), &format!("mailstead {args:?}"), stdin)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    /// The self-signed certificate `serve` made on first start.
    pub fn cert(&self) -> PathBuf {
        self.dir.join("data/tls/cert.pem")
    }
}

impl Drop for Mailstead {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The IMAP server a client suite runs against: Mailstead, or Dovecot when
/// `MAILSTEAD_IMAP_TEST_TARGET=dovecot` (to check the suite itself).
pub enum Target {
    Mailstead(Mailstead),
    Dovecot(Dovecot),
}

impl Target {
    /// Starts the server under test in `dir` with `users`; `imap_extra` is added to
    /// Mailstead's `[imap]` section (Dovecot ignores it).
    pub fn start(dir: &Path, users: &[String], imap_extra: &str) -> Target {
        Target::start_as(dir, users, "", imap_extra)
    }

    /// [`Target::start`] with `server_extra` in Mailstead's `[server]` section.
    pub fn start_as(dir: &Path, users: &[String], server_extra: &str, imap_extra: &str) -> Target {
        fs::create_dir_all(dir).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        support::reachable_by_server(dir);
        match std::env::var("MAILSTEAD_IMAP_TEST_TARGET").as_deref() {
            Ok("dovecot") => {
                let mail = dir.join("mail");
                Target::Dovecot(Dovecot::start(
                    &dir.join("dovecot"),
                    users,
                    &format!("maildir:{}/%d/%n/Maildir:LAYOUT=fs", mail.display()),
                    &mail,
                ))
            }
            Ok("mailstead") | Err(_) => Target::Mailstead(Mailstead::start_as(
                &dir.join("mailstead"),
                users,
                server_extra,
                &format!("login_on_loopback_without_tls = true\n{imap_extra}"),
                "",
            )),
            Ok(other) => panic!("MAILSTEAD_IMAP_TEST_TARGET={other}: use mailstead or dovecot"),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Target::Mailstead(_) => "mailstead",
            Target::Dovecot(_) => "dovecot",
        }
    }

    pub fn imap_port(&self) -> u16 {
        match self {
            Target::Mailstead(m) => m.imap_port,
            Target::Dovecot(d) => d.imap_port,
        }
    }

    pub fn imaps_port(&self) -> u16 {
        match self {
            Target::Mailstead(m) => m.imaps_port,
            Target::Dovecot(d) => d.imaps_port,
        }
    }

    pub fn cert(&self) -> PathBuf {
        match self {
            Target::Mailstead(m) => m.cert(),
            Target::Dovecot(d) => d.cert.clone(),
        }
    }

    pub fn delivery(&self) -> Delivery {
        match self {
            Target::Mailstead(m) => Delivery::Smtp(m.smtp_port),
            Target::Dovecot(d) => Delivery::Lmtp(d.lmtp_port),
        }
    }

    /// The Maildir of `user` (local part `user` of [`DOMAIN`]).
    pub fn maildir(&self, user: &str) -> PathBuf {
        match self {
            Target::Mailstead(m) => m
                .dir
                .join("data/mailboxes")
                .join(DOMAIN)
                .join(user)
                .join("Maildir"),
            Target::Dovecot(d) => d
                .dir
                .parent()
                .unwrap()
                .join("mail")
                .join(DOMAIN)
                .join(user)
                .join("Maildir"),
        }
    }

    pub fn log(&self) -> String {
        match self {
            Target::Mailstead(m) => m.log(),
            Target::Dovecot(d) => d.log(),
        }
    }

    pub fn stop(&mut self) {
        match self {
            Target::Mailstead(m) => m.stop(),
            Target::Dovecot(d) => d.stop(),
        }
    }
}

/// Runs `imap_tool.py MODE` (state or apply) against the IMAPS port; `log` is shown on failure.
pub fn imap_tool(
    imaps_port: u16,
    cert: &Path,
    user: &str,
    mode: &str,
    actions: Option<&serde_json::Value>,
    log: impl Fn() -> String,
) -> serde_json::Value {
    let mut args = vec![
        mode.to_owned(),
        "--imaps-port".to_owned(),
        imaps_port.to_string(),
        "--cafile".to_owned(),
        cert.display().to_string(),
        "--user".to_owned(),
        user.to_owned(),
        "--password".to_owned(),
        PASSWORD.to_owned(),
    ];
    if let Some(actions) = actions {
        args.push("--actions".to_owned());
        args.push(actions.to_string());
    }
    let output = python("imap_tool.py", &args);
    assert!(
        output.status.success(),
        "imap_tool {mode} {actions:?} failed:\n{}\n--- server log:\n{}",
        both(&output),
        log()
    );
    serde_json::from_slice(&output.stdout).unwrap()
}
