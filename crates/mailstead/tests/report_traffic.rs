//! The event log, the report and the size history end to end: `mailstead serve` takes real
//! SMTP deliveries (Python's smtplib), refuses an unknown recipient and a wrong IMAP password
//! (imaplib); `mailstead report --json` then counts them, the text report has pflogsumm's
//! sections, `--mail-to` lands in a mailbox, and the size recorder has written MUM's
//! `size_measurements` rows for the mailboxes, the domain and the root.
//!
//! Needs `python3`; fails, never skips, when it is missing.

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use harness::{DOMAIN, Mailstead, PASSWORD, both};
use mailstead_directory::sizes::Measurable;
use mailstead_directory::{Directory, DirectoryOptions};
use serde_json::Value;

use support::SmtpSink;

fn python(script: &str, args: &[&str]) -> Value {
    support::python_json(script, args)
}

fn report(mailstead: &Mailstead) -> Value {
    let output = mailstead.cli(&["--json", "report", "--since", "1h"], None);
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every file under `dir` whose path has a `new` directory in it.
fn new_messages(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.parent().is_some_and(|parent| parent.ends_with("new")) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn the_report_counts_what_happened_and_sizes_are_recorded() {
    let temp = tempfile::tempdir().unwrap();
    let (ann, bob) = (format!("ann@{DOMAIN}"), format!("bob@{DOMAIN}"));
    let mailstead = Mailstead::start(
        temp.path(),
        &[ann.clone(), bob.clone()],
        "login_on_loopback_without_tls = true\n",
        "\n[stats]\nsize_interval = \"1s\"\n",
    );
    let smtp = mailstead.smtp_port.to_string();

    // Three deliveries, one with a refused second recipient, and a wrong password.
    for rcpt in [&ann, &ann, &bob] {
        let sent = python("tests/http/http_tool.py", &["smtp", &smtp, rcpt]);
        assert_eq!(sent["refused"], serde_json::json!([]), "{sent}");
    }
    let sent = python(
        "tests/report/smtp_tool.py",
        &["send", &smtp, &ann, &format!("nobody@{DOMAIN}")],
    );
    assert_eq!(
        sent["refused"][format!("nobody@{DOMAIN}")][0],
        550,
        "{sent}"
    );
    let login = python(
        "tests/http/http_tool.py",
        &[
            "imap_login",
            &mailstead.imap_port.to_string(),
            &ann,
            "not-the-password",
        ],
    );
    assert_eq!(login["accepted"], false, "{login}");
    let login = python(
        "tests/http/http_tool.py",
        &[
            "imap_login",
            &mailstead.imap_port.to_string(),
            &ann,
            PASSWORD,
        ],
    );
    assert_eq!(login["accepted"], true, "{login}");

    // The writer flushes as soon as it has nothing more to write; wait for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let counted = loop {
        let counted = report(&mailstead);
        let totals = &counted["totals"];
        if totals["received"] == 4 && totals["rejected"] == 1 && totals["auth_failures"] == 1 {
            break counted;
        }
        assert!(
            Instant::now() < deadline,
            "not counted: {counted}\n{}",
            mailstead.log()
        );
        thread::sleep(Duration::from_millis(200));
    };
    let totals = &counted["totals"];
    assert_eq!(totals["delivered"], 4, "{counted}");
    assert_eq!(totals["sent"], 0, "{counted}");
    assert_eq!(totals["bounced"], 0, "{counted}");
    assert!(totals["bytes_received"].as_u64().unwrap() > 0, "{counted}");
    assert_eq!(counted["top_senders"][0]["name"], "sender@client.test");
    assert_eq!(counted["top_senders"][0]["count"], 4);
    assert_eq!(counted["top_sender_domains"][0]["name"], "client.test");
    assert_eq!(counted["top_recipients"][0]["name"], ann.as_str());
    assert_eq!(counted["top_recipients"][0]["count"], 3);
    assert_eq!(counted["top_recipients"][1]["name"], bob.as_str());
    assert_eq!(counted["top_recipient_domains"][0]["name"], DOMAIN);
    assert_eq!(counted["top_recipient_domains"][0]["count"], 4);
    let rejection = counted["rejections"][0]["name"].as_str().unwrap();
    assert!(
        rejection.starts_with("550 5.1.1") && !rejection.contains("nobody"),
        "{counted}"
    );
    assert_eq!(counted["auth_failures"][0]["name"], ann.as_str());
    assert_eq!(counted["auth_failures"][0]["count"], 1);

    // The same as text, in pflogsumm's shape.
    let text = mailstead.cli(&["report", "--since", "1h"], None);
    let text = String::from_utf8(text.stdout).unwrap();
    for expected in [
        "Grand Totals",
        "       4   received",
        "Senders by message count",
        "Rejections by reason",
        "Failed logins by address",
        "       1   ann@example.test",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }

    // Mailed to the postmaster's mailbox through the server.
    let before = new_messages(&temp.path().join("data")).len();
    let mailed = mailstead.cli(&["report", "--mail-to", &bob], None);
    assert!(
        String::from_utf8_lossy(&mailed.stdout).contains("mailed the report"),
        "{}",
        both(&mailed)
    );
    let arrived = new_messages(&temp.path().join("data"))
        .into_iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .find(|message| message.contains("Subject: Mailstead report for mail.example.test"))
        .unwrap_or_else(|| panic!("no report among {before} messages\n{}", mailstead.log()));
    assert!(arrived.contains("Grand Totals"), "{arrived}");
    assert!(
        arrived.contains("Delivered-To: bob@example.test"),
        "{arrived}"
    );

    // A report to an address this server does not host is refused, and says so.
    let refused = support::run(
        mailstead.command(&["report", "--mail-to", "someone@elsewhere.test"]),
        None,
    );
    assert!(!refused.status.success(), "{}", both(&refused));

    // The traffic chart (loopback may read it) draws the last day's hours.
    let chart = python(
        "tests/http/http_tool.py",
        &[
            "get",
            &format!("http://127.0.0.1:{}/stats/traffic.svg", mailstead.http_port),
        ],
    );
    assert_eq!(chart["status"], 200, "{chart}");
    assert_eq!(chart["content_type"], "image/svg+xml");
    let svg = chart["body"].as_str().unwrap();
    assert_eq!(svg.matches("<polyline").count(), 4, "{svg}");
    // Summed over the hours, as a run may cross an hour's end: the four messages, the
    // mailed report, and the two refused recipients.
    let total = |series: &str| -> u64 {
        svg.split("<title>")
            .filter_map(|title| title.strip_prefix(&format!("{series}: ")))
            .filter_map(|rest| rest.split(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!((total("received"), total("rejected")), (5, 2), "{svg}");
    let week = python(
        "tests/http/http_tool.py",
        &[
            "get",
            &format!(
                "http://127.0.0.1:{}/stats/traffic.svg?period=fortnight",
                mailstead.http_port
            ),
        ],
    );
    assert_eq!(week["status"], 400, "{week}");

    // Sizes: the recorder (every second here) has measured the mail delivered above.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let url = format!("sqlite://{}/data/mailstead.db", temp.path().display());
        let directory = Directory::open(DirectoryOptions::new(url, ""))
            .await
            .unwrap();
        let ann_id = directory.get_mailbox(&ann).await.unwrap().id;
        let domain_id = directory.get_domain(DOMAIN).await.unwrap().id;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mailbox = directory
                .size_series(Measurable::Mailbox(ann_id), 0)
                .await
                .unwrap();
            let domain = directory
                .size_series(Measurable::Domain(domain_id), 0)
                .await
                .unwrap();
            let root = directory.size_series(Measurable::Root, 0).await.unwrap();
            if let (Some(mailbox), Some(domain), Some(root)) =
                (mailbox.last(), domain.last(), root.last())
                && mailbox.kib > 0
            {
                assert!(domain.kib >= mailbox.kib, "{domain:?} {mailbox:?}");
                assert!(root.kib >= domain.kib, "{root:?} {domain:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no sizes recorded: {mailbox:?}\n{}",
                mailstead.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        directory.close().await;
    });
    let chart = python(
        "tests/http/http_tool.py",
        &[
            "get",
            &format!(
                "http://127.0.0.1:{}/stats/size.svg?mailbox={ann}",
                mailstead.http_port
            ),
        ],
    );
    assert_eq!(chart["status"], 200, "{chart}");
    assert!(
        chart["body"]
            .as_str()
            .unwrap()
            .contains("Size of ann@example.test"),
        "{chart}"
    );
    let unknown = python(
        "tests/http/http_tool.py",
        &[
            "get",
            &format!(
                "http://127.0.0.1:{}/stats/size.svg?domain=elsewhere.test",
                mailstead.http_port
            ),
        ],
    );
    assert_eq!(unknown["status"], 404, "{unknown}");
}

#[test]
fn the_queues_outcomes_are_counted() {
    let temp = tempfile::tempdir().unwrap();
    let ann = format!("ann@{DOMAIN}");
    let mailstead = Mailstead::start(temp.path(), std::slice::from_ref(&ann), "", "");
    // Remote servers that take the message, refuse the recipient for good, and for now.
    let (taking, refusing, deferring) = (
        SmtpSink::start(&[]),
        SmtpSink::start(&["-f", "RCPT"]),
        SmtpSink::start(&["-r", "RCPT"]),
    );
    for (domain, sink, alias, remote) in [
        ("sent.test", &taking, "out", "carol"),
        ("bounce.test", &refusing, "bad", "dave"),
        ("defer.test", &deferring, "slow", "erin"),
    ] {
        let hop = format!("smtp:[127.0.0.1]:{}", sink.port);
        mailstead.cli(&["transport", "add", domain, &hop], None);
        let alias = format!("{alias}@{DOMAIN}");
        mailstead.cli(
            &["alias", "add", &alias, &format!("{remote}@{domain}")],
            None,
        );
        let sent = python(
            "tests/http/http_tool.py",
            &["smtp", &mailstead.smtp_port.to_string(), &alias],
        );
        assert_eq!(sent["refused"], serde_json::json!([]), "{sent}");
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    let counted = loop {
        let counted = report(&mailstead);
        let totals = &counted["totals"];
        let at_least = |key: &str| totals[key].as_u64().unwrap_or(0) >= 1;
        if at_least("sent") && at_least("bounced") && at_least("deferred") {
            break counted;
        }
        assert!(
            Instant::now() < deadline,
            "not counted: {counted}\n{}",
            mailstead.log()
        );
        thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(counted["totals"]["received"], 3, "{counted}");
    assert_eq!(counted["totals"]["sent"], 1, "{counted}");
    // dave's refusal, and perhaps the report to sender@client.test, whose domain has no DNS.
    assert!(
        counted["totals"]["bounced"].as_u64().unwrap() >= 1,
        "{counted}"
    );
    assert!(
        counted["top_recipients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|count| count["name"] == "carol@sent.test"),
        "{counted}"
    );
    let bounces = counted["bounces"].as_array().unwrap();
    assert!(
        bounces
            .iter()
            .all(|count| count["name"].as_str().unwrap().starts_with('5')),
        "{counted}"
    );
    assert!(
        bounces.iter().all(|count| {
            let name = count["name"].as_str().unwrap();
            !name.contains('<') && !name.contains("dave@bounce.test")
        }),
        "a bounce reason names its recipient: {counted}"
    );
}
