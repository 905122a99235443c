//! ManageSieve end to end: `mailstead serve` with `sieve-connect` (Debian's sieve-connect, over
//! STARTTLS with the server's self-signed certificate) editing a user's scripts, and a Python
//! raw-socket client for the protocol's edge cases. After each step the files in the user's
//! home must be in Pigeonhole's layout: `~/sieve/NAME.sieve`, the active one linked from
//! `~/.dovecot.sieve` as `sieve/NAME.sieve`.
//!
//! Needs root, `sieve-connect` and `python3`; it fails, never skips, when one is missing.

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use harness::{DOMAIN, Mailstead, PASSWORD, both};
use serde_json::Value;

const USER: &str = "sieveuser";

fn address() -> String {
    format!("{USER}@{DOMAIN}")
}

/// The user's home, where the scripts are.
fn home(mailstead: &Mailstead) -> PathBuf {
    mailstead.dir.join("data/mailboxes").join(DOMAIN).join(USER)
}

/// Runs `sieve-connect` with `args` (an action and its script names) against the server,
/// the password on stdin, TLS required but the self-signed certificate accepted.
fn sieve_connect(mailstead: &Mailstead, args: &[&str]) -> Output {
    support::require("sieve-connect", "Debian's sieve-connect");
    let mut child = Command::new("sieve-connect")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &mailstead.managesieve_port.to_string(),
            "--nosrv",
            "--user",
            &address(),
            "--passwordfd",
            "0",
            "--notlsverify",
            "--noclearauth",
            "--noclearchan",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn sieve_connect_ok(mailstead: &Mailstead, args: &[&str]) -> String {
    let output = sieve_connect(mailstead, args);
    assert!(
        output.status.success(),
        "sieve-connect {args:?}: {}\nserver log:\n{}",
        both(&output),
        mailstead.log()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The script files in `~/sieve` and where `~/.dovecot.sieve` links to.
fn layout(home: &Path) -> (Vec<String>, Option<PathBuf>) {
    let mut scripts: Vec<String> = fs::read_dir(home.join("sieve"))
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".sieve"))
                .collect()
        })
        .unwrap_or_default();
    scripts.sort();
    let link = fs::read_link(home.join(".dovecot.sieve")).ok();
    (scripts, link)
}

#[test]
fn sieve_connect_uploads_lists_activates_downloads_and_deletes() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("server");
    let mailstead = Mailstead::start(&dir, &[address()], "", "");
    let home = home(&mailstead);
    let work = temp.path().join("client");
    fs::create_dir_all(&work).unwrap();
    let script = "require [\"fileinto\"];\r\nif header :contains \"subject\" \"[list]\" {\r\n  fileinto \"Lists\";\r\n}\r\n";
    let local = work.join("lists.sieve");
    fs::write(&local, script).unwrap();
    let local = local.to_str().unwrap();

    sieve_connect_ok(
        &mailstead,
        &["--upload", "--localsieve", local, "--remotesieve", "lists"],
    );
    assert_eq!(
        fs::read_to_string(home.join("sieve/lists.sieve")).unwrap(),
        script
    );
    assert_eq!(layout(&home), (vec!["lists.sieve".to_owned()], None));

    // sieve-connect prints LISTSCRIPTS' lines as the server sent them.
    let listed = sieve_connect_ok(&mailstead, &["--list"]);
    assert_eq!(listed.trim(), "\"lists\"", "{listed}");

    sieve_connect_ok(&mailstead, &["--activate", "--remotesieve", "lists"]);
    assert_eq!(
        layout(&home),
        (
            vec!["lists.sieve".to_owned()],
            Some(PathBuf::from("sieve/lists.sieve"))
        )
    );
    let listed = sieve_connect_ok(&mailstead, &["--list"]);
    assert_eq!(listed.trim(), "\"lists\" ACTIVE", "{listed}");

    let downloaded = work.join("downloaded.sieve");
    sieve_connect_ok(
        &mailstead,
        &[
            "--download",
            "--remotesieve",
            "lists",
            "--localsieve",
            downloaded.to_str().unwrap(),
        ],
    );
    assert_eq!(fs::read_to_string(&downloaded).unwrap(), script);

    // The active script cannot be deleted; deactivated, it can.
    let refused = sieve_connect(&mailstead, &["--delete", "--remotesieve", "lists"]);
    assert!(!refused.status.success(), "{}", both(&refused));
    assert!(home.join("sieve/lists.sieve").exists());
    sieve_connect_ok(&mailstead, &["--deactivate"]);
    assert_eq!(layout(&home), (vec!["lists.sieve".to_owned()], None));
    sieve_connect_ok(&mailstead, &["--delete", "--remotesieve", "lists"]);
    assert_eq!(layout(&home), (vec![], None));

    // A script that does not compile is refused with the compiler's line.
    let broken = work.join("broken.sieve");
    fs::write(&broken, "keep;\r\nfilein \"x\";\r\n").unwrap();
    let refused = sieve_connect(
        &mailstead,
        &[
            "--upload",
            "--localsieve",
            broken.to_str().unwrap(),
            "--remotesieve",
            "broken",
        ],
    );
    assert!(!refused.status.success(), "{}", both(&refused));
    assert!(both(&refused).contains("line 2"), "{}", both(&refused));
    assert_eq!(layout(&home), (vec![], None));
}

