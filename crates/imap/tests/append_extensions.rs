//! MULTIAPPEND (RFC 3502), REPLACE (RFC 8508), SAVEDATE (RFC 8514), OBJECTID (RFC 8474) and
//! PREVIEW (RFC 8970) over real sockets, Maildirs and a SQLite directory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a failure is the test failing.

mod support;
use support::*;

use std::sync::Arc;

use mailstead_imap::{Connections, ImapContext, Limits, Security};
use mailstead_store::{MailStore, Store};
use tokio::net::TcpStream;

/// Sends a command whose literals are all LITERAL+ (`{n+}`), so no continuation is waited
/// for; returns the untagged lines and the tagged completion.
async fn run_bytes(
    client: &mut Client<TcpStream>,
    tag: &str,
    bytes: &[u8],
) -> (Vec<String>, String) {
    client.send(bytes).await;
    client.until_tagged(tag).await
}

/// `(\Seen) {n+}\r\n<message>` pieces for an APPEND line.
fn plus_literal(message: &[u8]) -> Vec<u8> {
    let mut out = format!("{{{}+}}\r\n", message.len()).into_bytes();
    out.extend_from_slice(message);
    out
}

/// A message of about `size` bytes (CRLF lines).
fn sized_message(subject: &str, size: usize) -> String {
    let line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuv\r\n";
    let body = line.repeat(size / line.len() + 1);
    message(subject, &body)
}

fn appenduid(done: &str) -> (u32, String) {
    let inner = done
        .split("[APPENDUID ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("no APPENDUID in {done}"));
    let (validity, uids) = inner.split_once(' ').unwrap();
    (validity.parse().unwrap(), uids.to_owned())
}

fn objectid(line: &str, name: &str) -> String {
    line.split(&format!("{name} ("))
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        .to_owned()
}

async fn count_messages(client: &mut Client<TcpStream>, mailbox: &str) -> usize {
    let (lines, done) = client.run(&format!("STATUS {mailbox} (MESSAGES)")).await;
    assert!(done.starts_with("OK"), "{done}");
    let line = lines.iter().find(|l| l.starts_with("* STATUS")).unwrap();
    line.rsplit("MESSAGES ")
        .next()
        .and_then(|n| n.trim_end_matches(')').parse().ok())
        .unwrap()
}

#[tokio::test]
async fn the_extensions_are_advertised_after_login() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let (lines, done) = client.run("CAPABILITY").await;
    assert!(done.starts_with("OK"));
    let caps = &lines[0];
    for cap in [
        "MULTIAPPEND",
        "CATENATE",
        "URL-PARTIAL",
        "REPLACE",
        "SAVEDATE",
        "OBJECTID",
        "PREVIEW",
    ] {
        assert!(caps.split(' ').any(|c| c == cap), "{cap} missing: {caps}");
    }
}

#[tokio::test]
async fn multiappend_stores_every_message_with_its_own_flags_rfc3502_example() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    client.run("CREATE saved-messages").await;
    // RFC 3502 6's example, with synchronizing literals: a continuation for each.
    let first = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.example.COM>\r\nSubject: afternoon meeting\r\nTo: mooch@owatagu.example.net\r\nMessage-Id: <B27397-0100000@Blurdybloop.example.COM>\r\nMIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
    let second = "Date: Mon, 7 Feb 1994 22:43:04 -0800 (PST)\r\nFrom: Joe Mooch <mooch@OWaTaGu.example.net>\r\nSubject: Re: afternoon meeting\r\nTo: foobar@blurdybloop.example.com\r\nMessage-Id: <a0434793874930@OWaTaGu.example.net>\r\nMIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n3:30 is fine with me.\r\n";
    client
        .send(
            format!(
                "A003 APPEND saved-messages (\\Seen) {{{}}}\r\n",
                first.len()
            )
            .as_bytes(),
        )
        .await;
    assert!(client.line().await.starts_with('+'));
    client
        .send(format!("{first} (\\Seen) {{{}}}\r\n", second.len()).as_bytes())
        .await;
    assert!(client.line().await.starts_with('+'));
    client.send(format!("{second}\r\n").as_bytes()).await;
    let (_, done) = client.until_tagged("A003").await;
    assert!(done.starts_with("OK [APPENDUID"), "{done}");
    let (_, uids) = appenduid(&done);
    assert_eq!(uids, "1:2");
    client.run("SELECT saved-messages").await;
    let (lines, _) = client
        .run("FETCH 1:2 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .await;
    assert!(lines[0].contains("\\Seen") && lines[0].contains("afternoon meeting"));
    assert!(lines[1].contains("\\Seen") && lines[1].contains("Re: afternoon meeting"));
}

