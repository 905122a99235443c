//! MULTIAPPEND as imapclient sends it: two spaces before a message that has neither flags nor
//! a date (after the literal of the one before it). Dovecot stores both messages; so must we,
//! whether the messages come inline or are streamed (over 64 KiB), before or after the spaces.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a failure is the test failing.

mod support;
use support::*;

/// `{n+}\r\n<message>`, a LITERAL+ literal.
fn plus_literal(message: &str) -> String {
    format!("{{{}+}}\r\n{message}", message.len())
}

async fn append_with_double_space(first_body_size: usize, second_body_size: usize) {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let first = message("First of two", &"o".repeat(first_body_size));
    let second = message("Second of two", &"x".repeat(second_body_size));
    let command = format!(
        "t1 APPEND INBOX (\\Seen) {}  {}\r\n",
        plus_literal(&first),
        plus_literal(&second)
    );
    client.send(command.as_bytes()).await;
    let (_, done) = client.until_tagged("t1").await;
    assert!(done.starts_with("OK [APPENDUID "), "{done}");
    assert!(done.contains(" 1:2]"), "{done}");
    let (untagged, done) = client.run("STATUS INBOX (MESSAGES)").await;
    assert!(done.starts_with("OK"), "{done}");
    assert!(
        untagged.iter().any(|line| line.ends_with("(MESSAGES 2)")),
        "{untagged:?}"
    );
}

#[tokio::test]
async fn multiappend_accepts_two_spaces_before_an_inline_message() {
    append_with_double_space(10, 100).await;
}

#[tokio::test]
async fn multiappend_accepts_two_spaces_before_a_streamed_message() {
    append_with_double_space(10, 80_000).await;
}

#[tokio::test]
async fn multiappend_accepts_two_spaces_after_a_streamed_message() {
    append_with_double_space(80_000, 100).await;
}