#[test]
fn a_plain_dovecot_sieve_file_from_dovecot_is_kept_as_dovecot_orig() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("server");
    let mailstead = Mailstead::start(&dir, &[address()], "", "");
    let home = home(&mailstead);
    fs::create_dir_all(&home).unwrap();
    let legacy = "require \"fileinto\";\nfileinto \"Old\";\n";
    fs::write(home.join(".dovecot.sieve"), legacy).unwrap();
    harness::chown_recursive(&home, owner_of(&mailstead.dir.join("data")));

    // Not a listed script, as with Pigeonhole.
    assert_eq!(sieve_connect_ok(&mailstead, &["--list"]).trim(), "");

    let work = temp.path().join("client");
    fs::create_dir_all(&work).unwrap();
    let local = work.join("new.sieve");
    fs::write(&local, "keep;\r\n").unwrap();
    sieve_connect_ok(
        &mailstead,
        &[
            "--upload",
            "--localsieve",
            local.to_str().unwrap(),
            "--remotesieve",
            "new",
        ],
    );
    sieve_connect_ok(&mailstead, &["--activate", "--remotesieve", "new"]);
    assert_eq!(
        layout(&home),
        (
            vec!["dovecot.orig.sieve".to_owned(), "new.sieve".to_owned()],
            Some(PathBuf::from("sieve/new.sieve"))
        )
    );
    assert_eq!(
        fs::read_to_string(home.join("sieve/dovecot.orig.sieve")).unwrap(),
        legacy
    );
}

fn owner_of(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().uid()
}

fn edges(args: &[&str]) -> Value {
    support::python_json("tests/managesieve/managesieve_edges.py", args)
}

/// One step of the `session` run by name.
fn step<'a>(steps: &'a Value, name: &str) -> &'a Value {
    steps
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

fn final_of(steps: &Value, name: &str) -> String {
    step(steps, name)["final"].as_str().unwrap().to_owned()
}

fn assert_starts(steps: &Value, name: &str, prefix: &str) {
    let final_line = final_of(steps, name);
    assert!(
        final_line.starts_with(prefix),
        "{name}: {final_line:?} does not start with {prefix:?}"
    );
}

#[test]
fn passwords_only_after_starttls_unless_loopback_is_allowed() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("server");
    let mut mailstead = Mailstead::start(&dir, &[address()], "", "");
    let port = mailstead.managesieve_port.to_string();

    let result = edges(&["tls-rules", &port, &address(), PASSWORD]);
    let plain = &result["caps_plain"];
    assert_eq!(plain["SASL"], "", "{result}");
    assert_eq!(plain["VERSION"], "1.0");
    assert_eq!(plain["IMPLEMENTATION"], "Mailstead");
    assert!(plain.get("STARTTLS").is_some(), "{result}");
    assert!(plain.get("NOTIFY").is_none(), "{result}");
    assert_eq!(plain["MAXREDIRECTS"], "4");
    let sieve = plain["SIEVE"].as_str().unwrap();
    for extension in ["fileinto", "vacation", "envelope", "variables"] {
        assert!(sieve.split(' ').any(|e| e == extension), "{sieve}");
    }
    assert!(
        result["authenticate_plain"]
            .as_str()
            .unwrap()
            .starts_with("NO (ENCRYPT-NEEDED)"),
        "{result}"
    );
    assert!(
        result["listscripts_unauthenticated"]
            .as_str()
            .unwrap()
            .starts_with("NO")
    );
    let tls = &result["caps_tls"];
    assert_eq!(tls["SASL"], "PLAIN LOGIN", "{result}");
    assert!(tls.get("STARTTLS").is_none(), "{result}");
    assert!(
        result["authenticate_tls"]
            .as_str()
            .unwrap()
            .starts_with("OK")
    );

    // With login_on_loopback_without_tls, a loopback client may log in in the clear.
    mailstead.stop();
    let config = dir.join("mailstead.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        text.replacen(
            "[managesieve]\n",
            "[managesieve]\nlogin_on_loopback_without_tls = true\n",
            1,
        ),
    )
    .unwrap();
    mailstead.serve();
    let result = edges(&["tls-rules", &port, &address(), PASSWORD]);
    assert_eq!(result["caps_plain"]["SASL"], "PLAIN LOGIN", "{result}");
    assert!(
        result["authenticate_plain"]
            .as_str()
            .unwrap()
            .starts_with("OK"),
        "{result}"
    );
}

