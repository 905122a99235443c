//! The deterministic mail data set: USERS × MESSAGES messages per user, written as Maildir
//! files (`DIR/userN/Maildir/cur/…`) with realistic headers and sizes, some multipart with
//! base64 attachments. The same seed always gives the same bytes, so Dovecot and Mailstead
//! get identical files. Each file's mtime (the IMAP INTERNALDATE of a Maildir message) is its
//! Date: header, spread over one year ending before [`SINCE`].

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const DOMAIN: &str = "example.test";
/// 2025-11-01 00:00:00 UTC: the first message's date.
const START: u64 = 1_761_955_200;
/// The span over which messages are dated.
const SPAN: u64 = 365 * 86_400;
/// `UID SEARCH SINCE` argument: the last ~13 % of each mailbox (and every appended message).
pub const SINCE: &str = "1-Sep-2026";

pub const FIRST_NAMES: &[&str] = &[
    "Alice", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiroshi", "Ines", "Jonas",
    "Kwame", "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tomasz",
];
pub const LAST_NAMES: &[&str] = &[
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Kowalski",
    "Haddad",
    "Bianchi",
    "Novak",
    "Schmidt",
    "Fernandes",
];
const SENDER_DOMAINS: &[&str] = &[
    "example.org",
    "example.net",
    "lists.example.com",
    "corp.example",
    "mail.example.edu",
];
pub const SUBJECT_WORDS: &[&str] = &[
    "invoice",
    "meeting",
    "release",
    "quarterly",
    "report",
    "budget",
    "schedule",
    "review",
    "deployment",
    "contract",
    "travel",
    "update",
    "agenda",
    "proposal",
    "feedback",
    "migration",
    "newsletter",
    "security",
    "backup",
    "holiday",
];
const BODY_WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "we",
    "that",
    "is",
    "for",
    "on",
    "with",
    "as",
    "this",
    "be",
    "will",
    "please",
    "server",
    "attached",
    "thanks",
    "regards",
    "next",
    "week",
    "team",
    "project",
    "deadline",
    "customer",
    "numbers",
    "draft",
    "final",
    "version",
    "question",
    "answer",
    "call",
    "tomorrow",
    "morning",
    "afternoon",
    "document",
    "change",
    "request",
    "approval",
    "status",
];

/// A sender: (display name, address), from a fixed set of 200.
pub fn sender(n: usize) -> (String, String) {
    let first = FIRST_NAMES[n % FIRST_NAMES.len()];
    let last = LAST_NAMES[(n / FIRST_NAMES.len()) % LAST_NAMES.len()];
    let domain = SENDER_DOMAINS[n % SENDER_DOMAINS.len()];
    (
        format!("{first} {last}"),
        format!("{}.{}@{domain}", first.to_lowercase(), last.to_lowercase()),
    )
}

