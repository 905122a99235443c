//! Maildir on disk: Dovecot's file names, creating a Maildir, and moving a complete file from
//! `tmp/` into `new/`. Everything here blocks; callers run it in `spawn_blocking`.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Delivered, StoreError, quota};

/// How many names to try before giving up when every one is taken (only possible when the
/// clock and the counter both repeat, such as two hosts sharing a name and a pid).
const NAME_ATTEMPTS: u32 = 100;

/// Makes names unique within this process when the clock does not move between two.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many hierarchy levels a folder name may have (Dovecot's `MAILBOX_MAX_HIERARCHY_LEVELS`).
/// Creating, listing and the quota scan all stop here, so no folder can hold mail the quota
/// does not count.
pub(crate) const MAX_FOLDER_DEPTH: usize = 20;

/// What `deliver` needs of a spooled message.
pub(crate) struct Message {
    pub(crate) spool_path: PathBuf,
    /// Bytes (LF line endings) written before the spooled content in this copy; `size` and
    /// `vsize` include them.
    pub(crate) prefix: Option<Vec<u8>>,
    pub(crate) size: u64,
    pub(crate) vsize: u64,
}

/// Dovecot's `maildir_filename_generate` escapes `/` and `:` in the host name, the two
/// characters that would break a path or the `:2,` info suffix.
pub(crate) fn sanitize_hostname(hostname: &str) -> Result<String, StoreError> {
    if hostname.is_empty() || hostname.chars().any(|c| c.is_control() || c == ',') {
        return Err(StoreError::InvalidHostname(hostname.to_owned()));
    }
    Ok(hostname.replace('/', "\\057").replace(':', "\\072"))
}

/// A base name in Dovecot's style: `<secs>.M<usecs>P<pid>Q<counter>.<host>`.
pub(crate) fn unique_name(hostname: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        counter,
        hostname
    )
}

/// The name in `new/`: the base name plus the sizes Dovecot reads without opening the file.
pub(crate) fn new_name(base: &str, size: u64, vsize: u64) -> String {
    format!("{base},S={size},W={vsize}")
}

/// Delivers one spooled message into the INBOX of `maildir`.
pub(crate) fn deliver(
    message: &Message,
    maildir: &Path,
    hostname: &str,
    limit: Option<u64>,
) -> Result<Delivered, StoreError> {
    // Quota first: a refused message must leave no trace, not even a new Maildir.
    let pre_check = quota::check(maildir, limit, message.size)?;

    ensure_maildir(maildir)?;
    // Deliveries that keep `maildirsize` hold a shared lock on the Maildir directory from the
    // check to the appended line; rewriting the file from a scan takes it exclusively, so a
    // scan never races a delivery that will also append (counting a message twice) or one
    // that appends to the file being replaced (not counting it). Dovecot does not take this
    // lock; between it and us the file stays as approximate as between two Dovecots.
    let (quota_state, _lock) = match pre_check {
        None => (None, None),
        Some(_) => {
            let (state, lock) = lock_and_check(maildir, limit, message.size)?;
            (Some(state), Some(lock))
        }
    };
    let tmp_dir = maildir.join("tmp");
    let new_dir = maildir.join("new");

    let tmp_path = match &message.prefix {
        None => place_in_tmp(&message.spool_path, &tmp_dir, hostname)?,
        Some(prefix) => copy_into_tmp(&message.spool_path, prefix, &tmp_dir, hostname)?,
    };
    let res = move_into_new(&tmp_path, &new_dir, hostname, message);
    if res.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    let new_path = res?;
    if let Err(err) = sync_dir(&new_dir) {
        // The name may not survive a crash; say so and let the sender retry. The file stays:
        // a duplicate is better than a loss.
        return Err(StoreError::io(&new_dir, err));
    }

    // The message is safe; the quota file is bookkeeping and never fails a delivery.
    if let Some(state) = quota_state
        && let Err(err) = quota::record(maildir, &state, message.size, limit)
    {
        tracing::warn!(maildir = %maildir.display(), cause = %err, "cannot update maildirsize");
    }
    Ok(Delivered {
        path: new_path,
        size: message.size,
    })
}

