//! One open folder: the in-memory state shared by every session, kept in step with the
//! Maildir (the truth) and Dovecot's `dovecot-uidlist`.
//!
//! All I/O runs in `spawn_blocking` with the state mutex held, so calls on one folder are
//! serialised. Sessions read `Arc<Snapshot>`s without locks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::format::{self, UidList, UidRecord};
use super::index::{self, IndexData};
use super::ranks::{RankKey, SortRanks};
use super::{
    CacheKey, FlagOperation, MailboxError, MessageMeta, Pop3Record, Snapshot, SpecialUse,
    StoreResult, SystemFlags, blocking, lock,
};
use crate::{maildir, quota};

mod files;
mod sync;
mod uidlist;
mod write;

use files::*;
pub(crate) use files::{ensure_maildir, move_all_files};
use sync::*;
use uidlist::*;
pub(crate) use uidlist::{FileId, UidlistSeen, start_uidlist};

const UIDLIST: &str = "dovecot-uidlist";
const UIDLIST_LOCK: &str = "dovecot-uidlist.lock";
const KEYWORDS: &str = "dovecot-keywords";
const INDEX: &str = "mailstead.index";
const INDEX_LOG: &str = "mailstead.index.log";
/// The change log may grow to this share of the snapshot (and at least to
/// `INDEX_LOG_FLOOR`) before the snapshot is rewritten and the log emptied.
const INDEX_LOG_SHARE: u64 = 4;
const INDEX_LOG_FLOOR: u64 = 64 * 1024;
/// Directory mtimes this recent may hide a change made in the same clock tick: rescan.
/// File systems with nanosecond timestamps (ext4, XFS, btrfs, tmpfs) stamp from the kernel's
/// coarse clock, a tick of at most 10 ms (HZ=100), so 20 ms covers it; on file systems with
/// whole-second timestamps two seconds are needed (as Dovecot assumes). Under steady load a
/// long slack would mean a full rescan of `cur/` before every command.
const MTIME_SLACK_NS: i128 = 20_000_000;
const MTIME_SLACK_COARSE_NS: i128 = 2_000_000_000;
/// Dovecot overrides a `dovecot-uidlist.lock` older than this.
const STALE_LOCK: Duration = Duration::from_secs(120);
/// How long to wait for `dovecot-uidlist.lock` before answering "try again later" (Dovecot
/// gives up on its dotlocks after about as long).
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// The first pause between two tries; each pause doubles, up to `LOCK_MAX_PAUSE`.
const LOCK_FIRST_PAUSE: Duration = Duration::from_millis(5);
const LOCK_MAX_PAUSE: Duration = Duration::from_millis(100);

/// Values sessions computed from message bytes (envelope, body structure, ...).
#[derive(Default)]
struct Cache {
    /// Ordered by UID: a command reading many messages' values in UID order (SORT of a large
    /// folder) walks neighbouring entries instead of jumping around a hash table.
    values: BTreeMap<(u32, CacheKey), Arc<[u8]>>,
    /// Added since the index last took them.
    unsaved: Vec<(u32, CacheKey)>,
}

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
    /// CRLF size; `None` until counted (a file name without `W=`).
    pub(crate) size: Option<u64>,
    /// Bytes on disk.
    pub(crate) physical: u64,
    pub(crate) internal_date: i64,
    /// [`MessageMeta::save_date`], from the base name (computed once, when the entry is made).
    pub(crate) save_date: i64,
    /// [`MessageMeta::email_id`].
    pub(crate) email_id: u64,
}

/// An entry's save date and EMAILID, from its file name: the time the name starts with (the
/// internal date for a name that has none) and the hash of its base name.
pub(crate) fn name_ids(name: &str, internal_date: i64) -> (i64, u64) {
    let base = format::base_name(name);
    (
        format::name_time(base).unwrap_or(internal_date),
        format::name_hash(base),
    )
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
            save_date: self.save_date,
            email_id: self.email_id,
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
    /// UIDs of messages added or changed since the index last took them.
    touched: Vec<u32>,
    /// How many of `vanished` the index holds.
    vanished_saved: usize,
    /// The index on disk this state follows; `None`: the next write is a whole snapshot.
    index_file: Option<IndexFile>,
    /// `dovecot-uidlist` as this state last read or wrote it.
    uidlist_seen: Option<UidlistSeen>,
}

