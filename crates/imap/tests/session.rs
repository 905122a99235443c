//! The IMAP server over a real socket: a real SQLite directory, real Maildirs, TLS from rcgen,
//! and a line-level client that checks the exact responses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a failure is the test failing.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailstead_auth::AuthOptions;
use mailstead_imap::Limits;
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;

use support::*;

#[tokio::test]
async fn login_select_fetch_store_search_and_logout() {
    let server = start(true).await;
    server
        .deliver("alice", &message("first", "Hello there"))
        .await;
    server
        .deliver("alice", &message("second", "Another one"))
        .await;
    let mut client = server.logged_in("alice").await;

    let (untagged, done) = client.run("SELECT INBOX").await;
    assert_eq!(done, "OK [READ-WRITE] Select completed.");
    assert!(untagged.contains(&"* 2 EXISTS".to_owned()), "{untagged:?}");
    assert!(untagged.contains(&"* 2 RECENT".to_owned()), "{untagged:?}");
    assert!(
        untagged.iter().any(|l| l.starts_with("* OK [UIDVALIDITY ")),
        "{untagged:?}"
    );
    assert!(
        untagged.contains(&"* OK [UIDNEXT 3] Predicted next UID.".to_owned()),
        "{untagged:?}"
    );
    assert!(
        untagged.iter().any(|l| l.starts_with(
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]"
        )),
        "{untagged:?}"
    );

    let (untagged, done) = client.run("FETCH 1:* (UID FLAGS RFC822.SIZE)").await;
    assert_eq!(done, "OK Fetch completed.");
    let size = message("first", "Hello there").len();
    assert_eq!(
        untagged[0],
        format!("* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE {size})")
    );
    assert!(untagged[1].starts_with("* 2 FETCH (UID 2 "), "{untagged:?}");

    let (untagged, _) = client.run("UID FETCH 2 (ENVELOPE)").await;
    assert!(untagged[0].contains("\"second\""), "{untagged:?}");
    assert!(
        untagged[0].contains("((\"Carol\" NIL \"carol\" \"example.org\"))"),
        "{untagged:?}"
    );

    // BODY[] sets \Seen; BODY.PEEK does not.
    let (untagged, _) = client.run("FETCH 2 (BODY.PEEK[TEXT])").await;
    assert!(untagged[0].contains("Another one"), "{untagged:?}");
    assert!(!untagged[0].contains("\\Seen"), "{untagged:?}");
    let (untagged, _) = client.run("FETCH 1 (BODY[])").await;
    assert!(untagged[0].contains("\\Seen"), "{untagged:?}");
    assert!(untagged[0].contains("Subject: first"), "{untagged:?}");

    let (untagged, done) = client.run("STORE 2 +FLAGS ($Work \\Flagged)").await;
    assert_eq!(done, "OK Store completed.");
    assert!(
        untagged
            .iter()
            .any(|l| l.starts_with("* FLAGS (") && l.contains("$Work")),
        "{untagged:?}"
    );
    assert!(
        untagged
            .iter()
            .any(|l| l == "* 2 FETCH (FLAGS (\\Flagged \\Recent $Work))"),
        "{untagged:?}"
    );

    let (untagged, _) = client.run("SEARCH UNSEEN").await;
    assert_eq!(untagged, vec!["* SEARCH 2"]);
    let (untagged, _) = client.run("UID SEARCH KEYWORD $Work SUBJECT second").await;
    assert_eq!(untagged, vec!["* SEARCH 2"]);
    // Answered from the header cache the previous search filled.
    let (untagged, _) = client.run("SEARCH FROM carol SINCE 1-Jan-2020").await;
    assert_eq!(untagged, vec!["* SEARCH 1 2"]);
    let (untagged, _) = client.run("SEARCH BODY hello").await;
    assert_eq!(untagged, vec!["* SEARCH 1"]);
    let (untagged, _) = client.run("SEARCH RETURN (MIN MAX COUNT) ALL").await;
    assert_eq!(
        untagged,
        vec!["* ESEARCH (TAG \"a12\") MIN 1 MAX 2 COUNT 2"]
    );
    let (_, done) = client.run("SEARCH CHARSET KOI8-R ALL").await;
    assert_eq!(done, "OK Search completed.");

    let (untagged, done) = client.run("LOGOUT").await;
    assert_eq!(untagged, vec!["* BYE Logging out."]);
    assert_eq!(done, "OK Logout completed.");
}

#[tokio::test]
async fn append_copy_move_expunge_with_uidplus() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let text = message("appended", "body");
    let (_, done) = client
        .run(&format!(
            "APPEND INBOX (\\Seen) {{{}+}}\r\n{text}",
            text.len()
        ))
        .await;
    assert!(done.starts_with("OK [APPENDUID "), "{done}");
    assert!(done.ends_with(" 1] Append completed."), "{done}");
    let (_, done) = client.run("APPEND Nowhere {3+}\r\nabc").await;
    assert!(done.starts_with("NO [TRYCREATE]"), "{done}");

    client.run("SELECT INBOX").await;
    let (_, done) = client.run("CREATE Work/Projects").await;
    assert!(done.ends_with("] Create completed."), "{done}");
    let (_, done) = client.run("COPY 1 Work/Projects").await;
    assert!(
        done.starts_with("OK [COPYUID ") && done.contains(" 1 1]"),
        "{done}"
    );
    let (_, done) = client.run("COPY 1 Missing").await;
    assert!(done.starts_with("NO [TRYCREATE]"), "{done}");
    let (untagged, done) = client.run("MOVE 1 Archive").await;
    assert_eq!(done, "OK Move completed.");
    assert!(untagged[0].starts_with("* OK [COPYUID "), "{untagged:?}");
    assert_eq!(untagged[1], "* 1 EXPUNGE");

    let (untagged, _) = client
        .run("STATUS Work/Projects (MESSAGES UIDNEXT UNSEEN)")
        .await;
    assert_eq!(
        untagged,
        vec!["* STATUS Work/Projects (MESSAGES 1 UIDNEXT 2 UNSEEN 0)"]
    );

    client.run("SELECT Work/Projects").await;
    client.run("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    let (untagged, done) = client.run("EXPUNGE").await;
    assert_eq!(done, "OK Expunge completed.");
    assert_eq!(untagged, vec!["* 1 EXPUNGE"]);
    let (untagged, _) = client.run("STATUS Work/Projects (MESSAGES UIDNEXT)").await;
    assert_eq!(
        untagged,
        vec!["* STATUS Work/Projects (MESSAGES 0 UIDNEXT 2)"]
    );
}

/// RFC822.SIZE of an APPENDed message (its `W=`) is the size of the BODY[] FETCH sends, by
/// the store's one size rule, for bare CRs, bare LFs and CR before CRLF alike.
#[tokio::test]
async fn appended_size_is_what_fetch_sends() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    // (APPENDed bytes, what BODY[] sends)
    let cases: [(&str, &str); 4] = [
        ("a\r\r\n", "a\r\n"),
        ("bare\rcr\r\n", "bare\rcr\r\n"),
        ("bare\nlf\r\n", "bare\r\nlf\r\n"),
        ("trailing cr\r", "trailing cr\r"),
    ];
    for (appended, _) in cases {
        let (_, done) = client
            .run(&format!(
                "APPEND INBOX {{{}+}}\r\n{appended}",
                appended.len()
            ))
            .await;
        assert!(done.starts_with("OK [APPENDUID "), "{done}");
    }
    client.run("SELECT INBOX").await;
    for (n, (_, fetched)) in cases.iter().enumerate() {
        let (untagged, _) = client
            .run(&format!("FETCH {} (RFC822.SIZE BODY.PEEK[])", n + 1))
            .await;
        let size = fetched.len();
        assert!(
            untagged[0].contains(&format!(
                "RFC822.SIZE {size} BODY[] {{{size}}}\r\n{fetched}"
            )),
            "{untagged:?}"
        );
    }
}

#[tokio::test]
async fn list_shows_special_use_folders_and_children() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    client.run("CREATE a/b").await;
    let (untagged, _) = client.run("LIST \"\" \"*\"").await;
    for expected in [
        "* LIST (\\HasNoChildren) \"/\" INBOX",
        "* LIST (\\HasNoChildren \\Sent) \"/\" Sent",
        "* LIST (\\HasNoChildren \\Trash) \"/\" Trash",
        "* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts",
        "* LIST (\\HasNoChildren \\Junk) \"/\" Junk",
        "* LIST (\\HasNoChildren \\Archive) \"/\" Archive",
        "* LIST (\\HasChildren) \"/\" a",
        "* LIST (\\HasNoChildren) \"/\" a/b",
    ] {
        assert!(
            untagged.contains(&expected.to_owned()),
            "{expected} not in {untagged:?}"
        );
    }
    let (untagged, _) = client.run("LIST \"\" %").await;
    assert!(
        !untagged.iter().any(|l| l.ends_with(" a/b")),
        "{untagged:?}"
    );
    let (untagged, _) = client.run("LIST \"\" \"\"").await;
    assert_eq!(untagged, vec!["* LIST (\\Noselect) \"/\" \"\""]);
    let (untagged, _) = client
        .run("LIST (SPECIAL-USE) \"\" \"*\" RETURN (STATUS (MESSAGES))")
        .await;
    assert!(
        untagged.contains(&"* STATUS Sent (MESSAGES 0)".to_owned()),
        "{untagged:?}"
    );
    assert!(
        !untagged.iter().any(|l| l.ends_with(" INBOX")),
        "{untagged:?}"
    );
    client.run("SUBSCRIBE a/b").await;
    let (untagged, _) = client.run("LSUB \"\" *").await;
    assert!(
        untagged.contains(&"* LSUB () \"/\" a/b".to_owned()),
        "{untagged:?}"
    );
    let (_, done) = client.run("DELETE INBOX").await;
    assert!(done.starts_with("NO"), "{done}");
    let (_, done) = client.run("RENAME a/b a/c").await;
    assert_eq!(done, "OK Rename completed.");
    let (untagged, _) = client.run("NAMESPACE").await;
    assert_eq!(untagged, vec!["* NAMESPACE ((\"\" \"/\")) NIL NIL"]);
}

