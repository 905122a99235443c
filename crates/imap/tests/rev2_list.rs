//! IMAP4rev2 (RFC 9051) mailbox names and lists: the LIST a SELECT sends, Net-Unicode names
//! and OLDNAME, UTF-8 names as quoted strings, LIST's base extensions, STATUS without
//! RECENT, and LITERAL- (RFC 7888); over real sockets and Maildirs. rev1 sessions are
//! checked beside each.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a failure is the test failing.

mod support;
use support::*;

use tokio::net::TcpStream;

async fn rev2_client(server: &Server) -> Client<TcpStream> {
    let mut client = server.logged_in("alice").await;
    let (lines, done) = client.run("ENABLE IMAP4rev2").await;
    assert_eq!(lines, ["* ENABLED IMAP4rev2"]);
    assert!(done.starts_with("OK"), "{done}");
    client
}

fn lists(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter(|line| line.starts_with("* LIST "))
        .map(String::as_str)
        .collect()
}

/// "Café" with a combining acute accent (NFD) and precomposed (NFC).
const CAFE_NFD: &str = "Cafe\u{301}";
const CAFE_NFC: &str = "Caf\u{e9}";

#[tokio::test]
async fn select_and_examine_send_the_mailbox_list_under_rev2_only() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "1")).await;
    let mut client = rev2_client(&server).await;
    let (lines, done) = client.run("SELECT INBOX").await;
    assert!(done.starts_with("OK [READ-WRITE]"), "{done}");
    assert_eq!(lists(&lines), ["* LIST (\\HasNoChildren) \"/\" INBOX"]);
    // INBOX in any case is INBOX: the LIST gives its name, no OLDNAME (the name is the
    // same one, not another form of it).
    let (lines, _) = client.run("EXAMINE inbox").await;
    assert_eq!(lists(&lines), ["* LIST (\\HasNoChildren) \"/\" INBOX"]);
    // Attributes as LIST gives them: children, special use.
    client.run("CREATE Drafts/2026").await;
    let (lines, done) = client.run("SELECT Drafts").await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(
        lists(&lines),
        ["* LIST (\\HasChildren \\Drafts) \"/\" Drafts"]
    );
    // A SELECT that fails sends none.
    let (lines, done) = client.run("SELECT Nowhere").await;
    assert!(done.starts_with("NO"), "{done}");
    assert!(lists(&lines).is_empty(), "{lines:?}");

    // rev1: no LIST in SELECT's answer.
    let mut rev1 = server.logged_in("alice").await;
    let (lines, done) = rev1.run("SELECT INBOX").await;
    assert!(done.starts_with("OK"), "{done}");
    assert!(lists(&lines).is_empty(), "{lines:?}");
}

#[tokio::test]
async fn a_new_name_is_made_nfc_and_oldname_tells_the_client() {
    let server = start(true).await;
    let mut client = rev2_client(&server).await;
    let (lines, done) = client.run(&format!("CREATE \"{CAFE_NFD}\"")).await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(
        lines,
        [format!(
            "* LIST (\\HasNoChildren) \"/\" \"{CAFE_NFC}\" (\"OLDNAME\" (\"{CAFE_NFD}\"))"
        )]
    );
    let maildir = server.maildir("alice").await;
    assert!(maildir.join("Caf&AOk-").is_dir());
    assert!(!maildir.join("Cafe&AwE-").exists());
    // Selected by the form it was given in, it is found, and the LIST names it.
    let (lines, done) = client.run(&format!("SELECT \"{CAFE_NFD}\"")).await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(
        lists(&lines),
        [format!(
            "* LIST (\\HasNoChildren) \"/\" \"{CAFE_NFC}\" (\"OLDNAME\" (\"{CAFE_NFD}\"))"
        )]
    );
    let (lines, _) = client.run(&format!("SELECT \"{CAFE_NFC}\"")).await;
    assert_eq!(
        lists(&lines),
        [format!("* LIST (\\HasNoChildren) \"/\" \"{CAFE_NFC}\"")]
    );
    // RENAME normalizes its new name the same way.
    client.run("UNSELECT").await;
    let (lines, done) = client
        .run(&format!("RENAME \"{CAFE_NFC}\" \"{CAFE_NFD}s\""))
        .await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(
        lines,
        [format!(
            "* LIST (\\HasNoChildren) \"/\" \"{CAFE_NFC}s\" (\"OLDNAME\" (\"{CAFE_NFD}s\"))"
        )]
    );
    assert!(maildir.join("Caf&AOk-s").is_dir());
    // A name already in NFC gets no LIST.
    let (lines, done) = client.run("CREATE \"Entwürfe\"").await;
    assert!(done.starts_with("OK"), "{done}");
    assert!(lines.is_empty(), "{lines:?}");
}

