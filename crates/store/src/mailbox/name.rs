//! What a folder name may be, and where it lives on disk. Every command that names a folder
//! to write (CREATE, RENAME, APPEND, SELECT, SUBSCRIBE, DELETE) goes through [`check`], and
//! the folder list shows only names it accepts, so a name it refuses never becomes a path.

use std::path::PathBuf;

use super::{FolderLayout, MailboxError};
use crate::maildir::MAX_FOLDER_DEPTH;

/// The longest name, in bytes, as the client sends it (Dovecot allows 2048 when creating).
const MAX_NAME_BYTES: usize = 1000;

/// `NAME_MAX`: the longest file name most file systems (ext4, XFS, btrfs, tmpfs) store.
const MAX_DISK_NAME_BYTES: usize = 255;

/// Control files of a Maildir (and their temporary names `<file>.<suffix>`), which a folder
/// of the same name would shadow or block.
const CONTROL_FILES: [&str; 3] = ["maildirsize", "maildirfolder", "subscriptions"];

/// Prefixes of whole families of control files: Dovecot's (`dovecot-uidlist`,
/// `dovecot-keywords`, `dovecot.index*`, `dovecot-acl`, `dovecot-uidvalidity*`, ...) and
/// Mailstead's (`mailstead.index`, `mailstead-special-use`, `mailstead-defaults`).
const CONTROL_PREFIXES: [&str; 2] = ["dovecot", "mailstead"];

/// Checks a folder name and returns it normalized (`INBOX` in any case becomes `INBOX`).
///
/// Refused: empty levels, control characters, levels starting with `.` or holding `~`, more
/// than [`MAX_FOLDER_DEPTH`] levels, names over 1000 bytes or with a level over 255 bytes
/// on disk, levels named like a Maildir control file or a lock, and what the layout cannot
/// store (`.` in Maildir++, `cur`/`new`/`tmp` in `LAYOUT=fs`).
pub(crate) fn check(name: &str, layout: FolderLayout) -> Result<String, MailboxError> {
    let normalized = check_shape(name)?;
    if normalized == "INBOX" {
        return Ok(normalized);
    }
    let invalid = |reason| MailboxError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    let levels: Vec<&str> = normalized.split('/').collect();
    if levels.len() > MAX_FOLDER_DEPTH {
        return Err(invalid("more than 20 hierarchy levels"));
    }
    // The name is modified UTF-7 as the client sent it, which is also the directory name
    // Dovecot uses: nothing is encoded again on the way to disk.
    let disk: Vec<String> = levels.iter().map(|level| (*level).to_owned()).collect();
    if let Some(reason) = disk.iter().find_map(|level| control_name(level)) {
        return Err(invalid(reason));
    }
    match layout {
        FolderLayout::MaildirPlusPlus => {
            if disk.iter().any(|level| level.contains('.')) {
                return Err(invalid("'.' is the hierarchy separator on disk"));
            }
            // `.A.B.C`: the whole name is one directory name.
            let length = disk.iter().map(|level| level.len() + 1).sum::<usize>();
            if length > MAX_DISK_NAME_BYTES {
                return Err(invalid("the name is longer than 255 bytes on disk"));
            }
        }
        FolderLayout::Fs => {
            if disk
                .iter()
                .any(|level| matches!(level.as_str(), "cur" | "new" | "tmp"))
            {
                return Err(invalid("cur, new and tmp are Maildir's own directories"));
            }
            if disk.iter().any(|level| level.len() > MAX_DISK_NAME_BYTES) {
                return Err(invalid(
                    "a hierarchy level is longer than 255 bytes on disk",
                ));
            }
        }
    }
    Ok(normalized)
}

