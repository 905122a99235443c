//! Dovecot's Maildir side files and file-name flags: `dovecot-uidlist` (v3),
//! `dovecot-keywords`, `<base>:2,<flags>` and `subscriptions`. Pure functions over bytes:
//! every parser takes disk contents, which are outside input, and never panics.

use std::fmt::Write as _;

use super::SystemFlags;

/// One record of `dovecot-uidlist`: the UID and the file's base name (up to `:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UidRecord {
    pub(crate) uid: u32,
    pub(crate) base: String,
    /// The extension fields between the UID and ` :` (`G<guid>`, `P<pop3 uidl>`, ...), as
    /// read, so that rewriting the file loses none of them; empty for our own records.
    pub(crate) extensions: String,
}

impl UidRecord {
    /// A record without extension fields.
    pub(crate) fn new(uid: u32, base: String) -> UidRecord {
        UidRecord {
            uid,
            base,
            extensions: String::new(),
        }
    }

    /// The value of the extension field `key` (Dovecot's `maildir_uidlist_rec_ext_key`: `P`
    /// is a POP3 UIDL that overrides `pop3_uidl_format`, `O` the POP3 order); it may be
    /// empty.
    pub(crate) fn extension(&self, key: char) -> Option<&str> {
        self.extensions
            .split(' ')
            .find_map(|field| field.strip_prefix(key))
    }
}

/// A parsed `dovecot-uidlist`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UidList {
    pub(crate) uid_validity: u32,
    pub(crate) next_uid: u32,
    /// The mailbox GUID in hex, kept as it was read.
    pub(crate) guid: String,
    /// Ascending UIDs (lines out of order or duplicated are dropped).
    pub(crate) records: Vec<UidRecord>,
}

/// Parses a v3 (or v1) uidlist. `None` when the header is unusable: the caller then treats
/// the folder as new (a fresh UIDVALIDITY), as Dovecot does with a broken file.
pub(crate) fn parse_uidlist(contents: &[u8]) -> Option<UidList> {
    let text = String::from_utf8_lossy(contents);
    let mut lines = text.split('\n');
    let header = lines.next()?;
    let mut fields = header.split(' ');
    let version = fields.next()?;
    let (mut uid_validity, mut next_uid, mut guid) = (0u32, 0u32, String::new());
    match version {
        "3" => {
            for field in fields {
                let mut chars = field.chars();
                let key = chars.next();
                let value = chars.as_str();
                match key {
                    Some('V') => uid_validity = value.parse().ok()?,
                    Some('N') => next_uid = value.parse().ok()?,
                    Some('G') => guid = value.to_owned(),
                    _ => {}
                }
            }
        }
        "1" => {
            uid_validity = fields.next()?.parse().ok()?;
            next_uid = fields.next()?.parse().ok()?;
        }
        _ => return None,
    }
    if uid_validity == 0 || next_uid == 0 {
        return None;
    }
    let mut records: Vec<UidRecord> = Vec::new();
    for line in lines {
        let Some(record) = parse_uid_line(line, version == "3") else {
            continue;
        };
        // A corrupt line must not shuffle UIDs: keep the file's ascending order only.
        if records.last().is_some_and(|last| last.uid >= record.uid) {
            continue;
        }
        records.push(record);
    }
    if let Some(last) = records.last() {
        next_uid = next_uid.max(last.uid.saturating_add(1));
    }
    Some(UidList {
        uid_validity,
        next_uid,
        guid,
        records,
    })
}

fn parse_uid_line(line: &str, v3: bool) -> Option<UidRecord> {
    let (uid, rest) = line.split_once(' ')?;
    let uid: u32 = uid.parse().ok().filter(|&uid| uid > 0)?;
    let (extensions, name) = if v3 {
        // Extension fields, then ` :<name>`.
        match rest.strip_prefix(':') {
            Some(name) => ("", name),
            None => rest.split_once(" :")?,
        }
    } else {
        // v1: `<uid> <flags> <name>`.
        ("", rest.split_once(' ')?.1)
    };
    let base = base_name(name);
    if base.is_empty() || base.contains('/') {
        return None;
    }
    Some(UidRecord {
        uid,
        base: base.to_owned(),
        extensions: extensions.to_owned(),
    })
}

