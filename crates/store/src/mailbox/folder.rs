//! One open folder: the in-memory state shared by every session, kept in step with the
//! Maildir (the truth) and Dovecot's `dovecot-uidlist`.
//!
//! All I/O runs in `spawn_blocking` with the state mutex held, so calls on one folder are
//! serialised. Sessions read `Arc<Snapshot>`s without locks.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::format::{self, UidList, UidRecord};
use super::index::{self, IndexData};
use super::{
    CacheKey, FlagOperation, MailboxError, MessageMeta, Snapshot, SpecialUse, StoreResult,
    SystemFlags, blocking, lock,
};
use crate::{maildir, quota};

const UIDLIST: &str = "dovecot-uidlist";
const UIDLIST_LOCK: &str = "dovecot-uidlist.lock";
const KEYWORDS: &str = "dovecot-keywords";
const INDEX: &str = "mailstead.index";
/// Directory mtimes this recent may hide a change made in the same clock tick: rescan.
/// File systems with nanosecond timestamps (ext4, XFS, btrfs, tmpfs) stamp from the kernel's
/// coarse clock, a tick of at most 10 ms (HZ=100), so 20 ms covers it; on file systems with
/// whole-second timestamps two seconds are needed (as Dovecot assumes). Under steady load a
/// long slack would mean a full rescan of `cur/` before every command.
const MTIME_SLACK_NS: i128 = 20_000_000;
const MTIME_SLACK_COARSE_NS: i128 = 2_000_000_000;
/// How often a dirty index is written while the folder stays open.
const INDEX_WRITE_INTERVAL: Duration = Duration::from_secs(5);
/// Dovecot overrides a `dovecot-uidlist.lock` older than this.
const STALE_LOCK: Duration = Duration::from_secs(120);
/// How long to wait for `dovecot-uidlist.lock` before answering "try again later" (Dovecot
/// gives up on its dotlocks after about as long).
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// The first pause between two tries; each pause doubles, up to `LOCK_MAX_PAUSE`.
const LOCK_FIRST_PAUSE: Duration = Duration::from_millis(5);
const LOCK_MAX_PAUSE: Duration = Duration::from_millis(100);

/// Values sessions computed from message bytes (envelope, body structure, ...).
type Cache = HashMap<(u32, CacheKey), Arc<[u8]>>;

/// One message as the folder knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) uid: u32,
    /// The file name in `cur/` (or `new/` when it could not be moved).
    pub(crate) name: String,
    pub(crate) in_new: bool,
    pub(crate) flags: SystemFlags,
    pub(crate) keywords: u32,
    pub(crate) modseq: u64,
    /// CRLF size.
    pub(crate) size: u64,
    /// Bytes on disk.
    pub(crate) physical: u64,
    pub(crate) internal_date: i64,
}

impl Entry {
    fn base(&self) -> &str {
        format::base_name(&self.name)
    }
    fn path(&self, dir: &Path) -> PathBuf {
        dir.join(if self.in_new { "new" } else { "cur" })
            .join(&self.name)
    }
    fn meta(&self) -> MessageMeta {
        MessageMeta {
            uid: self.uid,
            flags: self.flags,
            keywords: self.keywords,
            modseq: self.modseq,
            rfc822_size: self.size,
            internal_date: self.internal_date,
        }
    }
}

/// What the directory looked like when the state last matched it (mtimes in ns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) new: i128,
    pub(crate) cur: i128,
    pub(crate) uidlist: i128,
    pub(crate) uidlist_len: u64,
}

#[derive(Default)]
struct State {
    loaded: bool,
    uid_validity: u32,
    next_uid: u32,
    guid: String,
    messages: Vec<Entry>,
    keywords: Vec<String>,
    highest_modseq: u64,
    vanished: Vec<(u64, u32)>,
    stamp: Option<Stamp>,
    /// `stamp` was read right after a change of our own, not by a scan: the directory is as
    /// this state says without scanning it again, even while its mtimes are within the slack.
    stamp_is_own: bool,
    /// No index was found: the first scan decides where \Recent starts.
    recent_unknown: bool,
    dirty: bool,
    last_write: Option<Instant>,
}

impl State {
    fn position(&self, uid: u32) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |e| e.uid).ok()
    }
}

/// An open folder; the same `Arc<Folder>` is shared by every session that selected it.
pub struct Folder {
    inner: Arc<Inner>,
}

/// A weak hold on a folder's state; see [`Folder::revive`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Remains(Weak<Inner>);

impl Remains {
    pub(crate) fn alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

struct Inner {
    name: String,
    special_use: Option<SpecialUse>,
    dir: PathBuf,
    /// The account's Maildir, where `maildirsize` lives.
    root: PathBuf,
    quota: Option<u64>,
    hostname: Arc<str>,
    state: Mutex<State>,
    snapshot: RwLock<Arc<Snapshot>>,
    signal: Arc<watch::Sender<u64>>,
    first_recent: AtomicU32,
    cache: Mutex<Cache>,
    cache_dirty: AtomicBool,
}

impl Folder {
    pub(crate) fn new(
        name: String,
        special_use: Option<SpecialUse>,
        dir: PathBuf,
        root: PathBuf,
        quota: Option<u64>,
        hostname: Arc<str>,
        notifier: &super::notify::Notifier,
    ) -> Folder {
        let (signal, _) = watch::channel(0);
        let signal = Arc::new(signal);
        notifier.register(&dir, &signal);
        Folder {
            inner: Arc::new(Inner {
                name,
                special_use,
                dir,
                root,
                quota,
                hostname,
                // RFC 7162: mod-sequences start at 1, even in an empty folder.
                state: Mutex::new(State {
                    highest_modseq: 1,
                    ..State::default()
                }),
                snapshot: RwLock::new(Arc::new(Snapshot {
                    uid_validity: 0,
                    uid_next: 1,
                    highest_modseq: 1,
                    messages: Vec::new(),
                    keywords: Vec::new(),
                })),
                signal,
                first_recent: AtomicU32::new(1),
                cache: Mutex::new(HashMap::new()),
                cache_dirty: AtomicBool::new(false),
            }),
        }
    }

    /// What stays of this folder while its last handle's index write is pending.
    pub(crate) fn remains(&self) -> Remains {
        Remains(Arc::downgrade(&self.inner))
    }

