//! The example scripts of the Sieve RFCs (in `data/rfc`) compile, and on small messages they do
//! what the RFC text says they do.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use mailstead_sieve::{
    Action, Envelope, Input, Limits, Outcome, RuntimeError, Script, compile, evaluate,
    evaluate_sequence,
};

/// Fri, 06 Jul 2007 12:00:00 UTC: inside RFC 5260's "first week in July" example.
const JULY_2007: i64 = 1_183_723_200;

fn rfc(name: &str) -> Script {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/rfc")
        .join(format!("{name}.sieve"));
    let source = fs::read_to_string(path).unwrap();
    compile(&source, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

struct Case<'a> {
    from: &'a str,
    to: &'a str,
    message: String,
    now: i64,
    mailboxes: &'a [&'a str],
}

fn case(message: &str) -> Case<'static> {
    Case {
        from: "sender@example.org",
        to: "me@example.com",
        message: message.replace('\n', "\r\n"),
        now: JULY_2007,
        mailboxes: &["INBOX"],
    }
}

impl Case<'_> {
    fn run(&self, script: &Script) -> Result<Outcome, RuntimeError> {
        let own = [self.to.to_string()];
        let exists = |name: &str| self.mailboxes.contains(&name);
        let input = Input {
            envelope: Envelope {
                from: self.from,
                to: self.to,
                original_to: None,
            },
            message: self.message.as_bytes(),
            now: self.now,
            zone_offset: 0,
            own_addresses: &own,
            mailbox_exists: &exists,
        };
        evaluate(script, &input, &Limits::default())
    }

    fn actions(&self, script: &Script) -> Vec<Action> {
        self.run(script).unwrap().actions
    }
}

fn keep() -> Action {
    Action::Keep { flags: Vec::new() }
}

fn fileinto(mailbox: &str) -> Action {
    Action::FileInto {
        mailbox: mailbox.to_string(),
        flags: Vec::new(),
        create: false,
    }
}

fn redirect(address: &str) -> Action {
    Action::Redirect {
        address: address.to_string(),
    }
}

#[test]
fn rfc5228_section9_example() {
    let script = rfc("rfc5228_section9");
    let large = case(&format!(
        "From: a@b.example\nTo: me@example.com\nSubject: big\n\n{}\n",
        "x".repeat(1_100_000)
    ));
    assert_eq!(
        large.actions(&script),
        [Action::Reject {
            reason: "Please do not send me large attachments.\r\nPut your file on a server and send me the URL.\r\nThank you.\r\n... Fred\r\n".to_string(),
            extended: false,
        }]
    );
    let list = case("Sender: owner-ietf-mta-filters@imc.org\nTo: me@example.com\n\nx\n");
    assert_eq!(list.actions(&script), [fileinto("filter")]);
    let company = case("From: boss@example.com\nTo: me@example.com\n\nx\n");
    assert_eq!(company.actions(&script), [keep()]);
    let not_to_me = case("From: x@elsewhere.example\nTo: other@elsewhere.example\n\nx\n");
    assert_eq!(not_to_me.actions(&script), [fileinto("spam")]);
    let spam = case(
        "From: x@elsewhere.example\nTo: list@elsewhere.example\nCc: me@example.com\nSubject: How to MAKE lots of MONEY fast\n\nx\n",
    );
    assert_eq!(spam.actions(&script), [fileinto("spam")]);
    let personal = case(
        "From: mum@home.example\nTo: family@home.example\nBcc: me@example.com\nSubject: hi\n\nx\n",
    );
    assert_eq!(personal.actions(&script), [fileinto("personal")]);
}

#[test]
fn rfc5228_envelope_and_redirect() {
    let mut from_tim = case("Subject: x\n\nx\n");
    from_tim.from = "tim@example.com";
    assert_eq!(
        from_tim.actions(&rfc("rfc5228_envelope")),
        [Action::Discard]
    );
    assert_eq!(
        case("Subject: x\n\nx\n").actions(&rfc("rfc5228_envelope")),
        [keep()]
    );

    let script = rfc("rfc5228_redirect");
    let cron = case("X-Cron-Job: nightly\nFrom: wile.coyote@acme.example\n\nx\n");
    assert_eq!(
        cron.actions(&script),
        [
            redirect("cron-jobs@example.net"),
            redirect("acm@example.com")
        ]
    );
    let money = case("Subject: $$$ now\n\nx\n");
    assert_eq!(money.actions(&script), [redirect("postmaster@example.com")]);
}