#[tokio::test]
async fn another_session_sees_flags_expunges_and_deliveries() {
    let server = start(true).await;
    server.deliver("bob", &message("one", "1")).await;
    server.deliver("bob", &message("two", "2")).await;
    let mut first = server.logged_in("bob").await;
    let mut second = server.logged_in("bob").await;
    first.run("SELECT INBOX").await;
    second.run("SELECT INBOX").await;

    first.run("STORE 1 +FLAGS.SILENT (\\Seen)").await;
    let (untagged, _) = second.run("NOOP").await;
    assert_eq!(untagged, vec!["* 1 FETCH (FLAGS (\\Seen))"]);

    first.run("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    first.run("EXPUNGE").await;
    // During FETCH the expunge must not be announced; after NOOP it is.
    let (untagged, _) = second.run("FETCH 1 (FLAGS)").await;
    assert!(
        !untagged.iter().any(|l| l.ends_with("EXPUNGE")),
        "{untagged:?}"
    );
    let (untagged, _) = second.run("NOOP").await;
    assert!(untagged.contains(&"* 2 EXPUNGE".to_owned()), "{untagged:?}");

    server.deliver("bob", &message("three", "3")).await;
    let (untagged, _) = second.run("NOOP").await;
    assert!(untagged.contains(&"* 2 EXISTS".to_owned()), "{untagged:?}");
    let (untagged, _) = second.run("UID FETCH 3 (UID)").await;
    assert_eq!(untagged, vec!["* 2 FETCH (UID 3)"], "UID 2 is never reused");
}

#[tokio::test]
async fn idle_wakes_on_delivery() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    client.send(b"i1 IDLE\r\n").await;
    assert_eq!(client.line().await.trim_end(), "+ idling");
    let started = Instant::now();
    server.deliver("alice", &message("wake", "up")).await;
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l == "* 1 EXISTS") {
        lines.push(client.line().await.trim_end().to_owned());
    }
    let elapsed = started.elapsed();
    println!("IDLE saw the delivery after {elapsed:?}");
    client.send(b"DONE\r\n").await;
    let (_, done) = client.until_tagged("i1").await;
    assert_eq!(done, "OK IDLE terminated.");
}

#[tokio::test]
async fn condstore_and_qresync() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "1")).await;
    server.deliver("alice", &message("two", "2")).await;
    let mut client = server.logged_in("alice").await;
    let (untagged, _) = client.run("ENABLE QRESYNC").await;
    assert_eq!(untagged, vec!["* ENABLED QRESYNC"]);
    let (untagged, _) = client.run("SELECT INBOX").await;
    let validity: u32 = untagged
        .iter()
        .find_map(|l| l.strip_prefix("* OK [UIDVALIDITY "))
        .and_then(|rest| rest.split(']').next())
        .unwrap()
        .parse()
        .unwrap();
    let modseq: u64 = untagged
        .iter()
        .find_map(|l| l.strip_prefix("* OK [HIGHESTMODSEQ "))
        .and_then(|rest| rest.split(']').next())
        .unwrap()
        .parse()
        .unwrap();
    let (untagged, _) = client.run("UID STORE 1 +FLAGS (\\Answered)").await;
    assert!(
        untagged[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Answered \\Recent) MODSEQ ("),
        "{untagged:?}"
    );
    let (_, done) = client
        .run(&format!(
            "STORE 1 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Flagged)"
        ))
        .await;
    assert!(done.starts_with("OK [MODIFIED 1]"), "{done}");
    client.run("UID STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    let (untagged, _) = client.run("EXPUNGE").await;
    assert_eq!(untagged, vec!["* VANISHED 2"]);
    let (untagged, _) = client
        .run(&format!(
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)"
        ))
        .await;
    assert!(
        untagged.contains(&"* VANISHED (EARLIER) 2".to_owned()),
        "{untagged:?}"
    );
    assert!(
        untagged
            .iter()
            .any(|l| l.starts_with("* 1 FETCH (UID 1 FLAGS (\\Answered")),
        "{untagged:?}"
    );
    client.run("UNSELECT").await;
    let (untagged, done) = client
        .run(&format!("SELECT INBOX (QRESYNC ({validity} {modseq}))"))
        .await;
    assert_eq!(done, "OK [READ-WRITE] Select completed.");
    assert!(
        untagged.contains(&"* VANISHED (EARLIER) 2".to_owned()),
        "{untagged:?}"
    );
    assert!(
        untagged
            .iter()
            .any(|l| l.starts_with("* 1 FETCH (UID 1 FLAGS (\\Answered")),
        "{untagged:?}"
    );
}

#[tokio::test]
async fn passwords_need_tls_unless_loopback_is_allowed() {
    let server = start(false).await;
    let mut client = server.client().await;
    let (untagged, _) = client.run("CAPABILITY").await;
    assert!(
        untagged[0].contains("LOGINDISABLED") && untagged[0].contains("STARTTLS"),
        "{untagged:?}"
    );
    let (_, done) = client.run("LOGIN alice@example.com secret").await;
    assert!(done.starts_with("NO [PRIVACYREQUIRED]"), "{done}");
    let (_, done) = client.run("STARTTLS").await;
    assert_eq!(done, "OK Begin TLS negotiation now.");
    let stream = client.stream.into_inner();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = server
        .tls_connector()
        .connect(name.clone(), stream)
        .await
        .unwrap();
    let mut client = Client::new(tls);
    let (untagged, _) = client.run("CAPABILITY").await;
    assert!(
        untagged[0].contains("AUTH=PLAIN") && !untagged[0].contains("STARTTLS"),
        "{untagged:?}"
    );
    // AUTHENTICATE PLAIN with SASL-IR: "\0alice@example.com\0secret".
    let (_, done) = client
        .run("AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==")
        .await;
    assert!(done.starts_with("OK [CAPABILITY"), "{done}");

    // Implicit TLS: the same over port 993's listener.
    let stream = TcpStream::connect(("127.0.0.1", server.tls_port))
        .await
        .unwrap();
    let tls = server.tls_connector().connect(name, stream).await.unwrap();
    let mut client = Client::new(tls);
    assert!(client.line().await.starts_with("* OK [CAPABILITY"));
    let (_, done) = client.run("LOGIN bob@example.com secret").await;
    assert!(done.starts_with("OK [CAPABILITY"), "{done}");
}

#[tokio::test]
async fn bad_input_gets_clear_answers() {
    let server = start(true).await;
    let mut client = server.client().await;
    let (_, done) = client.run("FROBNICATE").await;
    assert!(done.starts_with("BAD"), "{done}");
    let (_, done) = client.run("SELECT INBOX").await;
    assert!(done.starts_with("BAD"), "{done}");
    let (_, done) = client.run("LOGIN alice@example.com wrong").await;
    assert_eq!(done, "NO [AUTHENTICATIONFAILED] Authentication failed.");
    client.run("LOGIN alice@example.com secret").await;
    let (_, done) = client.run("FETCH 1 FLAGS").await;
    assert_eq!(done, "BAD No mailbox selected.");
    client.run("SELECT INBOX").await;
    let (_, done) = client.run("FETCH 5 FLAGS").await;
    assert!(done.starts_with("BAD"), "{done}");
    // A literal over the limit is refused before the client sends it.
    let (_, done) = client.run("APPEND INBOX {200000}").await;
    assert!(
        done.starts_with("NO [TOOBIG]") || done.starts_with("BAD"),
        "{done}"
    );
    // An over-long line is answered, and the session goes on.
    let long = format!("a99 NOOP {}\r\n", "x".repeat(10_000));
    client.send(long.as_bytes()).await;
    let answer = client.line().await;
    assert!(answer.contains("BAD"), "{answer}");
    let (_, done) = client.run("NOOP").await;
    assert_eq!(done, "OK NOOP completed.");
}

#[tokio::test]
async fn quota_is_reported_and_enforced() {
    let server = start(true).await;
    let mut client = server.logged_in("small").await;
    let (untagged, done) = client.run("GETQUOTAROOT INBOX").await;
    assert_eq!(done, "OK Getquotaroot completed.");
    assert_eq!(
        untagged,
        vec!["* QUOTAROOT INBOX \"\"", "* QUOTA \"\" (STORAGE 0 1)"]
    );
    let big = message("big", &"x".repeat(3000));
    let (_, done) = client
        .run(&format!("APPEND INBOX {{{}+}}\r\n{big}", big.len()))
        .await;
    assert!(done.starts_with("NO [OVERQUOTA]"), "{done}");
}

#[tokio::test]
async fn connections_per_user_are_limited() {
    let server = start(true).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(server.logged_in("alice").await);
    }
    let mut fifth = server.client().await;
    let (_, done) = fifth.run("LOGIN alice@example.com secret").await;
    assert!(done.starts_with("NO [LIMIT]"), "{done}");
    clients.pop();
    // The slot comes back when a session ends; give the server a moment to see the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, done) = fifth.run("LOGIN alice@example.com secret").await;
        if done.starts_with("OK") {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed: {done}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        fifth = server.client().await;
    }
}

