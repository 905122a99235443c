//! A user's own `\Seen` flags of a folder many users read (a public namespace with a
//! private index): the Maildir file names keep the flags everyone shares, and `\Seen` comes
//! from this file in the user's private index directory instead.
//!
//! Not Dovecot's `INDEXPVT` (a binary `dovecot.index` per user): that format is Dovecot's
//! own, and a Dovecot server never shares it with another one anyway. This is one small text
//! file per folder: the folder's UIDVALIDITY, then the seen UIDs as an IMAP sequence set,
//! written atomically. A changed UIDVALIDITY makes every message unseen again.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::mailbox::{MailboxError, Snapshot, SystemFlags, write_atomic};

/// The largest file read: a folder of millions of messages in scattered ranges stays under.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// The `\Seen` UIDs one user has in one folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateSeen {
    path: PathBuf,
    uid_validity: u32,
    uids: BTreeSet<u32>,
}

impl PrivateSeen {
    /// The file for `folder` (its store name, `/`-separated) under `index_dir`.
    pub fn path_for(index_dir: &Path, folder: &str) -> PathBuf {
        let mut name = String::with_capacity(folder.len() + 5);
        for c in folder.chars() {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' ') {
                name.push(c);
            } else {
                let mut buf = [0; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    name.push_str(&format!("%{byte:02X}"));
                }
            }
        }
        name.push_str(".seen");
        index_dir.join(name)
    }

    /// Reads the user's set for a folder whose UIDVALIDITY is `uid_validity`: empty when
    /// there is no file, or it was written for another UIDVALIDITY.
    ///
    /// # Errors
    ///
    /// `Io` when the file exists but cannot be read; an unreadable content counts as empty.
    pub fn load(path: PathBuf, uid_validity: u32) -> Result<PrivateSeen, MailboxError> {
        let mut seen = PrivateSeen {
            path,
            uid_validity,
            uids: BTreeSet::new(),
        };
        let text = match fs::metadata(&seen.path) {
            Ok(meta) if meta.len() > MAX_FILE => return Ok(seen),
            Ok(_) => match fs::read_to_string(&seen.path) {
                Ok(text) => text,
                Err(err) => return Err(MailboxError::io(&seen.path, err)),
            },
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(seen),
            Err(err) => return Err(MailboxError::io(&seen.path, err)),
        };
        let mut lines = text.lines();
        let validity = lines
            .next()
            .and_then(|line| line.strip_prefix("uidvalidity "))
            .and_then(|n| n.trim().parse::<u32>().ok());
        if validity != Some(uid_validity) {
            return Ok(seen);
        }
        if let Some(set) = lines.next() {
            seen.uids = parse_set(set.trim()).unwrap_or_default();
        }
        Ok(seen)
    }

    pub fn contains(&self, uid: u32) -> bool {
        self.uids.contains(&uid)
    }

    /// Sets or clears `\Seen` on `uids`; returns the UIDs that changed.
    pub fn set(&mut self, uids: &[u32], seen: bool) -> Vec<u32> {
        uids.iter()
            .copied()
            .filter(|uid| {
                if seen {
                    self.uids.insert(*uid)
                } else {
                    self.uids.remove(uid)
                }
            })
            .collect()
    }

    /// Writes the set (creating the index directory), keeping only UIDs `snapshot` still
    /// has, so expunged messages do not pile up.
    ///
    /// # Errors
    ///
    /// `Io`.
    pub fn save(&mut self, snapshot: &Snapshot) -> Result<(), MailboxError> {
        self.uids.retain(|uid| snapshot.position(*uid).is_some());
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(|err| MailboxError::io(dir, err))?;
        }
        let text = format!(
            "uidvalidity {}\n{}\n",
            self.uid_validity,
            uid_set_string(&self.uids.iter().copied().collect::<Vec<_>>())
        );
        write_atomic(&self.path, text.as_bytes())
    }

    /// `snapshot` with this user's `\Seen` in place of the shared one.
    pub fn apply(&self, snapshot: &Snapshot) -> Snapshot {
        let mut view = snapshot.clone();
        for meta in &mut view.messages {
            if self.uids.contains(&meta.uid) {
                meta.flags.insert(SystemFlags::SEEN);
            } else {
                meta.flags.remove(SystemFlags::SEEN);
            }
        }
        view
    }

    /// How many of `snapshot`'s messages this user has not seen.
    pub fn unseen(&self, snapshot: &Snapshot) -> usize {
        snapshot
            .messages
            .iter()
            .filter(|meta| !self.uids.contains(&meta.uid))
            .count()
    }
}

