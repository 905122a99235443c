//! The web console in a real browser: Debian's chromium, headless, driven by playwright-core
//! (`tests/console/browser.js`) against a real `mailstead serve`, at phone width. A super
//! admin made with the CLI logs in and creates a domain, a mailbox and an alias with a
//! sender; the new user logs in and changes their password. Then, outside the browser:
//! `mailstead resolve` follows the alias to the mailbox, a message delivered over SMTP to the
//! alias is read back over IMAPS with the new password, and the old password is refused.
//!
//! Screenshots are kept under the target's tmp dir (`console_browser/`), and each one's page
//! text is checked. Needs `chromium`, `node` with `data/node_modules/playwright-core` and
//! `python3`; it fails, never skips, without them.

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use harness::{Delivery, Mailstead, both};
use serde_json::{Value, json};

const ADMIN: &str = "admin@example.test";
const ADMIN_PASSWORD: &str = "console-admin-secret-1";
const DOMAIN: &str = "browser.test";
const USER: &str = "pat@browser.test";
const USER_PASSWORD: &str = "first-password-of-pat-1";
const NEW_PASSWORD: &str = "second-password-of-pat-2";
const ALIAS: &str = "team@browser.test";

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn chromium() -> String {
    support::require("chromium", "chromium");
    let output = Command::new("sh")
        .arg("-c")
        .arg("command -v chromium")
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn python(args: &[&str]) -> Value {
    support::python_json("tests/console/console_client.py", args)
}

/// The page text of the screenshot named `name`, after checking the image was written.
fn screen<'a>(screens: &'a [Value], name: &str) -> &'a str {
    let screen = screens
        .iter()
        .find(|screen| screen["name"] == name)
        .unwrap_or_else(|| panic!("no screenshot {name}"));
    let image = fs::read(screen["path"].as_str().unwrap()).unwrap();
    assert!(image.starts_with(b"\x89PNG"), "{name} is not a PNG");
    screen["text"].as_str().unwrap()
}

#[test]
fn an_admin_and_a_user_manage_mail_in_a_browser() {
    let chromium = chromium();
    support::require("node", "Node.js 20 or later");
    let playwright = data_dir().join("node_modules/playwright-core/package.json");
    assert!(
        playwright.exists(),
        "playwright-core is missing: run `npm ci` in {} (scripts/test-services.sh does)",
        data_dir().display()
    );

    let dir = tempfile::tempdir().unwrap();
    let mailstead = Mailstead::start(dir.path(), &[], "", "");
    mailstead.cli(&["domain", "add", "example.test"], None);
    mailstead.cli(
        &["mailbox", "add", ADMIN, "--super-admin"],
        Some(&format!("{ADMIN_PASSWORD}\n")),
    );

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console_browser");
    let _ = fs::remove_dir_all(&shots);
    fs::create_dir_all(&shots).unwrap();
    let config = json!({
        "base": format!("http://127.0.0.1:{}", mailstead.http_port),
        "chromium": chromium,
        "shots": shots,
        "admin": ADMIN,
        "admin_password": ADMIN_PASSWORD,
        "domain": DOMAIN,
        "user": USER,
        "user_password": USER_PASSWORD,
        "new_password": NEW_PASSWORD,
        "alias": ALIAS,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/browser.js");
    let output = Command::new("node")
        .arg(script)
        .arg(config.to_string())
        .env("NODE_PATH", data_dir().join("node_modules"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let result: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "browser.js printed no JSON ({err}): {}\nserver log:\n{}",
            both(&output),
            mailstead.log()
        )
    });
    assert!(
        result.get("error").is_none(),
        "the browser run failed: {}\nscreens so far: {:#?}\nserver log:\n{}",
        result["error"],
        result["screens"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|screen| format!("{}: {}", screen["name"], screen["text"]))
            .collect::<Vec<_>>(),
        mailstead.log()
    );
    let screens = result["screens"].as_array().unwrap();

    assert!(screen(screens, "login").contains("Log in"));
    let dashboard = screen(screens, "dashboard");
    assert!(dashboard.contains("super admin"), "{dashboard}");
    assert!(
        dashboard.contains("Audit log") && dashboard.contains("Queue"),
        "{dashboard}"
    );
    let domain = screen(screens, "domain-created");
    assert!(
        domain.contains(DOMAIN) && domain.contains("Saved."),
        "{domain}"
    );
    assert!(domain.contains("Made in the browser"), "{domain}");
    let mailbox = screen(screens, "mailbox-created");
    assert!(
        mailbox.contains(USER) && mailbox.contains("Saved."),
        "{mailbox}"
    );
    assert!(mailbox.contains("How mail to it is delivered"), "{mailbox}");
    assert!(mailbox.contains("Quota: 1G"), "{mailbox}");
    let alias = screen(screens, "alias-created");
    assert!(alias.contains(ALIAS) && alias.contains("Saved."), "{alias}");
    assert!(
        alias.matches(USER).count() >= 2,
        "recipient and sender: {alias}"
    );
    let account = screen(screens, "account");
    assert!(account.contains("Change your password"), "{account}");
    // A plain user sees no admin pages.
    assert!(
        !account.contains("Audit log") && !account.contains("Domains"),
        "{account}"
    );
    let changed = screen(screens, "password-changed");
    assert!(changed.contains("Your password was changed"), "{changed}");
    let again = screen(screens, "logged-in-with-new-password");
    assert!(again.contains(USER) && again.contains("user"), "{again}");

    // What the console made, as the CLI sees it.
    let resolved = mailstead.cli(&["resolve", ALIAS], None);
    let resolved = String::from_utf8_lossy(&resolved.stdout);
    assert!(resolved.contains(USER), "{resolved}");
    let may_send = mailstead.cli(&["may-send", USER, ALIAS], None);
    assert!(may_send.status.success(), "{}", both(&may_send));

    // A message to the alias is read over IMAPS with the new password; the old one is refused.
    Delivery::Smtp(mailstead.smtp_port).deliver(
        ALIAS,
        "From: someone@client.test\r\nTo: team@browser.test\r\nSubject: made in the console\r\n\r\nHello.\r\n",
    );
    let port = mailstead.imaps_port.to_string();
    let cert = mailstead.cert();
    let cert = cert.to_str().unwrap();
    let read = python(&["imap_subjects", &port, cert, USER, NEW_PASSWORD]);
    assert_eq!(read["accepted"], true, "{read}");
    assert_eq!(read["subjects"], json!(["made in the console"]), "{read}");
    let old = python(&["imap_subjects", &port, cert, USER, USER_PASSWORD]);
    assert_eq!(old["accepted"], false, "{old}");
    assert!(
        old["error"]
            .as_str()
            .unwrap()
            .contains("AUTHENTICATIONFAILED"),
        "{old}"
    );
}
