//! SORT, ESORT and THREAD over a real socket and real Maildirs: every sort key, ties in
//! mailbox order, missing headers, base subjects, encoded words, the THREAD algorithms and
//! the answers to bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a failure is the test failing.

mod support;
use support::*;

/// A message with these header lines (CRLF added) and a body.
fn mail(headers: &[&str]) -> String {
    let mut out = String::new();
    for header in headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str("\r\nbody\r\n");
    out
}

async fn sort_folder() -> (Server, Client<tokio::net::TcpStream>) {
    let server = start(true).await;
    for headers in [
        &[
            "From: \"Zed\" <zed@example.org>",
            "To: bob@example.org",
            "Subject: Re: [list] Fwd: banana (fwd)",
            "Date: Mon, 02 Nov 2026 10:00:00 +0000",
        ][..],
        // No Date: its INTERNALDATE (now) is its sent date.
        &[
            "From: anna@example.org",
            "To: \"Carl\" <carl@example.org>",
            "Subject: apple",
        ],
        // No From; an encoded subject and display name; a zone west of UTC.
        &[
            "To: =?UTF-8?Q?=C3=81da?= <ada@example.org>",
            "Cc: \"Bee\" <bee@example.org>",
            "Subject: =?UTF-8?Q?Re=3A_Cherry?=",
            "Date: Sun, 01 Nov 2026 23:00:00 -0200",
        ],
        // The same Date as message 1 and the same base subject.
        &[
            "From: Anna <anna@example.org>",
            "Subject: Banana",
            "Date: Mon, 02 Nov 2026 10:00:00 +0000",
        ],
        &[
            "From: bob@example.org",
            "Subject: apple",
            "Date: Tue, 03 Nov 2026 09:00:00 +0100",
        ],
    ] {
        server.deliver("alice", &mail(headers)).await;
    }
    let mut client = server.logged_in("alice").await;
    let (_, done) = client.run("SELECT INBOX").await;
    assert!(done.starts_with("OK"), "{done}");
    (server, client)
}

async fn one_line(client: &mut Client<tokio::net::TcpStream>, command: &str) -> String {
    let (untagged, done) = client.run(command).await;
    assert!(done.starts_with("OK"), "{command}: {done}");
    assert_eq!(untagged.len(), 1, "{command}: {untagged:?}");
    untagged.into_iter().next().unwrap()
}

#[tokio::test]
async fn every_sort_key_with_ties_in_mailbox_order() {
    let (_server, mut client) = sort_folder().await;
    for (keys, expected) in [
        // 3 is 01:00 UTC; 1 and 4 are equal and stay in mailbox order; 2 has no Date.
        ("DATE", "3 1 4 5 2"),
        ("REVERSE DATE", "2 5 1 4 3"),
        ("SUBJECT", "2 5 1 4 3"),
        ("SUBJECT DATE", "5 2 1 4 3"),
        ("SUBJECT REVERSE DATE", "2 5 1 4 3"),
        // Message 3 has no From: it sorts first.
        ("FROM", "3 2 4 5 1"),
        ("REVERSE FROM", "1 5 2 4 3"),
        ("DISPLAYFROM", "3 4 2 5 1"),
        ("TO", "4 5 3 1 2"),
        // Ádá compares as A and its accent (i;unicode-casemap), before BOB.
        ("DISPLAYTO", "4 5 3 1 2"),
        ("CC", "1 2 4 5 3"),
        ("ARRIVAL", "1 2 3 4 5"),
        ("cc reverse subject", "1 4 2 5 3"),
    ] {
        assert_eq!(
            one_line(&mut client, &format!("SORT ({keys}) UTF-8 ALL")).await,
            format!("* SORT {expected}"),
            "{keys}"
        );
    }
    let (untagged, _) = client.run("FETCH 1:* RFC822.SIZE").await;
    let mut by_size: Vec<(u64, usize)> = untagged
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let size = line.rsplit(' ').next().unwrap().trim_end_matches(')');
            (size.parse().unwrap(), i + 1)
        })
        .collect();
    by_size.sort();
    let expected: Vec<String> = by_size.iter().map(|(_, seq)| seq.to_string()).collect();
    assert_eq!(
        one_line(&mut client, "SORT (SIZE) US-ASCII ALL").await,
        format!("* SORT {}", expected.join(" "))
    );
}

