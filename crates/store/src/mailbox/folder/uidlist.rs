//! Dovecot's `dovecot-uidlist` and its dotlock.

use super::*;

pub(super) fn read_uidlist(dir: &Path) -> Result<Option<UidList>, MailboxError> {
    Ok(read_uidlist_seen(dir)?.map(|(list, _)| list))
}

/// The uidlist and what this process now knows of the file.
pub(super) fn read_uidlist_seen(
    dir: &Path,
) -> Result<Option<(UidList, UidlistSeen)>, MailboxError> {
    let path = dir.join(UIDLIST);
    match fs::read(&path) {
        Ok(contents) => {
            let Some(list) = format::parse_uidlist(&contents) else {
                tracing::warn!(path = %path.display(), "unreadable dovecot-uidlist: UIDs are reassigned");
                return Ok(None);
            };
            let seen = UidlistSeen {
                lines: list.records.len(),
                stale: 0,
                ends_in_newline: contents.last().is_none_or(|&last| last == b'\n'),
            };
            Ok(Some((list, seen)))
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(MailboxError::io(&path, err)),
    }
}

/// Rewrites the whole uidlist; returns what the file now is.
pub(super) fn write_uidlist(dir: &Path, list: &UidList) -> Result<UidlistSeen, MailboxError> {
    let path = dir.join(UIDLIST);
    crate::mailbox::write_atomic(&path, &format::write_uidlist(list))?;
    Ok(UidlistSeen {
        lines: list.records.len(),
        stale: 0,
        ends_in_newline: true,
    })
}

/// Adds records at the end of the uidlist, as Dovecot does for new messages (the header
/// stays: readers take the next UID from the last record when it is higher), and syncs them.
/// `seen` must describe the file as it is now (the caller holds the dotlock).
pub(super) fn append_uidlist(
    dir: &Path,
    seen: &mut UidlistSeen,
    records: &[UidRecord],
) -> Result<(), MailboxError> {
    let path = dir.join(UIDLIST);
    let mut file = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|err| MailboxError::io(&path, err))?;
    let lines = format::write_uid_lines(records);
    file.write_all(&lines)
        .and_then(|()| file.sync_data())
        .map_err(|err| MailboxError::io(&path, err))?;
    seen.lines += records.len();
    Ok(())
}

/// The UIDVALIDITY and the lowest UID no writer has given yet, from the uidlist's header and
/// last line only (two small reads, whatever its length). Every writer, Dovecot included,
/// either appends lines in ascending UID order or rewrites the file with a header `N` above
/// every UID it gave, so the two bound what is in use. `None` when either part cannot be
/// read that way (no file, a line longer than the read, a file cut mid-line): the caller
/// then reads the whole file.
pub(super) fn uidlist_bounds(dir: &Path) -> Result<Option<(u32, u32)>, MailboxError> {
    const HEAD: u64 = 512;
    const TAIL: u64 = 4096;
    let path = dir.join(UIDLIST);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(MailboxError::io(&path, err)),
    };
    let read_at = |file: &mut File, offset: u64, len: u64| -> io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(len).read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    let bounds = (|| -> io::Result<Option<(u32, u32)>> {
        let len = file.metadata()?.len();
        let head = read_at(&mut file, 0, HEAD.min(len))?;
        let Some(header_end) = head.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let tail_start = len.saturating_sub(TAIL);
        let tail = read_at(&mut file, tail_start, len - tail_start)?;
        let Some((b'\n', lines)) = tail.split_last() else {
            return Ok(None);
        };
        let last_start = match lines.iter().rposition(|&b| b == b'\n') {
            Some(at) => tail_start + at as u64 + 1,
            None if tail_start == 0 => 0,
            None => return Ok(None),
        };
        let mut sample = head[..=header_end].to_vec();
        let has_record = last_start > header_end as u64;
        if has_record {
            let from = usize::try_from(last_start - tail_start).unwrap_or(usize::MAX);
            sample.extend_from_slice(tail.get(from..).unwrap_or_default());
        }
        Ok(format::parse_uidlist(&sample)
            .filter(|list| list.records.len() == usize::from(has_record))
            .map(|list| (list.uid_validity, list.next_uid)))
    })();
    bounds.map_err(|err| MailboxError::io(&path, err))
}

/// What this process knows of `dovecot-uidlist` since it last read or wrote it.
/// Kept in the index too, so the first change after a restart need not read the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UidlistSeen {
    /// Records in the file.
    pub(crate) lines: usize,
    /// Records naming messages expunged since.
    pub(crate) stale: usize,
    /// A file cut in the middle of a line cannot be appended to.
    pub(crate) ends_in_newline: bool,
}

impl UidlistSeen {
    /// Whether stale records are numerous enough to rewrite the file without them
    /// (Dovecot compacts at about the same share).
    pub(super) fn wants_compaction(&self) -> bool {
        self.stale.saturating_mul(4) > self.lines
    }
}

/// Identifies one version of a file: replaced or changed, one of these differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    pub(crate) ino: u64,
    pub(crate) len: u64,
    pub(crate) mtime: i128,
}

impl FileId {
    pub(super) fn of(meta: &fs::Metadata) -> FileId {
        FileId {
            ino: meta.ino(),
            len: meta.len(),
            mtime: mtime_ns(meta),
        }
    }

    pub(super) fn len(&self) -> u64 {
        self.len
    }
}

/// Dovecot's dotlock: whoever creates the file holds the lock.
pub(super) struct DotLock(PathBuf);

impl DotLock {
    pub(super) fn acquire(dir: &Path) -> Result<DotLock, MailboxError> {
        DotLock::acquire_within(dir, LOCK_WAIT, &mut std::thread::sleep)
    }

