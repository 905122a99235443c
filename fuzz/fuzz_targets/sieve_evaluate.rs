//! Messages arrive from anyone over SMTP: running a fixed set of scripts (every test and
//! action kind) on any message must never panic, and must stay within the limits.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mailstead_sieve::{Envelope, Input, Limits, Script, compile, evaluate_sequence};

const SCRIPTS: &[&str] = &[
    r#"require ["fileinto", "envelope", "subaddress", "variables", "regex", "relational",
        "comparator-i;ascii-numeric", "imap4flags", "body", "date", "index", "editheader"];
    if header :matches "subject" "*[*]*" { set :lower "list" "${2}"; addflag "$List"; }
    if address :detail :matches "to" "*" { fileinto "plus/${1}"; }
    if envelope :domain :is "from" "example.org" { addheader "X-Known" "yes"; }
    if header :regex "subject" "^(re|fwd?): (.*)$" { set "rest" "${2}"; }
    if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "5" { fileinto "Junk"; stop; }
    if address :count "gt" :comparator "i;ascii-numeric" ["to", "cc"] "3" { fileinto "Crowd"; }
    if body :text :contains ["invoice", "missile"] { fileinto "Body"; }
    if body :raw :matches "*--*--*" { fileinto "Raw"; }
    if date :value "ge" :originalzone "date" "hour" "09" { addflag "$Day"; }
    if header :index 1 :last :contains "received" "relay" { deleteheader :index 1 "received"; }
    deleteheader :matches "x-spam-*" "*";
    "#,
    r#"require ["vacation", "vacation-seconds", "copy", "reject", "mailbox", "fileinto"];
    if exists "list-id" { fileinto :create "Lists"; }
    if size :over 100K { redirect :copy "big@example.net"; }
    vacation :seconds 3600 :subject "away" :addresses ["user@example.com"] "I am away.";
    "#,
];

fn scripts() -> &'static Vec<Script> {
    static SCRIPTS_COMPILED: OnceLock<Vec<Script>> = OnceLock::new();
    SCRIPTS_COMPILED.get_or_init(|| {
        SCRIPTS
            .iter()
            .map(|source| compile(source, &Limits::default()).expect("the fixed scripts compile"))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let scripts: Vec<&Script> = scripts().iter().collect();
    let own = ["user@example.com".to_string()];
    let exists = |name: &str| name.len() % 2 == 0;
    // The first byte picks the envelope sender, so the null sender is covered too.
    let (from, message) = match data.split_first() {
        Some((0, rest)) => ("", rest),
        Some((_, rest)) => ("alice@example.org", rest),
        None => ("", data),
    };
    let input = Input {
        envelope: Envelope {
            from,
            to: "user+tag@example.com",
            original_to: Some("alias@example.com"),
        },
        message,
        now: 1_638_440_100,
        zone_offset: -18_000,
        own_addresses: &own,
        mailbox_exists: &exists,
    };
    if let Ok(outcome) = evaluate_sequence(&scripts, &input, &limits) {
        assert!(outcome.actions.len() <= limits.max_actions + 1);
        if let Some(header) = outcome.header {
            assert!(header.ends_with(b"\r\n\r\n") || header == b"\r\n");
        }
    }
});
