//! The web console over HTTP, as a browser's requests made by Python's http.client against a
//! real `mailstead serve`: the login, CSRF (no token, a wrong token, a foreign Origin: all
//! 403, nothing changed), a domain admin kept out of another domain's pages and the super
//! admins' pages, a description with `<script>` shown escaped, a refused form shown again
//! with the error at its field and the typed values kept, quota usage read from the Maildir
//! after a real delivery, a queued message retried and removed, the stylesheet's caching, and
//! the size and traffic charts shown only to those who may read what they draw.
//!
//! Needs `python3`; it fails, never skips, without it.

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::path::Path;

use harness::{Mailstead, both};
use serde_json::{Value, json};

const ADMIN: &str = "root@example.test";
const ADMIN_PASSWORD: &str = "console-admin-secret-1";
const DOMAIN_ADMIN: &str = "keeper@example.test";
const STRANGER: &str = "someone@other.test";

/// Runs `console_client.py` and parses what it prints.
fn client(args: &[&str]) -> Value {
    support::python_json("tests/console/console_client.py", args)
}

struct Browser {
    base: String,
    cookie: String,
}

impl Browser {
    fn log_in(base: &str, address: &str, password: &str) -> Browser {
        let answer = client(&["login", base, address, password]);
        assert_eq!(answer["status"], 303, "{answer}");
        assert_eq!(answer["location"], "/console/", "{answer}");
        let set_cookie = answer["set_cookie"].as_str().unwrap();
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
            "{set_cookie}"
        );
        Browser {
            base: base.to_owned(),
            cookie: answer["cookie"].as_str().unwrap().to_owned(),
        }
    }

    fn get(&self, path: &str) -> Value {
        client(&["get", &self.base, path, &self.cookie])
    }

    fn post(&self, path: &str, fields: Value) -> Value {
        client(&["post", &self.base, path, &self.cookie, &fields.to_string()])
    }

    fn post_from(&self, path: &str, fields: Value, origin: &str) -> Value {
        client(&[
            "post",
            &self.base,
            path,
            &self.cookie,
            &fields.to_string(),
            origin,
        ])
    }

    /// The CSRF token in the forms of `path`.
    fn csrf(&self, path: &str) -> String {
        let page = self.get(path);
        assert_eq!(page["status"], 200, "{page}");
        let body = page["body"].as_str().unwrap();
        let marker = "name=\"csrf\" value=\"";
        let start = body
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF field in {body}"))
            + marker.len();
        body[start..].split('"').next().unwrap().to_owned()
    }
}

fn start(dir: &Path) -> Mailstead {
    let mailstead = Mailstead::start(dir, &[STRANGER.to_owned()], "", "");
    mailstead.cli(&["domain", "add", "example.test"], None);
    mailstead.cli(
        &["mailbox", "add", ADMIN, "--super-admin"],
        Some(&format!("{ADMIN_PASSWORD}\n")),
    );
    mailstead.cli(
        &["mailbox", "add", DOMAIN_ADMIN],
        Some(&format!("{ADMIN_PASSWORD}\n")),
    );
    mailstead.cli(
        &["domain", "admin", "add", DOMAIN_ADMIN, "example.test"],
        None,
    );
    mailstead
}

fn body(answer: &Value) -> &str {
    answer["body"].as_str().unwrap()
}

