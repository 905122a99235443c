//! Dovecot interop both ways, with Debian's `doveadm`, for Maildir++ and `LAYOUT=fs`:
//! a Maildir Dovecot wrote opens with the same UIDVALIDITY, UIDs, flags and keywords, and
//! Dovecot reports what Mailstead wrote.
//!
//! Needs `/usr/bin/doveadm` and root (Dovecot refuses mail access as root, so the tree is
//! handed to uid 65534). Missing either fails the test.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mailstead_store::QuotaLimit;
use mailstead_store::{FlagOperation, FolderLayout, MailStore, Snapshot, Store, SystemFlags};
use serde_json::Value;

const DOVEADM: &str = "/usr/bin/doveadm";
const MAIL_UID: u32 = 65534;

struct Dovecot {
    _dir: tempfile::TempDir,
    home: PathBuf,
    maildir: PathBuf,
    config: PathBuf,
    location: String,
}

impl Dovecot {
    fn new(layout: FolderLayout) -> Dovecot {
        assert!(
            Path::new(DOVEADM).exists(),
            "{DOVEADM} is missing: install Debian's dovecot-core"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let home = dir.path().join("home");
        fs::create_dir(&home).expect("home");
        let maildir = home.join("Maildir");
        let config = dir.path().join("dovecot.conf");
        let suffix = match layout {
            FolderLayout::MaildirPlusPlus => "",
            FolderLayout::Fs => ":LAYOUT=fs",
        };
        let location = format!("maildir:{}{suffix}", maildir.display());
        // With a namespace block, the location must be in the config (MAIL is not used).
        fs::write(
            &config,
            format!(
                "ssl = no\nlog_path = /dev/stderr\nmail_uid = {MAIL_UID}\nmail_gid = {MAIL_UID}\n\
                 first_valid_uid = 1\nmail_location = {location}\n\
                 namespace inbox {{\n  inbox = yes\n  separator = /\n}}\n"
            ),
        )
        .expect("config");
        let dovecot = Dovecot {
            _dir: dir,
            home,
            maildir,
            config,
            location,
        };
        dovecot.chown();
        dovecot
    }

    fn chown(&self) {
        chown_recursive(&self.home);
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Value {
        self.chown();
        let mut child = Command::new(DOVEADM)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("USER", "tester")
            .env("HOME", &self.home)
            .env("MAIL", &self.location)
            .arg("-c")
            .arg(&self.config)
            .args(["-f", "json"])
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run doveadm");
        if let Some(bytes) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(bytes)
                .expect("write stdin");
        }
        let output = child.wait_with_output().expect("doveadm output");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && !stderr.contains("Error"),
            "doveadm {args:?} failed ({}):\n{stderr}",
            output.status
        );
        if output.stdout.iter().all(u8::is_ascii_whitespace) {
            return Value::Null;
        }
        serde_json::from_slice(&output.stdout).expect("doveadm json")
    }

    /// uid → (flags without \Recent, sorted) as Dovecot reports them.
    fn fetch(&self, mailbox: &str) -> BTreeMap<u32, Vec<String>> {
        let rows = self.run(&["fetch", "uid flags", "mailbox", mailbox, "all"], None);
        let mut out = BTreeMap::new();
        for row in rows.as_array().expect("array") {
            let uid: u32 = row["uid"].as_str().expect("uid").parse().expect("number");
            let mut flags: Vec<String> = row["flags"]
                .as_str()
                .expect("flags")
                .split_whitespace()
                .filter(|f| *f != "\\Recent")
                .map(str::to_owned)
                .collect();
            flags.sort();
            out.insert(uid, flags);
        }
        out
    }

    /// (uidvalidity, uidnext).
    fn status(&self, mailbox: &str) -> (u32, u32) {
        let rows = self.run(&["mailbox", "status", "uidvalidity uidnext", mailbox], None);
        let row = &rows.as_array().expect("array")[0];
        (
            row["uidvalidity"].as_str().expect("v").parse().expect("n"),
            row["uidnext"].as_str().expect("n").parse().expect("n"),
        )
    }
}

fn chown_recursive(path: &Path) {
    std::os::unix::fs::chown(path, Some(MAIL_UID), Some(MAIL_UID)).expect("chown");
    if path.is_dir() {
        for entry in fs::read_dir(path).expect("read_dir") {
            chown_recursive(&entry.expect("entry").path());
        }
    }
}