#[tokio::test]
async fn multiappend_that_fails_on_the_second_message_leaves_nothing() {
    let server = start(true).await;
    // The account with a 2,000 byte quota: each message fits, both do not.
    let mut client = server.logged_in("small").await;
    let one = sized_message("one", 1200);
    let two = sized_message("two", 1200);
    let mut command = b"a1 APPEND INBOX ".to_vec();
    command.extend(plus_literal(one.as_bytes()));
    command.extend(b" ");
    command.extend(plus_literal(two.as_bytes()));
    command.extend(b"\r\n");
    let (_, done) = run_bytes(&mut client, "a1", &command).await;
    assert!(done.starts_with("NO [OVERQUOTA]"), "{done}");
    assert_eq!(count_messages(&mut client, "INBOX").await, 0);

    // A zero-byte second message.
    let mut client = server.logged_in("alice").await;
    let mut command = b"a2 APPEND INBOX ".to_vec();
    command.extend(plus_literal(one.as_bytes()));
    command.extend(b" (\\Flagged) {0+}\r\n\r\n");
    let (_, done) = run_bytes(&mut client, "a2", &command).await;
    assert!(done.starts_with("NO"), "{done}");
    // A bad flag on the second.
    let mut command = b"a3 APPEND INBOX ".to_vec();
    command.extend(plus_literal(one.as_bytes()));
    command.extend(b" (\\Bogus) ");
    command.extend(plus_literal(two.as_bytes()));
    command.extend(b"\r\n");
    let (_, done) = run_bytes(&mut client, "a3", &command).await;
    assert!(done.starts_with("BAD"), "{done}");
    assert_eq!(count_messages(&mut client, "INBOX").await, 0);
    let maildir = server.maildir("alice").await;
    assert!(files_in(&maildir.join("cur")).is_empty());
    assert!(files_in(&maildir.join("new")).is_empty());
}

#[tokio::test]
async fn multiappend_streams_large_messages_and_the_ones_after_them() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    // Small inline, then one over the streaming threshold (64 KiB), then small again: the
    // third is announced on the line after the streamed literal.
    let small = message("small", "first");
    let large = sized_message("large", 80_000);
    let last = message("last", "third");
    let mut command = b"a1 APPEND INBOX ".to_vec();
    command.extend(plus_literal(small.as_bytes()));
    command.extend(b" (\\Seen) ");
    command.extend(plus_literal(large.as_bytes()));
    command.extend(b" (\\Flagged) ");
    command.extend(plus_literal(last.as_bytes()));
    command.extend(b"\r\n");
    let (_, done) = run_bytes(&mut client, "a1", &command).await;
    assert!(done.starts_with("OK [APPENDUID"), "{done}");
    assert_eq!(appenduid(&done).1, "1:3");
    client.run("SELECT INBOX").await;
    let (lines, _) = client.run("FETCH 1:3 (FLAGS RFC822.SIZE)").await;
    assert!(
        lines[0].contains(&format!("RFC822.SIZE {}", small.len())),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("\\Seen") && lines[1].contains(&format!("RFC822.SIZE {}", large.len()))
    );
    assert!(
        lines[2].contains("\\Flagged") && lines[2].contains(&format!("RFC822.SIZE {}", last.len()))
    );
    assert!(server.spool_files().is_empty(), "spool files left behind");

    // The same with synchronizing literals: the large one and the one after it each get
    // their continuation.
    client
        .send(format!("a2 APPEND INBOX {{{}}}\r\n", large.len()).as_bytes())
        .await;
    assert!(client.line().await.starts_with('+'));
    client
        .send(format!("{large} {{{}}}\r\n", last.len()).as_bytes())
        .await;
    assert!(client.line().await.starts_with('+'));
    client.send(format!("{last}\r\n").as_bytes()).await;
    let (_, done) = client.until_tagged("a2").await;
    assert!(done.starts_with("OK [APPENDUID"), "{done}");
    assert_eq!(appenduid(&done).1, "4:5");
}

#[tokio::test]
async fn a_refused_message_after_a_streamed_one_stores_nothing_and_the_session_goes_on() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let large = sized_message("large", 80_000);
    // Over the 100,000 byte APPENDLIMIT of the test server, sent anyway (LITERAL+).
    let too_large = sized_message("too large", 150_000);
    let mut command = b"a1 APPEND INBOX ".to_vec();
    command.extend(plus_literal(large.as_bytes()));
    command.extend(b" ");
    command.extend(plus_literal(too_large.as_bytes()));
    command.extend(b" ");
    command.extend(plus_literal(b"Subject: x\r\n\r\nx\r\n"));
    command.extend(b"\r\n");
    let (_, done) = run_bytes(&mut client, "a1", &command).await;
    assert!(done.starts_with("NO [TOOBIG]"), "{done}");
    let (_, done) = client.run("NOOP").await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(count_messages(&mut client, "INBOX").await, 0);
    assert!(server.spool_files().is_empty());

    // Synchronizing: the too large one is never asked for.
    client
        .send(format!("a2 APPEND INBOX {{{}}}\r\n", large.len()).as_bytes())
        .await;
    assert!(client.line().await.starts_with('+'));
    client
        .send(format!("{large} {{{}}}\r\n", too_large.len()).as_bytes())
        .await;
    let (_, done) = client.until_tagged("a2").await;
    assert!(done.starts_with("NO [TOOBIG]"), "{done}");
    let (_, done) = client.run("NOOP").await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(count_messages(&mut client, "INBOX").await, 0);
}

