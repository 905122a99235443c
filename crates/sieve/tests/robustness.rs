//! What the fuzz targets check, on a fixed, reproducible set of inputs that stable CI runs:
//! every corpus script cut short and with single characters replaced by syntax characters
//! must compile or fail with a located error, never panic; whatever compiles must evaluate
//! without panicking, within its limits.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use mailstead_sieve::{Envelope, Input, Limits, compile, evaluate};

const REPLACEMENTS: &[char] = &[
    '"', '{', '}', '[', ']', '(', ')', ';', ',', '\\', '*', '$', ':', '\n', '#', '9',
];

fn corpus() -> Vec<String> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut scripts = Vec::new();
    for dir in ["scripts", "valid", "invalid", "rfc", "sequences"] {
        for entry in fs::read_dir(data.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "sieve") {
                scripts.push(fs::read_to_string(path).unwrap());
            }
        }
    }
    scripts
}

fn check(source: &str, message: &[u8], limits: &Limits) -> bool {
    match compile(source, limits) {
        Err(error) => {
            assert!(!error.errors.is_empty(), "{source:?}");
            assert!(
                error
                    .errors
                    .iter()
                    .all(|d| d.line >= 1 && !d.message.is_empty())
            );
            false
        }
        Ok(script) => {
            let own = ["user@example.com".to_string()];
            let exists = |name: &str| name == "INBOX";
            let input = Input {
                envelope: Envelope {
                    from: "alice@example.org",
                    to: "user+tag@example.com",
                    original_to: None,
                },
                message,
                now: i64::MAX,
                zone_offset: 50_400,
                own_addresses: &own,
                mailbox_exists: &exists,
            };
            if let Ok(outcome) = evaluate(&script, &input, limits) {
                assert!(outcome.actions.len() <= limits.max_actions + 1);
            }
            true
        }
    }
}

#[test]
fn mutated_scripts_never_panic() {
    let message =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/messages/multipart.eml"))
            .unwrap();
    let limits = Limits {
        max_steps: 20_000,
        ..Limits::default()
    };
    let (mut compiled, mut rejected) = (0, 0);
    for source in corpus() {
        let chars: Vec<char> = source.chars().collect();
        for cut in (0..chars.len()).step_by(3) {
            let prefix: String = chars[..cut].iter().collect();
            if check(&prefix, &message, &limits) {
                compiled += 1;
            } else {
                rejected += 1;
            }
        }
        for (i, replacement) in (0..chars.len()).step_by(2).zip(REPLACEMENTS.iter().cycle()) {
            let mut mutated = chars.clone();
            mutated[i] = *replacement;
            let mutated: String = mutated.into_iter().collect();
            if check(&mutated, &message, &limits) {
                compiled += 1;
            } else {
                rejected += 1;
            }
        }
    }
    // Both outcomes must be exercised for the test to mean anything.
    assert!(
        compiled > 500 && rejected > 500,
        "{compiled} compiled, {rejected} rejected"
    );
}

#[test]
fn hostile_messages_and_scripts_stay_bounded() {
    let limits = Limits::default();
    // Deep nesting is refused, not recursed into.
    let deep = format!("{}true{}", "not ".repeat(10_000), "");
    assert!(compile(&format!("if {deep} {{ keep; }}"), &limits).is_err());
    let blocks = format!("{}keep;{}", "if true {".repeat(10_000), "}".repeat(10_000));
    assert!(compile(&blocks, &limits).is_err());
    // A message that is all header, all body, or nothing at all.
    let script = compile(
        "require [\"body\", \"variables\"];\nif header :matches \"subject\" \"*a*a*a*a*a*b\" { keep; }\nif body :text :contains \"x\" { discard; }\n",
        &limits,
    )
    .unwrap();
    let subject = format!("Subject: {}\r\n\r\n", "a".repeat(200_000));
    for message in [
        subject.as_bytes(),
        b"" as &[u8],
        b"\r\n\r\n",
        b"no header line at all",
    ] {
        let own = ["user@example.com".to_string()];
        let exists = |_: &str| true;
        let input = Input {
            envelope: Envelope {
                from: "",
                to: "user@example.com",
                original_to: None,
            },
            message,
            now: i64::MIN,
            zone_offset: -50_400,
            own_addresses: &own,
            mailbox_exists: &exists,
        };
        // Either an outcome or a limit: never a hang or a panic.
        let _ = evaluate(&script, &input, &limits);
    }
}
