//! Scripts arrive from users over ManageSieve: compiling any text must never panic or run
//! away, every error must carry a line and words, and whatever compiles must evaluate (within
//! its limits) on a small message without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailstead_sieve::{Envelope, Input, Limits, compile, evaluate};

const MESSAGE: &[u8] = b"From: Alice <alice@example.org>\r\nTo: user+tag@example.com\r\n\
Subject: =?UTF-8?Q?caf=C3=A9?= [list] hello\r\nDate: Thu, 2 Dec 2021 11:15:00 +0100\r\n\
X-Spam-Score: 7.5\r\nContent-Type: text/plain\r\n\r\nbody text\r\n";

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits {
        max_steps: 20_000,
        ..Limits::default()
    };
    match compile(source, &limits) {
        Err(error) => {
            assert!(!error.errors.is_empty());
            for diagnostic in &error.errors {
                assert!(diagnostic.line >= 1 && !diagnostic.message.is_empty());
            }
            assert!(error.to_string().starts_with("line "));
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
                message: MESSAGE,
                now: 1_638_440_100,
                zone_offset: 3600,
                own_addresses: &own,
                mailbox_exists: &exists,
            };
            if let Ok(outcome) = evaluate(&script, &input, &limits) {
                assert!(outcome.actions.len() <= limits.max_actions + 1);
            }
        }
    }
});
