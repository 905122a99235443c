//! The `mailstead` binary as an administrator uses it: each test runs the real binary in a
//! fresh directory with no config file (so the SQLite directory lands in `./data`), and checks
//! its output and exit status.
//!
//! The MUM import test needs MariaDB at 127.0.0.1:3306 (user root, no password; override with
//! MAILSTEAD_TEST_MYSQL_HOST/PORT/USER) and the `mariadb` client. It fails, never skips, when
//! they are missing: CI must provide them.

// The helpers below are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mailstead_directory::resolve::{Outcome, Rejection};
use mailstead_directory::{Directory, DirectoryOptions};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mailstead");

fn data_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A fresh working directory for the binary.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        support::reachable_by_server(dir.path());
        Env { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(self.path())
            .env_remove("MAILSTEAD_CONFIG")
            .env_remove("MAILSTEAD_MUM_URL")
            .env_remove("RUST_LOG")
            .env("USER", "tester");
        command
    }

    /// Runs with `stdin` as standard input (a pipe, as a script would give it).
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        support::run(self.command(args), stdin)
    }

    /// Runs, expects exit `code`, returns stdout.
    fn expect(&self, args: &[&str], stdin: Option<&str>, code: i32) -> Output {
        let output = self.run(args, stdin);
        assert_eq!(
            output.status.code(),
            Some(code),
            "mailstead {args:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn ok(&self, args: &[&str]) -> String {
        stdout(&self.expect(args, None, 0))
    }

    fn ok_with(&self, args: &[&str], stdin: &str) -> String {
        stdout(&self.expect(args, Some(stdin), 0))
    }

    /// Runs, expects exit `code`, returns stderr.
    fn fails(&self, args: &[&str], stdin: Option<&str>, code: i32) -> String {
        stderr(&self.expect(args, stdin, code))
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let text = self.ok(&args);
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("{args:?}: {err}\n{text}"))
    }

    fn mailbox_addresses(&self) -> Vec<String> {
        self.json(&["mailbox", "list"])
            .as_array()
            .unwrap()
            .iter()
            .map(|mailbox| mailbox["address"].as_str().unwrap().to_owned())
            .collect()
    }

    fn database_url(&self) -> String {
        format!("sqlite://{}/data/mailstead.db", self.path().display())
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The README walk-through: a domain, a mailbox, an alias with a local and an external
/// recipient, a sender right, and the questions the servers will ask.
#[test]
fn walk_through() {
    let env = Env::new();
    let out = env.ok(&[
        "domain",
        "add",
        "example.com",
        "--description",
        "Our domain",
        "--quota",
        "2G",
    ]);
    assert!(out.starts_with("added domain example.com\n"), "{out}");
    assert!(env.path().join("data/mailstead.db").exists());

    let out = env.ok_with(
        &[
            "mailbox",
            "add",
            "Alice@Example.com",
            "--name",
            "Alice",
            "--quota",
            "500M",
        ],
        "alice-secret-1\n",
    );
    assert!(
        out.starts_with("added mailbox alice@example.com\n"),
        "{out}"
    );
    assert!(out.contains("password scheme:   ARGON2ID"), "{out}");
    env.ok_with(&["mailbox", "add", "bob@example.com"], "bob-secret-12\n");

    let out = env.ok(&[
        "alias",
        "add",
        "info@example.com",
        "alice@example.com",
        "carol@elsewhere.org",
        "--description",
        "Contact",
    ]);
    assert!(
        out.contains("recipients:  alice@example.com, carol@elsewhere.org"),
        "{out}"
    );
    let out = env.ok(&["sender", "add", "info@example.com", "bob@example.com"]);
    assert!(
        out.starts_with("bob@example.com may now send as info@example.com"),
        "{out}"
    );

    // resolve explains each address.
    let out = env.ok(&[
        "resolve",
        "info@example.com",
        "alice+news@example.com",
        "nobody@example.com",
        "x@not-here.org",
    ]);
    let expected = [
        "info@example.com: deliver",
        "  why: info@example.com is an alias for alice@example.com, carol@elsewhere.org",
        "  why: alice@example.com is a mailbox (quota 500M)",
        "  why: carol@elsewhere.org is external",
        "  -> carol@elsewhere.org (external)",
        "alice+news@example.com: deliver",
        "  why: alice@example.com is a mailbox (quota 500M)",
        "nobody@example.com: reject (no such mailbox or alias)",
        "  why: nobody@example.com is no mailbox or alias of example.com",
        "x@not-here.org: reject (not a domain hosted here)",
        "  why: not-here.org is not hosted here",
    ];
    for line in expected {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    assert!(out.contains("  -> alice@example.com (mailbox, "), "{out}");
    assert!(out.contains("detail \"news\""), "{out}");
    let resolutions = env.json(&["resolve", "info@example.com", "nobody@example.com"]);
    assert_eq!(resolutions[0]["outcome"]["decision"], "deliver");
    assert_eq!(
        resolutions[0]["outcome"]["recipients"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(resolutions[1]["outcome"]["decision"], "reject");
    assert!(!resolutions[1]["trace"].as_array().unwrap().is_empty());

    // auth test: the right password is accepted, a wrong one refused with exit 1.
    let out = env.ok_with(&["auth", "test", "alice@example.com"], "alice-secret-1\n");
    assert_eq!(
        out,
        "accepted: alice@example.com and this password may log in\n"
    );
    let output = env.expect(
        &["auth", "test", "alice@example.com"],
        Some("wrong-password\n"),
        1,
    );
    assert_eq!(stdout(&output), "refused: wrong password\n");
    let output = env.expect(
        &["auth", "test", "nobody@example.com"],
        Some("whatever1\n"),
        1,
    );
    assert_eq!(stdout(&output), "refused: no mailbox has this login\n");

    // may-send: yes for its own address and the alias it was given, no otherwise.
    let out = env.ok(&["may-send", "bob@example.com", "info@example.com"]);
    assert_eq!(out, "yes: bob@example.com may send as info@example.com\n");
    env.ok(&["may-send", "alice@example.com", "alice@example.com"]);
    let output = env.expect(
        &["may-send", "alice@example.com", "info@example.com"],
        None,
        1,
    );
    assert!(stdout(&output).starts_with("no: alice@example.com may not send as info@example.com"));
    let out = env.ok(&["sender", "show", "bob@example.com"]);
    assert_eq!(
        out,
        "bob@example.com may send as:\n  bob@example.com\n  info@example.com\n"
    );

    // Deactivating changes the answers; the audit log names the unix user.
    env.ok(&["mailbox", "update", "alice@example.com", "--deactivate"]);
    let out = env.ok(&["resolve", "alice@example.com"]);
    assert!(
        out.starts_with("alice@example.com: reject (the mailbox is deactivated)"),
        "{out}"
    );
    let output = env.expect(
        &["auth", "test", "alice@example.com"],
        Some("alice-secret-1\n"),
        1,
    );
    assert_eq!(
        stdout(&output),
        "refused: the mailbox or its domain is deactivated\n"
    );
    let audit = env.json(&["audit", "--limit", "2"]);
    assert_eq!(audit[0]["action"], "mailbox.update");
    assert_eq!(audit[0]["actor"], "cli:tester");
    assert_eq!(audit.as_array().unwrap().len(), 2);

    // The new password replaces the old one.
    env.ok_with(
        &["mailbox", "passwd", "bob@example.com"],
        "bob-new-secret\n",
    );
    env.ok_with(&["auth", "test", "bob@example.com"], "bob-new-secret\n");
    env.expect(
        &["auth", "test", "bob@example.com"],
        Some("bob-secret-12\n"),
        1,
    );
}

#[test]
fn listings_print_json() {
    let env = Env::new();
    env.ok(&[
        "domain",
        "add",
        "example.com",
        "--max-mailboxes",
        "10",
        "--max-quota",
        "10G",
    ]);
    env.ok_with(&["mailbox", "add", "alice@example.com"], "alice-secret-1\n");
    env.ok(&[
        "alias",
        "add",
        "@example.com",
        "alice@example.com",
        "--expires-in",
        "2d3h10m",
    ]);
    env.ok(&["alias-domain", "add", "example.net", "example.com"]);
    env.ok(&[
        "tls-policy",
        "add",
        "bank.example",
        "secure",
        "--params",
        "match=.bank.example",
    ]);

    let domains = env.json(&["domain", "list"]);
    assert_eq!(domains[0]["domain"], "example.com");
    assert_eq!(domains[0]["max_mailboxes"], 10);
    assert_eq!(domains[0]["max_quota_gib"], 10);
    assert_eq!(domains[0]["mailbox_count"], 1);
    let mailboxes = env.json(&["mailbox", "list", "example.com"]);
    assert_eq!(mailboxes[0]["address"], "alice@example.com");
    assert_eq!(mailboxes[0]["password_scheme"], "ARGON2ID");
    assert!(mailboxes[0].get("password").is_none());
    let aliases = env.json(&["alias", "list"]);
    assert_eq!(aliases[0]["address"], "@example.com");
    let expires = aliases[0]["deactivate_at"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expected = now + 2 * 86_400 + 3 * 3600 + 600;
    assert!((expires - expected).abs() < 60, "{expires} vs {expected}");
    assert_eq!(
        env.json(&["alias-domain", "list"])[0]["target"],
        "example.com"
    );
    assert_eq!(env.json(&["tls-policy", "list"])[0]["policy"], "secure");
    assert_eq!(
        env.json(&["domain", "show", "example.com"])["domain"],
        "example.com"
    );
    assert!(env.json(&["audit"]).as_array().unwrap().len() >= 5);
    let senders = env.json(&["sender", "show", "alice@example.com"]);
    assert_eq!(senders["addresses"][0], "alice@example.com");

    // Through the alias domain and the catch-all.
    let out = env.ok(&["resolve", "anyone@example.net"]);
    assert!(
        out.contains("example.net is an alias domain of example.com"),
        "{out}"
    );
    assert!(out.contains("the catch-all @example.com applies"), "{out}");

    // The human tables have a header line and one line per row.
    let out = env.ok(&["domain", "list"]);
    assert!(out.starts_with("DOMAIN "), "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn errors_have_exact_codes_and_messages() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.com"]);
    env.ok_with(&["mailbox", "add", "alice@example.com"], "alice-secret-1\n");

    let err = env.fails(
        &["mailbox", "add", "bob@nowhere.test"],
        Some("bob-secret-12\n"),
        65,
    );
    assert_eq!(
        err,
        "mailstead: unknown domain nowhere.test; add it first with `mailstead domain add nowhere.test`\n"
    );
    let err = env.fails(
        &["mailbox", "add", "alice@example.com"],
        Some("another-secret\n"),
        65,
    );
    assert_eq!(err, "mailstead: alice@example.com is already a mailbox\n");
    let err = env.fails(
        &["alias", "add", "alice@example.com", "bob@elsewhere.org"],
        None,
        65,
    );
    assert_eq!(
        err,
        "mailstead: alice@example.com is already a mailbox; an address is either a mailbox or an alias\n"
    );
    let err = env.fails(
        &["mailbox", "add", "a b@example.com"],
        Some("bob-secret-12\n"),
        64,
    );
    assert_eq!(
        err,
        "mailstead: \"a b@example.com\" is not an address: the local part may not contain ' '\n"
    );
    let err = env.fails(&["resolve", "no-at-sign"], None, 64);
    assert_eq!(
        err,
        "mailstead: \"no-at-sign\" is not an address: it has no @\n"
    );

    env.ok(&["domain", "add", "small.test", "--max-mailboxes", "1"]);
    env.ok_with(&["mailbox", "add", "one@small.test"], "first-secret\n");
    let err = env.fails(
        &["mailbox", "add", "two@small.test"],
        Some("second-secret\n"),
        65,
    );
    assert_eq!(
        err,
        "mailstead: domain small.test allows 1 mailboxes (max_mailboxes) and has 1; raise it with `mailstead domain update small.test --max-mailboxes N`\n"
    );

    let err = env.fails(
        &["mailbox", "add", "carol@example.com"],
        Some("short\n"),
        64,
    );
    assert_eq!(
        err,
        "mailstead: the password is 5 characters long; choose one of at least 8 (MUM's minimum)\n"
    );
    let err = env.fails(&["mailbox", "add", "carol@example.com"], None, 64);
    assert!(
        err.starts_with("mailstead: no password on standard input"),
        "{err}"
    );
    // There is no way to give a password on the command line.
    let err = env.fails(
        &[
            "mailbox",
            "add",
            "carol@example.com",
            "--password",
            "carol-secret-1",
        ],
        None,
        64,
    );
    assert!(
        err.starts_with("mailstead: unexpected argument '--password' found"),
        "{err}"
    );
    let err = env.fails(
        &["mailbox", "passwd", "alice@example.com", "--password=x"],
        None,
        64,
    );
    assert!(err.contains("unexpected argument '--password"), "{err}");
    assert!(
        !env.mailbox_addresses()
            .contains(&"carol@example.com".to_owned())
    );

    let err = env.fails(&["domain", "add", "x.test", "--quota", "5X"], None, 64);
    assert!(
        err.contains("quota \"5X\" has an unknown unit \"X\"; use B, K, M, G or T"),
        "{err}"
    );
    let err = env.fails(&["domain", "update", "example.com"], None, 64);
    assert_eq!(
        err,
        "mailstead: nothing to change; give at least one option (see `mailstead domain update --help`)\n"
    );
    let err = env.fails(&["mailbox", "show", "nobody@example.com"], None, 65);
    assert_eq!(err, "mailstead: no mailbox nobody@example.com\n");
    let err = env.fails(&["domain", "remove", "example.com"], None, 65);
    assert!(err.contains("pass --force to remove them all"), "{err}");
    env.ok(&["domain", "remove", "example.com", "--force"]);
    env.fails(&["no-such-command"], None, 64);

    // A config file with a bad key: 78, naming the key.
    std::fs::write(
        env.path().join("bad.toml"),
        "[directory]\nmax_connections = 0\n",
    )
    .unwrap();
    let err = env.fails(&["--config", "bad.toml", "domain", "list"], None, 78);
    assert!(err.contains("directory.max_connections"), "{err}");
    let err = env.fails(&["config", "check", "bad.toml"], None, 78);
    assert!(
        err.contains("directory.max_connections: must be at least 1"),
        "{err}"
    );
    let out = env.ok(&["config", "check"]);
    assert!(out.contains("built-in defaults"), "{out}");

    // An unreachable database: 69.
    std::fs::write(
        env.path().join("down.toml"),
        "[directory]\nurl = \"postgres://nobody@127.0.0.1:1/none\"\n",
    )
    .unwrap();
    let err = env.fails(&["--config", "down.toml", "domain", "list"], None, 69);
    assert!(
        err.starts_with("mailstead: cannot connect to the postgres database"),
        "{err}"
    );
}

#[test]
fn addresses_unsafe_as_paths_are_refused_with_what_to_fix() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.test"]);
    env.ok_with(
        &["mailbox", "add", "alice@example.test"],
        "alice-secret-1\n",
    );
    // Refused before the password is asked for: nothing is read from stdin.
    let err = env.fails(&["mailbox", "add", "alice/work@example.test"], None, 64);
    assert_eq!(
        err,
        "mailstead: \"alice/work@example.test\" cannot be created here: its local part contains '/', which is unsafe in the path of a mail directory; choose a name without '/', '\\', control characters or a leading '.'\n"
    );
    let err = env.fails(
        &[
            "alias",
            "add",
            "alice/work@example.test",
            "alice@example.test",
        ],
        None,
        64,
    );
    assert!(err.contains("its local part contains '/'"), "{err}");
    assert_eq!(env.mailbox_addresses(), ["alice@example.test"]);
}

#[test]
fn db_migrate_and_status() {
    let env = Env::new();
    let out = env.ok(&["db", "migrate"]);
    assert!(out.starts_with("migrated sqlite://"), "{out}");
    assert!(out.contains("from schema version 0 to "), "{out}");
    let out = env.ok(&["db", "migrate"]);
    assert!(out.contains("nothing to do"), "{out}");
    let status = env.json(&["db", "status"]);
    assert_eq!(status["backend"], "sqlite");
    assert_eq!(status["state"], "up-to-date");
    assert_eq!(status["schema_version"], status["latest_version"]);
}

#[test]
fn passwd_file_import_dry_run_then_apply_then_rerun() {
    let env = Env::new();
    let file = data_file("users.passwd");
    let file = file.to_str().unwrap();
    assert!(env.mailbox_addresses().is_empty());

    let output = env.expect(&["import", "passwd-file", file, "--dry-run"], None, 0);
    let out = stdout(&output);
    assert!(out.contains("(dry run: nothing was changed)"), "{out}");
    assert!(out.contains("total: 5 to create, 0 unchanged"), "{out}");
    assert!(
        out.contains("extra fields ignored: userdb_acl_groups"),
        "{out}"
    );
    assert!(
        env.mailbox_addresses().is_empty(),
        "a dry run created mailboxes"
    );
    assert!(env.json(&["domain", "list"]).as_array().unwrap().is_empty());

    let report = env.json(&["import", "passwd-file", file]);
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["counts"]["domains"]["created"], 2);
    assert_eq!(report["counts"]["mailboxes"]["created"], 3);
    assert_eq!(
        env.mailbox_addresses(),
        ["carol@example.net", "alice@example.org", "bob@example.org"]
    );

    // Quotas in Dovecot's units, homes and mail locations kept, hashes usable as they are.
    let alice = env.json(&["mailbox", "show", "alice@example.org"]);
    assert_eq!(alice["own_quota"]["bytes"], 5u64 << 30);
    assert_eq!(alice["location"]["home"], "/var/vmail/example.org/alice");
    assert_eq!(
        alice["location"]["mail"],
        "maildir:/var/vmail/example.org/alice/Maildir"
    );
    assert_eq!(alice["password_scheme"], "SSHA");
    let bob = env.json(&["mailbox", "show", "bob@example.org"]);
    assert_eq!(bob["own_quota"]["bytes"], 500u64 << 20);
    assert_eq!(bob["name"], "Bob Builder");
    assert_eq!(
        bob["location"]["mail"],
        "maildir:/var/vmail/example.org/bob/Maildir:LAYOUT=fs"
    );
    let carol = env.json(&["mailbox", "show", "carol@example.net"]);
    assert_eq!(carol["name"], "Carol");
    assert!(carol["own_quota"].is_null());
    env.ok_with(&["auth", "test", "alice@example.org"], "alice-secret\n");
    env.ok_with(&["auth", "test", "bob@example.org"], "bob-secret-1\n");
    env.ok_with(&["auth", "test", "carol@example.net"], "carol-secret\n");
    env.expect(
        &["auth", "test", "carol@example.net"],
        Some("alice-secret\n"),
        1,
    );
    let audit = env.json(&["audit", "--limit", "1"]);
    assert_eq!(audit[0]["actor"], "import:passwd-file (cli:tester)");

    // Again: nothing to do.
    let out = env.ok(&["import", "passwd-file", file]);
    assert!(
        out.contains("total: 0 created, 5 unchanged, 0 differ (kept)"),
        "{out}"
    );
    let report = env.json(&["import", "passwd-file", file]);
    assert_eq!(report["counts"]["total"]["created"], 0);
    assert_eq!(report["counts"]["total"]["unchanged"], 5);

    // A change made here since is reported and kept.
    env.ok(&["mailbox", "update", "bob@example.org", "--quota", "1G"]);
    let out = env.ok(&["import", "passwd-file", file]);
    let bob_line = out
        .lines()
        .find(|line| line.contains("bob@example.org"))
        .unwrap();
    assert!(bob_line.starts_with("exists, differs: kept"), "{out}");
    assert!(
        bob_line.ends_with("quota: 1G here, 500M in the file"),
        "{out}"
    );
    assert_eq!(
        env.json(&["mailbox", "show", "bob@example.org"])["own_quota"]["bytes"],
        1u64 << 30
    );
}

#[test]
fn passwd_file_errors_name_the_line() {
    let env = Env::new();
    std::fs::write(
        env.path().join("bad.passwd"),
        "# users\nok@example.org:{PLAIN}fine-password\nbroken@example.org:{PLAIN}x::::::userdb_quota_rule=*:storage=5X\n",
    )
    .unwrap();
    let err = env.fails(&["import", "passwd-file", "bad.passwd"], None, 64);
    assert_eq!(
        err,
        "mailstead: bad.passwd, line 3: quota rule \"*:storage=5X\": \"5X\" has an unknown unit; use B, K, M, G or T\n"
    );
    assert!(
        env.mailbox_addresses().is_empty(),
        "nothing is imported from a bad file"
    );
    let err = env.fails(&["import", "passwd-file", "missing.passwd"], None, 66);
    assert!(
        err.starts_with("mailstead: cannot read missing.passwd: "),
        "{err}"
    );
}

/// A MariaDB database made as MUM makes it, dropped when the test ends.
struct MumDatabase {
    name: String,
}

fn mysql_setting(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// Runs SQL with the `mariadb` client; the error says what failed.
fn try_mariadb(database: Option<&str>, sql: &str) -> Result<(), String> {
    let host = mysql_setting("MAILSTEAD_TEST_MYSQL_HOST", "127.0.0.1");
    let port = mysql_setting("MAILSTEAD_TEST_MYSQL_PORT", "3306");
    let user = mysql_setting("MAILSTEAD_TEST_MYSQL_USER", "root");
    let mut command = Command::new("mariadb");
    command.args(["-h", &host, "-P", &port, "-u", &user, "--batch"]);
    command.args(database);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| {
            format!("cannot run the mariadb client ({err}); this test needs it and MariaDB at {host}:{port}")
        })?;
    let mut stdin = child.stdin.take().ok_or("no stdin for mariadb")?;
    stdin
        .write_all(sql.as_bytes())
        .map_err(|err| err.to_string())?;
    drop(stdin);
    let output = child.wait_with_output().map_err(|err| err.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "mariadb at {host}:{port} refused or is unreachable: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

fn mariadb(database: Option<&str>, sql: &str) {
    if let Err(err) = try_mariadb(database, sql) {
        panic!("{err}");
    }
}

impl MumDatabase {
    fn create() -> MumDatabase {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("mum_src_{}_{nanos}", std::process::id());
        mariadb(
            None,
            &format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"),
        );
        MumDatabase { name }
    }

    /// Creates MUM's tables and rows.
    fn load(&self) {
        for file in ["mum_schema.sql", "mum_data.sql"] {
            mariadb(
                Some(&self.name),
                &std::fs::read_to_string(data_file(file)).unwrap(),
            );
        }
    }

    fn url(&self) -> String {
        let host = mysql_setting("MAILSTEAD_TEST_MYSQL_HOST", "127.0.0.1");
        let port = mysql_setting("MAILSTEAD_TEST_MYSQL_PORT", "3306");
        let user = mysql_setting("MAILSTEAD_TEST_MYSQL_USER", "root");
        format!("mysql://{user}@{host}:{port}/{}", self.name)
    }
}

impl Drop for MumDatabase {
    fn drop(&mut self) {
        // No panic here: during a failing test's unwinding it would abort the whole run.
        if let Err(err) = try_mariadb(None, &format!("DROP DATABASE IF EXISTS {};", self.name)) {
            eprintln!("could not drop {}: {err}", self.name);
        }
    }
}

#[test]
fn mum_import_from_mariadb() {
    let mum = MumDatabase::create();
    let url = mum.url();
    let env = Env::new();

    // Before MUM's tables exist, the source is refused and the target left alone.
    let err = env.fails(&["import", "mum", &url], None, 65);
    assert!(err.contains("cannot be read as MUM's"), "{err}");
    assert!(!env.path().join("data").exists());
    mum.load();

    let out = env.ok(&["import", "mum", &url, "--dry-run"]);
    assert!(out.contains("(dry run: nothing was changed)"), "{out}");
    assert!(out.contains("total: 10 to create, 0 unchanged"), "{out}");
    assert!(
        env.mailbox_addresses().is_empty(),
        "a dry run created mailboxes"
    );

    let report = env.json(&["import", "mum", &url]);
    let counts = &report["counts"];
    assert_eq!(counts["domains"]["created"], 2);
    assert_eq!(counts["mailboxes"]["created"], 3);
    assert_eq!(counts["aliases"]["created"], 3);
    assert_eq!(counts["tls_policies"]["created"], 2);
    assert_eq!(counts["total"]["failed"], 0);

    // MUM's bare bcrypt hash logs in as it is.
    env.ok_with(&["auth", "test", "jane@mum.example"], "mum-secret-1\n");
    env.expect(
        &["auth", "test", "jane@mum.example"],
        Some("wrong-secret\n"),
        1,
    );
    // The inactive mailbox stays inactive.
    let output = env.expect(
        &["auth", "test", "ghost@old.example"],
        Some("mum-secret-1\n"),
        1,
    );
    assert_eq!(
        stdout(&output),
        "refused: the mailbox or its domain is deactivated\n"
    );

    // Aliases with their recipients, the catch-all, the senders.
    let out = env.ok(&["resolve", "team@mum.example"]);
    assert!(out.starts_with("team@mum.example: deliver\n"), "{out}");
    assert!(
        out.contains(
            "  -> jane@mum.example (mailbox, /srv/mail/mailboxes/mum.example/jane, quota 3G)"
        ),
        "{out}"
    );
    assert!(
        out.contains("  -> friend@elsewhere.example (external)"),
        "{out}"
    );
    let out = env.ok(&["resolve", "someone@mum.example"]);
    assert!(out.contains("the catch-all @mum.example applies"), "{out}");
    env.ok(&["may-send", "noreply@mum.example", "team@mum.example"]);
    let temp = env.json(&["alias", "show", "temp@mum.example"]);
    assert_eq!(temp["recipients"][0], "jane@mum.example");
    assert_eq!(temp["deactivate_at"], 2_145_830_400i64);

    // Mailbox details as MUM had them.
    let jane = env.json(&["mailbox", "show", "jane@mum.example"]);
    assert_eq!(jane["own_quota"]["bytes"], 3u64 << 30);
    assert_eq!(jane["is_super_admin"], true);
    assert_eq!(jane["alternative_email"], "jane@personal.example");
    assert_eq!(
        jane["location"]["mail"],
        "maildir:/srv/mail/mailboxes/mum.example/jane:LAYOUT=fs"
    );
    assert_eq!(jane["password_scheme"], "BLF-CRYPT");
    let noreply = env.json(&["mailbox", "show", "noreply@mum.example"]);
    assert_eq!(noreply["send_only"], true);
    assert_eq!(noreply["effective_quota"]["bytes"], 2u64 << 30);
    // The limits arrive after the mailboxes, so jane's 3G survives max_quota 1G.
    let domain = env.json(&["domain", "show", "mum.example"]);
    assert_eq!(domain["max_quota_gib"], 1);
    assert_eq!(domain["max_mailboxes"], 5);
    assert_eq!(domain["max_aliases"], 10);
    assert_eq!(
        env.json(&["domain", "show", "old.example"])["active"],
        false
    );
    let policies = env.json(&["tls-policy", "list"]);
    assert_eq!(policies[0]["domain"], "bank.example");
    assert_eq!(policies[0]["params"], "match=.bank.example");
    assert_eq!(policies[1]["active"], false);
    let audit = env.json(&["audit", "--limit", "1"]);
    assert_eq!(audit[0]["actor"], "import:mum (cli:tester)");

    // Again: everything exists, nothing is created.
    let out = env.ok(&["import", "mum", &url]);
    assert!(
        out.contains("total: 0 created, 10 unchanged, 0 differ (kept), 0 skipped, 0 failed"),
        "{out}"
    );

    // A source that is not a database URL is a usage error.
    let err = env.fails(&["import", "mum", "ftp://example.org/mum"], None, 64);
    assert!(
        err.starts_with("mailstead: ftp://example.org/mum is not a database URL"),
        "{err}"
    );
}

/// A server process sees a change made with the CLI within one second: its directory polls
/// the change counter that every CLI write bumps.
#[test]
fn server_sees_cli_changes_before_its_cache_expires() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.com"]);
    env.ok_with(&["mailbox", "add", "alice@example.com"], "alice-secret-1\n");

    let mut options = DirectoryOptions::new(env.database_url(), &env.path().display().to_string());
    options.change_poll = Duration::from_millis(250);
    // Long enough that only the change watcher can explain a fresh answer.
    options.cache_ttl = Duration::from_secs(60);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = Directory::open(options.clone()).await.unwrap();
        let _watcher = server.watch_changes();
        // A second handle without a watcher shows that the first one's answers are cached.
        let unwatched = Directory::open(options).await.unwrap();
        for directory in [&server, &unwatched] {
            let answer = directory.resolve("alice@example.com").await.unwrap();
            assert!(matches!(answer.outcome, Outcome::Deliver(_)), "{answer:?}");
        }

        let mut deactivate =
            env.command(&["mailbox", "update", "alice@example.com", "--deactivate"]);
        let output = tokio::task::spawn_blocking(move || deactivate.output().unwrap())
            .await
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));

        let changed_at = Instant::now();
        loop {
            let answer = server.resolve("alice@example.com").await.unwrap();
            if answer.outcome == Outcome::Reject(Rejection::MailboxInactive) {
                break;
            }
            // The cache lives 60 s: only the change watcher explains an answer within 20.
            assert!(
                changed_at.elapsed() < Duration::from_secs(20),
                "still {:?} after {:?}",
                answer.outcome,
                changed_at.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let stale = unwatched.resolve("alice@example.com").await.unwrap();
        assert!(
            matches!(stale.outcome, Outcome::Deliver(_)),
            "the cache was not used: {stale:?}"
        );
    });
}

/// Starts `mailstead serve` and collects its log lines.
/// Starts `mailstead serve` with every default except the listeners, which go to ports this
/// test chose (the defaults 25/143/993/587/465/110/995 may belong to a server running on
/// the machine).
fn spawn_server(env: &Env) -> (Child, mpsc::Receiver<String>) {
    let config = env.path().join("listeners.toml");
    let port = || format!("[\"127.0.0.1:{}\"]", support::free_port());
    std::fs::write(
        &config,
        format!(
            "[smtp]\nlisten = {}\n[imap]\nlisten = {}\nlisten_tls = {}\n\
             [submission]\nlisten = {}\nlisten_tls = {}\n\
             [pop3]\nlisten = {}\nlisten_tls = {}\n\
             [managesieve]\nlisten = {}\n\
             [http]\nlisten = {}\n",
            port(),
            port(),
            port(),
            port(),
            port(),
            port(),
            port(),
            port(),
            port()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let mut child = env
        .command(&["--config", &config, "serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = child.stderr.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(log).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    (child, receiver)
}

fn wait_for_line(log: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match log.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return;
                }
            }
            Err(_) => break,
        }
    }
    panic!(
        "no log line with {needle:?}; log so far:\n{}",
        seen.join("\n")
    );
}

#[test]
fn serve_starts_on_an_empty_dir_and_stops_on_sigterm() {
    let env = Env::new();
    let (mut child, log) = spawn_server(&env);
    let mut seen = Vec::new();
    wait_for_line(&log, "running until SIGINT or SIGTERM", &mut seen);
    assert!(env.path().join("data/mailstead.db").is_file(), "{seen:?}");
    assert!(env.path().join("data/tls/cert.pem").is_file(), "{seen:?}");
    assert!(env.path().join("data/tls/key.pem").is_file(), "{seen:?}");
    assert!(
        seen.iter()
            .any(|line| line.contains("directory open") && line.contains("sqlite")),
        "{seen:?}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!(
                "serve did not stop within 10 s of SIGTERM; log:\n{}",
                seen.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "log:\n{}", seen.join("\n"));
    wait_for_line(&log, "SIGTERM received; shutting down", &mut seen);

    // The CLI works on what the server made.
    env.ok(&["domain", "add", "example.com"]);
}

// ---- Hardening: a removed mailbox's files never pass to the next owner of the address ----

fn location(env: &Env, address: &str) -> (PathBuf, PathBuf) {
    let shown = env.json(&["mailbox", "show", address]);
    let path = |key: &str| PathBuf::from(shown["location"][key].as_str().unwrap());
    (path("home"), path("maildir"))
}

fn retired_dirs(parent: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(parent)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(".removed-"))
        })
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn removed_mailbox_mail_is_moved_aside_or_purged_and_never_inherited() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.com"]);
    env.ok_with(&["mailbox", "add", "bob@example.com"], "bob-secret-12\n");
    let (home, maildir) = location(&env, "bob@example.com");
    let message = "1764644400.M1P1Q1.mx,S=20,W=21";
    std::fs::create_dir_all(maildir.join("new")).unwrap();
    std::fs::write(
        maildir.join("new").join(message),
        "Subject: for bob\n\nhi\n",
    )
    .unwrap();

    let out = env.ok(&["mailbox", "remove", "bob@example.com"]);
    let parent = home.parent().unwrap();
    let retired = retired_dirs(parent);
    assert_eq!(retired.len(), 1, "{out}");
    let name = retired[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with(".removed-") && name.ends_with("Z-bob"),
        "{name}"
    );
    assert!(
        out.contains(&format!("was moved to {}", retired[0].display())),
        "{out}"
    );
    assert!(!home.exists());
    let old = retired[0]
        .join(maildir.strip_prefix(&home).unwrap())
        .join("new")
        .join(message);
    assert!(old.exists(), "the old mail is kept aside");

    // The address again: a new, empty mailbox.
    env.ok_with(&["mailbox", "add", "bob@example.com"], "bob-secret-34\n");
    assert_eq!(
        location(&env, "bob@example.com"),
        (home.clone(), maildir.clone())
    );
    assert!(!maildir.join("new").join(message).exists());
    assert!(!maildir.exists() || std::fs::read_dir(maildir.join("new")).unwrap().count() == 0);

    // --purge deletes instead, without touching what was retired before.
    std::fs::create_dir_all(maildir.join("cur")).unwrap();
    std::fs::write(maildir.join("cur").join("2.M1P1Q2.mx:2,S"), "second\n").unwrap();
    let removed = env.json(&["mailbox", "remove", "bob@example.com", "--purge"]);
    assert_eq!(removed["files"][0]["from"], home.to_str().unwrap());
    assert!(removed["files"][0]["moved_to"].is_null());
    assert!(!home.exists());
    assert_eq!(retired_dirs(parent), retired);
    assert!(old.exists());

    // Files another writer left at a new mailbox's home are moved aside when it is added.
    let (carol_home, carol_maildir) = (parent.join("carol"), parent.join("carol/Maildir"));
    std::fs::create_dir_all(carol_maildir.join("cur")).unwrap();
    std::fs::write(carol_maildir.join("cur").join("3.M1P1Q3.mx:2,S"), "old\n").unwrap();
    let out = env.ok_with(&["mailbox", "add", "carol@example.com"], "carol-secret-1\n");
    assert_eq!(
        location(&env, "carol@example.com"),
        (carol_home.clone(), carol_maildir.clone())
    );
    assert!(out.contains("by an earlier mailbox were moved to"), "{out}");
    assert!(!carol_home.exists());
    let retired_now = retired_dirs(parent);
    assert_eq!(retired_now.len(), 2, "{retired_now:?}");
    assert!(
        retired_now
            .iter()
            .any(|dir| dir.join("Maildir/cur/3.M1P1Q3.mx:2,S").exists())
    );

    // Unless the administrator says the mail there is the account's own (a Dovecot Maildir).
    let dave_maildir = parent.join("dave/Maildir");
    std::fs::create_dir_all(dave_maildir.join("cur")).unwrap();
    std::fs::write(dave_maildir.join("cur").join("4.M1P1Q4.mx:2,S"), "own\n").unwrap();
    let out = env.ok_with(
        &["mailbox", "add", "dave@example.com", "--keep-existing-mail"],
        "dave-secret-12\n",
    );
    assert!(!out.contains("moved to"), "{out}");
    assert!(dave_maildir.join("cur").join("4.M1P1Q4.mx:2,S").exists());
    assert_eq!(retired_dirs(parent).len(), 2);
}