/// The uidlist as Dovecot writes it.
pub(crate) fn write_uidlist(list: &UidList) -> Vec<u8> {
    let mut out = format!(
        "3 V{} N{} G{}\n",
        list.uid_validity, list.next_uid, list.guid
    )
    .into_bytes();
    out.extend_from_slice(&write_uid_lines(&list.records));
    out
}

/// Record lines as Dovecot writes them, for a new file or for the end of an existing one.
pub(crate) fn write_uid_lines(records: &[UidRecord]) -> Vec<u8> {
    let mut out = String::with_capacity(records.len() * 64);
    for record in records {
        if record.extensions.is_empty() {
            let _ = writeln!(out, "{} :{}", record.uid, record.base);
        } else {
            let _ = writeln!(out, "{} {} :{}", record.uid, record.extensions, record.base);
        }
    }
    out.into_bytes()
}

/// Parses `dovecot-keywords`: `<index> <name>` lines. Indexes beyond 25 or names that are
/// not valid IMAP atoms are dropped; the result is indexed by position (gaps become empty).
pub(crate) fn parse_keywords(contents: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(contents);
    let mut keywords: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some((index, name)) = line.split_once(' ') else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        if index >= super::MAX_KEYWORDS || !valid_keyword(name) {
            continue;
        }
        if keywords.len() <= index {
            keywords.resize(index + 1, String::new());
        }
        if let Some(slot) = keywords.get_mut(index) {
            *slot = name.to_owned();
        }
    }
    keywords
}

pub(crate) fn write_keywords(keywords: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for (index, name) in keywords.iter().enumerate() {
        if !name.is_empty() {
            let _ = writeln!(out, "{index} {name}");
        }
    }
    out.into_bytes()
}