#[test]
fn rfc5228_encoded_character() {
    let script = rfc("rfc5228_encoded_character");
    let message = case("Subject: earn $$$ today\n\nx\n");
    assert_eq!(message.actions(&script), [fileinto("@money")]);
}

#[test]
fn rfc5229_match_variables() {
    let script = rfc("rfc5229_match_variables");
    let list = case("List-ID: Sieve <sieve@example.org>\n\nx\n");
    assert_eq!(list.actions(&script), [fileinto("INBOX.lists.sieve")]);
    let subject = case("Subject: [acme-users] [fwd] version 1.0 is out\n\nx\n");
    assert_eq!(
        subject.actions(&script),
        [fileinto("INBOX.lists.acme-users")]
    );
    // "coyote@**.com": the first star matches as little as possible, so ${1} is empty.
    let business = case("To: coyote@ACME.Example.COM\n\nx\n");
    assert_eq!(
        business.actions(&script),
        [fileinto("INBOX.business.ACME.Example")]
    );
    // `stop` in the last anyof: nothing filed, the implicit keep stays.
    assert_eq!(case("To: x@y.example\n\nx\n").actions(&script), [keep()]);
}

#[test]
fn rfc5229_modifiers() {
    let actions = case("Subject: x\n\nx\n").actions(&rfc("rfc5229_modifiers"));
    assert_eq!(
        actions,
        [fileinto(
            "15/jumbled letters/JuMBlEd lETteRS/Jumbled letters/Rock\\*/Dear Mr Coyote"
        )]
    );
}

fn vacation_of(actions: &[Action]) -> Option<&mailstead_sieve::Vacation> {
    actions.iter().find_map(|a| match a {
        Action::Vacation(v) => Some(v),
        _ => None,
    })
}

#[test]
fn rfc5230_vacation() {
    let script = rfc("rfc5230_vacation");
    let cyrus = case(
        "From: sender@example.org\nTo: me@example.com\nSubject: cyrus crashed\nMessage-ID: <1@example.org>\n\nx\n",
    );
    let actions = cyrus.actions(&script);
    let vacation = vacation_of(&actions).unwrap();
    assert_eq!(vacation.reason, "I'm out -- send mail to cyrus-bugs");
    assert_eq!(vacation.to, "sender@example.org");
    assert_eq!(vacation.subject, "Auto: cyrus crashed");
    assert_eq!(vacation.period_seconds, 7 * 86_400);
    assert_eq!(vacation.in_reply_to.as_deref(), Some("<1@example.org>"));
    assert!(actions.contains(&keep()), "vacation keeps the message");

    // Section 4.5/4.6: never to lists, bounces, automatic mail, or when not addressed directly.
    for header in [
        "List-Id: <x.example.org>",
        "Precedence: bulk",
        "Auto-Submitted: auto-replied",
    ] {
        let message = case(&format!(
            "From: sender@example.org\nTo: me@example.com\n{header}\nSubject: s\n\nx\n"
        ));
        assert!(vacation_of(&message.actions(&script)).is_none(), "{header}");
    }
    let mut bounce = case("To: me@example.com\nSubject: s\n\nx\n");
    bounce.from = "";
    assert!(vacation_of(&bounce.actions(&script)).is_none());
    let mut daemon = case("To: me@example.com\nSubject: s\n\nx\n");
    daemon.from = "MAILER-DAEMON@example.org";
    assert!(vacation_of(&daemon.actions(&script)).is_none());
    let mut list_owner = case("To: me@example.com\nSubject: s\n\nx\n");
    list_owner.from = "owner-list@example.org";
    assert!(vacation_of(&list_owner.actions(&script)).is_none());
    let indirect = case("To: list@example.org\nSubject: s\n\nx\n");
    assert!(vacation_of(&indirect.actions(&script)).is_none());
    let auto_no = case("To: me@example.com\nAuto-Submitted: no\nSubject: s\n\nx\n");
    assert!(vacation_of(&auto_no.actions(&script)).is_some());
}

