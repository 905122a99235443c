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

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::{StoreError, maildir};

/// Dovecot recalculates a `maildirsize` this large rather than read more lines.
const MAX_FILE_LEN: usize = 5120;

/// A mailbox's limits, as the caller's directory gives them; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaLimit {
    pub bytes: Option<u64>,
    pub messages: Option<u64>,
}

impl QuotaLimit {
    pub const UNLIMITED: QuotaLimit = QuotaLimit {
        bytes: None,
        messages: None,
    };

    /// A limit in bytes only.
    pub fn bytes(bytes: Option<u64>) -> QuotaLimit {
        QuotaLimit {
            bytes,
            messages: None,
        }
    }

    fn is_unlimited(self) -> bool {
        self.bytes.is_none() && self.messages.is_none()
    }
}

/// Which limit a refused message would break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaResource {
    Bytes,
    Messages,
}

impl std::fmt::Display for QuotaResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QuotaResource::Bytes => "bytes",
            QuotaResource::Messages => "messages",
        })
    }
}

/// Usage in bytes and messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) bytes: u64,
    pub(crate) count: u64,
}

/// A parsed `maildirsize`.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    bytes_limit: u64,
    count_limit: Option<u64>,
    bytes: i64,
    count: i64,
}

/// What the check found: the usage, and how to record a change.
#[derive(Debug)]
struct Found {
    usage: Usage,
    /// The file is missing or stale: rewrite it from a scan instead of appending a line.
    rewrite: bool,
    /// A message-count limit found in the file (set by Dovecot); kept when rewriting.
    count_limit: Option<u64>,
    /// False when there is no file and no limit: nothing to keep up to date.
    track: bool,
}

/// The account's quota held for one change: the Maildir root is locked (`flock(2)`, shared
/// for a change that appends a line, exclusive for one that rewrites the file or removes a
/// folder) from the check to the recorded line, so every writer in this process (delivery,
/// APPEND, COPY, MOVE, EXPUNGE, folder DELETE) keeps `maildirsize` exact against the others.
/// Dovecot does not take this lock; between it and us the file stays as approximate as
/// between two Dovecots, and is recalculated when it looks wrong. The lock goes with the
/// value.
#[derive(Debug)]
pub(crate) struct Held {
    _lock: File,
    found: Found,
    limit: QuotaLimit,
}

/// Locks the account at `root` and checks that `bytes` in `count` more messages fit.
/// `root` must exist; a caller that must not create it for a refused message checks with
/// [`fits`] first.
pub(crate) fn reserve(
    root: &Path,
    limit: QuotaLimit,
    bytes: u64,
    count: u64,
) -> Result<Held, StoreError> {
    let lock = lock_root(root, false)?;
    let found = read(root, limit)?;
    let (lock, found) = if found.rewrite {
        // flock(2) cannot upgrade atomically: unlock, lock exclusively, and look again.
        drop(lock);
        let lock = lock_root(root, true)?;
        let found = read(root, limit)?;
        (lock, found)
    } else {
        (lock, found)
    };
    refuse_over(root, limit, found.usage, bytes, count)?;
    Ok(Held {
        _lock: lock,
        found,
        limit,
    })
}

/// Whether `bytes` in `count` more messages fit, without a lock and without writing: the
/// early answer (RCPT time, before a Maildir exists). The change itself checks again.
pub(crate) fn fits(
    root: &Path,
    limit: QuotaLimit,
    bytes: u64,
    count: u64,
) -> Result<(), StoreError> {
    if limit.is_unlimited() {
        return Ok(());
    }
    let found = read(root, limit)?;
    refuse_over(root, limit, found.usage, bytes, count)
}

impl Held {
    /// Records a change that has happened (messages added, or removed with negative
    /// values): one line appended, or the file rewritten from a scan (which already sees the
    /// change) when the check found it stale. A failure is logged: the messages are safe,
    /// and the file is recalculated when it looks wrong.
    pub(crate) fn record(self, root: &Path, bytes: i64, count: i64) {
        if let Err(err) = self.try_record(root, bytes, count) {
            tracing::warn!(root = %root.display(), cause = %err, "cannot update maildirsize");
        }
    }