    /// The folder again from its state in memory, if that still lives (its index being
    /// written after the last handle went): reading the index then could find it older than
    /// that state (modseqs and the expunge log of QRESYNC would go back in time).
    pub(crate) fn revive(remains: &Remains) -> Option<Folder> {
        remains.0.upgrade().map(|inner| Folder { inner })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn special_use(&self) -> Option<SpecialUse> {
        self.inner.special_use
    }

    /// Picks up what changed on disk (deliveries, Dovecot, other processes), gives new
    /// messages UIDs and moves them from `new/` to `cur/`. Cheap when the directories have
    /// not changed.
    ///
    /// # Errors
    ///
    /// `NotFound` when the folder's directory is gone; `Io`; `LockTimeout`.
    pub async fn sync(&self) -> Result<Arc<Snapshot>, MailboxError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut st = lock(&inner.state);
            inner.sync_locked(&mut st)?;
            inner.maybe_write_index(&mut st);
            Ok(inner.current())
        })
        .await
    }

    /// The latest snapshot; no I/O.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current()
    }

    /// Bumps on every change through this folder and on every delivery into it.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.signal.subscribe()
    }

    /// `\Recent`: returns the first UID recent for the caller and claims everything below
    /// `uid_next` for it, so no other session sees those as recent.
    pub fn claim_recent(&self, uid_next: u32) -> u32 {
        self.inner
            .first_recent
            .fetch_max(uid_next, Ordering::AcqRel)
    }

    /// Stores a message (`message` as received, CRLF) and returns its UID once the file, its
    /// directory and `dovecot-uidlist` are on disk.
    ///
    /// # Errors
    ///
    /// `OverQuota`, `TooManyKeywords`, `InvalidKeyword`, `Io`, `LockTimeout`.
    pub async fn append(
        &self,
        message: &[u8],
        flags: SystemFlags,
        keywords: &[String],
        internal_date: Option<i64>,
    ) -> Result<u32, MailboxError> {
        let inner = Arc::clone(&self.inner);
        let message = message.to_vec();
        let keywords = keywords.to_vec();
        blocking(move || {
            let mut st = lock(&inner.state);
            inner.sync_locked(&mut st)?;
            let res = inner.append_locked(&mut st, &message, flags, &keywords, internal_date);
            inner.finish_change(&mut st);
            res
        })
        .await
    }

    /// Changes flags and keywords by renaming files. New keywords get the next free index.
    ///
    /// # Errors
    ///
    /// `TooManyKeywords`, `InvalidKeyword`, `Io`.
    pub async fn store(
        &self,
        uids: &[u32],
        operation: FlagOperation,
        flags: SystemFlags,
        keywords: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<StoreResult, MailboxError> {
        let inner = Arc::clone(&self.inner);
        let uids = uids.to_vec();
        let keywords = keywords.to_vec();
        blocking(move || {
            let mut st = lock(&inner.state);
            inner.sync_locked(&mut st)?;
            let res =
                inner.store_locked(&mut st, &uids, operation, flags, &keywords, unchanged_since);
            inner.finish_change(&mut st);
            res
        })
        .await
    }

    /// Copies messages into `dest` (hard links when possible), keeping flags, keywords (by
    /// name) and the internal date. Returns (source UID, new UID) pairs.
    ///
    /// # Errors
    ///
    /// `OverQuota`, `TooManyKeywords`, `Io`, `LockTimeout`.
    pub async fn copy_to(
        &self,
        uids: &[u32],
        dest: &Folder,
    ) -> Result<Vec<(u32, u32)>, MailboxError> {
        let source = Arc::clone(&self.inner);
        let uids = uids.to_vec();
        let items = blocking(move || {
            let mut st = lock(&source.state);
            source.sync_locked(&mut st)?;
            Ok(source.copy_items(&st, &uids))
        })
        .await?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let dest_inner = Arc::clone(&dest.inner);
        blocking(move || {
            let mut st = lock(&dest_inner.state);
            dest_inner.sync_locked(&mut st)?;
            let res = dest_inner.receive_copies(&mut st, items);
            dest_inner.finish_change(&mut st);
            res
        })
        .await
    }

    /// Copies, then removes the originals (they vanish from this folder).
    ///
    /// # Errors
    ///
    /// As [`Folder::copy_to`]; `Io` when an original cannot be removed.
    pub async fn move_to(
        &self,
        uids: &[u32],
        dest: &Folder,
    ) -> Result<Vec<(u32, u32)>, MailboxError> {
        let pairs = self.copy_to(uids, dest).await?;
        let moved: Vec<u32> = pairs.iter().map(|&(uid, _)| uid).collect();
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut st = lock(&inner.state);
            let res = inner.remove_messages(&mut st, &moved);
            inner.finish_change(&mut st);
            res
        })
        .await?;
        Ok(pairs)
    }

    /// Removes `\Deleted` messages (only among `uids` when given); returns the UIDs removed.
    ///
    /// # Errors
    ///
    /// `Io`, `LockTimeout`.
    pub async fn expunge(&self, uids: Option<&[u32]>) -> Result<Vec<u32>, MailboxError> {
        let inner = Arc::clone(&self.inner);
        let only: Option<HashSet<u32>> = uids.map(|uids| uids.iter().copied().collect());
        blocking(move || {
            let mut st = lock(&inner.state);
            inner.sync_locked(&mut st)?;
            let targets: Vec<u32> = st
                .messages
                .iter()
                .filter(|e| e.flags.contains(SystemFlags::DELETED))
                .filter(|e| only.as_ref().is_none_or(|only| only.contains(&e.uid)))
                .map(|e| e.uid)
                .collect();
            let res = inner.remove_messages(&mut st, &targets);
            inner.finish_change(&mut st);
            res
        })
        .await
    }

    /// The stored bytes (LF line endings); `None` once the message is expunged.
    ///
    /// # Errors
    ///
    /// `Io` when the file exists but cannot be read.
    pub async fn read(&self, uid: u32) -> Result<Option<Vec<u8>>, MailboxError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            for attempt in 0..3 {
                let path = {
                    let mut st = lock(&inner.state);
                    if attempt > 0 {
                        // Renamed (flags) or removed since: look again.
                        inner.full_scan(&mut st)?;
                        inner.publish(&st, true);
                    }
                    match st.position(uid).and_then(|i| st.messages.get(i)) {
                        Some(entry) => entry.path(&inner.dir),
                        None => return Ok(None),
                    }
                };
                match read_message_file(&path) {
                    Ok(bytes) => return Ok(Some(bytes)),
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(MailboxError::io(&path, err)),
                }
            }
            Ok(None)
        })
        .await
    }

    /// UIDs expunged with a modseq above `modseq` (QRESYNC).
    pub fn vanished_since(&self, modseq: u64) -> Vec<u32> {
        let st = lock(&self.inner.state);
        let mut uids: Vec<u32> = st
            .vanished
            .iter()
            .filter(|&&(m, _)| m > modseq)
            .map(|&(_, uid)| uid)
            .collect();
        uids.sort_unstable();
        uids
    }

    pub fn cached(&self, uid: u32, key: CacheKey) -> Option<Arc<[u8]>> {
        lock(&self.inner.cache).get(&(uid, key)).cloned()
    }

    pub fn cache(&self, uid: u32, key: CacheKey, value: Arc<[u8]>) {
        lock(&self.inner.cache).insert((uid, key), value);
        self.inner.cache_dirty.store(true, Ordering::Release);
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let inner = Arc::clone(&self.inner);
        let write = move || {
            let mut st = lock(&inner.state);
            if st.dirty || inner.cache_dirty.load(Ordering::Acquire) {
                inner.write_index(&mut st);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(write);
            }
            Err(_) => write(),
        }
    }
}