impl State {
    fn position(&self, uid: u32) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |e| e.uid).ok()
    }

    /// The message with `uid` changed (or came): the index must learn it.
    fn touch(&mut self, uid: u32) {
        self.touched.push(uid);
        self.dirty = true;
    }
}

/// The snapshot and change log on disk that the state was last saved to.
#[derive(Clone, Copy, Debug)]
struct IndexFile {
    snapshot_len: u64,
    /// The log as this state left it: a log someone else changed is not appended to.
    log: FileId,
}

/// What an APPEND stores: the message as the client sent it, or a spool file (streamed).
enum AppendSource {
    Message(Vec<u8>),
    Spooled(PathBuf, crate::form::Sizes),
}

/// One message for [`Folder::append_all`].
pub struct NewMessage {
    source: AppendSource,
    flags: SystemFlags,
    keywords: Vec<String>,
    internal_date: Option<i64>,
}

impl NewMessage {
    /// A message as received (CRLF).
    pub fn bytes(
        message: Vec<u8>,
        flags: SystemFlags,
        keywords: &[String],
        internal_date: Option<i64>,
    ) -> NewMessage {
        NewMessage {
            source: AppendSource::Message(message),
            flags,
            keywords: keywords.to_vec(),
            internal_date,
        }
    }

    /// A message streamed into the spool; the spooled message must live until the append
    /// returns.
    pub fn spooled(
        message: &crate::SpooledMessage,
        flags: SystemFlags,
        keywords: &[String],
        internal_date: Option<i64>,
    ) -> NewMessage {
        NewMessage {
            source: AppendSource::Spooled(message.path().to_path_buf(), message.sizes()),
            flags,
            keywords: keywords.to_vec(),
            internal_date,
        }
    }
}

fn first_uid(uids: Vec<u32>) -> u32 {
    uids.first().copied().unwrap_or(0)
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
    quota: crate::QuotaLimit,
    hostname: Arc<str>,
    state: Mutex<State>,
    snapshot: RwLock<Arc<Snapshot>>,
    signal: Arc<watch::Sender<u64>>,
    notifier: Arc<super::notify::Notifier>,
    first_recent: AtomicU32,
    /// A `\Recent` claim the index does not hold yet.
    claim_dirty: AtomicBool,
    cache: Mutex<Cache>,
    cache_dirty: AtomicBool,
    /// The orders SORT keeps between commands, made from `cache`'s sort values.
    sort_ranks: Mutex<HashMap<RankKey, Arc<SortRanks>>>,
}

