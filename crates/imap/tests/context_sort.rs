//! CONTEXT=SORT (RFC 5267 4): `SORT RETURN (UPDATE)` kept in its sort order over a real
//! socket and real Maildirs, with RFC 5267's examples adapted, a second session (and
//! deliveries) changing the folder, IDLE, and a client's copy of each sorted result kept only
//! from ADDTO and REMOVEFROM compared with a fresh SORT after every change.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a failure is the test failing.

mod support;
use support::*;

use tokio::net::TcpStream;

/// A message with these headers (CRLF added) and a body.
fn mail(subject: &str, from: &str, date: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: alice@example.com\r\nSubject: {subject}\r\nDate: {date}\r\n\r\n{body}\r\n"
    )
}

/// The ESEARCH lines among `lines`.
fn updates(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter(|line| line.starts_with("* ESEARCH"))
        .map(String::as_str)
        .collect()
}

/// The numbers of a sequence set in its order, ranges ascending (RFC 5267 3.2).
fn expand(set: &str) -> Vec<u32> {
    let mut numbers = Vec::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                numbers.extend(a.min(b)..=a.max(b));
            }
            None => numbers.push(part.parse().unwrap()),
        }
    }
    numbers
}

/// A client's copy of one sorted context's results, kept only from what the server sends,
/// applied as RFC 5267 4.3.3 and 4.3.4 say: each pair in turn, the first message of a pair's
/// set at its position (after the pairs before it), the others after it.
struct ClientCopy {
    tag: String,
    /// Sequence numbers (renumbered on EXPUNGE as any client does) or UIDs.
    results: Vec<u32>,
    /// The command that answers the results afresh (`SORT ...` or `UID SORT ...`).
    fresh: String,
    /// ADDTO and REMOVEFROM pairs applied at a position other than the first or last.
    middle_pairs: [usize; 2],
}

impl ClientCopy {
    /// Starts the context `tag` with `command` (a SORT with `RETURN (UPDATE ALL)`).
    async fn start(client: &mut Client<TcpStream>, tag: &str, command: &str) -> ClientCopy {
        let (untagged, done) = client.run_tagged(tag, command).await;
        assert_eq!(done, "OK Sort completed.", "{command}");
        let answer = untagged
            .iter()
            .find(|line| line.starts_with(&format!("* ESEARCH (TAG \"{tag}\")")))
            .unwrap_or_else(|| panic!("{command}: {untagged:?}"));
        let results = answer
            .split_once(" ALL ")
            .map(|(_, set)| expand(set))
            .unwrap_or_default();
        ClientCopy {
            tag: tag.to_owned(),
            results,
            fresh: command.replace(" RETURN (UPDATE ALL)", ""),
            middle_pairs: [0, 0],
        }
    }

    /// Applies every line in turn: this context's updates and EXPUNGEs.
    fn apply(&mut self, lines: &[String]) {
        for line in lines {
            if let Some(number) = line
                .strip_prefix("* ")
                .and_then(|rest| rest.strip_suffix(" EXPUNGE"))
            {
                if self.fresh.starts_with("SORT") {
                    let number: u32 = number.parse().unwrap();
                    // RFC 5267 4.3.4: REMOVEFROM came first.
                    assert!(
                        !self.results.contains(&number),
                        "{line} in {:?}",
                        self.results
                    );
                    for result in &mut self.results {
                        if *result > number {
                            *result -= 1;
                        }
                    }
                }
                continue;
            }
            let prefix = format!("* ESEARCH (TAG \"{}\")", self.tag);
            let Some(rest) = line.strip_prefix(&prefix) else {
                continue;
            };
            let mut rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix("UID ") {
                rest = after;
            }
            while !rest.is_empty() {
                let (item, after) = rest.split_once(" (").unwrap();
                let (pairs, after) = after.split_once(')').unwrap();
                rest = after.trim_start();
                let words: Vec<&str> = pairs.split(' ').collect();
                for pair in words.chunks(2) {
                    let position: usize = pair[0].parse().unwrap();
                    assert!(
                        position > 0,
                        "a sorted context's pair has a position: {line}"
                    );
                    let numbers = expand(pair[1]);
                    let at = position - 1;
                    match item {
                        "ADDTO" => {
                            assert!(at <= self.results.len(), "{line} on {:?}", self.results);
                            let inside = at > 0 && at < self.results.len();
                            for (offset, number) in numbers.into_iter().enumerate() {
                                self.results.insert(at + offset, number);
                            }
                            self.middle_pairs[0] += usize::from(inside);
                        }
                        "REMOVEFROM" => {
                            let end = at + numbers.len();
                            assert!(
                                self.results.get(at..end) == Some(&numbers[..]),
                                "{line} on {:?}",
                                self.results
                            );
                            let inside = at > 0 && end < self.results.len();
                            self.results.drain(at..end);
                            self.middle_pairs[1] += usize::from(inside);
                        }
                        other => panic!("unexpected {other} in {line}"),
                    }
                }
            }
        }
    }

