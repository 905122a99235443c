//! mbsync (isync) keeps a local Maildir in step with a Mailstead account over IMAPS, trusting
//! only the server's self-signed certificate: mail delivered through SMTP comes down, flags,
//! deletions, new messages and a new folder made locally go up (checked through imaplib), a
//! flag set on the server comes down, and a further `mbsync -a` changes nothing: its counters
//! are all zero and no local file or server message changed.
//!
//! Needs `mbsync` (Debian's isync), `script` (bsdutils: mbsync prints its counters only to a
//! terminal) and `python3`; it fails, never skips, when one is missing.
//! `MAILSTEAD_IMAP_TEST_TARGET=dovecot` runs it against Dovecot instead (to check the test).

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use harness::{DOMAIN, PASSWORD, Target, both, python, require, scripts_dir};
use serde_json::{Value, json};

struct Account<'a> {
    target: &'a Target,
    user: String,
}

impl Account<'_> {
    fn tool(&self, mode: &str, actions: Option<Value>) -> Value {
        let mut args = vec![
            mode.to_owned(),
            "--imaps-port".to_owned(),
            self.target.imaps_port().to_string(),
            "--cafile".to_owned(),
            self.target.cert().display().to_string(),
            "--user".to_owned(),
            self.user.clone(),
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
            "imap_tool {mode} failed:\n{}\n--- server log:\n{}",
            both(&output),
            self.target.log()
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn state(&self) -> Value {
        self.tool("state", None)
    }

    /// Message-ID -> (uid, flags) of a server mailbox.
    fn mailbox(&self, state: &Value, name: &str) -> BTreeMap<String, (u64, Vec<String>)> {
        let box_ = &state["mailboxes"][name];
        assert!(box_.is_object(), "server has no mailbox {name}: {state:#}");
        box_["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["message_id"].as_str().unwrap_or("").to_owned(),
                    (
                        m["uid"].as_u64().unwrap(),
                        m["flags"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|f| f.as_str().unwrap().to_owned())
                            .collect(),
                    ),
                )
            })
            .collect()
    }
}

fn message(id: &str, subject: &str) -> String {
    format!(
        "From: sender@client.test\r\nTo: user1@{DOMAIN}\r\nSubject: {subject}\r\n\
         Date: Thu, 05 Mar 2026 09:00:00 +0000\r\nMessage-ID: <{id}@client.test>\r\n\r\n\
         Body of {subject}.\r\n"
    )
}

/// Message-ID -> (file path, Maildir flag letters) of a local Maildir folder.
fn local_folder(dir: &Path) -> BTreeMap<String, (PathBuf, String)> {
    let mut found = BTreeMap::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let text = fs::read_to_string(&path).unwrap();
            let id = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Message-ID: ")
                        .or_else(|| l.strip_prefix("Message-Id: "))
                })
                .unwrap_or("")
                .trim()
                .to_owned();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let flags = name
                .split_once(":2,")
                .map(|(_, f)| f.to_owned())
                .unwrap_or_default();
            assert!(
                found.insert(id.clone(), (path, flags)).is_none(),
                "{id} twice in {}",
                dir.display()
            );
        }
    }
    found
}

/// Every file below `dir` but mbsync's own state files, with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(".mbsyncstate")
            {
                files.insert(
                    path.strip_prefix(dir).unwrap().to_owned(),
                    fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

/// Runs `mbsync -a` under `script` (so it prints its counters); returns the last counter line,
/// like `C: 1/1  B: 8/8  F: +0/0 *0/0 #0/0  N: +0/0 *0/0 #0/0`.
fn mbsync(rc: &Path, target: &Target, what: &str) -> String {
    let output = Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!("mbsync -c {} -a", rc.display()))
        .arg("/dev/null")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).replace('\r', "\n");
    assert!(
        output.status.success() && !text.contains("Error"),
        "{what}: mbsync failed:\n{}\n--- server log:\n{}",
        both(&output),
        target.log()
    );
    let counters = text
        .lines()
        .rfind(|l| l.starts_with("C: "))
        .unwrap_or_else(|| panic!("{what}: no counters in mbsync output:\n{text}"))
        .trim()
        .to_owned();
    println!("{what}: {counters}");
    counters
}

