//! POP3 end to end: `mailstead serve` with real clients, Python's poplib and fetchmail, and a
//! POP3 user moved from Debian's Dovecot to Mailstead on the same Maildir.
//!
//! The migration: Dovecot (dovecot-pop3d, default `pop3_uidl_format = %08Xu%08Xv`) serves a
//! Maildir over POP3, one message carrying a UIDL recorded in `dovecot-uidlist` (the `P`
//! field a migration with `pop3_save_uidl` leaves); poplib records the UIDL list and fetchmail
//! (keep, UIDL) downloads every message, remembering them in its `.fetchids`. Then Mailstead
//! serves the same Maildir: the UIDL list must be identical and fetchmail must download
//! nothing, until a new message arrives, which it downloads alone.
//!
//! Needs root, `dovecot` (dovecot-imapd, dovecot-lmtpd, dovecot-pop3d), `fetchmail` and
//! `python3`; it fails, never skips, when one is missing.

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use harness::{
    DOMAIN, Delivery, Dovecot, MAIL_ACCOUNT, MAIL_UID, Mailstead, PASSWORD, both, chown_recursive,
};
use serde_json::Value;

fn message(id: &str, body: &str) -> String {
    format!(
        "From: Sender <sender@client.test>\r\nTo: user1@{DOMAIN}\r\nSubject: {id}\r\n\
         Date: Sat, 07 Mar 2026 10:00:00 +0000\r\nMessage-ID: <{id}@client.test>\r\n\r\n{body}\r\n"
    )
}

/// Runs `pop3_tool.py` (poplib) and parses its JSON.
fn pop3_tool(command: &str, port: u16, user: &str) -> Value {
    support::require("python3", "python3");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pop3/pop3_tool.py");
    let output = Command::new("python3")
        .arg("-u")
        .arg(script)
        .args([command, &port.to_string(), user, PASSWORD])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "pop3_tool {command}: {}",
        both(&output)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("pop3_tool printed no JSON ({err}): {}", both(&output)))
}

/// fetchmail in one directory: its rc file, `.fetchids` and the messages it delivered (as
/// batch SMTP, one `MAIL FROM` per message).
struct Fetchmail {
    dir: PathBuf,
}

impl Fetchmail {
    fn new(dir: &Path) -> Fetchmail {
        support::require("fetchmail", "Debian's fetchmail");
        fs::create_dir_all(dir).unwrap();
        Fetchmail {
            dir: dir.to_owned(),
        }
    }

    /// Fetches (keeping the messages on the server, remembering UIDLs) from `port`; returns
    /// how many messages it downloaded.
    fn fetch(&self, port: u16, user: &str) -> usize {
        let rc = self.dir.join("fetchmailrc");
        let out = self.dir.join("fetched.bsmtp");
        let _ = fs::remove_file(&out);
        // The same poll name for both servers: .fetchids keys its UIDLs by user and server
        // name, so the second server is the first one moved. No TLS: the servers allow
        // passwords on loopback, and fetchmail would refuse their self-signed certificates.
        fs::write(
            &rc,
            format!(
                "set no syslog\nset idfile \"{ids}\"\n\
                 poll mail.example.test via 127.0.0.1 with proto POP3 port {port} uidl\n\
                 \tuser \"{user}\" there with password \"{PASSWORD}\" is \"local\" here\n\
                 \tkeep sslproto ''\n",
                ids = self.dir.join("fetchids").display()
            ),
        )
        .unwrap();
        fs::set_permissions(&rc, fs::Permissions::from_mode(0o600)).unwrap();
        let output: Output = Command::new("fetchmail")
            .arg("--fetchmailrc")
            .arg(&rc)
            .arg("--bsmtp")
            .arg(&out)
            .arg("--verbose")
            .env("FETCHMAILHOME", &self.dir)
            .env("HOME", &self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        // 0: mail fetched; 1: no mail. Anything else is a failure.
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "fetchmail failed: {}",
            both(&output)
        );
        let fetched = fs::read_to_string(&out).unwrap_or_default();
        let count = fetched.matches("MAIL FROM:").count();
        assert_eq!(
            output.status.code() == Some(1),
            count == 0,
            "fetchmail's exit status and what it delivered disagree: {}\n{fetched}",
            both(&output)
        );
        count
    }
}