#[test]
fn transports_are_added_listed_and_removed() {
    let env = Env::new();
    let out = env.ok(&[
        "transport",
        "add",
        "Transport.COM",
        "SMTP:Mail.Transport.com",
        "--description",
        "their gateway",
    ]);
    assert!(out.contains("added transport for transport.com"), "{out}");
    assert!(out.contains("smtp:mail.transport.com"), "{out}");
    env.ok(&["transport", "add", "relay.example", "[10.0.0.1]:2525"]);

    let out = env.ok(&["transport", "list"]);
    assert!(out.starts_with("DOMAIN "), "{out}");
    assert!(out.contains("smtp:[10.0.0.1]:2525"), "{out}");
    assert_eq!(out.lines().count(), 3, "{out}");
    let listed = env.json(&["transport", "list"]);
    assert_eq!(listed[1]["domain"], "transport.com");
    assert_eq!(listed[1]["next_hop"], "smtp:mail.transport.com");
    assert_eq!(listed[1]["description"], "their gateway");
    let shown = env.json(&["transport", "show", "relay.example"]);
    assert_eq!(shown["next_hop"], "smtp:[10.0.0.1]:2525");

    let err = env.fails(&["transport", "add", "other.example", "uucp:far"], None, 64);
    assert!(
        err.contains("smtp:[host]:port, smtp:host, lmtp:host:port or [host]:port"),
        "{err}"
    );
    let err = env.fails(&["transport", "add", "relay.example", "smtp:x"], None, 65);
    assert!(err.contains("already has a transport"), "{err}");

    let out = env.ok(&["transport", "remove", "relay.example"]);
    assert_eq!(out, "removed transport for relay.example\n");
    let listed = env.json(&["transport", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let err = env.fails(&["transport", "remove", "relay.example"], None, 65);
    assert!(err.contains("no transport for relay.example"), "{err}");
    let audit = env.json(&["audit"]);
    assert_eq!(audit[0]["action"], "transport.remove");
    assert_eq!(audit[0]["actor"], "cli:tester");
}

#[test]
fn dkim_keys_are_generated_listed_and_removed() {
    let env = Env::new();
    let err = env.fails(&["dkim", "generate", "example.com"], None, 65);
    assert!(err.contains("mailstead domain add example.com"), "{err}");
    env.ok(&["domain", "add", "example.com"]);

    let out = env.ok(&["dkim", "generate", "example.com", "--selector", "mail1"]);
    assert!(
        out.contains("mail1._domainkey.example.com. IN TXT \"v=DKIM1; k=ed25519; p="),
        "{out}"
    );
    assert!(!out.contains("PRIVATE KEY"), "{out}");
    // The default selector: s + the UTC year and month.
    let generated = env.json(&["dkim", "generate", "example.com"]);
    let selector = generated["selector"].as_str().unwrap().to_owned();
    assert!(
        selector.len() == 7
            && selector.starts_with("s20")
            && selector[1..].bytes().all(|b| b.is_ascii_digit()),
        "{selector}"
    );
    let err = env.fails(
        &["dkim", "generate", "example.com", "--selector", "mail1"],
        None,
        65,
    );
    assert!(
        err.contains("already has a DKIM key with selector mail1"),
        "{err}"
    );
    let err = env.fails(
        &[
            "dkim",
            "generate",
            "example.com",
            "--algorithm",
            "rsa",
            "--bits",
            "1000",
        ],
        None,
        64,
    );
    assert!(err.contains("from 2048 to 4096"), "{err}");

    let out = env.ok(&["dkim", "list"]);
    assert!(out.contains("selector:"), "{out}");
    assert!(
        out.contains("mail1._domainkey.example.com. IN TXT"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{selector}._domainkey.example.com.")),
        "{out}"
    );
    assert!(!out.contains("PRIVATE KEY"), "{out}");
    let listed = env.json(&["dkim", "list"]);
    let keys = listed.as_array().unwrap();
    assert_eq!(keys.len(), 2, "{listed}");
    assert!(keys.iter().all(|key| key.get("private_key").is_none()));
    let mail1 = keys.iter().find(|key| key["selector"] == "mail1").unwrap();
    assert_eq!(mail1["algorithm"], "ed25519");
    assert_eq!(mail1["active"], true);
    let record = mail1["dns_record"].as_str().unwrap();
    assert!(
        record.ends_with(&format!("p={}\"", mail1["public_key"].as_str().unwrap())),
        "{record}"
    );

    let out = env.ok(&["dkim", "remove", "example.com", "--selector", "mail1"]);
    assert_eq!(out, "removed DKIM key mail1 of example.com\n");
    let err = env.fails(
        &["dkim", "remove", "example.com", "--selector", "mail1"],
        None,
        65,
    );
    assert!(err.contains("no DKIM key with selector mail1"), "{err}");
    let out = env.ok(&["dkim", "remove", "example.com"]);
    assert_eq!(out, "removed 1 DKIM keys of example.com\n");
    let out = env.ok(&["dkim", "list"]);
    assert!(out.starts_with("no DKIM keys"), "{out}");
}

#[test]
fn mailbox_acl_groups_are_added_listed_and_removed() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.com"]);
    env.ok_with(&["mailbox", "add", "alice@example.com"], "alice-secret-1\n");
    assert_eq!(
        env.ok(&["mailbox", "group", "add", "alice@example.com", "Editors"]),
        "alice@example.com is now in ACL group Editors\n"
    );
    env.ok(&[
        "mailbox",
        "group",
        "add",
        "alice@example.com",
        "PublicMailboxAdmins",
    ]);
    assert_eq!(
        env.ok(&["mailbox", "group", "list", "alice@example.com"]),
        "Editors\nPublicMailboxAdmins\n"
    );
    assert_eq!(
        env.json(&["mailbox", "group", "list", "alice@example.com"]),
        serde_json::json!(["Editors", "PublicMailboxAdmins"])
    );
    let err = env.fails(
        &["mailbox", "group", "add", "alice@example.com", "Editors"],
        None,
        65,
    );
    assert_eq!(
        err,
        "mailstead: alice@example.com is in ACL group Editors already\n"
    );
    env.ok(&["mailbox", "group", "remove", "alice@example.com", "Editors"]);
    assert_eq!(
        env.ok(&["mailbox", "group", "list", "alice@example.com"]),
        "PublicMailboxAdmins\n"
    );
    let err = env.fails(
        &["mailbox", "group", "remove", "alice@example.com", "Editors"],
        None,
        65,
    );
    assert_eq!(
        err,
        "mailstead: alice@example.com is not in ACL group Editors\n"
    );
}
