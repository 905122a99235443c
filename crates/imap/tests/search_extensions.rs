//! WITHIN (RFC 5032), SEARCHRES (RFC 5182) and CONTEXT=SEARCH (RFC 5267) over a real socket,
//! against real Maildirs, with the RFCs' examples and a second session changing the folder
//! while the first keeps a search updated.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a failure is the test failing.

mod support;
use support::*;

use tokio::net::TcpStream;

/// The UIDs of `FETCH` responses among `lines`.
fn fetched_uids(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .filter(|line| line.contains(" FETCH ("))
        .map(|line| {
            let rest = &line[line.find("UID ").expect("UID in the FETCH") + 4..];
            let end = rest.find([' ', ')']).unwrap();
            rest[..end].parse().unwrap()
        })
        .collect()
}

/// Appends a message with the INTERNALDATE `date` (a LITERAL+ literal).
async fn append_dated(client: &mut Client<TcpStream>, subject: &str, date: &str) {
    let body = message(subject, "dated");
    let (_, done) = client
        .run(&format!(
            "APPEND INBOX \"{date}\" {{{}+}}\r\n{body}",
            body.len()
        ))
        .await;
    assert!(done.starts_with("OK"), "{done}");
}

#[tokio::test]
async fn the_extensions_are_advertised_after_login() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let (untagged, _) = client.run("CAPABILITY").await;
    for capability in ["WITHIN", "SEARCHRES", "CONTEXT=SEARCH", "ESEARCH"] {
        assert!(
            untagged[0].split(' ').any(|word| word == capability),
            "{capability} in {untagged:?}"
        );
    }
}

#[tokio::test]
async fn within_compares_internal_dates_with_the_clock() {
    let (_server, mut client) = inbox_with(&["new"]).await;
    append_dated(&mut client, "old", "01-Jan-2020 10:00:00 +0000").await;
    let (untagged, _) = client.run("SEARCH OLDER 86400").await;
    assert_eq!(untagged, vec!["* SEARCH 2"]);
    let (untagged, _) = client.run("SEARCH YOUNGER 86400").await;
    assert_eq!(untagged, vec!["* SEARCH 1"]);
    // RFC 5032 3: combined with other keys like any other.
    let (untagged, _) = client.run("UID SEARCH NOT YOUNGER 3600 SUBJECT old").await;
    assert_eq!(untagged, vec!["* SEARCH 2"]);
    let (untagged, _) = client.run("SEARCH OR OLDER 60 YOUNGER 60").await;
    assert_eq!(untagged, vec!["* SEARCH 1 2"]);
    // The interval is a non-zero number.
    let (_, done) = client.run("SEARCH OLDER 0").await;
    assert!(done.starts_with("BAD"), "{done}");
    let (_, done) = client.run("SEARCH YOUNGER soon").await;
    assert!(done.starts_with("BAD"), "{done}");
}