/// `1:3,5,7:9` from UIDs (sorted and deduplicated first): IMAP's set syntax, which the
/// private `\Seen` files use too.
pub fn uid_set_string(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut iter = sorted.into_iter().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while let Some(&next) = iter.peek() {
            if next == end.saturating_add(1) {
                end = next;
                iter.next();
            } else {
                break;
            }
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
    }
    out
}

/// Ranges of at most this many UIDs: a damaged file cannot make the server count to 2^32.
const MAX_RANGE: u32 = 10_000_000;

fn parse_set(text: &str) -> Option<BTreeSet<u32>> {
    let mut uids = BTreeSet::new();
    if text.is_empty() {
        return Some(uids);
    }
    for part in text.split(',') {
        let (start, end) = match part.split_once(':') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let uid = part.parse::<u32>().ok()?;
                (uid, uid)
            }
        };
        if start == 0 || end < start || end - start >= MAX_RANGE {
            return None;
        }
        uids.extend(start..=end);
    }
    Some(uids)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mailbox::MessageMeta;

    fn snapshot(uid_validity: u32, uids: &[u32], seen_in_file_names: bool) -> Snapshot {
        Snapshot {
            uid_validity,
            uid_next: uids.last().map_or(1, |u| u + 1),
            highest_modseq: 1,
            expunge_serial: 0,
            messages: uids
                .iter()
                .map(|&uid| MessageMeta {
                    uid,
                    flags: if seen_in_file_names {
                        SystemFlags::SEEN.union(SystemFlags::FLAGGED)
                    } else {
                        SystemFlags::FLAGGED
                    },
                    keywords: 0,
                    modseq: 1,
                    rfc822_size: None,
                    internal_date: 0,
                    save_date: 0,
                    email_id: 0,
                })
                .collect(),
            keywords: Vec::new(),
            mailbox_id: "x".into(),
        }
    }

    #[test]
    fn round_trip_sorted_ranges_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let path = PrivateSeen::path_for(&dir.path().join("public"), "Team/Q1");
        assert!(path.ends_with("Team%2FQ1.seen"), "{}", path.display());
        let snap = snapshot(7, &[1, 2, 3, 5, 9], false);
        let mut seen = PrivateSeen::load(path.clone(), 7).unwrap();
        assert_eq!(seen.set(&[9, 1, 2, 3, 42], true), vec![9, 1, 2, 3, 42]);
        assert_eq!(seen.set(&[1], true), Vec::<u32>::new());
        seen.save(&snap).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "uidvalidity 7\n1:3,9\n",
            "42 is not in the folder"
        );
        let again = PrivateSeen::load(path.clone(), 7).unwrap();
        assert_eq!(again, seen);
        assert!(again.contains(2) && !again.contains(5));
        assert_eq!(again.unseen(&snap), 1);
        // No temporary file is left beside it.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn new_uidvalidity_forgets_and_damage_reads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("INBOX.seen");
        fs::write(&path, "uidvalidity 7\n1:3\n").unwrap();
        assert!(PrivateSeen::load(path.clone(), 8).unwrap().uids.is_empty());
        for damaged in [
            "uidvalidity 7\n3:1\n",
            "uidvalidity 7\n0\n",
            "uidvalidity 7\n1:x\n",
            "garbage",
            "uidvalidity 7\n1:4294967295\n",
        ] {
            fs::write(&path, damaged).unwrap();
            assert!(
                PrivateSeen::load(path.clone(), 7).unwrap().uids.is_empty(),
                "{damaged:?}"
            );
        }
    }

    #[test]
    fn apply_replaces_only_seen() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = PrivateSeen::load(dir.path().join("a.seen"), 1).unwrap();
        seen.set(&[2], true);
        let view = seen.apply(&snapshot(1, &[1, 2], true));
        assert_eq!(view.messages[0].flags, SystemFlags::FLAGGED);
        assert_eq!(
            view.messages[1].flags,
            SystemFlags::SEEN.union(SystemFlags::FLAGGED)
        );
    }
}
