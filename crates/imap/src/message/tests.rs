use super::*;
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/messages")
}

fn load(name: &str) -> Message {
    let bytes = std::fs::read(data_dir().join(name)).expect("test message");
    Message::parse(&bytes)
}

/// Literals that could be quoted become quoted strings, so that our output and Dovecot's
/// (which uses literals more often) compare equal when they mean the same.
fn normalize(input: &[u8]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'"' {
            // Copy a quoted string as it is.
            out.push(b'"');
            i += 1;
            while i < input.len() && input[i] != b'"' {
                if input[i] == b'\\' {
                    out.push(input[i]);
                    i += 1;
                }
                out.push(input[i]);
                i += 1;
            }
            out.push(b'"');
            i += 1;
            continue;
        }
        if input[i] == b'{'
            && let Some(close) = input[i..].iter().position(|&b| b == b'}')
            && let Ok(n) = std::str::from_utf8(&input[i + 1..i + close])
                .unwrap_or("x")
                .parse::<usize>()
            && input[i + close + 1..].starts_with(b"\r\n")
        {
            let start = i + close + 3;
            let bytes = &input[start..start + n];
            let mut quoted = Vec::new();
            string(&mut quoted, bytes);
            out.extend_from_slice(&quoted);
            i = start + n;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// ENVELOPE, BODYSTRUCTURE and BODY of every sample against what Dovecot 2.3.19 answered
/// for the same message (saved next to it by `tests/data/messages/dovecot-answers.py`).
#[test]
fn matches_dovecot_answers() {
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(data_dir())
        .expect("data dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    entries.sort();
    for path in entries {
        let message = Message::parse(&std::fs::read(&path).expect("read"));
        let expected = |ext: &str| {
            normalize(&std::fs::read(path.with_extension(ext)).expect("dovecot answer"))
        };
        let mut envelope = Vec::new();
        message.envelope(&mut envelope);
        assert_eq!(normalize(&envelope), expected("envelope"), "{path:?}");
        let mut structure = Vec::new();
        message.body_structure(&mut structure, true);
        assert_eq!(normalize(&structure), expected("bodystructure"), "{path:?}");
        let mut body = Vec::new();
        message.body_structure(&mut body, false);
        assert_eq!(normalize(&body), expected("body"), "{path:?}");
        checked += 1;
    }
    assert!(checked >= 10);
}

fn section(message: &Message, spec: &str) -> Option<String> {
    // "2.1.MIME", "HEADER", "3.TEXT", "1", "" ...
    let mut part = Vec::new();
    let mut text = None;
    for piece in spec.split('.').filter(|p| !p.is_empty()) {
        match piece.parse::<u32>() {
            Ok(n) if text.is_none() => part.push(n),
            _ => {
                text = Some(match piece {
                    "HEADER" => SectionText::Header,
                    "TEXT" => SectionText::Text,
                    "MIME" => SectionText::Mime,
                    _ => panic!("bad spec"),
                })
            }
        }
    }
    message
        .section(&Section { part, text })
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Sections as Dovecot returned them for the same messages (an empty answer there is
/// `None` here).
#[test]
fn sections_match_dovecot() {
    let alternative = load("alternative.eml");
    assert_eq!(
        section(&alternative, "1").as_deref(),
        Some("Caf=C3=A9 au lait, tr=\r\n=C3=A8s bien.")
    );
    assert_eq!(
        section(&alternative, "1.MIME").as_deref(),
        Some(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
    );
    assert_eq!(section(&alternative, "2.HEADER"), None);
    assert_eq!(
        section(&alternative, "2.1").as_deref(),
        Some("<p>Caf&eacute;</p>")
    );
    assert_eq!(section(&alternative, "2.2.1"), None);
    assert_eq!(section(&alternative, "3.1"), None);
    assert_eq!(
        section(&alternative, "2.1.MIME").as_deref(),
        Some(
            "Content-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
        )
    );
    let fields = alternative.section(&Section {
        part: vec![],
        text: Some(SectionText::HeaderFields {
            not: false,
            fields: vec!["subject".into(), "FROM".into()],
        }),
    });
    assert_eq!(
        fields.as_deref(),
        Some(&b"From: \"Doe, Jane\" <jane@example.com>\r\nSubject: =?UTF-8?Q?Caf=C3=A9?= and\r\n =?ISO-8859-1?B?aGVsbG8=?=\r\n\r\n"[..])
    );

    let nested = load("nested.eml");
    assert_eq!(
        section(&nested, "1").as_deref(),
        Some("Forwarded message below.")
    );
    assert_eq!(
        section(&nested, "1.1").as_deref(),
        Some("Forwarded message below.")
    );
    assert_eq!(
        section(&nested, "2.MIME").as_deref(),
        Some("Content-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n")
    );
    let header = section(&nested, "2.HEADER").expect("embedded header");
    assert!(header.starts_with("From: Inner Person <inner@example.com>\r\n"));
    assert!(header.ends_with("boundary=inner\r\n\r\n"));
    assert_eq!(header.len(), 221);
    assert_eq!(section(&nested, "2").map(|s| s.len()), Some(392));
    assert_eq!(section(&nested, "2.1").as_deref(), Some("Gr=FC=DFe"));
    assert_eq!(section(&nested, "2.2.1").as_deref(), Some("<b>hi</b>"));
    assert_eq!(
        section(&nested, "2.1.MIME").as_deref(),
        Some(
            "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
    );
    assert_eq!(section(&nested, "3.1").as_deref(), Some("just text"));
    assert_eq!(section(&nested, "3.TEXT").as_deref(), Some("just text"));
    assert_eq!(section(&nested, "HEADER").map(|s| s.len()), Some(170));

    let digest = load("digest.eml");
    assert_eq!(section(&digest, "1.MIME").as_deref(), Some("\r\n"));
    assert_eq!(section(&digest, "1.1").as_deref(), Some("first body"));
    assert_eq!(
        section(&digest, "1").as_deref(),
        Some("Subject: first\r\nFrom: one@example.com\r\n\r\nfirst body")
    );

    let single = load("missing-headers.eml");
    assert_eq!(
        section(&single, "1").as_deref(),
        Some("Body without the usual headers.\r\n")
    );
    assert_eq!(
        section(&single, "1.MIME").as_deref(),
        Some("X-Nothing: here\r\n\r\n")
    );
    assert_eq!(section(&single, "1.1"), None);
    assert_eq!(section(&single, "MIME"), None);

    let no_body = load("no-body.eml");
    assert_eq!(
        section(&no_body, "HEADER").as_deref(),
        Some("Subject: headers only\r\nFrom: a@b.c\r\n")
    );
    assert_eq!(section(&no_body, "TEXT").as_deref(), Some(""));
    assert_eq!(section(&no_body, "").map(|s| s.len()), Some(no_body.size()));

    let unterminated = load("unterminated.eml");
    assert_eq!(
        section(&unterminated, "1").as_deref(),
        Some("--def\r\nContent-Type: text/plain\r\n\r\none")
    );
    assert_eq!(section(&unterminated, "1.1").as_deref(), Some("one"));
    assert_eq!(section(&unterminated, "2").as_deref(), Some("two\r\n"));

    let garbage = load("garbage.eml");
    assert_eq!(section(&garbage, "1"), None);
    let not_fields = garbage.section(&Section {
        part: vec![],
        text: Some(SectionText::HeaderFields {
            not: true,
            fields: vec!["content-type".into()],
        }),
    });
    // Dovecot keeps the lines without a field name.
    assert_eq!(
        not_fields.as_deref(),
        Some(
            &b"this is not a header\r\n: neither is this\r\nFrom\r\nSubject: =?bogus?Q?x?=\r\n\r\n"
                [..]
        )
    );
}

#[test]
fn binary_decodes_or_reports_unknown_encoding() {
    let mixed = load("mixed-attachment.eml");
    let pdf = mixed.binary(&[2]).expect("known").expect("exists");
    assert_eq!(pdf.len(), 114); // Dovecot: BINARY[2] ~{114}
    assert!(pdf.starts_with(b"%PDF-1.4\n%\xc3\xa4"));
    assert_eq!(
        mixed.binary(&[3]),
        Err(UnknownEncoding("x-uuencode".into()))
    );
    assert_eq!(mixed.binary(&[1]), Ok(Some(b"See attached.\r\n".to_vec())));
    assert_eq!(mixed.binary(&[9]), Ok(None));

    // A message/rfc822 part: its subparts decoded and relabelled (Dovecot: ~{378}).
    let nested = load("nested.eml");
    let inner = nested.binary(&[2]).expect("known").expect("exists");
    assert_eq!(inner.len(), 378);
    let needle = b"Content-Transfer-Encoding: binary\r\n\r\nGr\xfc\xdfe\r\n--inner";
    assert!(inner.windows(needle.len()).any(|w| w == needle));
    // `8 bit` is not an encoding; Dovecot answers [UNKNOWN-CTE], also for its parent.
    let malformed = load("malformed-mix.eml");
    assert!(malformed.binary(&[1, 1]).is_err());
    assert!(malformed.binary(&[1]).is_err());

    let alternative = load("alternative.eml");
    assert_eq!(
        alternative.binary(&[1]),
        Ok(Some("Café au lait, très bien.".as_bytes().to_vec()))
    );
    assert_eq!(
        decode_quoted_printable(b"a=3Db  \r\nsoft=\r\nbreak=zz=\n"),
        b"a=b\r\nsoftbreak=zz".to_vec()
    );
    assert_eq!(decode_base64(b"aGVs\r\nbG8=\r\n"), b"hello".to_vec());
}

#[test]
fn search_matching() {
    let alternative = load("alternative.eml");
    assert!(alternative.header_contains("subject", "café"));
    assert!(alternative.header_contains("SUBJECT", "CAFÉ AND HELLO"));
    assert!(alternative.header_contains("cc", "erin@EXAMPLE"));
    assert!(alternative.header_contains("In-Reply-To", ""));
    assert!(!alternative.header_contains("bcc", ""));
    assert!(!alternative.header_contains("subject", "preamble"));
    assert!(alternative.body_contains("TRÈS BIEN")); // across a QP soft break
    assert!(alternative.body_contains("eacute")); // text/html is text too
    assert!(!alternative.body_contains("preamble"));
    assert!(!alternative.body_contains("Doe, Jane"));
    assert!(alternative.text_contains("doe, jane"));
    assert!(alternative.text_contains("très"));

    let nested = load("nested.eml");
    assert!(nested.body_contains("grüße")); // iso-8859-1, quoted-printable
    assert!(nested.text_contains("simple inner")); // an embedded message's header
    assert!(!nested.body_contains("simple inner"));

    let mixed = load("mixed-attachment.eml");
    assert!(!mixed.body_contains("PDF")); // the base64 attachment is not text
    assert!(mixed.header_contains("from", "sender comment"));

    let group = load("group-empty.eml");
    assert!(group.header_contains("from", "jürgen"));
    assert!(group.header_contains("subject", ""));
    assert!(!group.header_contains("subject", "x"));
}

#[test]
fn sent_date_in_its_own_zone() {
    let date = |name: &str| load(name).sent_date();
    assert_eq!(
        date("mixed-attachment.eml"),
        time::Date::from_calendar_date(2025, time::Month::December, 31).ok()
    );
    assert_eq!(
        date("plain.eml"),
        time::Date::from_calendar_date(1994, time::Month::February, 7).ok()
    );
    assert_eq!(
        date("nested.eml"),
        time::Date::from_calendar_date(2020, time::Month::January, 1).ok()
    );
    assert_eq!(
        Message::parse(b"Date: Sun, 29 Feb 2004 23:59:59 +1400").sent_date(),
        time::Date::from_calendar_date(2004, time::Month::February, 29).ok()
    );
    assert_eq!(date("group-empty.eml"), None);
    assert_eq!(date("missing-headers.eml"), None);
}

#[test]
fn crlf_conversion() {
    // Same structure and sizes whatever the stored line endings.
    for name in ["nested.eml", "mixed-attachment.eml", "alternative.eml"] {
        let lf = std::fs::read(data_dir().join(name)).expect("read");
        let crlf = mailstead_store::form::to_wire(&lf).into_owned();
        let (a, b) = (Message::parse(&lf), Message::parse(&crlf));
        assert_eq!(a.raw(), b.raw());
        let (mut x, mut y) = (Vec::new(), Vec::new());
        a.body_structure(&mut x, true);
        b.body_structure(&mut y, true);
        assert_eq!(x, y);
    }
}

/// Every prefix of a nested multipart, and some byte soup, parse and render without
/// panicking, and every section that exists lies inside the message.
#[test]
fn truncations_and_garbage_never_panic() {
    let nested = std::fs::read(data_dir().join("nested.eml")).expect("read");
    let mixed = std::fs::read(data_dir().join("mixed-attachment.eml")).expect("read");
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for source in [&nested, &mixed] {
        for end in 0..=source.len() {
            inputs.push(source[..end].to_vec());
        }
    }
    inputs.push(b"\r\n\r\n\r\n".to_vec());
    inputs.push(b"Content-Type: multipart/mixed; boundary=\"\"\n\n--\n--\n".to_vec());
    inputs.push(b"Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\n".to_vec());
    inputs.push((0..=255u8).cycle().take(4000).collect());
    // Deep nesting stays bounded.
    let mut deep = Vec::new();
    for _ in 0..500 {
        deep.extend_from_slice(b"Content-Type: message/rfc822\n\n");
    }
    inputs.push(deep);
    let mut many = b"Content-Type: multipart/mixed; boundary=x\n\n".to_vec();
    for _ in 0..30_000 {
        many.extend_from_slice(b"--x\n\n");
    }
    let parsed = Message::parse(&many);
    let Kind::Multipart(children) = &parsed.root().kind else {
        panic!("multipart")
    };
    assert!(children.len() < MAX_PARTS);
    let mut deep = Vec::new();
    for i in 0..500 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n").as_bytes(),
        );
    }
    inputs.push(deep);

    for input in &inputs {
        let message = Message::parse(input);
        let mut out = Vec::new();
        message.envelope(&mut out);
        message.body_structure(&mut out, true);
        message.body_structure(&mut out, false);
        for path in [
            &[][..],
            &[1],
            &[2],
            &[2, 1],
            &[2, 2, 1],
            &[3, 1],
            &[1, 1, 1, 1],
        ] {
            for text in [
                None,
                Some(SectionText::Header),
                Some(SectionText::Text),
                Some(SectionText::Mime),
                Some(SectionText::HeaderFields {
                    not: true,
                    fields: vec!["From".into()],
                }),
            ] {
                let got = message.section(&Section {
                    part: path.to_vec(),
                    text,
                });
                if let Some(got) = got {
                    assert!(got.len() <= message.size() + 4);
                }
            }
            let _ = message.binary(path);
        }
        let _ = message.header_contains("subject", "x");
        let _ = message.text_contains("zzz");
        let _ = message.sent_date();
    }
}

/// Random byte edits (a fixed pseudo-random sequence) of every sample: no panics, and
/// everything renders.
#[test]
fn mutations_never_panic() {
    let mut samples: Vec<Vec<u8>> = std::fs::read_dir(data_dir())
        .expect("data dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    samples.sort();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const INTERESTING: &[u8] = b"-\r\n:;\"<>@()=*\\\0\x80 boundary";
    for round in 0..3000 {
        let mut message = samples[round % samples.len()].clone();
        for _ in 0..1 + next() % 8 {
            if message.is_empty() {
                break;
            }
            let at = (next() % message.len() as u64) as usize;
            let byte = INTERESTING[(next() % INTERESTING.len() as u64) as usize];
            match next() % 3 {
                0 => message[at] = byte,
                1 => message.insert(at, byte),
                _ => {
                    message.remove(at);
                }
            }
        }
        let parsed = Message::parse(&message);
        let mut out = Vec::new();
        parsed.envelope(&mut out);
        parsed.body_structure(&mut out, true);
        for path in [&[][..], &[1], &[2], &[1, 1], &[2, 1], &[2, 2]] {
            let _ = parsed.binary(path);
            let _ = parsed.section(&Section {
                part: path.to_vec(),
                text: Some(SectionText::Header),
            });
        }
        let _ = parsed.text_contains("boundary");
        let _ = parsed.sent_date();
    }
}
