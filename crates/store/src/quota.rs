//! The Maildir++ `maildirsize` file, as Dovecot's `quota = maildir` backend keeps it.
//!
//! # Format
//!
//! ```text
//! 1073741824S          limits: bytes (S) and, optionally, messages (C); "0S" means none
//! 52410 12             a recalculated total: bytes and messages
//! 1305 1               one line appended per delivery (negative for expunges)
//! ```
//!
//! The usage is the sum of all lines after the first. Like Dovecot, we recalculate (scan the
//! Maildir and rewrite the file) when it is missing, unreadable, has a negative total, has a
//! byte limit other than the one configured, or has grown to 5120 bytes.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::{StoreError, maildir};

/// Dovecot recalculates a `maildirsize` this large rather than read more lines.
const MAX_FILE_LEN: usize = 5120;

/// What the check found out, for the update after the delivery.
#[derive(Debug)]
pub(crate) struct QuotaState {
    /// The file is missing or stale: rewrite it from a scan instead of appending a line.
    rewrite: bool,
    /// A message-count limit found in the file (set by Dovecot); kept when rewriting.
    count_limit: Option<u64>,
    /// False when there is nothing to keep up to date.
    track: bool,
}

impl QuotaState {
    /// There is no `maildirsize` and no limit: nothing to record.
    pub(crate) fn untracked() -> QuotaState {
        QuotaState {
            rewrite: false,
            count_limit: None,
            track: false,
        }
    }

    pub(crate) fn needs_rewrite(&self) -> bool {
        self.rewrite
    }
}

/// Usage in bytes and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Usage {
    bytes: u64,
    count: u64,
}

/// A parsed `maildirsize`.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    bytes_limit: u64,
    count_limit: Option<u64>,
    bytes: i64,
    count: i64,
}

/// Checks that a message of `size` bytes fits. Writes nothing. `None` when there is no
/// limit and no `maildirsize` to keep up to date.
pub(crate) fn check(
    maildir: &Path,
    limit: Option<u64>,
    size: u64,
) -> Result<Option<QuotaState>, StoreError> {
    let path = maildir.join("maildirsize");
    let contents = match fs::read(&path) {
        Ok(contents) => Some(contents),
        Err(err) if err.kind() == io::ErrorKind::NotFound && limit.is_none() => return Ok(None),
        Err(_) => None,
    };
    let parsed = contents.as_deref().and_then(|contents| {
        if contents.len() >= MAX_FILE_LEN {
            return None;
        }
        parse(contents)
    });
    let fresh = parsed.filter(|parsed| {
        parsed.bytes_limit == limit.unwrap_or(0) && parsed.bytes >= 0 && parsed.count >= 0
    });
    let (used, state) = match fresh {
        Some(parsed) => (
            u64::try_from(parsed.bytes).unwrap_or(0),
            QuotaState {
                rewrite: false,
                count_limit: parsed.count_limit,
                track: true,
            },
        ),
        None => {
            let count_limit = contents
                .as_deref()
                .and_then(parse_header)
                .and_then(|(_, count_limit)| count_limit);
            (
                scan(maildir)?.bytes,
                QuotaState {
                    rewrite: true,
                    count_limit,
                    track: true,
                },
            )
        }
    };
    if let Some(limit) = limit
        && used.saturating_add(size) > limit
    {
        return Err(StoreError::OverQuota {
            maildir: maildir.to_path_buf(),
            limit,
            used,
            size,
        });
    }
    Ok(Some(state))
}

/// Records a delivered message: one line appended, or the whole file rewritten from a scan
/// (which already counts the message) when the check found it stale.
pub(crate) fn record(
    maildir: &Path,
    state: &QuotaState,
    size: u64,
    limit: Option<u64>,
) -> Result<(), StoreError> {
    if !state.track {
        return Ok(());
    }
    let path = maildir.join("maildirsize");
    if state.rewrite {
        let usage = scan(maildir)?;
        return write_file(maildir, &header(limit, state.count_limit), usage);
    }
    // O_APPEND makes each short line land whole even with concurrent writers.
    let res = OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(format!("{size} 1\n").as_bytes()));
    match res {
        Ok(()) => Ok(()),
        Err(err) => Err(StoreError::io(&path, err)),
    }
}

/// The first line, as Dovecot writes it. Dovecot writes no file at all without a limit (and
/// neither do we); `0S` only appears when an existing file is kept counting after the limit
/// was removed.
fn header(bytes_limit: Option<u64>, count_limit: Option<u64>) -> String {
    let bytes = bytes_limit.unwrap_or(0);
    match count_limit {
        Some(count) if bytes == 0 => format!("{count}C"),
        Some(count) => format!("{bytes}S,{count}C"),
        None => format!("{bytes}S"),
    }
}