/// Our snapshot in Dovecot's terms.
fn ours(snapshot: &Snapshot) -> BTreeMap<u32, Vec<String>> {
    snapshot
        .messages
        .iter()
        .map(|m| {
            let mut flags = Vec::new();
            for (flag, name) in [
                (SystemFlags::SEEN, "\\Seen"),
                (SystemFlags::ANSWERED, "\\Answered"),
                (SystemFlags::FLAGGED, "\\Flagged"),
                (SystemFlags::DELETED, "\\Deleted"),
                (SystemFlags::DRAFT, "\\Draft"),
            ] {
                if m.flags.contains(flag) {
                    flags.push(name.to_owned());
                }
            }
            for (bit, keyword) in snapshot.keywords.iter().enumerate() {
                if m.keywords & (1 << bit) != 0 {
                    flags.push(keyword.clone());
                }
            }
            flags.sort();
            (m.uid, flags)
        })
        .collect()
}

fn message(n: u32) -> Vec<u8> {
    format!("From: sender@example.com\r\nSubject: message {n}\r\n\r\nBody {n}\r\n").into_bytes()
}

#[tokio::test]
async fn dovecot_maildir_moves_in() {
    for layout in [FolderLayout::MaildirPlusPlus, FolderLayout::Fs] {
        let dovecot = Dovecot::new(layout);
        for n in 1..=4 {
            dovecot.run(&["save", "-m", "INBOX"], Some(&message(n)));
        }
        dovecot.run(&["mailbox", "create", "Work/Projects"], None);
        dovecot.run(&["save", "-m", "Work/Projects"], Some(&message(9)));
        dovecot.run(
            &[
                "flags",
                "add",
                "\\Seen $Work",
                "mailbox",
                "INBOX",
                "uid",
                "1",
            ],
            None,
        );
        dovecot.run(
            &[
                "flags",
                "add",
                "\\Flagged Later",
                "mailbox",
                "INBOX",
                "uid",
                "2",
            ],
            None,
        );
        dovecot.run(
            &["flags", "add", "\\Deleted", "mailbox", "INBOX", "uid", "3"],
            None,
        );
        dovecot.run(&["expunge", "mailbox", "INBOX", "uid", "3"], None);
        dovecot.run(
            &["flags", "add", "\\Answered", "mailbox", "INBOX", "uid", "4"],
            None,
        );
        let expected = dovecot.fetch("INBOX");
        let (uid_validity, uid_next) = dovecot.status("INBOX");
        assert_eq!(expected.keys().copied().collect::<Vec<_>>(), [1, 2, 4]);
        let expected_sub = dovecot.fetch("Work/Projects");
        let (sub_validity, sub_next) = dovecot.status("Work/Projects");

        let dir = tempfile::tempdir().expect("tempdir");
        let mail =
            MailStore::new(&Store::new("mx.example.com", dir.path().join("spool")).expect("store"));
        let account = mail
            .open_account(&dovecot.maildir, layout, QuotaLimit::UNLIMITED)
            .await
            .expect("open");
        let names: Vec<String> = account
            .list()
            .await
            .expect("list")
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert!(
            names.contains(&"Work/Projects".to_owned()),
            "{layout:?}: {names:?}"
        );
        let inbox = account.open("INBOX").await.expect("inbox");
        let snap = inbox.snapshot();
        assert_eq!(
            (snap.uid_validity, snap.uid_next),
            (uid_validity, uid_next),
            "{layout:?}"
        );
        assert_eq!(ours(&snap), expected, "{layout:?}");
        let sub = account.open("Work/Projects").await.expect("sub").snapshot();
        assert_eq!((sub.uid_validity, sub.uid_next), (sub_validity, sub_next));
        assert_eq!(ours(&sub), expected_sub);
        let body = inbox.read(1).await.expect("read").expect("uid 1");
        assert_eq!(
            body,
            b"From: sender@example.com\nSubject: message 1\n\nBody 1\n"
        );

        // And back: what Mailstead changes, Dovecot sees, with the same UIDs.
        let uid = inbox
            .append(&message(5), SystemFlags::SEEN, &["$Work".to_owned()], None)
            .await
            .expect("append");
        assert_eq!(uid, uid_next);
        inbox
            .store(
                &[2],
                FlagOperation::Remove,
                SystemFlags::FLAGGED,
                &["Later".to_owned()],
                None,
            )
            .await
            .expect("store");
        inbox
            .store(&[4], FlagOperation::Add, SystemFlags::DELETED, &[], None)
            .await
            .expect("store");
        assert_eq!(inbox.expunge(None).await.expect("expunge"), [4]);
        let snap = inbox.snapshot();
        assert_eq!(dovecot.fetch("INBOX"), ours(&snap), "{layout:?}");
        assert_eq!(dovecot.status("INBOX"), (snap.uid_validity, snap.uid_next));
    }
}