/// A folder another program made in NFD (Dovecot keeps names as clients send them) stays
/// reachable by that name; rev1 sessions get no normalization at all.
#[tokio::test]
async fn existing_names_in_other_forms_stay_reachable_and_rev1_is_untouched() {
    let server = start(true).await;
    let mut rev1 = server.logged_in("alice").await;
    let (lines, done) = rev1.run("CREATE \"Cafe&AwE-\"").await;
    assert!(done.starts_with("OK"), "{done}");
    assert!(lines.is_empty(), "{lines:?}");
    let maildir = server.maildir("alice").await;
    assert!(maildir.join("Cafe&AwE-").is_dir());
    let mut client = rev2_client(&server).await;
    let (lines, done) = client.run(&format!("SELECT \"{CAFE_NFD}\"")).await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(
        lists(&lines),
        [format!("* LIST (\\HasNoChildren) \"/\" \"{CAFE_NFD}\"")]
    );
}

#[tokio::test]
async fn utf8_names_are_quoted_strings_not_literals() {
    let server = start(true).await;
    let mut client = rev2_client(&server).await;
    for name in ["Entwürfe", "日本語", "Entwürfe/alte Sachen"] {
        let (_, done) = client.run(&format!("CREATE \"{name}\"")).await;
        assert!(done.starts_with("OK"), "{name}: {done}");
    }
    client.run("SUBSCRIBE \"日本語\"").await;
    // The raw lines: a literal would end a line with `{n}`.
    let (lines, _) = client.run("LIST \"\" \"*\"").await;
    assert!(
        lines.contains(&"* LIST (\\HasChildren) \"/\" \"Entwürfe\"".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"* LIST (\\HasNoChildren) \"/\" \"Entwürfe/alte Sachen\"".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"* LIST (\\HasNoChildren) \"/\" \"日本語\"".to_owned()),
        "{lines:?}"
    );
    let (lines, _) = client.run("STATUS \"日本語\" (MESSAGES)").await;
    assert_eq!(lines, ["* STATUS \"日本語\" (MESSAGES 0)"]);
    let (lines, _) = client.run("LSUB \"\" \"日*\"").await;
    assert_eq!(lines, ["* LSUB () \"/\" \"日本語\""]);
    let (lines, _) = client
        .run("LIST \"\" \"日本語\" RETURN (STATUS (MESSAGES))")
        .await;
    assert_eq!(
        lines,
        [
            "* LIST (\\HasNoChildren) \"/\" \"日本語\"",
            "* STATUS \"日本語\" (MESSAGES 0)"
        ]
    );
    let (lines, _) = client.run("GETQUOTAROOT \"日本語\"").await;
    assert!(lines[0].starts_with("* QUOTAROOT \"日本語\""), "{lines:?}");

    // UTF8=ACCEPT alone quotes them too; rev1 keeps modified UTF-7 atoms.
    let mut utf8 = server.logged_in("alice").await;
    utf8.run("ENABLE UTF8=ACCEPT").await;
    let (lines, _) = utf8.run("LIST \"\" \"日本語\"").await;
    assert_eq!(lines, ["* LIST (\\HasNoChildren) \"/\" \"日本語\""]);
    let mut rev1 = server.logged_in("alice").await;
    let (lines, _) = rev1.run("LIST \"\" \"&ZeVnLIqe-\"").await;
    assert_eq!(lines, ["* LIST (\\HasNoChildren) \"/\" &ZeVnLIqe-"]);
}