#[test]
fn forms_need_the_sessions_csrf_token_and_this_servers_origin() {
    let dir = tempfile::tempdir().unwrap();
    let mailstead = start(dir.path());
    let base = format!("http://127.0.0.1:{}", mailstead.http_port);

    // Not logged in: every page leads to the login.
    let anonymous = client(&["get", &base, "/console/domains", "-"]);
    assert_eq!(anonymous["status"], 303, "{anonymous}");
    assert_eq!(anonymous["location"], "/console/login");
    let root = client(&["get", &base, "/", "-"]);
    assert_eq!(root["status"], 303, "{root}");

    let wrong = client(&["login", &base, ADMIN, "not-the-password"]);
    assert_eq!(wrong["status"], 401, "{wrong}");
    assert!(
        body(&wrong).contains("wrong address or password"),
        "{wrong}"
    );
    assert!(
        body(&wrong).contains(&format!("value=\"{ADMIN}\"")),
        "address kept: {wrong}"
    );
    assert_eq!(wrong["set_cookie"], "", "{wrong}");

    let admin = Browser::log_in(&base, ADMIN, ADMIN_PASSWORD);
    let token = admin.csrf("/console/domains");
    let new = |name: &str| json!({ "domain": name, "active": "on" });

    let missing = admin.post("/console/domains", new("missing.test"));
    assert_eq!(missing["status"], 403, "{missing}");
    assert!(body(&missing).contains("CSRF"), "{missing}");

    let mut forged = new("forged.test");
    forged["csrf"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let forged = admin.post("/console/domains", forged);
    assert_eq!(forged["status"], 403, "{forged}");

    // Another session's token is no good either.
    let other_session = Browser::log_in(&base, ADMIN, ADMIN_PASSWORD);
    let mut borrowed = new("borrowed.test");
    borrowed["csrf"] = json!(other_session.csrf("/console/domains"));
    let borrowed = admin.post("/console/domains", borrowed);
    assert_eq!(borrowed["status"], 403, "{borrowed}");

    let mut foreign = new("foreign.test");
    foreign["csrf"] = json!(token);
    let foreign = admin.post_from("/console/domains", foreign, "http://evil.example");
    assert_eq!(foreign["status"], 403, "{foreign}");

    let list = admin.get("/console/domains");
    for name in [
        "missing.test",
        "forged.test",
        "borrowed.test",
        "foreign.test",
    ] {
        assert!(!body(&list).contains(name), "{name} was created: {list}");
    }

    let mut good = new("made.test");
    good["csrf"] = json!(token);
    let made = admin.post("/console/domains", good);
    assert_eq!(made["status"], 303, "{made}");
    assert_eq!(made["location"], "/console/domains/made.test?saved=1");
    let page = admin.get("/console/domains/made.test?saved=1");
    assert_eq!(page["status"], 200, "{page}");
    assert!(body(&page).contains("Saved."), "{page}");

    // Logging out ends the session: its cookie no longer opens a page.
    let out = admin.post("/console/logout", json!({ "csrf": token }));
    assert_eq!(out["status"], 303, "{out}");
    assert!(
        out["set_cookie"].as_str().unwrap().contains("Max-Age=0"),
        "{out}"
    );
    assert_eq!(admin.get("/console/domains")["status"], 303);
}

#[test]
fn a_domain_admin_sees_only_their_domain() {
    let dir = tempfile::tempdir().unwrap();
    let mailstead = start(dir.path());
    let base = format!("http://127.0.0.1:{}", mailstead.http_port);
    let keeper = Browser::log_in(&base, DOMAIN_ADMIN, ADMIN_PASSWORD);

    let own = keeper.get("/console/domains/example.test");
    assert_eq!(own["status"], 200, "{own}");
    // A domain admin does not change the domain itself.
    assert!(!body(&own).contains("Settings"), "{own}");

    for path in [
        "/console/domains/other.test",
        "/console/mailboxes/someone@other.test",
        "/console/audit",
        "/console/queue",
    ] {
        let answer = keeper.get(path);
        let status = answer["status"].as_u64().unwrap();
        assert!(status == 403 || status == 404, "{path}: {answer}");
        assert!(
            !body(&answer).contains(STRANGER) || path.contains(STRANGER),
            "{answer}"
        );
    }
    let list = keeper.get("/console/mailboxes");
    assert_eq!(list["status"], 200, "{list}");
    assert!(body(&list).contains(DOMAIN_ADMIN), "{list}");
    assert!(!body(&list).contains(STRANGER), "{list}");
    let domains = keeper.get("/console/domains");
    assert!(!body(&domains).contains("other.test"), "{domains}");

    // Creating a mailbox in another domain is refused by the API's policy, shown at the form.
    let token = keeper.csrf("/console/mailboxes");
    let refused = keeper.post(
        "/console/mailboxes",
        json!({ "csrf": token, "address": "intruder@other.test", "password": "long-enough-pass-1", "active": "on" }),
    );
    assert_eq!(refused["status"], 403, "{refused}");
    let listed = mailstead.cli(&["mailbox", "list"], None);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("intruder@"));
}

