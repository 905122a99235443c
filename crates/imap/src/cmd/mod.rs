//! The commands, one file per group, as `impl Session` blocks; and what several of them share:
//! resolving sequence sets against the session's view, writing flags and UID sets.

pub(crate) mod acl;
mod append;
mod auth;
mod catenate;
mod compress;
mod fetch;
mod idle;
mod mailbox;
pub(crate) mod notify;
mod public;
pub(crate) mod rev2;
mod search;
pub(crate) mod search_context;
mod select;
mod shared;
pub(crate) mod sort;
mod store;
mod thread;

use std::io;

use mailstead_store::{MessageMeta, Snapshot, SystemFlags};

use crate::command::{Flag, SequenceSet};
use crate::session::{Selected, Session};
use crate::uids::UidList;

impl Session {
    /// Turns CONDSTORE on for a command that enables it (ENABLE, or FETCH MODSEQ, STORE
    /// UNCHANGEDSINCE, SEARCH MODSEQ, ...). The first one while a folder is selected tells the
    /// folder's HIGHESTMODSEQ, before its own answers (RFC 7162 3.1), as Dovecot does.
    pub(crate) async fn enable_condstore(&mut self) -> io::Result<()> {
        if self.condstore {
            return Ok(());
        }
        self.condstore = true;
        if let Some(selected) = &self.selected {
            let line = format!(
                "* OK [HIGHESTMODSEQ {}] Highest.\r\n",
                selected.known_modseq
            );
            self.conn.write(line.as_bytes()).await?;
        }
        Ok(())
    }
}

pub(crate) use mailstead_store::uid_set_string;

/// `* FLAGS (...)` and `* OK [PERMANENTFLAGS (...)]` for a folder's keywords.
pub(crate) fn flags_announcement(snapshot: &Snapshot, read_only: bool) -> Vec<u8> {
    let mut flags = String::from("\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    for keyword in &snapshot.keywords {
        flags.push(' ');
        flags.push_str(keyword);
    }
    let permanent = if read_only {
        String::new()
    } else if snapshot.keywords.len() < MAX_KEYWORDS {
        format!("{flags} \\*")
    } else {
        flags.clone()
    };
    format!("* FLAGS ({flags})\r\n* OK [PERMANENTFLAGS ({permanent})] Flags permitted.\r\n")
        .into_bytes()
}

/// Maildir file names have the letters a to z for keywords (Dovecot's limit too).
pub(crate) const MAX_KEYWORDS: usize = 26;