#[tokio::test]
async fn replace_appends_the_new_message_and_expunges_the_old_one() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    client.run("CREATE Drafts").await;
    for subject in ["draft one", "keep"] {
        let draft = message(subject, "first version");
        let command = format!("APPEND Drafts (\\Draft) {{{}+}}\r\n{draft}", draft.len());
        let (_, done) = client.run(&command).await;
        assert!(done.starts_with("OK"), "{done}");
    }
    client.run("SELECT Drafts").await;
    // RFC 8508 3's example, in the selected folder: sequence number 1.
    let new = message("draft one", "second version");
    let (lines, done) = client
        .run(&format!(
            "REPLACE 1 Drafts (\\Draft) {{{}+}}\r\n{new}",
            new.len()
        ))
        .await;
    assert!(done.starts_with("OK"), "{done}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("* OK [APPENDUID") && l.contains(" 3]")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l == "* 1 EXPUNGE"), "{lines:?}");
    let (lines, _) = client.run("UID FETCH 1:* (FLAGS BODY.PEEK[TEXT])").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("UID 2"), "{lines:?}");
    assert!(lines[1].contains("UID 3") && lines[1].contains("second version"));
    assert!(lines[1].contains("\\Draft"));

    // UID REPLACE into another folder; the old one leaves this one.
    let sent = message("keep", "sent");
    let (_, done) = client
        .run(&format!(
            "UID REPLACE 2 INBOX {{{}+}}\r\n{sent}",
            sent.len()
        ))
        .await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(count_messages(&mut client, "Drafts").await, 1);
    assert_eq!(count_messages(&mut client, "INBOX").await, 1);

    // A UID that is not there, and a folder that is not there: nothing changes.
    let (_, done) = client
        .run(&format!(
            "UID REPLACE 99 Drafts {{{}+}}\r\n{sent}",
            sent.len()
        ))
        .await;
    assert!(done.starts_with("NO"), "{done}");
    let (_, done) = client
        .run(&format!(
            "UID REPLACE 3 Nowhere {{{}+}}\r\n{sent}",
            sent.len()
        ))
        .await;
    assert!(done.starts_with("NO [TRYCREATE]"), "{done}");
    assert_eq!(count_messages(&mut client, "Drafts").await, 1);
    // Read-only.
    client.run("EXAMINE Drafts").await;
    let (_, done) = client
        .run(&format!(
            "UID REPLACE 3 Drafts {{{}+}}\r\n{sent}",
            sent.len()
        ))
        .await;
    assert!(done.starts_with("NO"), "{done}");
    assert_eq!(count_messages(&mut client, "Drafts").await, 1);
}

#[tokio::test]
async fn replace_streams_a_large_message() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    server.deliver("alice", &message("old", "old")).await;
    client.run("SELECT INBOX").await;
    let large = sized_message("large", 80_000);
    let mut command = b"a1 UID REPLACE 1 INBOX ".to_vec();
    command.extend(plus_literal(large.as_bytes()));
    command.extend(b"\r\n");
    let (lines, done) = run_bytes(&mut client, "a1", &command).await;
    assert!(done.starts_with("OK"), "{done}");
    assert!(lines.iter().any(|l| l.contains("APPENDUID")), "{lines:?}");
    let (lines, _) = client.run("UID FETCH 1:* (RFC822.SIZE)").await;
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains(&format!("RFC822.SIZE {}", large.len())),
        "{lines:?}"
    );
}

