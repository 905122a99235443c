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

use mailstead_sieve::{Action, Envelope, Input, Limits, Script, compile, evaluate_sequence};

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
    // With several scripts, only the last one's implicit keep happens.
    let mut performed: Vec<(String, Vec<String>)> = Vec::new();
    let mut implicit: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_implicit = false;
    let mut in_message = false;
    for line in output.lines() {
        if line.starts_with("Performed actions:") {
            in_implicit = false;
            continue;
        }
        if line.starts_with("Implicit keep:") {
            in_implicit = true;
            implicit.clear();
            continue;
        }
        let actions = if in_implicit {
            &mut implicit
        } else {
            &mut performed
        };
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
    performed.extend(implicit);
    let mut out: Vec<String> = performed
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

/// Runs sieve-test on one message: `before` scripts (sieve-test's -s, Pigeonhole's
/// sieve_before) then `script`; returns the normalised action list.
fn sieve_test(
    pigeonhole: &Pigeonhole,
    before: &[PathBuf],
    script: &Path,
    message_path: &Path,
    from: &str,
    to: &str,
) -> Vec<String> {
    let run = |execute: bool| {
        let mut command = Command::new("sieve-test");
        command
            .env("TZ", "UTC")
            .env("HOME", pigeonhole.dir.path())
            .arg("-c")
            .arg(&pigeonhole.config)
            .args(["-f", from, "-r", to]);
        if execute {
            command.arg("-e");
        }
        for path in before {
            command.arg("-s").arg(path);
        }
        let output = command
            .arg(script)
            .arg(message_path)
            .output()
            .expect("sieve-test (Debian package dovecot-sieve) must be installed");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let text = run(false);
    assert!(
        text.contains("final result"),
        "sieve-test did not run {} on {}:\n{text}",
        script.display(),
        message_path.display()
    );
    let mut expected = pigeonhole_actions(&text);
    // Without -e, sieve-test lists a vacation reply before RFC 5230's checks (lists,
    // bounces, direct recipient), which run at execution: execute to see them.
    if expected.iter().any(|a| a.starts_with("vacation")) {
        let executed = run(true);
        assert!(executed.contains("vacation action"), "{executed}");
        if executed.contains("discarding vacation response") {
            expected.retain(|a| !a.starts_with("vacation"));
        }
    }
    expected
}

/// A copy of a script where sieve-test may write its compiled binary beside it.
fn writable_copy(pigeonhole: &Pigeonhole, path: &Path) -> PathBuf {
    let copy = pigeonhole.dir.path().join(path.file_name().unwrap());
    fs::copy(path, &copy).unwrap();
    copy
}

fn compiled(path: &Path) -> Script {
    let source = fs::read_to_string(path).unwrap();
    compile(&source, &Limits::default())
        .unwrap_or_else(|e| panic!("{} does not compile: {e}", path.display()))
}

/// Our side of one case: the same envelope, "now", zone (UTC) and mailboxes (INBOX only).
fn mailstead(scripts: &[&Script], message_path: &Path, from: &str, to: &str) -> Vec<String> {
    let message = fs::read(message_path).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let own = [to.to_string()];
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
    match evaluate_sequence(scripts, &input, &Limits::default()) {
        Ok(outcome) => our_actions(&outcome.actions),
        Err(_) => vec!["error".to_string()],
    }
}

fn report(mismatches: &[String], cases: usize) {
    assert!(
        mismatches.is_empty(),
        "{} of {cases} cases differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn actions_agree_with_sieve_test() {
    let pigeonhole = pigeonhole();
    let envelopes = envelopes();
    let mut cases = 0;
    let mut mismatches = Vec::new();
    for script_path in files("scripts", "sieve") {
        let script = compiled(&script_path);
        let copy = writable_copy(&pigeonhole, &script_path);
        for (message_name, from, to) in &envelopes {
            let message_path = data().join("messages").join(message_name);
            let expected = sieve_test(&pigeonhole, &[], &copy, &message_path, from, to);
            let ours = mailstead(&[&script], &message_path, from, to);
            cases += 1;
            if ours != expected {
                mismatches.push(format!(
                    "{} on {message_name}:\n  pigeonhole: {expected:?}\n  mailstead:  {ours:?}",
                    script_path.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(cases >= 500, "only {cases} cases");
    report(&mismatches, cases);
}

/// Global scripts before the user's, as sieve_before runs them: which actions survive, whether
/// the user's script runs at all, and whether flags carry over.
#[test]
fn sequences_agree_with_sieve_test() {
    let pigeonhole = pigeonhole();
    let envelopes = envelopes();
    let users = [
        "rc_multi_rules.sieve",
        "hand_flags_count.sieve",
        "hand_only_keep.sieve",
        "hand_empty.sieve",
        "rc_discard.sieve",
    ];
    let mut cases = 0;
    let mut mismatches = Vec::new();
    for before_path in files("sequences", "sieve") {
        let before = compiled(&before_path);
        let before_copy = writable_copy(&pigeonhole, &before_path);
        for user in users {
            let user_path = data().join("scripts").join(user);
            let script = compiled(&user_path);
            let user_copy = writable_copy(&pigeonhole, &user_path);
            for (message_name, from, to) in envelopes.iter().take(6) {
                let message_path = data().join("messages").join(message_name);
                let expected = sieve_test(
                    &pigeonhole,
                    std::slice::from_ref(&before_copy),
                    &user_copy,
                    &message_path,
                    from,
                    to,
                );
                let ours = mailstead(&[&before, &script], &message_path, from, to);
                cases += 1;
                if ours != expected {
                    mismatches.push(format!(
                        "{} then {user} on {message_name}:\n  pigeonhole: {expected:?}\n  mailstead:  {ours:?}",
                        before_path.file_name().unwrap().to_string_lossy()
                    ));
                }
            }
        }
    }
    assert!(cases >= 150, "only {cases} cases");
    report(&mismatches, cases);
}

/// Deliberate differences: the `regex` crate has no backreferences (they make matching
/// exponential in the worst case), so `compile` rejects what POSIX regcomp accepts.
const KNOWN_DIFFERENCES: &[&str] = &["regex_backref.sieve"];

#[test]
fn compile_errors_agree_with_sievec() {
    let pigeonhole = pigeonhole();
    let limits = Limits::default();
    let mut disagreements = Vec::new();
    let mut paths = files("scripts", "sieve");
    paths.extend(files("valid", "sieve"));
    paths.extend(files("invalid", "sieve"));
    paths.extend(files("rfc", "sieve"));
    paths.extend(files("sequences", "sieve"));
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
        let name = path.file_name().unwrap().to_string_lossy();
        if KNOWN_DIFFERENCES.contains(&name.as_ref()) {
            assert!(
                sievec_ok && ours.is_err(),
                "{name} is no longer a difference"
            );
            continue;
        }
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
