//! UIDVALIDITY for new folders, allocated per account the way Dovecot does it, so Dovecot
//! and Mailstead allocating in the same Maildir never hand out one value twice.
//!
//! Dovecot keeps the last value given in `<root>/dovecot-uidvalidity` (eight hex digits)
//! and a marker file `dovecot-uidvalidity.<hex>` whose name is the same value. Taking the
//! next value is renaming the marker from `.<v>` to `.<v+1>`: only one process can rename a
//! given name, so a value is never given twice, even between processes that share no lock.
//! Without a marker the next value is the current time, or more than any value a folder of
//! the account already has (folders made before this allocator, or by a copy of the tree).
//! Inside this process an exclusive `flock(2)` on `dovecot-uidvalidity` serialises the
//! allocators, so they do not race each other into Dovecot's retry path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::MailboxError;

const FILE: &str = "dovecot-uidvalidity";
/// How many marker names to try before rescanning (Dovecot's `RETRY_COUNT`).
const RETRIES: u32 = 10;

/// The next UIDVALIDITY of the account at `root`: greater than any it gave before.
///
/// # Errors
///
/// `Io` when the account's root cannot be written.
pub(crate) fn next(root: &Path) -> Result<u32, MailboxError> {
    let path = root.join(FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|err| MailboxError::io(&path, err))?;
    file.lock().map_err(|err| MailboxError::io(&path, err))?;
    let mut text = String::new();
    let current = file
        .read_to_string(&mut text)
        .ok()
        .and_then(|_| u32::from_str_radix(text.trim(), 16).ok())
        .filter(|&value| value != 0);
    let value = match current.and_then(|value| take_after(root, value)) {
        Some(value) => value,
        None => rescan(root)?,
    };
    let res = file
        .set_len(0)
        .and_then(|()| file.write_all_at(format!("{value:08x}").as_bytes(), 0))
        .and_then(|()| file.sync_data());
    res.map_err(|err| MailboxError::io(&path, err))?;
    Ok(value)
}

/// Renames the marker `.<value>` to the next free value; `None` when no marker is there.
fn take_after(root: &Path, mut value: u32) -> Option<u32> {
    for _ in 0..RETRIES {
        let from = root.join(format!("{FILE}.{value:08x}"));
        let next = value.checked_add(1)?;
        let to = root.join(format!("{FILE}.{next:08x}"));
        match fs::rename(&from, &to) {
            Ok(()) => return Some(next),
            // Someone took this one meanwhile: try the next name, as Dovecot does.
            Err(err) if err.kind() == io::ErrorKind::NotFound => value = next,
            Err(_) => return None,
        }
    }
    None
}

/// No usable `dovecot-uidvalidity`: start from the highest marker, or else create one.
fn rescan(root: &Path) -> Result<u32, MailboxError> {
    let prefix = format!("{FILE}.");
    let mut markers: Vec<u32> = fs::read_dir(root)
        .map_err(|err| MailboxError::io(root, err))?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let hex = name.to_str()?.strip_prefix(&prefix)?.to_owned();
            u32::from_str_radix(&hex, 16).ok()
        })
        .collect();
    markers.sort_unstable();
    if let Some(&highest) = markers.last() {
        // Duplicates (two creators racing): keep the highest only.
        for &older in &markers[..markers.len() - 1] {
            let _ = fs::remove_file(root.join(format!("{FILE}.{older:08x}")));
        }
        if let Some(value) = take_after(root, highest) {
            return Ok(value);
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |since| {
            u32::try_from(since.as_secs()).unwrap_or(u32::MAX)
        });
    let mut value = now.max(highest_in_use(root).saturating_add(1)).max(1);
    for _ in 0..RETRIES {
        let marker = root.join(format!("{FILE}.{value:08x}"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&marker)
        {
            Ok(_) => return Ok(value),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                value = value.saturating_add(1);
            }
            Err(err) => return Err(MailboxError::io(&marker, err)),
        }
    }
    Ok(value)
}

/// The highest UIDVALIDITY in the account's `dovecot-uidlist` files (INBOX and every
/// folder, either layout), 0 when there is none.
fn highest_in_use(root: &Path) -> u32 {
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(found) = crate::maildir::folder_dirs(root, true, true) {
        dirs.extend(found.into_iter().map(|(_, dir)| dir));
    }
    dirs.iter()
        .filter_map(|dir| {
            let mut head = [0u8; 64];
            let n = File::open(dir.join("dovecot-uidlist"))
                .and_then(|mut file| file.read(&mut head))
                .ok()?;
            let line = std::str::from_utf8(head.get(..n)?).ok()?.lines().next()?;
            // v3: "3 V<uidvalidity> N<next uid> G<guid>".
            line.split_whitespace()
                .find_map(|field| field.strip_prefix('V')?.parse::<u32>().ok())
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_is_greater_and_dovecot_files_follow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let first = next(root).expect("first");
        let second = next(root).expect("second");
        assert!(second > first);
        assert_eq!(
            fs::read_to_string(root.join(FILE)).expect("file"),
            format!("{second:08x}")
        );
        assert!(root.join(format!("{FILE}.{second:08x}")).exists());
        assert!(!root.join(format!("{FILE}.{first:08x}")).exists());

        // Dovecot took values meanwhile (its marker moved on, its file too).
        fs::rename(
            root.join(format!("{FILE}.{second:08x}")),
            root.join(format!("{FILE}.{:08x}", second + 5)),
        )
        .expect("rename");
        let third = next(root).expect("third");
        assert_eq!(third, second + 6);

        // Everything lost: higher than any folder's value on disk.
        fs::remove_file(root.join(FILE)).expect("rm");
        fs::remove_file(root.join(format!("{FILE}.{third:08x}"))).expect("rm");
        fs::write(root.join("dovecot-uidlist"), "3 V4000000000 N1 G0123\n").expect("uidlist");
        assert_eq!(next(root).expect("after loss"), 4_000_000_001);
    }
}
