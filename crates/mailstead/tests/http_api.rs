//! The JSON API end to end against `mailstead serve`: a token made with `mailstead token
//! create` creates a mailbox that SMTP accepts at once, which receives a message read over
//! IMAP and counted in `/metrics`; audit rows name who and from where; bad input gets a 4xx
//! JSON body naming the field; sessions, CSRF and login throttling; paging; and schemathesis
//! against the OpenAPI document with no 5xx.
//!
//! Needs `python3` with `schemathesis` (scripts/test-services.sh installs it); fails, never
//! skips, when it is missing.

#![allow(clippy::unwrap_used)]

#[path = "http/api_client.rs"]
mod api;
#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::process::{Command, Stdio};

use api::{Auth, call, log_in, raw};
use harness::{DOMAIN, Mailstead, PASSWORD, both};
use serde_json::{Value, json};

/// Quick failure penalties, so throttling shows within a few attempts.
const FAST_PENALTY: &str = "\n[auth]\nmax_failures_per_address = 3\nfailure_delay = \"10ms\"\nmax_failure_delay = \"50ms\"\n";

fn token(mailstead: &Mailstead, scope: &str) -> String {
    let output = mailstead.cli(
        &[
            "--json", "token", "create", "--scope", scope, "--name", "test",
        ],
        None,
    );
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    created["secret"].as_str().unwrap().to_owned()
}

fn tool(args: &[&str]) -> Value {
    support::python_json("tests/http/http_tool.py", args)
}

fn sample(text: &str, series: &str) -> Option<f64> {
    support::prometheus_sample(text, series)
}

#[test]
fn a_token_creates_a_mailbox_that_receives_and_reads_mail() {
    let temp = tempfile::tempdir().unwrap();
    let admin = format!("admin@{DOMAIN}");
    let mailstead = Mailstead::start(
        temp.path(),
        std::slice::from_ref(&admin),
        "login_on_loopback_without_tls = true\n",
        "",
    );
    let port = mailstead.http_port;
    let secret = token(&mailstead, "super");
    let auth = Auth::Token(&secret);

    let new = format!("new@{DOMAIN}");
    let created = call(
        port,
        "POST",
        "/api/mailboxes",
        &auth,
        Some(
            &json!({ "address": new, "password": "a-new-password", "name": "New", "quota": "50M" }),
        ),
    );
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["address"], new.as_str());

    // At once: the server's own directory saw its own write.
    let sent = tool(&["smtp", &mailstead.smtp_port.to_string(), &new]);
    assert_eq!(sent["refused"], json!([]), "{sent}");
    let login = tool(&[
        "imap_login",
        &mailstead.imap_port.to_string(),
        &new,
        "a-new-password",
    ]);
    assert_eq!(login["accepted"], true, "{login}");
    let read = tool(&[
        "imap_fetch",
        &mailstead.imap_port.to_string(),
        &new,
        "a-new-password",
    ]);
    assert!(
        read["messages"][0]
            .as_str()
            .unwrap()
            .contains("A message to count."),
        "{read}"
    );

    let metrics = call(port, "GET", "/metrics", &Auth::None, None);
    let text = metrics.body.as_str().unwrap();
    assert_eq!(
        sample(text, "mailstead_messages_received_total{protocol=\"smtp\"}"),
        Some(1.0),
        "{text}"
    );

    // Who and from where.
    let audit = call(port, "GET", "/api/audit?limit=5", &auth, None);
    assert_eq!(audit.status, 200, "{audit:?}");
    let entry = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["action"] == "mailbox.add" && entry["subject"] == new.as_str())
        .unwrap_or_else(|| panic!("{}", audit.body))
        .clone();
    assert!(
        entry["actor"].as_str().unwrap().starts_with("token:"),
        "{entry}"
    );
    assert_eq!(entry["source"], "http 127.0.0.1 token", "{entry}");
    // The CLI's own changes say where they came from too.
    let cli_entry = call(
        port,
        "GET",
        "/api/audit?limit=1&sort=created_at",
        &auth,
        None,
    );
    assert_eq!(cli_entry.body["items"][0]["source"], "cli", "{cli_entry:?}");
}