#[tokio::test]
async fn a_full_server_closes_the_oldest_connection_not_logged_in() {
    let server = start_with_capacity(true, 3).await;
    let mut oldest_silent = server.client().await;
    let mut logged_in = server.logged_in("alice").await;
    let mut newer_silent = server.client().await;

    // Full: a new client still gets its greeting (client() checks it) ...
    let mut newcomer = server.client().await;
    // ... because the oldest connection not logged in was told why and closed.
    let goodbye = oldest_silent.line().await;
    assert!(
        goodbye.starts_with("* BYE Too many connections"),
        "{goodbye}"
    );
    let mut rest = String::new();
    let read = oldest_silent.stream.read_line(&mut rest).await.unwrap();
    assert_eq!(read, 0, "closed after the goodbye: {rest}");
    // A logged-in session is never the one evicted.
    let (_, done) = logged_in.run("NOOP").await;
    assert!(done.starts_with("OK"), "{done}");

    // The implicit-TLS listener shares the cap and the handshake comes first.
    let stream = TcpStream::connect(("127.0.0.1", server.tls_port))
        .await
        .unwrap();
    let tls = server
        .tls_connector()
        .connect("localhost".try_into().unwrap(), stream)
        .await
        .unwrap();
    let mut over_tls = Client::new(tls);
    let greeting = over_tls.line().await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    assert!(
        newer_silent
            .line()
            .await
            .starts_with("* BYE Too many connections")
    );

    // Nobody left to evict: the new connection is refused with the same words.
    let (_, done) = newcomer.run("LOGIN bob@example.com secret").await;
    assert!(done.contains("OK"), "{done}");
    let (_, done) = over_tls.run("LOGIN alice@example.com secret").await;
    assert!(done.contains("OK"), "{done}");
    let stream = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let mut refused = Client::new(stream);
    let refusal = refused.line().await;
    assert!(
        refusal.starts_with("* BYE Too many connections"),
        "{refusal}"
    );
}

#[tokio::test]
async fn literals_before_login_are_small() {
    // The production sizes: 64 KiB lines, 50 MiB literals (APPEND) once logged in.
    let server = start_with(true, |limits| {
        limits.max_line = Limits::default().max_line;
        limits.max_literal = Limits::default().max_literal;
    })
    .await;
    let mut client = server.client().await;
    // Refused without a continuation: the client never gets to send the 10 MB.
    client.send(b"a1 LOGIN {10000000}\r\n").await;
    let answer = client.line().await;
    assert!(answer.starts_with("a1 NO [TOOBIG]"), "{answer}");
    // A small literal is still taken.
    client.send(b"a2 LOGIN {17}\r\n").await;
    assert!(client.line().await.starts_with("+ "));
    client.send(b"alice@example.com {6}\r\n").await;
    assert!(client.line().await.starts_with("+ "));
    client.send(b"wrong!\r\n").await;
    let (_, done) = client.until_tagged("a2").await;
    assert!(done.starts_with("NO [AUTHENTICATIONFAILED]"), "{done}");
    // A non-synchronizing literal too big is already on its way: the connection ends.
    client.send(b"a3 LOGIN {10000000+}\r\n").await;
    let answer = client.line().await;
    assert!(answer.starts_with("* BYE [TOOBIG]"), "{answer}");

    // A line over the pre-login limit (though under max_line) is refused as well.
    let mut client = server.client().await;
    let long = format!("a4 LOGIN alice@example.com \"{}\"\r\n", "x".repeat(9000));
    client.send(long.as_bytes()).await;
    let answer = client.line().await;
    assert!(answer.starts_with("a4 BAD"), "{answer}");
    // A SASL response of more than a few KB is refused too.
    client.send(b"a5 AUTHENTICATE PLAIN\r\n").await;
    assert!(client.line().await.starts_with("+"));
    client
        .send(format!("{}\r\n", "QUFB".repeat(3000)).as_bytes())
        .await;
    let (_, done) = client.until_tagged("a5").await;
    assert!(done.starts_with("BAD"), "{done}");
    // Once logged in, the configured limits apply.
    let (_, done) = client.run("LOGIN alice@example.com secret").await;
    assert!(done.starts_with("OK"), "{done}");
    client.send(b"a9 APPEND INBOX {20000}\r\n").await;
    assert!(client.line().await.starts_with("+ "));
}

#[tokio::test]
async fn an_unauthenticated_connection_ends_after_login_timeout_whatever_it_sends() {
    let server = start(true).await;
    let mut client = server.client().await;
    // The server's clock: 60 s from the connection's start (Limits::default()).
    tokio::time::pause();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(25)).await;
        client.send(b"n NOOP\r\n").await;
        let answer = client.line().await;
        if answer.starts_with("* BYE") {
            assert_eq!(answer, "* BYE Login timed out.\r\n");
            return;
        }
        assert_eq!(answer, "n OK NOOP completed.\r\n");
    }
    panic!("a NOOP every 25 s kept an unauthenticated connection open for 75 s");
}

#[tokio::test]
async fn a_set_written_many_times_fetches_each_message_once() {
    let server = start(true).await;
    for n in 0..5 {
        server
            .deliver("alice", &message(&format!("m{n}"), "hi"))
            .await;
    }
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    // As many `1:*` as the test's 4 KiB line holds, plus overlapping and reversed ranges.
    let set = format!("{},3:1,*:2,5", vec!["1:*"; 900].join(","));
    let (untagged, done) = client.run(&format!("FETCH {set} (UID)")).await;
    assert_eq!(done, "OK Fetch completed.");
    assert_eq!(
        untagged,
        (1..=5)
            .map(|n| format!("* {n} FETCH (UID {n})"))
            .collect::<Vec<_>>()
    );
    let (untagged, _) = client.run(&format!("SEARCH {set}")).await;
    assert_eq!(untagged, vec!["* SEARCH 1 2 3 4 5"]);
}

#[tokio::test]
async fn patterns_search_keys_and_lists_are_bounded() {
    let server = start_with(true, |limits| {
        limits.max_line = Limits::default().max_line;
    })
    .await;
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    // A 100 KB pattern (as a literal) is refused before it is matched against anything.
    let pattern = "*a".repeat(50_000);
    let (_, done) = client
        .run(&format!("LIST \"\" {{{}+}}\r\n{pattern}", pattern.len()))
        .await;
    assert_eq!(done, "BAD Mailbox pattern longer than 1024 bytes");
    let (_, done) = client
        .run(&format!("SEARCH{}", " NOT TEXT x".repeat(600)))
        .await;
    assert_eq!(done, "BAD More than 1000 search keys");
    let (_, done) = client
        .run(&format!("SEARCH {}SEEN{}", "(".repeat(40), ")".repeat(40)))
        .await;
    assert_eq!(done, "BAD Search criteria nested more than 32 levels deep");
    let (_, done) = client
        .run(&format!("FETCH 1:* ({})", vec!["FLAGS"; 1000].join(" ")))
        .await;
    assert_eq!(done, "BAD Too many items in the FETCH attributes");
    let (_, done) = client.run("NOOP").await;
    assert_eq!(done, "OK NOOP completed.");
}

/// Two sessions run a search that costs seconds of CPU on a folder of 3,000 messages, on a
/// server with two worker threads (one per searcher): a third session's NOOP must still be
/// answered while they run, since their matching happens off the I/O threads. The server has
/// its own runtime so that the clients' reads do not depend on the threads under test.
#[test]
fn heavy_searches_leave_the_io_threads_to_other_sessions() {
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = server_runtime.block_on(async {
        let server = start_with(true, |limits| {
            limits.max_line = Limits::default().max_line;
        })
        .await;
        server.deliver("alice", &message("first", "hello")).await;
        let cur = server.maildir("alice").await.join("cur");
        for n in 0..3000 {
            let body = format!(
                "From: Sender {n} <sender{n}@example.org>\nTo: alice@example.com\n\
                 Subject: =?UTF-8?Q?message_number_{n}?= =?ISO-8859-1?Q?caf=E9_cr=E8me_br=FBl=E9e_{n}?=\n\n{}\n",
                "Some text of the message.\n".repeat(20)
            );
            std::fs::write(cur.join(format!("1700000000.M{n}P1.imap.test:2,")), body).unwrap();
        }
        server
    });
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client_runtime.block_on(async {
        let mut searchers = Vec::new();
        for _ in 0..2 {
            let mut client = server.logged_in("alice").await;
            let (untagged, _) = client.run("SELECT INBOX").await;
            assert!(
                untagged.contains(&"* 3001 EXISTS".to_owned()),
                "{untagged:?}"
            );
            searchers.push(client);
        }
        let mut bystander = server.logged_in("alice").await;
        bystander.run("SELECT INBOX").await;
        // Reads every message once and keeps its headers in the folder's cache.
        let (untagged, _) = searchers[0].run("SEARCH FROM nobody").await;
        assert_eq!(untagged, vec!["* SEARCH"]);
        // A second or more of matching for each, in a debug build: message bodies are read and
        // matched for every key (headers would come from the folder's cache).
        let heavy: String = (0..100).map(|n| format!(" NOT BODY nobody{n}")).collect();
        for searcher in &mut searchers {
            searcher
                .send(format!("heavy SEARCH{heavy}\r\n").as_bytes())
                .await;
        }
        // Both searches are under way before the NOOP is sent (the wait only sets the scene).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let replies = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut waiting = Vec::new();
        for mut searcher in searchers {
            let replies = Arc::clone(&replies);
            waiting.push(tokio::spawn(async move {
                let (untagged, done) = searcher.until_tagged("heavy").await;
                replies.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                (untagged, done)
            }));
        }
        let (_, done) = bystander.run("NOOP").await;
        assert_eq!(done, "OK NOOP completed.");
        assert_eq!(
            replies.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "a search finished before the NOOP was answered"
        );
        for search in waiting {
            let (untagged, done) = search.await.unwrap();
            assert_eq!(done, "OK Search completed.");
            assert_eq!(untagged.len(), 1);
            assert_eq!(untagged[0].split(' ').count(), 2 + 3001);
        }
    });
    drop(server);
}

