//! The IMAP libraries webmails are built on, against `mailstead serve` over TLS (port 993's
//! implicit TLS, the certificate verified): imapflow (Node) runs `data/imapflow_webmail.js`,
//! imapclient (Python) runs `data/imapclient_webmail.py`. Mail arrives through Mailstead's
//! SMTP port; each script drives its library through what a webmail does, prints `DELIVER`
//! when it waits (in IDLE) for a new message, and ends with a `RESULT {json}` line that these
//! tests check against the messages they sent: subjects, counts, flags, the SORT orders and
//! THREAD nesting computed here from the dates, senders and references.
//!
//! Needs `node` with `data/node_modules/imapflow` and `python3` with `imapclient`
//! (scripts/test-services.sh installs both, pinned); the tests fail, never skip, without them.

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;

use harness::{DOMAIN, Mailstead, PASSWORD};
use serde_json::{Value, json};

/// One message the tests deliver: what the SORT and THREAD answers are computed from.
struct Sent {
    message_id: &'static str,
    subject: &'static str,
    /// The header as sent (encoded words where the subject is not ASCII).
    subject_header: &'static str,
    from_name: &'static str,
    from: &'static str,
    /// RFC 5322 date; `day` is its day of May/June 2026, for sorting.
    date: &'static str,
    day: u32,
    parent: Option<&'static str>,
    references: &'static str,
    body: &'static str,
}

/// INBOX, in delivery order: a thread `budget` with two replies to the root and one reply to
/// a reply, and two messages on their own (one with a UTF-8 subject), dated so that arrival,
/// date and subject orders all differ.
const INBOX: &[Sent] = &[
    Sent {
        message_id: "<budget@client.test>",
        subject: "Budget 2027",
        subject_header: "Budget 2027",
        from_name: "Carol",
        from: "carol@client.test",
        date: "Mon, 01 Jun 2026 10:00:00 +0000",
        day: 32,
        parent: None,
        references: "",
        body: "Here is the budget for next year.",
    },
    Sent {
        message_id: "<budget-reply@client.test>",
        subject: "Re: Budget 2027",
        subject_header: "Re: Budget 2027",
        from_name: "Alice",
        from: "alice@client.test",
        date: "Tue, 02 Jun 2026 10:00:00 +0000",
        day: 33,
        parent: Some("<budget@client.test>"),
        references: "<budget@client.test>",
        body: "Looks fine to me.",
    },
    Sent {
        message_id: "<budget-reply-reply@client.test>",
        subject: "Re: Budget 2027",
        subject_header: "Re: Budget 2027",
        from_name: "Carol",
        from: "carol@client.test",
        date: "Wed, 03 Jun 2026 10:00:00 +0000",
        day: 34,
        parent: Some("<budget-reply@client.test>"),
        references: "<budget@client.test> <budget-reply@client.test>",
        body: "Thanks, Alice.",
    },
    Sent {
        message_id: "<lunch@client.test>",
        subject: "Lunch",
        subject_header: "Lunch",
        from_name: "Bob",
        from: "bob@client.test",
        date: "Sun, 31 May 2026 12:00:00 +0000",
        day: 31,
        parent: None,
        references: "",
        body: "Lunch at noon?",
    },
    Sent {
        message_id: "<budget-second-reply@client.test>",
        subject: "Re: Budget 2027",
        subject_header: "Re: Budget 2027",
        from_name: "Dave",
        from: "dave@client.test",
        date: "Thu, 04 Jun 2026 10:00:00 +0000",
        day: 35,
        parent: Some("<budget@client.test>"),
        references: "<budget@client.test>",
        body: "One question about travel.",
    },
    Sent {
        message_id: "<cologne@client.test>",
        subject: "Grüße aus Köln",
        subject_header: "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=",
        from_name: "Erika",
        from: "erika@client.test",
        date: "Sat, 30 May 2026 09:00:00 +0000",
        day: 30,
        parent: None,
        references: "",
        body: "Viele Grüße vom Rhein.",
    },
];

/// The message each script waits for in IDLE.
const LATE: Sent = Sent {
    message_id: "<late@client.test>",
    subject: "Arrived during IDLE",
    subject_header: "Arrived during IDLE",
    from_name: "Frank",
    from: "frank@client.test",
    date: "Fri, 05 Jun 2026 10:00:00 +0000",
    day: 36,
    parent: None,
    references: "",
    body: "Pushed to the client.",
};