/// RFC 5182 2.2, the first example: SAVE alone answers nothing but the tagged OK, and `$`
/// then names the messages found, in FETCH as anywhere a set goes.
#[tokio::test]
async fn rfc5182_save_then_fetch_dollar() {
    let (_server, mut client) = inbox_with(&["a", "b", "c", "d"]).await;
    client.run("STORE 2,4 +FLAGS (\\Flagged)").await;
    let (untagged, done) = client
        .run("SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"")
        .await;
    assert_eq!(untagged, Vec::<String>::new());
    assert_eq!(done, "OK Search completed.");
    let (untagged, done) = client.run("FETCH $ (UID INTERNALDATE FLAGS)").await;
    assert_eq!(done, "OK Fetch completed.");
    assert_eq!(fetched_uids(&untagged), vec![2, 4]);
    assert!(untagged[0].starts_with("* 2 FETCH (UID 2 "), "{untagged:?}");
    // A saved SEARCH works as UIDs too (RFC 5182 2.1: `$` means messages, not numbers).
    let (untagged, _) = client.run("UID FETCH $ (FLAGS)").await;
    assert_eq!(fetched_uids(&untagged), vec![2, 4]);
}

/// RFC 5182 2.2: `$` combined with other search keys, a pipelined SAVE and use, and the
/// commands that take a set: STORE, COPY, MOVE, UID EXPUNGE.
#[tokio::test]
async fn rfc5182_dollar_in_search_and_every_command_that_takes_a_set() {
    let (_server, mut client) = inbox_with(&["a", "b", "c", "d", "e"]).await;
    client.run("CREATE Archive").await;
    client.run("CREATE Later").await;
    // Pipelined, as clients are allowed to (RFC 5182 2.3): the SAVE runs first.
    client
        .send(b"p1 UID SEARCH RETURN (SAVE) SUBJECT b\r\np2 UID SEARCH OR UID $ SUBJECT d\r\n")
        .await;
    let (untagged, done) = client.until_tagged("p1").await;
    assert!(
        untagged.is_empty() && done.starts_with("OK"),
        "{untagged:?} {done}"
    );
    let (untagged, _) = client.until_tagged("p2").await;
    assert_eq!(untagged, vec!["* SEARCH 2 4"]);

    client.run("SEARCH RETURN (SAVE) 2:4").await;
    let (untagged, _) = client.run("SEARCH $ NOT SUBJECT c").await;
    assert_eq!(untagged, vec!["* SEARCH 2 4"]);
    let (untagged, _) = client.run("UID SEARCH UID $").await;
    assert_eq!(untagged, vec!["* SEARCH 2 3 4"]);

    let (untagged, done) = client.run("STORE $ +FLAGS (\\Answered)").await;
    assert_eq!(done, "OK Store completed.");
    assert_eq!(untagged.len(), 3, "{untagged:?}");
    let (untagged, _) = client.run("SEARCH ANSWERED").await;
    assert_eq!(untagged, vec!["* SEARCH 2 3 4"]);

    let (_, done) = client.run("COPY $ Archive").await;
    assert!(done.starts_with("OK [COPYUID "), "{done}");
    let (untagged, _) = client.run("STATUS Archive (MESSAGES)").await;
    assert_eq!(untagged, vec!["* STATUS Archive (MESSAGES 3)"]);

    // Expunged messages leave `$`: after UID EXPUNGE of one, MOVE takes the other two.
    client.run("UID STORE 3 +FLAGS (\\Deleted)").await;
    client.run("UID SEARCH RETURN (SAVE) DELETED").await;
    let (untagged, done) = client.run("UID EXPUNGE $").await;
    assert_eq!(done, "OK Expunge completed.");
    assert_eq!(untagged, vec!["* 3 EXPUNGE"]);
    client.run("SEARCH RETURN (SAVE) ANSWERED").await;
    let (untagged, done) = client.run("UID MOVE $ Later").await;
    assert!(done.starts_with("OK"), "{done}");
    assert!(
        untagged.iter().any(|l| l.starts_with("* OK [COPYUID ")),
        "{untagged:?}"
    );
    let (untagged, _) = client.run("UID SEARCH ALL").await;
    assert_eq!(untagged, vec!["* SEARCH 1 5"]);
    // The moved messages left the folder, so `$` is empty now.
    let (untagged, done) = client.run("FETCH $ (FLAGS)").await;
    assert_eq!((untagged, done.as_str()), (vec![], "OK Fetch completed."));

    // `$` stands alone.
    let (_, done) = client.run("FETCH 1,$ (FLAGS)").await;
    assert!(done.starts_with("BAD"), "{done}");
    let (_, done) = client.run("FETCH $:2 (FLAGS)").await;
    assert!(done.starts_with("BAD"), "{done}");
}

/// RFC 5182 2.1: `$` is empty before any SAVE and after a SAVE that failed with NO; a SAVE
/// refused with BAD leaves it as it was; SELECT, EXAMINE, UNSELECT and CLOSE reset it.
#[tokio::test]
async fn rfc5182_what_empties_the_saved_result_and_what_does_not() {
    let (_server, mut client) = inbox_with(&["a", "b", "c"]).await;
    let (untagged, done) = client.run("FETCH $ (FLAGS)").await;
    assert_eq!((untagged, done.as_str()), (vec![], "OK Fetch completed."));
    let (untagged, _) = client.run("SEARCH $").await;
    assert_eq!(untagged, vec!["* SEARCH"]);

    client.run("SEARCH RETURN (SAVE) 1:2").await;
    // A syntax error is BAD: `$` stays.
    let (_, done) = client.run("SEARCH RETURN (SAVE) NOSUCHKEY").await;
    assert!(done.starts_with("BAD"), "{done}");
    let (untagged, _) = client.run("SEARCH $").await;
    assert_eq!(untagged, vec!["* SEARCH 1 2"]);
    // A successful search without SAVE leaves it too.
    client.run("SEARCH 3").await;
    let (untagged, _) = client.run("SEARCH $").await;
    assert_eq!(untagged, vec!["* SEARCH 1 2"]);
    // RFC 5182 2.2, the BADCHARSET example: the NO empties it.
    let (_, done) = client
        .run("SEARCH RETURN (SAVE) CHARSET X-NO-SUCH-CHARSET SUBJECT a")
        .await;
    assert!(done.starts_with("NO [BADCHARSET"), "{done}");
    let (untagged, _) = client.run("SEARCH $").await;
    assert_eq!(untagged, vec!["* SEARCH"]);

    // (After UNSELECT and CLOSE no `$` can be used until a SELECT, which resets it anyway.)
    for reset in ["SELECT INBOX", "EXAMINE INBOX"] {
        client.run("SEARCH RETURN (SAVE) ALL").await;
        let (untagged, _) = client.run("SEARCH $").await;
        assert_eq!(untagged, vec!["* SEARCH 1 2 3"], "before {reset}");
        client.run(reset).await;
        let (untagged, _) = client.run("SEARCH $").await;
        assert_eq!(untagged, vec!["* SEARCH"], "after {reset}");
    }
}

/// RFC 5182 2.4: with only MIN and/or MAX, `$` holds the messages they return; with ALL or
/// COUNT, every match.
#[tokio::test]
async fn rfc5182_save_with_esearch_min_max_keeps_what_they_return() {
    let (_server, mut client) = inbox_with(&["a", "b", "c", "d"]).await;
    let cases: [(&str, &str, &str); 5] = [
        ("SAVE MIN", " MIN 2", "* SEARCH 2"),
        ("MAX SAVE", " MAX 4", "* SEARCH 4"),
        ("MIN SAVE MAX", " MIN 2 MAX 4", "* SEARCH 2 4"),
        ("SAVE MIN COUNT", " MIN 2 COUNT 3", "* SEARCH 2 3 4"),
        ("ALL SAVE", " ALL 2:4", "* SEARCH 2 3 4"),
    ];
    for (options, returned, saved) in cases {
        let (untagged, _) = client.run(&format!("SEARCH RETURN ({options}) 2:4")).await;
        let tag = format!("a{}", client.next_tag - 1);
        assert_eq!(
            untagged,
            vec![format!("* ESEARCH (TAG \"{tag}\"){returned}")],
            "{options}"
        );
        let (untagged, _) = client.run("SEARCH $").await;
        assert_eq!(untagged, vec![saved], "{options}");
    }
    // Nothing found: `$` is empty and MIN has nothing to say.
    let (untagged, _) = client.run("SEARCH RETURN (SAVE MIN) SUBJECT nothing").await;
    assert_eq!(untagged.len(), 1);
    assert!(!untagged[0].contains("MIN"), "{untagged:?}");
    let (untagged, _) = client.run("SEARCH $").await;
    assert_eq!(untagged, vec!["* SEARCH"]);
}

/// RFC 5267 4.4: PARTIAL gives the results at these positions (in mailbox order), the range
/// as asked with what exists of it, NIL for none; one PARTIAL or ALL per command.
#[tokio::test]
async fn rfc5267_partial_results() {
    let (_server, mut client) = inbox_with(&["a", "b", "c", "d", "e", "f"]).await;
    let (untagged, _) = client
        .run_tagged("A01", "UID SEARCH RETURN (PARTIAL 1:3) ALL")
        .await;
    assert_eq!(
        untagged,
        vec!["* ESEARCH (TAG \"A01\") UID PARTIAL (1:3 1:3)"]
    );
    let (untagged, _) = client
        .run_tagged("A02", "SEARCH RETURN (PARTIAL 5:2) NOT 3")
        .await;
    assert_eq!(
        untagged,
        vec!["* ESEARCH (TAG \"A02\") PARTIAL (2:5 2,4:6)"]
    );
    let (untagged, _) = client
        .run_tagged("A03", "UID SEARCH RETURN (COUNT PARTIAL 4:500) ALL")
        .await;
    assert_eq!(
        untagged,
        vec!["* ESEARCH (TAG \"A03\") UID COUNT 6 PARTIAL (4:500 4:6)"]
    );
    let (untagged, _) = client
        .run_tagged("A04", "UID SEARCH RETURN (PARTIAL 7:10) ALL")
        .await;
    assert_eq!(
        untagged,
        vec!["* ESEARCH (TAG \"A04\") UID PARTIAL (7:10 NIL)"]
    );
    for refused in [
        "SEARCH RETURN (PARTIAL 1:2 ALL) ALL",
        "SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
        "SEARCH RETURN (PARTIAL 0:2) ALL",
        "SEARCH RETURN (PARTIAL 1:*) ALL",
        "SEARCH RETURN (PARTIAL) ALL",
    ] {
        let (_, done) = client.run(refused).await;
        assert!(done.starts_with("BAD"), "{refused}: {done}");
    }
    // SAVE with PARTIAL alone keeps the part returned.
    client.run("SEARCH RETURN (SAVE PARTIAL 2:3) ALL").await;
    let (untagged, _) = client.run("SEARCH $").await;
    assert_eq!(untagged, vec!["* SEARCH 2 3"]);
    // CONTEXT is a hint, accepted.
    let (untagged, _) = client
        .run_tagged(
            "A05",
            "SEARCH RETURN (CONTEXT COUNT) UNDELETED UNKEYWORD $Junk",
        )
        .await;
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"A05\") COUNT 6"]);
}