/// Brute force across connections: the failure penalty is per client address and per
/// account, not per connection. After 10 failures from one address its logins are refused
/// without checking the password (a temporary answer), even with the right password; other
/// addresses log in, and so does the owner of the attacked account from an address that never
/// failed.
#[tokio::test]
async fn failed_logins_are_counted_per_address_across_connections() {
    let server = start(true).await;
    let attacker = [127, 0, 0, 1];
    let mut answers = Vec::new();
    let mut client = server.client_from(attacker).await;
    let mut failed_here = 0;
    for _ in 0..11 {
        if failed_here == 3 {
            // The session closes after three failures (Limits::max_failed_logins).
            client = server.client_from(attacker).await;
            failed_here = 0;
        }
        let (_, done) = client.run("LOGIN alice@example.com wrong").await;
        if done.starts_with("NO [AUTHENTICATIONFAILED]") {
            failed_here += 1;
        }
        answers.push(done);
    }
    let refused = answers
        .iter()
        .filter(|done| done.starts_with("NO [AUTHENTICATIONFAILED]"))
        .count();
    assert_eq!(refused, 10, "{answers:?}");
    assert!(
        answers[10].starts_with("NO [UNAVAILABLE]"),
        "the 11th is refused without checking: {answers:?}"
    );
    let (_, done) = client.run("LOGIN alice@example.com secret").await;
    assert!(
        done.starts_with("NO [UNAVAILABLE]"),
        "the right password from the attacking address: {done}"
    );
    let mut fresh = server.client_from(attacker).await;
    let (_, done) = fresh.run("LOGIN bob@example.com secret").await;
    assert!(
        done.starts_with("NO [UNAVAILABLE]"),
        "a new connection from that address: {done}"
    );

    let mut other = server.client_from([127, 0, 0, 2]).await;
    let (_, done) = other.run("LOGIN bob@example.com secret").await;
    assert!(done.starts_with("OK [CAPABILITY"), "another user: {done}");
    let mut owner = server.client_from([127, 0, 0, 3]).await;
    let (_, done) = owner.run("LOGIN alice@example.com secret").await;
    assert!(
        done.starts_with("OK [CAPABILITY"),
        "the attacked account from an address that never failed: {done}"
    );
}

/// MUM's Dovecot user query leaves send-only mailboxes out: they send through submission but
/// have no IMAP.
#[tokio::test]
async fn a_send_only_mailbox_cannot_log_in_to_imap() {
    let server = start(true).await;
    let mut client = server.client().await;
    let (_, done) = client.run("LOGIN sender@example.com secret").await;
    assert_eq!(done, "NO [AUTHENTICATIONFAILED] Authentication failed.");
    let (_, done) = client
        .run("AUTHENTICATE PLAIN AHNlbmRlckBleGFtcGxlLmNvbQBzZWNyZXQ=")
        .await;
    assert_eq!(done, "NO [AUTHENTICATIONFAILED] Authentication failed.");
}

/// A log writer into a shared buffer.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

thread_local! {
    static THREAD_LOG: std::cell::RefCell<Option<LogBuffer>> = const { std::cell::RefCell::new(None) };
}

/// Writes into the calling thread's capture buffer, if it has one.
struct ThreadLog;

impl std::io::Write for ThreadLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        THREAD_LOG.with(|log| {
            if let Some(log) = log.borrow_mut().as_mut() {
                log.write_all(bytes)?;
            }
            Ok(bytes.len())
        })
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures what this thread logs (a test's runtime runs the server's tasks on its thread).
/// One global subscriber for the test binary: a per-thread (scoped) subscriber misses events
/// whose call sites another test thread registered at the same time.
fn capture_logs() -> LogBuffer {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| ThreadLog)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    let log = LogBuffer::default();
    THREAD_LOG.with(|current| *current.borrow_mut() = Some(log.clone()));
    log
}

/// A user name with a newline and an ESC, sent as a literal, cannot forge a log line (which a
/// fail2ban filter would take as another address's failure): it is logged escaped, in one
/// line. That line is the one fail2ban's filter matches, with the real client address.
#[tokio::test]
async fn client_strings_are_escaped_in_the_log_and_fail2ban_matches_the_real_address() {
    let log = capture_logs();
    let server = start(true).await;
    let mut client = server.client().await;
    let forged = "evil\n2026-12-02T03:40:00.000000Z  INFO mailstead_auth: auth failed: \
                  service=imap rip=203.0.113.9 user=\"admin\" reason=wrong_password\x1b[0m";
    client
        .send(format!("a1 LOGIN {{{}}}\r\n", forged.len()).as_bytes())
        .await;
    let ready = client.line().await;
    assert!(ready.starts_with("+ "), "{ready}");
    client.send(format!("{forged} secret\r\n").as_bytes()).await;
    let (_, done) = client.until_tagged("a1").await;
    assert_eq!(done, "NO [AUTHENTICATIONFAILED] Authentication failed.");

    let text = log.text();
    assert!(!text.contains('\x1b'), "{text}");
    let failures: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("auth failed"))
        .collect();
    assert_eq!(failures.len(), 1, "log: {text:?}");
    assert!(
        failures[0].contains(
            "auth failed: service=imap rip=127.0.0.1 user=\"evil\\n2026-12-02T03:40:00.000000Z  \
             INFO mailstead_auth: auth failed: service=imap rip=203.0.113.9 \
             user=\\\"admin\\\" reason=wrong_password\\x1b[0m\" reason=unknown_user"
        ),
        "{text}"
    );

    // The filter shipped for fail2ban finds exactly this failure, from 127.0.0.1.
    let filter = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../dist/fail2ban/filter.d/mailstead.conf")
        .canonicalize()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("mailstead.log");
    std::fs::write(&log_file, &text).unwrap();
    let output = match std::process::Command::new("fail2ban-regex")
        .arg("--print-all-matched")
        .arg(&log_file)
        .arg(&filter)
        .output()
    {
        Ok(output) => output,
        Err(err) => panic!("cannot run fail2ban-regex ({err}): install Debian package fail2ban"),
    };
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}");
    let total = text.lines().count();
    assert!(
        report.contains(&format!("Lines: {total} lines, 0 ignored, 1 matched")),
        "{report}"
    );
    assert!(!report.contains("203.0.113.9  "), "{report}");
}

/// Shutdown does not wait for a login: one waiting out a failure's delay (here an hour) ends
/// with the session, and so would one queued for a hashing thread.
#[tokio::test]
async fn shutdown_does_not_wait_for_a_delayed_login() {
    let mut server = start_with_auth(
        true,
        AuthOptions {
            failure_delay: Duration::from_secs(3600),
            max_failure_delay: Duration::from_secs(3600),
            ..AuthOptions::default()
        },
    )
    .await;
    let mut client = server.client().await;
    client.send(b"a1 LOGIN alice@example.com wrong\r\n").await;
    // The password has been checked: the login is now in (or entering) its delay.
    while server.auth.verifications() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(server.stop.take());
    let (untagged, done) = client.until_tagged("a1").await;
    assert_eq!(untagged, ["* BYE Server shutting down."]);
    assert_eq!(done, "NO [UNAVAILABLE] Server shutting down.");
}

// ---- Hardening (store): folder names the Maildir cannot hold get a clean NO [CANNOT] ----

#[tokio::test]
async fn folder_names_that_collide_or_overflow_are_refused_with_cannot() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let deep = (0..21)
        .map(|n| format!("L{n}"))
        .collect::<Vec<_>>()
        .join("/");
    let long = "x".repeat(300);
    let over_long = "y".repeat(1000);
    for (name, reason) in [
        ("dovecot-uidlist.lock", "kept for the server's files"),
        ("Work/dovecot-keywords", "kept for the server's files"),
        ("maildirsize", "Maildir's own files"),
        ("tmp", "Maildir's own directories"),
        ("Archive/x.lock", "lock files"),
        (deep.as_str(), "20 hierarchy levels"),
        (long.as_str(), "longer than 255 bytes on disk"),
        (over_long.as_str(), "longer than 255 bytes on disk"),
    ] {
        let (_, done) = client.run(&format!("CREATE \"{name}\"")).await;
        assert!(
            done.starts_with("NO [CANNOT] Invalid mailbox name:") && done.contains(reason),
            "{}: {done}",
            &name[..name.len().min(40)]
        );
        let (_, done) = client.run(&format!("RENAME Archive \"{name}\"")).await;
        assert!(done.starts_with("NO [CANNOT]"), "{done}");
    }
    // Deliveries and APPENDs go on as before.
    let mail = message("after", "still works");
    let (_, done) = client
        .run(&format!("APPEND INBOX {{{}+}}\r\n{mail}", mail.len()))
        .await;
    assert!(done.starts_with("OK [APPENDUID"), "{done}");
    let (_, done) = client.run("SELECT INBOX").await;
    assert!(done.starts_with("OK"), "{done}");
}

/// A webmail in `[auth] trusted_networks` forwards each user's address in ID
/// (`x-originating-ip`, as Dovecot's login_trusted_networks takes it): the penalty counts that
/// address, not the webmail's, so one user's attacker is throttled and other users are not.
/// From an untrusted peer the field is ignored.
#[tokio::test]
async fn a_trusted_webmail_forwards_its_users_addresses_in_id() {
    let server = start_with_auth(
        true,
        AuthOptions {
            trusted_networks: vec!["127.0.0.5".parse().unwrap()],
            ..quick_penalty()
        },
    )
    .await;
    let webmail = [127, 0, 0, 5];
    let forwarding =
        |address: &str| format!("ID (\"name\" \"webmail\" \"x-originating-ip\" \"{address}\")");
    let mut answers = Vec::new();
    for round in 0..4 {
        let mut client = server.client_from(webmail).await;
        let (_, done) = client.run(&forwarding("203.0.113.7")).await;
        assert!(done.starts_with("OK"), "{done}");
        for n in 0..3 {
            let (_, done) = client
                .run(&format!("LOGIN ghost{round}{n}@example.com wrong"))
                .await;
            answers.push(done);
        }
    }
    assert!(
        answers[10].starts_with("NO [UNAVAILABLE]"),
        "the forwarded address is blocked after 10 failures: {answers:?}"
    );
    let mut attacker = server.client_from(webmail).await;
    attacker.run(&forwarding("203.0.113.7")).await;
    let (_, done) = attacker.run("LOGIN bob@example.com secret").await;
    assert!(done.starts_with("NO [UNAVAILABLE]"), "{done}");
    // Another user of the same webmail is not affected.
    let mut user = server.client_from(webmail).await;
    user.run(&forwarding("198.51.100.20")).await;
    let (_, done) = user.run("LOGIN bob@example.com secret").await;
    assert!(done.starts_with("OK [CAPABILITY"), "{done}");
    // An untrusted client cannot borrow (or escape to) another address.
    let mut stranger = server.client_from([127, 0, 0, 6]).await;
    stranger.run(&forwarding("203.0.113.7")).await;
    let (_, done) = stranger.run("LOGIN alice@example.com secret").await;
    assert!(done.starts_with("OK [CAPABILITY"), "{done}");
}

