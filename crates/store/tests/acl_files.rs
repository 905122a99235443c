//! ACL files as seed 004's Dovecot keeps them (per-folder `dovecot-acl`, a global directory
//! `conf.d/%d/acls` of per-mailbox files, a global pattern file), read unchanged and
//! evaluated, and the same files given to Debian's Dovecot 2.3 (`doveadm acl rights`): every
//! user's rights on every folder must be the same.
//!
//! Dovecot sees the folders through a private namespace (the user owns them) and a `Public/`
//! namespace with `LAYOUT=fs` (nobody owns them), as seed 004 configures it; the user's
//! groups are its `acl_groups`.
//!
//! Needs `doveadm` (Debian's `dovecot-core`) and root, to hand the Maildirs to an
//! unprivileged uid: Dovecot refuses mail access as root. Missing either fails the test.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use mailstead_store::acl::{Acls, GlobalAcl, Requester, Rights};

const DOVEADM: &str = "/usr/bin/doveadm";
/// Dovecot's `nobody`: any uid but 0 does.
const MAIL_UID: u32 = 65534;
const DOMAIN: &str = "example.test";

/// Dovecot's names for the rights, with our letters.
const NAMES: [(&str, &str); 11] = [
    ("lookup", "l"),
    ("read", "r"),
    ("write", "w"),
    ("write-seen", "s"),
    ("write-deleted", "t"),
    ("insert", "i"),
    ("post", "p"),
    ("expunge", "e"),
    ("create", "k"),
    ("delete", "x"),
    ("admin", "a"),
];

/// Private folders (Maildir++ under `home/Maildir`) and their `dovecot-acl`.
const PRIVATE: [(&str, Option<&str>); 5] = [
    ("INBOX", None),
    ("Work", Some("owner lr\nanyone lrw\n")),
    ("Neg", Some("-owner w\nanyone l\n")),
    (
        "Team",
        Some("group=staff lrs\nuser=bob@example.test lr\nuser=carol@example.test lrwi\n"),
    ),
    ("Globally", None),
];

/// Public folders (`LAYOUT=fs` under `pub/`) and their `dovecot-acl`.
const PUBLIC: [(&str, Option<&str>); 6] = [
    (
        "Sales",
        Some(
            "# seed 004 style\nanyone l\nauthenticated lr\ngroup=staff lrwsi\n\
             user=bob@example.test lrwstipe\n-user=carol@example.test w\n\
             group-override=admins lrwstipekxa\n",
        ),
    ),
    ("News", Some("-anyone r\nauthenticated lr\n")),
    ("Empty", None),
    ("Board", None),
    ("Mixed", Some("user=bob@example.test lrwi\n-anyone w\n")),
    (
        "Groups",
        Some("group=staff l\ngroup=admins r\n-group=staff i\ngroup=PublicMailboxAdmins lrwi\n"),
    ),
];

/// The global directory `acls/%d/`: files named by the mailbox as Dovecot names it.
const GLOBAL_DIR: [(&str, &str); 3] = [
    (
        "Public/Board",
        "authenticated lr\ngroup=PublicMailboxAdmins lrwstipekxa\n",
    ),
    ("Public/Mixed", "anyone lr\n"),
    ("Globally", "anyone lr\n"),
];

/// The global pattern file (Dovecot 2.2.11+).
const GLOBAL_FILE: &str = "# mailbox identifier rights\nPublic/* authenticated l\n\
    \"Public/Sales\" group=staff lrt\nWork owner lrwstipekxa\nPublic/N?ws -authenticated l\n";