#[test]
fn typed_text_is_escaped_and_a_refused_form_comes_back_filled() {
    let dir = tempfile::tempdir().unwrap();
    let mailstead = start(dir.path());
    let base = format!("http://127.0.0.1:{}", mailstead.http_port);
    let admin = Browser::log_in(&base, ADMIN, ADMIN_PASSWORD);
    let token = admin.csrf("/console/domains");

    let script = "<script>alert('owned')</script>";
    let made = admin.post(
        "/console/domains",
        json!({ "csrf": token, "domain": "escaped.test", "description": script, "active": "on" }),
    );
    assert_eq!(made["status"], 303, "{made}");
    for path in ["/console/domains", "/console/domains/escaped.test"] {
        let page = admin.get(path);
        assert_eq!(page["status"], 200, "{page}");
        assert!(!body(&page).contains("<script"), "{path} unescaped: {page}");
        assert!(
            body(&page).contains("&lt;script&gt;alert('owned')&lt;/script&gt;"),
            "{path}: {page}"
        );
        assert!(
            page["content_type"]
                .as_str()
                .unwrap()
                .starts_with("text/html")
        );
    }

    // The domain's settings: a limit that is no number is refused at its field.
    let not_a_number = admin.post(
        "/console/domains/escaped.test",
        json!({ "csrf": token, "description": "kept", "max_aliases": "many", "active": "on" }),
    );
    assert_eq!(not_a_number["status"], 400, "{not_a_number}");
    assert!(
        body(&not_a_number).contains("id=\"edit-domain-max_aliases-error\""),
        "{not_a_number}"
    );
    assert!(
        body(&not_a_number).contains("value=\"kept\""),
        "{not_a_number}"
    );
    let edited = admin.post(
        "/console/domains/escaped.test",
        json!({ "csrf": token, "description": "plain now", "max_aliases": "5", "active": "on" }),
    );
    assert_eq!(edited["status"], 303, "{edited}");
    let page = admin.get("/console/domains/escaped.test");
    assert!(body(&page).contains("plain now"), "{page}");
    assert!(
        body(&page).contains("name=\"max_aliases\" type=\"number\" value=\"5\""),
        "{page}"
    );

    // A quota without a unit: the API's message at the quota field, the rest as typed.
    let refused = admin.post(
        "/console/mailboxes",
        json!({
            "csrf": token,
            "address": "carol@escaped.test",
            "password": "long-enough-pass-1",
            "name": "Carol <C>",
            "quota": "12",
            "active": "on",
        }),
    );
    assert_eq!(refused["status"], 422, "{refused}");
    let page = body(&refused);
    assert!(
        page.contains("id=\"new-mailbox-quota-error\"") && page.contains("has no unit"),
        "{refused}"
    );
    assert!(page.contains("value=\"carol@escaped.test\""), "{refused}");
    assert!(page.contains("value=\"Carol &lt;C&gt;\""), "{refused}");
    assert!(
        !page.contains("long-enough-pass-1"),
        "a password sent back: {refused}"
    );

    // A duplicate domain: the conflict at the domain field.
    let again = admin.post(
        "/console/domains",
        json!({ "csrf": token, "domain": "escaped.test", "active": "on" }),
    );
    assert_eq!(again["status"], 409, "{again}");
    assert!(
        body(&again).contains("id=\"new-domain-domain-error\""),
        "{again}"
    );

    // Usage comes from the Maildir: none before the first message, then a bar of the quota
    // (100M, as the harness gives its users).
    let path = format!("/console/mailboxes/{STRANGER}");
    let before = admin.get(&path);
    assert!(body(&before).contains("no mail yet"), "{before}");
    harness::Delivery::Smtp(mailstead.smtp_port).deliver(
        STRANGER,
        "From: a@client.test\r\nTo: someone@other.test\r\nSubject: usage\r\n\r\nSome text.\r\n",
    );
    let after = admin.get(&path);
    assert!(body(&after).contains("<meter"), "{after}");
    assert!(body(&after).contains(" of 100.0 MiB (0%)"), "{after}");
    let list = admin.get("/console/mailboxes?q=someone");
    assert!(body(&list).contains(" of 100.0 MiB (0%)"), "{list}");

    // The stylesheet is cached for long under a versioned name.
    let page = admin.get("/console/");
    let style = body(&page)
        .split("href=\"")
        .find_map(|rest| rest.split('"').next().filter(|href| href.ends_with(".css")))
        .unwrap()
        .to_owned();
    let css = client(&["get", &base, &style, "-"]);
    assert_eq!(css["status"], 200, "{css}");
    assert!(
        css["content_type"]
            .as_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[test]
fn a_super_admin_retries_and_removes_queued_mail() {
    let dir = tempfile::tempdir().unwrap();
    let mailstead = start(dir.path());
    let base = format!("http://127.0.0.1:{}", mailstead.http_port);
    // An alias with an outside member: its copy waits in the queue for a gateway that is down.
    let closed = support::free_port();
    mailstead.cli(
        &[
            "transport",
            "add",
            "remote.test",
            &format!("smtp:[127.0.0.1]:{closed}"),
        ],
        None,
    );
    mailstead.cli(
        &["alias", "add", "out@example.test", "friend@remote.test"],
        None,
    );
    harness::Delivery::Smtp(mailstead.smtp_port).deliver(
        "out@example.test",
        "From: a@client.test\r\nTo: out@example.test\r\nSubject: queued\r\n\r\nWaiting.\r\n",
    );
    let admin = Browser::log_in(&base, ADMIN, ADMIN_PASSWORD);
    let page = admin.get("/console/queue");
    assert_eq!(page["status"], 200, "{page}");
    let text = body(&page);
    assert!(text.contains("friend@remote.test"), "{page}");
    let marker = "action=\"/console/queue/";
    let start = text.find(marker).unwrap() + marker.len();
    let id = text[start..].split('/').next().unwrap().to_owned();
    let token = admin.csrf("/console/queue");

    let retried = admin.post(
        &format!("/console/queue/{id}/retry"),
        json!({ "csrf": token }),
    );
    assert_eq!(retried["status"], 303, "{retried}");
    assert_eq!(retried["location"], "/console/queue?saved=1");
    // Still there: the gateway is still down.
    assert!(body(&admin.get("/console/queue")).contains(&id));

    let unsigned = admin.post(&format!("/console/queue/{id}/remove"), json!({}));
    assert_eq!(unsigned["status"], 403, "{unsigned}");
    let removed = admin.post(
        &format!("/console/queue/{id}/remove"),
        json!({ "csrf": token }),
    );
    assert_eq!(removed["status"], 303, "{removed}");
    let after = admin.get("/console/queue");
    assert!(body(&after).contains("The queue is empty."), "{after}");
    let listed = mailstead.cli(&["queue", "list"], None);
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(&id),
        "{}",
        both(&listed)
    );

    // Removing it again: the queue's answer, shown as a page.
    let gone = admin.post(
        &format!("/console/queue/{id}/remove"),
        json!({ "csrf": token }),
    );
    assert_eq!(gone["status"], 404, "{gone}");
}

#[test]
fn edits_land_in_the_directory_and_the_audit_log_names_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let mailstead = start(dir.path());
    let base = format!("http://127.0.0.1:{}", mailstead.http_port);
    let admin = Browser::log_in(&base, ADMIN, ADMIN_PASSWORD);
    let token = admin.csrf("/console/");

    let path = format!("/console/mailboxes/{STRANGER}");
    let saved = admin.post(
        &path,
        json!({ "csrf": token, "name": "Some One", "quota": "2G", "active": "on" }),
    );
    assert_eq!(saved["status"], 303, "{saved}");
    let page = admin.get(&format!("{path}?saved=1"));
    assert!(body(&page).contains("value=\"Some One\""), "{page}");
    assert!(body(&page).contains("Quota: 2G"), "{page}");

    // The two new passwords must agree; then the admin's new password is the one IMAP takes.
    let password_path = format!("{path}/password");
    let differ = admin.post(
        &password_path,
        json!({ "csrf": token, "new_password": "new-secret-one-1", "new_password_again": "new-secret-two-2" }),
    );
    assert_eq!(differ["status"], 422, "{differ}");
    assert!(
        body(&differ).contains("id=\"password-new_password_again-error\""),
        "{differ}"
    );
    let set = admin.post(
        &password_path,
        json!({ "csrf": token, "new_password": "new-secret-one-1", "new_password_again": "new-secret-one-1" }),
    );
    assert_eq!(set["status"], 303, "{set}");
    let user = Browser::log_in(&base, STRANGER, "new-secret-one-1");

    // The user's own page: name and alternative address; a wrong current password refused.
    let user_token = user.csrf("/console/account");
    let bad = user.post(
        "/console/account",
        json!({ "csrf": user_token, "name": "Me", "alternative_email": "not an address" }),
    );
    assert_eq!(bad["status"], 422, "{bad}");
    assert!(
        body(&bad).contains("id=\"account-alternative_email-error\""),
        "{bad}"
    );
    let good = user.post(
        "/console/account",
        json!({ "csrf": user_token, "name": "Me", "alternative_email": "me@elsewhere.test" }),
    );
    assert_eq!(good["status"], 303, "{good}");
    let wrong = user.post(
        "/console/account/password",
        json!({ "csrf": user_token, "current_password": "guess", "new_password": "x-long-password-3", "new_password_again": "x-long-password-3" }),
    );
    assert_eq!(wrong["status"], 403, "{wrong}");
    assert!(
        body(&wrong).contains("id=\"own-password-current_password-error\""),
        "{wrong}"
    );
    // A plain user is not offered their quota.
    let account = user.get(&path);
    assert_eq!(account["status"], 200, "{account}");
    assert!(!body(&account).contains("name=\"quota\""), "{account}");

    let audit = admin.get("/console/audit");
    assert_eq!(audit["status"], 200, "{audit}");
    let text = body(&audit);
    assert!(text.contains(STRANGER), "{audit}");
    assert!(text.contains(&format!("mailbox:{ADMIN}")), "{audit}");
    assert!(text.contains(&format!("mailbox:{STRANGER}")), "{audit}");
    assert!(text.contains("http 127.0.0.1 session"), "{audit}");
}