/// Locks the Maildir (shared, or exclusive when `maildirsize` must be rewritten) and checks
/// the quota under the lock. The lock is released when the returned file is dropped.
fn lock_and_check(
    maildir: &Path,
    limit: Option<u64>,
    size: u64,
) -> Result<(quota::QuotaState, File), StoreError> {
    let lock = match File::open(maildir) {
        Ok(lock) => lock,
        Err(err) => return Err(StoreError::io(maildir, err)),
    };
    if let Err(err) = lock.lock_shared() {
        return Err(StoreError::io(maildir, err));
    }
    let state = quota::check(maildir, limit, size)?;
    let Some(state) = state else {
        // The file vanished since the first check and there is no limit: nothing to keep.
        return Ok((quota::QuotaState::untracked(), lock));
    };
    if !state.needs_rewrite() {
        return Ok((state, lock));
    }
    // flock(2) cannot upgrade atomically: unlock, lock exclusively, and look again.
    if let Err(err) = lock.unlock().and_then(|()| lock.lock()) {
        return Err(StoreError::io(maildir, err));
    }
    match quota::check(maildir, limit, size)? {
        Some(state) => Ok((state, lock)),
        None => Ok((quota::QuotaState::untracked(), lock)),
    }
}

/// Links the spool file into `tmp/` under a fresh name (copies it when the spool is on
/// another filesystem), and fsyncs it.
fn place_in_tmp(spool_path: &Path, tmp_dir: &Path, hostname: &str) -> Result<PathBuf, StoreError> {
    for _ in 0..NAME_ATTEMPTS {
        let tmp_path = tmp_dir.join(unique_name(hostname));
        match fs::hard_link(spool_path, &tmp_path) {
            Ok(()) => {
                // The spool file is not synced when written: this is where its data becomes
                // durable, as the Maildir's file.
                let res = File::open(&tmp_path).and_then(|file| file.sync_data());
                return match res {
                    Ok(()) => Ok(tmp_path),
                    Err(err) => {
                        let _ = fs::remove_file(&tmp_path);
                        Err(StoreError::io(&tmp_path, err))
                    }
                };
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) if link_unsupported(&err) => {
                return match copy_synced(spool_path, &tmp_path) {
                    Ok(true) => Ok(tmp_path),
                    Ok(false) => continue,
                    Err(err) => {
                        let _ = fs::remove_file(&tmp_path);
                        Err(StoreError::io(&tmp_path, err))
                    }
                };
            }
            Err(err) => return Err(StoreError::io(&tmp_path, err)),
        }
    }
    Err(StoreError::io(tmp_dir, names_exhausted()))
}

/// Copies the spool file, after `prefix`, into `tmp/` under a fresh name, and fsyncs it: a
/// per-recipient copy cannot share the spool file's inode.
fn copy_into_tmp(
    spool_path: &Path,
    prefix: &[u8],
    tmp_dir: &Path,
    hostname: &str,
) -> Result<PathBuf, StoreError> {
    for _ in 0..NAME_ATTEMPTS {
        let tmp_path = tmp_dir.join(unique_name(hostname));
        match copy_synced_with(spool_path, prefix, &tmp_path) {
            Ok(true) => return Ok(tmp_path),
            Ok(false) => continue,
            Err(err) => {
                let _ = fs::remove_file(&tmp_path);
                return Err(StoreError::io(&tmp_path, err));
            }
        }
    }
    Err(StoreError::io(tmp_dir, names_exhausted()))
}

/// `link(2)` fails with EXDEV across filesystems and with EPERM or EOPNOTSUPP on filesystems
/// without hard links; all three mean "copy instead".
fn link_unsupported(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::CrossesDevices
            | io::ErrorKind::Unsupported
            | io::ErrorKind::PermissionDenied
    )
}

/// Copies `from` to a new file `to` and fsyncs it. `Ok(false)` when `to` already exists.
fn copy_synced(from: &Path, to: &Path) -> io::Result<bool> {
    copy_synced_with(from, &[], to)
}

/// Writes `prefix` then the contents of `from` to a new file `to` and fsyncs it. `Ok(false)`
/// when `to` already exists.
fn copy_synced_with(from: &Path, prefix: &[u8], to: &Path) -> io::Result<bool> {
    let mut source = File::open(from)?;
    let res = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to);
    let mut target = match res {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(err) => return Err(err),
    };
    io::Write::write_all(&mut target, prefix)?;
    io::copy(&mut source, &mut target)?;
    // fdatasync, as Dovecot: the data and the size; the directory entry is synced apart.
    target.sync_data()?;
    Ok(true)
}

