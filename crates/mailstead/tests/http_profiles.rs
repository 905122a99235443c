//! The HTTP listener's Apple profile and its access rule, end to end: `mailstead serve` with
//! IMAP and submission listeners answering Python's http.client, the `.mobileconfig` parsed by
//! plistlib (settings from the listeners, no password, 404 for anything but a receiving
//! mailbox), Thunderbird's `config-v1.1.xml` held to the checks Thunderbird's account setup
//! applies when it reads one, and `/metrics` and `/readyz` open only to `[http] metrics_allow` (a client bound
//! to 127.0.0.2 is let in, one on 127.0.0.1 is refused, `/healthz` stays open).
//!
//! Needs `python3`; fails, never skips, when it is missing.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mailstead");

/// `mailstead serve` on its own config; killed when dropped.
struct Server {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }
}

fn mailstead(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(dir.join("mailstead.toml"))
        .args(args)
        .current_dir(dir)
        .env_remove("MAILSTEAD_CONFIG")
        .env_remove("RUST_LOG")
        .env("USER", "tester");
    command
}

fn serve(dir: &Path, http_port: u16) -> Server {
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let child = mailstead(dir, &["serve"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut server = Server {
        child,
        dir: dir.to_owned(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", http_port)).is_err() {
        let status = server.child.try_wait().unwrap();
        assert!(status.is_none(), "serve exited: {}", server.log());
        assert!(Instant::now() < deadline, "no HTTP: {}", server.log());
        thread::sleep(Duration::from_millis(50));
    }
    server
}

fn tool(args: &[&str]) -> Value {
    support::python_json("tests/http/profile_tool.py", args)
}

#[test]
fn apple_profiles_and_who_may_read_metrics() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    support::reachable_by_server(dir);
    let [imap, imaps, submission, submissions, smtp, http] =
        std::array::from_fn(|_| support::free_port());
    std::fs::write(
        dir.join("mailstead.toml"),
        format!(
            "[server]\nhostname = \"mail.example.test\"\ndata_dir = \"{data}\"\n\
             [smtp]\nlisten = [\"127.0.0.1:{smtp}\"]\n\
             [imap]\nlisten = [\"127.0.0.1:{imap}\"]\nlisten_tls = [\"127.0.0.1:{imaps}\"]\n\
             [pop3]\nlisten = []\nlisten_tls = []\n\
             [managesieve]\nlisten = []\n\
             [submission]\nlisten = [\"127.0.0.1:{submission}\"]\n\
             listen_tls = [\"127.0.0.1:{submissions}\"]\n\
             [http]\nlisten = [\"127.0.0.1:{http}\"]\nmetrics_allow = [\"127.0.0.2\"]\n",
            data = dir.join("data").display()
        ),
    )
    .unwrap();
    let cli = |args: &[&str], stdin: Option<&str>| {
        support::run_ok(mailstead(dir, args), &format!("{args:?}"), stdin)
    };
    cli(&["domain", "add", "example.test"], None);
    let password = "profile-secret-1";
    let stdin = format!("{password}\n");
    cli(
        &["mailbox", "add", "ann@example.test", "--name", "Ann & <Co>"],
        Some(&stdin),
    );
    cli(
        &["mailbox", "add", "sender@example.test", "--send-only"],
        Some(&stdin),
    );
    cli(
        &["alias", "add", "team@example.test", "ann@example.test"],
        None,
    );
    let server = serve(dir, http);
    let url = |path: &str| format!("http://127.0.0.1:{http}{path}");

    // A mailbox's profile, as plistlib reads it.
    let answer = tool(&[
        "mobileconfig",
        &url("/mobileconfig?emailaddress=Ann@Example.test"),
    ]);
    assert_eq!(answer["status"], 200, "{answer} {}", server.log());
    assert_eq!(answer["content_type"], "application/x-apple-aspen-config");
    assert!(
        answer["disposition"]
            .as_str()
            .unwrap()
            .contains("example.test.mobileconfig"),
        "{answer}"
    );
    let profile = &answer["profile"];
    assert_eq!(profile["PayloadType"], "Configuration");
    let mail = &profile["PayloadContent"][0];
    assert_eq!(mail["PayloadType"], "com.apple.mail.managed");
    assert_eq!(mail["EmailAddress"], "ann@example.test");
    assert_eq!(mail["EmailAccountName"], "Ann & <Co>");
    assert_eq!(mail["EmailAccountType"], "EmailTypeIMAP");
    assert_eq!(mail["IncomingMailServerHostName"], "mail.example.test");
    assert_eq!(mail["IncomingMailServerPortNumber"], imaps);
    assert_eq!(mail["IncomingMailServerUseSSL"], true);
    assert_eq!(mail["IncomingMailServerUsername"], "ann@example.test");
    assert_eq!(mail["OutgoingMailServerPortNumber"], submissions);
    assert_eq!(mail["OutgoingMailServerUseSSL"], true);
    assert_eq!(mail["OutgoingPasswordSameAsIncomingPassword"], true);
    let text = answer.to_string();
    assert!(
        !text.contains(password),
        "a password in the profile: {text}"
    );
    for key in ["IncomingPassword", "OutgoingPassword"] {
        assert!(mail.get(key).is_none(), "{key} in {text}");
    }
    // Downloaded again, it replaces the same profile.
    let again = tool(&[
        "mobileconfig",
        &url("/mobileconfig?emailaddress=ann@example.test"),
    ]);
    assert_eq!(again["profile"]["PayloadUUID"], profile["PayloadUUID"]);

    // Thunderbird's autoconfiguration for the same mailbox passes the checks Thunderbird's
    // account setup makes when it reads the file, and names both submission ports.
    let answer = tool(&[
        "thunderbird",
        &url("/mail/config-v1.1.xml?emailaddress=ann@example.test"),
    ]);
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["problems"], serde_json::json!([]), "{answer}");
    let body = answer["body"].as_str().unwrap();
    for port in [imap, imaps, submission, submissions] {
        assert!(
            body.contains(&format!("<port>{port}</port>")),
            "{port}: {body}"
        );
    }

    // Nothing for what is not a receiving mailbox here.
    for address in [
        "nobody@example.test",
        "team@example.test",
        "sender@example.test",
        "ann@elsewhere.test",
        "not an address",
    ] {
        let query = format!("/mobileconfig?emailaddress={}", address.replace(' ', "%20"));
        let answer = tool(&["mobileconfig", &url(&query)]);
        assert_eq!(answer["status"], 404, "{address}: {answer}");
    }
    let answer = tool(&["mobileconfig", &url("/mobileconfig")]);
    assert_eq!(answer["status"], 404, "{answer}");

    // Metrics and readiness: the allowed address only; health for everyone.
    for path in [
        "/metrics",
        "/readyz",
        "/stats/traffic.svg",
        "/stats/size.svg",
    ] {
        let refused = tool(&["get_from", "127.0.0.1", &url(path)]);
        assert_eq!(refused["status"], 403, "{path}: {refused}");
        assert!(
            refused["body"].as_str().unwrap().contains("metrics_allow"),
            "{refused}"
        );
        let allowed = tool(&["get_from", "127.0.0.2", &url(path)]);
        assert_eq!(allowed["status"], 200, "{path}: {allowed}");
    }
    let allowed = tool(&["get_from", "127.0.0.2", &url("/metrics")]);
    assert!(
        allowed["body"]
            .as_str()
            .unwrap()
            .contains("mailstead_messages_received_total"),
        "{allowed}"
    );
    let health = tool(&["get_from", "127.0.0.1", &url("/healthz")]);
    assert_eq!(health["status"], 200, "{health}");
}
