//! Retiring a removed mailbox's files, so that an address added again later starts empty.
//!
//! The home directory is renamed to a hidden sibling, `.removed-<UTC time>-<local part>`, in
//! the same parent: a rename on one file system, atomic, and a name no address maps to (a
//! local part never starts with `.`). With `purge` the renamed directory is then deleted;
//! renaming first means a failure half-way leaves nothing at the address's path.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::StoreError;

/// What to do with a mailbox's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retire {
    /// Rename them aside, whatever they hold (`mailbox remove`).
    Aside,
    /// Rename them aside only when there is something in them (`mailbox add`, over files an
    /// earlier owner left).
    AsideIfNotEmpty,
    /// Rename them aside, then delete them (`mailbox remove --purge`).
    Purge,
}

/// One directory that was retired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiredDir {
    /// Where it was: the home, or a Maildir outside the home.
    pub from: PathBuf,
    /// Where it is now; `None` when it was deleted.
    pub to: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    /// Another mailbox's home or Maildir is this directory, inside it, or around it: moving
    /// it would move that mailbox's mail too.
    #[error(
        "{} is shared with another mailbox ({}); its files were left in place, move them by hand",
        path.display(),
        other.display()
    )]
    Shared { path: PathBuf, other: PathBuf },
    #[error("{} cannot be retired: it has no parent directory", path.display())]
    NoParent { path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Retires the files of the mailbox whose home is `home` and Maildir `maildir` (given by the
/// directory before it forgets them): the home, and the Maildir too when it lies outside the
/// home. Missing directories are skipped. `label` (the local part) ends the new name.
/// `others` are the homes and Maildirs of every other mailbox: a directory one of them
/// shares is refused.
///
/// # Errors
///
/// `Shared`, `NoParent`, or an I/O error (the directory is then where it was, or already
/// renamed when only the purge failed: the error names the path).
pub async fn retire_mailbox(
    home: &Path,
    maildir: &Path,
    label: &str,
    others: Vec<PathBuf>,
    how: Retire,
    when: SystemTime,
) -> Result<Vec<RetiredDir>, RetireError> {
    let (home, maildir, label) = (home.to_path_buf(), maildir.to_path_buf(), label.to_owned());
    match tokio::task::spawn_blocking(move || {
        retire_blocking(&home, &maildir, &label, &others, how, when)
    })
    .await
    {
        Ok(res) => res,
        Err(err) => Err(StoreError::Task(err.to_string()).into()),
    }
}

fn retire_blocking(
    home: &Path,
    maildir: &Path,
    label: &str,
    others: &[PathBuf],
    how: Retire,
    when: SystemTime,
) -> Result<Vec<RetiredDir>, RetireError> {
    let mut targets = vec![home.to_path_buf()];
    if !maildir.starts_with(home) {
        targets.push(maildir.to_path_buf());
    }
    // Decide everything before moving anything.
    let mut chosen = Vec::new();
    for target in targets {
        let meta = match fs::symlink_metadata(&target) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(StoreError::io(&target, err).into()),
        };
        if how == Retire::AsideIfNotEmpty && meta.is_dir() && is_empty_dir(&target)? {
            continue;
        }
        if let Some(other) = others
            .iter()
            .filter(|other| !other.as_os_str().is_empty())
            .find(|other| other.starts_with(&target) || target.starts_with(other))
        {
            return Err(RetireError::Shared {
                path: target,
                other: other.clone(),
            });
        }
        chosen.push(target);
    }
    let mut retired = Vec::with_capacity(chosen.len());
    for from in chosen {
        let to = move_aside(&from, label, when)?;
        if how == Retire::Purge {
            // Does not follow symbolic links: a link inside is removed, not its target.
            let removed = if fs::symlink_metadata(&to).is_ok_and(|meta| meta.is_dir()) {
                fs::remove_dir_all(&to)
            } else {
                fs::remove_file(&to)
            };
            if let Err(err) = removed {
                return Err(StoreError::io(&to, err).into());
            }
            retired.push(RetiredDir { from, to: None });
        } else {
            retired.push(RetiredDir { from, to: Some(to) });
        }
    }
    Ok(retired)
}

fn is_empty_dir(dir: &Path) -> Result<bool, StoreError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(err) => Err(StoreError::io(dir, err)),
    }
}