#[tokio::test]
async fn recent_goes_to_the_first_selecting_session_and_status_and_examine_do_not_claim() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "1")).await;
    server.deliver("alice", &message("two", "2")).await;
    let mut watcher = server.logged_in("alice").await;
    let (untagged, _) = watcher.run("STATUS INBOX (MESSAGES RECENT)").await;
    assert_eq!(untagged, vec!["* STATUS INBOX (MESSAGES 2 RECENT 2)"]);

    let mut reader = server.logged_in("alice").await;
    let (untagged, _) = reader.run("EXAMINE INBOX").await;
    assert!(untagged.contains(&"* 2 RECENT".to_owned()), "{untagged:?}");
    let (untagged, _) = reader.run("FETCH 1 (FLAGS)").await;
    assert_eq!(untagged, vec!["* 1 FETCH (FLAGS (\\Recent))"]);

    let mut first = server.logged_in("alice").await;
    let (untagged, _) = first.run("SELECT INBOX").await;
    assert!(untagged.contains(&"* 2 RECENT".to_owned()), "{untagged:?}");
    let (untagged, _) = watcher.run("STATUS INBOX (RECENT)").await;
    assert_eq!(untagged, vec!["* STATUS INBOX (RECENT 0)"]);
    let (untagged, _) = first.run("STATUS INBOX (RECENT)").await;
    assert_eq!(
        untagged,
        vec!["* STATUS INBOX (RECENT 2)"],
        "its own selected folder: the ones it holds"
    );

    let mut second = server.logged_in("alice").await;
    let (untagged, _) = second.run("SELECT INBOX").await;
    assert!(untagged.contains(&"* 0 RECENT".to_owned()), "{untagged:?}");
    let (_, done) = first.run("LOGOUT").await;
    assert_eq!(done, "OK Logout completed.");
    let (untagged, _) = second.run("SELECT INBOX").await;
    assert!(untagged.contains(&"* 0 RECENT".to_owned()), "{untagged:?}");
}

#[tokio::test]
async fn logout_sends_nothing_after_bye() {
    let server = start(true).await;
    server.deliver("bob", &message("one", "1")).await;
    server.deliver("bob", &message("two", "2")).await;
    let mut first = server.logged_in("bob").await;
    let mut second = server.logged_in("bob").await;
    first.run("SELECT INBOX").await;
    second.run("SELECT INBOX").await;
    first.run("STORE 1 +FLAGS.SILENT (\\Seen)").await;
    first.run("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    first.run("EXPUNGE").await;
    let (untagged, done) = second.run("LOGOUT").await;
    assert_eq!(done, "OK Logout completed.");
    assert_eq!(
        untagged.last().map(String::as_str),
        Some("* BYE Logging out.")
    );
}

#[tokio::test]
async fn idle_sees_a_message_another_process_dropped_into_new() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    client.send(b"i1 IDLE\r\n").await;
    assert_eq!(client.line().await.trim_end(), "+ idling");
    // Written the way any MDA writes Maildir, with no word to this process.
    let maildir = server.maildir("alice").await;
    let name = "1780000000.M1P1.other,S=18,W=21";
    std::fs::write(maildir.join("tmp").join(name), "Subject: x\n\nhello\n").unwrap();
    std::fs::rename(
        maildir.join("tmp").join(name),
        maildir.join("new").join(name),
    )
    .unwrap();
    // Within the client's 10 s read bound, far under the periodic check's 30 s.
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l == "* 1 EXISTS") {
        lines.push(client.line().await.trim_end().to_owned());
    }
    client.send(b"DONE\r\n").await;
    let (_, done) = client.until_tagged("i1").await;
    assert_eq!(done, "OK IDLE terminated.");
}

/// A folder as a migrated tree has it: only the deeper level on disk (`.Work.Projects` in
/// Maildir++, `Work/Projects/` in the fs layout, without `Work/cur`).
async fn make_migrated_folder(server: &Server, user: &str, levels: &[&str]) {
    let location = server
        .directory
        .mailbox_location(&format!("{user}@example.com"))
        .await
        .unwrap()
        .unwrap();
    let dir = match location.layout {
        mailstead_directory::model::MaildirLayout::MaildirPlusPlus => {
            location.maildir.join(format!(".{}", levels.join(".")))
        }
        mailstead_directory::model::MaildirLayout::Fs => location.maildir.join(levels.join("/")),
    };
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("maildirfolder"), b"").unwrap();
}

#[tokio::test]
async fn list_and_lsub_percent_show_noselect_parents_of_deeper_names() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    make_migrated_folder(&server, "alice", &["Work", "Projects"]).await;
    let (untagged, done) = client.run("LIST \"\" %").await;
    assert_eq!(done, "OK List completed.");
    assert!(
        untagged.contains(&"* LIST (\\Noselect \\HasChildren) \"/\" Work".to_owned()),
        "{untagged:?}"
    );
    assert!(
        !untagged.iter().any(|l| l.ends_with(" Work/Projects")),
        "{untagged:?}"
    );
    let (untagged, _) = client.run("LIST \"\" Work/%").await;
    assert_eq!(
        untagged,
        vec!["* LIST (\\HasNoChildren) \"/\" Work/Projects"]
    );
    let (untagged, _) = client.run("LIST \"\" *").await;
    assert!(
        untagged.contains(&"* LIST (\\Noselect \\HasChildren) \"/\" Work".to_owned()),
        "{untagged:?}"
    );

    // RFC 3501 6.3.9: LSUB % names the unsubscribed parent of a subscribed child \Noselect.
    client.run("CREATE a/b").await;
    client.run("SUBSCRIBE a/b").await;
    client.run("SUBSCRIBE Work/Projects").await;
    let (untagged, done) = client.run("LSUB \"\" %").await;
    assert_eq!(done, "OK Lsub completed.");
    for expected in [
        "* LSUB (\\Noselect) \"/\" a",
        "* LSUB (\\Noselect) \"/\" Work",
    ] {
        assert!(
            untagged.contains(&expected.to_owned()),
            "{expected} not in {untagged:?}"
        );
    }
    assert!(
        !untagged.iter().any(|l| l.ends_with(" a/b")),
        "{untagged:?}"
    );
    // A subscribed parent is listed as it is, once.
    client.run("SUBSCRIBE a").await;
    let (untagged, _) = client.run("LSUB \"\" %").await;
    assert_eq!(
        untagged.iter().filter(|l| l.ends_with("\"/\" a")).count(),
        1,
        "{untagged:?}"
    );
    assert!(
        untagged.contains(&"* LSUB () \"/\" a".to_owned()),
        "{untagged:?}"
    );
}

#[tokio::test]
async fn recursivematch_returns_childinfo_for_parents_of_subscribed_children() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    client.run("CREATE a/b").await;
    client.run("CREATE c/d").await;
    client.run("SUBSCRIBE a/b").await;
    let (untagged, done) = client
        .run("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"")
        .await;
    assert_eq!(done, "OK List completed.");
    let line = untagged
        .iter()
        .find(|l| l.contains("\"/\" a "))
        .unwrap_or_else(|| panic!("no line for a in {untagged:?}"));
    assert!(
        line.ends_with("\"/\" a (\"CHILDINFO\" (\"SUBSCRIBED\"))"),
        "{line}"
    );
    assert!(!line.contains("\\Subscribed"), "{line}");
    assert!(
        !untagged.iter().any(|l| l.contains("\"/\" c")),
        "c has no subscribed child: {untagged:?}"
    );
    // Without RECURSIVEMATCH only subscribed names match.
    let (untagged, _) = client.run("LIST (SUBSCRIBED) \"\" \"%\"").await;
    assert!(
        !untagged.iter().any(|l| l.contains("\"/\" a")),
        "{untagged:?}"
    );
}

#[tokio::test]
async fn the_first_command_enabling_condstore_reports_highestmodseq() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "1")).await;
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    let (untagged, done) = client.run("FETCH 1 (MODSEQ)").await;
    assert_eq!(done, "OK Fetch completed.");
    assert!(
        untagged[0].starts_with("* OK [HIGHESTMODSEQ "),
        "{untagged:?}"
    );
    assert!(
        untagged[1].starts_with("* 1 FETCH (MODSEQ ("),
        "{untagged:?}"
    );
    // Only the first one.
    let (untagged, _) = client.run("FETCH 1 (MODSEQ)").await;
    assert_eq!(untagged.len(), 1, "{untagged:?}");

    let mut other = server.logged_in("alice").await;
    other.run("SELECT INBOX").await;
    let (untagged, _) = other.run("ENABLE CONDSTORE").await;
    assert!(
        untagged
            .iter()
            .any(|l| l.starts_with("* OK [HIGHESTMODSEQ ")),
        "{untagged:?}"
    );
}