/// RFC 9051 6.3.9 takes LIST-EXTENDED and LIST-STATUS into the base: selection and return
/// options, several patterns, `\Subscribed`, `\NonExistent`, CHILDINFO. LSUB is deprecated,
/// not gone: it still answers (the server speaks rev1 too).
#[tokio::test]
async fn list_extended_is_part_of_the_rev2_base_and_lsub_still_answers() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "1")).await;
    let mut client = rev2_client(&server).await;
    client.run("CREATE Work/Projects").await;
    client.run("SUBSCRIBE Work/Projects").await;
    client.run("SUBSCRIBE Gone").await;
    let (lines, done) = client
        .run("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"W%\" \"Gone\") RETURN (CHILDREN)")
        .await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(
        lines,
        [
            "* LIST (\\NonExistent \\Subscribed) \"/\" Gone",
            "* LIST (\\HasChildren) \"/\" Work (\"CHILDINFO\" (\"SUBSCRIBED\"))"
        ]
    );
    let (lines, _) = client
        .run("LIST \"\" (INBOX Work/Projects) RETURN (SUBSCRIBED STATUS (MESSAGES UIDNEXT))")
        .await;
    assert_eq!(
        lines,
        [
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX",
            "* STATUS INBOX (MESSAGES 1 UIDNEXT 2)",
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" Work/Projects",
            "* STATUS Work/Projects (MESSAGES 0 UIDNEXT 1)"
        ]
    );
    let (lines, done) = client.run("LSUB \"\" \"Work/*\"").await;
    assert!(done.starts_with("OK"), "{done}");
    assert_eq!(lines, ["* LSUB () \"/\" Work/Projects"]);
}

/// IMAP4rev2 has no `\Recent`: STATUS RECENT (gone from its grammar) counts none, as SEARCH
/// RECENT finds none; rev1 counts them.
#[tokio::test]
async fn status_recent_is_zero_under_rev2() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "1")).await;
    let mut client = rev2_client(&server).await;
    let (lines, _) = client.run("STATUS INBOX (MESSAGES RECENT)").await;
    assert_eq!(lines, ["* STATUS INBOX (MESSAGES 1 RECENT 0)"]);
    let (lines, _) = client.run("LIST \"\" INBOX RETURN (STATUS (RECENT))").await;
    assert_eq!(lines[1], "* STATUS INBOX (RECENT 0)");
    let mut rev1 = server.logged_in("alice").await;
    let (lines, _) = rev1.run("STATUS INBOX (MESSAGES RECENT)").await;
    assert_eq!(lines, ["* STATUS INBOX (MESSAGES 1 RECENT 1)"]);
}

/// LITERAL- (RFC 7888, part of IMAP4rev2): a client may send any literal of up to 4096 bytes
/// non-synchronizing without looking at the capabilities, even before login, where only
/// 8 KiB are taken. LITERAL+ is advertised, which covers it.
#[tokio::test]
async fn literal_minus_sized_non_synchronizing_literals_are_taken_before_login() {
    let server = start(true).await;
    let mut client = server.client().await;
    let (lines, _) = client.run("CAPABILITY").await;
    assert!(lines[0].contains(" LITERAL+"), "{lines:?}");
    let password = "x".repeat(4096);
    client
        .send(format!("l1 LOGIN alice@example.com {{4096+}}\r\n{password}\r\n").as_bytes())
        .await;
    let (_, done) = client.until_tagged("l1").await;
    assert!(done.starts_with("NO"), "{done}");
    // The session goes on: the literal was read as one, not as commands.
    let (_, done) = client.run("LOGIN alice@example.com secret").await;
    assert!(done.starts_with("OK"), "{done}");
}

/// RFC 9051 7.1: DELETE of a mailbox with children is refused `[HASCHILDREN]`; rev1 keeps
/// the `[INUSE]` Dovecot gives.
#[tokio::test]
async fn delete_with_children_says_haschildren_under_rev2() {
    let server = start(true).await;
    let mut client = rev2_client(&server).await;
    client.run("CREATE Work/Projects").await;
    let (_, done) = client.run("DELETE Work").await;
    assert!(done.starts_with("NO [HASCHILDREN]"), "{done}");
    let mut rev1 = server.logged_in("alice").await;
    let (_, done) = rev1.run("DELETE Work").await;
    assert!(done.starts_with("NO [INUSE]"), "{done}");
    let (_, done) = client.run("DELETE Work/Projects").await;
    assert!(done.starts_with("OK"), "{done}");
}
