//! Sieve from the user's side, end to end: a filter uploaded and activated with `sieve-connect`
//! (ManageSieve over STARTTLS) rules the next SMTP delivery; the user edits it and the delivery
//! after that obeys the new version; its vacation rule answers a remote sender once through the
//! queue (which hands the reply, from `<>`, to Postfix's smtp-sink over a transport) and not
//! again in the same period. The folders are read over IMAPS with Python's imaplib.
//!
//! Needs root, `sieve-connect`, `smtp-sink` and `python3`; it fails, never skips, when one is
//! missing.

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use harness::{Mailstead, PASSWORD, sieve_connect_ok};
use serde_json::Value;
use support::SmtpSink;

const OWNER: &str = "owner@example.test";
const SENDER: &str = "colleague@partner.test";
const TOOL: &str = "tests/sieve/mail_tool.py";

fn send(mailstead: &Mailstead, subject: &str) {
    let sent = support::python_json(
        TOOL,
        &[
            "send",
            &mailstead.smtp_port.to_string(),
            SENDER,
            OWNER,
            subject,
        ],
    );
    assert_eq!(sent["refused"], serde_json::json!({}), "{sent}");
}

fn folders(mailstead: &Mailstead) -> Value {
    support::python_json(
        TOOL,
        &[
            "folders",
            &mailstead.imaps_port.to_string(),
            OWNER,
            PASSWORD,
        ],
    )
}

fn subjects(folders: &Value, folder: &str) -> Vec<String> {
    folders[folder]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .map(|message| message["subject"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Uploads `script` as the user's script `name` and makes it the active one.
fn put_active(mailstead: &Mailstead, dir: &std::path::Path, name: &str, script: &str) {
    let local = dir.join(format!("{name}.sieve"));
    fs::write(&local, script).unwrap();
    let local = local.to_str().unwrap();
    sieve_connect_ok(
        mailstead,
        OWNER,
        &["--upload", "--localsieve", local, "--remotesieve", name],
    );
    sieve_connect_ok(mailstead, OWNER, &["--activate", "--remotesieve", name]);
}

/// Waits until the outbound queue holds nothing: every vacation reply has been delivered.
fn wait_for_empty_queue(mailstead: &Mailstead) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = mailstead.cli(&["--json", "queue", "list"], None);
        let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
        if listed.as_array().is_some_and(Vec::is_empty) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the queue still holds {listed}\nserver log:\n{}",
            mailstead.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

const FIRST: &str = "require [\"fileinto\", \"mailbox\", \"vacation\", \"imap4flags\"];\r\n\
vacation :days 1 :subject \"Away this week\" \"I am away until Monday.\";\r\n\
if header :contains \"subject\" \"report\" {\r\n  fileinto :create :flags \"\\\\Flagged\" \"Reports\";\r\n}\r\n";

const EDITED: &str = "require [\"fileinto\", \"mailbox\", \"vacation\", \"imap4flags\"];\r\n\
vacation :days 1 :subject \"Away this week\" \"I am away until Monday.\";\r\n\
if mailboxexists \"Reports\" { addflag \"$HasReports\"; }\r\n\
if mailboxexists \"Nowhere\" { addflag \"$HasNowhere\"; }\r\n\
if header :contains \"subject\" \"report\" {\r\n  fileinto :create \"Archive/Reports\";\r\n}\r\n";

#[test]
fn a_filter_edited_over_managesieve_rules_the_next_delivery_and_vacation_answers_once() {
    let temp = tempfile::tempdir().unwrap();
    let client = temp.path().join("client");
    fs::create_dir_all(&client).unwrap();
    let sink = SmtpSink::start(&[]);
    let mut mailstead = Mailstead::start(&temp.path().join("server"), &[OWNER.to_owned()], "", "");
    mailstead.stop();
    let next_hop = format!("smtp:[127.0.0.1]:{}", sink.port);
    let added = mailstead.cli(&["transport", "add", "partner.test", &next_hop], None);
    assert!(added.status.success(), "{}", harness::both(&added));
    mailstead.serve();

    put_active(&mailstead, &client, "filters", FIRST);
    send(&mailstead, "Weekly report");
    wait_for_empty_queue(&mailstead);
    let owner = folders(&mailstead);
    assert_eq!(subjects(&owner, "Reports"), ["Weekly report"], "{owner}");
    assert_eq!(
        owner["Reports"][0]["flags"],
        serde_json::json!(["\\Flagged"]),
        "{owner}"
    );
    assert!(subjects(&owner, "INBOX").is_empty(), "{owner}");
    let dump = sink.wait_for("Subject: Away this week", 1, || mailstead.log());
    assert!(dump.contains("Auto-Submitted: auto-replied"), "{dump}");
    // From the null sender, so a bounce of it can never loop back.
    assert!(dump.contains("X-Mail-Args: <>\n"), "{dump}");
    assert!(dump.contains(&format!("X-Rcpt-Args: <{SENDER}>")), "{dump}");

    // The user edits the filter: the next delivery files where the new version says.
    put_active(&mailstead, &client, "filters", EDITED);
    send(&mailstead, "Monthly report");
    wait_for_empty_queue(&mailstead);
    let owner = folders(&mailstead);
    assert_eq!(subjects(&owner, "Reports"), ["Weekly report"], "{owner}");
    assert_eq!(
        subjects(&owner, "Archive/Reports"),
        ["Monthly report"],
        "{owner}"
    );
    // `mailboxexists` sees the folder the first version created, and no other.
    assert_eq!(
        owner["Archive/Reports"][0]["flags"],
        serde_json::json!(["$HasReports"]),
        "{owner}"
    );
    // Same sender, same vacation, same period: no second reply (the queue is empty, so a
    // second one would be in the sink by now).
    let dump = sink.dump();
    assert_eq!(dump.matches("Subject: Away this week").count(), 1, "{dump}");
}
