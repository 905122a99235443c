//! A Maildir moves from Debian's Dovecot to Mailstead and back, and IMAP clients notice
//! nothing: the hierarchy separator and the folder names as listed, UIDVALIDITY, UIDNEXT and
//! every message's UID, flags, keywords, size and INTERNALDATE stay as they were.
//!
//! 1. Dovecot (run as root, mail as uid 65534, `maildir:~/Maildir`: Maildir++, Dovecot's
//!    default) gets messages through APPEND (with flags, keywords and dates) and LMTP, a
//!    subscribed sub-folder, and an expunge; the whole account (subscriptions too) is read
//!    through IMAP.
//! 2. Dovecot stops; a Mailstead mailbox whose maildir template points at the same Maildir
//!    must show exactly the same account.
//! 3. Mailstead changes it (APPEND, flags, a new keyword, an expunge, SMTP delivery, a new
//!    folder), stops, and Dovecot started again on the Maildir must show Mailstead's account.
//!
//! Needs root, `dovecot` and `doveadm` (Debian's dovecot-imapd, dovecot-lmtpd) and
//! `python3`; it fails, never skips, when one is missing.

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use harness::{
    DOMAIN, Delivery, Dovecot, MAIL_ACCOUNT, MAIL_UID, Mailstead, Target, chown_recursive,
    imap_tool,
};
use serde_json::{Value, json};

fn message(id: &str, subject: &str) -> String {
    format!(
        "From: \"Migrating User\" <someone@client.test>\nTo: user1@{DOMAIN}\n\
         Subject: {subject}\nDate: Sat, 07 Mar 2026 10:00:00 +0000\n\
         Message-ID: <{id}@client.test>\n\n{subject}: body text\nsecond line\n"
    )
}

fn append(mailbox: &str, id: &str, flags: &str, date: Option<&str>) -> Value {
    json!({"op": "append", "mailbox": mailbox, "flags": flags, "date": date,
           "message": message(id, &format!("message {id}"))})
}

/// The messages of `mailbox` in `state`, as Message-ID -> UID.
fn uid_of(state: &Value, mailbox: &str, id: &str) -> u64 {
    state["mailboxes"][mailbox]["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no mailbox {mailbox} in {state:#}"))
        .iter()
        .find(|m| m["message_id"] == format!("<{id}@client.test>"))
        .unwrap_or_else(|| panic!("no {id} in {mailbox}: {state:#}"))["uid"]
        .as_u64()
        .unwrap()
}

fn uids(state: &Value, mailbox: &str) -> Vec<u64> {
    state["mailboxes"][mailbox]["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no mailbox {mailbox} in {state:#}"))
        .iter()
        .map(|m| m["uid"].as_u64().unwrap())
        .collect()
}