/// A second server over the same directory and Maildirs with nothing in memory: what a
/// restart gives.
async fn restarted(server: &Server) -> u16 {
    let store = Store::new("imap.test", server.dir.path().join("spool2")).unwrap();
    let ctx = ImapContext::new(
        server.directory.clone(),
        MailStore::new(&store),
        "imap.test".into(),
        None,
        Limits::default(),
        true,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(mailstead_imap::serve(
        listener,
        Arc::new(ctx),
        Security::StartTls,
        Connections::new(100),
        std::future::pending::<()>(),
    ));
    port
}

#[tokio::test]
async fn mailboxid_is_given_by_create_and_survives_rename_and_restart() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let (_, done) = client.run("CREATE Projects").await;
    assert!(done.starts_with("OK [MAILBOXID ("), "{done}");
    let created = objectid(&done, "MAILBOXID");
    assert!(created.len() > 16 && created.bytes().all(|b| b.is_ascii_alphanumeric()));
    let (lines, _) = client.run("SELECT Projects").await;
    let line = lines.iter().find(|l| l.contains("MAILBOXID")).unwrap();
    assert_eq!(objectid(line, "MAILBOXID"), created);
    let (lines, _) = client.run("STATUS Projects (MAILBOXID MESSAGES)").await;
    assert_eq!(objectid(&lines[0], "MAILBOXID"), created);
    let (lines, _) = client.run("STATUS INBOX (MAILBOXID)").await;
    let inbox = objectid(&lines[0], "MAILBOXID");
    assert_ne!(inbox, created);

    client.run("UNSELECT").await;
    let (_, done) = client.run("RENAME Projects Finished").await;
    assert!(done.starts_with("OK"), "{done}");
    let (lines, _) = client.run("STATUS Finished (MAILBOXID)").await;
    assert_eq!(objectid(&lines[0], "MAILBOXID"), created);

    let port = restarted(&server).await;
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut again = Client::new(stream);
    again.line().await;
    let (_, done) = again.run("LOGIN alice@example.com secret").await;
    assert!(done.starts_with("OK"), "{done}");
    let (lines, _) = again.run("STATUS Finished (MAILBOXID)").await;
    assert_eq!(objectid(&lines[0], "MAILBOXID"), created);
    let (lines, _) = again.run("EXAMINE INBOX").await;
    let line = lines.iter().find(|l| l.contains("MAILBOXID")).unwrap();
    assert_eq!(objectid(line, "MAILBOXID"), inbox);
}

#[tokio::test]
async fn emailid_stays_through_flag_changes_and_restarts_and_threadid_is_nil() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "x")).await;
    server.deliver("alice", &message("two", "y")).await;
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    let (lines, _) = client.run("FETCH 1:2 (EMAILID THREADID)").await;
    let first = objectid(&lines[0], "EMAILID");
    let second = objectid(&lines[1], "EMAILID");
    assert_ne!(first, second);
    assert!(first.starts_with('M') && first.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(lines[0].contains("THREADID NIL"), "{}", lines[0]);

    client.run("STORE 1 +FLAGS (\\Seen \\Flagged $Work)").await;
    let (lines, _) = client.run("FETCH 1 (EMAILID)").await;
    assert_eq!(objectid(&lines[0], "EMAILID"), first);
    let (lines, _) = client.run(&format!("UID SEARCH EMAILID {second}")).await;
    assert_eq!(lines[0], "* SEARCH 2");
    let (lines, _) = client.run("SEARCH EMAILID Mffffffffffffffff").await;
    assert_eq!(lines[0], "* SEARCH");
    let (lines, _) = client.run("SEARCH THREADID T1").await;
    assert_eq!(lines[0], "* SEARCH");

    // A copy is a new message: its own EMAILID.
    client.run("CREATE Other").await;
    client.run("COPY 1 Other").await;
    let (lines, _) = client.run("STATUS Other (MESSAGES)").await;
    assert!(lines[0].contains("MESSAGES 1"));

    let port = restarted(&server).await;
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut again = Client::new(stream);
    again.line().await;
    again.run("LOGIN alice@example.com secret").await;
    again.run("SELECT INBOX").await;
    let (lines, _) = again.run("FETCH 1:2 (EMAILID)").await;
    assert_eq!(objectid(&lines[0], "EMAILID"), first);
    assert_eq!(objectid(&lines[1], "EMAILID"), second);
    again.run("SELECT Other").await;
    let (lines, _) = again.run("FETCH 1 (EMAILID)").await;
    assert_ne!(objectid(&lines[0], "EMAILID"), first);
}

#[tokio::test]
async fn savedate_is_when_the_message_was_saved_not_its_internal_date() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let old = message("old", "from 2001");
    let (_, done) = client
        .run(&format!(
            "APPEND INBOX \"09-Sep-2001 01:46:40 +0000\" {{{}+}}\r\n{old}",
            old.len()
        ))
        .await;
    assert!(done.starts_with("OK"), "{done}");
    client.run("SELECT INBOX").await;
    let (lines, _) = client.run("FETCH 1 (INTERNALDATE SAVEDATE)").await;
    assert!(
        lines[0].contains("INTERNALDATE \"09-Sep-2001 01:46:40 +0000\""),
        "{}",
        lines[0]
    );
    let today = time::OffsetDateTime::now_utc().date();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day = format!(
        "{:02}-{}-{}",
        today.day(),
        months[usize::from(u8::from(today.month())) - 1],
        today.year()
    );
    assert!(
        lines[0].contains(&format!("SAVEDATE \"{day}")),
        "{} {day}",
        lines[0]
    );
    for (criteria, found) in [
        (format!("SAVEDON {day}"), "* SEARCH 1"),
        (format!("SAVEDSINCE {day}"), "* SEARCH 1"),
        (format!("SAVEDBEFORE {day}"), "* SEARCH"),
        ("SAVEDBEFORE 1-Jan-2002".to_owned(), "* SEARCH"),
        ("BEFORE 1-Jan-2002".to_owned(), "* SEARCH 1"),
        ("SAVEDATESUPPORTED".to_owned(), "* SEARCH 1"),
    ] {
        let (lines, done) = client.run(&format!("SEARCH {criteria}")).await;
        assert!(done.starts_with("OK"), "{criteria}: {done}");
        assert_eq!(lines[0], found, "{criteria}");
    }
}