/// The shape every name must have, whatever the layout: what unsubscribing from a name
/// that can no longer be created still needs.
pub(crate) fn check_shape(name: &str) -> Result<String, MailboxError> {
    let invalid = |reason| MailboxError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("the name is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(invalid("the name is longer than 1000 bytes"));
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err(invalid("empty hierarchy level"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("control characters are not allowed"));
    }
    let mut levels: Vec<&str> = name.split('/').collect();
    if levels
        .iter()
        .any(|level| level.starts_with('.') || level.contains('~'))
    {
        return Err(invalid("a level may not start with '.' or contain '~'"));
    }
    if levels
        .first()
        .is_some_and(|level| level.eq_ignore_ascii_case("INBOX"))
    {
        levels[0] = "INBOX";
    }
    Ok(levels.join("/"))
}

/// Why a level named `disk` on disk would collide with a control file, if it would.
/// Compared without case: on a case-insensitive file system `Dovecot-Uidlist` is the file.
fn control_name(disk: &str) -> Option<&'static str> {
    let lower = disk.to_ascii_lowercase();
    if CONTROL_PREFIXES
        .iter()
        .any(|prefix| lower.starts_with(prefix))
    {
        return Some("names starting with dovecot or mailstead are kept for the server's files");
    }
    if CONTROL_FILES.iter().any(|file| {
        lower
            .strip_prefix(file)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    }) {
        return Some("maildirsize, maildirfolder and subscriptions are Maildir's own files");
    }
    if lower.ends_with(".lock") {
        return Some("names ending in .lock are kept for lock files");
    }
    None
}

/// The folder's directory relative to the account's Maildir, for a name [`check`] accepted
/// (INBOX is the Maildir itself: an empty path).
pub(crate) fn relative_dir(name: &str, layout: FolderLayout) -> PathBuf {
    if name == "INBOX" {
        return PathBuf::new();
    }
    let disk: Vec<&str> = name.split('/').collect();
    match layout {
        FolderLayout::MaildirPlusPlus => PathBuf::from(format!(".{}", disk.join("."))),
        FolderLayout::Fs => disk.iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(check_shape("inbox").expect("ok"), "INBOX");
        assert_eq!(check_shape("Inbox/Sub").expect("ok"), "INBOX/Sub");
        for bad in ["", "/a", "a/", "a//b", "a/../b", ".hidden", "a\nb", "a~b"] {
            assert!(check_shape(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn control_files_are_refused_in_every_layout() {
        let refused = [
            "dovecot-uidlist",
            "dovecot-uidlist.lock",
            "dovecot-keywords",
            "dovecot.index.log",
            "dovecot-acl",
            "Dovecot-Uidlist",
            "maildirsize",
            "maildirfolder",
            "subscriptions",
            "subscriptions.123-4.tmp",
            "mailstead.index",
            "mailstead-special-use",
            "Work/dovecot-uidlist",
            "Work/anything.lock",
            "x.LOCK",
        ];
        for layout in [FolderLayout::MaildirPlusPlus, FolderLayout::Fs] {
            for name in refused {
                assert!(
                    matches!(check(name, layout), Err(MailboxError::InvalidName { .. })),
                    "{name:?} in {layout:?}"
                );
            }
            for name in ["Work", "Subscriptions list", "Locks", "lockers/x", "INBOX"] {
                assert!(check(name, layout).is_ok(), "{name:?} in {layout:?}");
            }
        }
        for name in ["cur", "Work/new", "tmp/x"] {
            assert!(check(name, FolderLayout::Fs).is_err(), "{name:?}");
            assert!(
                check(name, FolderLayout::MaildirPlusPlus).is_ok(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn depth_and_length_are_bounded() {
        let levels = |n: usize| vec!["a"; n].join("/");
        for layout in [FolderLayout::MaildirPlusPlus, FolderLayout::Fs] {
            assert!(check(&levels(MAX_FOLDER_DEPTH), layout).is_ok());
            assert!(check(&levels(MAX_FOLDER_DEPTH + 1), layout).is_err());
            assert!(
                check(&"x".repeat(255), layout).is_err()
                    == (layout == FolderLayout::MaildirPlusPlus)
            );
            assert!(check(&"x".repeat(256), layout).is_err());
            assert!(check(&"x".repeat(1001), layout).is_err());
        }
        assert!(check(&"x".repeat(254), FolderLayout::MaildirPlusPlus).is_ok());
        let three = ["y".repeat(100), "y".repeat(100), "y".repeat(100)].join("/");
        assert!(check(&three, FolderLayout::Fs).is_ok());
        assert!(check(&three, FolderLayout::MaildirPlusPlus).is_err());
    }
}