/// Renames `from` to `.removed-<time>-<label>` next to it (`-2`, `-3`, ... when taken).
fn move_aside(from: &Path, label: &str, when: SystemTime) -> Result<PathBuf, RetireError> {
    let Some(parent) = from
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    else {
        return Err(RetireError::NoParent {
            path: from.to_path_buf(),
        });
    };
    // Only characters safe in one file name; the label is for people, not for lookups.
    let label: String = label
        .chars()
        .map(|c| {
            if c == '/' || c == '\0' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let base = format!(".removed-{}-{label}", utc_stamp(when));
    for attempt in 1..=100u32 {
        let name = if attempt == 1 {
            base.clone()
        } else {
            format!("{base}-{attempt}")
        };
        let to = parent.join(name);
        // rename(2) would replace an empty directory of that name: look first.
        if fs::symlink_metadata(&to).is_ok() {
            continue;
        }
        return match fs::rename(from, &to) {
            Ok(()) => Ok(to),
            Err(err) => Err(StoreError::io(from, err).into()),
        };
    }
    Err(StoreError::io(
        from,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free name to retire it under",
        ),
    )
    .into())
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
fn utc_stamp(when: SystemTime) -> String {
    let secs = when
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn stamps_are_utc() {
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(utc_stamp(at(0)), "19700101T000000Z");
        assert_eq!(utc_stamp(at(951_782_400)), "20000229T000000Z");
        assert_eq!(utc_stamp(at(1_796_180_645)), "20261202T030405Z");
    }

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("example.com/bob");
        let maildir = home.join("Maildir");
        fs::create_dir_all(maildir.join("cur")).expect("mkdir");
        fs::write(maildir.join("cur/1.M1P1.host:2,S"), b"old mail\n").expect("write");
        (dir, home, maildir)
    }

    #[test]
    fn moves_the_home_aside_then_purges() {
        let (dir, home, maildir) = setup();
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_180_645);
        let retired =
            retire_blocking(&home, &maildir, "bob", &[], Retire::Aside, when).expect("retire");
        let aside = dir.path().join("example.com/.removed-20261202T030405Z-bob");
        assert_eq!(
            retired,
            [RetiredDir {
                from: home.clone(),
                to: Some(aside.clone())
            }]
        );
        assert!(!home.exists());
        assert!(aside.join("Maildir/cur/1.M1P1.host:2,S").exists());
        // A second one in the same second gets its own name.
        fs::create_dir_all(maildir.join("new")).expect("mkdir");
        let retired =
            retire_blocking(&home, &maildir, "bob", &[], Retire::Purge, when).expect("purge");
        assert_eq!(retired[0].to, None);
        assert!(!home.exists());
        assert!(aside.exists(), "the first one is untouched");
        assert!(
            !dir.path()
                .join("example.com/.removed-20261202T030405Z-bob-2")
                .exists()
        );
    }

    #[test]
    fn purge_does_not_follow_links() {
        let (dir, home, maildir) = setup();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).expect("mkdir");
        fs::write(outside.join("keep"), b"x").expect("write");
        std::os::unix::fs::symlink(&outside, maildir.join(".Evil")).expect("symlink");
        retire_blocking(
            &home,
            &maildir,
            "bob",
            &[],
            Retire::Purge,
            SystemTime::now(),
        )
        .expect("purge");
        assert!(outside.join("keep").exists());
        assert!(!home.exists());
    }

    #[test]
    fn empty_or_shared_homes_stay() {
        let (dir, home, maildir) = setup();
        // Another mailbox lives inside this home: nothing moves.
        let other = home.join("other/Maildir");
        let err = retire_blocking(
            &home,
            &maildir,
            "bob",
            &[other],
            Retire::Aside,
            SystemTime::now(),
        )
        .expect_err("shared");
        assert!(matches!(err, RetireError::Shared { .. }), "{err}");
        assert!(maildir.join("cur").exists());
        // An empty home is left alone when only content matters.
        let empty = dir.path().join("example.com/carol");
        fs::create_dir(&empty).expect("mkdir");
        let retired = retire_blocking(
            &empty,
            &empty.join("Maildir"),
            "carol",
            &[],
            Retire::AsideIfNotEmpty,
            SystemTime::now(),
        )
        .expect("nothing");
        assert!(retired.is_empty());
        assert!(empty.exists());
        // Nothing there at all: nothing to do.
        let none = dir.path().join("example.com/dave");
        let retired = retire_blocking(
            &none,
            &none.join("Maildir"),
            "dave",
            &[],
            Retire::Aside,
            SystemTime::now(),
        )
        .expect("nothing");
        assert!(retired.is_empty());
    }
}