/// `FLAGS (\Seen $Work)`.
pub(crate) fn write_flags(
    out: &mut Vec<u8>,
    meta: &MessageMeta,
    snapshot: &Snapshot,
    recent: bool,
) {
    out.extend_from_slice(b"FLAGS (");
    let mut first = true;
    let mut push = |out: &mut Vec<u8>, name: &str| {
        if !first {
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(name.as_bytes());
    };
    for (flag, name) in SYSTEM_FLAGS {
        if meta.flags.contains(flag) {
            push(out, name);
        }
    }
    if recent {
        push(out, "\\Recent");
    }
    for (index, keyword) in snapshot.keywords.iter().enumerate() {
        if index < 32 && meta.keywords & (1 << index) != 0 {
            push(out, keyword);
        }
    }
    out.push(b')');
}

const SYSTEM_FLAGS: [(SystemFlags, &str); 5] = [
    (SystemFlags::ANSWERED, "\\Answered"),
    (SystemFlags::FLAGGED, "\\Flagged"),
    (SystemFlags::DELETED, "\\Deleted"),
    (SystemFlags::SEEN, "\\Seen"),
    (SystemFlags::DRAFT, "\\Draft"),
];

/// Splits client flags into system flags and keywords; `Err` names a flag that cannot be
/// stored (`\Recent` is ignored as RFC 3501 asks).
pub(crate) fn split_flags(flags: &[Flag]) -> Result<(SystemFlags, Vec<String>), String> {
    let mut system = SystemFlags::default();
    let mut keywords = Vec::new();
    for flag in flags {
        match flag {
            Flag::Seen => system.insert(SystemFlags::SEEN),
            Flag::Answered => system.insert(SystemFlags::ANSWERED),
            Flag::Flagged => system.insert(SystemFlags::FLAGGED),
            Flag::Deleted => system.insert(SystemFlags::DELETED),
            Flag::Draft => system.insert(SystemFlags::DRAFT),
            Flag::Recent => {}
            Flag::Keyword(name) => {
                if !keywords
                    .iter()
                    .any(|known: &String| known.eq_ignore_ascii_case(name))
                {
                    keywords.push(name.clone());
                }
            }
            Flag::Extension(name) => return Err(format!("Invalid system flag \\{name}")),
        }
    }
    Ok((system, keywords))
}

impl Selected {
    /// The positions (sequence number - 1) a set names, ascending, without duplicates.
    /// Sequence numbers beyond the view are an error for a sequence set (RFC 3501 says BAD);
    /// UIDs that are not there are simply skipped.
    /// `$` (RFC 5182) names the saved result's messages that are still in the view.
    pub(crate) fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, String> {
        if set.is_saved_result() {
            return Ok(self
                .search
                .saved
                .iter()
                .filter_map(|uid| self.uids.position(uid))
                .collect());
        }
        resolve_positions(&self.uids, set, uid)
    }
}

/// [`Selected::resolve`] over a list of UIDs in sequence order.
pub(crate) fn resolve_positions(
    uids: &UidList,
    set: &SequenceSet,
    uid: bool,
) -> Result<Vec<usize>, String> {
    // The set is resolved into disjoint ascending ranges first: each message is named once
    // however often the client wrote it (RFC 3501 6.4.5), and the work follows the folder.
    let mut positions = Vec::new();
    if uid {
        let largest = uids.last().unwrap_or(0);
        for (low, high) in set.resolve(largest) {
            let from = uids.count_below(low);
            let to = uids.count_up_to(high);
            positions.extend(from..to);
        }
    } else {
        let count = u32::try_from(uids.len()).unwrap_or(u32::MAX);
        for (low, high) in set.resolve(count) {
            if low == 0 || high > count {
                return Err("Invalid messageset".to_owned());
            }
            positions.extend((low as usize - 1)..(high as usize));
        }
    }
    Ok(positions)
}

/// `"21-Nov-2026 18:00:00 +0000"` for a Unix time (INTERNALDATE is kept in UTC).
pub(crate) fn internal_date(secs: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let time =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let month = MONTHS
        .get(usize::from(u8::from(time.month())) - 1)
        .copied()
        .unwrap_or("Jan");
    format!(
        "\"{:02}-{}-{:04} {:02}:{:02}:{:02} +0000\"",
        time.day(),
        month,
        time.year(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{SeqNumber, SeqRange};

    #[test]
    fn uid_sets_are_compressed_into_ranges() {
        assert_eq!(uid_set_string(&[5, 1, 2, 3, 7, 8, 10]), "1:3,5,7:8,10");
        assert_eq!(uid_set_string(&[]), "");
        assert_eq!(uid_set_string(&[4, 4]), "4");
    }

    #[test]
    fn internal_dates_use_imap_format() {
        assert_eq!(internal_date(0), "\"01-Jan-1970 00:00:00 +0000\"");
        assert_eq!(
            internal_date(1_795_219_200 + 3_723),
            "\"21-Nov-2026 01:02:03 +0000\""
        );
    }

    #[test]
    fn flags_split_into_system_flags_and_keywords() {
        let (system, keywords) = split_flags(&[
            Flag::Seen,
            Flag::Keyword("$Work".into()),
            Flag::Keyword("$work".into()),
            Flag::Recent,
        ])
        .expect("valid flags");
        assert!(system.contains(SystemFlags::SEEN));
        assert!(!system.contains(SystemFlags::DELETED));
        assert_eq!(keywords, vec!["$Work".to_owned()]);
        assert!(split_flags(&[Flag::Extension("Foo".into())]).is_err());
    }

    fn range(a: SeqNumber, b: SeqNumber) -> SeqRange {
        SeqRange { start: a, end: b }
    }

    #[test]
    fn sets_resolve_against_the_view() {
        let uids: UidList = [3, 5, 9, 10].into_iter().collect();
        let positions =
            |set: Vec<SeqRange>, uid: bool| resolve_positions(&uids, &SequenceSet::new(set), uid);
        use SeqNumber::{Largest, Value};
        assert_eq!(
            positions(vec![range(Value(2), Largest)], false),
            Ok(vec![1, 2, 3])
        );
        assert_eq!(
            positions(vec![range(Value(4), Value(9))], true),
            Ok(vec![1, 2])
        );
        assert_eq!(positions(vec![range(Largest, Largest)], true), Ok(vec![3]));
        assert_eq!(
            positions(vec![range(Value(11), Largest)], true),
            Ok(vec![3])
        );
        assert!(positions(vec![range(Value(5), Value(5))], false).is_err());
        assert!(positions(vec![range(Value(0), Value(1))], false).is_err());
        assert_eq!(
            positions(
                vec![
                    range(Value(1), Largest),
                    range(Value(2), Value(3)),
                    range(Largest, Value(1))
                ],
                false
            ),
            Ok(vec![0, 1, 2, 3])
        );
    }
}