    fn try_record(&self, root: &Path, bytes: i64, count: i64) -> Result<(), StoreError> {
        if !self.found.track || (bytes == 0 && count == 0 && !self.found.rewrite) {
            return Ok(());
        }
        let path = root.join("maildirsize");
        if self.found.rewrite {
            let usage = scan(root)?;
            return write_file(root, &header(self.limit, self.found.count_limit), usage);
        }
        // O_APPEND makes each short line land whole even with concurrent writers.
        let res = OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(format!("{bytes} {count}\n").as_bytes()));
        match res {
            Ok(()) => Ok(()),
            Err(err) => Err(StoreError::io(&path, err)),
        }
    }

    /// The usage the check found (before this change).
    pub(crate) fn usage(&self) -> Usage {
        self.found.usage
    }
}

/// Holds the account exclusively: for a change whose size is known only once it is done (a
/// folder removed with everything in it). Record with [`Held::record`].
pub(crate) fn hold_exclusive(root: &Path, limit: QuotaLimit) -> Result<Held, StoreError> {
    let lock = lock_root(root, true)?;
    let found = read(root, limit)?;
    Ok(Held {
        _lock: lock,
        found,
        limit,
    })
}

/// The account's usage now, under the lock; a missing or stale `maildirsize` is rewritten
/// first when the account keeps one.
pub(crate) fn usage(root: &Path, limit: QuotaLimit) -> Result<Usage, StoreError> {
    let held = reserve(root, limit, 0, 0)?;
    if !held.found.track {
        // No file to keep: count the files.
        return scan(root);
    }
    if held.found.rewrite {
        let usage = scan(root)?;
        write_file(root, &header(limit, held.found.count_limit), usage)?;
        return Ok(usage);
    }
    Ok(held.usage())
}

fn lock_root(root: &Path, exclusive: bool) -> Result<File, StoreError> {
    let lock = File::open(root).map_err(|err| StoreError::io(root, err))?;
    let res = if exclusive {
        lock.lock()
    } else {
        lock.lock_shared()
    };
    res.map_err(|err| StoreError::io(root, err))?;
    Ok(lock)
}

fn refuse_over(
    root: &Path,
    limit: QuotaLimit,
    usage: Usage,
    bytes: u64,
    count: u64,
) -> Result<(), StoreError> {
    let over = |limit: Option<u64>, used: u64, more: u64| {
        limit.filter(|&limit| more > 0 && used.saturating_add(more) > limit)
    };
    if let Some(max) = over(limit.bytes, usage.bytes, bytes) {
        return Err(StoreError::OverQuota {
            maildir: root.to_path_buf(),
            resource: QuotaResource::Bytes,
            limit: max,
            used: usage.bytes,
            size: bytes,
        });
    }
    if let Some(max) = over(limit.messages, usage.count, count) {
        return Err(StoreError::OverQuota {
            maildir: root.to_path_buf(),
            resource: QuotaResource::Messages,
            limit: max,
            used: usage.count,
            size: count,
        });
    }
    Ok(())
}

/// Reads `maildirsize`, or scans when it is missing or stale. Writes nothing.
fn read(root: &Path, limit: QuotaLimit) -> Result<Found, StoreError> {
    let path = root.join("maildirsize");
    let contents = match fs::read(&path) {
        Ok(contents) => Some(contents),
        Err(err) if err.kind() == io::ErrorKind::NotFound && limit.is_unlimited() => {
            // Nothing can be refused and nothing is kept: no need to count.
            return Ok(Found {
                usage: Usage::default(),
                rewrite: false,
                count_limit: None,
                track: false,
            });
        }
        Err(_) => None,
    };
    let parsed = contents.as_deref().and_then(|contents| {
        if contents.len() >= MAX_FILE_LEN {
            return None;
        }
        parse(contents)
    });
    let fresh = parsed.filter(|parsed| {
        parsed.bytes_limit == limit.bytes.unwrap_or(0)
            && (limit.messages.is_none() || parsed.count_limit == limit.messages)
            && parsed.bytes >= 0
            && parsed.count >= 0
    });
    Ok(match fresh {
        Some(parsed) => Found {
            usage: Usage {
                bytes: u64::try_from(parsed.bytes).unwrap_or(0),
                count: u64::try_from(parsed.count).unwrap_or(0),
            },
            rewrite: false,
            count_limit: parsed.count_limit,
            track: true,
        },
        None => Found {
            usage: scan(root)?,
            rewrite: true,
            count_limit: contents
                .as_deref()
                .and_then(parse_header)
                .and_then(|(_, count_limit)| count_limit),
            track: true,
        },
    })
}