fn mtime_ns(meta: &fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

fn names_in(dir: &Path) -> Result<Vec<String>, MailboxError> {
    let entries = fs::read_dir(dir).map_err(|err| MailboxError::io(dir, err))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| MailboxError::io(dir, err))?;
        // Names that are not UTF-8 cannot be in a uidlist Dovecot wrote either; skip them.
        if let Ok(name) = entry.file_name().into_string()
            && !name.starts_with('.')
        {
            names.push(name);
        }
    }
    Ok(names)
}

/// Creates `dir` with `cur/`, `new/`, `tmp/` if missing.
pub(crate) fn ensure_maildir(dir: &Path) -> Result<(), MailboxError> {
    maildir::ensure_maildir(dir).map_err(MailboxError::from)
}

/// RENAME INBOX: every message file of `from` goes into `to` (which gets new UIDs).
pub(crate) fn move_all_files(from: &Path, to: &Path) -> Result<(), MailboxError> {
    for sub in ["cur", "new"] {
        let source = from.join(sub);
        for name in names_in(&source)? {
            let target = to.join(sub).join(&name);
            match fs::rename(source.join(&name), &target) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(MailboxError::io(&target, err)),
            }
        }
    }
    Ok(())
}

fn read_uidlist(dir: &Path) -> Result<Option<UidList>, MailboxError> {
    let path = dir.join(UIDLIST);
    match fs::read(&path) {
        Ok(contents) => {
            let list = format::parse_uidlist(&contents);
            if list.is_none() {
                tracing::warn!(path = %path.display(), "unreadable dovecot-uidlist: UIDs are reassigned");
            }
            Ok(list)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(MailboxError::io(&path, err)),
    }
}

fn write_uidlist(dir: &Path, list: &UidList) -> Result<(), MailboxError> {
    super::write_atomic(&dir.join(UIDLIST), &format::write_uidlist(list))
}

/// Dovecot's dotlock: whoever creates the file holds the lock.
struct DotLock(PathBuf);

impl DotLock {
    fn acquire(dir: &Path) -> Result<DotLock, MailboxError> {
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
    fn acquire_within(
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

fn new_guid() -> String {
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

/// CRLF to LF, as Dovecot stores with `mail_save_crlf = no`; returns (bytes, CRLF size).
fn to_stored(message: &[u8]) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(message.len());
    let mut iter = message.iter().peekable();
    while let Some(&b) = iter.next() {
        if b == b'\r' && iter.peek() == Some(&&b'\n') {
            continue;
        }
        out.push(b);
    }
    let lines = out.iter().filter(|&&b| b == b'\n').count() as u64;
    let vsize = out.len() as u64 + lines;
    (out, vsize)
}

/// Opens a message file that is a regular file, never through a symbolic link: the file
/// opened must be the one `lstat` saw, so a link swapped in between is caught too.
fn open_message_file(path: &Path) -> io::Result<File> {
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

fn read_message_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut open_message_file(path)?, &mut bytes)?;
    Ok(bytes)
}

/// The CRLF size of a stored file without `W=` in its name.
fn count_vsize(path: &Path) -> Option<u64> {
    let bytes = read_message_file(path).ok()?;
    let lf = bytes.iter().filter(|&&b| b == b'\n').count();
    let crlf = bytes.windows(2).filter(|w| w == b"\r\n").count();
    Some((bytes.len() + lf - crlf) as u64)
}

/// What a copy needs of a source message.
struct CopyItem {
    uid: u32,
    path: PathBuf,
    base: String,
    flags: SystemFlags,
    keywords: Vec<String>,
    physical: u64,
    size: u64,
    internal_date: i64,
}

impl Inner {
    fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(snapshot) => Arc::clone(&snapshot),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn publish(&self, st: &State, changed: bool) {
        if !changed {
            return;
        }
        let snapshot = Arc::new(Snapshot {
            uid_validity: st.uid_validity,
            uid_next: st.next_uid.max(1),
            highest_modseq: st.highest_modseq,
            messages: st.messages.iter().map(Entry::meta).collect(),
            keywords: st.keywords.clone(),
        });
        match self.snapshot.write() {
            Ok(mut slot) => *slot = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
        self.signal
            .send_modify(|serial| *serial = serial.wrapping_add(1));
    }

    /// After an operation: the stamp covers our own writes. Under steady load a session
    /// changes its folder every few commands; rescanning `cur/` after each of our own changes
    /// (because the mtime is within the slack) would cost more than the command. The price:
    /// another process's change in the same clock tick as ours is seen at the folder's next
    /// change or rescan, not at once.
    fn finish_change(&self, st: &mut State) {
        if st.stamp.is_some()
            && let Ok(stamp) = self.read_stamp()
            && st.stamp != Some(stamp)
        {
            st.stamp = Some(stamp);
            st.stamp_is_own = true;
            st.dirty = true;
        }
        self.maybe_write_index(st);
    }

    fn read_stamp(&self) -> Result<Stamp, MailboxError> {
        let stat = |sub: &str| -> Result<i128, MailboxError> {
            let path = self.dir.join(sub);
            match fs::metadata(&path) {
                Ok(meta) => Ok(mtime_ns(&meta)),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    Err(MailboxError::NotFound(self.name.clone()))
                }
                Err(err) => Err(MailboxError::io(&path, err)),
            }
        };
        let (uidlist, uidlist_len) = match fs::metadata(self.dir.join(UIDLIST)) {
            Ok(meta) => (mtime_ns(&meta), meta.len()),
            Err(_) => (0, 0),
        };
        Ok(Stamp {
            new: stat("new")?,
            cur: stat("cur")?,
            uidlist,
            uidlist_len,
        })
    }

    fn load_index(&self, st: &mut State) {
        st.loaded = true;
        st.recent_unknown = true;
        let Ok(bytes) = fs::read(self.dir.join(INDEX)) else {
            return;
        };
        let Some(data) = index::decode(&bytes) else {
            tracing::info!(dir = %self.dir.display(), "ignoring a damaged mailstead.index");
            return;
        };
        st.uid_validity = data.uid_validity;
        st.next_uid = data.next_uid;
        st.guid = data.guid;
        st.highest_modseq = data.highest_modseq.max(1);
        st.keywords = data.keywords;
        st.messages = data.messages;
        st.vanished = data.vanished;
        st.stamp = Some(data.stamp);
        st.recent_unknown = false;
        st.last_write = Some(Instant::now());
        self.first_recent
            .store(data.first_recent.max(1), Ordering::Release);
        let mut cache = lock(&self.cache);
        for (uid, key, value) in data.cache {
            cache.insert((uid, key), value);
        }
    }

    fn write_index(&self, st: &mut State) {
        let mut data = IndexData {
            uid_validity: st.uid_validity,
            next_uid: st.next_uid,
            highest_modseq: st.highest_modseq,
            first_recent: self.first_recent.load(Ordering::Acquire),
            guid: st.guid.clone(),
            stamp: st.stamp.unwrap_or_default(),
            keywords: st.keywords.clone(),
            messages: std::mem::take(&mut st.messages),
            vanished: std::mem::take(&mut st.vanished),
            cache: lock(&self.cache)
                .iter()
                .map(|(&(uid, key), value)| (uid, key, Arc::clone(value)))
                .collect(),
        };
        self.cache_dirty.store(false, Ordering::Release);
        let bytes = index::encode(&data);
        st.messages = std::mem::take(&mut data.messages);
        st.vanished = std::mem::take(&mut data.vanished);
        // The index is a cache: no fsync, and a failure only costs a rescan next time.
        let path = self.dir.join(INDEX);
        let tmp = self
            .dir
            .join(format!("{INDEX}.{}.tmp", super::unique_suffix()));
        let res = fs::write(&tmp, &bytes).and_then(|()| fs::rename(&tmp, &path));
        if let Err(err) = res {
            let _ = fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), cause = %err, "cannot write the index");
        }
        st.dirty = false;
        st.last_write = Some(Instant::now());
    }

    fn maybe_write_index(&self, st: &mut State) {
        let due = st
            .last_write
            .is_none_or(|at| at.elapsed() >= INDEX_WRITE_INTERVAL);
        if due && (st.dirty || self.cache_dirty.load(Ordering::Acquire)) {
            self.write_index(st);
        }
    }

    fn sync_locked(&self, st: &mut State) -> Result<(), MailboxError> {
        if !st.loaded {
            self.load_index(st);
            // Whatever the index says, the first publish must happen.
            let changed = self.sync_stamped(st)?;
            self.publish(st, true);
            let _ = changed;
            return Ok(());
        }
        let changed = self.sync_stamped(st)?;
        self.publish(st, changed);
        Ok(())
    }

    /// Rescans unless the stamp says nothing changed.
    fn sync_stamped(&self, st: &mut State) -> Result<bool, MailboxError> {
        let stamp = self.read_stamp()?;
        let now = now_ns();
        let times = [stamp.new, stamp.cur, stamp.uidlist];
        let slack = if times.iter().all(|&t| t % 1_000_000_000 == 0) {
            MTIME_SLACK_COARSE_NS
        } else {
            MTIME_SLACK_NS
        };
        let settled = times.iter().all(|&t| now - t >= slack);
        if st.stamp == Some(stamp) && (settled || st.stamp_is_own) && st.uid_validity != 0 {
            return Ok(false);
        }
        st.stamp_is_own = false;
        self.full_scan(st)
    }

    /// Reconciles the state with the directory and the uidlist. Returns whether anything
    /// changed.
    fn full_scan(&self, st: &mut State) -> Result<bool, MailboxError> {
        let dir = &self.dir;
        if !dir.join("cur").is_dir() {
            return Err(MailboxError::NotFound(self.name.clone()));
        }
        let mut changed = false;
        if let Ok(contents) = fs::read(dir.join(KEYWORDS)) {
            let from_file = format::parse_keywords(&contents);
            for (i, name) in from_file.into_iter().enumerate() {
                if name.is_empty() {
                    continue;
                }
                if st.keywords.len() <= i {
                    st.keywords.resize(i + 1, String::new());
                }
                if st.keywords.get(i) != Some(&name) {
                    if let Some(slot) = st.keywords.get_mut(i) {
                        *slot = name;
                    }
                    changed = true;
                }
            }
        }

        let files = self.list_files()?;
        let list = read_uidlist(dir)?;
        if let Some(list) = &list
            && st.uid_validity != 0
            && list.uid_validity != st.uid_validity
        {
            tracing::warn!(dir = %dir.display(), "UIDVALIDITY changed on disk: every UID is new");
            st.messages.clear();
            st.vanished.clear();
            changed = true;
        }
        let mut uid_of: HashMap<&str, u32> = HashMap::with_capacity(files.len());
        match &list {
            Some(list) => {
                for record in &list.records {
                    uid_of.insert(record.base.as_str(), record.uid);
                }
                st.uid_validity = list.uid_validity;
                st.next_uid = st.next_uid.max(list.next_uid);
                st.guid.clone_from(&list.guid);
            }
            // No uidlist: keep what we knew (it is rewritten below).
            None => {
                for entry in &st.messages {
                    uid_of.insert(entry.base(), entry.uid);
                }
            }
        }
        let vanished: HashSet<u32> = st.vanished.iter().map(|&(_, uid)| uid).collect();
        let mut numbered: Vec<(u32, usize)> = Vec::with_capacity(files.len());
        let mut unassigned_at: Vec<usize> = Vec::new();
        for (i, (name, _)) in files.iter().enumerate() {
            match uid_of.get(format::base_name(name)) {
                Some(&uid) if !vanished.contains(&uid) => numbered.push((uid, i)),
                _ => unassigned_at.push(i),
            }
        }
        drop(uid_of);
        numbered.sort_unstable_by_key(|&(uid, _)| uid);
        let mut files = files;
        let mut take = |i: usize| files.get_mut(i).map(std::mem::take);
        let mut by_uid: Vec<(u32, (String, bool))> = Vec::with_capacity(numbered.len());
        let mut unassigned: Vec<(String, bool)> = Vec::new();
        for (uid, i) in numbered {
            let Some(file) = take(i) else { continue };
            // A corrupt uidlist could give two names one UID: the second gets a new one.
            if by_uid.last().is_some_and(|&(last, _)| last == uid) {
                unassigned.push(file);
            } else {
                by_uid.push((uid, file));
            }
        }
        unassigned.extend(unassigned_at.into_iter().filter_map(&mut take));

        let modseq = st.highest_modseq + 1;
        let old = std::mem::take(&mut st.messages);
        let mut messages = Vec::with_capacity(by_uid.len() + unassigned.len());
        let mut missing = Vec::new();
        let mut old_iter = old.into_iter().peekable();
        for (uid, (name, in_new)) in by_uid {
            while let Some(entry) = old_iter.next_if(|e| e.uid < uid) {
                missing.push(entry);
            }
            match old_iter.next_if(|e| e.uid == uid) {
                Some(mut entry) => {
                    if entry.name != name || entry.in_new != in_new {
                        let (flags, keywords, _) = format::parse_info(&name);
                        if flags != entry.flags || keywords != entry.keywords {
                            entry.flags = flags;
                            entry.keywords = keywords;
                            entry.modseq = modseq;
                            changed = true;
                        }
                        entry.name = name;
                        entry.in_new = in_new;
                    }
                    messages.push(entry);
                }
                None => {
                    if let Some(entry) = self.new_entry(uid, name, in_new, modseq) {
                        messages.push(entry);
                        changed = true;
                    }
                }
            }
        }
        missing.extend(old_iter);
        if !missing.is_empty() {
            // readdir(3) can miss a file renamed while it runs (a flag change by another
            // process): look once more before calling anything expunged, since an expunge
            // is final.
            let again: HashMap<String, String> = names_in(&dir.join("cur"))?
                .into_iter()
                .map(|name| (format::base_name(&name).to_owned(), name))
                .collect();
            let mut restored = false;
            for mut entry in missing {
                if let Some(name) = again.get(entry.base()) {
                    let (flags, keywords, _) = format::parse_info(name);
                    if flags != entry.flags || keywords != entry.keywords {
                        entry.flags = flags;
                        entry.keywords = keywords;
                        entry.modseq = modseq;
                        changed = true;
                    }
                    entry.name.clone_from(name);
                    entry.in_new = false;
                    messages.push(entry);
                    restored = true;
                    continue;
                }
                changed = true;
                st.vanished.push((modseq, entry.uid));
                lock(&self.cache).retain(|&(uid, _), _| uid != entry.uid);
            }
            if restored {
                messages.sort_by_key(|e| e.uid);
            }
        }
        st.messages = messages;

        let list_missing = list.is_none();
        if !unassigned.is_empty() || list_missing {
            if st.recent_unknown {
                let first = if list_missing { 1 } else { st.next_uid };
                self.first_recent.store(first.max(1), Ordering::Release);
            }
            let names: Vec<String> = unassigned.iter().map(|(name, _)| name.clone()).collect();
            let uids = self.assign_uids(st, &names)?;
            for ((name, in_new), uid) in unassigned.into_iter().zip(uids) {
                if st.position(uid).is_some() {
                    continue;
                }
                if let Some(entry) = self.new_entry(uid, name, in_new, modseq) {
                    st.messages.push(entry);
                    changed = true;
                }
            }
            st.messages.sort_by_key(|e| e.uid);
        }
        st.recent_unknown = false;
        if changed {
            st.highest_modseq = modseq;
            st.dirty = true;
        }
        let stamp = Some(self.read_stamp()?);
        // The index must learn the new stamp too, or the next open rescans again.
        if st.stamp != stamp {
            st.stamp = stamp;
            st.dirty = true;
        }
        Ok(changed)
    }

    /// Files in `new/` (moved to `cur/` on the way) and `cur/`, by base name.
    /// Message files as (name, in `new/`): `new/` is moved to `cur/` first, so a file that
    /// stays in `new/` is one that could not be moved.
    fn list_files(&self) -> Result<Vec<(String, bool)>, MailboxError> {
        let dir = &self.dir;
        let mut stuck = Vec::new();
        for name in names_in(&dir.join("new"))? {
            let target = if name.contains(':') {
                name.clone()
            } else {
                format!("{name}:2,")
            };
            match fs::rename(dir.join("new").join(&name), dir.join("cur").join(&target)) {
                // Moved, or someone else moved it: either way it is in cur/, read below.
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(_) => stuck.push(name),
            }
        }
        let mut files: Vec<(String, bool)> = names_in(&dir.join("cur"))?
            .into_iter()
            .map(|name| (name, false))
            .collect();
        if !stuck.is_empty() {
            let in_cur: HashSet<String> = files
                .iter()
                .map(|(name, _)| format::base_name(name).to_owned())
                .collect();
            for name in stuck {
                if !in_cur.contains(format::base_name(&name)) {
                    files.push((name, true));
                }
            }
        }
        Ok(files)
    }

    fn new_entry(&self, uid: u32, name: String, in_new: bool, modseq: u64) -> Option<Entry> {
        let path = self
            .dir
            .join(if in_new { "new" } else { "cur" })
            .join(&name);
        // A message file that is a symbolic link (to another user's mail, to /etc/shadow)
        // gets no UID: it is never read.
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        let base = format::base_name(&name);
        let size = match format::size_field(base, 'W') {
            Some(size) => size,
            None => count_vsize(&path)?,
        };
        let (flags, keywords, _) = format::parse_info(&name);
        Some(Entry {
            uid,
            physical: meta.len(),
            internal_date: meta.mtime(),
            name,
            in_new,
            flags,
            keywords,
            modseq,
            size,
        })
    }

    /// Gives UIDs to files (by name) under the uidlist lock, in order, and writes the
    /// uidlist. Files someone else numbered meanwhile keep that number.
    fn assign_uids(&self, st: &mut State, names: &[String]) -> Result<Vec<u32>, MailboxError> {
        let _lock = DotLock::acquire(&self.dir)?;
        let mut list = match read_uidlist(&self.dir)? {
            Some(list) if st.uid_validity == 0 || list.uid_validity == st.uid_validity => list,
            _ => UidList {
                uid_validity: if st.uid_validity != 0 {
                    st.uid_validity
                } else {
                    u32::try_from(now_ns() / 1_000_000_000).unwrap_or(1).max(1)
                },
                next_uid: st.next_uid.max(1),
                guid: if st.guid.is_empty() {
                    new_guid()
                } else {
                    st.guid.clone()
                },
                records: st
                    .messages
                    .iter()
                    .map(|e| UidRecord {
                        uid: e.uid,
                        base: e.base().to_owned(),
                    })
                    .collect(),
            },
        };
        // Only the bases asked for: the uidlist may hold 100,000 lines.
        let wanted: HashSet<&str> = names.iter().map(|n| format::base_name(n)).collect();
        let existing: HashMap<String, u32> = list
            .records
            .iter()
            .filter(|r| wanted.contains(r.base.as_str()))
            .map(|r| (r.base.clone(), r.uid))
            .collect();
        let vanished: HashSet<u32> = st.vanished.iter().map(|&(_, uid)| uid).collect();
        let mut order: Vec<usize> = (0..names.len()).collect();
        // Arrival order, as Dovecot numbers new mail: seconds, then microseconds, compared as
        // numbers (as text, `M100000` would sort before `M5`), then the name.
        order.sort_by_cached_key(|&i| names.get(i).map(|name| arrival_key(name)));
        let mut uids = vec![0u32; names.len()];
        list.next_uid = list.next_uid.max(st.next_uid).max(1);
        for i in order {
            let Some(name) = names.get(i) else { continue };
            let base = format::base_name(name);
            let uid = match existing.get(base) {
                Some(&uid) if !vanished.contains(&uid) && st.position(uid).is_none() => uid,
                _ => {
                    let uid = list.next_uid;
                    list.next_uid = list.next_uid.saturating_add(1);
                    if existing.contains_key(base) {
                        list.records.retain(|r| r.base != base);
                    }
                    list.records.push(UidRecord {
                        uid,
                        base: base.to_owned(),
                    });
                    uid
                }
            };
            if let Some(slot) = uids.get_mut(i) {
                *slot = uid;
            }
        }
        list.records.sort_by_key(|r| r.uid);
        write_uidlist(&self.dir, &list)?;
        st.uid_validity = list.uid_validity;
        st.next_uid = list.next_uid;
        st.guid = list.guid;
        Ok(uids)
    }

    /// Keyword names to bits, adding new names to `dovecot-keywords` when `create`.
    fn keyword_bits(
        &self,
        st: &mut State,
        names: &[String],
        create: bool,
    ) -> Result<u32, MailboxError> {
        let mut bits = 0u32;
        let mut added = false;
        for name in names {
            if !format::valid_keyword(name) {
                return Err(MailboxError::InvalidKeyword(name.clone()));
            }
            let index = match st.keywords.iter().position(|k| k == name) {
                Some(index) => index,
                None if !create => continue,
                None => {
                    let free = st.keywords.iter().position(String::is_empty);
                    let index = free.unwrap_or(st.keywords.len());
                    if index >= super::MAX_KEYWORDS {
                        return Err(MailboxError::TooManyKeywords(name.clone()));
                    }
                    if index == st.keywords.len() {
                        st.keywords.push(name.clone());
                    } else if let Some(slot) = st.keywords.get_mut(index) {
                        slot.clone_from(name);
                    }
                    added = true;
                    index
                }
            };
            bits |= 1 << index;
        }
        if added {
            super::write_atomic(
                &self.dir.join(KEYWORDS),
                &format::write_keywords(&st.keywords),
            )?;
        }
        Ok(bits)
    }

    fn append_locked(
        &self,
        st: &mut State,
        message: &[u8],
        flags: SystemFlags,
        keywords: &[String],
        internal_date: Option<i64>,
    ) -> Result<u32, MailboxError> {
        let keyword_bits = self.keyword_bits(st, keywords, true)?;
        let (stored, vsize) = to_stored(message);
        let physical = stored.len() as u64;
        let quota_state = quota::check(&self.root, self.quota, physical)?;
        let tmp_dir = self.dir.join("tmp");
        let (tmp, base) = loop {
            let base = maildir::new_name(&maildir::unique_name(&self.hostname), physical, vsize);
            let tmp = tmp_dir.join(&base);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
            {
                Ok(mut file) => {
                    let res = file.write_all(&stored).and_then(|()| {
                        if let Some(date) = internal_date {
                            let when =
                                UNIX_EPOCH + Duration::from_secs(u64::try_from(date).unwrap_or(0));
                            file.set_modified(when)?;
                        }
                        file.sync_all()
                    });
                    if let Err(err) = res {
                        let _ = fs::remove_file(&tmp);
                        return Err(MailboxError::io(&tmp, err));
                    }
                    break (tmp, base);
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(MailboxError::io(&tmp, err)),
            }
        };
        let name = format::file_name(&base, flags, keyword_bits, "");
        let cur = self.dir.join("cur");
        let target = cur.join(&name);
        let res = fs::hard_link(&tmp, &target);
        let _ = fs::remove_file(&tmp);
        res.map_err(|err| MailboxError::io(&target, err))?;
        maildir::sync_dir(&cur).map_err(|err| MailboxError::io(&cur, err))?;
        let uid = match self.assign_uids(st, std::slice::from_ref(&name)) {
            Ok(uids) => uids.first().copied().unwrap_or(0),
            Err(err) => {
                // Without a UID the message would surface later as if delivered: undo.
                let _ = fs::remove_file(&target);
                return Err(err);
            }
        };
        if let Some(state) = quota_state
            && let Err(err) = quota::record(&self.root, &state, physical, self.quota)
        {
            tracing::warn!(root = %self.root.display(), cause = %err, "cannot update maildirsize");
        }
        st.highest_modseq += 1;
        let internal_date = fs::metadata(&target).map_or(0, |m| m.mtime());
        st.messages.push(Entry {
            uid,
            name,
            in_new: false,
            flags,
            keywords: keyword_bits,
            modseq: st.highest_modseq,
            size: vsize,
            physical,
            internal_date,
        });
        st.messages.sort_by_key(|e| e.uid);
        st.dirty = true;
        self.publish(st, true);
        Ok(uid)
    }

    fn store_locked(
        &self,
        st: &mut State,
        uids: &[u32],
        operation: FlagOperation,
        flags: SystemFlags,
        keywords: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<StoreResult, MailboxError> {
        let keyword_bits = self.keyword_bits(st, keywords, operation != FlagOperation::Remove)?;
        let modseq = st.highest_modseq + 1;
        let mut result = StoreResult::default();
        let mut pending: Vec<u32> = uids.to_vec();
        for attempt in 0..2 {
            let mut retry = Vec::new();
            for &uid in &pending {
                let Some(index) = st.position(uid) else {
                    continue;
                };
                let Some(entry) = st.messages.get_mut(index) else {
                    continue;
                };
                if unchanged_since.is_some_and(|since| entry.modseq > since) {
                    result.modified.push(uid);
                    continue;
                }
                let (new_flags, new_keywords) = match operation {
                    FlagOperation::Add => (entry.flags.union(flags), entry.keywords | keyword_bits),
                    FlagOperation::Remove => {
                        let mut f = entry.flags;
                        f.remove(flags);
                        (f, entry.keywords & !keyword_bits)
                    }
                    FlagOperation::Replace => (flags, keyword_bits),
                };
                if new_flags == entry.flags && new_keywords == entry.keywords {
                    continue;
                }
                let (_, _, other) = format::parse_info(&entry.name);
                let name = format::file_name(entry.base(), new_flags, new_keywords, &other);
                let from = entry.path(&self.dir);
                let to = self.dir.join("cur").join(&name);
                match fs::rename(&from, &to) {
                    Ok(()) => {
                        entry.name = name;
                        entry.in_new = false;
                        entry.flags = new_flags;
                        entry.keywords = new_keywords;
                        entry.modseq = modseq;
                        result.updated.push(uid);
                    }
                    Err(err) if err.kind() == io::ErrorKind::NotFound => retry.push(uid),
                    Err(err) => return Err(MailboxError::io(&from, err)),
                }
            }
            if retry.is_empty() || attempt == 1 {
                break;
            }
            // Renamed by someone else since our last look: rescan and try those again.
            if self.full_scan(st)? {
                self.publish(st, true);
            }
            pending = retry;
        }
        if !result.updated.is_empty() {
            st.highest_modseq = st.highest_modseq.max(modseq);
            // A rescan in between may have used this modseq already; that is harmless.
            st.dirty = true;
            self.publish(st, true);
        }
        result.updated.sort_unstable();
        result.modified.sort_unstable();
        Ok(result)
    }

    fn copy_items(&self, st: &State, uids: &[u32]) -> Vec<CopyItem> {
        let mut items = Vec::with_capacity(uids.len());
        for &uid in uids {
            let Some(entry) = st.position(uid).and_then(|i| st.messages.get(i)) else {
                continue;
            };
            let keywords = (0..super::MAX_KEYWORDS)
                .filter(|&bit| entry.keywords & (1 << bit) != 0)
                .filter_map(|bit| st.keywords.get(bit))
                .filter(|k| !k.is_empty())
                .cloned()
                .collect();
            items.push(CopyItem {
                uid,
                path: entry.path(&self.dir),
                base: entry.base().to_owned(),
                flags: entry.flags,
                keywords,
                physical: entry.physical,
                size: entry.size,
                internal_date: entry.internal_date,
            });
        }
        items
    }

    fn receive_copies(
        &self,
        st: &mut State,
        items: Vec<CopyItem>,
    ) -> Result<Vec<(u32, u32)>, MailboxError> {
        let total: u64 = items.iter().map(|i| i.physical).sum();
        let quota_state = quota::check(&self.root, self.quota, total)?;
        let cur = self.dir.join("cur");
        let mut placed: Vec<(u32, String, SystemFlags, u32, u64, u64, i64)> = Vec::new();
        let undo = |placed: &[(u32, String, SystemFlags, u32, u64, u64, i64)]| {
            for p in placed {
                let _ = fs::remove_file(cur.join(&p.1));
            }
        };
        for item in &items {
            let bits = match self.keyword_bits(st, &item.keywords, true) {
                Ok(bits) => bits,
                Err(err) => {
                    undo(&placed);
                    return Err(err);
                }
            };
            let base = maildir::new_name(
                &maildir::unique_name(&self.hostname),
                item.physical,
                item.size,
            );
            let name = format::file_name(&base, item.flags, bits, "");
            let target = cur.join(&name);
            if let Err(err) = place_copy(item, &target) {
                undo(&placed);
                return Err(err);
            }
            placed.push((
                item.uid,
                name,
                item.flags,
                bits,
                item.size,
                item.physical,
                item.internal_date,
            ));
        }
        if let Err(err) = maildir::sync_dir(&cur) {
            undo(&placed);
            return Err(MailboxError::io(&cur, err));
        }
        let names: Vec<String> = placed.iter().map(|p| p.1.clone()).collect();
        let uids = match self.assign_uids(st, &names) {
            Ok(uids) => uids,
            Err(err) => {
                undo(&placed);
                return Err(err);
            }
        };
        if let Some(state) = quota_state
            && let Err(err) = quota::record(&self.root, &state, total, self.quota)
        {
            tracing::warn!(root = %self.root.display(), cause = %err, "cannot update maildirsize");
        }
        st.highest_modseq += 1;
        let mut pairs = Vec::with_capacity(placed.len());
        for (p, uid) in placed.into_iter().zip(uids) {
            pairs.push((p.0, uid));
            st.messages.push(Entry {
                uid,
                name: p.1,
                in_new: false,
                flags: p.2,
                keywords: p.3,
                modseq: st.highest_modseq,
                size: p.4,
                physical: p.5,
                internal_date: p.6,
            });
        }
        st.messages.sort_by_key(|e| e.uid);
        st.dirty = true;
        self.publish(st, true);
        Ok(pairs)
    }

    /// Unlinks messages and forgets them (expunge, move); returns the UIDs removed.
    fn remove_messages(&self, st: &mut State, uids: &[u32]) -> Result<Vec<u32>, MailboxError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let modseq = st.highest_modseq + 1;
        let mut removed: Vec<(u32, u64)> = Vec::new();
        let mut retry = Vec::new();
        for attempt in 0..2 {
            let list = if attempt == 0 {
                uids.to_vec()
            } else {
                std::mem::take(&mut retry)
            };
            for uid in list {
                let Some(entry) = st.position(uid).and_then(|i| st.messages.get(i)) else {
                    continue;
                };
                let path = entry.path(&self.dir);
                match fs::remove_file(&path) {
                    Ok(()) => removed.push((uid, entry.physical)),
                    Err(err) if err.kind() == io::ErrorKind::NotFound && attempt == 0 => {
                        retry.push(uid);
                    }
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(MailboxError::io(&path, err)),
                }
            }
            if retry.is_empty() {
                break;
            }
            // Renamed meanwhile: find the current names.
            self.full_scan(st)?;
        }
        let gone: HashSet<u32> = removed.iter().map(|&(uid, _)| uid).collect();
        // A rescan may have seen some of them vanish already.
        let before = st.messages.len();
        st.messages.retain(|e| !gone.contains(&e.uid));
        if st.messages.len() == before && gone.is_empty() {
            return Ok(Vec::new());
        }
        st.highest_modseq = st.highest_modseq.max(modseq);
        for &(uid, _) in &removed {
            st.vanished.push((st.highest_modseq, uid));
        }
        lock(&self.cache).retain(|&(uid, _), _| !gone.contains(&uid));
        let cur = self.dir.join("cur");
        maildir::sync_dir(&cur).map_err(|err| MailboxError::io(&cur, err))?;
        {
            let _lock = DotLock::acquire(&self.dir)?;
            if let Some(mut list) = read_uidlist(&self.dir)? {
                list.records.retain(|r| !gone.contains(&r.uid));
                write_uidlist(&self.dir, &list)?;
            }
        }
        self.record_quota_removal(&removed);
        st.dirty = true;
        self.publish(st, true);
        let mut uids: Vec<u32> = gone.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Maildir++: one negative line per removal, when the account keeps `maildirsize`.
    fn record_quota_removal(&self, removed: &[(u32, u64)]) {
        let path = self.root.join("maildirsize");
        if removed.is_empty() || !path.exists() {
            return;
        }
        let bytes: u64 = removed.iter().map(|&(_, size)| size).sum();
        let line = format!("-{bytes} -{}\n", removed.len());
        let res = OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(err) = res {
            tracing::warn!(path = %path.display(), cause = %err, "cannot update maildirsize");
        }
    }
}

/// Hard-links (or copies, across file systems) a source message to `target`.
fn place_copy(item: &CopyItem, target: &Path) -> Result<(), MailboxError> {
    let source = match fs::hard_link(&item.path, target) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            // Renamed (flags changed) since: find it by its base name.
            let dir = item.path.parent().unwrap_or(Path::new("."));
            let found = names_in(dir)?
                .into_iter()
                .find(|n| format::base_name(n) == item.base)
                .map(|n| dir.join(n));
            match found {
                Some(path) => match fs::hard_link(&path, target) {
                    Ok(()) => return Ok(()),
                    Err(_) => path,
                },
                None => return Err(MailboxError::io(&item.path, err)),
            }
        }
        Err(_) => item.path.clone(),
    };
    let res = (|| -> io::Result<()> {
        let mut from = open_message_file(&source)?;
        let mut to = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(target)?;
        io::copy(&mut from, &mut to)?;
        let when = UNIX_EPOCH + Duration::from_secs(u64::try_from(item.internal_date).unwrap_or(0));
        to.set_modified(when)?;
        to.sync_all()
    })();
    res.map_err(|err| {
        let _ = fs::remove_file(target);
        MailboxError::io(target, err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn stored_form_and_vsize() {
        let (stored, vsize) = to_stored(b"a\r\nb\r\n\r\nc");
        assert_eq!(stored, b"a\nb\n\nc");
        assert_eq!(vsize, 9);
        let (stored, vsize) = to_stored(b"bare\nlf\r");
        assert_eq!(stored, b"bare\nlf\r");
        assert_eq!(vsize, 9);
    }
}

/// Sorts Maildir names by arrival: `<secs>.M<usecs>P<pid>...` by seconds and microseconds as
/// numbers; names of other shapes sort by whatever leading number they have, then as text.
fn arrival_key(name: &str) -> (u64, u64, String) {
    let leading_number = |text: &str| -> u64 {
        let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().unwrap_or(0)
    };
    let seconds = leading_number(name);
    let micros = name
        .split_once('.')
        .and_then(|(_, rest)| rest.strip_prefix('M'))
        .map_or(0, leading_number);
    (seconds, micros, name.to_owned())
}

#[cfg(test)]
mod arrival_tests {
    use super::arrival_key;

    #[test]
    fn maildir_names_sort_by_arrival_numerically() {
        let mut names = vec![
            "1772700001.M100000P7Q4.host",
            "1772700001.M5P7Q2.host",
            "1772700000.M999999P7Q9.host",
            "1772700001.M99999P7Q3.host",
            "garbage",
        ];
        names.sort_by_key(|name| arrival_key(name));
        assert_eq!(
            names,
            vec![
                "garbage",
                "1772700000.M999999P7Q9.host",
                "1772700001.M5P7Q2.host",
                "1772700001.M99999P7Q3.host",
                "1772700001.M100000P7Q4.host",
            ]
        );
    }
}
