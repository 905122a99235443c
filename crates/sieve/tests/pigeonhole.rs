//! Differential test against Pigeonhole, the interpreter Dovecot users' filters were written
//! for: every script in `data/scripts` runs on every message in `data/messages` through
//! Debian's `sieve-test` and through `evaluate`, and the normalised action lists must agree.
//! Compile errors must agree with `sievec` on `data/scripts` and `data/invalid`.
//! Both tools are required: a missing `sieve-test` fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use mailstead_sieve::{Action, Envelope, Input, Limits, compile, evaluate};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn files(dir: &str, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(data().join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

/// A scratch directory sieve-test may write to, and a configuration for it: the extensions a
/// Mailstead user has (editheader and vacation-seconds are off in Pigeonhole by default) and
/// no vacation period clamp (the caller clamps, not the interpreter).
struct Pigeonhole {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn pigeonhole() -> Pigeonhole {
    let dir = tempfile::tempdir().unwrap();
    let root = is_root();
    let mut config = format!("mail_location = maildir:{}/Maildir\n", dir.path().display());
    if root {
        // sieve-test refuses to run mail access as root: drop to nobody.
        config.push_str(
            "mail_uid = 65534\nmail_gid = 65534\nfirst_valid_uid = 1\nfirst_valid_gid = 1\n",
        );
    }
    config.push_str(
        "plugin {\n  sieve_extensions = +editheader +vacation-seconds\n  sieve_vacation_min_period = 0\n  sieve_vacation_max_period = 0\n}\n",
    );
    let path = dir.path().join("dovecot.conf");
    fs::write(&path, config).unwrap();
    if root {
        Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(dir.path())
            .status()
            .unwrap();
    }
    Pigeonhole { dir, config: path }
}

fn is_root() -> bool {
    let output = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

fn envelopes() -> Vec<(String, String, String)> {
    fs::read_to_string(data().join("messages/envelopes.txt"))
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (
                fields[0].to_string(),
                fields[1].to_string(),
                fields[2].to_string(),
            )
        })
        .collect()
}

fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn flags_text(flags: &[String]) -> String {
    let mut flags: Vec<String> = flags.iter().map(|f| f.to_ascii_lowercase()).collect();
    flags.sort();
    flags.join(" ")
}