/// Gives the complete file in `tmp/` its name in `new/`. `link(2)` rather than `rename(2)`:
/// a link never replaces an existing message, a rename would.
fn move_into_new(
    tmp_path: &Path,
    new_dir: &Path,
    hostname: &str,
    message: &Message,
) -> Result<PathBuf, StoreError> {
    for attempt in 0..NAME_ATTEMPTS {
        let base = match (attempt, tmp_path.file_name().and_then(|name| name.to_str())) {
            (0, Some(name)) => name.to_owned(),
            _ => unique_name(hostname),
        };
        let new_path = new_dir.join(new_name(&base, message.size, message.vsize));
        match fs::hard_link(tmp_path, &new_path) {
            Ok(()) => {
                if let Err(err) = fs::remove_file(tmp_path) {
                    // Harmless: a second name for a delivered message, in tmp/, which
                    // Dovecot cleans up.
                    tracing::warn!(path = %tmp_path.display(), cause = %err, "cannot remove");
                }
                return Ok(new_path);
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) if link_unsupported(&err) => {
                // No hard links here: rename, after checking the name is free.
                if new_path.exists() {
                    continue;
                }
                return match fs::rename(tmp_path, &new_path) {
                    Ok(()) => Ok(new_path),
                    Err(err) => Err(StoreError::io(&new_path, err)),
                };
            }
            Err(err) => return Err(StoreError::io(&new_path, err)),
        }
    }
    Err(StoreError::io(new_dir, names_exhausted()))
}

fn names_exhausted() -> io::Error {
    io::Error::new(io::ErrorKind::AlreadyExists, "no free Maildir file name")
}

/// Whether `path` is a directory itself, not a symbolic link to one (nor anything else).
pub(crate) fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_dir())
}

/// Whether `dir` holds a Maildir: it and its `cur/` are real directories, and so are `new/`
/// and `tmp/` where they exist. Symbolic links are never followed: a folder that is a link
/// (to `/etc`, to another user's Maildir) is no folder.
pub(crate) fn is_maildir(dir: &Path) -> bool {
    is_real_dir(dir)
        && is_real_dir(&dir.join("cur"))
        && ["new", "tmp"].iter().all(|sub| {
            fs::symlink_metadata(dir.join(sub)).map_or_else(
                |err| err.kind() == io::ErrorKind::NotFound,
                |meta| meta.file_type().is_dir(),
            )
        })
}

/// The error for a path where a real directory must be and something else (a symbolic link,
/// a file) is.
pub(crate) fn not_a_directory() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotADirectory,
        "not a directory (symbolic links are not followed)",
    )
}

