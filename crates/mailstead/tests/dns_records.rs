//! `mailstead dns DOMAIN` as an administrator uses it: the real binary on a SQLite directory
//! with an RSA DKIM key (long enough to need several TXT strings), its zone-file lines checked
//! by BIND's `named-checkzone` (bind9-utils), its `--json`, and an unknown domain refused.
//! Fails, never skips, when `named-checkzone` is missing.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mailstead");

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

#[test]
fn the_records_of_a_domain_load_as_a_zone() {
    support::require("named-checkzone", "bind9-utils");
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    std::fs::write(
        dir.join("mailstead.toml"),
        format!(
            "[server]\nhostname = \"mail.example.test\"\ndata_dir = \"{}\"\n\
             [imap]\nlisten = [\"0.0.0.0:143\"]\nlisten_tls = [\"0.0.0.0:993\"]\n\
             [pop3]\nlisten = []\nlisten_tls = []\n\
             [submission]\nlisten = [\"0.0.0.0:587\"]\nlisten_tls = [\"0.0.0.0:465\"]\n\
             [http]\nmta_sts_mode = \"enforce\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    support::run_ok(
        mailstead(dir, &["domain", "add", "example.test"]),
        "domain add",
        None,
    );
    support::run_ok(
        mailstead(dir, &["domain", "add", "other.test"]),
        "domain add",
        None,
    );
    support::run_ok(
        mailstead(
            dir,
            &[
                "dkim",
                "generate",
                "example.test",
                "--algorithm",
                "rsa",
                "--selector",
                "s1",
            ],
        ),
        "dkim generate",
        None,
    );
    support::run_ok(
        mailstead(dir, &["dkim", "generate", "other.test", "--selector", "o1"]),
        "dkim generate",
        None,
    );

    let output = support::run_ok(mailstead(dir, &["dns", "example.test"]), "dns", None);
    let text = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "example.test. IN MX 10 mail.example.test.",
        "example.test. IN TXT \"v=spf1 mx -all\"",
        "_dmarc.example.test. IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.test\"",
        "_smtp._tls.example.test. IN TXT \"v=TLSRPTv1; rua=mailto:postmaster@example.test\"",
        "mta-sts.example.test. IN CNAME mail.example.test.",
        "autoconfig.example.test. IN CNAME mail.example.test.",
        "_submissions._tcp.example.test. IN SRV 0 1 465 mail.example.test.",
        "_submission._tcp.example.test. IN SRV 10 1 587 mail.example.test.",
        "_imaps._tcp.example.test. IN SRV 0 1 993 mail.example.test.",
        "_imap._tcp.example.test. IN SRV 10 1 143 mail.example.test.",
        "_pop3s._tcp.example.test. IN SRV 0 0 0 .",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        !text.contains("o1._domainkey"),
        "another domain's key:\n{text}"
    );
    let dkim = text
        .lines()
        .find(|line| line.starts_with("s1._domainkey.example.test. IN TXT "))
        .unwrap_or_else(|| panic!("no DKIM record:\n{text}"));
    assert!(
        dkim.matches('"').count() >= 4,
        "one string for an RSA key: {dkim}"
    );

    // BIND loads it as the body of a zone (with the SOA and NS a zone needs).
    let zone = dir.join("example.test.zone");
    std::fs::write(
        &zone,
        format!(
            "$TTL 3600\n@ IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 300\n\
             @ IN NS ns1.example.test.\nns1 IN A 192.0.2.53\n{text}"
        ),
    )
    .unwrap();
    let mut check = Command::new("named-checkzone");
    check.arg("-i").arg("none").arg("example.test").arg(&zone);
    let checked = support::run_ok(check, "named-checkzone", None);
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(said.contains("OK"), "{said}");

    // BIND joins the DKIM strings back into the key the directory holds.
    let mut dump = Command::new("named-checkzone");
    dump.args(["-i", "none", "-D", "-o", "-", "example.test"])
        .arg(&zone);
    let dumped =
        String::from_utf8(support::run_ok(dump, "named-checkzone -D", None).stdout).unwrap();
    let listed = support::run_ok(
        mailstead(dir, &["--json", "dkim", "list"]),
        "dkim list",
        None,
    );
    let keys: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["selector"] == "s1")
        .unwrap();
    let public_key = key["public_key"].as_str().unwrap();
    let joined: String = dumped
        .lines()
        .find(|line| line.starts_with("s1._domainkey.example.test."))
        .unwrap()
        .split('"')
        .skip(1)
        .step_by(2)
        .collect();
    assert_eq!(joined, format!("v=DKIM1; k=rsa; p={public_key}"));

    // The same records as JSON.
    let output = support::run_ok(
        mailstead(dir, &["--json", "dns", "example.test"]),
        "dns --json",
        None,
    );
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["domain"], "example.test");
    let records = json["records"].as_array().unwrap();
    let mta_sts = records
        .iter()
        .find(|record| record["name"] == "_mta-sts.example.test.")
        .unwrap();
    assert_eq!(mta_sts["type"], "TXT");
    let id = mta_sts["data"].as_str().unwrap();
    assert!(id.starts_with("\"v=STSv1; id="), "{id}");

    // Another policy gets another id.
    let config = std::fs::read_to_string(dir.join("mailstead.toml")).unwrap();
    std::fs::write(
        dir.join("mailstead.toml"),
        config.replace("\"enforce\"", "\"testing\""),
    )
    .unwrap();
    let output = support::run_ok(
        mailstead(dir, &["--json", "dns", "example.test"]),
        "dns --json",
        None,
    );
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let changed = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|record| record["name"] == "_mta-sts.example.test.")
        .unwrap();
    assert_ne!(changed["data"].as_str().unwrap(), id);

    // An unknown domain: a clear error and a failing status.
    let output = support::run(mailstead(dir, &["dns", "nowhere.test"]), None);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nowhere.test"), "{stderr}");
    assert!(output.stdout.is_empty());
}