    /// Asks the server for the result afresh: it must be the copy.
    async fn check(&self, client: &mut Client<TcpStream>, when: &str) {
        let (untagged, done) = client.run(&self.fresh).await;
        assert_eq!(done, "OK Sort completed.");
        let fresh: Vec<u32> = untagged
            .iter()
            .find_map(|line| line.strip_prefix("* SORT"))
            .unwrap()
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(self.results, fresh, "{} after {when}", self.fresh);
    }
}

#[tokio::test]
async fn context_sort_is_advertised() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let (untagged, _) = client.run("CAPABILITY").await;
    for capability in ["CONTEXT=SORT", "CONTEXT=SEARCH", "ESORT", "SORT"] {
        assert!(
            untagged[0].split(' ').any(|word| word == capability),
            "{capability} in {untagged:?}"
        );
    }
}

/// RFC 5267 4.3.3's second example, adapted: the result is 4:5 (subjects d and e), and
/// 1:3 (a, b, c) join at its start: one pair, `ADDTO (1 1:3)`, the preferred form.
#[tokio::test]
async fn rfc5267_addto_inserts_at_the_sorted_position() {
    let (server, mut client) = inbox_with(&["a", "b", "c", "d", "e"]).await;
    let mut other = other_session(&server).await;
    client.run("STORE 4:5 +FLAGS (\\Flagged)").await;
    let (untagged, done) = client
        .run_tagged(
            "C01",
            "UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 FLAGGED",
        )
        .await;
    assert_eq!(done, "OK Sort completed.");
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"C01\") UID ALL 4:5"]);
    other.run("STORE 1:3 +FLAGS (\\Flagged)").await;
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        updates(&untagged),
        vec!["* ESEARCH (TAG \"C01\") UID ADDTO (1 1:3)"]
    );
    // Each run of neighbours is one pair, at its position once the pairs before it were
    // applied: from a b c d e, b (second) goes, then d (third of a c d e).
    let (untagged, _) = client.run("STORE 2,4 -FLAGS.SILENT (\\Flagged)").await;
    assert_eq!(
        updates(&untagged),
        vec!["* ESEARCH (TAG \"C01\") UID REMOVEFROM (2 2 3 4)"]
    );
    other.run("STORE 2,4 +FLAGS (\\Flagged)").await;
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        updates(&untagged),
        vec!["* ESEARCH (TAG \"C01\") UID ADDTO (2 2 4 4)"]
    );
}