#[tokio::test]
async fn preview_of_a_quoted_printable_html_message() {
    let server = start(true).await;
    let html = "From: a@example.org\r\nSubject: news\r\nMIME-Version: 1.0\r\n\
        Content-Type: text/html; charset=iso-8859-1\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\r\n\
        <html><head><style>p {color: red}</style></head><body>\r\n\
        <p>Gr=FC=DFe   aus <b>K=F6ln</b>,</p>\r\n<p>bis   bald &amp; tsch=FC=\r\ns!</p>\r\n\
        </body></html>\r\n";
    server.deliver("alice", html).await;
    server
        .deliver("alice", &message("plain", &"lorem ipsum ".repeat(50)))
        .await;
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    let (lines, done) = client.run("FETCH 1 (PREVIEW)").await;
    assert!(done.starts_with("OK"), "{done}");
    assert!(
        lines[0].contains("PREVIEW {") || lines[0].contains("PREVIEW \""),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("Grüße aus Köln, bis bald & tschüs!"),
        "{}",
        lines[0]
    );
    assert!(!lines[0].contains('<') && !lines[0].contains("color"));
    // LAZY is answered the same way; the second time from the folder's cache.
    let (lines, done) = client.run("FETCH 1:2 (PREVIEW (LAZY))").await;
    assert!(done.starts_with("OK"), "{done}");
    assert!(lines[0].contains("Grüße aus Köln"), "{}", lines[0]);
    let preview = lines[1].split("PREVIEW \"").nth(1).unwrap();
    let preview = preview.split('"').next().unwrap();
    assert!(preview.starts_with("lorem ipsum lorem"));
    assert!(preview.chars().count() <= 200, "{}", preview.len());
    let (_, done) = client.run("FETCH 1 (PREVIEW (EAGER))").await;
    assert!(done.starts_with("BAD"), "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_uses_the_extensions() {
    let server = start(true).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/append_imaplib.py");
    let port = server.port.to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args([script, &port, "alice@example.com", "secret"])
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.ends_with("done\n"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn one_multiappend_carries_at_most_ten_times_appendlimit() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    // Eleven messages of 95,000 bytes: each under the test server's 100,000 byte limit,
    // together over 1,000,000.
    let each = sized_message("part", 94_000);
    assert!(each.len() < 100_000);
    let mut command = b"a1 APPEND INBOX".to_vec();
    for _ in 0..11 {
        command.extend(b" ");
        command.extend(plus_literal(each.as_bytes()));
    }
    command.extend(b"\r\n");
    let (_, done) = run_bytes(&mut client, "a1", &command).await;
    assert!(done.starts_with("NO [LIMIT]"), "{done}");
    let (_, done) = client.run("NOOP").await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(count_messages(&mut client, "INBOX").await, 0);
    assert!(server.spool_files().is_empty());
    // Ten of them are taken.
    let mut command = b"a2 APPEND INBOX".to_vec();
    for _ in 0..10 {
        command.extend(b" ");
        command.extend(plus_literal(each.as_bytes()));
    }
    command.extend(b"\r\n");
    let (_, done) = run_bytes(&mut client, "a2", &command).await;
    assert!(done.starts_with("OK [APPENDUID"), "{done}");
    assert_eq!(count_messages(&mut client, "INBOX").await, 10);
}

async fn uid_validity(client: &mut Client<TcpStream>, mailbox: &str) -> u32 {
    let (lines, _) = client.run(&format!("STATUS {mailbox} (UIDVALIDITY)")).await;
    lines[0]
        .rsplit("UIDVALIDITY ")
        .next()
        .and_then(|n| n.trim_end_matches(')').parse().ok())
        .unwrap()
}

#[tokio::test]
async fn catenate_builds_a_message_from_text_and_parts_of_another_rfc4469() {
    let server = start(true).await;
    let original = "From: Bob <bob@example.org>\r\nSubject: with attachment\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=xyz\r\n\r\n\
        --xyz\r\nContent-Type: text/plain\r\n\r\nThe original text.\r\n\
        --xyz\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        AAECAwQFBgcICQ==\r\n--xyz--\r\n";
    server.deliver("alice", original).await;
    let mut client = server.logged_in("alice").await;
    let validity = uid_validity(&mut client, "INBOX").await;
    let url = format!("/INBOX;UIDVALIDITY={validity}/;UID=1");
    // RFC 4469 5's shape: a new header and text, then the original's attachment part.
    let head = "From: Alice <alice@example.com>\r\nSubject: Fwd: with attachment\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=abc\r\n\r\n\
        --abc\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n\r\n--abc\r\n";
    let tail = "\r\n--abc--\r\n";
    let command = format!(
        "APPEND Drafts (\\Draft) CATENATE (TEXT {{{}+}}\r\n{head} URL \"{url}/;SECTION=2.MIME\" URL \"{url}/;SECTION=2\" TEXT {{{}+}}\r\n{tail})",
        head.len(),
        tail.len()
    );
    let (_, done) = client.run(&command).await;
    assert!(done.starts_with("OK [APPENDUID"), "{done}");
    client.run("SELECT Drafts").await;
    let (lines, _) = client.run("FETCH 1 (BODY.PEEK[] BINARY.PEEK[2])").await;
    let expected = format!(
        "{head}Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ=={tail}"
    );
    assert!(lines[0].contains(&expected), "{}", lines[0]);
    assert!(lines[0].contains("BINARY[2] ~{10}"), "{}", lines[0]);

    // URL-PARTIAL: a range of the whole message; the whole message without a section.
    let command = format!(
        "APPEND Drafts CATENATE (URL \"{url}/;PARTIAL=0.29\" TEXT {{2+}}\r\n\r\n URL \"{url}/;SECTION=1\")"
    );
    let (_, done) = client.run(&command).await;
    assert!(done.starts_with("OK"), "{done}");
    let (lines, _) = client.run("FETCH 2 (BODY.PEEK[])").await;
    assert!(
        lines[0].contains("{49}\r\nFrom: Bob <bob@example.org>\r\n\r\nThe original text.)"),
        "{}",
        lines[0]
    );
    let (_, done) = client
        .run(&format!("APPEND Drafts CATENATE (URL \"{url}\")"))
        .await;
    assert!(done.starts_with("OK"), "{done}");
    let (lines, _) = client.run("FETCH 3 (RFC822.SIZE)").await;
    assert!(
        lines[0].contains(&format!("RFC822.SIZE {}", original.len())),
        "{}",
        lines[0]
    );
}

#[tokio::test]
async fn catenate_refuses_bad_urls_and_too_big_messages() {
    let server = start(true).await;
    server.deliver("alice", &sized_message("big", 60_000)).await;
    let mut client = server.logged_in("alice").await;
    let validity = uid_validity(&mut client, "INBOX").await;
    for url in [
        format!("/INBOX;UIDVALIDITY={}/;UID=1", validity + 1),
        "/INBOX/;UID=9".to_owned(),
        "/Nowhere/;UID=1".to_owned(),
        "/INBOX/;UID=1/;SECTION=7".to_owned(),
        "imap://bob@example.com/INBOX/;UID=1".to_owned(),
        "/INBOX/;UID=1/;URLAUTH=anonymous:internal:0".to_owned(),
    ] {
        let (_, done) = client
            .run(&format!(
                "APPEND INBOX CATENATE (TEXT {{3+}}\r\nab\n URL \"{url}\")"
            ))
            .await;
        assert!(done.starts_with("NO [BADURL "), "{url}: {done}");
    }
    // Two copies of a 60 KB message are over the test server's 100,000 byte APPENDLIMIT.
    let (_, done) = client
        .run("APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" URL \"/INBOX/;UID=1\")")
        .await;
    assert!(done.starts_with("NO [TOOBIG]"), "{done}");
    let (_, done) = client.run("APPEND INBOX CATENATE (TEXT {0+}\r\n)").await;
    assert!(done.starts_with("NO"), "{done}");
    let (_, done) = client.run("APPEND INBOX CATENATE ()").await;
    assert!(done.starts_with("BAD"), "{done}");
    assert_eq!(count_messages(&mut client, "INBOX").await, 1);
    // Another user's folders are not reachable: bob's INBOX is empty, alice's URL names
    // her own.
    let mut bob = server.logged_in("bob").await;
    let (_, done) = bob
        .run("APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\")")
        .await;
    assert!(done.starts_with("NO [BADURL"), "{done}");
}

/// A CATENATE TEXT part over 64 KiB is streamed into the spool as a large APPEND literal is
/// (it was refused BAD before): with URLs and more TEXT around it, further streamed TEXT
/// parts on the lines after it, synchronizing or not, and a MULTIAPPEND message after it.
#[tokio::test]
async fn catenate_streams_text_parts_over_64_kib() {
    let server = start(true).await;
    let original = message("original", "The original text.");
    server.deliver("alice", &original).await;
    let mut client = server.logged_in("alice").await;
    let url = "/INBOX/;UID=1";
    let large = sized_message("large", 70_000);
    let between = "\r\n-- between --\r\n";
    let mut command = b"a1 APPEND Drafts CATENATE (TEXT ".to_vec();
    command.extend(plus_literal(b"X-Head: 1\r\n"));
    command.extend(b" TEXT ");
    command.extend(plus_literal(large.as_bytes()));
    command.extend(format!(" URL \"{url}\" TEXT ").as_bytes());
    command.extend(plus_literal(between.as_bytes()));
    command.extend(format!(" URL \"{url}\")\r\n").as_bytes());
    let (_, done) = run_bytes(&mut client, "a1", &command).await;
    assert!(done.starts_with("OK [APPENDUID"), "{done}");
    let expected = format!("X-Head: 1\r\n{large}{original}{between}{original}");
    client.run("EXAMINE Drafts").await;
    let (lines, _) = client.run("FETCH 1 (RFC822.SIZE BODY.PEEK[])").await;
    assert!(
        lines[0].contains(&format!("RFC822.SIZE {}", expected.len())),
        "{}",
        &lines[0][..80]
    );
    assert!(lines[0].contains(&expected), "content differs");
    assert!(server.spool_files().is_empty(), "spool files left behind");

    // Synchronizing: each TEXT gets its continuation (the one after a streamed literal is
    // streamed too, whatever its size); then a MULTIAPPEND message.
    let second = sized_message("second", 20_000);
    let last = message("last", "after the catenate");
    client
        .send(format!("a2 APPEND Drafts CATENATE (TEXT {{{}}}\r\n", large.len()).as_bytes())
        .await;
    assert!(client.line().await.starts_with('+'));
    client
        .send(format!("{large} URL \"{url}\" TEXT {{{}}}\r\n", second.len()).as_bytes())
        .await;
    assert!(client.line().await.starts_with('+'));
    client
        .send(format!("{second}) (\\Seen) {{{}}}\r\n", last.len()).as_bytes())
        .await;
    assert!(client.line().await.starts_with('+'));
    client.send(format!("{last}\r\n").as_bytes()).await;
    let (_, done) = client.until_tagged("a2").await;
    assert!(done.starts_with("OK [APPENDUID"), "{done}");
    assert_eq!(appenduid(&done).1, "2:3");
    let (lines, _) = client.run("FETCH 2:3 (FLAGS RFC822.SIZE)").await;
    let size = large.len() + original.len() + second.len();
    assert!(
        lines[0].contains(&format!("RFC822.SIZE {size}")),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("\\Seen") && lines[1].contains(&format!("RFC822.SIZE {}", last.len())),
        "{lines:?}"
    );
    assert!(server.spool_files().is_empty(), "spool files left behind");
}

/// A streamed CATENATE over APPENDLIMIT is `NO [TOOBIG]`, a bad URL after a streamed part
/// `NO [BADURL]`: what is still on its way is read and dropped, nothing is stored, and the
/// session goes on. A synchronizing TEXT that would pass the limit is never asked for.
#[tokio::test]
async fn a_refused_streamed_catenate_stores_nothing_and_the_session_goes_on() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let large = sized_message("large", 70_000);
    // 70,000 + 40,000 bytes: over the test server's 100,000 byte APPENDLIMIT.
    let more = sized_message("more", 40_000);
    let mut command = b"a1 APPEND INBOX CATENATE (TEXT ".to_vec();
    command.extend(plus_literal(large.as_bytes()));
    command.extend(b" TEXT ");
    command.extend(plus_literal(more.as_bytes()));
    command.extend(b")\r\n");
    let (_, done) = run_bytes(&mut client, "a1", &command).await;
    assert!(done.starts_with("NO [TOOBIG]"), "{done}");
    let (_, done) = client.run("NOOP").await;
    assert!(done.starts_with("OK"), "{done}");

    let mut command = b"a2 APPEND INBOX CATENATE (TEXT ".to_vec();
    command.extend(plus_literal(large.as_bytes()));
    command.extend(b" URL \"/INBOX/;UID=7\" TEXT ");
    command.extend(plus_literal(b"tail\r\n"));
    command.extend(b")\r\n");
    let (_, done) = run_bytes(&mut client, "a2", &command).await;
    assert!(done.starts_with("NO [BADURL /INBOX/;UID=7]"), "{done}");
    let (_, done) = client.run("NOOP").await;
    assert!(done.starts_with("OK"), "{done}");

    client
        .send(format!("a3 APPEND INBOX CATENATE (TEXT {{{}}}\r\n", large.len()).as_bytes())
        .await;
    assert!(client.line().await.starts_with('+'));
    client
        .send(format!("{large} TEXT {{{}}}\r\n", more.len()).as_bytes())
        .await;
    let (_, done) = client.until_tagged("a3").await;
    assert!(done.starts_with("NO [TOOBIG]"), "{done}");
    let (_, done) = client.run("NOOP").await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(count_messages(&mut client, "INBOX").await, 0);
    assert!(server.spool_files().is_empty(), "spool files left behind");
}

/// A MULTIAPPEND or CATENATE refused before its streamed literal is taken (no such mailbox,
/// an earlier message refused) drops every literal still on its way, not only the first:
/// the ones the following lines announce were read as commands.
#[tokio::test]
async fn a_streamed_append_to_a_missing_mailbox_drops_all_its_literals() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let large = sized_message("large", 70_000);
    let mut command = b"a1 APPEND Nowhere ".to_vec();
    command.extend(plus_literal(large.as_bytes()));
    command.extend(b" ");
    command.extend(plus_literal(b"a2 NOOP\r\n"));
    command.extend(b"\r\n");
    let (lines, done) = run_bytes(&mut client, "a1", &command).await;
    assert!(done.starts_with("NO [TRYCREATE]"), "{done}");
    assert!(lines.is_empty(), "{lines:?}");
    let mut command = b"a3 APPEND Nowhere CATENATE (TEXT ".to_vec();
    command.extend(plus_literal(large.as_bytes()));
    command.extend(b" TEXT ");
    command.extend(plus_literal(b"a4 NOOP\r\n"));
    command.extend(b")\r\n");
    let (lines, done) = run_bytes(&mut client, "a3", &command).await;
    assert!(done.starts_with("NO [TRYCREATE]"), "{done}");
    assert!(lines.is_empty(), "{lines:?}");
    // Refused for a message before the streamed one (zero bytes).
    let mut command = b"a5 APPEND INBOX {0+}\r\n ".to_vec();
    command.extend(plus_literal(large.as_bytes()));
    command.extend(b" ");
    command.extend(plus_literal(b"a6 NOOP\r\n"));
    command.extend(b"\r\n");
    let (lines, done) = run_bytes(&mut client, "a5", &command).await;
    assert!(done.starts_with("NO"), "{done}");
    assert!(lines.is_empty(), "{lines:?}");
    // Synchronizing: nothing is asked for.
    client
        .send(format!("a7 APPEND Nowhere {{{}}}\r\n", large.len()).as_bytes())
        .await;
    let (_, done) = client.until_tagged("a7").await;
    assert!(done.starts_with("NO [TRYCREATE]"), "{done}");
    // Nothing of them was taken for a command: the next tag answered is this one.
    let (lines, done) = client.run("NOOP").await;
    assert!(done.starts_with("OK"), "{done}");
    assert!(lines.is_empty(), "{lines:?}");
    assert!(server.spool_files().is_empty(), "spool files left behind");
}