#[test]
fn charts_are_shown_only_to_those_who_may_read_what_they_draw() {
    let dir = tempfile::tempdir().unwrap();
    let mailstead = start(dir.path());
    let base = format!("http://127.0.0.1:{}", mailstead.http_port);

    let outsider = client(&["get", &base, "/console/charts/traffic.svg", "-"]);
    assert_eq!(outsider["status"], 303, "{outsider}");
    assert_eq!(outsider["location"], "/console/login", "{outsider}");

    let admin = Browser::log_in(&base, ADMIN, ADMIN_PASSWORD);
    let dashboard = admin.get("/console/");
    assert!(
        body(&dashboard).contains("/console/charts/traffic.svg?period=day"),
        "{dashboard}"
    );
    for (path, title) in [
        ("/console/charts/traffic.svg?period=week", "last week"),
        ("/console/charts/size.svg", "all mailboxes"),
        (
            "/console/charts/size.svg?domain=example.test",
            "example.test",
        ),
    ] {
        let chart = admin.get(path);
        assert_eq!(chart["status"], 200, "{path}: {chart}");
        assert!(body(&chart).contains("<svg"), "{path}: {chart}");
        assert!(body(&chart).contains(title), "{path}: {chart}");
    }

    let keeper = Browser::log_in(&base, DOMAIN_ADMIN, ADMIN_PASSWORD);
    let own_dashboard = keeper.get("/console/");
    assert!(
        !body(&own_dashboard).contains("traffic.svg"),
        "{own_dashboard}"
    );
    let domain_page = keeper.get("/console/domains/example.test");
    assert!(
        body(&domain_page).contains("/console/charts/size.svg?domain=example.test"),
        "{domain_page}"
    );
    for path in [
        "/console/charts/size.svg?domain=example.test",
        "/console/charts/size.svg?mailbox=keeper@example.test",
    ] {
        let chart = keeper.get(path);
        assert_eq!(chart["status"], 200, "{path}: {chart}");
        assert!(body(&chart).contains("<svg"), "{path}: {chart}");
    }
    for path in [
        "/console/charts/traffic.svg?period=day",
        "/console/charts/size.svg",
        "/console/charts/size.svg?domain=other.test",
        "/console/charts/size.svg?mailbox=someone@other.test",
    ] {
        let chart = keeper.get(path);
        assert_eq!(chart["status"], 403, "{path}: {chart}");
        assert!(!body(&chart).contains("<svg"), "{path}: {chart}");
    }
}