/// The session's own STORE leaves and joins a sorted context like anyone's, and REMOVEFROM
/// gives the position each run of leaving messages starts at, after the runs before it.
#[tokio::test]
async fn removefrom_gives_positions_in_the_sorted_result() {
    // Subjects sort e, d, c, b, a under REVERSE SUBJECT: UIDs 5 4 3 2 1.
    let (_server, mut client) = inbox_with(&["a", "b", "c", "d", "e"]).await;
    let (untagged, _) = client
        .run_tagged(
            "R01",
            "UID SORT RETURN (UPDATE ALL) (REVERSE SUBJECT) UTF-8 UNFLAGGED",
        )
        .await;
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"R01\") UID ALL 5,4,3,2,1"]);
    let (untagged, _) = client
        .run("UID STORE 4,3,1 +FLAGS.SILENT (\\Flagged)")
        .await;
    // 4 and 3 are neighbours at 2 and 3; then 1 is at 3 of 5 2 1.
    assert_eq!(
        untagged,
        vec!["* ESEARCH (TAG \"R01\") UID REMOVEFROM (2 4,3 3 1)"]
    );
    let (untagged, _) = client.run("UID STORE 1,3 -FLAGS.SILENT (\\Flagged)").await;
    assert_eq!(
        untagged,
        vec!["* ESEARCH (TAG \"R01\") UID ADDTO (2 3 4 1)"]
    );
    let (untagged, _) = client
        .run("UID SORT (REVERSE SUBJECT) UTF-8 UNFLAGGED")
        .await;
    assert_eq!(untagged, vec!["* SORT 5 3 2 1"]);
}

/// RFC 5267 4.3.4's example: an expunged match leaves, with its position, before the
/// EXPUNGE; a SORT (not UID SORT) context numbers messages by sequence number.
#[tokio::test]
async fn rfc5267_removefrom_comes_before_the_expunge() {
    let (server, mut client) = inbox_with(&["c", "a", "d", "b"]).await;
    let mut other = other_session(&server).await;
    let (untagged, _) = client
        .run_tagged("B01", "SORT RETURN (UPDATE COUNT) (SUBJECT) UTF-8 ALL")
        .await;
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"B01\") COUNT 4"]);
    // In SUBJECT order a(2) b(4) c(1) d(3): message 1 (c) is third.
    other.run("STORE 1 +FLAGS (\\Deleted)").await;
    other.run("EXPUNGE").await;
    let (untagged, done) = client.run("NOOP").await;
    assert_eq!(done, "OK NOOP completed.");
    assert_eq!(
        untagged,
        vec!["* ESEARCH (TAG \"B01\") REMOVEFROM (3 1)", "* 1 EXPUNGE"]
    );
    // A delivery: after the EXISTS, with its sequence number, at its place (aa: second).
    server.deliver("alice", &message("aa", "new")).await;
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        untagged,
        vec![
            "* 4 EXISTS",
            "* 4 RECENT",
            "* ESEARCH (TAG \"B01\") ADDTO (2 4)",
        ]
    );
    // RFC 5267 4.3.5.
    let (_, done) = client.run_tagged("B04", "CANCELUPDATE \"B01\"").await;
    assert_eq!(done, "OK Updates cancelled.");
    server.deliver("alice", &message("ab", "newer")).await;
    let (untagged, _) = client.run("NOOP").await;
    assert!(updates(&untagged).is_empty(), "{untagged:?}");
}

/// A flag change never moves a message in a sorted context (what SORT compares does not
/// change); it only makes it leave the result and come back to the same place.
#[tokio::test]
async fn flags_never_move_a_message_only_add_or_remove_it() {
    let (server, mut client) = inbox_with(&["b", "d", "a", "c"]).await;
    let mut other = other_session(&server).await;
    let (_, done) = client
        .run_tagged("F01", "UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL")
        .await;
    assert_eq!(done, "OK Sort completed.");
    let (_, done) = client
        .run_tagged("F02", "UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNSEEN")
        .await;
    assert_eq!(done, "OK Sort completed.");
    other
        .run("UID STORE 4 +FLAGS (\\Seen \\Flagged $Junk)")
        .await;
    let (untagged, _) = client.run("NOOP").await;
    // ALL does not change; UNSEEN loses c (third of a b c d).
    assert_eq!(
        updates(&untagged),
        vec!["* ESEARCH (TAG \"F02\") UID REMOVEFROM (3 4)"]
    );
    other.run("UID STORE 4 -FLAGS (\\Seen)").await;
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        updates(&untagged),
        vec!["* ESEARCH (TAG \"F02\") UID ADDTO (3 4)"]
    );
}