    /// Tries to create the lock file, pausing (5 ms, doubling up to 100 ms) while another
    /// process holds it, until `wait` has been spent pausing. `sleep` does the pausing.
    ///
    /// # Errors
    ///
    /// `LockTimeout` after `wait`; `Io` when the lock path is not a regular file (a
    /// directory or a symbolic link there would never go away by waiting) or a stale lock
    /// cannot be removed.
    pub(super) fn acquire_within(
        dir: &Path,
        wait: Duration,
        sleep: &mut dyn FnMut(Duration),
    ) -> Result<DotLock, MailboxError> {
        let path = dir.join(UIDLIST_LOCK);
        let mut waited = Duration::ZERO;
        let mut pause = LOCK_FIRST_PAUSE;
        loop {
            let err = match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(mut file) => {
                    let _ = writeln!(file, "{}", std::process::id());
                    return Ok(DotLock(path));
                }
                Err(err) => err,
            };
            if err.kind() != io::ErrorKind::AlreadyExists {
                return Err(MailboxError::io(&path, err));
            }
            match fs::symlink_metadata(&path) {
                Ok(meta) if !meta.file_type().is_file() => {
                    return Err(MailboxError::io(
                        &path,
                        io::Error::other(
                            "the lock is not a regular file; remove what is there to unblock the folder",
                        ),
                    ));
                }
                Ok(meta) => {
                    let stale = meta
                        .modified()
                        .ok()
                        .and_then(|time| time.elapsed().ok())
                        .is_some_and(|age| age > STALE_LOCK);
                    if stale {
                        match fs::remove_file(&path) {
                            Ok(()) => continue,
                            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                            Err(err) => return Err(MailboxError::io(&path, err)),
                        }
                    }
                }
                // Released since: the next try takes it.
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(MailboxError::io(&path, err)),
            }
            if waited >= wait {
                return Err(MailboxError::LockTimeout { path });
            }
            sleep(pause);
            waited += pause;
            pause = (pause * 2).min(LOCK_MAX_PAUSE);
        }
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Gives a new folder its `dovecot-uidlist` with the UIDVALIDITY the account allocated,
/// unless it has one already (a folder Dovecot made first).
pub(crate) fn start_uidlist(dir: &Path, uid_validity: u32) -> Result<(), MailboxError> {
    let _lock = DotLock::acquire(dir)?;
    if read_uidlist(dir)?.is_some() {
        return Ok(());
    }
    write_uidlist(
        dir,
        &UidList {
            uid_validity,
            next_uid: 1,
            guid: new_guid(),
            records: Vec::new(),
        },
    )?;
    Ok(())
}

pub(super) fn new_guid() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(32);
    for part in 0..2u64 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_i128(now_ns());
        hasher.write_u32(std::process::id());
        hasher.write_u64(part);
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    /// Pauses are recorded instead of slept: the test sees the back-off, not the clock.
    fn acquire_recording(
        dir: &Path,
        wait: Duration,
    ) -> (Result<DotLock, MailboxError>, Vec<Duration>) {
        let mut pauses = Vec::new();
        let res = DotLock::acquire_within(dir, wait, &mut |pause| pauses.push(pause));
        (res, pauses)
    }

    #[test]
    fn a_held_lock_is_waited_for_with_back_off_then_given_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = DotLock::acquire(dir.path()).expect("first holder");
        let (res, pauses) = acquire_recording(dir.path(), LOCK_WAIT);
        assert!(matches!(res, Err(MailboxError::LockTimeout { .. })));
        assert_eq!(
            &pauses[..6],
            [5, 10, 20, 40, 80, 100].map(Duration::from_millis)
        );
        assert!(pauses.iter().all(|&pause| pause <= LOCK_MAX_PAUSE));
        let total: Duration = pauses.iter().sum();
        assert!(
            total >= LOCK_WAIT && total < LOCK_WAIT + LOCK_MAX_PAUSE,
            "{total:?}"
        );
        drop(held);
        let (res, pauses) = acquire_recording(dir.path(), LOCK_WAIT);
        assert!(res.is_ok());
        assert!(pauses.is_empty());
    }

    #[test]
    fn a_lock_path_that_is_not_a_file_is_an_error_not_a_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(UIDLIST_LOCK);
        // A directory there, fresh and then older than the stale limit.
        fs::create_dir(&path).expect("mkdir");
        for age in [0, 600] {
            let when = SystemTime::now() - Duration::from_secs(age);
            File::open(&path)
                .and_then(|file| file.set_modified(when))
                .expect("mtime");
            let (res, pauses) = acquire_recording(dir.path(), LOCK_WAIT);
            assert!(matches!(res, Err(MailboxError::Io { .. })), "age {age}");
            assert!(pauses.is_empty());
            assert!(path.is_dir(), "never removed");
        }
        fs::remove_dir(&path).expect("rmdir");
        // A symbolic link, even to a file, is not followed or removed either.
        let target = dir.path().join("target");
        fs::write(&target, b"1\n").expect("write");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        let (res, _) = acquire_recording(dir.path(), LOCK_WAIT);
        assert!(matches!(res, Err(MailboxError::Io { .. })));
        assert!(target.exists());
    }

    #[test]
    fn a_stale_lock_file_is_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(UIDLIST_LOCK);
        let file = File::create(&path).expect("create");
        file.set_modified(SystemTime::now() - STALE_LOCK * 2)
            .expect("mtime");
        let (res, pauses) = acquire_recording(dir.path(), LOCK_WAIT);
        assert!(res.is_ok());
        assert!(pauses.is_empty());
    }
}