/// The modseq of each message, by sequence number.
async fn modseqs(client: &mut Client<TcpStream>) -> Vec<u64> {
    let (untagged, _) = client.run("FETCH 1:* (MODSEQ)").await;
    untagged
        .iter()
        .filter_map(|l| l.split("MODSEQ (").nth(1))
        .map(|rest| rest.split(')').next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn esearch_min_and_max_report_the_modseq_of_the_returned_message() {
    let server = start(true).await;
    for subject in ["one", "two", "three"] {
        server.deliver("alice", &message(subject, "x")).await;
    }
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    client.run("STORE 2 +FLAGS.SILENT (\\Flagged)").await;
    let modseq = modseqs(&mut client).await;
    assert!(modseq[1] > modseq[0] && modseq[1] > modseq[2], "{modseq:?}");
    // The ESEARCH line after its tag.
    let result = |untagged: Vec<String>| -> Vec<String> {
        untagged
            .iter()
            .map(|l| l.split(") ").skip(1).collect::<Vec<_>>().join(") "))
            .collect()
    };
    let (untagged, _) = client.run("SEARCH RETURN (MIN) MODSEQ 1").await;
    assert_eq!(
        result(untagged),
        vec![format!("MIN 1 MODSEQ {}", modseq[0])]
    );
    let (untagged, _) = client.run("SEARCH RETURN (MAX) MODSEQ 1").await;
    assert_eq!(
        result(untagged),
        vec![format!("MAX 3 MODSEQ {}", modseq[2])]
    );
    let (untagged, _) = client.run("SEARCH RETURN (MIN MAX) MODSEQ 1").await;
    assert_eq!(
        result(untagged),
        vec![format!("MIN 1 MAX 3 MODSEQ {}", modseq[0].max(modseq[2]))]
    );
    let (untagged, _) = client.run("SEARCH RETURN (COUNT) MODSEQ 1").await;
    assert_eq!(
        result(untagged),
        vec![format!("COUNT 3 MODSEQ {}", modseq[1])]
    );
}

#[tokio::test]
async fn binary_keeps_bare_lf_of_binary_content() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    // A file kept with CRLF line ends (Dovecot's mail_save_crlf), so a bare LF is the
    // content's own.
    let text = "From: a@example.org\r\nSubject: bin\r\nMIME-Version: 1.0\r\n\
                Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\
                \r\nline1\nline2\r\nend\r\n";
    let cur = server.maildir("alice").await.join("cur");
    std::fs::write(cur.join("1700000000.M1P1.imap.test:2,"), text).unwrap();
    client.run("SELECT INBOX").await;
    let (untagged, done) = client.run("FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])").await;
    assert_eq!(done, "OK Fetch completed.");
    assert_eq!(
        untagged,
        vec!["* 1 FETCH (BINARY.SIZE[1] 18 BINARY[1] {18}\r\nline1\nline2\r\nend\r\n)"]
    );
    // BODY[] is the message in CRLF form, as ever.
    let (untagged, _) = client.run("FETCH 1 (BODY.PEEK[TEXT])").await;
    assert_eq!(
        untagged,
        vec!["* 1 FETCH (BODY[TEXT] {19}\r\nline1\r\nline2\r\nend\r\n)"]
    );
}

#[tokio::test]
async fn search_from_to_cc_match_the_parsed_address() {
    let server = start(true).await;
    let text = "From: <user-from (comment)@ (comment) domain.org>\r\n\
                To: Someone <user-to (x)@ (y) domain.org>\r\n\
                Cc: (z) user-cc@domain.org (w)\r\nSubject: addresses\r\n\r\nbody\r\n";
    server.deliver("alice", text).await;
    server.deliver("alice", &message("other", "x")).await;
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    for (command, expected) in [
        ("SEARCH FROM user-from@domain.org", "* SEARCH 1"),
        ("SEARCH TO user-to@domain.org", "* SEARCH 1"),
        ("SEARCH CC user-cc@domain.org", "* SEARCH 1"),
        ("SEARCH FROM \"(comment)\"", "* SEARCH 1"),
        ("SEARCH FROM carol@example.org", "* SEARCH 2"),
        ("SEARCH TO user-from@domain.org", "* SEARCH"),
    ] {
        let (untagged, _) = client.run(command).await;
        assert_eq!(untagged, vec![expected], "{command}");
        // Again, answered from the folder's cache.
        let (untagged, _) = client.run(command).await;
        assert_eq!(untagged, vec![expected], "{command} (cached)");
    }
}

#[tokio::test]
async fn search_charset_converts_latin1_and_refuses_unknown_charsets() {
    let server = start(true).await;
    server
        .deliver("alice", &message("=?ISO-8859-1?Q?caf=E9?=", "x"))
        .await;
    server.deliver("alice", &message("cafe", "x")).await;
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    client
        .send(b"s1 SEARCH CHARSET ISO-8859-1 SUBJECT {4+}\r\ncaf\xe9\r\n")
        .await;
    let (untagged, done) = client.until_tagged("s1").await;
    assert_eq!(done, "OK Search completed.");
    assert_eq!(untagged, vec!["* SEARCH 1"]);
    let (untagged, _) = client.run("SEARCH CHARSET windows-1252 SUBJECT cafe").await;
    assert_eq!(untagged, vec!["* SEARCH 2"]);
    let (untagged, done) = client.run("SEARCH CHARSET X-NO-SUCH SUBJECT cafe").await;
    assert!(untagged.is_empty(), "{untagged:?}");
    assert!(done.starts_with("NO [BADCHARSET (UTF-8 "), "{done}");
}

#[tokio::test]
async fn a_large_append_is_taken_up_to_appendlimit_and_refused_above_it() {
    let limit = 31 * 1024 * 1024;
    let server = start_with(true, |limits| limits.max_literal = limit).await;
    let mut client = server.logged_in("alice").await;
    let (untagged, _) = client.run("CAPABILITY").await;
    assert!(
        untagged[0].contains(&format!(" APPENDLIMIT={limit}")),
        "{untagged:?}"
    );
    // 30 MB of base64-like lines: more than SMTP's message size limit.
    let line = format!("{}\r\n", "QUJDRA".repeat(12));
    let body = line.repeat(30 * 1024 * 1024 / line.len());
    let text = message("large", &body);
    client
        .send(format!("a APPEND INBOX {{{}+}}\r\n", text.len()).as_bytes())
        .await;
    client.send(text.as_bytes()).await;
    client.send(b"\r\n").await;
    let (_, done) = client.until_tagged("a").await;
    assert!(done.starts_with("OK [APPENDUID "), "{done}");
    client.run("SELECT INBOX").await;
    let (untagged, _) = client.run("FETCH 1 (RFC822.SIZE)").await;
    assert_eq!(
        untagged,
        vec![format!("* 1 FETCH (RFC822.SIZE {})", text.len())]
    );

    // Synchronizing: refused before a byte of it is sent.
    let (untagged, done) = client.run(&format!("APPEND INBOX {{{}}}", limit + 1)).await;
    assert!(untagged.is_empty(), "{untagged:?}");
    assert!(done.starts_with("NO [TOOBIG]"), "{done}");
    // Non-synchronizing: its bytes are dropped, the command refused, the connection goes on.
    let big = vec![b'x'; limit + 1];
    client
        .send(format!("b APPEND INBOX {{{}+}}\r\n", big.len()).as_bytes())
        .await;
    client.send(&big).await;
    client.send(b"\r\n").await;
    let (_, done) = client.until_tagged("b").await;
    assert!(done.starts_with("NO [TOOBIG]"), "{done}");
    let (_, done) = client.run("NOOP").await;
    assert!(done.starts_with("OK"), "{done}");
    let (untagged, _) = client.run("STATUS INBOX (MESSAGES)").await;
    assert_eq!(untagged, vec!["* STATUS INBOX (MESSAGES 1)"]);
}

/// 30 MB of base64-like lines, as a message.
fn thirty_megabytes() -> String {
    let line = format!("{}\r\n", "QUJDRA".repeat(12));
    message("large", &line.repeat(30 * 1024 * 1024 / line.len()))
}

#[tokio::test]
async fn a_large_append_streams_to_disk_with_bounded_memory() {
    let server = start_with(true, |limits| limits.max_literal = 31 * 1024 * 1024).await;
    let inbox = server.maildir("alice").await;
    let mut client = server.logged_in("alice").await;
    let text = thirty_megabytes();
    // Synchronizing, with flags and a date: the continuation comes, then the bytes stream.
    client
        .send(
            format!(
                "a APPEND INBOX (\\Seen $Work) \"21-Nov-2026 18:00:00 +0000\" {{{}}}\r\n",
                text.len()
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(client.line().await, "+ Ready for literal data\r\n");
    for chunk in text.as_bytes().chunks(1 << 20) {
        client.send(chunk).await;
    }
    client.send(b"\r\n").await;
    let (_, done) = client.until_tagged("a").await;
    assert!(done.starts_with("OK [APPENDUID "), "{done}");
    // Non-synchronizing, sent with its command in one write.
    let mut command = format!("b APPEND INBOX {{{}+}}\r\n", text.len()).into_bytes();
    command.extend_from_slice(text.as_bytes());
    command.extend_from_slice(b"\r\n");
    client.send(&command).await;
    let (_, done) = client.until_tagged("b").await;
    assert!(done.starts_with("OK [APPENDUID "), "{done}");

    let largest = server.ctx.largest_input_buffer();
    assert!(largest <= 64 * 1024, "an input buffer held {largest} bytes");
    let stored = text.replace("\r\n", "\n");
    let files = files_in(&inbox.join("cur"));
    assert_eq!(files.len(), 2, "{files:?}");
    for file in &files {
        assert!(
            std::fs::read(file).unwrap() == stored.as_bytes(),
            "{file:?}"
        );
    }
    let flagged = files
        .iter()
        .find(|file| file.to_string_lossy().contains(":2,S"))
        .expect("the first message has its flags");
    let mtime = std::fs::metadata(flagged).unwrap().modified().unwrap();
    let date = std::time::UNIX_EPOCH + Duration::from_secs(1_795_284_000);
    assert_eq!(mtime, date, "the internal date is the one given");
    assert!(
        server.spool_files().is_empty(),
        "{:?}",
        server.spool_files()
    );
    assert!(files_in(&inbox.join("tmp")).is_empty());
    client.run("SELECT INBOX").await;
    let (untagged, _) = client.run("FETCH 1:2 (RFC822.SIZE FLAGS)").await;
    assert_eq!(
        untagged,
        vec![
            format!(
                "* 1 FETCH (RFC822.SIZE {} FLAGS (\\Seen \\Recent $Work))",
                text.len()
            ),
            format!("* 2 FETCH (RFC822.SIZE {} FLAGS (\\Recent))", text.len()),
        ]
    );
}

#[tokio::test]
async fn a_streamed_append_refused_leaves_nothing_behind() {
    let server = start_with(true, |limits| limits.max_literal = 1024 * 1024).await;
    let inbox = server.maildir("small").await;
    let mut client = server.logged_in("small").await;
    let text = message("big", &"x".repeat(200_000));
    // Over quota: the message is read, spooled, and refused under the quota lock.
    client
        .send(format!("a APPEND INBOX {{{}}}\r\n", text.len()).as_bytes())
        .await;
    assert_eq!(client.line().await, "+ Ready for literal data\r\n");
    client.send(text.as_bytes()).await;
    client.send(b"\r\n").await;
    let (_, done) = client.until_tagged("a").await;
    assert_eq!(done, "NO [OVERQUOTA] Quota exceeded.");
    // No such folder: a synchronizing literal is refused before its continuation, a
    // non-synchronizing one is dropped.
    let (_, done) = client
        .run(&format!("APPEND Nowhere {{{}}}", text.len()))
        .await;
    assert_eq!(done, "NO [TRYCREATE] Mailbox doesn't exist.");
    let mut command = format!("c APPEND Nowhere {{{}+}}\r\n", text.len()).into_bytes();
    command.extend_from_slice(text.as_bytes());
    command.extend_from_slice(b"\r\n");
    client.send(&command).await;
    let (_, done) = client.until_tagged("c").await;
    assert_eq!(done, "NO [TRYCREATE] Mailbox doesn't exist.");
    // Something after the literal: refused, nothing stored.
    command = format!("d APPEND INBOX {{{}+}}\r\n", text.len()).into_bytes();
    command.extend_from_slice(text.as_bytes());
    command.extend_from_slice(b" extra\r\n");
    client.send(&command).await;
    let (_, done) = client.until_tagged("d").await;
    // (MULTIAPPEND reads it as the next message's flags, which need a literal.)
    assert_eq!(done, "BAD Missing message literal");
    let (_, done) = client.run("NOOP").await;
    assert_eq!(done, "OK NOOP completed.");
    for sub in ["tmp", "cur", "new"] {
        assert!(files_in(&inbox.join(sub)).is_empty(), "{sub}");
    }
    assert!(
        server.spool_files().is_empty(),
        "{:?}",
        server.spool_files()
    );

    // The connection drops part of the way: the spool file goes, nothing reaches the folder.
    let mut client = server.logged_in("alice").await;
    let inbox = server.maildir("alice").await;
    client
        .send(format!("e APPEND INBOX {{{}+}}\r\n", text.len()).as_bytes())
        .await;
    client.send(&text.as_bytes()[..150_000]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.spool_files().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        server.spool_files().len(),
        1,
        "the message is being spooled"
    );
    drop(client);
    while !server.spool_files().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        server.spool_files().is_empty(),
        "{:?}",
        server.spool_files()
    );
    for sub in ["tmp", "cur", "new"] {
        assert!(files_in(&inbox.join(sub)).is_empty(), "{sub}");
    }
}

#[tokio::test]
async fn partials_of_a_large_message_are_slices_of_the_whole() {
    let server = start(true).await;
    let body: String = (0..40_000)
        .map(|n| format!("line {n} of a message long enough to need several reads\r\n"))
        .collect();
    let text = message("large", &body);
    server.deliver("alice", &text).await;
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    let (untagged, _) = client.run("FETCH 1 (RFC822.SIZE BODY.PEEK[])").await;
    let whole = untagged[0]
        .split_once("BODY[] {")
        .and_then(|(_, rest)| rest.split_once("}\r\n"))
        .map(|(_, literal)| literal.strip_suffix(')').unwrap().to_owned())
        .unwrap();
    assert!(
        whole.ends_with(&text),
        "the delivered message is served as sent"
    );
    assert!(
        untagged[0].starts_with(&format!("* 1 FETCH (RFC822.SIZE {} ", whole.len())),
        "{}",
        &untagged[0][..60]
    );
    for (offset, count) in [(0, 1024), (1_000_001, 70_000), (whole.len() - 10, 1024)] {
        let (untagged, _) = client
            .run(&format!("FETCH 1 (BODY.PEEK[]<{offset}.{count}>)"))
            .await;
        let end = (offset + count).min(whole.len());
        assert_eq!(
            untagged,
            vec![format!(
                "* 1 FETCH (BODY[]<{offset}> {{{}}}\r\n{})",
                end - offset,
                &whole[offset..end]
            )],
            "<{offset}.{count}>"
        );
    }
    let text_start = whole.find("\r\n\r\n").unwrap() + 4;
    let (untagged, _) = client
        .run("FETCH 1 (BODY.PEEK[TEXT]<100000.300> BODY.PEEK[TEXT]<0.10>)")
        .await;
    assert_eq!(
        untagged,
        vec![format!(
            "* 1 FETCH (BODY[TEXT]<100000> {{300}}\r\n{} BODY[TEXT]<0> {{10}}\r\n{})",
            &whole[text_start + 100_000..text_start + 100_300],
            &whole[text_start..text_start + 10]
        )]
    );
    let (untagged, _) = client
        .run("FETCH 1 (RFC822 BINARY.PEEK[]<5.7> FLAGS)")
        .await;
    assert_eq!(
        untagged,
        vec![format!(
            "* 1 FETCH (RFC822 {{{}}}\r\n{whole} BINARY[]<5> {{7}}\r\n{} FLAGS (\\Seen \\Recent))",
            whole.len(),
            &whole[5..12]
        )]
    );
}

/// A file name without `W=` (another MDA's) gives no size: it is counted from the file when
/// FETCH, SEARCH or STATUS needs it, never guessed.
#[tokio::test]
async fn sizes_of_files_without_w_are_counted_when_asked_for() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let cur = server.maildir("alice").await.join("cur");
    // LF line ends, as Dovecot stores: 3 and 5 lines, so 3 and 5 bytes more in CRLF.
    std::fs::write(cur.join("1700000000.M1P1.other:2,"), "Subject: a\n\nbody\n").unwrap();
    std::fs::write(
        cur.join("1700000001.M1P1.other:2,S"),
        "Subject: bb\n\nline 1\nline 2\nline 3\n",
    )
    .unwrap();
    client.run("SELECT INBOX").await;
    let (untagged, _) = client.run("FETCH 1:* (RFC822.SIZE)").await;
    assert_eq!(
        untagged,
        vec!["* 1 FETCH (RFC822.SIZE 20)", "* 2 FETCH (RFC822.SIZE 39)"]
    );
    let (untagged, _) = client.run("SEARCH LARGER 20").await;
    assert_eq!(untagged, vec!["* SEARCH 2"]);
    let (untagged, _) = client.run("SEARCH SMALLER 21").await;
    assert_eq!(untagged, vec!["* SEARCH 1"]);
    let (untagged, _) = client.run("STATUS INBOX (SIZE)").await;
    assert_eq!(untagged, vec!["* STATUS INBOX (SIZE 59)"]);
}

/// A Maildir++ account shows `.` as its hierarchy separator, as Dovecot does by default, in
/// every answer that names folders; `%` stops at it; the folders are Dovecot's on disk.
#[tokio::test]
async fn a_maildir_plus_plus_account_lists_with_the_dot_separator() {
    let server = start(true).await;
    let maildir = server.maildir("dana").await;
    let mut client = server.logged_in("dana").await;
    let (untagged, _) = client.run("NAMESPACE").await;
    assert_eq!(untagged, ["* NAMESPACE ((\"\" \".\")) NIL NIL"]);
    let (untagged, _) = client.run("LIST \"\" \"\"").await;
    assert_eq!(untagged, ["* LIST (\\Noselect) \".\" \"\""]);
    let (_, done) = client.run("CREATE Work.Projects").await;
    assert!(done.ends_with("] Create completed."), "{done}");
    assert!(maildir.join(".Work.Projects").join("cur").is_dir());
    assert!(maildir.join(".Work").join("cur").is_dir());
    make_migrated_folder(&server, "dana", &["Lists", "rust"]).await;

    let (untagged, _) = client.run("LIST \"\" *").await;
    for expected in [
        "* LIST (\\HasChildren) \".\" Work",
        "* LIST (\\HasNoChildren) \".\" Work.Projects",
        "* LIST (\\Noselect \\HasChildren) \".\" Lists",
        "* LIST (\\HasNoChildren) \".\" Lists.rust",
        "* LIST (\\HasNoChildren \\Sent) \".\" Sent",
    ] {
        assert!(
            untagged.contains(&expected.to_owned()),
            "{expected} not in {untagged:?}"
        );
    }
    assert!(!untagged.iter().any(|l| l.contains('/')), "{untagged:?}");
    let (untagged, _) = client.run("LIST \"\" %").await;
    assert!(untagged.contains(&"* LIST (\\HasChildren) \".\" Work".to_owned()));
    assert!(
        !untagged.iter().any(|l| l.ends_with("Work.Projects")),
        "{untagged:?}"
    );
    let (untagged, _) = client.run("LIST Work. %").await;
    assert_eq!(untagged, ["* LIST (\\HasNoChildren) \".\" Work.Projects"]);
    let (untagged, _) = client.run("LIST \"\" Work/%").await;
    assert!(untagged.is_empty(), "{untagged:?}");
    let (untagged, _) = client.run("LIST (SPECIAL-USE) \"\" *").await;
    assert!(untagged.contains(&"* LIST (\\HasNoChildren \\Trash) \".\" Trash".to_owned()));

    let (_, done) = client.run("SUBSCRIBE Work.Projects").await;
    assert_eq!(done, "OK Subscribe completed.");
    let subscriptions = std::fs::read_to_string(maildir.join("subscriptions")).unwrap();
    assert!(
        subscriptions.contains("\nWork\tProjects\n"),
        "{subscriptions:?}"
    );
    let (untagged, _) = client.run("LSUB \"\" Work.*").await;
    assert_eq!(untagged, ["* LSUB () \".\" Work.Projects"]);
    let (untagged, _) = client.run("LSUB \"\" %").await;
    assert!(
        untagged.contains(&"* LSUB (\\Noselect) \".\" Work".to_owned()),
        "{untagged:?}"
    );
    let (untagged, _) = client
        .run("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (CHILDREN)")
        .await;
    assert!(
        untagged.contains(
            &"* LIST (\\HasChildren) \".\" Work (\"CHILDINFO\" (\"SUBSCRIBED\"))".to_owned()
        ),
        "{untagged:?}"
    );
    let (untagged, _) = client
        .run("LIST \"\" Work.* RETURN (SUBSCRIBED STATUS (MESSAGES))")
        .await;
    assert_eq!(
        untagged,
        [
            "* LIST (\\HasNoChildren \\Subscribed) \".\" Work.Projects",
            "* STATUS Work.Projects (MESSAGES 0)",
        ]
    );
    let (_, done) = client.run("UNSUBSCRIBE Work.Projects").await;
    assert_eq!(done, "OK Unsubscribe completed.");
    let (untagged, _) = client.run("LSUB \"\" Work*").await;
    assert!(untagged.is_empty(), "{untagged:?}");
}

/// Every command that takes a folder name reads `.` as the hierarchy of a Maildir++ account,
/// and refuses a `/`, which that layout cannot hold, before it reaches the disk.
#[tokio::test]
async fn a_maildir_plus_plus_account_takes_dotted_names_and_refuses_slashes() {
    let server = start(true).await;
    let maildir = server.maildir("dana").await;
    let mut client = server.logged_in("dana").await;
    client.run("CREATE Work.Projects").await;
    let mail = message("dotted", "into a nested folder");
    let (_, done) = client
        .run(&format!(
            "APPEND Work.Projects {{{}+}}\r\n{mail}",
            mail.len()
        ))
        .await;
    assert!(done.starts_with("OK [APPENDUID"), "{done}");
    let (untagged, _) = client.run("STATUS work.projects (MESSAGES)").await;
    assert!(
        untagged.is_empty(),
        "names other than INBOX are case-sensitive"
    );
    let (untagged, _) = client.run("STATUS Work.Projects (MESSAGES)").await;
    assert_eq!(untagged, ["* STATUS Work.Projects (MESSAGES 1)"]);
    let (untagged, _) = client.run("GETQUOTAROOT Work.Projects").await;
    assert!(
        untagged
            .first()
            .is_some_and(|l| l.starts_with("* QUOTAROOT Work.Projects")),
        "{untagged:?}"
    );
    let (_, done) = client.run("EXAMINE Work.Projects").await;
    assert!(done.starts_with("OK [READ-ONLY]"), "{done}");
    let (_, done) = client.run("SELECT Work.Projects").await;
    assert!(done.starts_with("OK [READ-WRITE]"), "{done}");
    let (_, done) = client.run("COPY 1 Work").await;
    assert!(done.starts_with("OK [COPYUID"), "{done}");
    let (_, done) = client.run("MOVE 1 Archive").await;
    assert!(done.starts_with("OK"), "{done}");
    let (_, done) = client.run("SELECT Work").await;
    assert!(done.starts_with("OK"), "{done}");
    let (untagged, _) = client.run("STATUS Archive (MESSAGES)").await;
    assert_eq!(untagged, ["* STATUS Archive (MESSAGES 1)"]);

    for command in [
        "CREATE a/b",
        "DELETE Work/Projects",
        "RENAME Work a/b",
        "RENAME Work/Projects Other",
        "SUBSCRIBE Work/Projects",
        "UNSUBSCRIBE Work/Projects",
        "STATUS Work/Projects (MESSAGES)",
        "GETQUOTAROOT Work/Projects",
        "COPY 1 Work/Projects",
        "MOVE 1 Work/Projects",
        "APPEND a/b {1+}\r\nx",
        "EXAMINE Work/Projects",
        "SELECT Work/Projects",
    ] {
        let (untagged, done) = client.run(command).await;
        assert_eq!(
            done, "NO [CANNOT] Character not allowed in mailbox name: '/'.",
            "{command}: {untagged:?}"
        );
    }
    assert!(!maildir.join(".a").exists() && !maildir.join(".a.b").exists());

    let (_, done) = client.run("RENAME Work Team").await;
    assert_eq!(done, "OK Rename completed.");
    assert!(maildir.join(".Team.Projects").join("cur").is_dir());
    let (untagged, _) = client.run("LIST \"\" Team*").await;
    assert_eq!(
        untagged,
        [
            "* LIST (\\HasChildren) \".\" Team",
            "* LIST (\\HasNoChildren) \".\" Team.Projects",
        ]
    );
    let (_, done) = client.run("DELETE Team.Projects").await;
    assert_eq!(done, "OK Delete completed.");
    assert!(!maildir.join(".Team.Projects").exists());
    let (_, done) = client.run("CREATE INBOX.Sub").await;
    assert!(done.ends_with("] Create completed."), "{done}");
    assert!(maildir.join(".INBOX.Sub").join("cur").is_dir());

    // The fs layout keeps `/`.
    let mut alice = server.logged_in("alice").await;
    let (untagged, _) = alice.run("NAMESPACE").await;
    assert_eq!(untagged, ["* NAMESPACE ((\"\" \"/\")) NIL NIL"]);
    let (_, done) = alice.run("CREATE Work.2026/Q1").await;
    assert!(done.ends_with("] Create completed."), "{done}");
    let (untagged, _) = alice.run("LIST \"\" Work.2026/%").await;
    assert_eq!(untagged, ["* LIST (\\HasNoChildren) \"/\" Work.2026/Q1"]);
}

/// The `S=` and `W=` of every message file in the INBOX's `cur/` and `new/`, sorted.
fn maildir_sizes(maildir: &std::path::Path) -> Vec<(String, String)> {
    let mut sizes = Vec::new();
    for sub in ["cur", "new"] {
        for entry in std::fs::read_dir(maildir.join(sub)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let field = |key: &str| {
                name.split([',', ':'])
                    .find_map(|part| part.strip_prefix(key))
                    .map(str::to_owned)
                    .unwrap_or_default()
            };
            sizes.push((field("S="), field("W=")));
        }
    }
    sizes.sort();
    sizes
}

/// A message delivered (spooled, then linked into the Maildir) and the same bytes APPENDed
/// get one stored form and one size, whatever CRs they carry: the same `S=`/`W=` in their
/// names, the same RFC822.SIZE, and BODY[] sends exactly that many bytes.
#[tokio::test]
async fn delivery_and_append_agree_on_sizes_of_stray_crs() {
    let server = start(true).await;
    let text = "Subject: cr\r\n\r\na\r\r\nbare\rcr\r\nend\r\n";
    server.deliver("alice", text).await;
    let mut client = server.logged_in("alice").await;
    let (_, done) = client
        .run(&format!("APPEND INBOX {{{}+}}\r\n{text}", text.len()))
        .await;
    assert!(done.starts_with("OK [APPENDUID "), "{done}");
    let sizes = maildir_sizes(&server.maildir("alice").await);
    // `a\r\r\n` is stored `a\r\n`, which is the same three bytes on the wire.
    let stored = "Subject: cr\n\na\r\nbare\rcr\nend\n";
    let served = "Subject: cr\r\n\r\na\r\nbare\rcr\r\nend\r\n";
    let expected = (stored.len().to_string(), served.len().to_string());
    assert_eq!(sizes, vec![expected.clone(), expected], "{sizes:?}");
    client.run("SELECT INBOX").await;
    let (untagged, _) = client
        .run("FETCH 1:2 (RFC822.SIZE BODY.PEEK[] BODY.PEEK[TEXT])")
        .await;
    for (n, line) in untagged.iter().enumerate() {
        assert_eq!(
            line,
            &format!(
                "* {} FETCH (RFC822.SIZE {} BODY[] {{{}}}\r\n{served} BODY[TEXT] {{17}}\r\na\r\nbare\rcr\r\nend\r\n)",
                n + 1,
                served.len(),
                served.len()
            )
        );
    }
}

/// Streamed items of messages small enough to be read once and answered from memory, and
/// of messages just too large for that, streamed from the file: the same bytes, sizes and
/// `~` for a NUL, whole and in partials, and RFC822.SIZE is the length of BODY[].
#[tokio::test]
async fn held_and_streamed_messages_are_answered_alike() {
    const HELD: usize = 256 * 1024;
    let server = start(true).await;
    let mut texts = Vec::new();
    // Stored sizes (LF line ends) of the last three: at the limit, and one byte over.
    for (n, stored_len) in [(0, 300), (1, HELD), (2, HELD + 1)] {
        let mut stored = format!("Subject: m{n}\nX: y\n\nnul\0here\n");
        let line = format!("{}\n", "x".repeat(69));
        while stored.len() + line.len() <= stored_len {
            stored.push_str(&line);
        }
        stored.push_str(&"y".repeat(stored_len - stored.len()));
        let text = stored.replace('\n', "\r\n");
        server.deliver("alice", &text).await;
        texts.push(text);
    }
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    for (n, text) in texts.iter().enumerate() {
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        // BODY[TEXT] sends a NUL as 0x80, which the client shows as U+FFFD.
        let body_sent = body.replace('\0', "\u{FFFD}");
        let (untagged, _) = client
            .run(&format!(
                "FETCH {} (RFC822.SIZE BODY.PEEK[] BINARY.PEEK[] BODY.PEEK[]<30.7> \
                 BINARY.PEEK[]<0.10> BODY.PEEK[TEXT]<3.4> BODY.PEEK[TEXT])",
                n + 1
            ))
            .await;
        let len = text.len();
        assert_eq!(
            untagged,
            vec![format!(
                "* {} FETCH (RFC822.SIZE {len} BODY[] {{{len}}}\r\n{text} BINARY[] ~{{{len}}}\r\n{text} \
                 BODY[]<30> {{7}}\r\n{} BINARY[]<0> {{10}}\r\n{} BODY[TEXT]<3> {{4}}\r\n{} \
                 BODY[TEXT] {{{}}}\r\n{body_sent})",
                n + 1,
                &text[30..37],
                &text[..10],
                "\u{FFFD}her",
                body.len()
            )],
            "message {n}"
        );
    }
}