impl Folder {
    pub(crate) fn new(
        name: String,
        special_use: Option<SpecialUse>,
        dir: PathBuf,
        root: PathBuf,
        quota: crate::QuotaLimit,
        hostname: Arc<str>,
        notifier: &Arc<super::notify::Notifier>,
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
                    expunge_serial: 0,
                    messages: Vec::new(),
                    keywords: Vec::new(),
                    mailbox_id: Arc::from(""),
                })),
                signal,
                notifier: Arc::clone(notifier),
                first_recent: AtomicU32::new(1),
                claim_dirty: AtomicBool::new(false),
                cache: Mutex::new(Cache::default()),
                cache_dirty: AtomicBool::new(false),
                sort_ranks: Mutex::new(HashMap::new()),
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

    /// The quota the folder was opened with.
    pub(crate) fn quota(&self) -> crate::QuotaLimit {
        self.inner.quota
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

    /// Writes the index now if it is behind this state (the server is stopping).
    pub(crate) async fn write_index_now(&self) {
        let inner = Arc::clone(&self.inner);
        let _ = blocking(move || {
            inner.write_index_if_behind();
            Ok(())
        })
        .await;
    }

    /// The latest snapshot; no I/O.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current()
    }

    /// Bumps on every change through this folder and on every delivery into it, and, while
    /// a [`Folder::watch`] guard lives, on every change anyone makes in its directory.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.signal.subscribe()
    }

    /// Watches the folder's directory (inotify, one watch per folder however many sessions
    /// ask) until the guard goes; `None` when no watch could be set, and then only
    /// [`Folder::sync`] sees other processes' changes.
    pub fn watch(&self) -> Option<super::notify::WatchGuard> {
        self.inner.notifier.watch(&self.inner.dir)
    }

    /// `\Recent`: returns the first UID recent for the caller and claims everything below
    /// `uid_next` for it, so no other session sees those as recent.
    pub fn claim_recent(&self, uid_next: u32) -> u32 {
        let first = self
            .inner
            .first_recent
            .fetch_max(uid_next, Ordering::AcqRel);
        if first < uid_next {
            // Kept in the index, as Dovecot keeps it in its index header: the claim outlives
            // the folder's time in memory.
            self.inner.claim_dirty.store(true, Ordering::Release);
        }
        first
    }

    /// The first UID no session has claimed as `\Recent` yet (STATUS, EXAMINE); claims
    /// nothing.
    pub fn recent_from(&self) -> u32 {
        self.inner.first_recent.load(Ordering::Acquire)
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
        let message = NewMessage::bytes(message.to_vec(), flags, keywords, internal_date);
        self.append_from(vec![message]).await.map(first_uid)
    }

    /// [`Folder::append`] of a message streamed into the spool ([`crate::MailStore::begin`]):
    /// the spool file is linked into the folder (copied across file systems), so a large
    /// message is never held in memory. The spooled message stays the caller's.
    ///
    /// # Errors
    ///
    /// As [`Folder::append`].
    pub async fn append_spooled(
        &self,
        message: &crate::SpooledMessage,
        flags: SystemFlags,
        keywords: &[String],
        internal_date: Option<i64>,
    ) -> Result<u32, MailboxError> {
        let message = NewMessage::spooled(message, flags, keywords, internal_date);
        self.append_from(vec![message]).await.map(first_uid)
    }

    /// Stores several messages all or nothing (MULTIAPPEND, RFC 3502): every file is written
    /// and the quota checked for all of them before any gets a UID; when one fails, the
    /// files written before it are removed and nothing is recorded. Returns their UIDs, in
    /// order.
    ///
    /// # Errors
    ///
    /// As [`Folder::append`].
    pub async fn append_all(&self, messages: Vec<NewMessage>) -> Result<Vec<u32>, MailboxError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        self.append_from(messages).await
    }

    /// The one APPEND path for every source, on a blocking thread under the folder's lock.
    async fn append_from(&self, messages: Vec<NewMessage>) -> Result<Vec<u32>, MailboxError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let converted: Vec<Option<(Vec<u8>, crate::form::Sizes)>> = messages
                .iter()
                .map(|message| match &message.source {
                    AppendSource::Message(bytes) => Some(crate::form::to_stored(bytes)),
                    AppendSource::Spooled(..) => None,
                })
                .collect();
            let mut stored = Vec::with_capacity(messages.len());
            for (message, converted) in messages.iter().zip(&converted) {
                let (content, sizes) = match (&message.source, converted) {
                    (_, Some((bytes, sizes))) => (maildir::Content::Bytes(bytes), *sizes),
                    (AppendSource::Spooled(path, sizes), None) => {
                        (maildir::Content::Link(path), *sizes)
                    }
                    (AppendSource::Message(_), None) => continue,
                };
                stored.push(write::Stored {
                    content,
                    sizes,
                    flags: message.flags,
                    keywords: &message.keywords,
                    internal_date: message.internal_date,
                });
            }
            let mut st = lock(&inner.state);
            inner.sync_locked(&mut st)?;
            let res = inner.append_locked(&mut st, &stored);
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

    /// Removes these messages whatever their flags (REPLACE, RFC 8508); returns the UIDs
    /// removed.
    ///
    /// # Errors
    ///
    /// `Io`, `LockTimeout`.
    pub async fn remove(&self, uids: &[u32]) -> Result<Vec<u32>, MailboxError> {
        let inner = Arc::clone(&self.inner);
        let uids = uids.to_vec();
        blocking(move || {
            let mut st = lock(&inner.state);
            inner.sync_locked(&mut st)?;
            let res = inner.remove_messages(&mut st, &uids);
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
            let Some((mut file, path)) = inner.open_message(uid)? else {
                return Ok(None);
            };
            let mut bytes = Vec::new();
            io::Read::read_to_end(&mut file, &mut bytes)
                .map_err(|err| MailboxError::io(&path, err))?;
            Ok(Some(bytes))
        })
        .await
    }

    /// The message file opened for reading (LF line endings, as `read` gives), so that a
    /// reader can take the part it needs without holding the whole message; `None` once the
    /// message is expunged. The open file stays the message's whatever its flags become.
    ///
    /// # Errors
    ///
    /// `Io` when the file exists but cannot be opened.
    pub async fn open_message(&self, uid: u32) -> Result<Option<File>, MailboxError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || Ok(inner.open_message(uid)?.map(|(file, _)| file))).await
    }

    /// A message's size with CRLF line endings (RFC822.SIZE): from the snapshot when known,
    /// else counted from the file (a name without `W=`) once and kept in the index. `None`
    /// once the message is expunged.
    ///
    /// # Errors
    ///
    /// `Io` when the file exists but cannot be read.
    pub async fn rfc822_size(&self, uid: u32) -> Result<Option<u64>, MailboxError> {
        let snapshot = self.snapshot();
        if let Some(size) = snapshot
            .position(uid)
            .and_then(|i| snapshot.messages.get(i))
            .and_then(|meta| meta.rfc822_size)
        {
            return Ok(Some(size));
        }
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.count_size(uid)).await
    }

    /// The latest snapshot with every message's size known (STATUS SIZE, SEARCH LARGER and
    /// SMALLER): sizes not known yet are counted from the files first.
    ///
    /// # Errors
    ///
    /// `Io` when a file exists but cannot be read.
    pub async fn sized_snapshot(&self) -> Result<Arc<Snapshot>, MailboxError> {
        let snapshot = self.snapshot();
        if snapshot
            .messages
            .iter()
            .all(|meta| meta.rfc822_size.is_some())
        {
            return Ok(snapshot);
        }
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let unknown: Vec<u32> = lock(&inner.state)
                .messages
                .iter()
                .filter(|entry| entry.size.is_none())
                .map(|entry| entry.uid)
                .collect();
            for uid in unknown {
                inner.count_size(uid)?;
            }
            let mut st = lock(&inner.state);
            inner.publish(&st, true);
            inner.maybe_write_index(&mut st);
            Ok(inner.current())
        })
        .await
    }

    /// What `dovecot-uidlist` records for POP3 about messages of this UIDVALIDITY, by UID:
    /// the UIDL (the `P` field, written by Dovecot's `pop3_save_uidl` and by migrations,
    /// which overrides its `pop3_uidl_format`; empty means the file's base name, as Dovecot
    /// reads it) and the listing order (`O`). Read from the file each time: POP3 asks once
    /// per session, and only Dovecot writes these fields.
    ///
    /// # Errors
    ///
    /// `Io` when the file exists but cannot be read.
    pub async fn pop3_records(&self) -> Result<HashMap<u32, Pop3Record>, MailboxError> {
        let inner = Arc::clone(&self.inner);
        let uid_validity = self.snapshot().uid_validity;
        blocking(move || {
            let Some(list) = read_uidlist(&inner.dir)? else {
                return Ok(HashMap::new());
            };
            if list.uid_validity != uid_validity {
                return Ok(HashMap::new());
            }
            Ok(list
                .records
                .iter()
                .filter_map(|record| {
                    let uidl = record.extension('P').map(|uidl| match uidl {
                        "" => record.base.clone(),
                        uidl => uidl.to_owned(),
                    });
                    let order = record.extension('O').and_then(|order| order.parse().ok());
                    (uidl.is_some() || order.is_some())
                        .then_some((record.uid, Pop3Record { uidl, order }))
                })
                .collect())
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
        lock(&self.inner.cache).values.get(&(uid, key)).cloned()
    }

    /// [`Folder::cached`] for each of `uids` in turn, under one lock: a command that reads
    /// the cache of a whole large folder (SORT) pays for one lock, not one per message.
    pub fn cached_each(&self, uids: &[u32], key: CacheKey) -> Vec<Option<Arc<[u8]>>> {
        let cache = lock(&self.inner.cache);
        uids.iter()
            .map(|&uid| cache.values.get(&(uid, key)).cloned())
            .collect()
    }

    pub fn cache(&self, uid: u32, key: CacheKey, value: Arc<[u8]>) {
        let mut cache = lock(&self.inner.cache);
        match cache.values.insert((uid, key), Arc::clone(&value)) {
            None => cache.unsaved.push((uid, key)),
            // A value the ranks may have been made from changed (a damaged entry mended).
            Some(old) if key == CacheKey::SortValues && old != value => {
                lock(&self.inner.sort_ranks).clear();
            }
            Some(_) => {}
        }
        self.inner.cache_dirty.store(true, Ordering::Release);
    }

    /// The order by `key` kept for SORT ([`SortRanks`]), if one was made.
    pub fn sort_ranks(&self, key: RankKey) -> Option<Arc<SortRanks>> {
        lock(&self.inner.sort_ranks).get(&key).cloned()
    }

    /// Keeps `ranks` as the order by `key` for every session of this folder, in place of
    /// the one kept before; they go with the folder.
    pub fn keep_sort_ranks(&self, key: RankKey, ranks: SortRanks) {
        lock(&self.inner.sort_ranks).insert(key, Arc::new(ranks));
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let inner = Arc::clone(&self.inner);
        let write = move || inner.write_index_if_behind();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(write);
            }
            Err(_) => write(),
        }
    }
}