/// Replaces the file atomically: written under a temporary name in `tmp/`, then renamed.
fn write_file(maildir: &Path, header: &str, usage: Usage) -> Result<(), StoreError> {
    let tmp_path = maildir
        .join("tmp")
        .join(maildir::unique_name("maildirsize"));
    let contents = format!("{header}\n{} {}\n", usage.bytes, usage.count);
    let res = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp_path)
        .and_then(|mut file| file.write_all(contents.as_bytes()));
    if let Err(err) = res {
        let _ = fs::remove_file(&tmp_path);
        return Err(StoreError::io(&tmp_path, err));
    }
    let path = maildir.join("maildirsize");
    if let Err(err) = fs::rename(&tmp_path, &path) {
        let _ = fs::remove_file(&tmp_path);
        return Err(StoreError::io(&path, err));
    }
    Ok(())
}

fn parse_header(contents: &[u8]) -> Option<(u64, Option<u64>)> {
    let text = std::str::from_utf8(contents).ok()?;
    let first = text.lines().next()?;
    let mut bytes_limit = 0;
    let mut count_limit = None;
    for item in first.trim().split(',') {
        if let Some(bytes) = item.strip_suffix('S') {
            bytes_limit = bytes.parse().ok()?;
        } else if let Some(count) = item.strip_suffix('C') {
            let count: u64 = count.parse().ok()?;
            count_limit = (count != 0).then_some(count);
        } else {
            return None;
        }
    }
    Some((bytes_limit, count_limit))
}

fn parse(contents: &[u8]) -> Option<Parsed> {
    let (bytes_limit, count_limit) = parse_header(contents)?;
    let text = std::str::from_utf8(contents).ok()?;
    // A last line without its newline is being written by someone else right now.
    if !text.ends_with('\n') {
        return None;
    }
    let mut bytes: i64 = 0;
    let mut count: i64 = 0;
    for line in text.lines().skip(1) {
        let mut fields = line.split_ascii_whitespace();
        let (Some(line_bytes), Some(line_count), None) =
            (fields.next(), fields.next(), fields.next())
        else {
            return None;
        };
        bytes = bytes.checked_add(line_bytes.parse().ok()?)?;
        count = count.checked_add(line_count.parse().ok()?)?;
    }
    Some(Parsed {
        bytes_limit,
        count_limit,
        bytes,
        count,
    })
}

/// Sums the messages in `new/` and `cur/` of the INBOX and of every folder (Maildir++
/// `.Folder` directories and `LAYOUT=fs` sub-directories alike, found as the folder list
/// finds them, down to the same depth), the way Dovecot recalculates. The size is the `S=`
/// of the name, or the file's length without one. Symbolic links are not followed.
fn scan(maildir: &Path) -> Result<Usage, StoreError> {
    let mut usage = Usage { bytes: 0, count: 0 };
    scan_folder(maildir, &mut usage)?;
    let folders = match maildir::folder_dirs(maildir, true, true) {
        Ok(folders) => folders,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(usage),
        Err(err) => return Err(StoreError::io(maildir, err)),
    };
    for (_, folder) in folders {
        scan_folder(&folder, &mut usage)?;
    }
    Ok(usage)
}

fn scan_folder(folder: &Path, usage: &mut Usage) -> Result<(), StoreError> {
    for sub in ["new", "cur"] {
        let dir = folder.join(sub);
        if !maildir::is_real_dir(&dir) {
            continue;
        }
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(StoreError::io(&dir, err)),
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => return Err(StoreError::io(&dir, err)),
            };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let size = match size_from_name(&name) {
                Some(size) => size,
                // Moved to cur/ or expunged since the listing: Dovecot would miss it too.
                None => match entry.metadata() {
                    Ok(meta) if meta.is_file() => meta.len(),
                    Ok(_) => continue,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(StoreError::io(&entry.path(), err)),
                },
            };
            usage.bytes = usage.bytes.saturating_add(size);
            usage.count += 1;
        }
    }
    Ok(())
}

/// The `S=<size>` of a Maildir file name, if it has one.
fn size_from_name(name: &str) -> Option<u64> {
    let base = name.split(':').next()?;
    base.split(',')
        .skip(1)
        .find_map(|field| field.strip_prefix("S="))
        .and_then(|size| size.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dovecot_files() {
        let parsed = parse(b"1048576S,100C\n2000 3\n500 1\n-500 -1\n");
        assert_eq!(
            parsed,
            Some(Parsed {
                bytes_limit: 1_048_576,
                count_limit: Some(100),
                bytes: 2000,
                count: 3,
            })
        );
        assert_eq!(parse(b"0S\n0 0\n").map(|p| p.bytes_limit), Some(0));
        assert_eq!(parse(b"100S\n10 1\n12"), None, "unfinished line");
        assert_eq!(parse(b"junk\n10 1\n"), None);
    }

    #[test]
    fn header_matches_dovecot() {
        assert_eq!(header(None, None), "0S");
        assert_eq!(header(Some(1024), None), "1024S");
        assert_eq!(header(Some(1024), Some(5)), "1024S,5C");
        assert_eq!(header(None, Some(5)), "5C");
    }

    #[test]
    fn sizes_from_names() {
        assert_eq!(size_from_name("1.M2P3.host,S=120,W=124:2,S"), Some(120));
        assert_eq!(size_from_name("1.M2P3.host,W=124,S=120"), Some(120));
        assert_eq!(size_from_name("1.M2P3.host:2,S"), None);
    }
}