const USERS: [(&str, &[&str]); 5] = [
    ("bob@example.test", &[]),
    ("carol@example.test", &["staff"]),
    ("dave@example.test", &["staff", "admins"]),
    ("erin@example.test", &["PublicMailboxAdmins"]),
    (
        "frank@example.test",
        &["admins", "PublicMailboxAdmins", "staff"],
    ),
];

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().to_path_buf();
        let maildir = root.join("home/Maildir");
        for (name, acl) in PRIVATE {
            let folder = if name == "INBOX" {
                maildir.clone()
            } else {
                maildir.join(format!(".{name}"))
            };
            make_maildir(&folder);
            if name != "INBOX" {
                fs::write(folder.join("maildirfolder"), "").unwrap();
            }
            if let Some(acl) = acl {
                fs::write(folder.join("dovecot-acl"), acl).unwrap();
            }
        }
        make_maildir(&root.join("pub"));
        for (name, acl) in PUBLIC {
            let folder = root.join("pub").join(name);
            make_maildir(&folder);
            if let Some(acl) = acl {
                fs::write(folder.join("dovecot-acl"), acl).unwrap();
            }
        }
        for (name, acl) in GLOBAL_DIR {
            let path = root.join("acls").join(DOMAIN).join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, acl).unwrap();
        }
        fs::write(root.join("global-acl"), GLOBAL_FILE).unwrap();
        fs::create_dir_all(root.join("home/public")).unwrap();
        chown_recursive(&root.join("home"));
        chown_recursive(&root.join("pub"));
        Fixture { _dir: dir, root }
    }

    /// Every folder as (Dovecot's name, its directory, whether the user owns it).
    fn folders(&self) -> Vec<(String, PathBuf, bool)> {
        let mut folders = Vec::new();
        for (name, _) in PRIVATE {
            let dir = if name == "INBOX" {
                self.root.join("home/Maildir")
            } else {
                self.root.join("home/Maildir").join(format!(".{name}"))
            };
            folders.push((name.to_owned(), dir, true));
        }
        for (name, _) in PUBLIC {
            folders.push((
                format!("Public/{name}"),
                self.root.join("pub").join(name),
                false,
            ));
        }
        folders
    }

    fn dovecot_rights(
        &self,
        acl_setting: &str,
        user: &str,
        groups: &[&str],
        mailbox: &str,
    ) -> String {
        assert!(
            Path::new(DOVEADM).exists(),
            "{DOVEADM} is missing: install Debian's dovecot-core"
        );
        let root = self.root.display();
        let config = self
            .root
            .join(format!("dovecot-{}.conf", user.replace('@', "_")));
        fs::write(
            &config,
            format!(
                "ssl = no\nlog_path = /dev/stderr\nmail_uid = {MAIL_UID}\nmail_gid = {MAIL_UID}\n\
                 first_valid_uid = 1\nmail_plugins = acl\n\
                 namespace inbox {{\n  inbox = yes\n  separator = /\n  prefix =\n}}\n\
                 namespace public {{\n  type = public\n  separator = /\n  prefix = Public/\n  \
                 location = maildir:{root}/pub:LAYOUT=fs:INDEX={root}/home/public\n  \
                 subscriptions = no\n}}\n\
                 plugin {{\n  acl = {acl_setting}\n  acl_groups = {}\n}}\n",
                groups.join(",")
            ),
        )
        .unwrap();
        let output = Command::new(DOVEADM)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("USER", user)
            .env("HOME", self.root.join("home"))
            .env("MAIL", format!("maildir:{root}/home/Maildir"))
            .arg("-c")
            .arg(&config)
            .args(["-f", "json", "acl", "rights", mailbox])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && !stderr.contains("Error"),
            "doveadm acl rights {mailbox} failed ({}):\n{stderr}",
            output.status
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let names = json[0]["rights"].as_str().unwrap_or_default().to_owned();
        let mut letters = String::new();
        for (name, letter) in NAMES {
            if names.split(' ').any(|n| n == name) {
                letters.push_str(letter);
            }
        }
        letters
    }
}

fn make_maildir(dir: &Path) {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
}

fn chown_recursive(path: &Path) {
    std::os::unix::fs::chown(path, Some(MAIL_UID), Some(MAIL_UID)).unwrap();
    if path.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_recursive(&entry.unwrap().path());
        }
    }
}