/// "Performed actions:" and "Implicit keep:" of sieve-test, one normalised line per action.
fn pigeonhole_actions(output: &str) -> Vec<String> {
    if output.contains("final result: failed") {
        return vec!["error".to_string()];
    }
    if output.contains("failed to compile") {
        return vec!["compile error".to_string()];
    }
    let mut actions: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_message = false;
    for line in output.lines() {
        if line.starts_with("START MESSAGE") {
            in_message = true;
            continue;
        }
        if line.starts_with("END MESSAGE") {
            in_message = false;
            continue;
        }
        if in_message {
            continue;
        }
        if let Some(action) = line.strip_prefix(" * ") {
            let action = if action == "keep" {
                "store INBOX".to_string()
            } else if let Some(folder) = action.strip_prefix("store message in folder: ") {
                format!("store {folder}")
            } else if let Some(address) = action.strip_prefix("redirect message to: ") {
                format!(
                    "redirect {}",
                    address.trim_start_matches('<').trim_end_matches('>')
                )
            } else if let Some(reason) = action.strip_prefix("reject message with reason: ") {
                format!("reject {reason}")
            } else if action.starts_with("send vacation message") {
                "vacation".to_string()
            } else {
                action.to_string()
            };
            actions.push((action, Vec::new()));
        } else if let Some(modifier) = line.trim_start().strip_prefix("+ ") {
            if let Some(last) = actions.last_mut() {
                if let Some(flags) = modifier.strip_prefix("add IMAP flags: ") {
                    let flags: Vec<String> = flags.split_whitespace().map(str::to_string).collect();
                    last.1.push(format!("flags=[{}]", flags_text(&flags)));
                } else if modifier.starts_with("create mailbox") {
                    last.1.push("create".to_string());
                }
            }
        } else if let Some(seconds) = line.trim_start().strip_prefix("=> seconds : ")
            && let Some(last) = actions.last_mut()
        {
            last.1.push(format!("seconds={}", seconds.trim()));
        }
    }
    let mut out: Vec<String> = actions
        .into_iter()
        .map(|(action, mut modifiers)| {
            modifiers.sort();
            std::iter::once(action)
                .chain(modifiers)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn our_actions(actions: &[Action]) -> Vec<String> {
    let mut out: Vec<String> = actions
        .iter()
        .map(|action| match action {
            Action::Keep { flags } => store("INBOX", flags, false),
            Action::FileInto {
                mailbox,
                flags,
                create,
            } => store(mailbox, flags, *create),
            Action::Redirect { address } => format!("redirect {address}"),
            Action::Reject { reason, .. } => format!("reject {}", printable(reason)),
            Action::Discard => "discard".to_string(),
            Action::Vacation(vacation) => format!("vacation seconds={}", vacation.period_seconds),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn store(mailbox: &str, flags: &[String], create: bool) -> String {
    let mut modifiers = Vec::new();
    if create {
        modifiers.push("create".to_string());
    }
    if !flags.is_empty() {
        modifiers.push(format!("flags=[{}]", flags_text(flags)));
    }
    modifiers.sort();
    std::iter::once(format!("store {mailbox}"))
        .chain(modifiers)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn actions_agree_with_sieve_test() {
    let pigeonhole = pigeonhole();
    let limits = Limits::default();
    let scripts = files("scripts", "sieve");
    let envelopes = envelopes();
    let mut cases = 0;
    let mut mismatches = Vec::new();
    for script_path in &scripts {
        let source = fs::read_to_string(script_path).unwrap();
        let script = compile(&source, &limits)
            .unwrap_or_else(|e| panic!("{} does not compile: {e}", script_path.display()));
        // sieve-test writes a compiled binary beside the script: give it a writable copy.
        let copy = pigeonhole.dir.path().join(script_path.file_name().unwrap());
        fs::write(&copy, &source).unwrap();
        for (message_name, from, to) in &envelopes {
            let message_path = data().join("messages").join(message_name);
            let message = fs::read(&message_path).unwrap();
            let output = Command::new("sieve-test")
                .env("TZ", "UTC")
                .arg("-c")
                .arg(&pigeonhole.config)
                .args(["-f", from, "-r", to])
                .arg(&copy)
                .arg(&message_path)
                .output()
                .expect("sieve-test (Debian package dovecot-sieve) must be installed");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                text.contains("final result"),
                "sieve-test did not run {} on {message_name}:\n{text}",
                script_path.display()
            );
            let mut expected = pigeonhole_actions(&text);
            // Without -e, sieve-test lists a vacation reply before RFC 5230's checks (lists,
            // bounces, direct recipient), which run at execution: execute to see them.
            if expected.iter().any(|a| a.starts_with("vacation")) {
                let executed = Command::new("sieve-test")
                    .env("TZ", "UTC")
                    .env("HOME", pigeonhole.dir.path())
                    .arg("-e")
                    .arg("-c")
                    .arg(&pigeonhole.config)
                    .args(["-f", from, "-r", to])
                    .arg(&copy)
                    .arg(&message_path)
                    .output()
                    .unwrap();
                let executed = format!(
                    "{}{}",
                    String::from_utf8_lossy(&executed.stdout),
                    String::from_utf8_lossy(&executed.stderr)
                );
                assert!(executed.contains("vacation action"), "{executed}");
                if executed.contains("discarding vacation response") {
                    expected.retain(|a| !a.starts_with("vacation"));
                }
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let own = [to.clone()];
            let exists = |name: &str| name.eq_ignore_ascii_case("INBOX");
            let input = Input {
                envelope: Envelope {
                    from,
                    to,
                    original_to: None,
                },
                message: &message,
                now,
                zone_offset: 0,
                own_addresses: &own,
                mailbox_exists: &exists,
            };
            let ours = match evaluate(&script, &input, &limits) {
                Ok(outcome) => our_actions(&outcome.actions),
                Err(_) => vec!["error".to_string()],
            };
            cases += 1;
            if ours != expected {
                mismatches.push(format!(
                    "{} on {message_name}:\n  pigeonhole: {expected:?}\n  mailstead:  {ours:?}",
                    script_path.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(cases >= 400, "only {cases} cases");
    assert!(
        mismatches.is_empty(),
        "{} of {cases} cases differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn compile_errors_agree_with_sievec() {
    let pigeonhole = pigeonhole();
    let limits = Limits::default();
    let mut disagreements = Vec::new();
    let mut paths = files("scripts", "sieve");
    paths.extend(files("invalid", "sieve"));
    paths.extend(files("rfc", "sieve"));
    for path in &paths {
        let source = fs::read_to_string(path).unwrap();
        let binary = pigeonhole.dir.path().join("out.svbin");
        let output = Command::new("sievec")
            .arg("-c")
            .arg(&pigeonhole.config)
            .arg(path)
            .arg(&binary)
            .output()
            .expect("sievec (Debian package dovecot-sieve) must be installed");
        let sievec_ok = output.status.success();
        let ours = compile(&source, &limits);
        let invalid = path.parent().unwrap().ends_with("invalid");
        if invalid && sievec_ok {
            disagreements.push(format!(
                "{}: sievec accepts a script in invalid/",
                path.display()
            ));
        }
        if sievec_ok != ours.is_ok() {
            disagreements.push(format!(
                "{}: sievec {}, compile {}\n  sievec: {}",
                path.display(),
                if sievec_ok { "accepts" } else { "rejects" },
                match &ours {
                    Ok(_) => "accepts".to_string(),
                    Err(e) => format!("rejects ({e})"),
                },
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    assert!(paths.len() >= 80, "only {} scripts", paths.len());
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