#[test]
fn bad_input_is_refused_with_the_field_named() {
    let temp = tempfile::tempdir().unwrap();
    let admin = format!("admin@{DOMAIN}");
    let mailstead = Mailstead::start(temp.path(), std::slice::from_ref(&admin), "", "");
    let port = mailstead.http_port;
    let secret = token(&mailstead, "super");
    let auth = Auth::Token(&secret);

    let unknown = call(
        port,
        "POST",
        "/api/domains",
        &auth,
        Some(&json!({ "domain": "x.test", "colour": "blue" })),
    );
    assert_eq!(unknown.status, 400, "{unknown:?}");
    assert_eq!(unknown.error_field(), Some("colour"), "{unknown:?}");

    let wrong_type = call(
        port,
        "POST",
        "/api/domains",
        &auth,
        Some(&json!({ "domain": "x.test", "max_mailboxes": "many" })),
    );
    assert_eq!(wrong_type.status, 400, "{wrong_type:?}");
    assert_eq!(wrong_type.error_field(), Some("max_mailboxes"));

    let bad_quota = call(
        port,
        "POST",
        "/api/mailboxes",
        &auth,
        Some(
            &json!({ "address": format!("q@{DOMAIN}"), "password": "long-enough", "quota": "lots" }),
        ),
    );
    assert_eq!(bad_quota.status, 422, "{bad_quota:?}");
    assert_eq!(bad_quota.error_field(), Some("quota"));

    let short_password = call(
        port,
        "POST",
        "/api/mailboxes",
        &auth,
        Some(&json!({ "address": format!("p@{DOMAIN}"), "password": "short" })),
    );
    assert_eq!(short_password.status, 422, "{short_password:?}");
    assert_eq!(short_password.error_field(), Some("password"));

    let bad_address = call(
        port,
        "POST",
        "/api/mailboxes",
        &auth,
        Some(&json!({ "address": "not an address", "password": "long-enough" })),
    );
    assert_eq!(bad_address.status, 422, "{bad_address:?}");
    assert_eq!(bad_address.error_field(), Some("address"));

    let taken = call(
        port,
        "POST",
        "/api/mailboxes",
        &auth,
        Some(&json!({ "address": admin, "password": "long-enough" })),
    );
    assert_eq!(taken.status, 409, "{taken:?}");

    let bad_limit = call(port, "GET", "/api/mailboxes?limit=5000", &auth, None);
    assert_eq!(bad_limit.status, 400, "{bad_limit:?}");
    assert_eq!(bad_limit.error_field(), Some("limit"));

    let not_json = raw(
        port,
        "POST",
        "/api/domains",
        &auth,
        Some("domain=x.test"),
        "application/x-www-form-urlencoded",
    );
    assert_eq!(not_json.status, 415, "{not_json:?}");
    assert_eq!(not_json.error_field(), Some("Content-Type"));

    let broken = raw(
        port,
        "POST",
        "/api/domains",
        &auth,
        Some("{\"domain\":"),
        "application/json",
    );
    assert_eq!(broken.status, 400, "{broken:?}");
    assert!(broken.body["error"]["message"].is_string(), "{broken:?}");

    let huge = format!("{{\"domain\": \"{}\"}}", "a".repeat(100 * 1024));
    let too_big = raw(
        port,
        "POST",
        "/api/domains",
        &auth,
        Some(&huge),
        "application/json",
    );
    assert_eq!(too_big.status, 413, "{too_big:?}");
    assert!(too_big.body["error"]["message"].is_string(), "{too_big:?}");

    // Before login, a few KB at most.
    let long_login = format!(
        "{{\"address\": \"a@{DOMAIN}\", \"password\": \"{}\"}}",
        "p".repeat(8 * 1024)
    );
    let refused = raw(
        port,
        "POST",
        "/api/session",
        &Auth::None,
        Some(&long_login),
        "application/json",
    );
    assert_eq!(refused.status, 413, "{refused:?}");

    let nowhere = call(port, "GET", "/api/nothing-here", &auth, None);
    assert_eq!(nowhere.status, 404, "{nowhere:?}");
    assert!(nowhere.body["error"]["message"].is_string());

    // Nothing half-applied: the refused domain does not exist.
    let absent = call(port, "GET", "/api/domains/x.test", &auth, None);
    assert_eq!(absent.status, 404, "{absent:?}");
}