/// Our rights, in Dovecot's letter order.
fn our_rights(
    acls: &Acls,
    dir: &Path,
    mailbox: &str,
    user: &str,
    groups: &[&str],
    owner: bool,
) -> String {
    let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    let who = Requester {
        user,
        groups: &groups,
        is_owner: owner,
    };
    acls.rights(dir, mailbox, DOMAIN, &who).unwrap().to_string()
}

fn compare(fixture: &Fixture, acls: &Acls, dovecot_setting: &str) -> usize {
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (user, groups) in USERS {
        for (mailbox, dir, owner) in fixture.folders() {
            let ours = our_rights(acls, &dir, &mailbox, user, groups, owner);
            let theirs = fixture.dovecot_rights(dovecot_setting, user, groups, &mailbox);
            compared += 1;
            if ours != theirs {
                mismatches.push(format!(
                    "{user} {groups:?} {mailbox}: ours {ours:?}, Dovecot {theirs:?}"
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "rights differ from Dovecot's:\n{}",
        mismatches.join("\n")
    );
    compared
}

#[test]
fn global_directory_rights_are_dovecots() {
    let fixture = Fixture::new();
    let template = format!("{}/acls/%d", fixture.root.display());
    let acls = Acls::new(GlobalAcl::from_setting(&format!(
        "vfile:{template}:cache_secs=300"
    )));
    let compared = compare(&fixture, &acls, &format!("vfile:{template}:cache_secs=300"));
    assert_eq!(compared, USERS.len() * (PRIVATE.len() + PUBLIC.len()));

    // A few answers spelled out, so that a Dovecot that changed cannot hide a change here.
    let dirs = fixture.folders();
    let dir_of = |name: &str| dirs.iter().find(|(n, _, _)| n == name).unwrap().1.clone();
    let sales = dir_of("Public/Sales");
    assert_eq!(
        our_rights(
            &acls,
            &sales,
            "Public/Sales",
            "bob@example.test",
            &[],
            false
        ),
        "lrwstipe"
    );
    assert_eq!(
        our_rights(
            &acls,
            &sales,
            "Public/Sales",
            "carol@example.test",
            &["staff"],
            false
        ),
        "lrsi"
    );
    assert_eq!(
        our_rights(
            &acls,
            &sales,
            "Public/Sales",
            "dave@example.test",
            &["staff", "admins"],
            false
        ),
        Rights::ALL.to_string()
    );
    let board = dir_of("Public/Board");
    assert_eq!(
        our_rights(
            &acls,
            &board,
            "Public/Board",
            "erin@example.test",
            &["PublicMailboxAdmins"],
            false
        ),
        Rights::ALL.to_string()
    );
    assert_eq!(
        our_rights(
            &acls,
            &board,
            "Public/Board",
            "bob@example.test",
            &[],
            false
        ),
        "lr"
    );
    let empty = dir_of("Public/Empty");
    assert_eq!(
        our_rights(
            &acls,
            &empty,
            "Public/Empty",
            "bob@example.test",
            &[],
            false
        ),
        ""
    );
    let inbox = dir_of("INBOX");
    assert_eq!(
        our_rights(&acls, &inbox, "INBOX", "bob@example.test", &[], true),
        Rights::ALL.to_string()
    );
}

#[test]
fn global_file_rights_are_dovecots() {
    let fixture = Fixture::new();
    let path = fixture.root.join("global-acl");
    let setting = format!("vfile:{}", path.display());
    let acls = Acls::new(GlobalAcl::from_setting(&setting));
    assert_eq!(
        GlobalAcl::from_setting(&setting),
        Some(GlobalAcl::File(path))
    );
    compare(&fixture, &acls, &setting);
}

#[test]
fn folder_files_alone_are_dovecots() {
    let fixture = Fixture::new();
    let acls = Acls::new(GlobalAcl::from_setting("vfile"));
    compare(&fixture, &acls, "vfile");
}