#[tokio::test]
async fn sort_takes_search_criteria_and_uid_sort_answers_uids() {
    let (_server, mut client) = sort_folder().await;
    assert_eq!(
        one_line(&mut client, "SORT (DATE) UTF-8 SUBJECT apple").await,
        "* SORT 5 2"
    );
    assert_eq!(
        one_line(&mut client, "SORT (DATE) UTF-8 OR FROM anna CC bee").await,
        "* SORT 3 4 2"
    );
    assert_eq!(
        one_line(&mut client, "SORT (DATE) UTF-8 SUBJECT nothing").await,
        "* SORT"
    );
    client.run("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    client.run("EXPUNGE").await;
    assert_eq!(
        one_line(&mut client, "SORT (DATE) UTF-8 ALL").await,
        "* SORT 2 3 4 1"
    );
    assert_eq!(
        one_line(&mut client, "UID SORT (DATE) UTF-8 ALL").await,
        "* SORT 3 4 5 2"
    );
    assert_eq!(
        one_line(&mut client, "UID SORT (DATE) UTF-8 UID 4:5").await,
        "* SORT 4 5"
    );
}

#[tokio::test]
async fn esort_returns_min_max_count_all_and_partial_in_sort_order() {
    let (_server, mut client) = sort_folder().await;
    let (untagged, done) = client
        .run("SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL")
        .await;
    assert_eq!(done, "OK Sort completed.");
    assert_eq!(untagged.len(), 1, "{untagged:?}");
    assert!(
        untagged[0].starts_with("* ESEARCH (TAG \"a"),
        "{untagged:?}"
    );
    assert!(
        untagged[0].ends_with("\") MIN 3 MAX 2 COUNT 5"),
        "{untagged:?}"
    );
    let line = one_line(&mut client, "SORT RETURN () (DATE) UTF-8 ALL").await;
    assert!(line.ends_with(") ALL 3,1,4:5,2"), "{line}");
    let line = one_line(&mut client, "UID SORT RETURN (ALL) (SUBJECT) UTF-8 ALL").await;
    assert!(line.ends_with(") UID ALL 2,5,1,4,3"), "{line}");
    let line = one_line(
        &mut client,
        "SORT RETURN (PARTIAL 2:3 COUNT) (DATE) UTF-8 ALL",
    )
    .await;
    assert!(line.ends_with(") COUNT 5 PARTIAL (2:3 1,4)"), "{line}");
    let line = one_line(&mut client, "SORT RETURN (PARTIAL 4:9) (DATE) UTF-8 ALL").await;
    assert!(line.ends_with(") PARTIAL (4:9 5,2)"), "{line}");
    let line = one_line(&mut client, "SORT RETURN (PARTIAL 6:9) (DATE) UTF-8 ALL").await;
    assert!(line.ends_with(") PARTIAL (6:9 NIL)"), "{line}");
    let line = one_line(
        &mut client,
        "SORT RETURN (MIN COUNT) (DATE) UTF-8 FROM nobody",
    )
    .await;
    assert!(line.ends_with(") COUNT 0"), "{line}");
}

#[tokio::test]
async fn the_second_sort_reads_the_cache_not_the_file() {
    let (server, mut client) = sort_folder().await;
    assert_eq!(
        one_line(&mut client, "SORT (SUBJECT) UTF-8 ALL").await,
        "* SORT 2 5 1 4 3"
    );
    // Maildir messages never change: a file rewritten behind the server's back shows
    // whether the second SORT read it.
    let cur = server.maildir("alice").await.join("cur");
    for file in files_in(&cur) {
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("Subject: apple", "Subject: zzz")).unwrap();
    }
    assert_eq!(
        one_line(&mut client, "SORT (SUBJECT) UTF-8 ALL").await,
        "* SORT 2 5 1 4 3"
    );
}