#[test]
fn rfc5230_vacation_subject_addresses_and_handle() {
    let message = case("To: ts4z@landru.example.edu\nSubject: lunch?\n\nx\n");
    let actions = message.actions(&rfc("rfc5230_vacation_subject"));
    assert!(vacation_of(&actions).is_none(), "not addressed to me");
    let direct = case("To: me@example.com\nSubject: lunch?\n\nx\n");
    let actions = direct.actions(&rfc("rfc5230_vacation_subject"));
    assert_eq!(
        vacation_of(&actions).unwrap().subject,
        "Automatic response to: lunch?"
    );

    let script = rfc("rfc5230_vacation_addresses");
    let actions = message.actions(&script);
    let vacation = vacation_of(&actions).unwrap();
    assert_eq!(vacation.period_seconds, 23 * 86_400);
    // Without :handle the handle is derived from the reply, so it changes with the text.
    let other = compile(
        "require \"vacation\";\nvacation :days 23 :addresses [\"ts4z@landru.example.edu\"] \"other\";\n",
        &Limits::default(),
    )
    .unwrap();
    let other_actions = message.actions(&other);
    assert_ne!(vacation_of(&other_actions).unwrap().handle, vacation.handle);

    let seconds = message.actions(&rfc("rfc6131_vacation_seconds"));
    assert_eq!(vacation_of(&seconds).unwrap().period_seconds, 1800);
}

#[test]
fn rfc5232_flags() {
    let script = rfc("rfc5232_flags");
    let big = case(&format!(
        "From: boss@example.com\nTo: me@example.com\n\n{}\n",
        "x".repeat(1_100_000)
    ));
    assert_eq!(
        big.actions(&script),
        [Action::FileInto {
            mailbox: "INBOX.From Boss".to_string(),
            flags: vec!["Big".to_string(), "\\Flagged".to_string()],
            create: false,
        }]
    );
    // The implicit keep takes the internal variable's flags.
    let small = case("From: boss@example.com\n\nx\n");
    assert_eq!(
        small.actions(&script),
        [Action::Keep {
            flags: vec!["\\Seen".to_string()]
        }]
    );
}

#[test]
fn rfc5233_subaddress() {
    let script = rfc("rfc5233_subaddress");
    let mut postmaster = case("Subject: x\n\nx\n");
    postmaster.to = "postmaster+abuse@example.com";
    assert_eq!(postmaster.actions(&script), [fileinto("inbox.postmaster")]);
    let mut list = case("Subject: x\n\nx\n");
    list.to = "ken+mta-filters@example.com";
    assert_eq!(list.actions(&script), [fileinto("inbox.ietf-mta-filters")]);
    let mut foo = case("Subject: x\n\nx\n");
    foo.to = "ken+foo@example.com";
    assert_eq!(foo.actions(&script), [redirect("ken@example.net")]);
    let mut plain = case("Subject: x\n\nx\n");
    plain.to = "ken@example.com";
    assert_eq!(plain.actions(&script), [keep()]);
}

#[test]
fn rfc5231_relational() {
    let script = rfc("rfc5231_relational");
    let urgent = case("X-Priority: 1 (Highest)\n\nx\n");
    assert_eq!(urgent.actions(&script), [fileinto("Priority")]);
    let crowd =
        case("X-Priority: 3\nTo: a@x.example, b@x.example\nCc: c@x.example, d@x.example\n\nx\n");
    assert_eq!(crowd.actions(&script), [fileinto("Crowd")]);
    let few = case("To: a@x.example\n\nx\n");
    assert_eq!(few.actions(&script), [keep()]);
}

#[test]
fn rfc3894_copy() {
    let script = rfc("rfc3894_copy");
    let important = case("Subject: important news\n\nx\n");
    assert_eq!(
        important.actions(&script),
        [redirect("boss@example.com"), fileinto("Archive"), keep()]
    );
}

#[test]
fn rfc5173_body() {
    let script = rfc("rfc5173_body");
    let spam = case("Subject: x\n\nMAKE MONEY FAST\n");
    assert_eq!(spam.actions(&script), [Action::Discard]);
    let secret = case(
        "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nthe missile coordinates\n--b\nContent-Type: audio/mp3\nContent-Transfer-Encoding: base64\n\nAAAA\n--b--\n",
    );
    assert_eq!(
        secret.actions(&script),
        [fileinto("secrets"), fileinto("jukebox")]
    );
    // :raw sees the undecoded body: base64 text does not match its decoded words.
    let encoded =
        case("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\nbWlzc2lsZQ==\n");
    assert_eq!(encoded.actions(&script), [fileinto("secrets")]);
}

