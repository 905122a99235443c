//! SORT by the orders a folder keeps between commands, over a real socket and real Maildirs:
//! after deliveries, an EXPUNGE by another session, searches of part of the folder and with
//! several keys, every answer is the one the test computes afresh from the messages.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a failure is the test failing.

mod support;
use support::*;

use tokio::net::TcpStream;

/// What the test knows of a message: its UID and the values SORT compares.
#[derive(Clone, Debug)]
struct Known {
    uid: u32,
    subject: String,
    from: String,
    /// Day of November 2026.
    day: u32,
}

const SUBJECTS: [&str; 9] = [
    "melon", "apple", "Kiwi", "banana", "apple", "cherry", "Date", "fig", "grape",
];
const SENDERS: [&str; 4] = ["bob", "Ann", "carl", "ann.b"];

/// Delivers a message and records it with the UID it gets (the next after `last_uid`).
async fn deliver(
    server: &Server,
    (known, last_uid): &mut (Vec<Known>, u32),
    subject: &str,
    from: &str,
    day: u32,
) {
    let message = format!(
        "From: {from}@example.org\r\nTo: alice@example.com\r\nSubject: {subject}\r\n\
         Date: {day:02} Nov 2026 10:00:00 +0000\r\n\r\nbody\r\n"
    );
    server.deliver("alice", &message).await;
    *last_uid += 1;
    known.push(Known {
        uid: *last_uid,
        subject: subject.to_uppercase(),
        from: from.to_uppercase(),
        day,
    });
}

/// The UIDs in the order RFC 5256 gives, computed afresh: by the keys, then by UID.
fn expected<K: Ord>(known: &[Known], key: impl Fn(&Known) -> K) -> String {
    let mut sorted: Vec<&Known> = known.iter().collect();
    sorted.sort_by_key(|message| (key(message), message.uid));
    let uids: Vec<String> = sorted.iter().map(|m| m.uid.to_string()).collect();
    format!("* SORT {}", uids.join(" "))
}

/// The `* SORT` line a command answers (other untagged lines, EXPUNGE and EXISTS, may come
/// first).
async fn sort_line(client: &mut Client<TcpStream>, command: &str) -> String {
    let (untagged, done) = client.run(command).await;
    assert_eq!(done, "OK Sort completed.", "{command}");
    untagged
        .into_iter()
        .find(|line| line.starts_with("* SORT"))
        .unwrap_or_else(|| panic!("{command}: no * SORT"))
}

/// Runs each command twice (the second answer from ranks the first one kept) and compares
/// both with what the test computes, after a NOOP that lets the session see deliveries.
async fn check(client: &mut Client<TcpStream>, known: &[Known]) {
    let (_, done) = client.run("NOOP").await;
    assert!(done.starts_with("OK"), "{done}");
    let by_subject = expected(known, |m| m.subject.clone());
    let by_from_then_newest = expected(known, |m| (m.from.clone(), std::cmp::Reverse(m.day)));
    let by_reverse_subject = {
        let mut sorted: Vec<&Known> = known.iter().collect();
        // REVERSE turns the key's order only; ties stay in mailbox order.
        sorted.sort_by(|a, b| b.subject.cmp(&a.subject).then(a.uid.cmp(&b.uid)));
        let uids: Vec<String> = sorted.iter().map(|m| m.uid.to_string()).collect();
        format!("* SORT {}", uids.join(" "))
    };
    for _ in 0..2 {
        assert_eq!(
            sort_line(client, "UID SORT (SUBJECT) UTF-8 ALL").await,
            by_subject
        );
        assert_eq!(
            sort_line(client, "UID SORT (FROM REVERSE DATE) UTF-8 ALL").await,
            by_from_then_newest
        );
        assert_eq!(
            sort_line(client, "UID SORT (REVERSE SUBJECT) UTF-8 ALL").await,
            by_reverse_subject
        );
    }
}

#[tokio::test]
async fn kept_orders_answer_as_a_fresh_sort_after_deliveries_and_expunges() {
    let server = start(true).await;
    let mut folder = (Vec::new(), 0);
    for i in 0..24 {
        let subject = SUBJECTS[i * 7 % SUBJECTS.len()];
        let from = SENDERS[i % SENDERS.len()];
        deliver(&server, &mut folder, subject, from, (i * 5 % 11 + 1) as u32).await;
    }
    let mut client = other_session(&server).await;
    check(&mut client, &folder.0).await;

    // A delivery that sorts first by subject and in the middle by sender.
    deliver(&server, &mut folder, "Aardvark", "bz", 4).await;
    check(&mut client, &folder.0).await;

    // Another session expunges two messages, one of them the first by subject.
    let mut other = other_session(&server).await;
    let gone = [folder.0[1].uid, folder.0[24].uid];
    let (_, done) = other
        .run(&format!(
            "UID STORE {},{} +FLAGS (\\Deleted)",
            gone[0], gone[1]
        ))
        .await;
    assert!(done.starts_with("OK"), "{done}");
    let (_, done) = other.run("EXPUNGE").await;
    assert!(done.starts_with("OK"), "{done}");
    folder.0.retain(|m| !gone.contains(&m.uid));
    check(&mut client, &folder.0).await;
    // The other session, which did not sort yet, shares the kept orders.
    check(&mut other, &folder.0).await;

    // Sequence numbers after the expunge: positions in the folder.
    let known = &folder.0;
    let by_subject = expected(known, |m| m.subject.clone());
    let sequences: Vec<String> = by_subject
        .trim_start_matches("* SORT ")
        .split(' ')
        .map(|uid| {
            let uid: u32 = uid.parse().unwrap();
            (known.iter().position(|m| m.uid == uid).unwrap() + 1).to_string()
        })
        .collect();
    assert_eq!(
        sort_line(&mut client, "SORT (SUBJECT) UTF-8 ALL").await,
        format!("* SORT {}", sequences.join(" "))
    );

    // A delivery, then a sort of a few messages (which reads their values, as the new one
    // has no rank yet), then of all.
    deliver(&server, &mut folder, "apple", "carl", 30).await;
    let (_, done) = client.run("NOOP").await;
    assert!(done.starts_with("OK"), "{done}");
    let carls: Vec<Known> = folder
        .0
        .iter()
        .filter(|m| m.from == "CARL")
        .cloned()
        .collect();
    assert!(carls.len() * 2 < folder.0.len());
    assert_eq!(
        sort_line(&mut client, "UID SORT (SUBJECT) UTF-8 FROM carl").await,
        expected(&carls, |m| m.subject.clone())
    );
    check(&mut client, &folder.0).await;
    assert_eq!(
        sort_line(&mut client, "UID SORT (SUBJECT) UTF-8 FROM carl").await,
        expected(&carls, |m| m.subject.clone())
    );
}
