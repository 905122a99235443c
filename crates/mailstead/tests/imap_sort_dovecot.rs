//! SORT, ESORT and THREAD answer as Dovecot does on the same Maildir: Debian's Dovecot
//! gets a generated folder over LMTP (threads with missing and looping references,
//! duplicate and missing Message-IDs, `Re:`/`Fwd:`/list-tag subjects, encoded words,
//! missing and broken dates and addresses), answers a list of UID SORT and UID THREAD
//! commands, stops; Mailstead serves the same Maildir (the UIDs are Dovecot's) and must
//! give the same answers, to Python's imaplib too.
//!
//! Needs root, `dovecot` and `doveadm` (Debian's dovecot-imapd, dovecot-lmtpd); it fails,
//! never skips, when one is missing.

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use harness::{DOMAIN, Delivery, Dovecot, MAIL_ACCOUNT, Mailstead, PASSWORD, both, python};

/// The commands both servers answer; UIDs, so that the numbers do not depend on sessions.
const COMMANDS: &[&str] = &[
    "UID SORT (DATE) UTF-8 ALL",
    "UID SORT (REVERSE DATE) UTF-8 ALL",
    "UID SORT (ARRIVAL) UTF-8 ALL",
    "UID SORT (SUBJECT) UTF-8 ALL",
    "UID SORT (REVERSE SUBJECT) UTF-8 ALL",
    "UID SORT (SUBJECT DATE) UTF-8 ALL",
    "UID SORT (FROM) UTF-8 ALL",
    "UID SORT (REVERSE FROM DATE) UTF-8 ALL",
    "UID SORT (TO) UTF-8 ALL",
    "UID SORT (CC) UTF-8 ALL",
    "UID SORT (SIZE) UTF-8 ALL",
    "UID SORT (REVERSE SIZE) UTF-8 ALL",
    "UID SORT (DISPLAYFROM) UTF-8 ALL",
    "UID SORT (DISPLAYTO) UTF-8 ALL",
    "UID SORT (SUBJECT) UTF-8 SUBJECT lunch",
    "UID SORT (DATE) US-ASCII FROM example",
    "UID SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL",
    "UID SORT RETURN (ALL) (SUBJECT) UTF-8 ALL",
    "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
    "UID THREAD REFERENCES UTF-8 ALL",
    "UID THREAD REFS UTF-8 ALL",
    "UID THREAD REFERENCES UTF-8 NOT SUBJECT lunch",
];

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SUBJECTS: &[&str] = &[
    "Lunch",
    "Re: Lunch",
    "RE: re: Lunch",
    "Fwd: Lunch",
    "Re: [list] Fwd: Lunch (fwd)",
    "[list] Lunch",
    "[Fwd: Lunch]",
    "Budget 2027",
    "Re: Budget 2027",
    "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=",
    "Re: =?ISO-8859-1?Q?Gr=FC=DFe?=",
    "zebra",
    "Zebra crossing",
    "_underscore",
    "",
    "   spaced    out   ",
    "Re[2]: Plans",
    "Plans",
];

const ADDRESSES: &[&str] = &[
    "anna@example.org",
    "Anna <anna@example.org>",
    "\"Bob Builder\" <bob@example.net>",
    "=?UTF-8?Q?=C3=89mile?= <emile@example.fr>",
    "carol@EXAMPLE.com",
    "<dave@example.org>",
    "zed@example.org (Zed)",
    "undisclosed-recipients:;",
    "Mixed Case <MiXeD@example.org>",
];

const DATES: &[&str] = &[
    "Mon, 02 Nov 2026 10:00:00 +0000",
    "Mon, 02 Nov 2026 10:00:00 +0100",
    "Sun, 01 Nov 2026 23:30:00 -0500",
    "Tue, 03 Nov 2026 08:15:00 +0000",
    "3 Nov 2026 08:15:00 GMT",
    "Wed, 04 Nov 2026 12:00:00 +0000",
    "not a date",
];

/// The generated folder: message `i` (from 0) is delivered `i`-th.
fn messages() -> Vec<String> {
    let mut random = Random(0x5eed_1234_abcd_0001);
    let count = 90;
    let mut out = Vec::new();
    for i in 0..count {
        let mut headers = Vec::new();
        if random.below(8) != 0 {
            headers.push(format!("From: {}", random.pick(ADDRESSES)));
        }
        if random.below(6) != 0 {
            headers.push(format!("To: {}", random.pick(ADDRESSES)));
        }
        if random.below(3) == 0 {
            headers.push(format!(
                "Cc: {}, {}",
                random.pick(ADDRESSES),
                random.pick(ADDRESSES)
            ));
        }
        headers.push(format!("Subject: {}", random.pick(SUBJECTS)));
        if random.below(7) != 0 {
            headers.push(format!("Date: {}", random.pick(DATES)));
        }
        // Mostly unique IDs; some missing, some repeated.
        match random.below(12) {
            0 => {}
            1 if i > 0 => headers.push(format!("Message-ID: <m{}@gen.test>", random.below(i))),
            _ => headers.push(format!("Message-ID: <m{i}@gen.test>")),
        }
        // Replies to earlier messages, to messages never delivered, and loops.
        if i > 0 {
            match random.below(6) {
                0 | 1 => {
                    let parent = random.below(i);
                    let grand = random.below(parent + 1);
                    headers.push(format!(
                        "References: <m{grand}@gen.test>\r\n <m{parent}@gen.test>"
                    ));
                }
                2 => headers.push(format!("In-Reply-To: <m{}@gen.test>", random.below(i))),
                3 => headers.push(format!(
                    "References: <gone{}@gen.test> <m{}@gen.test>",
                    random.below(5),
                    random.below(i)
                )),
                4 => headers.push(format!(
                    "References: <m{}@gen.test>",
                    i + 1 + random.below(3)
                )),
                _ => {}
            }
        }
        let body = "x".repeat(usize::try_from(random.below(400)).unwrap());
        out.push(format!("{}\r\n\r\n{body}\r\n", headers.join("\r\n")));
    }
    out
}