fn flags(list: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    out.sort();
    out
}

#[test]
fn mbsync_syncs_both_ways_and_then_changes_nothing() {
    require("mbsync", "Debian's isync");
    require("script", "Debian's bsdutils");
    let temp = tempfile::tempdir().unwrap();
    let user = format!("user1@{DOMAIN}");
    let target = Target::start(&temp.path().join("server"), std::slice::from_ref(&user), "");
    let account = Account {
        target: &target,
        user: user.clone(),
    };

    // Three messages arrive over SMTP.
    for (id, subject) in [("m1", "one"), ("m2", "two"), ("m3", "three")] {
        target.delivery().deliver(&user, &message(id, subject));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let state = loop {
        let state = account.state();
        if account.mailbox(&state, "INBOX").len() == 3 {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "3 messages not in INBOX: {state:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let inbox = account.mailbox(&state, "INBOX");

    // First sync: server -> local.
    let local = temp.path().join("local");
    fs::create_dir_all(&local).unwrap();
    let rc = temp.path().join("mbsyncrc");
    let template = fs::read_to_string(scripts_dir().join("mbsyncrc.template")).unwrap();
    fs::write(
        &rc,
        template
            .replace("{imaps_port}", &target.imaps_port().to_string())
            .replace("{user}", &user)
            .replace("{password}", PASSWORD)
            .replace("{cert}", &target.cert().display().to_string())
            .replace("{local}", &local.display().to_string()),
    )
    .unwrap();
    let counters = mbsync(&rc, &target, "first mbsync");
    assert!(
        counters.contains("N: +3/3"),
        "first sync should bring 3 messages down: {counters}"
    );
    let local_inbox = local_folder(&local.join("INBOX"));
    let ids: Vec<&String> = local_inbox.keys().collect();
    assert_eq!(
        ids,
        ["<m1@client.test>", "<m2@client.test>", "<m3@client.test>"],
        "local INBOX after the first sync"
    );
    for folder in ["Drafts", "Sent", "Trash", "Junk", "Archive"] {
        assert!(
            local.join(folder).join("cur").is_dir(),
            "{folder} was not created locally: {:?}",
            fs::read_dir(&local).unwrap().collect::<Vec<_>>()
        );
    }
    // What came down is what was delivered (the server may have prepended trace headers).
    for (id, (path, _)) in &local_inbox {
        let n = &id[2..3];
        let subject = ["one", "two", "three"][n.parse::<usize>().unwrap() - 1];
        // mbsync stores LF line ends and adds its X-TUID header.
        let body: String = fs::read_to_string(path)
            .unwrap()
            .split_inclusive('\n')
            .filter(|line| !line.starts_with("X-TUID: "))
            .collect();
        assert!(
            body.ends_with(&message(&id[1..3], subject).replace("\r\n", "\n")),
            "{id} changed on the way: {body:?}"
        );
    }

    // Changes on both sides.
    let m3_uid = inbox["<m3@client.test>"].0;
    account.tool(
        "apply",
        Some(json!([{"op": "store", "mailbox": "INBOX", "uid": m3_uid,
                      "change": "+FLAGS", "flags": "(\\Answered)"}])),
    );
    target
        .delivery()
        .deliver(&user, &message("m4", "four, after the first sync"));
    let (m1_path, m1_flags) = &local_inbox["<m1@client.test>"];
    let base = m1_path.to_str().unwrap().split_once(":2,").unwrap().0;
    let mut letters: Vec<char> = format!("{m1_flags}F").chars().collect();
    letters.sort_unstable();
    let flagged: String = letters.into_iter().collect();
    let cur = local.join("INBOX/cur");
    let file_name = Path::new(base).file_name().unwrap().to_str().unwrap();
    fs::rename(m1_path, cur.join(format!("{file_name}:2,{flagged}"))).unwrap();
    fs::remove_file(&local_inbox["<m2@client.test>"].0).unwrap();
    fs::write(
        local.join("INBOX/new/1772700000.local1.client"),
        message("local-new", "written locally").replace("\r\n", "\n"),
    )
    .unwrap();
    // A new nested folder, and its parent as a folder of its own (whether a server makes a
    // parent created implicitly selectable or \Noselect is its choice; either way there
    // would be one more box to sync next time).
    let projects = local.join("Projects/2026");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(projects.join(sub)).unwrap();
        fs::create_dir_all(local.join("Projects").join(sub)).unwrap();
    }
    fs::write(
        local.join("Projects/cur/1772700002.local3.client:2,"),
        message("local-parent", "in the new parent folder").replace("\r\n", "\n"),
    )
    .unwrap();
    fs::write(
        projects.join("cur/1772700001.local2.client:2,S"),
        message("local-folder", "in a new local folder").replace("\r\n", "\n"),
    )
    .unwrap();

    let counters = mbsync(&rc, &target, "second mbsync");
    // Up: 3 new messages, 2 flag changes (\Flagged, and \Deleted for the removed file);
    // down: 1 new message, 1 flag change (\Answered).
    assert!(
        counters.contains("F: +3/3 *2/2") && counters.contains("N: +1/1 *1/1"),
        "second sync counters: {counters}"
    );
    let state = account.state();
    let inbox = account.mailbox(&state, "INBOX");
    let ids: Vec<&String> = inbox.keys().collect();
    assert_eq!(
        ids,
        [
            "<local-new@client.test>",
            "<m1@client.test>",
            "<m3@client.test>",
            "<m4@client.test>"
        ],
        "server INBOX after pushing the local changes ({counters}): {state:#}"
    );
    assert_eq!(
        inbox["<m1@client.test>"].1,
        flags(&["\\Flagged"]),
        "the local flag did not reach the server"
    );
    assert_eq!(inbox["<m3@client.test>"].1, flags(&["\\Answered"]));
    assert_eq!(inbox["<local-new@client.test>"].1, Vec::<String>::new());
    let folder = account.mailbox(&state, "Projects/2026");
    assert_eq!(
        folder.keys().collect::<Vec<_>>(),
        ["<local-folder@client.test>"],
        "the new local folder was not created with its message: {state:#}"
    );
    assert_eq!(folder["<local-folder@client.test>"].1, flags(&["\\Seen"]));
    let parent = account.mailbox(&state, "Projects");
    assert_eq!(
        parent.keys().collect::<Vec<_>>(),
        ["<local-parent@client.test>"],
        "the new local parent folder: {state:#}"
    );
    let local_inbox = local_folder(&local.join("INBOX"));
    assert_eq!(
        local_inbox.keys().collect::<Vec<_>>(),
        ids,
        "local INBOX after the second sync"
    );
    assert_eq!(
        local_inbox["<m3@client.test>"].1, "R",
        "the server's \\Answered did not come down"
    );
    assert_eq!(local_inbox["<m1@client.test>"].1, "F");

    // Third sync: nothing to do, nothing touched.
    let before_local = snapshot(&local);
    let counters = mbsync(&rc, &target, "third mbsync");
    let quiet = regex_free_zero_counters(&counters);
    assert!(quiet, "a sync with nothing to do did something: {counters}");
    let after_local = snapshot(&local);
    assert_eq!(
        before_local.keys().collect::<Vec<_>>(),
        after_local.keys().collect::<Vec<_>>(),
        "the third sync changed local file names"
    );
    assert!(
        before_local == after_local,
        "the third sync changed local files"
    );
    let after_state = account.state();
    assert_eq!(
        state, after_state,
        "the third sync changed the server's messages, UIDs, flags or UIDNEXT"
    );
}

/// True when every F:/N: counter of an mbsync counter line is `+0/0`, `*0/0`, `#0/0`, `-0/0`.
fn regex_free_zero_counters(line: &str) -> bool {
    let mut sides = 0;
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if word == "F:" || word == "N:" {
            sides += 1;
            while let Some(next) = words.peek() {
                if next.ends_with(':') {
                    break;
                }
                let counter = words.next().unwrap();
                if !counter.chars().skip(1).all(|c| c == '0' || c == '/') {
                    return false;
                }
            }
        }
    }
    sides == 2
}
