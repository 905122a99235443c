//! Debian's Postfix as a real peer in front of Mailstead: Postfix accepts mail for
//! example.test and hands it to `mailstead serve` over LMTP (TCP), the way a site keeping its
//! Postfix MX would run it. swaks plays the sending client.
//!
//! Needs root, `postfix` and `swaks` (Debian packages; `scripts/test-services.sh` installs
//! them). It fails, never skips, when they are missing: CI must provide them.

// The helpers below are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mailstead");
const DOMAIN: &str = "example.test";

/// `mailstead serve` in its own data directory.
struct Mailstead {
    dir: PathBuf,
    child: Option<Child>,
}

impl Mailstead {
    fn command(&self, args: &[&str]) -> Command {
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

    fn cli(&self, args: &[&str], stdin: Option<&str>) {
        support::run_ok(self.command(args), &format!("mailstead {args:?}"), stdin);
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    fn maildir(&self, user: &str) -> PathBuf {
        self.dir
            .join("data/mailboxes")
            .join(DOMAIN)
            .join(user)
            .join("Maildir")
    }
}

impl Drop for Mailstead {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A Postfix instance with its own config and queue directories; stopped on drop.
struct Postfix {
    conf: PathBuf,
    maillog: PathBuf,
}

impl Postfix {
    fn maillog(&self) -> String {
        fs::read_to_string(&self.maillog).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Give master a moment to go, so the temporary directory can be removed. Postfix
        // leaves its pid file behind, so watch the process instead.
        let pid = fs::read_to_string(self.conf.join("../spool/pid/master.pid"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        if pid.is_empty() {
            return;
        }
        let process = PathBuf::from("/proc").join(pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        while process.exists() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
    }
}

fn start_postfix(root: &Path, smtp_port: u16, lmtp_port: u16) -> Postfix {
    let conf = root.join("conf");
    let spool = root.join("spool");
    let data = root.join("data");
    for dir in [&conf, &spool, &data] {
        fs::create_dir_all(dir).unwrap();
    }
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&spool, fs::Permissions::from_mode(0o755)).unwrap();
    let chown = Command::new("chown")
        .arg("postfix:postfix")
        .arg(&data)
        .status()
        .unwrap();
    assert!(chown.success(), "chown postfix {}", data.display());
    fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();

    let maillog = root.join("maillog");
    let root_text = root.display();
    fs::write(
        conf.join("main.cf"),
        format!(
            "compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.peer.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
alias_maps =
local_recipient_maps =
local_transport = error:local delivery disabled
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_maps = texthash:{conf}/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:{lmtp_port}
smtpd_relay_restrictions = reject_unauth_destination
default_transport = error:outbound delivery disabled
relay_transport = error:outbound delivery disabled
message_size_limit = 52428800
maillog_file_prefixes = /var, {root_text}
maillog_file = {maillog}
",
            spool = spool.display(),
            data = data.display(),
            conf = conf.display(),
            maillog = maillog.display(),
        ),
    )
    .unwrap();
    fs::write(
        conf.join("vmailbox"),
        format!("user1@{DOMAIN} ok\nuser2@{DOMAIN} ok\nteam@{DOMAIN} ok\n"),
    )
    .unwrap();
    fs::write(
        conf.join("master.cf"),
        format!(
            "127.0.0.1:{smtp_port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"
        ),
    )
    .unwrap();
    for file in ["main.cf", "master.cf", "vmailbox"] {
        fs::set_permissions(conf.join(file), fs::Permissions::from_mode(0o644)).unwrap();
    }

    // From here on the guard stops Postfix whatever happens.
    let postfix = Postfix {
        conf: conf.clone(),
        maillog,
    };
    let start_log = fs::File::create(root.join("start.log")).unwrap();
    let status = Command::new("postfix")
        .arg("-c")
        .arg(&conf)
        .arg("start")
        .stdin(Stdio::null())
        .stdout(start_log.try_clone().unwrap())
        .stderr(start_log)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "postfix start failed: {}",
        fs::read_to_string(root.join("start.log")).unwrap_or_default()
    );
    let start_log = root.join("start.log");
    support::wait_for_greeting(smtp_port, "220", "postfix", || {
        format!(
            "{}\n{}",
            fs::read_to_string(&start_log).unwrap_or_default(),
            postfix.maillog()
        )
    });
    postfix
}

/// The tokens (`Subject:` lines) of the messages in a Maildir's new/ and cur/, with counts.
fn subjects(maildir: &Path) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let text = fs::read_to_string(entry.unwrap().path()).unwrap();
            let subject = text
                .lines()
                .find_map(|line| line.strip_prefix("Subject: "))
                .unwrap_or("")
                .to_owned();
            *found.entry(subject).or_default() += 1;
        }
    }
    found
}

fn swaks(port: u16, to: &str, subject: &str) {
    let output = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{port}")])
        .args(["--to", to])
        .args(["--from", "sender@client.test"])
        .args(["--helo", "client.test"])
        .args(["--header", &format!("Subject: {subject}")])
        .args(["--body", &format!("body of {subject}")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "swaks to {to}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn postfix_delivers_through_lmtp() {
    support::require("postfix", "Debian's postfix");
    support::require("swaks", "Debian's swaks");

    let temp = tempfile::tempdir().unwrap();
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mailstead_dir = temp.path().join("mailstead");
    fs::create_dir_all(&mailstead_dir).unwrap();

    let smtp_port = support::free_port();
    let lmtp_port = support::free_port();
    let postfix_port = support::free_port();
    fs::write(
        mailstead_dir.join("mailstead.toml"),
        format!(
            "[server]\nhostname = \"mailstead.test\"\ndata_dir = \"{}\"\n\n\
             [smtp]\nlisten = [\"127.0.0.1:{smtp_port}\"]\n\n\
             [lmtp]\nlisten = [\"127.0.0.1:{lmtp_port}\"]\n\n\
             [imap]\nlisten = []\nlisten_tls = []\n[pop3]\nlisten = []\nlisten_tls = []\n[managesieve]\nlisten = []\n[submission]\nlisten = []\nlisten_tls = []\n[http]\nlisten = []\n\n\
             [log]\nlevel = \"warn\"\n",
            mailstead_dir.join("data").display()
        ),
    )
    .unwrap();
    let mut mailstead = Mailstead {
        dir: mailstead_dir,
        child: None,
    };
    mailstead.cli(&["domain", "add", DOMAIN], None);
    for user in ["user1", "user2"] {
        mailstead.cli(
            &["mailbox", "add", &format!("{user}@{DOMAIN}")],
            Some("a-long-enough-secret-1\n"),
        );
    }
    mailstead.cli(
        &[
            "alias",
            "add",
            &format!("team@{DOMAIN}"),
            &format!("user1@{DOMAIN}"),
            &format!("user2@{DOMAIN}"),
        ],
        None,
    );
    let log = fs::File::create(mailstead.dir.join("serve.log")).unwrap();
    mailstead.child = Some(
        mailstead
            .command(&["serve"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    support::wait_for_greeting(lmtp_port, "220", "mailstead lmtp", || mailstead.log());

    let postfix = start_postfix(&temp.path().join("postfix"), postfix_port, lmtp_port);

    swaks(postfix_port, &format!("user1@{DOMAIN}"), "to-user1");
    swaks(postfix_port, &format!("team@{DOMAIN}"), "to-team");

    let expected_user1 = BTreeMap::from([("to-team".to_owned(), 1), ("to-user1".to_owned(), 1)]);
    let expected_user2 = BTreeMap::from([("to-team".to_owned(), 1)]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sent = postfix.maillog().matches("status=sent").count();
        let user1 = subjects(&mailstead.maildir("user1"));
        let user2 = subjects(&mailstead.maildir("user2"));
        if sent >= 2 && user1 == expected_user1 && user2 == expected_user2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered within 20 s: user1 {user1:?}, user2 {user2:?}\n\
             postfix maillog:\n{}\nmailstead log:\n{}",
            postfix.maillog(),
            mailstead.log()
        );
        thread::sleep(Duration::from_millis(200));
    }
    // Nothing more arrives (no duplicate from a retry).
    thread::sleep(Duration::from_millis(500));
    assert_eq!(subjects(&mailstead.maildir("user1")), expected_user1);
    assert_eq!(subjects(&mailstead.maildir("user2")), expected_user2);
    let maillog = postfix.maillog();
    assert!(
        maillog.contains(&format!("relay=127.0.0.1[127.0.0.1]:{lmtp_port}")),
        "{maillog}"
    );
    assert!(!maillog.contains("status=deferred"), "{maillog}");
    assert!(!maillog.contains("status=bounced"), "{maillog}");
    drop(postfix);
}