/// Every folder directory below a Maildir root, with its levels as named on disk:
/// Maildir++ `.Folder` directories in the root (`plus_plus`; one entry, its name without
/// the leading dot) and `LAYOUT=fs` sub-directories down to [`MAX_FOLDER_DEPTH`] levels
/// (`fs`). A directory is listed when [`is_maildir`]; `LAYOUT=fs` parents without `cur/`
/// are walked through. Symbolic links are never followed, and names that are not UTF-8
/// (no IMAP name maps to them) are skipped.
pub(crate) fn folder_dirs(
    root: &Path,
    plus_plus: bool,
    fs_layout: bool,
) -> io::Result<Vec<(Vec<String>, PathBuf)>> {
    let mut out = Vec::new();
    if plus_plus {
        for entry in fs::read_dir(root)? {
            let entry = entry?;
            let file_name = entry.file_name();
            let Some(rest) = file_name.to_str().and_then(|name| name.strip_prefix('.')) else {
                continue;
            };
            if rest.is_empty() || rest.starts_with('.') {
                continue;
            }
            let path = entry.path();
            if is_maildir(&path) {
                out.push((vec![rest.to_owned()], path));
            }
        }
    }
    if fs_layout {
        walk_fs_levels(root, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

fn walk_fs_levels(
    dir: &Path,
    levels: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, PathBuf)>,
) -> io::Result<()> {
    if levels.len() >= MAX_FOLDER_DEPTH {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        if name.starts_with('.') || matches!(name, "cur" | "new" | "tmp") {
            continue;
        }
        // The entry's own type: a symbolic link is not a directory here.
        if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        let path = entry.path();
        levels.push(name.to_owned());
        if is_maildir(&path) {
            out.push((levels.clone(), path.clone()));
        }
        let res = walk_fs_levels(&path, levels, out);
        levels.pop();
        match res {
            Ok(()) => {}
            // Removed or renamed while we looked: it has no folders now.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Creates the Maildir and its `cur/`, `new/` and `tmp/` when missing, and makes every
/// directory it creates durable. A `cur/`, `new/` or `tmp/` that is a symbolic link (or a
/// file) is refused, never followed.
pub(crate) fn ensure_maildir(maildir: &Path) -> Result<(), StoreError> {
    if ["cur", "new", "tmp"]
        .iter()
        .all(|sub| is_real_dir(&maildir.join(sub)))
    {
        return Ok(());
    }
    if let Err(err) = create_dir_all_private(maildir) {
        return Err(StoreError::io(maildir, err));
    }
    for sub in ["cur", "new", "tmp"] {
        let dir = maildir.join(sub);
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && is_real_dir(&dir) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StoreError::io(&dir, not_a_directory()));
            }
            Err(err) => return Err(StoreError::io(&dir, err)),
        }
    }
    if let Err(err) = sync_dir(maildir) {
        return Err(StoreError::io(maildir, err));
    }
    Ok(())
}

/// `create_dir_all` with mode 0700 that fsyncs the parent of each directory it creates, so
/// the new path survives a crash.
pub(crate) fn create_dir_all_private(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
    {
        create_dir_all_private(parent)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(err) => return Err(err),
    }
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Makes the names in a directory durable (concurrent callers share fsyncs).
pub(crate) use crate::dirsync::sync_dir;

/// Removes every file in `dir`; returns how many.
pub(crate) fn remove_files_in(dir: &Path) -> Result<u64, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => return Err(StoreError::io(dir, err)),
    };
    let mut n_removed = 0;
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => return Err(StoreError::io(dir, err)),
        };
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => continue,
            Ok(_) => {}
            Err(err) => return Err(StoreError::io(&path, err)),
        }
        match fs::remove_file(&path) {
            Ok(()) => n_removed += 1,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(StoreError::io(&path, err)),
        }
    }
    Ok(n_removed)
}

/// Removes the regular files in `dir` last modified before `before`; a missing `dir` has
/// none. Returns how many were removed. Anything newer may be a delivery in progress and
/// is left alone, as are directories, symlinks and other special files.
pub(crate) fn remove_stale_files_in(dir: &Path, before: SystemTime) -> Result<u64, StoreError> {
    // A `tmp` that is a symbolic link would have us delete files wherever it points.
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_dir() => {}
        Ok(_) => return Err(StoreError::io(dir, not_a_directory())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(StoreError::io(dir, err)),
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(StoreError::io(dir, err)),
    };
    let mut n_removed = 0;
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => return Err(StoreError::io(dir, err)),
        };
        let path = entry.path();
        // `symlink_metadata`: a symlink is judged as itself, never by what it points to.
        let metadata = match fs::symlink_metadata(&path) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(StoreError::io(&path, err)),
        };
        if !metadata.file_type().is_file() {
            continue;
        }
        match metadata.modified() {
            Ok(modified) if modified < before => {}
            Ok(_) => continue,
            Err(err) => return Err(StoreError::io(&path, err)),
        }
        match fs::remove_file(&path) {
            Ok(()) => n_removed += 1,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(StoreError::io(&path, err)),
        }
    }
    Ok(n_removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path taken when the spool is on another filesystem than the Maildir (EXDEV).
    #[test]
    fn copy_fallback_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = dir.path().join("spooled");
        let to = dir.path().join("copy");
        fs::write(&from, b"message\n").expect("write");
        assert!(copy_synced(&from, &to).expect("copy"));
        assert_eq!(fs::read(&to).expect("read"), b"message\n");
        fs::write(&from, b"other\n").expect("write");
        assert!(!copy_synced(&from, &to).expect("refused"));
        assert_eq!(fs::read(&to).expect("read"), b"message\n");
        let exdev = io::Error::from(io::ErrorKind::CrossesDevices);
        assert!(link_unsupported(&exdev));
        assert!(!link_unsupported(&io::Error::from(
            io::ErrorKind::StorageFull
        )));
    }
}
