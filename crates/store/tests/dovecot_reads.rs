//! Delivers into a Maildir and has Debian's Dovecot read it back with `doveadm`: every
//! message counted, with the physical size (`S=`), the virtual size (`W=`) and the text we
//! wrote, and Dovecot's maildir quota backend taking our `maildirsize` as it is.
//!
//! Needs `doveadm` (Debian's `dovecot-core`) and root, to hand the Maildir to an
//! unprivileged uid: Dovecot refuses mail access as root. Missing either fails the test.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use mailstead_store::QuotaLimit;
use mailstead_store::Store;
use serde_json::Value;

const DOVEADM: &str = "/usr/bin/doveadm";
/// Dovecot's `nobody`: any uid but 0 does.
const MAIL_UID: u32 = 65534;
const QUOTA_BYTES: u64 = 1 << 20;

fn messages() -> Vec<Vec<u8>> {
    let mut large = b"From: big@example.com\r\nSubject: large\r\n\r\n".to_vec();
    for n in 0..3000 {
        large.extend_from_slice(format!("line {n} of a longer message body\r\n").as_bytes());
    }
    vec![
        b"From: a@example.com\r\nTo: bob@example.com\r\nSubject: short\r\n\r\nHello Bob.\r\n"
            .to_vec(),
        "From: b@example.com\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Grüße aus Köln, 日本語のテキスト ✓\r\n\r\n-- \r\nÆøå\r\n"
            .as_bytes()
            .to_vec(),
        large,
        b"Subject: no final line end\r\n\r\nlast line".to_vec(),
    ]
}

/// What Dovecot should report for a message received as `wire`: (physical, virtual, text).
fn expected(wire: &[u8]) -> (u64, u64, String) {
    let text = String::from_utf8(wire.to_vec())
        .expect("utf-8 test message")
        .replace("\r\n", "\n");
    let physical = text.len() as u64;
    let virtual_size = physical + text.matches('\n').count() as u64;
    (physical, virtual_size, text)
}

fn doveadm(home: &Path, maildir: &Path, config: &Path, args: &[&str]) -> Value {
    assert!(
        Path::new(DOVEADM).exists(),
        "{DOVEADM} is missing: install Debian's dovecot-core"
    );
    let output = Command::new(DOVEADM)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        // Without -u, doveadm takes the user from the environment and asks no userdb.
        .env("USER", "tester")
        .env("HOME", home)
        .env("MAIL", format!("maildir:{}", maildir.display()))
        .arg("-c")
        .arg(config)
        .args(["-f", "json"])
        .args(args)
        .output()
        .expect("run doveadm");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains("Error"),
        "doveadm {args:?} failed ({}):\n{stderr}",
        output.status
    );
    serde_json::from_slice(&output.stdout).expect("doveadm json")
}

fn chown_recursive(path: &Path) {
    std::os::unix::fs::chown(path, Some(MAIL_UID), Some(MAIL_UID)).expect("chown");
    if path.is_dir() {
        for entry in fs::read_dir(path).expect("read_dir") {
            chown_recursive(&entry.expect("entry").path());
        }
    }
}

#[tokio::test]
async fn dovecot_reads_what_we_deliver() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Dovecot drops to MAIL_UID, which must be able to reach the Maildir.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let home: PathBuf = dir.path().join("home");
    let maildir = home.join("Maildir");
    let store = Store::new("mx.example.com", dir.path().join("spool")).expect("store");

    let messages = messages();
    let mut total = 0;
    for wire in &messages {
        let mut writer = store.begin().await.expect("begin");
        for chunk in wire.chunks(1000) {
            writer.write_all(chunk).await.expect("write");
        }
        let spooled = writer.finish().await.expect("finish");
        let (physical, virtual_size, _) = expected(wire);
        assert_eq!((spooled.size(), spooled.vsize()), (physical, virtual_size));
        let delivered = spooled
            .deliver(&maildir, QuotaLimit::bytes(Some(QUOTA_BYTES)), None)
            .await
            .expect("deliver");
        assert_eq!(fs::metadata(&delivered.path).expect("stat").len(), physical);
        total += physical;
    }
    let maildirsize = fs::read(maildir.join("maildirsize")).expect("maildirsize");

    let config = dir.path().join("dovecot.conf");
    fs::write(
        &config,
        format!(
            "ssl = no\n\
             log_path = /dev/stderr\n\
             mail_uid = {MAIL_UID}\n\
             mail_gid = {MAIL_UID}\n\
             first_valid_uid = 1\n\
             mail_plugins = quota\n\
             plugin {{\n  quota = maildir:User quota\n  quota_rule = *:storage={QUOTA_BYTES}B\n}}\n"
        ),
    )
    .expect("config");
    chown_recursive(&home);

    let fetched = doveadm(
        &home,
        &maildir,
        &config,
        &[
            "fetch",
            "uid size.physical size.virtual text",
            "mailbox",
            "INBOX",
            "all",
        ],
    );
    let fetched = fetched.as_array().expect("array");
    assert_eq!(fetched.len(), messages.len(), "{fetched:?}");
    let mut seen = vec![false; messages.len()];
    for record in fetched {
        let text = record["text"].as_str().expect("text");
        let index = messages
            .iter()
            .position(|wire| expected(wire).2 == text)
            .unwrap_or_else(|| panic!("Dovecot returned a text we did not write: {text:?}"));
        assert!(!seen[index], "message {index} seen twice");
        seen[index] = true;
        let (physical, virtual_size, _) = expected(&messages[index]);
        assert_eq!(
            record["size.physical"],
            physical.to_string(),
            "message {index}"
        );
        assert_eq!(
            record["size.virtual"],
            virtual_size.to_string(),
            "message {index}"
        );
    }

    // Dovecot's maildir quota backend agrees, and takes our maildirsize as fresh (it would
    // rewrite a file it found stale).
    let quota = doveadm(&home, &maildir, &config, &["quota", "get"]);
    let quota = quota.as_array().expect("array");
    let value = |kind: &str| {
        quota
            .iter()
            .find(|row| row["type"] == kind)
            .map(|row| (row["value"].clone(), row["limit"].clone()))
            .unwrap_or_else(|| panic!("no {kind} row in {quota:?}"))
    };
    assert_eq!(
        value("STORAGE"),
        (
            Value::from(total.div_ceil(1024).to_string()),
            Value::from((QUOTA_BYTES / 1024).to_string())
        )
    );
    assert_eq!(value("MESSAGE").0, Value::from(messages.len().to_string()));
    assert_eq!(
        fs::read(maildir.join("maildirsize")).expect("maildirsize"),
        maildirsize,
        "Dovecot recalculated our maildirsize"
    );
}