/// RFC 5267 4.3: a UID SEARCH with UPDATE is kept current while another session flags,
/// expunges and a delivery arrives; REMOVEFROM comes before the EXPUNGE, ADDTO after EXISTS.
#[tokio::test]
async fn rfc5267_updates_follow_another_session_and_deliveries() {
    let (server, mut client) = inbox_with(&["a", "b", "c", "d"]).await;
    let mut other = other_session(&server).await;
    other.run("STORE 2 +FLAGS (\\Deleted)").await;
    client.run("NOOP").await;

    let (untagged, done) = client
        .run_tagged("B01", "UID SEARCH RETURN (UPDATE) DELETED KEYWORD $Junk")
        .await;
    assert_eq!(done, "OK Search completed.");
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"B01\") UID"]);
    other.run("STORE 2,3 +FLAGS ($Junk)").await;
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        untagged.last().unwrap(),
        "* ESEARCH (TAG \"B01\") UID ADDTO (0 2)",
        "{untagged:?}"
    );
    // Only 2 joined: 3 is not \Deleted. Now it is, and 2 leaves by losing $Junk.
    other.run("STORE 3 +FLAGS (\\Deleted)").await;
    other.run("STORE 2 -FLAGS ($Junk)").await;
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        untagged.last().unwrap(),
        "* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 2) ADDTO (0 3)",
        "{untagged:?}"
    );
    // An expunge: the match leaves before the EXPUNGE is told.
    other.run("EXPUNGE").await;
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        untagged,
        vec![
            "* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 3)",
            "* 3 EXPUNGE",
            "* 2 EXPUNGE",
        ]
    );
    // A delivery that matches: after EXISTS.
    server.deliver("alice", &message("junk", "spam")).await;
    let (untagged, _) = client.run("NOOP").await;
    assert!(
        !untagged.iter().any(|l| l.contains("ESEARCH")),
        "{untagged:?}"
    );
    other.run("NOOP").await;
    // The updates arrive while the client IDLEs too.
    client.send(b"i1 IDLE\r\n").await;
    assert_eq!(client.line().await.trim_end(), "+ idling");
    other.run("UID STORE 5 +FLAGS (\\Deleted $Junk)").await;
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.starts_with("* ESEARCH")) {
        lines.push(client.line().await.trim_end().to_owned());
    }
    assert_eq!(
        lines.last().unwrap(),
        "* ESEARCH (TAG \"B01\") UID ADDTO (0 5)"
    );
    client.send(b"DONE\r\n").await;
    client.until_tagged("i1").await;

    // CANCELUPDATE ends them.
    let (_, done) = client.run("CANCELUPDATE \"B01\"").await;
    assert_eq!(done, "OK Updates cancelled.");
    other.run("UID STORE 5 -FLAGS (\\Deleted)").await;
    let (untagged, _) = client.run("NOOP").await;
    assert!(
        !untagged.iter().any(|l| l.contains("ESEARCH")),
        "{untagged:?}"
    );
    let (_, done) = client.run("CANCELUPDATE \"B01\"").await;
    assert!(done.starts_with("BAD"), "{done}");
}