#[tokio::test]
async fn threads_by_references_refs_and_subject() {
    let server = start(true).await;
    for (subject, id, references) in [
        ("Lunch", "a", ""),
        ("Re: Lunch", "b", "In-Reply-To: <a@x>"),
        ("Other", "c", ""),
        ("Re: Lunch", "d", "References: <a@x> <b@x>"),
        ("Re: Lunch", "e", "References: <a@x>"),
        // Its parent is not here: REFERENCES joins it to 1's thread by subject.
        ("Re: Lunch", "f", "References: <missing@x>"),
        ("Re: Other", "g", "References: <zz@x>\r\n <c@x>"),
    ] {
        let date = format!(
            "Date: Mon, 02 Nov 2026 10:0{}:00 +0000",
            id.as_bytes()[0] - b'a'
        );
        let mut headers = vec![
            format!("Subject: {subject}"),
            format!("Message-ID: <{id}@x>"),
            date,
        ];
        if !references.is_empty() {
            headers.push(references.to_string());
        }
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        server.deliver("alice", &mail(&headers)).await;
    }
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    for (command, expected) in [
        (
            "THREAD REFERENCES UTF-8 ALL",
            "* THREAD (1 (2 4)(5)(6))(3 7)",
        ),
        ("THREAD REFS UTF-8 ALL", "* THREAD (1 (2 4)(5))(6)(3 7)"),
        (
            "THREAD ORDEREDSUBJECT UTF-8 ALL",
            "* THREAD (1 (2)(4)(5)(6))(3 7)",
        ),
        ("THREAD REFERENCES US-ASCII SUBJECT other", "* THREAD (3 7)"),
        // Without 1, 2 and 4 are the children of a missing message (a dummy).
        (
            "THREAD REFERENCES UTF-8 NOT SUBJECT other NOT 1 NOT 5 NOT 6",
            "* THREAD (2 4)",
        ),
        ("THREAD REFERENCES UTF-8 2,5", "* THREAD ((2)(5))"),
        ("THREAD REFERENCES UTF-8 SUBJECT nothing", "* THREAD"),
    ] {
        assert_eq!(one_line(&mut client, command).await, expected, "{command}");
    }
    client.run("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    client.run("EXPUNGE").await;
    assert_eq!(
        one_line(&mut client, "UID THREAD REFERENCES UTF-8 ALL").await,
        "* THREAD ((2 4)(5)(6))(3 7)"
    );
    assert_eq!(
        one_line(&mut client, "THREAD REFERENCES UTF-8 ALL").await,
        "* THREAD ((1 3)(4)(5))(2 6)"
    );
}

#[tokio::test]
async fn bad_sort_and_thread_commands_get_bad_or_no() {
    let (_server, mut client) = sort_folder().await;
    let (untagged, done) = client.run("CAPABILITY").await;
    assert!(
        untagged[0].contains(
            " SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES THREAD=REFS ESORT"
        ),
        "{untagged:?}"
    );
    assert!(done.starts_with("OK"));
    for command in [
        "SORT (DATE) X-NOSUCH ALL",
        "THREAD REFERENCES X-NOSUCH ALL",
        "UID SORT (DATE) X-UNKNOWN ALL",
    ] {
        let (untagged, done) = client.run(command).await;
        assert_eq!(
            done, "NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.",
            "{command}"
        );
        assert!(untagged.is_empty(), "{command}: {untagged:?}");
    }
    for command in [
        "SORT",
        "SORT (DATE)",
        "SORT (DATE) UTF-8",
        "SORT DATE UTF-8 ALL",
        "SORT () UTF-8 ALL",
        "SORT (FOO) UTF-8 ALL",
        "SORT (REVERSE) UTF-8 ALL",
        "SORT (DATE REVERSE) UTF-8 ALL",
        "SORT (REVERSE REVERSE DATE) UTF-8 ALL",
        "SORT RETURN (PARTIAL 0:5) (DATE) UTF-8 ALL",
        "SORT RETURN (PARTIAL 1) (DATE) UTF-8 ALL",
        "SORT RETURN (FOO) (DATE) UTF-8 ALL",
        "THREAD",
        "THREAD REFERENCES",
        "THREAD FOO UTF-8 ALL",
        "THREAD REFERENCES UTF-8 NOSUCHKEY",
        "UID THREAD (REFERENCES) UTF-8 ALL",
    ] {
        let (untagged, done) = client.run(command).await;
        assert!(done.starts_with("BAD "), "{command}: {done}");
        assert!(untagged.is_empty(), "{command}: {untagged:?}");
    }
    client.run("UNSELECT").await;
    for command in ["SORT (DATE) UTF-8 ALL", "THREAD REFS UTF-8 ALL"] {
        let (_, done) = client.run(command).await;
        assert!(
            done.starts_with("BAD "),
            "{command} with nothing selected: {done}"
        );
    }
}