/// The first line, as Dovecot writes it. Dovecot writes no file at all without a limit (and
/// neither do we); `0S` only appears when an existing file is kept counting after the limit
/// was removed.
fn header(limit: QuotaLimit, file_count_limit: Option<u64>) -> String {
    let bytes = limit.bytes.unwrap_or(0);
    match limit.messages.or(file_count_limit) {
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
pub(crate) fn scan(maildir: &Path) -> Result<Usage, StoreError> {
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

/// The messages of one folder (its `new/` and `cur/`), as [`scan`] counts them.
pub(crate) fn scan_one(folder: &Path) -> Result<Usage, StoreError> {
    let mut usage = Usage::default();
    scan_folder(folder, &mut usage)?;
    Ok(usage)
}

fn scan_folder(folder: &Path, usage: &mut Usage) -> Result<(), StoreError> {
    // A message a sync moves from new/ to cur/ (or a flag change renames in cur/) while we
    // look can be listed twice: each is counted once, by its name up to the flags. new/ is
    // read first, so one moved after that is still found in cur/.
    let mut counted: HashSet<String> = HashSet::new();
    for sub in ["new", "cur"] {
        #[cfg(test)]
        if sub == "cur" {
            tests::before_cur(folder);
        }
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
            let base = name.split(':').next().unwrap_or_default();
            if !counted.insert(base.to_owned()) {
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
    use std::cell::RefCell;

    type Hook = Box<dyn FnOnce(&Path)>;

    thread_local! {
        static BEFORE_CUR: RefCell<Option<Hook>> = RefCell::new(None);
    }

    /// Called by the scan of a folder between reading its `new/` and its `cur/`.
    pub(super) fn before_cur(folder: &Path) {
        if let Some(hook) = BEFORE_CUR.with(|hook| hook.borrow_mut().take()) {
            hook(folder);
        }
    }

    /// A sync moves a message from `new/` to `cur/` (with flags) while the quota is
    /// recalculated: it is counted once, not in both.
    #[test]
    fn a_message_moved_to_cur_during_a_scan_is_counted_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path();
        for sub in ["new", "cur", "tmp"] {
            fs::create_dir(folder.join(sub)).expect("mkdir");
        }
        fs::write(folder.join("new/1.M1P1.mx,S=5"), b"12345").expect("message");
        fs::write(folder.join("cur/2.M2P2.mx,S=7:2,S"), b"1234567").expect("message");
        BEFORE_CUR.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(|folder: &Path| {
                fs::rename(
                    folder.join("new/1.M1P1.mx,S=5"),
                    folder.join("cur/1.M1P1.mx,S=5:2,"),
                )
                .expect("moved");
            }));
        });
        assert_eq!(
            scan_one(folder).expect("scan"),
            Usage {
                bytes: 12,
                count: 2
            }
        );
    }

    /// The size statistics count an unlimited account without `maildirsize` too, and
    /// write no file for it.
    #[test]
    fn an_unlimited_account_is_counted_without_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for sub in ["new", "cur", "tmp", ".Sent/cur"] {
            fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        fs::write(root.join("new/1.M1P1.mx,S=5"), b"12345").expect("message");
        fs::write(root.join(".Sent/cur/2.M2P2.mx,S=7:2,S"), b"1234567").expect("message");
        assert_eq!(
            usage(root, QuotaLimit::bytes(None)).expect("usage").bytes,
            12
        );
        assert!(!root.join("maildirsize").exists());
    }

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
        let bytes = QuotaLimit::bytes;
        assert_eq!(header(bytes(None), None), "0S");
        assert_eq!(header(bytes(Some(1024)), None), "1024S");
        assert_eq!(header(bytes(Some(1024)), Some(5)), "1024S,5C");
        assert_eq!(header(bytes(None), Some(5)), "5C");
        let both = QuotaLimit {
            bytes: Some(1024),
            messages: Some(7),
        };
        assert_eq!(header(both, Some(5)), "1024S,7C");
    }

    #[test]
    fn sizes_from_names() {
        assert_eq!(size_from_name("1.M2P3.host,S=120,W=124:2,S"), Some(120));
        assert_eq!(size_from_name("1.M2P3.host,W=124,S=120"), Some(120));
        assert_eq!(size_from_name("1.M2P3.host:2,S"), None);
    }
}