#[test]
fn rfc5260_date_index_currentdate() {
    let script = rfc("rfc5260_date");
    let office = case("From: boss@example.com\nDate: Mon, 26 Feb 2007 10:00:00 -0800\n\nx\n");
    assert_eq!(office.actions(&script), [fileinto("urgent")]);
    let night = case("From: boss@example.com\nDate: Mon, 26 Feb 2007 20:00:00 -0800\n\nx\n");
    assert_eq!(night.actions(&script), [keep()]);

    let script = rfc("rfc5260_index");
    let late = case(
        "Received: from a by b; Mon, 26 Feb 2007 10:00:00 -0500\nReceived: from b by c; Mon, 26 Feb 2007 08:00:00 -0500\n\nx\n",
    );
    assert_eq!(
        late.actions(&script),
        [redirect("aftercutoff@example.org"), fileinto("second")]
    );

    let script = rfc("rfc5260_currentdate");
    assert!(vacation_of(&case("To: me@example.com\n\nx\n").actions(&script)).is_some());
    let mut august = case("To: me@example.com\n\nx\n");
    august.now = JULY_2007 + 40 * 86_400;
    assert!(vacation_of(&august.actions(&script)).is_none());
}

#[test]
fn rfc5293_editheader() {
    let script = rfc("rfc5293_editheader");
    let message = case(
        "Received: from a by b; Mon, 26 Feb 2007 10:00:00 -0500\nX-Spam-Status: Yes, score=9\nSubject: s\n\nbody\n",
    );
    let outcome = message.run(&script).unwrap();
    assert_eq!(outcome.actions, [fileinto("lists")]);
    let header = String::from_utf8(outcome.header.unwrap()).unwrap();
    assert_eq!(
        header,
        "X-Source: mailing list\r\nReceived: from a by b; Mon, 26 Feb 2007 10:00:00 -0500\r\nSubject: s\r\nX-Sieve-Filtered: <kim@job.example.com>\r\n\r\n",
        "Received is protected; X-Spam-Status is gone"
    );
    let untouched = compile("keep;", &Limits::default()).unwrap();
    assert!(message.run(&untouched).unwrap().header.is_none());
}

#[test]
fn rfc5429_reject_and_ereject() {
    let script = rfc("rfc5429_reject");
    let big = case(&format!("Subject: s\n\n{}\n", "x".repeat(200_000)));
    assert!(matches!(
        big.actions(&script).as_slice(),
        [Action::Reject { extended: false, reason }] if reason.starts_with("Your message is too big.")
    ));
    let ereject = compile(
        "require \"ereject\";\nereject \"no thanks\";\n",
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        case("Subject: s\n\nx\n").actions(&ereject),
        [Action::Reject {
            reason: "no thanks".to_string(),
            extended: true
        }]
    );
    // Section 2.1: reject with an explicit delivery is an error (the caller keeps the mail).
    let conflict = compile(
        "require [\"reject\", \"fileinto\"];\nfileinto \"x\";\nreject \"no\";\n",
        &Limits::default(),
    )
    .unwrap();
    let error = case("Subject: s\n\nx\n").run(&conflict).unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 3: reject action conflicts with the fileinto action"
    );
}

#[test]
fn rfc5490_mailbox() {
    let script = rfc("rfc5490_mailbox");
    let mut partners = case("Subject: s\n\nx\n");
    partners.mailboxes = &["INBOX", "Partners"];
    assert_eq!(partners.actions(&script), [fileinto("Partners")]);
    assert!(matches!(
        case("Subject: s\n\nx\n").actions(&script).as_slice(),
        [Action::Reject { .. }]
    ));
    assert_eq!(
        case("Subject: s\n\nx\n").actions(&rfc("rfc5490_create")),
        [Action::FileInto {
            mailbox: "INBOX.Lists.Sieve".to_string(),
            flags: Vec::new(),
            create: true
        }]
    );
}

