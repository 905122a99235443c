//! Python's imaplib drives WITHIN, SEARCHRES and CONTEXT=SEARCH against `mailstead serve` over
//! TLS, on mail that arrived through Mailstead's SMTP port, with a second session changing
//! flags and expunging while the first keeps a search updated: the script
//! `tests/imap/search_extensions.py` stops at the first mismatch and says what it expected and
//! what the server answered.
//!
//! Needs `python3`; it fails, never skips, when it is missing. Set
//! `MAILSTEAD_IMAP_TEST_TARGET=dovecot` to run the same script against Debian's Dovecot (to
//! check the script itself).

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use harness::{DOMAIN, PASSWORD, Target, both, python};

#[test]
fn imaplib_saves_searches_and_follows_their_updates() {
    let temp = tempfile::tempdir().unwrap();
    let user = format!("user1@{DOMAIN}");
    let target = Target::start(temp.path(), std::slice::from_ref(&user), "");
    let args: Vec<String> = [
        "--imaps-port",
        &target.imaps_port().to_string(),
        "--imap-port",
        &target.imap_port().to_string(),
        "--cafile",
        &target.cert().display().to_string(),
        "--user",
        &user,
        "--password",
        PASSWORD,
        "--deliver",
        &target.delivery().url(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let output = python("search_extensions.py", &args);
    assert!(
        output.status.success(),
        "search extensions against {} failed:\n{}\n--- server log:\n{}",
        target.name(),
        both(&output),
        target.log()
    );
    println!("{}", String::from_utf8_lossy(&output.stdout));
}