/// RFC 5322 date of a Unix time, in UTC.
pub fn rfc5322_date(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Howard Hinnant's days-to-civil.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn words(rng: &mut StdRng, bytes: usize, out: &mut String) {
    let mut line = 0;
    let target = out.len() + bytes;
    while out.len() < target {
        let word = BODY_WORDS[rng.random_range(0..BODY_WORDS.len())];
        if line + word.len() > 72 {
            out.push_str("\r\n");
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out.push_str("\r\n");
}

fn base64_lines(rng: &mut StdRng, raw_bytes: usize, out: &mut String) {
    let mut raw = vec![0u8; raw_bytes];
    rng.fill(&mut raw[..]);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&raw);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
}

/// Log-uniform size in [lo, hi).
fn size(rng: &mut StdRng, lo: usize, hi: usize) -> usize {
    let (lo, hi) = (lo as f64, hi as f64);
    (lo * (hi / lo).powf(rng.random::<f64>())) as usize
}

/// One message for `user` (1-based), number `i` of `count`; also its date (Unix time) and
/// Maildir flags.
/// The generator of message `i` of `user`, and what its header starts with: the date's
/// offset in its hour, the sender's number and the Message-ID's random part.
fn start(user: usize, i: usize) -> (StdRng, u64, usize, String) {
    let mut rng = StdRng::seed_from_u64(0x696d_6170_0000_0000 ^ ((user as u64) << 24) ^ i as u64);
    let offset = rng.random_range(0..3600);
    let from = rng.random_range(0..200);
    let id = format!("{:016x}", rng.random::<u64>());
    (rng, offset, from, id)
}

fn domain_of(address: &str) -> String {
    address
        .split('@')
        .nth(1)
        .unwrap_or("example.org")
        .to_owned()
}

/// The Message-ID of message `i` of `user`, so that a reply can refer to an earlier one.
pub fn message_id(user: usize, i: usize) -> String {
    let (_, _, from, id) = start(user, i);
    format!("<{id}.{i}@{}>", domain_of(&sender(from).1))
}

pub fn message(user: usize, i: usize, count: usize) -> (String, u64, &'static str) {
    let (mut rng, offset, from, id) = start(user, i);
    let date = START + SPAN * i as u64 / count.max(1) as u64 + offset;
    let (from_name, from_addr) = sender(from);
    let from_domain = domain_of(&from_addr);
    let rcpt = format!("user{user}@{DOMAIN}");
    let date_text = rfc5322_date(date);
    let mut m = String::with_capacity(8192);
    let _ = write!(
        m,
        "Return-Path: <{from_addr}>\r\nDelivered-To: {rcpt}\r\n\
         Received: from mail.{from_domain} (mail.{from_domain} [192.0.2.{}])\r\n\
         \tby mx.{DOMAIN} (Postfix) with ESMTPS id {}\r\n\tfor <{rcpt}>; {date_text}\r\n\
         Received: from [10.1.{}.{}] by mail.{from_domain} with ESMTPSA id {id}; {date_text}\r\n",
        rng.random_range(1..255),
        &id[..10].to_ascii_uppercase(),
        rng.random_range(0..255),
        rng.random_range(1..255),
    );
    if rng.random_bool(0.5) {
        let _ = write!(
            m,
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={from_domain}; s=mail;\r\n\
             \tt={date}; h=from:to:subject:date:message-id;\r\n\tbh="
        );
        base64_lines(&mut rng, 32, &mut m);
        m.push_str("\tb=");
        base64_lines(&mut rng, 256, &mut m);
    }
    let mut subject = String::new();
    let reply = rng.random_bool(0.3);
    if reply {
        subject.push_str("Re: ");
    }
    for k in 0..rng.random_range(2..6) {
        if k > 0 {
            subject.push(' ');
        }
        subject.push_str(SUBJECT_WORDS[rng.random_range(0..SUBJECT_WORDS.len())]);
    }
    let _ = write!(
        m,
        "Date: {date_text}\r\nFrom: {from_name} <{from_addr}>\r\nTo: User {user} <{rcpt}>\r\n"
    );
    if rng.random_bool(0.2) {
        let (cc_name, cc_addr) = sender(rng.random_range(0..200));
        let _ = write!(m, "Cc: {cc_name} <{cc_addr}>\r\n");
    }
    let _ = write!(
        m,
        "Subject: {subject}\r\nMessage-ID: <{id}.{i}@{from_domain}>\r\n"
    );
    if reply {
        // A reply to one of the 50 messages before it (threads for THREAD REFERENCES), or
        // to a message not in the folder for the first ones.
        let draw = rng.random::<u64>();
        let parent = match i {
            0 => format!("<{draw:016x}@{DOMAIN}>"),
            _ => message_id(user, i - 1 - (draw % 50) as usize % i),
        };
        let _ = write!(m, "In-Reply-To: {parent}\r\nReferences: {parent}\r\n");
    }
    m.push_str("MIME-Version: 1.0\r\n");
    let kind = rng.random_range(0..100);
    let boundary = format!("=_bench_{id}");
    if kind < 60 {
        m.push_str(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        );
        let n = size(&mut rng, 300, 8_000);
        words(&mut rng, n, &mut m);
    } else if kind < 85 {
        let _ = write!(
            m,
            "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
             --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        );
        let n = size(&mut rng, 500, 6_000);
        words(&mut rng, n, &mut m);
        let _ = write!(
            m,
            "--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>\r\n"
        );
        words(&mut rng, n * 3 / 2, &mut m);
        let _ = write!(m, "</p></body></html>\r\n--{boundary}--\r\n");
    } else {
        let attachment = if kind < 98 {
            size(&mut rng, 4_000, 60_000)
        } else {
            size(&mut rng, 100_000, 400_000)
        };
        let _ = write!(
            m,
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
             This is a multi-part message in MIME format.\r\n\r\n\
             --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        );
        let n = size(&mut rng, 200, 3_000);
        words(&mut rng, n, &mut m);
        let _ = write!(
            m,
            "--{boundary}\r\nContent-Type: application/pdf; name=\"document-{i}.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"document-{i}.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        );
        base64_lines(&mut rng, attachment, &mut m);
        let _ = write!(m, "--{boundary}--\r\n");
    }
    let roll = rng.random_range(0..100);
    let flags = match roll {
        0..25 => "",
        25..30 => "FS",
        30..40 => "RS",
        _ => "S",
    };
    (m, date, flags)
}

/// A message for APPEND (about 3 KiB, plain text), unique per call.
pub fn append_message(user: usize, client: usize, n: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(n ^ ((client as u64) << 32));
    let (name, addr) = sender(rng.random_range(0..200));
    let mut m = format!(
        "Date: {}\r\nFrom: {name} <{addr}>\r\nTo: User {user} <user{user}@{DOMAIN}>\r\n\
         Subject: bench draft {client}-{n}\r\nMessage-ID: <bench.{client}.{n}@{DOMAIN}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        rfc5322_date(START + SPAN)
    );
    words(&mut rng, 3000, &mut m);
    m.into_bytes()
}

/// Writes the data set: `dir/userN/Maildir/{cur,new,tmp}` for N in 1..=users.
pub fn generate(dir: &Path, users: usize, messages: usize) -> Result<(u64, usize)> {
    let mut total_bytes = 0u64;
    let mut multipart = 0;
    for user in 1..=users {
        let maildir = dir.join(format!("user{user}")).join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(maildir.join(sub))
                .with_context(|| format!("creating {}", maildir.join(sub).display()))?;
        }
        for i in 0..messages {
            let (text, date, flags) = message(user, i, messages);
            if text.contains("multipart/") {
                multipart += 1;
            }
            let name = format!("{date}.M{i}P{user}.bench.test,S={}:2,{flags}", text.len());
            let path = maildir.join("cur").join(name);
            fs::write(&path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            let file = fs::File::options()
                .write(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(date))
                .with_context(|| format!("setting the mtime of {}", path.display()))?;
            total_bytes += text.len() as u64;
        }
    }
    Ok((total_bytes, multipart))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(START), "Sat, 01 Nov 2025 00:00:00 +0000");
    }

    #[test]
    fn replies_refer_to_earlier_messages() {
        let replies: Vec<usize> = (1..200)
            .filter(|&i| message(2, i, 200).0.contains("In-Reply-To: "))
            .collect();
        assert!(replies.len() > 20);
        for i in replies {
            let text = message(2, i, 200).0;
            let parent = text
                .split("In-Reply-To: ")
                .nth(1)
                .unwrap()
                .split("\r\n")
                .next()
                .unwrap();
            assert!(
                (i.saturating_sub(50)..i).any(|j| message_id(2, j) == parent),
                "{i}: {parent}"
            );
            assert!(text.contains(&format!("Message-ID: {}\r\n", message_id(2, i))));
        }
    }

    #[test]
    fn deterministic() {
        assert_eq!(message(3, 17, 1000), message(3, 17, 1000));
        assert_ne!(message(3, 17, 1000).0, message(4, 17, 1000).0);
    }
}