#[test]
fn admins_remove_aliases_mailboxes_and_empty_domains() {
    let dir = tempfile::tempdir().unwrap();
    let mailstead = start(dir.path());
    let base = format!("http://127.0.0.1:{}", mailstead.http_port);
    mailstead.cli(&["domain", "add", "spare.test"], None);
    mailstead.cli(
        &["mailbox", "add", "gone@example.test"],
        Some(&format!("{ADMIN_PASSWORD}\n")),
    );
    mailstead.cli(
        &["alias", "add", "team@example.test", "gone@example.test"],
        None,
    );
    let listed = |what: &str| {
        let output = mailstead.cli(&[what, "list"], None);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    // A domain admin removes inside their domain; the domain itself is not theirs to remove.
    let keeper = Browser::log_in(&base, DOMAIN_ADMIN, ADMIN_PASSWORD);
    let domain_page = keeper.get("/console/domains/example.test");
    assert!(
        !body(&domain_page).contains("Remove domain"),
        "{domain_page}"
    );
    let aliases = keeper.get("/console/aliases");
    assert!(
        body(&aliases).contains("/console/aliases/team@example.test/remove"),
        "{aliases}"
    );
    let token = keeper.csrf("/console/aliases");
    let forged = keeper.post(
        "/console/aliases/team@example.test/remove",
        json!({ "csrf": "forged" }),
    );
    assert_eq!(forged["status"], 403, "{forged}");
    assert!(listed("alias").contains("team@example.test"));
    let removed = keeper.post(
        "/console/aliases/team@example.test/remove",
        json!({ "csrf": token }),
    );
    assert_eq!(removed["status"], 303, "{removed}");
    assert_eq!(
        removed["location"], "/console/aliases?removed=1",
        "{removed}"
    );
    assert!(!listed("alias").contains("team@example.test"));
    let page = keeper.get("/console/mailboxes/gone@example.test");
    assert!(body(&page).contains("Remove mailbox"), "{page}");
    let removed = keeper.post(
        "/console/mailboxes/gone@example.test/remove",
        json!({ "csrf": token }),
    );
    assert_eq!(removed["status"], 303, "{removed}");
    assert!(!listed("mailbox").contains("gone@example.test"));
    let outside = keeper.post(
        "/console/domains/spare.test/remove",
        json!({ "csrf": token }),
    );
    assert_eq!(outside["status"], 403, "{outside}");

    // A super admin removes an empty domain; one with mailboxes is refused with the reason.
    let admin = Browser::log_in(&base, ADMIN, ADMIN_PASSWORD);
    let token = admin.csrf("/console/domains");
    let busy = admin.post(
        "/console/domains/example.test/remove",
        json!({ "csrf": token }),
    );
    assert_eq!(busy["status"], 409, "{busy}");
    assert!(listed("domain").contains("example.test"));
    let removed = admin.post(
        "/console/domains/spare.test/remove",
        json!({ "csrf": token }),
    );
    assert_eq!(removed["status"], 303, "{removed}");
    assert!(!listed("domain").contains("spare.test"));
    let list = admin.get("/console/domains?removed=1");
    assert!(body(&list).contains("Removed."), "{list}");

    let output = mailstead.cli(&["audit"], None);
    let trail = String::from_utf8_lossy(&output.stdout);
    for action in ["alias.remove", "mailbox.remove", "domain.remove"] {
        assert!(trail.contains(action), "{action}: {trail}");
    }
}