/// RFC 5267 4.3: a SEARCH (not UID) with COUNT and UPDATE: the updates are sequence numbers,
/// ADDTO after the EXISTS that makes them valid, REMOVEFROM with the numbers before EXPUNGE.
#[tokio::test]
async fn rfc5267_sequence_number_updates_after_exists_and_before_expunge() {
    let (server, mut client) = inbox_with(&["a", "b", "c"]).await;
    let mut other = other_session(&server).await;
    let (untagged, _) = client
        .run_tagged("C01", "SEARCH RETURN (COUNT UPDATE) UNSEEN")
        .await;
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"C01\") COUNT 3"]);
    server.deliver("alice", &message("fresh", "new")).await;
    let (untagged, _) = client.run("NOOP").await;
    let exists = untagged.iter().position(|l| l == "* 4 EXISTS").unwrap();
    let added = untagged
        .iter()
        .position(|l| l == "* ESEARCH (TAG \"C01\") ADDTO (0 4)")
        .unwrap();
    assert!(exists < added, "{untagged:?}");

    other.run("STORE 1 +FLAGS (\\Seen \\Deleted)").await;
    other.run("EXPUNGE").await;
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        untagged,
        vec!["* ESEARCH (TAG \"C01\") REMOVEFROM (0 1)", "* 1 EXPUNGE"]
    );
    // The session's own changes count as well.
    let (untagged, _) = client.run("STORE 2 +FLAGS.SILENT (\\Seen)").await;
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"C01\") REMOVEFROM (0 2)"]);
    // During a FETCH, no expunge is told: no REMOVEFROM for it either.
    other.run("STORE 1 +FLAGS (\\Deleted)").await;
    other.run("EXPUNGE").await;
    let (untagged, _) = client.run("FETCH 1 (UID)").await;
    assert!(
        !untagged
            .iter()
            .any(|l| l.contains("ESEARCH") || l.ends_with("EXPUNGE")),
        "{untagged:?}"
    );
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        untagged,
        vec!["* ESEARCH (TAG \"C01\") REMOVEFROM (0 1)", "* 1 EXPUNGE"]
    );
}