#[test]
fn sessions_csrf_own_settings_and_paging() {
    let temp = tempfile::tempdir().unwrap();
    let users: Vec<String> = ["carol", "alice", "bob", "dave"]
        .iter()
        .map(|name| format!("{name}@{DOMAIN}"))
        .collect();
    let mailstead = Mailstead::start(temp.path(), &users, "", "");
    let port = mailstead.http_port;

    let none = call(port, "GET", "/api/me", &Auth::None, None);
    assert_eq!(none.status, 401, "{none:?}");

    let alice = &users[1];
    let id = log_in(port, alice, PASSWORD);
    let me = call(port, "GET", "/api/me", &Auth::Cookie(&id), None);
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["address"], alice.as_str());

    // A change with the cookie but without this server's Origin is refused.
    let forged = call(
        port,
        "PATCH",
        "/api/me",
        &Auth::CookieNoOrigin(&id),
        Some(&json!({ "name": "Mallory" })),
    );
    assert_eq!(forged.status, 403, "{forged:?}");
    assert_eq!(forged.error_field(), Some("Origin"));
    let renamed = call(
        port,
        "PATCH",
        "/api/me",
        &Auth::Cookie(&id),
        Some(&json!({ "name": "Alice", "alternative_email": "alice@elsewhere.test" })),
    );
    assert_eq!(renamed.status, 200, "{renamed:?}");
    assert_eq!(renamed.body["name"], "Alice");

    // A user's own password: the current one first.
    let wrong = call(
        port,
        "PUT",
        "/api/me/password",
        &Auth::Cookie(&id),
        Some(&json!({ "current_password": "nope-nope", "new_password": "a-better-secret" })),
    );
    assert_eq!(wrong.status, 403, "{wrong:?}");
    assert_eq!(wrong.error_field(), Some("current_password"));
    let changed = call(
        port,
        "PUT",
        "/api/me/password",
        &Auth::Cookie(&id),
        Some(&json!({ "current_password": PASSWORD, "new_password": "a-better-secret" })),
    );
    assert_eq!(changed.status, 204, "{changed:?}");
    // Every session of the mailbox ended with the old password.
    let ended = call(port, "GET", "/api/me", &Auth::Cookie(&id), None);
    assert_eq!(ended.status, 401, "{ended:?}");
    let id = log_in(port, alice, "a-better-secret");
    let out = call(port, "DELETE", "/api/session", &Auth::Cookie(&id), None);
    assert_eq!(out.status, 204);
    assert_eq!(
        call(port, "GET", "/api/session", &Auth::Cookie(&id), None).status,
        401
    );

    // Paging, filtering and sorting in SQL.
    let secret = token(&mailstead, "super");
    let auth = Auth::Token(&secret);
    let page = call(
        port,
        "GET",
        "/api/mailboxes?limit=2&offset=1&sort=-address",
        &auth,
        None,
    );
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.body["total"], 4);
    let shown: Vec<&str> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|mailbox| mailbox["address"].as_str().unwrap())
        .collect();
    assert_eq!(shown, [users[0].as_str(), users[2].as_str()]);
    let filtered = call(port, "GET", "/api/mailboxes?q=AL", &auth, None);
    assert_eq!(filtered.body["total"], 1, "{filtered:?}");
    assert_eq!(filtered.body["items"][0]["address"], alice.as_str());
    let escaped = call(port, "GET", "/api/mailboxes?q=%25", &auth, None);
    assert_eq!(
        escaped.body["total"], 0,
        "a % is a character, not a wildcard: {escaped:?}"
    );
}

#[test]
fn repeated_wrong_passwords_are_throttled_as_on_imap() {
    let temp = tempfile::tempdir().unwrap();
    let bob = format!("bob@{DOMAIN}");
    let mailstead = Mailstead::start(temp.path(), std::slice::from_ref(&bob), "", FAST_PENALTY);
    let port = mailstead.http_port;
    // Throttling: the authenticator IMAP uses slows, then refuses, an address that keeps
    // failing, even with the right password.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let answer = call(
            port,
            "POST",
            "/api/session",
            &Auth::None,
            Some(&json!({ "address": bob, "password": "wrong-wrong" })),
        );
        statuses.push(answer.status);
    }
    assert_eq!(&statuses[..3], [401, 401, 401], "{statuses:?}");
    assert_eq!(&statuses[3..], [429, 429], "{statuses:?}");
    let blocked = call(
        port,
        "POST",
        "/api/session",
        &Auth::None,
        Some(&json!({ "address": bob, "password": PASSWORD })),
    );
    assert_eq!(blocked.status, 429, "{blocked:?}");
    assert!(blocked.header("retry-after").is_some(), "{blocked:?}");
}

#[test]
fn schemathesis_finds_no_server_error() {
    support::require("python3", "python3");
    let version = Command::new("python3")
        .args(["-m", "schemathesis.cli", "--version"])
        .output()
        .unwrap();
    assert!(
        version.status.success(),
        "schemathesis is missing; run scripts/test-services.sh: {}",
        both(&version)
    );
    let temp = tempfile::tempdir().unwrap();
    let admin = format!("admin@{DOMAIN}");
    // Failed logins are answered after a short delay, within schemathesis's timeout.
    let mailstead = Mailstead::start(temp.path(), std::slice::from_ref(&admin), "", FAST_PENALTY);
    let secret = token(&mailstead, "super");
    let base = format!("http://127.0.0.1:{}", mailstead.http_port);
    let output = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{base}/api/openapi.json"))
        .args(["--url", &base])
        .args(["--checks", "not_a_server_error"])
        .args(["--max-examples", "15"])
        .args(["--header", &format!("Authorization: Bearer {secret}")])
        .args(["--seed", "1"])
        .env("SCHEMATHESIS_HOOKS", "")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "schemathesis found a problem:\n{}\nserver log:\n{}",
        both(&output),
        mailstead.log()
    );
    // The token was not revoked or lost on the way: the run really was authenticated.
    let still = call(
        mailstead.http_port,
        "GET",
        "/api/session",
        &Auth::Token(&secret),
        None,
    );
    assert_eq!(still.status, 200, "{still:?}");
}