/// Whether every UID of `old` is in `new` (both ascending), in one pass.
fn is_subset(old: &[MessageMeta], new: &[MessageMeta]) -> bool {
    let mut new = new.iter().map(|meta| meta.uid).peekable();
    old.iter().all(|meta| {
        while new.next_if(|&uid| uid < meta.uid).is_some() {}
        new.next_if_eq(&meta.uid).is_some()
    })
}

impl Inner {
    /// Writes the index if it is behind this state: when the last handle goes, or the server
    /// stops.
    fn write_index_if_behind(&self) {
        let mut st = lock(&self.state);
        if self.needs_write(&st) {
            self.write_index(&mut st);
        }
    }

    /// Whether the index on disk is behind this state.
    fn needs_write(&self, st: &State) -> bool {
        st.dirty
            || self.cache_dirty.load(Ordering::Acquire)
            || self.claim_dirty.load(Ordering::Acquire)
    }

    /// Counts a message's size from its file and keeps it; `None` once expunged.
    fn count_size(&self, uid: u32) -> Result<Option<u64>, MailboxError> {
        {
            let st = lock(&self.state);
            match st.position(uid).and_then(|i| st.messages.get(i)) {
                None => return Ok(None),
                Some(entry) if entry.size.is_some() => return Ok(entry.size),
                Some(_) => {}
            }
        }
        let Some((mut file, path)) = self.open_message(uid)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut file, &mut bytes).map_err(|err| MailboxError::io(&path, err))?;
        let size = crate::form::Sizes::of_stored(&bytes).vsize();
        let mut st = lock(&self.state);
        if let Some(entry) = st.position(uid).and_then(|i| st.messages.get_mut(i)) {
            entry.size = Some(size);
            st.touch(uid);
        }
        Ok(Some(size))
    }

    /// Opens a message's file and gives its path too (for errors); looks again when it was
    /// renamed (flags) or removed since the last scan.
    fn open_message(&self, uid: u32) -> Result<Option<(File, PathBuf)>, MailboxError> {
        for attempt in 0..3 {
            let path = {
                let mut st = lock(&self.state);
                if attempt > 0 {
                    self.full_scan(&mut st)?;
                    self.publish(&st, true);
                }
                match st.position(uid).and_then(|i| st.messages.get(i)) {
                    Some(entry) => entry.path(&self.dir),
                    None => return Ok(None),
                }
            };
            match open_message_file(&path) {
                Ok(file) => return Ok(Some((file, path))),
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(MailboxError::io(&path, err)),
            }
        }
        Ok(None)
    }

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
        let previous = self.current();
        let messages: Vec<MessageMeta> = st.messages.iter().map(Entry::meta).collect();
        let expunged =
            previous.uid_validity != st.uid_validity || !is_subset(&previous.messages, &messages);
        let snapshot = Arc::new(Snapshot {
            uid_validity: st.uid_validity,
            uid_next: st.next_uid.max(1),
            highest_modseq: st.highest_modseq,
            expunge_serial: previous.expunge_serial + u64::from(expunged),
            messages,
            keywords: st.keywords.clone(),
            mailbox_id: if *previous.mailbox_id == *format::mailbox_id(&st.guid) {
                Arc::clone(&previous.mailbox_id)
            } else {
                Arc::from(format::mailbox_id(&st.guid))
            },
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
}