impl Sent {
    fn text(&self) -> String {
        let mut text = format!(
            "From: {} <{}>\r\nTo: user@{DOMAIN}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: {}\r\n",
            self.from_name, self.from, self.subject_header, self.date, self.message_id
        );
        if let Some(parent) = self.parent {
            text.push_str(&format!(
                "In-Reply-To: {parent}\r\nReferences: {}\r\n",
                self.references
            ));
        }
        text.push_str(&format!(
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
            self.body
        ));
        text
    }

    /// RFC 5256's base subject for these subjects: without `Re: `.
    fn base_subject(&self) -> &str {
        self.subject.strip_prefix("Re: ").unwrap_or(self.subject)
    }
}

/// Message-IDs of INBOX ordered by `key`, ties in arrival order (RFC 5256).
fn sorted_by<K: Ord>(key: impl Fn(&Sent) -> K) -> Vec<&'static str> {
    let mut order: Vec<&Sent> = INBOX.iter().collect();
    order.sort_by_key(|sent| key(sent)); // stable: arrival order breaks ties
    order.iter().map(|sent| sent.message_id).collect()
}

/// THREAD=REFERENCES of INBOX as nested JSON arrays of Message-IDs, the way both scripts print
/// a thread: `[root, child...]` where a child with siblings is an array of its own subthread
/// and a single child continues the list. Threads in order of their root's date.
fn expected_threads() -> Value {
    fn subthread(id: &'static str) -> Vec<Value> {
        let children: Vec<&Sent> = INBOX.iter().filter(|s| s.parent == Some(id)).collect();
        let mut list = vec![json!(id)];
        match children.as_slice() {
            [] => {}
            [only] => list.extend(subthread(only.message_id)),
            several => {
                let mut several = several.to_vec();
                several.sort_by_key(|s| s.day);
                for child in several {
                    list.push(Value::Array(subthread(child.message_id)));
                }
            }
        }
        list
    }
    let mut roots: Vec<&Sent> = INBOX.iter().filter(|s| s.parent.is_none()).collect();
    roots.sort_by_key(|s| s.day);
    Value::Array(
        roots
            .iter()
            .map(|root| Value::Array(subthread(root.message_id)))
            .collect(),
    )
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Runs a client script with `config` (JSON) as its argument: delivers [`LATE`] when it
/// prints `DELIVER`, and returns its `RESULT` (failing with its output and the server log
/// otherwise). The scripts stop themselves after two minutes, so this cannot hang.
fn run_client(mut command: Command, config: &Value, mailstead: &Mailstead, user: &str) -> Value {
    let mut child = command
        .arg(config.to_string())
        .current_dir(data_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let delivery = harness::Delivery::Smtp(mailstead.smtp_port);
    let mut transcript = String::new();
    let mut result = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        transcript.push_str(&line);
        transcript.push('\n');
        if line == "DELIVER" {
            delivery.deliver(user, &LATE.text());
        } else if let Some(json) = line.strip_prefix("RESULT ") {
            result = Some(serde_json::from_str::<Value>(json).unwrap());
        }
    }
    let status = child.wait().unwrap();
    let stderr = stderr_reader.join().unwrap();
    match result {
        Some(result) if status.success() => result,
        _ => panic!(
            "client failed ({status}):\n--- stdout:\n{transcript}--- stderr:\n{stderr}\n\
             --- server log:\n{}",
            mailstead.log()
        ),
    }
}

/// A server with `user`'s INBOX holding [`INBOX`], delivered over SMTP.
fn server_with_inbox(dir: &Path, user: &str) -> Mailstead {
    let mailstead = Mailstead::start(
        dir,
        &[user.to_owned()],
        "login_on_loopback_without_tls = false\n",
        "",
    );
    let delivery = harness::Delivery::Smtp(mailstead.smtp_port);
    for sent in INBOX {
        delivery.deliver(user, &sent.text());
    }
    mailstead
}

fn client_config(mailstead: &Mailstead, user: &str) -> Value {
    json!({
        "host": "127.0.0.1",
        "port": mailstead.imaps_port,
        "ca": mailstead.cert().display().to_string(),
        "user": user,
        "password": PASSWORD,
    })
}

/// Message-IDs of a list of UIDs, through the UID → Message-ID map a script printed.
fn ids(uids: &Value, by_uid: &BTreeMap<String, String>) -> Vec<String> {
    uids.as_array()
        .unwrap_or_else(|| panic!("not a list of UIDs: {uids}"))
        .iter()
        .map(|uid| {
            by_uid
                .get(&uid.to_string())
                .unwrap_or_else(|| panic!("UID {uid} is not in INBOX: {by_uid:?}"))
                .clone()
        })
        .collect()
}

/// A nested list of UIDs with every UID replaced by its Message-ID.
fn thread_ids(threads: &Value, by_uid: &BTreeMap<String, String>) -> Value {
    match threads {
        Value::Array(items) => Value::Array(items.iter().map(|i| thread_ids(i, by_uid)).collect()),
        uid => json!(by_uid.get(&uid.to_string()).unwrap()),
    }
}

fn uid_map(result: &Value) -> BTreeMap<String, String> {
    result["inbox_message_ids"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(uid, id)| (uid.clone(), id.as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn imapflow_drives_a_webmail_session() {
    support::require("node", "Node.js 20 or later");
    let script = data_dir().join("imapflow_webmail.js");
    assert!(
        data_dir()
            .join("node_modules/imapflow/package.json")
            .exists(),
        "imapflow is missing: scripts/test-services.sh installs it in {}",
        data_dir().join("node_modules").display()
    );
    let temp = tempfile::tempdir().unwrap();
    let user = format!("flow@{DOMAIN}");
    let mailstead = server_with_inbox(&temp.path().join("mailstead"), &user);
    let mut node = Command::new("node");
    node.arg(&script);
    let result = run_client(node, &client_config(&mailstead, &user), &mailstead, &user);

    assert_eq!(result["compressed"], json!(true), "{result}");
    // imapflow keeps capability names upper-cased.
    assert_eq!(
        result["enabled"],
        json!(["CONDSTORE", "IMAP4REV2", "UTF8=ACCEPT"])
    );
    let special_use: BTreeMap<String, String> =
        serde_json::from_value(result["special_use"].clone()).unwrap();
    for (folder, flag) in [
        ("Archive", "\\Archive"),
        ("Drafts", "\\Drafts"),
        ("Junk", "\\Junk"),
        ("Sent", "\\Sent"),
        ("Trash", "\\Trash"),
        ("INBOX", "\\Inbox"),
    ] {
        assert_eq!(
            special_use.get(folder).map(String::as_str),
            Some(flag),
            "{result}"
        );
    }
    assert_eq!(result["inbox_exists"], json!(INBOX.len()));
    let by_uid = uid_map(&result);
    let all_subjects: Vec<&str> = INBOX.iter().map(|s| s.subject).collect();
    assert_eq!(result["envelope_subjects"], json!(all_subjects));
    let senders: Vec<&str> = INBOX.iter().map(|s| s.from).collect();
    assert_eq!(result["envelope_from"], json!(senders));
    // Replies carry In-Reply-To in the envelope.
    let in_reply_to: Vec<Value> = INBOX
        .iter()
        .map(|s| s.parent.map_or(Value::Null, |p| json!(p)))
        .collect();
    assert_eq!(result["envelope_in_reply_to"], json!(in_reply_to));
    assert!(
        result["body_types"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t == "text/plain"),
        "{result}"
    );
    // OBJECTID: every message its own EMAILID, one THREADID for the whole budget thread.
    let email_ids = result["email_ids"].as_array().unwrap();
    let distinct: std::collections::BTreeSet<String> = email_ids
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(distinct.len(), INBOX.len(), "{result}");
    // THREADID is NIL by design (RFC 8474 allows it: the store keeps no thread ids).
    assert_eq!(result["thread_ids"], json!(vec![Value::Null; INBOX.len()]));

    // SEARCH: UTF-8 text and a header.
    assert_eq!(
        ids(&result["search_koeln"], &by_uid),
        ["<cologne@client.test>"]
    );
    let from_carol: Vec<&str> = INBOX
        .iter()
        .filter(|s| s.from.starts_with("carol"))
        .map(|s| s.message_id)
        .collect();
    assert_eq!(ids(&result["search_from_carol"], &by_uid), from_carol);

    // CONDSTORE: a store with the current MODSEQ applies and raises it; one with the old one
    // leaves the flags as they were (imapflow reports only the command's OK, not MODIFIED).
    assert_eq!(result["store_current"], json!(true), "{result}");
    assert!(
        result["modseq_after"].as_u64().unwrap() > result["modseq_before"].as_u64().unwrap(),
        "{result}"
    );
    assert_eq!(
        result["flags_after_stores"],
        json!(["\\Flagged"]),
        "{result}"
    );

    // MOVE Lunch to Archive; APPEND a draft; IDLE sees the late delivery.
    assert_eq!(result["archive_subjects"], json!(["Lunch"]), "{result}");
    assert_eq!(result["inbox_after_move"], json!(INBOX.len() - 1));
    assert_eq!(
        result["draft"],
        json!({"subject": "Draft from the webmail", "flags": ["\\Draft", "\\Seen"]})
    );
    assert_eq!(result["idle_exists"], json!(INBOX.len()), "{result}");
    assert_eq!(result["late_subject"], json!(LATE.subject));
    assert_eq!(result["quota_storage_limit"], json!(100 * 1024 * 1024));
}

#[test]
fn imapclient_sorts_threads_and_idles() {
    support::require("python3", "python3");
    let probe = support::run(
        {
            let mut c = Command::new("python3");
            c.args(["-c", "import imapclient; print(imapclient.__version__)"]);
            c
        },
        None,
    );
    assert!(
        probe.status.success(),
        "imapclient is missing: scripts/test-services.sh installs it (pip install imapclient)\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let temp = tempfile::tempdir().unwrap();
    let user = format!("client@{DOMAIN}");
    let mailstead = server_with_inbox(&temp.path().join("mailstead"), &user);
    let mut python = Command::new("python3");
    python
        .arg("-u")
        .arg(data_dir().join("imapclient_webmail.py"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let result = run_client(python, &client_config(&mailstead, &user), &mailstead, &user);
    let by_uid = uid_map(&result);

    assert_eq!(
        ids(&result["sort_date"], &by_uid),
        sorted_by(|s| s.day),
        "{result}"
    );
    assert_eq!(
        ids(&result["sort_reverse_date"], &by_uid),
        sorted_by(|s| std::cmp::Reverse(s.day)),
        "{result}"
    );
    assert_eq!(
        ids(&result["sort_subject"], &by_uid),
        sorted_by(|s| s.base_subject().to_lowercase()),
        "{result}"
    );
    assert_eq!(
        ids(&result["sort_from"], &by_uid),
        sorted_by(|s| s.from),
        "{result}"
    );
    assert_eq!(
        thread_ids(&result["thread_references"], &by_uid),
        expected_threads(),
        "{result}"
    );
    assert_eq!(
        ids(&result["search_utf8"], &by_uid),
        ["<cologne@client.test>"]
    );

    // BODY.PEEK leaves \Seen alone; ENVELOPE's subject decodes to the one sent.
    let all_subjects: Vec<&str> = INBOX.iter().map(|s| s.subject).collect();
    assert_eq!(result["envelope_subjects"], json!(all_subjects));
    assert_eq!(
        result["header_subjects"],
        json!(
            INBOX
                .iter()
                .map(|s| format!("Subject: {}", s.subject_header))
                .collect::<Vec<_>>()
        )
    );
    assert_eq!(result["seen_after_peek"], json!(0));

    assert_eq!(result["namespace_personal"], json!([["", "/"]]), "{result}");
    assert_eq!(
        result["quota"],
        json!({"resource": "STORAGE", "limit": 100 * 1024}),
        "{result}"
    );
    assert_eq!(
        result["status_inbox"],
        json!({"MESSAGES": INBOX.len(), "UNSEEN": INBOX.len(), "UIDNEXT": INBOX.len() + 1}),
        "{result}"
    );
    assert_eq!(
        result["multiappend"],
        json!({"count": 2, "subjects": ["First of two", "Second of two"]}),
        "{result}"
    );
    assert_eq!(result["idle_exists"], json!(INBOX.len() + 1), "{result}");
    assert_eq!(result["enabled"], json!(["UTF8=ACCEPT"]), "{result}");
    assert_eq!(
        result["utf8_folder"],
        json!({"listed": true, "messages": 1}),
        "{result}"
    );
}