/// RFC 5267 4.3 and 4.3.1: a tag in use by an updated search or sort cannot start another
/// (BAD, no effect); sorts and searches share the session's 8 contexts, and the ninth sort is
/// answered with its other return options and `NO [NOUPDATE]`.
#[tokio::test]
async fn rfc5267_tag_reuse_and_noupdate_for_sorts() {
    let (server, mut client) = inbox_with(&["a", "b"]).await;
    let mut other = other_session(&server).await;
    client.run("STORE 2 +FLAGS (\\Deleted $Junk)").await;
    let (untagged, done) = client
        .run_tagged(
            "B01",
            "UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk",
        )
        .await;
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"B01\") UID COUNT 1"]);
    assert_eq!(done, "OK Search completed.");
    // The RFC's example: rejected, and no effect.
    let (untagged, done) = client
        .run_tagged("B01", "SORT RETURN (UPDATE) (DATE) UTF-8 FLAGGED")
        .await;
    assert!(untagged.is_empty() && done.starts_with("BAD"), "{done}");
    let (_, done) = client
        .run_tagged("S01", "UID SORT RETURN (UPDATE) (DATE) UTF-8 ALL")
        .await;
    assert_eq!(done, "OK Sort completed.");
    let (untagged, done) = client
        .run_tagged("S01", "UID SEARCH RETURN (UPDATE) ALL")
        .await;
    assert!(untagged.is_empty() && done.starts_with("BAD"), "{done}");
    let (untagged, done) = client
        .run_tagged("S01", "UID SORT RETURN (UPDATE) (DATE) UTF-8 ALL")
        .await;
    assert!(untagged.is_empty() && done.starts_with("BAD"), "{done}");
    // Without UPDATE the tag may be used again (it starts nothing).
    let (_, done) = client
        .run_tagged("S01", "UID SORT RETURN (COUNT) (DATE) UTF-8 ALL")
        .await;
    assert_eq!(done, "OK Sort completed.");

    for n in 3..=8 {
        let (_, done) = client
            .run(&format!(
                "UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 SUBJECT a{n}"
            ))
            .await;
        assert_eq!(done, "OK Sort completed.");
    }
    // The RFC's example leaves the sort criteria out; here they are `(DATE)`.
    let (untagged, done) = client
        .run_tagged(
            "B02",
            "UID SORT RETURN (UPDATE COUNT) (DATE) UTF-8 KEYWORD $Junk",
        )
        .await;
    assert_eq!(
        untagged,
        vec![
            "* NO [NOUPDATE \"B02\"] At most 8 searches can be updated at once.",
            "* ESEARCH (TAG \"B02\") UID COUNT 1",
        ]
    );
    assert_eq!(done, "OK Sort completed.");
    // B02 reports nothing; S01 (ALL) reports the arrival at its sorted place (last by date:
    // the delivered messages share one Date, and the new one has the highest UID).
    other.run("UID STORE 1 +FLAGS (\\Deleted $Junk)").await;
    server.deliver("alice", &message("c", "z")).await;
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        updates(&untagged),
        vec![
            "* ESEARCH (TAG \"B01\") UID ADDTO (0 1)",
            "* ESEARCH (TAG \"S01\") UID ADDTO (3 3)",
        ]
    );
    // Cancelling one makes room for a sort again.
    client.run("CANCELUPDATE \"B01\"").await;
    let (untagged, _) = client
        .run_tagged(
            "B03",
            "UID SORT RETURN (UPDATE ALL) (REVERSE DATE) UTF-8 ALL",
        )
        .await;
    // Equal dates: mailbox order, REVERSE or not (RFC 5256 3).
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"B03\") UID ALL 1:3"]);
}