/// Every difference between two `imap_tool state` results: the same hierarchy separator,
/// every name `before` listed listed by `after` too (a client that keys its cache on full
/// names would otherwise sync those folders again), each selectable mailbox of `before` in
/// `after` with the same UIDVALIDITY, UIDNEXT and messages; a mailbox only in `after` must be
/// empty.
fn differences(before_name: &str, before: &Value, after_name: &str, after: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if before["delimiter"] != after["delimiter"] {
        out.push(format!(
            "hierarchy separator: {} in {before_name}, {} in {after_name}",
            before["delimiter"], after["delimiter"]
        ));
    }
    let listed = |state: &Value| -> Vec<String> {
        state["listed"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    for name in listed(before) {
        if !listed(after).contains(&name) {
            out.push(format!(
                "{name:?} listed by {before_name}, not by {after_name} (which lists {:?})",
                listed(after)
            ));
        }
    }
    // INBOX aside: a server may keep it subscribed always (Mailstead does, Dovecot not).
    let subscribed = |state: &Value| -> Vec<String> {
        state["subscribed"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|name| *name != "INBOX")
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    if subscribed(before) != subscribed(after) {
        out.push(format!(
            "subscriptions: {:?} in {before_name}, {:?} in {after_name}",
            subscribed(before),
            subscribed(after)
        ));
    }
    let empty = serde_json::Map::new();
    let old = before["mailboxes"].as_object().unwrap_or(&empty);
    let new = after["mailboxes"].as_object().unwrap_or(&empty);
    for (name, a) in old {
        let Some(b) = new.get(name) else {
            out.push(format!(
                "{name}: listed by {before_name}, missing in {after_name}"
            ));
            continue;
        };
        for key in ["uidvalidity", "uidnext"] {
            if a[key] != b[key] {
                out.push(format!(
                    "{name}: {key} {} in {before_name}, {} in {after_name}",
                    a[key], b[key]
                ));
            }
        }
        let list = |v: &Value| v["messages"].as_array().cloned().unwrap_or_default();
        let (ma, mb) = (list(a), list(b));
        for m in &ma {
            match mb.iter().find(|x| x["uid"] == m["uid"]) {
                None => out.push(format!(
                    "{name}: UID {} ({}) in {before_name} is missing in {after_name}",
                    m["uid"], m["message_id"]
                )),
                Some(x) => {
                    for key in ["message_id", "flags", "size", "internaldate"] {
                        if m[key] != x[key] {
                            out.push(format!(
                                "{name}: UID {} {key}: {} in {before_name}, {} in {after_name}",
                                m["uid"], m[key], x[key]
                            ));
                        }
                    }
                }
            }
        }
        for x in &mb {
            if !ma.iter().any(|m| m["uid"] == x["uid"]) {
                out.push(format!(
                    "{name}: UID {} ({}) appears in {after_name} only",
                    x["uid"], x["message_id"]
                ));
            }
        }
    }
    for (name, b) in new {
        if !old.contains_key(name) && b["exists"] != 0 {
            out.push(format!(
                "{name}: {} messages in {after_name}, mailbox not in {before_name}",
                b["exists"]
            ));
        }
    }
    out
}

fn assert_same(before_name: &str, before: &Value, after_name: &str, after: &Value) {
    let diffs = differences(before_name, before, after_name, after);
    assert!(
        diffs.is_empty(),
        "{after_name} does not show the account as {before_name} left it:\n  {}\n\
         --- {before_name}:\n{before:#}\n--- {after_name}:\n{after:#}",
        diffs.join("\n  ")
    );
}

#[test]
fn maildir_moves_from_dovecot_to_mailstead_and_back() {
    let temp = tempfile::tempdir().unwrap();
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let user = format!("user1@{DOMAIN}");
    let homes = temp.path().join("vmail");

    // 1. Dovecot fills the Maildir.
    let mut dovecot = Dovecot::start(
        &temp.path().join("dovecot1"),
        std::slice::from_ref(&user),
        "maildir:~/Maildir",
        &homes,
    );
    let dovecot_tool = |dovecot: &Dovecot, mode: &str, actions: Option<&Value>| {
        imap_tool(
            dovecot.imaps_port,
            &dovecot.cert,
            &user,
            mode,
            actions,
            || dovecot.log(),
        )
    };
    dovecot_tool(
        &dovecot,
        "apply",
        Some(&json!([
            append("INBOX", "d1", "(\\Seen)", Some("01-Jan-2025 10:00:00 +0000")),
            append("INBOX", "d2", "(\\Flagged \\Answered)", Some("02-Jan-2025 11:30:00 +0100")),
            append("INBOX", "d3", "()", None),
            append("INBOX", "d4", "($Forwarded Custom_Kw)", None),
            append("INBOX", "d5", "(\\Seen \\Draft)", None),
            {"op": "create", "mailbox": "Lists/rust"},
            {"op": "subscribe", "mailbox": "Lists/rust"},
            append("Lists/rust", "r1", "(\\Seen)", None),
            append("Lists/rust", "r2", "(Other_Kw)", None),
            append("Archive", "a1", "(\\Seen $Label1)", Some("15-Jun-2024 08:00:00 +0000")),
        ])),
    );
    Delivery::Lmtp(dovecot.lmtp_port).deliver(
        &user,
        &message("d6", "delivered by Dovecot LMTP").replace('\n', "\r\n"),
    );
    let state = dovecot_tool(&dovecot, "state", None);
    let d3 = uid_of(&state, "INBOX", "d3");
    dovecot_tool(
        &dovecot,
        "apply",
        Some(&json!([{"op": "expunge", "mailbox": "INBOX", "uid": d3}])),
    );
    let by_dovecot = dovecot_tool(&dovecot, "state", None);
    assert_eq!(
        uids(&by_dovecot, "INBOX"),
        [1, 2, 4, 5, 6],
        "Dovecot's INBOX: {by_dovecot:#}"
    );
    assert_eq!(by_dovecot["mailboxes"]["INBOX"]["uidnext"], 7);
    assert_eq!(
        (
            &by_dovecot["delimiter"],
            by_dovecot["listed"]
                .as_array()
                .map(|names| names.contains(&json!("Lists.rust")))
        ),
        (&json!("."), Some(true)),
        "Dovecot's default separator for Maildir++ is '.': {by_dovecot:#}"
    );
    dovecot.stop();
    let maildir = homes.join(DOMAIN).join("user1").join("Maildir");
    assert!(
        maildir.join("dovecot-uidlist").is_file() && maildir.join(".Lists.rust").is_dir(),
        "not the Maildir++ layout expected at {}",
        maildir.display()
    );

    // 2. Mailstead serves the same Maildir (Dovecot again with
    // MAILSTEAD_IMAP_TEST_TARGET=dovecot, to check the test itself).
    let mut mailstead = match std::env::var("MAILSTEAD_IMAP_TEST_TARGET").as_deref() {
        Ok("dovecot") => Target::Dovecot(Dovecot::start(
            &temp.path().join("dovecot-as-mailstead"),
            std::slice::from_ref(&user),
            "maildir:~/Maildir",
            &homes,
        )),
        _ => Target::Mailstead(Mailstead::start_as(
            &temp.path().join("mailstead"),
            std::slice::from_ref(&user),
            MAIL_ACCOUNT,
            "login_on_loopback_without_tls = true\n",
            &format!(
                "\n[directory]\nhomedir_template = \"{homes}/%d/%n\"\n\
                 maildir_template = \"maildir:{homes}/%d/%n/Maildir\"\n",
                homes = homes.display()
            ),
        )),
    };
    let mailstead_tool = |mailstead: &Target, mode: &str, actions: Option<&Value>| {
        imap_tool(
            mailstead.imaps_port(),
            &mailstead.cert(),
            &user,
            mode,
            actions,
            || mailstead.log(),
        )
    };
    let found = mailstead_tool(&mailstead, "state", None);
    assert_same("Dovecot", &by_dovecot, "Mailstead", &found);

    // 3. Mailstead changes the account.
    let d1 = uid_of(&found, "INBOX", "d1");
    let d2 = uid_of(&found, "INBOX", "d2");
    let d4 = uid_of(&found, "INBOX", "d4");
    let r1 = uid_of(&found, "Lists/rust", "r1");
    let results = mailstead_tool(
        &mailstead,
        "apply",
        Some(&json!([
            append("INBOX", "m1", "(\\Seen)", Some("03-Mar-2026 12:00:00 +0000")),
            {"op": "store", "mailbox": "INBOX", "uid": d2, "change": "-FLAGS", "flags": "(\\Flagged)"},
            {"op": "store", "mailbox": "INBOX", "uid": d4, "change": "+FLAGS", "flags": "(\\Seen New_Kw)"},
            {"op": "store", "mailbox": "INBOX", "uid": d1, "change": "+FLAGS", "flags": "($Forwarded)"},
            {"op": "expunge", "mailbox": "Lists/rust", "uid": r1},
            {"op": "create", "mailbox": "Later"},
            {"op": "subscribe", "mailbox": "Later"},
            append("Later", "l1", "(\\Flagged)", None),
        ])),
    );
    assert_eq!(
        results[0]["uid"], 7,
        "Mailstead's first APPEND must take Dovecot's UIDNEXT: {results:#}"
    );
    assert_eq!(
        results[0]["uidvalidity"],
        by_dovecot["mailboxes"]["INBOX"]["uidvalidity"]
    );
    mailstead.delivery().deliver(
        &user,
        &message("m2", "delivered by Mailstead SMTP").replace('\n', "\r\n"),
    );
    let by_mailstead = mailstead_tool(&mailstead, "state", None);
    assert_eq!(
        uids(&by_mailstead, "INBOX"),
        [1, 2, 4, 5, 6, 7, 8],
        "Mailstead's INBOX: {by_mailstead:#}"
    );
    assert_eq!(uids(&by_mailstead, "Lists/rust"), [2]);
    mailstead.stop();

    // 4. Dovecot again, on what Mailstead left.
    chown_recursive(&homes, MAIL_UID);
    let dovecot = Dovecot::start(
        &temp.path().join("dovecot2"),
        std::slice::from_ref(&user),
        "maildir:~/Maildir",
        &homes,
    );
    let back = dovecot_tool(&dovecot, "state", None);
    assert_same("Mailstead", &by_mailstead, "Dovecot (again)", &back);
    drop(dovecot);
}

/// Messages that an MDA (Dovecot's LMTP, maildrop, procmail) left in `new/` get UIDs in the
/// order they arrived, which their names give: `SECONDS.M<microseconds>P<pid>...`, compared as
/// numbers, as Dovecot does (`M99999` is earlier than `M100000`, though not as text).
#[test]
fn uids_follow_the_arrival_order_of_maildir_names() {
    let temp = tempfile::tempdir().unwrap();
    let user = format!("user1@{DOMAIN}");
    let target = Target::start_as(temp.path(), std::slice::from_ref(&user), MAIL_ACCOUNT, "");
    let maildir = target.maildir("user1");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    // (file name, Message-ID) in arrival order.
    let arrivals = [
        ("1772700000.M999999P7Q1.mx.client.test", "first"),
        ("1772700001.M5P7Q2.mx.client.test", "second"),
        ("1772700001.M99999P7Q3.mx.client.test", "third"),
        ("1772700001.M100000P7Q4.mx.client.test", "fourth"),
    ];
    // Written in another order, so that neither creation order nor inode order helps.
    for (name, id) in arrivals.iter().rev() {
        fs::write(
            maildir.join("new").join(name),
            message(id, &format!("arrived {id}")).replace('\n', "\r\n"),
        )
        .unwrap();
    }
    chown_recursive(maildir.parent().unwrap(), MAIL_UID);
    let state = imap_tool(
        target.imaps_port(),
        &target.cert(),
        &user,
        "state",
        None,
        || target.log(),
    );
    let seen: Vec<String> = state["mailboxes"]["INBOX"]["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no INBOX: {state:#}"))
        .iter()
        .map(|m| m["message_id"].as_str().unwrap_or("").to_owned())
        .collect();
    let expected: Vec<String> = arrivals
        .iter()
        .map(|(_, id)| format!("<{id}@client.test>"))
        .collect();
    assert_eq!(
        seen, expected,
        "messages in UID order are not in arrival order: {state:#}"
    );
}
