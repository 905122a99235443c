//! Python's imaplib drives every IMAP command against `mailstead serve` over TLS (implicit TLS
//! and STARTTLS), on mail that first arrived through Mailstead's SMTP port: the script
//! `tests/imap/imaplib_suite.py` stops at the first mismatch and says what it expected and
//! what the server answered. A second test checks LOGINDISABLED before STARTTLS when loopback
//! login without TLS is off.
//!
//! Needs `python3`; it fails, never skips, when it is missing. Set
//! `MAILSTEAD_IMAP_TEST_TARGET=dovecot` to run the same suite against Debian's Dovecot (to
//! check the suite itself).

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use harness::{DOMAIN, Mailstead, PASSWORD, Target, both, python};

fn suite_args(
    mode: &str,
    imaps: u16,
    imap: u16,
    cert: &std::path::Path,
    user: &str,
) -> Vec<String> {
    [
        mode,
        "--imaps-port",
        &imaps.to_string(),
        "--imap-port",
        &imap.to_string(),
        "--cafile",
        &cert.display().to_string(),
        "--user",
        user,
        "--password",
        PASSWORD,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[test]
fn imaplib_drives_every_command() {
    let temp = tempfile::tempdir().unwrap();
    let user = format!("user1@{DOMAIN}");
    let target = Target::start(temp.path(), std::slice::from_ref(&user), "");
    let mut args = suite_args(
        "suite",
        target.imaps_port(),
        target.imap_port(),
        &target.cert(),
        &user,
    );
    args.push("--deliver".to_owned());
    args.push(target.delivery().url());
    let output = python("imaplib_suite.py", &args);
    assert!(
        output.status.success(),
        "imaplib suite against {} failed:\n{}\n--- server log:\n{}",
        target.name(),
        both(&output),
        target.log()
    );
    println!("{}", String::from_utf8_lossy(&output.stdout));
}

#[test]
fn login_disabled_until_starttls_without_loopback_exception() {
    let temp = tempfile::tempdir().unwrap();
    let user = format!("user1@{DOMAIN}");
    // Mailstead only: Dovecot always trusts loopback connections.
    let mailstead = Mailstead::start(
        &temp.path().join("mailstead"),
        std::slice::from_ref(&user),
        "login_on_loopback_without_tls = false\n",
        "",
    );
    let args = suite_args(
        "logindisabled",
        mailstead.imaps_port,
        mailstead.imap_port,
        &mailstead.cert(),
        &user,
    );
    let output = python("imaplib_suite.py", &args);
    assert!(
        output.status.success(),
        "LOGINDISABLED check failed:\n{}\n--- server log:\n{}",
        both(&output),
        mailstead.log()
    );
    println!("{}", String::from_utf8_lossy(&output.stdout));
}