/// RFC 5267 4.4: PARTIAL and UPDATE do not interact: the window is answered, and the
/// updates cover every result, inside the window or not. SAVE beside UPDATE answers nothing
/// but fills `$`.
#[tokio::test]
async fn rfc5267_partial_with_update_covers_every_result() {
    let (server, mut client) = inbox_with(&["e", "d", "c", "b", "a"]).await;
    let (untagged, _) = client
        .run_tagged(
            "P01",
            "UID SORT RETURN (PARTIAL 1:2 UPDATE) (SUBJECT) UTF-8 ALL",
        )
        .await;
    assert_eq!(
        untagged,
        vec!["* ESEARCH (TAG \"P01\") UID PARTIAL (1:2 5,4)"]
    );
    // f sorts last, outside the window: reported all the same.
    server.deliver("alice", &message("f", "late")).await;
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        updates(&untagged),
        vec!["* ESEARCH (TAG \"P01\") UID ADDTO (6 6)"]
    );
    let (untagged, _) = client
        .run("UID SORT RETURN (PARTIAL 5:7) (SUBJECT) UTF-8 ALL")
        .await;
    assert_eq!(untagged.len(), 1);
    assert!(
        untagged[0].ends_with(" UID PARTIAL (5:7 1,6)"),
        "{untagged:?}"
    );

    let (untagged, done) = client
        .run_tagged("V01", "SORT RETURN (SAVE UPDATE) (SUBJECT) UTF-8 SUBJECT b")
        .await;
    assert_eq!((untagged.len(), done.as_str()), (0, "OK Sort completed."));
    let (untagged, _) = client.run("UID SEARCH UID $").await;
    assert_eq!(untagged, vec!["* SEARCH 4"]);
    server.deliver("alice", &message("bb", "x")).await;
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        updates(&untagged),
        vec![
            "* ESEARCH (TAG \"P01\") UID ADDTO (3 7)",
            "* ESEARCH (TAG \"V01\") ADDTO (2 7)",
        ]
    );
}

/// RFC 5267 4.3.2: updates arrive while the client IDLEs, from a delivery and from another
/// session's flag change and expunge, REMOVEFROM before the EXPUNGE.
#[tokio::test]
async fn updates_arrive_during_idle() {
    let (server, mut client) = inbox_with(&["b", "d"]).await;
    let mut other = other_session(&server).await;
    let (untagged, _) = client
        .run_tagged("I01", "SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN")
        .await;
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"I01\") ALL 1:2"]);
    client.send(b"i1 IDLE\r\n").await;
    assert_eq!(client.line().await.trim_end(), "+ idling");

    async fn until_update(client: &mut Client<TcpStream>) -> Vec<String> {
        let mut lines = Vec::new();
        while !lines.iter().any(|l: &String| l.starts_with("* ESEARCH")) {
            lines.push(client.line().await.trim_end().to_owned());
        }
        lines
    }
    server.deliver("alice", &message("c", "new")).await;
    let lines = until_update(&mut client).await;
    assert_eq!(
        lines,
        vec![
            "* 3 EXISTS",
            "* 3 RECENT",
            "* ESEARCH (TAG \"I01\") ADDTO (2 3)"
        ]
    );
    other.run("STORE 1 +FLAGS (\\Seen)").await;
    let lines = until_update(&mut client).await;
    assert!(
        lines[0].starts_with("* 1 FETCH (FLAGS (\\Seen"),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "* ESEARCH (TAG \"I01\") REMOVEFROM (1 1)"
    );
    other.run("STORE 2 +FLAGS (\\Deleted)").await;
    other.run("EXPUNGE").await;
    let lines = until_update(&mut client).await;
    // The flag change may be told first, if IDLE woke between the two commands.
    let update = lines
        .iter()
        .position(|l| l == "* ESEARCH (TAG \"I01\") REMOVEFROM (2 2)")
        .expect("the expunged d leaves its second place");
    assert!(!lines.iter().any(|l| l.ends_with("EXPUNGE")), "{lines:?}");
    assert_eq!(update, lines.len() - 1);
    assert_eq!(client.line().await.trim_end(), "* 2 EXPUNGE");
    client.send(b"DONE\r\n").await;
    let (_, done) = client.until_tagged("i1").await;
    assert_eq!(done, "OK IDLE terminated.");
}

