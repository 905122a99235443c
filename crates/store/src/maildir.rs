//! Maildir on disk: Dovecot's file names, creating a Maildir, and the one write path every
//! message takes into a folder ([`write_message`]). Everything here blocks; callers run it in `spawn_blocking`.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::StoreError;
use crate::form::Sizes;

/// How many names to try before giving up when every one is taken (only possible when the
/// clock and the counter both repeat, such as two hosts sharing a name and a pid).
const NAME_ATTEMPTS: u32 = 100;

/// Makes names unique within this process when the clock does not move between two.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many hierarchy levels a folder name may have (Dovecot's `MAILBOX_MAX_HIERARCHY_LEVELS`).
/// Creating, listing and the quota scan all stop here, so no folder can hold mail the quota
/// does not count.
pub(crate) const MAX_FOLDER_DEPTH: usize = 20;

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

/// Where [`write_message`] puts a message and how it names it.
pub(crate) struct Placement<'a> {
    /// The folder's Maildir (it and its `tmp/`, `new/`, `cur/` exist).
    pub(crate) folder: &'a Path,
    /// `new/` (a delivery) or `cur/` (APPEND, COPY).
    pub(crate) into_cur: bool,
    pub(crate) hostname: &'a str,
    /// Written into the name as `S=` and `W=`.
    pub(crate) sizes: Sizes,
    /// Appended after the sizes: `:2,<flags>` in `cur/`, empty in `new/`.
    pub(crate) info: &'a str,
    /// The file's mtime (IMAP's internal date); a linked file is given it before its new
    /// name, so give none when the file has other names (a delivery to many).
    pub(crate) mtime: Option<SystemTime>,
    /// fsync the directory holding the new name before returning; a caller that places
    /// many messages may sync once after the last (COPY).
    pub(crate) sync_dir: bool,
}

/// What [`write_message`] writes.
pub(crate) enum Content<'a> {
    /// Stored bytes (APPEND).
    Bytes(&'a [u8]),
    /// Stored bytes then a file's content, copied (a delivery with a per-recipient header).
    Copy { prefix: &'a [u8], source: &'a Path },
    /// A complete file that gets one more name (a delivery from the spool, COPY), copied
    /// where the file system has no hard links between the two.
    Link(&'a Path),
}

/// The one way a message enters a Maildir folder. A complete file gets its final name with
/// `link(2)`, which never replaces an existing message: written content goes to `tmp/`
/// (0600, `O_EXCL`), is fsync'd and then linked; a file that is already complete is fsync'd
/// and linked directly. The name is Dovecot's,
/// `<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<vsize><info>`, retried with a fresh base
/// when taken. Returns the final path.
pub(crate) fn write_message(
    content: &Content<'_>,
    at: &Placement<'_>,
) -> Result<PathBuf, StoreError> {
    let target_dir = at.folder.join(if at.into_cur { "cur" } else { "new" });
    let path = match content {
        Content::Link(source) => match link_synced(source, &target_dir, at) {
            Ok(Some(path)) => path,
            Ok(None) => write_via_tmp(content, &target_dir, at)?,
            Err(err) => return Err(err),
        },
        Content::Bytes(_) | Content::Copy { .. } => write_via_tmp(content, &target_dir, at)?,
    };
    if at.sync_dir
        && let Err(err) = sync_dir(&target_dir)
    {
        // The name may not survive a crash; say so and let the sender retry. The file
        // stays: a duplicate is better than a loss.
        return Err(StoreError::io(&target_dir, err));
    }
    Ok(path)
}

fn final_name(base: &str, at: &Placement<'_>) -> String {
    format!(
        "{}{}",
        new_name(base, at.sizes.size, at.sizes.vsize()),
        at.info
    )
}

/// Links a complete file into `target_dir` after making its data durable. `Ok(None)` when
/// this file system cannot link it there: the caller copies instead.
fn link_synced(
    source: &Path,
    target_dir: &Path,
    at: &Placement<'_>,
) -> Result<Option<PathBuf>, StoreError> {
    // The spool file is not synced when written: this is where its data becomes durable.
    let synced = open_message_file(source).and_then(|file| {
        if let Some(mtime) = at.mtime {
            file.set_modified(mtime)?;
        }
        file.sync_data()
    });
    if let Err(err) = synced {
        return Err(StoreError::io(source, err));
    }
    for _ in 0..NAME_ATTEMPTS {
        let path = target_dir.join(final_name(&unique_name(at.hostname), at));
        match fs::hard_link(source, &path) {
            Ok(()) => return Ok(Some(path)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) if link_unsupported(&err) => return Ok(None),
            Err(err) => return Err(StoreError::io(&path, err)),
        }
    }
    Err(StoreError::io(target_dir, names_exhausted()))
}

/// Writes the content to a new file in `tmp/`, fsyncs it and links it into `target_dir`.
fn write_via_tmp(
    content: &Content<'_>,
    target_dir: &Path,
    at: &Placement<'_>,
) -> Result<PathBuf, StoreError> {
    let tmp_dir = at.folder.join("tmp");
    for _ in 0..NAME_ATTEMPTS {
        let base = unique_name(at.hostname);
        let tmp_path = tmp_dir.join(&base);
        match write_new_file(content, &tmp_path, at.mtime) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(err) => {
                let _ = fs::remove_file(&tmp_path);
                return Err(StoreError::io(&tmp_path, err));
            }
        }
        let res = link_into(&tmp_path, target_dir, &base, at);
        if res.is_err() {
            let _ = fs::remove_file(&tmp_path);
        }
        return res;
    }
    Err(StoreError::io(&tmp_dir, names_exhausted()))
}