/// A 30 MB CATENATE TEXT part goes to the spool as it arrives: no input buffer of the server
/// grows past one read, and the stored message is the parts in order.
#[tokio::test]
async fn a_large_catenate_streams_to_disk_with_bounded_memory() {
    let server = start_with(true, |limits| limits.max_literal = 31 * 1024 * 1024).await;
    let original = message("original", "The original text.");
    server.deliver("alice", &original).await;
    let mut client = server.logged_in("alice").await;
    let line = format!("{}\r\n", "QUJDRA".repeat(12));
    let text = message("large", &line.repeat(30 * 1024 * 1024 / line.len()));
    client
        .send(format!("a APPEND INBOX CATENATE (TEXT {{{}}}\r\n", text.len()).as_bytes())
        .await;
    assert_eq!(client.line().await, "+ Ready for literal data\r\n");
    for chunk in text.as_bytes().chunks(1 << 20) {
        client.send(chunk).await;
    }
    client.send(b" URL \"/INBOX/;UID=1\")\r\n").await;
    let (_, done) = client.until_tagged("a").await;
    assert!(done.starts_with("OK [APPENDUID "), "{done}");
    let largest = server.ctx.largest_input_buffer();
    assert!(largest <= 64 * 1024, "an input buffer held {largest} bytes");
    let expected = format!("{text}{original}").replace("\r\n", "\n");
    let cur = server.maildir("alice").await.join("cur");
    let stored: Vec<Vec<u8>> = files_in(&cur)
        .iter()
        .map(|file| std::fs::read(file).unwrap())
        .collect();
    assert!(
        stored.iter().any(|bytes| bytes == expected.as_bytes()),
        "the catenated message is not stored as sent"
    );
    assert!(server.spool_files().is_empty(), "spool files left behind");
}