#[tokio::test]
async fn dovecot_reads_what_mailstead_wrote() {
    for layout in [FolderLayout::MaildirPlusPlus, FolderLayout::Fs] {
        let dovecot = Dovecot::new(layout);
        let dir = tempfile::tempdir().expect("tempdir");
        let delivery = Store::new("mx.example.com", dir.path().join("spool")).expect("store");
        let mail = MailStore::new(&delivery);
        let account = mail
            .open_account(&dovecot.maildir, layout, QuotaLimit::UNLIMITED)
            .await
            .expect("open");
        let inbox = account.open("INBOX").await.expect("inbox");
        let mut uids = Vec::new();
        for n in 1..=4 {
            let keywords = if n == 2 {
                vec!["$Work".to_owned(), "Todo".to_owned()]
            } else {
                Vec::new()
            };
            uids.push(
                inbox
                    .append(&message(n), SystemFlags::empty(), &keywords, None)
                    .await
                    .expect("append"),
            );
        }
        inbox
            .store(
                &uids[..2],
                FlagOperation::Add,
                SystemFlags::SEEN.union(SystemFlags::ANSWERED),
                &[],
                None,
            )
            .await
            .expect("store");
        inbox
            .store(
                &[uids[2]],
                FlagOperation::Replace,
                SystemFlags::DELETED.union(SystemFlags::DRAFT),
                &["Todo".to_owned()],
                None,
            )
            .await
            .expect("store");
        assert_eq!(inbox.expunge(None).await.expect("expunge"), [uids[2]]);
        // A delivery that a sync gives the next UID.
        let mut writer = delivery.begin().await.expect("begin");
        writer.write_all(&message(7)).await.expect("write");
        writer
            .finish()
            .await
            .expect("finish")
            .deliver(
                &dovecot.maildir,
                mailstead_store::QuotaLimit::UNLIMITED,
                None,
            )
            .await
            .expect("deliver");
        let snap = inbox.sync().await.expect("sync");
        assert_eq!(snap.messages.len(), 4);
        account.create("Work/Projects", None).await.expect("create");
        let sub = account.open("Work/Projects").await.expect("sub");
        sub.append(&message(8), SystemFlags::FLAGGED, &[], None)
            .await
            .expect("append");
        let sub_snap = sub.snapshot();

        assert_eq!(dovecot.fetch("INBOX"), ours(&snap), "{layout:?}");
        assert_eq!(
            dovecot.status("INBOX"),
            (snap.uid_validity, snap.uid_next),
            "{layout:?}"
        );
        assert_eq!(
            dovecot.fetch("Work/Projects"),
            ours(&sub_snap),
            "{layout:?}"
        );
        assert_eq!(
            dovecot.status("Work/Projects"),
            (sub_snap.uid_validity, sub_snap.uid_next)
        );

        // Dovecot changes a flag and expunges; our sync follows with the same UIDs.
        dovecot.run(
            &[
                "flags",
                "add",
                "\\Flagged NewOne",
                "mailbox",
                "INBOX",
                "uid",
                &uids[0].to_string(),
            ],
            None,
        );
        dovecot.run(
            &[
                "flags",
                "add",
                "\\Deleted",
                "mailbox",
                "INBOX",
                "uid",
                &uids[1].to_string(),
            ],
            None,
        );
        dovecot.run(
            &["expunge", "mailbox", "INBOX", "uid", &uids[1].to_string()],
            None,
        );
        let expected = dovecot.fetch("INBOX");
        let snap = inbox.sync().await.expect("sync");
        assert_eq!(ours(&snap), expected, "{layout:?}");
        assert!(
            inbox
                .vanished_since(snap.highest_modseq - 1)
                .contains(&uids[1])
        );
        assert!(inbox.vanished_since(0).contains(&uids[2]));
    }
}