/// An IMAP flag-keyword: an atom, without `\`.
pub(crate) fn valid_keyword(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

/// The part of a Maildir file name that identifies the message (before `:`).
pub(crate) fn base_name(name: &str) -> &str {
    match name.split_once(':') {
        Some((base, _)) => base,
        None => name,
    }
}

/// The seconds a Maildir base name starts with (`<secs>.M<usecs>P<pid>...`, ours and
/// Dovecot's): when the file was written into its folder. `None` for a name another tool made.
pub(crate) fn name_time(base: &str) -> Option<i64> {
    let digits = base.split('.').next()?;
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A stable 64-bit hash of a base name (FNV-1a), for EMAILID: it must give the same value in
/// every release and process, which std's hashers do not promise, and it is run once per
/// message a folder loads, so a cryptographic hash would cost more than it gives.
pub(crate) fn name_hash(base: &str) -> u64 {
    base.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// RFC 8474 MAILBOXID of a folder GUID: the GUID's letters and digits after an `F` (an
/// objectid is letters, digits, `-` and `_`, and should not start with a digit).
pub(crate) fn mailbox_id(guid: &str) -> String {
    let mut id = String::with_capacity(guid.len() + 1);
    id.push('F');
    id.extend(guid.chars().filter(char::is_ascii_alphanumeric).take(200));
    id
}

/// Flags, keyword bits and letters we do not know (kept on rename), from a file name.
pub(crate) fn parse_info(name: &str) -> (SystemFlags, u32, String) {
    let mut flags = SystemFlags::empty();
    let mut keywords = 0u32;
    let mut other = String::new();
    let Some((_, info)) = name.split_once(':') else {
        return (flags, keywords, other);
    };
    let Some(letters) = info.strip_prefix("2,") else {
        return (flags, keywords, other);
    };
    for c in letters.chars() {
        match c {
            'D' => flags.insert(SystemFlags::DRAFT),
            'F' => flags.insert(SystemFlags::FLAGGED),
            'R' => flags.insert(SystemFlags::ANSWERED),
            'S' => flags.insert(SystemFlags::SEEN),
            'T' => flags.insert(SystemFlags::DELETED),
            'a'..='z' => keywords |= 1 << (c as u32 - 'a' as u32),
            c if c.is_ascii_alphanumeric() && !other.contains(c) => other.push(c),
            _ => {}
        }
    }
    (flags, keywords, other)
}

/// `<base>:2,<letters>` with letters in ASCII order, as Dovecot writes them.
pub(crate) fn file_name(base: &str, flags: SystemFlags, keywords: u32, other: &str) -> String {
    let mut letters: Vec<char> = other.chars().collect();
    for (flag, letter) in [
        (SystemFlags::DRAFT, 'D'),
        (SystemFlags::FLAGGED, 'F'),
        (SystemFlags::ANSWERED, 'R'),
        (SystemFlags::SEEN, 'S'),
        (SystemFlags::DELETED, 'T'),
    ] {
        if flags.contains(flag) {
            letters.push(letter);
        }
    }
    for bit in 0..super::MAX_KEYWORDS as u32 {
        if keywords & (1 << bit) != 0
            && let Some(letter) = char::from_u32('a' as u32 + bit)
        {
            letters.push(letter);
        }
    }
    letters.sort_unstable();
    letters.dedup();
    let mut name = String::with_capacity(base.len() + 4 + letters.len());
    name.push_str(base);
    name.push_str(":2,");
    name.extend(letters);
    name
}

/// A `,S=<n>` or `,W=<n>` field of a base name.
pub(crate) fn size_field(base: &str, key: char) -> Option<u64> {
    base.split(',').skip(1).find_map(|field| {
        let value = field.strip_prefix(key)?.strip_prefix('=')?;
        value.parse().ok()
    })
}

/// Dovecot 2.3's `subscriptions`: `V\t2` and an empty line, then one name per line with
/// hierarchy levels separated by tabs. Version 1 files (no header) hold names as they are.
pub(crate) fn parse_subscriptions(contents: &[u8], v1_separator: char) -> Vec<String> {
    let text = String::from_utf8_lossy(contents);
    let mut lines = text.lines().peekable();
    let v2 = lines.peek().is_some_and(|line| line.starts_with("V\t"));
    if v2 {
        lines.next();
    }
    let mut names = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let name = if v2 {
            line.split('\t')
                .map(unescape_tab)
                .collect::<Vec<_>>()
                .join("/")
        } else {
            line.replace(v1_separator, "/")
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

pub(crate) fn write_subscriptions(names: &[String]) -> Vec<u8> {
    let mut out = String::from("V\t2\n\n");
    for name in names {
        let parts: Vec<String> = name.split('/').map(escape_tab).collect();
        out.push_str(&parts.join("\t"));
        out.push('\n');
    }
    out.into_bytes()
}

/// Dovecot's `str_tabescape`.
fn escape_tab(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for c in part.chars() {
        match c {
            '\x01' => out.push_str("\x011"),
            '\0' => out.push_str("\x010"),
            '\t' => out.push_str("\x01t"),
            '\r' => out.push_str("\x01r"),
            '\n' => out.push_str("\x01n"),
            c => out.push(c),
        }
    }
    out
}

fn unescape_tab(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        if c != '\x01' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('1') => out.push('\x01'),
            Some('0') => out.push('\0'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uidlist_round_trip() {
        let contents = b"3 V1700000000 N5 G0123456789abcdef0123456789abcdef\n\
            1 :1700000000.M1P1.host,S=10,W=11\n\
            2 W120 S118 :1700000001.M2P1.host,S=118,W=120\n\
            4 G1234 :1700000002.M3P1.host:2,S\n";
        let list = parse_uidlist(contents).expect("parse");
        assert_eq!(list.uid_validity, 1_700_000_000);
        assert_eq!(list.next_uid, 5);
        assert_eq!(list.guid, "0123456789abcdef0123456789abcdef");
        let uids: Vec<u32> = list.records.iter().map(|r| r.uid).collect();
        assert_eq!(uids, [1, 2, 4]);
        assert_eq!(list.records[1].base, "1700000001.M2P1.host,S=118,W=120");
        assert_eq!(list.records[2].base, "1700000002.M3P1.host");
        let again = parse_uidlist(&write_uidlist(&list)).expect("reparse");
        assert_eq!(again, list);
    }

    #[test]
    fn extension_fields_are_kept_and_found() {
        let contents = b"3 V1 N4 G00\n\
            1 P0000abcd0001 G77 :one:2,S\n\
            2 :two\n\
            3 W12 P :three\n";
        let list = parse_uidlist(contents).expect("parse");
        assert_eq!(list.records[0].extension('P'), Some("0000abcd0001"));
        assert_eq!(list.records[0].extension('G'), Some("77"));
        assert_eq!(list.records[1].extension('P'), None);
        assert_eq!(list.records[2].extension('P'), Some(""));
        assert_eq!(list.records[2].extension('O'), None);
        let written = write_uidlist(&list);
        assert!(
            String::from_utf8_lossy(&written).contains("1 P0000abcd0001 G77 :one\n"),
            "a rewrite keeps the fields"
        );
        assert_eq!(parse_uidlist(&written).expect("reparse"), list);
    }

    #[test]
    fn uidlist_garbage_never_panics() {
        for contents in [
            &b""[..],
            b"\n",
            b"3",
            b"3 V N",
            b"3 V0 N1",
            b"3 V1 N99999999999999",
            b"9 V1 N2\n",
            b"\xff\xfe\x00garbage",
            b"3 V1 N2\n:::\nx :y\n0 :zero\n-1 :neg\n5\n6 :\n7 :a/b\n",
        ] {
            let _ = parse_uidlist(contents);
        }
        let list = parse_uidlist(b"3 V7 N2\n3 :c\n2 :b\n3 :dup\n9 junk\n").expect("header ok");
        assert_eq!(list.records.len(), 1);
        assert_eq!(list.next_uid, 4, "next uid never below a uid in use");
        let v1 = parse_uidlist(b"1 7 3\n1 0 a:2,S\n2 0 b\n").expect("v1");
        assert_eq!(v1.records.len(), 2);
        assert_eq!(v1.records[0].base, "a");
    }

    #[test]
    fn keywords_round_trip_and_garbage() {
        let list = parse_keywords(b"0 $Work\n1 Junk\n3 later\n30 toofar\nx y\n2 bad(name\n\xff\n");
        assert_eq!(list, ["$Work", "Junk", "", "later"]);
        assert_eq!(
            parse_keywords(&write_keywords(&list)),
            list,
            "gaps survive a round trip"
        );
        assert!(parse_keywords(b"").is_empty());
    }

    #[test]
    fn filename_flags_round_trip() {
        let (flags, keywords, other) = parse_info("base,S=1:2,STafP");
        assert!(flags.contains(SystemFlags::SEEN));
        assert!(flags.contains(SystemFlags::DELETED));
        assert!(!flags.contains(SystemFlags::FLAGGED));
        assert_eq!(keywords, 0b10_0001);
        assert_eq!(other, "P");
        assert_eq!(
            file_name("base,S=1", flags, keywords, &other),
            "base,S=1:2,PSTaf"
        );
        let all = SystemFlags::SEEN
            .union(SystemFlags::ANSWERED)
            .union(SystemFlags::FLAGGED)
            .union(SystemFlags::DELETED)
            .union(SystemFlags::DRAFT);
        assert_eq!(file_name("b", all, 1 << 25, ""), "b:2,DFRSTz");
        assert_eq!(parse_info("b:2,DFRSTz"), (all, 1 << 25, String::new()));
        assert_eq!(parse_info("plain").0, SystemFlags::empty());
        assert_eq!(parse_info("x:1,garbage").0, SystemFlags::empty());
        assert_eq!(parse_info("x:2,\u{e9}!").0, SystemFlags::empty());
        assert_eq!(size_field("1.M2P3.h,S=10,W=12", 'W'), Some(12));
        assert_eq!(size_field("1.M2P3.h,S=10,W=x", 'W'), None);
        assert_eq!(size_field("1.M2P3.h", 'S'), None);
    }

    #[test]
    fn subscriptions_v1_and_v2() {
        let names = vec!["INBOX".to_owned(), "Work/Pro\tjects".to_owned()];
        let written = write_subscriptions(&names);
        assert!(written.starts_with(b"V\t2\n\n"));
        assert_eq!(parse_subscriptions(&written, '.'), names);
        assert_eq!(
            parse_subscriptions(b"INBOX\nWork.A\n", '.'),
            ["INBOX", "Work/A"]
        );
        let _ = parse_subscriptions(b"V\t2\n\n\x01\n\xff\t\t\n", '.');
    }
}