/// A plain IMAP session: logs in, selects INBOX, and gives the untagged answers of each
/// command.
fn answers(port: u16, user: &str, log: impl Fn() -> String) -> Vec<Vec<String>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut greeting = String::new();
    reader.read_line(&mut greeting).unwrap();
    let mut run = |tag: &str, command: &str| -> Vec<String> {
        writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .unwrap();
        let mut untagged = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(
                !line.is_empty(),
                "connection closed on {command}:\n{}",
                log()
            );
            let line = line.trim_end().to_owned();
            if let Some(status) = line.strip_prefix(&format!("{tag} ")) {
                assert!(status.starts_with("OK"), "{command}: {line}\n{}", log());
                return untagged;
            }
            untagged.push(line);
        }
    };
    run("l", &format!("LOGIN {user} {PASSWORD}"));
    run("s", "SELECT INBOX");
    COMMANDS
        .iter()
        .enumerate()
        .map(|(i, command)| {
            run(&format!("c{i}"), command)
                .into_iter()
                .filter(|line| {
                    ["* SORT", "* THREAD", "* ESEARCH"]
                        .iter()
                        .any(|start| line.starts_with(start))
                })
                .collect()
        })
        .collect()
}

#[test]
fn sort_and_thread_answer_as_dovecot_does() {
    let temp = tempfile::tempdir().unwrap();
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let user = format!("user1@{DOMAIN}");
    let homes = temp.path().join("vmail");
    let mut dovecot = Dovecot::start(
        &temp.path().join("dovecot"),
        std::slice::from_ref(&user),
        "maildir:~/Maildir",
        &homes,
    );
    for message in messages() {
        Delivery::Lmtp(dovecot.lmtp_port).deliver(&user, &message);
    }
    let by_dovecot = answers(dovecot.imap_port, &user, || dovecot.log());
    dovecot.stop();

    let mailstead = Mailstead::start_as(
        &temp.path().join("mailstead"),
        std::slice::from_ref(&user),
        MAIL_ACCOUNT,
        "login_on_loopback_without_tls = true\n",
        &format!(
            "\n[directory]\nhomedir_template = \"{homes}/%d/%n\"\n\
             maildir_template = \"maildir:{homes}/%d/%n/Maildir\"\n",
            homes = homes.display()
        ),
    );
    // Twice: the first reads the files, the second the cached values.
    for round in ["first", "cached"] {
        let by_mailstead = answers(mailstead.imap_port, &user, || mailstead.log());
        let differences: Vec<String> = COMMANDS
            .iter()
            .zip(by_dovecot.iter().zip(&by_mailstead))
            .filter(|(_, (dovecot, mailstead))| dovecot != mailstead)
            .map(|(command, (dovecot, mailstead))| {
                format!("{command}\n  dovecot:   {dovecot:?}\n  mailstead: {mailstead:?}")
            })
            .collect();
        assert!(
            differences.is_empty(),
            "{round} round: {} of {} commands answer otherwise:\n{}",
            differences.len(),
            COMMANDS.len(),
            differences.join("\n")
        );
    }
    // imaplib's sort(), thread() and uid(): the numbers Dovecot gave (sequence numbers are
    // UIDs here: nothing was expunged).
    let output = python(
        "sort_thread_imaplib.py",
        &[
            "--port".to_owned(),
            mailstead.imap_port.to_string(),
            "--user".to_owned(),
            user.clone(),
            "--password".to_owned(),
            PASSWORD.to_owned(),
        ],
    );
    assert!(output.status.success(), "imaplib: {}", both(&output));
    let by_imaplib: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let dovecot_payload = |command: &str, prefix: &str| {
        let index = COMMANDS.iter().position(|c| *c == command).unwrap();
        by_dovecot[index][0]
            .strip_prefix(prefix)
            .unwrap()
            .trim_start()
            .to_owned()
    };
    for (call, command, prefix) in [
        ("sort DATE", "UID SORT (DATE) UTF-8 ALL", "* SORT"),
        ("uid SORT SUBJECT", "UID SORT (SUBJECT) UTF-8 ALL", "* SORT"),
        (
            "thread REFERENCES",
            "UID THREAD REFERENCES UTF-8 ALL",
            "* THREAD",
        ),
        ("uid THREAD REFS", "UID THREAD REFS UTF-8 ALL", "* THREAD"),
    ] {
        assert_eq!(
            by_imaplib[call].as_str(),
            Some(dovecot_payload(command, prefix).as_str()),
            "imaplib {call}"
        );
    }
}