#[test]
fn regex_draft() {
    let script = rfc("regex_draft");
    let stephan = case("From: Stephan+lists@IT.example.com\nSubject: [sieve-dev] regex\n\nx\n");
    assert_eq!(
        stephan.actions(&script),
        [fileinto("Stephan"), fileinto("Lists/sieve-dev")]
    );
}

#[test]
fn limits_hold_at_run_time() {
    let redirects = compile(
        "redirect \"a@x.example\"; redirect \"b@x.example\"; redirect \"c@x.example\";\nredirect \"d@x.example\"; redirect \"e@x.example\";\n",
        &Limits::default(),
    )
    .unwrap();
    assert!(matches!(
        case("Subject: s\n\nx\n").run(&redirects),
        Err(RuntimeError::TooManyRedirects)
    ));
    let limits = Limits {
        max_steps: 50,
        ..Limits::default()
    };
    let busy = compile(
        "require \"variables\";\nif header :matches \"subject\" [\"*a*b*c*\", \"*d*e*f*\", \"*g*h*i*\"] { keep; }\nif header :matches \"subject\" [\"*a*b*c*\", \"*d*e*f*\", \"*g*h*i*\"] { keep; }\nif header :matches \"subject\" [\"*a*b*c*\", \"*d*e*f*\", \"*g*h*i*\"] { keep; }\nif header :matches \"subject\" [\"*a*b*c*\", \"*d*e*f*\", \"*g*h*i*\"] { keep; }\nif header :matches \"subject\" [\"*a*b*c*\", \"*d*e*f*\", \"*g*h*i*\"] { keep; }\nif header :matches \"subject\" [\"*a*b*c*\", \"*d*e*f*\", \"*g*h*i*\"] { keep; }\nif header :matches \"subject\" [\"*a*b*c*\", \"*d*e*f*\", \"*g*h*i*\"] { keep; }\nif header :matches \"subject\" [\"*a*b*c*\", \"*d*e*f*\", \"*g*h*i*\"] { keep; }\n",
        &limits,
    )
    .unwrap();
    let many = case(&format!("{}\nx\n", "Subject: zzz\n".repeat(10)));
    let own = [many.to.to_string()];
    let exists = |_: &str| false;
    let input = Input {
        envelope: Envelope {
            from: many.from,
            to: many.to,
            original_to: None,
        },
        message: many.message.as_bytes(),
        now: 0,
        zone_offset: 0,
        own_addresses: &own,
        mailbox_exists: &exists,
    };
    assert!(matches!(
        evaluate(&busy, &input, &limits),
        Err(RuntimeError::StepLimit)
    ));
    let small = Limits {
        max_script_bytes: 10,
        ..Limits::default()
    };
    assert!(compile("keep; keep; keep;", &small).is_err());
    let shallow = Limits {
        max_nesting: 3,
        ..Limits::default()
    };
    assert!(
        compile(
            "if true { if true { if true { if true { keep; } } } }",
            &shallow
        )
        .is_err()
    );
}

/// sieve_before semantics, checked against sieve-test in tests/pigeonhole.rs; here the two
/// rules that matter most: a global fileinto ends the sequence, `stop` does not.
#[test]
fn sequences() {
    let limits = Limits::default();
    let spam = compile(
        "require \"fileinto\";\nif header :contains \"x-spam-flag\" \"YES\" { fileinto \"Junk\"; stop; }\n",
        &limits,
    )
    .unwrap();
    let stop = compile("stop;", &limits).unwrap();
    let user = compile("require \"fileinto\";\nfileinto \"User\";\n", &limits).unwrap();
    let message = case("X-Spam-Flag: YES\n\nx\n");
    let own = [message.to.to_string()];
    let exists = |_: &str| true;
    let input = Input {
        envelope: Envelope {
            from: message.from,
            to: message.to,
            original_to: None,
        },
        message: message.message.as_bytes(),
        now: 0,
        zone_offset: 0,
        own_addresses: &own,
        mailbox_exists: &exists,
    };
    let outcome = evaluate_sequence(&[&spam, &user], &input, &limits).unwrap();
    assert_eq!(outcome.actions, [fileinto("Junk")]);
    let outcome = evaluate_sequence(&[&stop, &user], &input, &limits).unwrap();
    assert_eq!(outcome.actions, [fileinto("User")]);
    let outcome = evaluate_sequence(&[], &input, &limits).unwrap();
    assert_eq!(outcome.actions, [keep()]);
}