/// While expunges cannot be told (a FETCH by sequence number), a sorted context's results
/// may hold a message that can no longer be compared: its update waits, and the next command
/// that tells the expunge sends REMOVEFROM, EXPUNGE and then the ADDTO.
#[tokio::test]
async fn a_sorted_update_waits_for_an_untold_expunge() {
    let (server, mut client) = inbox_with(&["a", "c", "e"]).await;
    let mut other = other_session(&server).await;
    let (_, done) = client
        .run_tagged("W01", "SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNSEEN")
        .await;
    assert_eq!(done, "OK Sort completed.");
    other.run("STORE 2 +FLAGS (\\Deleted)").await;
    other.run("EXPUNGE").await;
    server.deliver("alice", &message("b", "new")).await;
    let (untagged, _) = client.run("FETCH 1 (FLAGS)").await;
    assert!(updates(&untagged).is_empty(), "{untagged:?}");
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        untagged,
        vec![
            "* ESEARCH (TAG \"W01\") REMOVEFROM (2 2)",
            "* 2 EXPUNGE",
            "* ESEARCH (TAG \"W01\") ADDTO (2 3)",
        ]
    );
}

/// Criteria that name sequence numbers are matched again whole when an expunge moves the
/// numbers: the message that slides into `1:2` joins at its sorted place.
#[tokio::test]
async fn sequence_number_criteria_follow_the_numbers_in_sort_order() {
    let (server, mut client) = inbox_with(&["c", "b", "a"]).await;
    let mut other = other_session(&server).await;
    let (untagged, _) = client
        .run_tagged("N01", "UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 1:2")
        .await;
    assert_eq!(untagged, vec!["* ESEARCH (TAG \"N01\") UID ALL 2,1"]);
    other.run("STORE 2 +FLAGS (\\Deleted)").await;
    other.run("EXPUNGE").await;
    let (untagged, _) = client.run("NOOP").await;
    assert_eq!(
        untagged,
        vec![
            "* ESEARCH (TAG \"N01\") UID REMOVEFROM (1 2)",
            "* 2 EXPUNGE",
            "* ESEARCH (TAG \"N01\") UID ADDTO (1 3)",
        ]
    );
}

/// Tiny deterministic generator: the same changes every run.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % u64::from(sides)) as u32
    }
}

const SUBJECTS: [&str; 6] = [
    "apple",
    "Re: banana",
    "cherry",
    "Fwd: apple",
    "date",
    "elder",
];
const SENDERS: [&str; 4] = [
    "Zed <zed@example.org>",
    "anna@example.org",
    "\"Bee\" <bee@example.org>",
    "carl@example.org",
];

fn random_mail(dice: &mut Dice, n: u32) -> String {
    let subject = SUBJECTS[dice.roll(6) as usize];
    let from = SENDERS[dice.roll(4) as usize];
    let date = format!(
        "{:02} Nov 2026 {:02}:00:00 +0000",
        1 + dice.roll(3),
        dice.roll(24)
    );
    let body = "x".repeat(1 + dice.roll(400) as usize);
    mail(&format!("{subject} {}", n % 3), from, &date, &body)
}