/// RFC 5267 4.3 and 4.3.1: a tag in use by an updated search is refused BAD; beyond the
/// limit of updated searches the search is answered with NO [NOUPDATE] and no updates.
#[tokio::test]
async fn rfc5267_tag_reuse_and_too_many_contexts() {
    let (server, mut client) = inbox_with(&["a", "b"]).await;
    let mut other = other_session(&server).await;
    client
        .send(b"B01 UID SEARCH RETURN (UPDATE) SEEN\r\n")
        .await;
    let (untagged, done) = client.until_tagged("B01").await;
    assert_eq!((untagged.len(), done.as_str()), (1, "OK Search completed."));
    client
        .send(b"B01 UID SEARCH RETURN (UPDATE) FLAGGED\r\n")
        .await;
    let (untagged, done) = client.until_tagged("B01").await;
    assert!(untagged.is_empty() && done.starts_with("BAD"), "{done}");

    for n in 2..=8 {
        let (_, done) = client
            .run(&format!("UID SEARCH RETURN (UPDATE) SUBJECT a{n}"))
            .await;
        assert_eq!(done, "OK Search completed.");
    }
    client
        .send(b"B02 UID SEARCH RETURN (UPDATE COUNT) ALL\r\n")
        .await;
    let (untagged, done) = client.until_tagged("B02").await;
    assert_eq!(
        untagged,
        vec![
            "* NO [NOUPDATE \"B02\"] At most 8 searches can be updated at once.",
            "* ESEARCH (TAG \"B02\") UID COUNT 2",
        ]
    );
    assert_eq!(done, "OK Search completed.");
    // Only the first context (B01, SEEN) reports; B02 does not.
    other.run("STORE 1:2 +FLAGS (\\Seen)").await;
    let (untagged, _) = client.run("NOOP").await;
    let updates: Vec<&String> = untagged.iter().filter(|l| l.contains("ESEARCH")).collect();
    assert_eq!(updates, vec!["* ESEARCH (TAG \"B01\") UID ADDTO (0 1:2)"]);
    // Cancelling one makes room again.
    client.run("CANCELUPDATE \"B01\"").await;
    client
        .send(b"B03 UID SEARCH RETURN (UPDATE ALL) ALL\r\n")
        .await;
    let (untagged, _) = client.until_tagged("B03").await;
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"B03\") UID ALL 1:2"]);
    // A new SELECT ends every context.
    client.run("SELECT INBOX").await;
    server.deliver("alice", &message("late", "x")).await;
    let (untagged, _) = client.run("NOOP").await;
    assert!(
        !untagged.iter().any(|l| l.contains("ESEARCH")),
        "{untagged:?}"
    );
    // CANCELUPDATE needs a quoted tag, in the selected state.
    let (_, done) = client.run("CANCELUPDATE B03").await;
    assert!(done.starts_with("BAD"), "{done}");
    client.run("UNSELECT").await;
    let (_, done) = client.run("CANCELUPDATE \"B03\"").await;
    assert!(done.starts_with("BAD"), "{done}");
}