#[test]
fn protocol_edge_cases_and_files_after_each_step() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("server");
    let mut mailstead = Mailstead::start(&dir, &[address()], "", "");
    mailstead.stop();
    let config = dir.join("mailstead.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        text.replacen(
            "[managesieve]\n",
            "[managesieve]\nmax_scripts = 3\nmax_script_size = 10000\nmax_storage = 20000\n",
            1,
        ),
    )
    .unwrap();
    mailstead.serve();
    let home = home(&mailstead);
    let steps = edges(&[
        "session",
        &mailstead.managesieve_port.to_string(),
        &address(),
        PASSWORD,
        home.to_str().unwrap(),
    ]);
    let files = |name: &str| step(&steps, name)["files"].clone();
    let scripts = |name: &str| files(name)["scripts"].clone();
    let link = |name: &str| files(name)["link"].clone();

    assert_starts(&steps, "wrong password", "NO");
    assert_eq!(step(&steps, "login")["lines"][0], "\"\"");
    assert_starts(&steps, "login", "OK");
    let owner = step(&steps, "capability")["lines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|line| line == &Value::from(format!("\"OWNER\" \"{}\"", address())));
    assert!(owner, "{}", step(&steps, "capability"));

    // Syntax errors: NO with the compiler's line; nothing stored.
    assert_starts(&steps, "put bad", "NO");
    assert!(final_of(&steps, "put bad").contains("line 3"), "{steps}");
    assert_eq!(scripts("put bad"), serde_json::json!([]));
    assert_starts(&steps, "check bad", "NO");
    assert!(final_of(&steps, "check bad").contains("line 3"));
    assert_starts(&steps, "check good", "OK");
    assert_eq!(scripts("check good"), serde_json::json!([]));

    assert_starts(&steps, "put first", "OK");
    assert_eq!(scripts("put first"), serde_json::json!(["first.sieve"]));
    assert_eq!(link("put first"), Value::Null);
    assert_eq!(
        step(&steps, "list")["lines"],
        serde_json::json!(["\"first\""])
    );

    assert_starts(&steps, "activate first", "OK");
    assert_eq!(link("activate first"), "sieve/first.sieve");

    // RENAMESCRIPT of the active script keeps it active under its new name.
    assert_starts(&steps, "rename active", "OK");
    assert_eq!(
        scripts("rename active"),
        serde_json::json!(["renamed.sieve"])
    );
    assert_eq!(link("rename active"), "sieve/renamed.sieve");
    assert_eq!(
        step(&steps, "list after rename")["lines"],
        serde_json::json!(["\"renamed\" ACTIVE"])
    );
    let got = step(&steps, "get renamed");
    assert_eq!(
        got["lines"][0].as_str().unwrap(),
        "require \"fileinto\";\r\nif header :contains \"subject\" \"x\" { fileinto \"X\"; }\r\n"
    );
    assert_starts(&steps, "get renamed", "OK");

    assert_starts(&steps, "delete active", "NO (ACTIVE)");
    assert_starts(&steps, "get missing", "NO (NONEXISTENT)");
    assert_starts(&steps, "activate missing", "NO (NONEXISTENT)");
    assert_starts(&steps, "invalid name", "NO");
    assert_eq!(
        scripts("invalid name"),
        serde_json::json!(["renamed.sieve"])
    );

    // Quotas.
    assert_starts(&steps, "havespace too big", "NO (QUOTA/MAXSIZE)");
    assert_starts(&steps, "havespace fits", "OK");
    assert_starts(&steps, "put second", "OK");
    assert_starts(&steps, "put storage full", "NO (QUOTA/MAXSTORAGE)");
    assert_eq!(
        scripts("put storage full"),
        serde_json::json!(["renamed.sieve", "second.sieve"])
    );
    assert_starts(&steps, "put third", "OK");
    assert_starts(&steps, "put fourth", "NO (QUOTA/MAXSCRIPTS)");
    assert_starts(&steps, "havespace count", "NO (QUOTA/MAXSCRIPTS)");
    assert_starts(&steps, "replace third", "OK");
    assert_eq!(
        fs::read_to_string(home.join("sieve/third.sieve")).unwrap(),
        "discard;"
    );
    assert_starts(&steps, "rename taken", "NO (ALREADYEXISTS)");

    // A literal over the limit: refused, its bytes dropped, the session still in step.
    assert_starts(&steps, "literal too big", "NO (QUOTA/MAXSIZE)");
    assert_eq!(
        scripts("literal too big"),
        serde_json::json!(["renamed.sieve", "second.sieve", "third.sieve"])
    );
    assert_starts(&steps, "noop tag", "OK (TAG \"sync-1\")");

    assert_starts(&steps, "deactivate", "OK");
    assert_eq!(link("deactivate"), Value::Null);
    assert_starts(&steps, "delete", "OK");
    assert_eq!(
        scripts("delete"),
        serde_json::json!(["second.sieve", "third.sieve"])
    );
    assert_starts(&steps, "unknown", "NO");
    assert_starts(&steps, "unauthenticate", "OK");
    assert_starts(&steps, "list unauthenticated", "NO");
    assert_starts(&steps, "logout", "OK");
}