#[test]
fn poplib_session_against_mailstead() {
    let temp = tempfile::tempdir().unwrap();
    let user = format!("user1@{DOMAIN}");
    let mailstead = Mailstead::start(temp.path(), std::slice::from_ref(&user), "", "");
    let delivery = Delivery::Smtp(mailstead.smtp_port);
    let first = message("first", ".leading dot\r\nsecond line");
    delivery.deliver(&user, &first);
    delivery.deliver(&user, &message("second", "one\r\ntwo\r\nthree"));
    let out = pop3_tool("suite", mailstead.pop3_port, &user);
    let capa = |key: &str| -> Vec<String> {
        out[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(capa("capa_before").contains(&"STLS".to_owned()), "{out:#}");
    assert!(
        !capa("capa_after_tls").contains(&"STLS".to_owned()),
        "{out:#}"
    );
    for key in ["USER", "SASL", "TOP", "UIDL", "RESP-CODES", "PIPELINING"] {
        assert!(
            capa("capa_after_tls").contains(&key.to_owned()),
            "{key}: {out:#}"
        );
    }
    assert_eq!(out["pass"], "+OK Logged in.");
    let listing = &out["listing"];
    assert_eq!(listing["stat"][0], 2, "{out:#}");
    // The stored message got a Received: line; RETR's octets are what LIST said.
    let size_1: u64 = listing["list"][0][1].as_str().unwrap().parse().unwrap();
    let retrieved = out["retr1"].as_str().unwrap();
    assert!(retrieved.ends_with(&first[first.find("From:").unwrap()..].trim_end_matches("\r\n")));
    assert!(
        retrieved.contains("\r\n\r\n.leading dot\r\n"),
        "poplib undid the dot-stuffing: {retrieved}"
    );
    // poplib counts the message without the stuffed dots: LIST's size.
    assert_eq!(out["retr1_octets"].as_u64().unwrap(), size_1, "{out:#}");
    let top = out["top2"].as_array().unwrap();
    assert_eq!(top.last().unwrap(), "one", "{out:#}");
    assert!(top.contains(&Value::from("Subject: second")), "{out:#}");
    assert_eq!(out["dele1"], "+OK Marked to be deleted.");
    assert!(
        out["retr_deleted"].as_str().unwrap().contains("-ERR"),
        "{out:#}"
    );
    assert_eq!(out["quit"], "+OK Logging out, messages deleted.");
    let after = &out["after"];
    assert_eq!(after["stat"][0], 1, "{out:#}");
    assert_eq!(after["uidl"][0][1], listing["uidl"][0][1], "{out:#}");
}

#[test]
fn a_pop3_client_moved_from_dovecot_downloads_nothing_again() {
    let temp = tempfile::tempdir().unwrap();
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let user = format!("user1@{DOMAIN}");
    let users = std::slice::from_ref(&user);
    let homes = temp.path().join("vmail");
    let dovecot_dir = temp.path().join("dovecot");
    fs::create_dir_all(&dovecot_dir).unwrap();

    // 1. Dovecot receives the mail.
    let mut dovecot = Dovecot::start_with_pop3(&dovecot_dir, users, "maildir:~/Maildir", &homes);
    for (id, body) in [("m1", "one"), ("m2", ".dot line"), ("m3", "three")] {
        Delivery::Lmtp(dovecot.lmtp_port).deliver(&user, &message(id, body));
    }
    dovecot.stop();
    // As a migration with pop3_save_uidl leaves it: message 2 keeps the UIDL its old
    // server gave.
    let maildir = homes.join(DOMAIN).join("user1").join("Maildir");
    let uidlist_path = maildir.join("dovecot-uidlist");
    let uidlist = fs::read_to_string(&uidlist_path).unwrap();
    let marked = uidlist.replacen("\n2 ", "\n2 Pold-server-uidl-2 ", 1);
    assert_ne!(marked, uidlist, "no record of UID 2 in:\n{uidlist}");
    fs::write(&uidlist_path, marked).unwrap();
    chown_recursive(&homes, MAIL_UID);

    // 2. The client uses Dovecot's POP3.
    let mut dovecot = Dovecot::start_with_pop3(&dovecot_dir, users, "maildir:~/Maildir", &homes);
    let by_dovecot = pop3_tool("uidls", dovecot.pop3_port, &user);
    assert_eq!(by_dovecot["stat"][0], 3, "{by_dovecot:#}");
    assert_eq!(
        by_dovecot["uidl"][1][1], "old-server-uidl-2",
        "Dovecot does not use the recorded UIDL: {by_dovecot:#}"
    );
    let fetchmail = Fetchmail::new(&temp.path().join("fetchmail"));
    assert_eq!(fetchmail.fetch(dovecot.pop3_port, &user), 3);
    assert_eq!(fetchmail.fetch(dovecot.pop3_port, &user), 0);
    dovecot.stop();

    // 3. Mailstead serves the same Maildir.
    let mailstead = Mailstead::start_as(
        &temp.path().join("mailstead"),
        users,
        MAIL_ACCOUNT,
        "",
        &format!(
            "\n[directory]\nhomedir_template = \"{homes}/%d/%n\"\n\
             maildir_template = \"maildir:{homes}/%d/%n/Maildir\"\n",
            homes = homes.display()
        ),
    );
    let by_mailstead = pop3_tool("uidls", mailstead.pop3_port, &user);
    assert_eq!(
        by_mailstead, by_dovecot,
        "STAT, LIST and UIDL differ after the move"
    );
    assert_eq!(
        fetchmail.fetch(mailstead.pop3_port, &user),
        0,
        "fetchmail downloaded messages again"
    );
    // New mail is downloaded, alone.
    Delivery::Smtp(mailstead.smtp_port).deliver(&user, &message("m4", "four"));
    assert_eq!(fetchmail.fetch(mailstead.pop3_port, &user), 1);
    assert_eq!(fetchmail.fetch(mailstead.pop3_port, &user), 0);
}