/// Criteria that depend on the view (sequence numbers) are matched again whole: an expunge
/// shifts `1:2` onto other messages.
#[tokio::test]
async fn updates_of_sequence_number_criteria_follow_the_numbers() {
    let (server, mut client) = inbox_with(&["a", "b", "c"]).await;
    let mut other = other_session(&server).await;
    let (untagged, _) = client
        .run_tagged("D01", "UID SEARCH RETURN (ALL UPDATE) 1:2")
        .await;
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"D01\") UID ALL 1:2"]);
    other.run("STORE 1 +FLAGS (\\Deleted)").await;
    other.run("EXPUNGE").await;
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        untagged,
        vec![
            "* ESEARCH (TAG \"D01\") UID REMOVEFROM (0 1)",
            "* 1 EXPUNGE",
            "* ESEARCH (TAG \"D01\") UID ADDTO (0 3)",
        ]
    );
}

/// ESORT with SEARCHRES: `SORT RETURN (SAVE)` keeps every match for `$` and answers only the
/// tagged OK (CONTEXT=SORT's UPDATE is tested in `context_sort.rs`).
#[tokio::test]
async fn sort_return_save_fills_dollar() {
    let (_server, mut client) = inbox_with(&["c", "a", "b", "d"]).await;
    let (untagged, done) = client
        .run("SORT RETURN (SAVE) (SUBJECT) UTF-8 NOT SUBJECT d")
        .await;
    assert_eq!(untagged, Vec::<String>::new());
    assert_eq!(done, "OK Sort completed.");
    let (untagged, _) = client.run("UID SEARCH UID $").await;
    assert_eq!(untagged, vec!["* SEARCH 1 2 3"]);
    let (untagged, done) = client
        .run("SORT RETURN (SAVE MIN) (SUBJECT) UTF-8 SUBJECT d")
        .await;
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"a5\") MIN 4"], "{done}");
    let (untagged, _) = client.run("UID SEARCH UID $").await;
    assert_eq!(untagged, vec!["* SEARCH 4"]);
}