/// Sorted contexts by every kind of key, in UIDs and in sequence numbers, kept by a client
/// from ADDTO and REMOVEFROM alone, equal a fresh SORT after each of 40 rounds of
/// deliveries, APPENDs with old dates, flag changes and expunges from another session.
#[tokio::test]
async fn a_client_copy_kept_from_updates_equals_a_fresh_sort() {
    let server = start(true).await;
    let mut dice = Dice(5267);
    let mut last_uid = 0;
    for n in 0..12 {
        server.deliver("alice", &random_mail(&mut dice, n)).await;
        last_uid += 1;
    }
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    let mut other = other_session(&server).await;
    let mut copies = Vec::new();
    for (tag, command) in [
        (
            "K1",
            "UID SORT RETURN (UPDATE ALL) (SUBJECT REVERSE DATE) UTF-8 UNSEEN",
        ),
        (
            "K2",
            "SORT RETURN (UPDATE ALL) (REVERSE ARRIVAL) UTF-8 UNDELETED",
        ),
        (
            "K3",
            "UID SORT RETURN (UPDATE ALL) (SIZE FROM) UTF-8 OR FLAGGED SUBJECT apple",
        ),
        (
            "K4",
            "SORT RETURN (UPDATE ALL) (DISPLAYFROM REVERSE SUBJECT) UTF-8 ALL",
        ),
        (
            "K5",
            "UID SORT RETURN (UPDATE ALL) (REVERSE CC TO DATE) UTF-8 NOT KEYWORD $Junk",
        ),
    ] {
        copies.push(ClientCopy::start(&mut client, tag, command).await);
    }
    for round in 0..40 {
        let mut done_here = Vec::new();
        for _ in 0..1 + dice.roll(3) {
            let uid = 1 + dice.roll(last_uid);
            let flag = [
                "+FLAGS (\\Seen)",
                "-FLAGS (\\Seen)",
                "+FLAGS (\\Flagged)",
                "-FLAGS (\\Flagged)",
                "+FLAGS ($Junk)",
            ];
            match dice.roll(8) {
                0 => {
                    last_uid += 1;
                    let mail = random_mail(&mut dice, last_uid);
                    server.deliver("alice", &mail).await;
                    done_here.push("delivery".to_owned());
                }
                1 => {
                    last_uid += 1;
                    let mail = random_mail(&mut dice, last_uid);
                    let day = 1 + dice.roll(28);
                    let (_, done) = other
                        .run(&format!(
                            "APPEND INBOX \"{day:02}-Oct-2026 10:00:00 +0000\" {{{}+}}\r\n{mail}",
                            mail.len()
                        ))
                        .await;
                    assert!(done.starts_with("OK"), "{done}");
                    done_here.push("append".to_owned());
                }
                2 => {
                    other
                        .run(&format!("UID STORE {uid} +FLAGS (\\Deleted)"))
                        .await;
                    other.run(&format!("UID EXPUNGE {uid}")).await;
                    done_here.push(format!("expunge {uid}"));
                }
                n => {
                    let store = format!("UID STORE {uid} {}", flag[n as usize - 3]);
                    other.run(&store).await;
                    done_here.push(store);
                }
            }
        }
        let (untagged, _) = client.run("NOOP").await;
        let when = format!("round {round}: {done_here:?}");
        for copy in &mut copies {
            copy.apply(&untagged);
            copy.check(&mut client, &when).await;
        }
    }
    // The copies hold something worth comparing, and saw messages join and leave inside
    // their lists, not only at the ends.
    assert!(copies.iter().all(|copy| !copy.results.is_empty()));
    let [added, removed] = copies.iter().fold([0, 0], |[a, r], copy| {
        [a + copy.middle_pairs[0], r + copy.middle_pairs[1]]
    });
    assert!(
        added >= 20 && removed >= 20,
        "{added} ADDTO, {removed} REMOVEFROM pairs inside"
    );
}

/// Python's imaplib as a client: a UID SORT with UPDATE, another imaplib session appending
/// and flagging, and the ADDTO/REMOVEFROM read from imaplib's untagged responses.
#[tokio::test]
async fn python_imaplib_reads_sorted_updates() {
    let server = start(true).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/context_sort_imaplib.py"
    );
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