/// Writes `content` to the new file `path` (0600) and fsyncs it. `Ok(false)` when `path`
/// already exists.
fn write_new_file(
    content: &Content<'_>,
    path: &Path,
    mtime: Option<SystemTime>,
) -> io::Result<bool> {
    let res = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    let mut file = match res {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(err) => return Err(err),
    };
    match content {
        Content::Bytes(bytes) => io::Write::write_all(&mut file, bytes)?,
        Content::Copy { prefix, source } => {
            io::Write::write_all(&mut file, prefix)?;
            io::copy(&mut open_message_file(source)?, &mut file)?;
        }
        Content::Link(source) => {
            io::copy(&mut open_message_file(source)?, &mut file)?;
        }
    }
    if let Some(mtime) = mtime {
        file.set_modified(mtime)?;
    }
    // fdatasync, as Dovecot: the data and the size; the directory entry is synced apart.
    file.sync_data()?;
    Ok(true)
}

/// Gives the complete file in `tmp/` its name in `target_dir`. `link(2)` rather than
/// `rename(2)`: a link never replaces an existing message, a rename would.
fn link_into(
    tmp_path: &Path,
    target_dir: &Path,
    base: &str,
    at: &Placement<'_>,
) -> Result<PathBuf, StoreError> {
    for attempt in 0..NAME_ATTEMPTS {
        let base = if attempt == 0 {
            base.to_owned()
        } else {
            unique_name(at.hostname)
        };
        let path = target_dir.join(final_name(&base, at));
        match fs::hard_link(tmp_path, &path) {
            Ok(()) => {
                if let Err(err) = fs::remove_file(tmp_path) {
                    // Harmless: a second name for a stored message, in tmp/, which Dovecot
                    // cleans up.
                    tracing::warn!(path = %tmp_path.display(), cause = %err, "cannot remove");
                }
                return Ok(path);
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) if link_unsupported(&err) => {
                // No hard links here: rename, after checking the name is free.
                if fs::symlink_metadata(&path).is_ok() {
                    continue;
                }
                return match fs::rename(tmp_path, &path) {
                    Ok(()) => Ok(path),
                    Err(err) => Err(StoreError::io(&path, err)),
                };
            }
            Err(err) => return Err(StoreError::io(&path, err)),
        }
    }
    Err(StoreError::io(target_dir, names_exhausted()))
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

fn names_exhausted() -> io::Error {
    io::Error::new(io::ErrorKind::AlreadyExists, "no free Maildir file name")
}

/// Opens a message file that is a regular file, never through a symbolic link: the file
/// opened must be the one `lstat` saw, so a link swapped in between is caught too.
pub(crate) fn open_message_file(path: &Path) -> io::Result<File> {
    let seen = fs::symlink_metadata(path)?;
    let not_regular = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file (symbolic links are not followed)",
        )
    };
    if !seen.file_type().is_file() {
        return Err(not_regular());
    }
    let file = File::open(path)?;
    let opened = file.metadata()?;
    if (opened.dev(), opened.ino()) != (seen.dev(), seen.ino()) {
        return Err(not_regular());
    }
    Ok(file)
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
        let content = Content::Link(&from);
        assert!(write_new_file(&content, &to, None).expect("copy"));
        assert_eq!(fs::read(&to).expect("read"), b"message\n");
        fs::write(&from, b"other\n").expect("write");
        assert!(!write_new_file(&content, &to, None).expect("refused"));
        assert_eq!(fs::read(&to).expect("read"), b"message\n");
        let exdev = io::Error::from(io::ErrorKind::CrossesDevices);
        assert!(link_unsupported(&exdev));
        assert!(!link_unsupported(&io::Error::from(
            io::ErrorKind::StorageFull
        )));
    }
}
