//! The IMAP-facing side of the Maildir: folders, UIDs, flags, keywords, modseqs, kept in
//! Dovecot 2.3's own files so a Dovecot Maildir moves in (and back) with its UIDs.
//!
//! # Files
//!
//! - `dovecot-uidlist` (v3): UIDVALIDITY, next UID and `uid :base` lines; written under the
//!   `dovecot-uidlist.lock` dotlock: new lines appended (and synced) as Dovecot appends them,
//!   the whole file written anew and renamed over the old one when its header changes, a
//!   name is renumbered or a quarter of its lines name expunged messages.
//! - `dovecot-keywords`: `<index> <name>`; letter `a + index` in file names.
//! - file names `<base>:2,<letters>` carry the flags; `new/` files move to `cur/` on sync.
//! - `subscriptions` (Dovecot 2.3 format) at the account root.
//! - Ours: `mailstead.index` per folder and its change log `mailstead.index.log` (a cache,
//!   never trusted over the files above),
//!   `mailstead-special-use`, `mailstead-defaults` and `mailstead-names` at the account root.
//!
//! # Layout
//!
//! - `mod.rs`: the public types, `MailStore` and `Account` (folder names, the folder list).
//! - `folder.rs`: `Folder`: sync, append, flags, copy/move, expunge.
//! - `name.rs`: which folder names are valid, and their directories on disk (the name is
//!   modified UTF-7 as the client sent it, and that is the directory name, as in Dovecot).
//! - `uidvalidity.rs`: a new folder's UIDVALIDITY, from the account's `dovecot-uidvalidity`.
//! - `migrate.rs`: renames, once per account, folder directories an earlier Mailstead named
//!   with the name encoded twice.
//! - `format.rs`: parsers and writers for Dovecot's files.
//! - `index.rs`: the binary index file.
//! - `notify.rs`: the registry through which delivery wakes IDLE sessions.
//! - `ranks.rs`: the orders SORT keeps per folder between commands.

mod folder;
mod format;
mod index;
mod kept;
mod migrate;
mod name;
pub(crate) mod notify;
mod ranks;
mod uidvalidity;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

pub use folder::{Folder, NewMessage};
pub use notify::WatchGuard;
pub use ranks::{RankKey, SortRanks};

use crate::{QuotaLimit, Store, maildir};

/// Dovecot's limit: keyword letters are `a` to `z`.
pub(crate) const MAX_KEYWORDS: usize = 26;

const SPECIAL_USE_FILE: &str = "mailstead-special-use";
const DEFAULTS_MARKER: &str = "mailstead-defaults";
const SUBSCRIPTIONS_FILE: &str = "subscriptions";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolderLayout {
    /// `.Sent`, `.Work.Projects`, each with a `maildirfolder` file.
    MaildirPlusPlus,
    /// `Sent/`, `Work/Projects/` (Dovecot's `LAYOUT=fs`).
    Fs,
}

impl FolderLayout {
    /// The hierarchy separator Dovecot shows clients by default for this layout (`.` for
    /// Maildir++, which is also its separator on disk; `/` for `LAYOUT=fs`). The store's own
    /// names always use `/`; only the protocol side shows this one.
    pub fn separator(self) -> char {
        match self {
            FolderLayout::MaildirPlusPlus => '.',
            FolderLayout::Fs => '/',
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    Drafts,
    Sent,
    Trash,
    Junk,
    Archive,
}

impl SpecialUse {
    pub const ALL: [SpecialUse; 5] = [
        SpecialUse::Drafts,
        SpecialUse::Sent,
        SpecialUse::Trash,
        SpecialUse::Junk,
        SpecialUse::Archive,
    ];

    /// The RFC 6154 attribute, e.g. `\Sent`.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Archive => "\\Archive",
        }
    }

    /// Case-insensitive, with or without the leading `\`.
    pub fn from_attribute(s: &str) -> Option<SpecialUse> {
        let bare = s.strip_prefix('\\').unwrap_or(s);
        SpecialUse::ALL
            .into_iter()
            .find(|u| u.attribute()[1..].eq_ignore_ascii_case(bare))
    }

    /// The folder created for it in a new account.
    fn default_name(self) -> &'static str {
        &self.attribute()[1..]
    }
}

/// IMAP system flags (`\Recent` is per session, see [`Folder::claim_recent`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SystemFlags(u8);

impl SystemFlags {
    pub const SEEN: SystemFlags = SystemFlags(1);
    pub const ANSWERED: SystemFlags = SystemFlags(2);
    pub const FLAGGED: SystemFlags = SystemFlags(4);
    pub const DELETED: SystemFlags = SystemFlags(8);
    pub const DRAFT: SystemFlags = SystemFlags(16);

    pub fn empty() -> SystemFlags {
        SystemFlags(0)
    }
    pub fn from_bits(bits: u8) -> SystemFlags {
        SystemFlags(bits & 31)
    }
    pub fn bits(self) -> u8 {
        self.0
    }
    pub fn contains(self, other: SystemFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn insert(&mut self, other: SystemFlags) {
        self.0 |= other.0;
    }
    pub fn remove(&mut self, other: SystemFlags) {
        self.0 &= !other.0;
    }
    pub fn union(self, other: SystemFlags) -> SystemFlags {
        SystemFlags(self.0 | other.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: u32,
    pub flags: SystemFlags,
    /// Bit `i` is `Snapshot::keywords[i]`.
    pub keywords: u32,
    pub modseq: u64,
    /// The size with CRLF line endings (from `W=`, or counted); `None` when the file name
    /// has no `W=` and nobody asked yet: [`Folder::rfc822_size`] and
    /// [`Folder::sized_snapshot`] count it.
    pub rfc822_size: Option<u64>,
    /// Unix seconds (the file's mtime).
    pub internal_date: i64,
    /// When the message was put into this folder, Unix seconds (RFC 8514 SAVEDATE): the
    /// time in its Maildir base name, which delivery, APPEND, COPY and MOVE (and Dovecot)
    /// give each file they write into a folder, and which flag changes keep.
    pub save_date: i64,
    /// RFC 8474 EMAILID as a number ([`email_id`]): a hash of the Maildir base name, so it
    /// stays through flag changes and restarts; COPY and MOVE write a new file, hence a new id.
    pub email_id: u64,
}

/// RFC 8474 EMAILID text of [`MessageMeta::email_id`]: a letter, then 16 hex digits.
pub fn email_id(id: u64) -> String {
    format!("M{id:016x}")
}

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub uid_validity: u32,
    pub uid_next: u32,
    pub highest_modseq: u64,
    /// Changes whenever a message of the previous snapshot is gone: a session that saw this
    /// value has no expunge to look for.
    pub expunge_serial: u64,
    /// Ascending UIDs.
    pub messages: Vec<MessageMeta>,
    /// Indexed like `dovecot-keywords`; an empty string is an unused index.
    pub keywords: Vec<String>,
    /// RFC 8474 MAILBOXID: from the folder's GUID in `dovecot-uidlist` (Dovecot's own, for a
    /// folder Dovecot made), so it survives restarts and RENAME (the file moves with the
    /// folder). Empty until the folder is first synced.
    pub mailbox_id: Arc<str>,
}

impl Snapshot {
    pub fn position(&self, uid: u32) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |m| m.uid).ok()
    }
}

/// What `dovecot-uidlist` records for POP3 about one message (see [`Folder::pop3_records`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pop3Record {
    /// The UIDL to give instead of the default one.
    pub uidl: Option<String>,
    /// Messages with an order are listed first, lowest first; the others follow by UID.
    pub order: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderInfo {
    pub name: String,
    pub special_use: Option<SpecialUse>,
    pub has_children: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOperation {
    Add,
    Remove,
    Replace,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreResult {
    /// UIDs whose flags changed.
    pub updated: Vec<u32>,
    /// UIDs refused because they changed after `unchanged_since`.
    pub modified: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CacheKey {
    Envelope,
    BodyStructure,
    Body,
    /// The header fields SEARCH asks about most (From, To, Subject, ...), so such a search
    /// reads no message file a second time.
    SearchHeaders,
    /// RFC 8970 PREVIEW text.
    Preview,
    /// What SORT and THREAD compare (dates, base subject, first addresses, message IDs), so
    /// sorting a large folder reads no message file a second time.
    SortValues,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaUsage {
    pub bytes: u64,
    pub messages: u64,
    pub limit_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("no mailbox {0:?}")]
    NotFound(String),
    #[error("mailbox {0:?} already exists")]
    AlreadyExists(String),
    #[error("invalid mailbox name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("INBOX cannot be deleted")]
    CannotDeleteInbox,
    #[error("mailbox {0:?} has child mailboxes; delete them first")]
    HasChildren(String),
    #[error("over quota: {used} of {limit} {resource} used, the change needs {size}")]
    OverQuota {
        resource: crate::QuotaResource,
        limit: u64,
        used: u64,
        size: u64,
    },
    #[error("keyword {0:?} cannot be stored: a mailbox holds at most 26 keywords")]
    TooManyKeywords(String),
    #[error("{0:?} is not a valid keyword")]
    InvalidKeyword(String),
    #[error("{}: lock held too long by another process", path.display())]
    LockTimeout { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// A blocking file-system task panicked or was cancelled.
    #[error("a file-system task failed: {0}")]
    Task(String),
}

impl MailboxError {
    pub(crate) fn io(path: &Path, source: io::Error) -> MailboxError {
        MailboxError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<crate::StoreError> for MailboxError {
    fn from(err: crate::StoreError) -> MailboxError {
        match err {
            crate::StoreError::OverQuota {
                resource,
                limit,
                used,
                size,
                ..
            } => MailboxError::OverQuota {
                resource,
                limit,
                used,
                size,
            },
            crate::StoreError::Io { path, source } => MailboxError::Io { path, source },
            other => MailboxError::Task(other.to_string()),
        }
    }
}

/// Runs blocking file-system work off the async threads.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, MailboxError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, MailboxError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(res) => res,
        Err(err) => Err(MailboxError::Task(err.to_string())),
    }
}

/// The registry of open folders, shared by every session; cheap to clone.
#[derive(Clone)]
pub struct MailStore {
    inner: Arc<MailStoreInner>,
}

struct MailStoreInner {
    /// The spool a large APPEND streams into before it is linked into its folder.
    delivery: Store,
    notifier: Arc<notify::Notifier>,
    hostname: Arc<str>,
    /// Open folders, and the state of those whose index is still being written.
    folders: Mutex<HashMap<PathBuf, (Weak<Folder>, folder::Remains)>>,
    /// Folders no session holds, kept for the next open.
    kept: kept::Kept,
}

impl MailStore {
    /// Shares `store`'s delivery notifier: a delivery wakes the open folder it went into.
    pub fn new(store: &Store) -> MailStore {
        MailStore {
            inner: Arc::new(MailStoreInner {
                delivery: store.clone(),
                notifier: Arc::clone(&store.inner.notifier),
                hostname: Arc::from(store.inner.hostname.as_str()),
                folders: Mutex::new(HashMap::new()),
                kept: kept::Kept::default(),
            }),
        }
    }

    /// Writes the index of every folder kept open with changes it does not hold yet (modseqs,
    /// `\Recent` claims, cached envelopes): called when the server stops, since a kept
    /// folder otherwise writes only when it leaves the cache.
    pub async fn flush(&self) {
        for folder in self.inner.kept.take_all() {
            folder.write_index_now().await;
        }
    }

    /// Starts a message to be stored with [`Folder::append_spooled`]: its bytes go to a file
    /// in the spool as they arrive (the spool SMTP delivery uses).
    ///
    /// # Errors
    ///
    /// `Io` when the spool file cannot be created.
    pub async fn begin(&self) -> Result<crate::MessageWriter, MailboxError> {
        Ok(self.inner.delivery.begin().await?)
    }

    /// Opens the account whose INBOX is the Maildir at `root`, creating it (and, the first
    /// time only, the Drafts, Sent, Trash, Junk and Archive folders) if missing.
    ///
    /// # Errors
    ///
    /// `Io` when the Maildir cannot be created.
    pub async fn open_account(
        &self,
        root: &Path,
        layout: FolderLayout,
        quota: QuotaLimit,
    ) -> Result<Account, MailboxError> {
        let account = Account {
            inner: Arc::new(AccountInner {
                root: root.to_path_buf(),
                layout,
                quota,
                store: self.clone(),
                meta: Mutex::new(()),
            }),
        };
        let setup = account.clone();
        blocking(move || setup.inner.ensure_defaults()).await?;
        Ok(account)
    }

    /// Opens a Maildir tree that belongs to no user (a public namespace): no quota, and
    /// none of an account's default folders or subscriptions are created in it.
    ///
    /// # Errors
    ///
    /// `NotFound` when `root` is not a directory.
    pub fn open_tree(&self, root: &Path, layout: FolderLayout) -> Result<Account, MailboxError> {
        if !root.is_dir() {
            return Err(MailboxError::NotFound(root.display().to_string()));
        }
        Ok(Account {
            inner: Arc::new(AccountInner {
                root: root.to_path_buf(),
                layout,
                quota: QuotaLimit::UNLIMITED,
                store: self.clone(),
                meta: Mutex::new(()),
            }),
        })
    }
}

/// One user's folders; cheap to clone.
#[derive(Clone)]
pub struct Account {
    inner: Arc<AccountInner>,
}

struct AccountInner {
    root: PathBuf,
    layout: FolderLayout,
    quota: QuotaLimit,
    store: MailStore,
    /// Serialises changes to the folder tree and the account's side files in this process.
    meta: Mutex<()>,
}

impl Account {
    /// How the account's folders are laid out on disk.
    pub fn layout(&self) -> FolderLayout {
        self.inner.layout
    }

    /// The Maildir directory of a folder name (which need not exist yet): where the
    /// folder's side files, such as its `dovecot-acl`, live.
    ///
    /// # Errors
    ///
    /// `InvalidName`.
    pub fn folder_path(&self, name: &str) -> Result<PathBuf, MailboxError> {
        let name = name::check(name, self.inner.layout)?;
        Ok(self.inner.folder_dir(&name))
    }

    /// Whether the folder exists.
    pub fn folder_exists(&self, name: &str) -> bool {
        name::check(name, self.inner.layout).is_ok_and(|name| self.inner.folder_exists(&name))
    }

    /// Every folder, `INBOX` first, then by name; names use `/` as the separator.
    ///
    /// # Errors
    ///
    /// `Io` when the Maildir cannot be read.
    pub async fn list(&self) -> Result<Vec<FolderInfo>, MailboxError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.list()).await
    }

    /// Creates a folder and any missing parents.
    ///
    /// # Errors
    ///
    /// `InvalidName`, `AlreadyExists`, `Io`.
    pub async fn create(
        &self,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<(), MailboxError> {
        let inner = Arc::clone(&self.inner);
        let name = name.to_owned();
        blocking(move || {
            let _guard = inner.lock_meta();
            inner.create(&name, special_use)
        })
        .await
    }

    /// Deletes a folder and its messages. Folders with children are refused.
    ///
    /// # Errors
    ///
    /// `CannotDeleteInbox`, `NotFound`, `HasChildren`, `Io`.
    pub async fn delete(&self, name: &str) -> Result<(), MailboxError> {
        let inner = Arc::clone(&self.inner);
        let name = name.to_owned();
        blocking(move || {
            let _guard = inner.lock_meta();
            inner.delete(&name)
        })
        .await
    }

    /// Renames a folder with its children. Renaming INBOX moves its messages into a new
    /// folder and leaves INBOX empty (RFC 3501).
    ///
    /// # Errors
    ///
    /// `NotFound`, `AlreadyExists`, `InvalidName`, `Io`.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), MailboxError> {
        let inner = Arc::clone(&self.inner);
        let (from, to) = (from.to_owned(), to.to_owned());
        blocking(move || {
            let _guard = inner.lock_meta();
            inner.rename(&from, &to)
        })
        .await
    }

    /// Subscribed names, from Dovecot's `subscriptions` file.
    ///
    /// # Errors
    ///
    /// `Io` when the file exists but cannot be read.
    pub async fn subscriptions(&self) -> Result<Vec<String>, MailboxError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.read_subscriptions()).await
    }

    /// # Errors
    ///
    /// `InvalidName`, `Io`.
    pub async fn set_subscribed(&self, name: &str, subscribed: bool) -> Result<(), MailboxError> {
        let inner = Arc::clone(&self.inner);
        let name = name.to_owned();
        blocking(move || {
            let _guard = inner.lock_meta();
            // A name that can no longer be created can still be unsubscribed from.
            let name = if subscribed {
                name::check(&name, inner.layout)?
            } else {
                name::check_shape(&name)?
            };
            let mut names = inner.read_subscriptions()?;
            let present = names.contains(&name);
            if subscribed == present {
                return Ok(());
            }
            if subscribed {
                names.push(name);
            } else {
                names.retain(|n| *n != name);
            }
            write_atomic(
                &inner.root.join(SUBSCRIPTIONS_FILE),
                &format::write_subscriptions(&names),
            )
        })
        .await
    }

    /// Opens a folder: every caller gets the same `Arc<Folder>` while one is alive. `INBOX`
    /// is case-insensitive. The folder is synced before it is returned.
    ///
    /// # Errors
    ///
    /// `NotFound`, `InvalidName`, `Io`.
    pub async fn open(&self, name: &str) -> Result<Arc<Folder>, MailboxError> {
        let name = name::check(name, self.inner.layout)?;
        let dir = self.inner.folder_dir(&name);
        let folder = {
            let mut folders = lock(&self.inner.store.inner.folders);
            let known = folders.get(&dir);
            match known.and_then(|(open, _)| open.upgrade()) {
                Some(folder) => folder,
                None => {
                    if name != "INBOX" && !self.inner.folder_exists(&name) {
                        return Err(MailboxError::NotFound(name));
                    }
                    let revived = known.and_then(|(_, remains)| Folder::revive(remains));
                    let folder = Arc::new(match revived {
                        Some(folder) => folder,
                        None => Folder::new(
                            name.clone(),
                            self.inner.special_uses().get(&name).copied(),
                            dir.clone(),
                            self.inner.root.clone(),
                            self.inner.quota,
                            Arc::clone(&self.inner.store.inner.hostname),
                            &self.inner.store.inner.notifier,
                        ),
                    });
                    folders.retain(|_, (open, remains)| open.strong_count() > 0 || remains.alive());
                    folders.insert(dir.clone(), (Arc::downgrade(&folder), folder.remains()));
                    folder
                }
            }
        };
        folder.sync().await?;
        let kept = &self.inner.store.inner.kept;
        if folder.quota() == self.inner.quota {
            kept.keep(&dir, &folder);
        } else {
            // A quota changed in the directory reaches the folder once no session holds it.
            kept.forget(&dir);
        }
        Ok(folder)
    }

    /// The account's usage, from `maildirsize` (recalculated when missing or stale).
    ///
    /// # Errors
    ///
    /// `Io` when the Maildir cannot be scanned.
    pub async fn quota_usage(&self) -> Result<QuotaUsage, MailboxError> {
        let usage = quota_usage(&self.inner.root, self.inner.quota).await?;
        Ok(usage.unwrap_or(QuotaUsage {
            bytes: 0,
            messages: 0,
            limit_bytes: self.inner.quota.bytes,
        }))
    }
}

/// The usage of the account whose INBOX is the Maildir at `root`, from `maildirsize`
/// (recalculated when missing or stale), without opening the account: for an administrator's
/// view of a mailbox nobody is logged in to, and for the size statistics. `None` while the
/// Maildir is not made yet (nothing delivered).
///
/// # Errors
///
/// `Io` when the Maildir cannot be scanned.
pub async fn quota_usage(
    root: &Path,
    quota: QuotaLimit,
) -> Result<Option<QuotaUsage>, MailboxError> {
    let root = root.to_path_buf();
    blocking(move || {
        if !crate::maildir::is_real_dir(&root) {
            return Ok(None);
        }
        let usage = crate::quota::usage(&root, quota)?;
        Ok(Some(QuotaUsage {
            bytes: usage.bytes,
            messages: usage.count,
            limit_bytes: quota.bytes,
        }))
    })
    .await
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not take every session down with it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AccountInner {
    fn lock_meta(&self) -> std::sync::MutexGuard<'_, ()> {
        lock(&self.meta)
    }

    /// The Maildir of a folder name [`name::check`] accepted.
    fn folder_dir(&self, name: &str) -> PathBuf {
        self.root.join(name::relative_dir(name, self.layout))
    }

    /// Whether the folder exists: a Maildir reached without following a symbolic link at
    /// any level below the account's root.
    fn folder_exists(&self, name: &str) -> bool {
        if name == "INBOX" {
            return true;
        }
        self.levels_are_real(name) && maildir::is_maildir(&self.folder_dir(name))
    }

    /// `LAYOUT=fs`: every parent level of `name` that exists is a real directory, so that
    /// creating or opening below it cannot land outside the Maildir.
    fn levels_are_real(&self, name: &str) -> bool {
        if self.layout == FolderLayout::MaildirPlusPlus {
            return true;
        }
        let levels: Vec<&str> = name.split('/').collect();
        (1..levels.len()).all(|depth| {
            let dir = self.folder_dir(&levels[..depth].join("/"));
            match fs::symlink_metadata(&dir) {
                Ok(meta) => meta.file_type().is_dir(),
                Err(err) => err.kind() == io::ErrorKind::NotFound,
            }
        })
    }

    /// A folder to be made at `dir`: nothing may be in the way there, not even a symbolic
    /// link or a directory that is not a Maildir.
    fn check_free(&self, name: &str, dir: &Path) -> Result<(), MailboxError> {
        if !self.levels_are_real(name) {
            return Err(MailboxError::io(dir, maildir::not_a_directory()));
        }
        match fs::symlink_metadata(dir) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(MailboxError::io(dir, err)),
            Ok(meta) if meta.file_type().is_dir() => Ok(()),
            Ok(_) => Err(MailboxError::io(dir, maildir::not_a_directory())),
        }
    }

    fn ensure_defaults(&self) -> Result<(), MailboxError> {
        let _guard = self.lock_meta();
        folder::ensure_maildir(&self.root)?;
        migrate::run_once(&self.root, self.layout)?;
        let marker = self.root.join(DEFAULTS_MARKER);
        if marker.exists() {
            return Ok(());
        }
        let existing = self.list()?;
        let mut subscribe = Vec::new();
        for special_use in SpecialUse::ALL {
            let name = special_use.default_name();
            if existing.iter().any(|f| f.special_use == Some(special_use)) {
                continue;
            }
            match self.create(name, Some(special_use)) {
                Ok(()) => subscribe.push(name.to_owned()),
                // A Dovecot account already has it: give it the attribute.
                Err(MailboxError::AlreadyExists(_)) => {
                    let mut uses = self.special_uses();
                    uses.entry(name.to_owned()).or_insert(special_use);
                    self.write_special_uses(&uses)?;
                }
                Err(err) => return Err(err),
            }
        }
        let mut names = self.read_subscriptions()?;
        for name in std::iter::once("INBOX".to_owned()).chain(subscribe) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        write_atomic(
            &self.root.join(SUBSCRIPTIONS_FILE),
            &format::write_subscriptions(&names),
        )?;
        write_atomic(&marker, b"1\n")
    }

    fn list(&self) -> Result<Vec<FolderInfo>, MailboxError> {
        let uses = self.special_uses();
        let mut names: Vec<String> = list_dirs(&self.root, self.layout)?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        names.sort();
        // Sorted, a folder's children follow one another from the first name at or after
        // `name/`: one binary search per folder, not a walk over all of them.
        let has_children = |name: &str| {
            let prefix = format!("{name}/");
            let first = names.partition_point(|n| n.as_str() < prefix.as_str());
            names
                .get(first)
                .is_some_and(|n| n.len() > prefix.len() && n.starts_with(&prefix))
        };
        let mut out = vec![FolderInfo {
            name: "INBOX".to_owned(),
            special_use: None,
            has_children: has_children("INBOX"),
        }];
        for name in &names {
            if name == "INBOX" {
                continue;
            }
            out.push(FolderInfo {
                name: name.clone(),
                special_use: uses.get(name).copied(),
                has_children: has_children(name),
            });
        }
        Ok(out)
    }

    fn create(&self, name: &str, special_use: Option<SpecialUse>) -> Result<(), MailboxError> {
        let name = name::check(name, self.layout)?;
        if name == "INBOX" || self.folder_exists(&name) {
            return Err(MailboxError::AlreadyExists(name));
        }
        // Parents first, so that every level is a real folder.
        let parts: Vec<&str> = name.split('/').collect();
        for depth in 1..=parts.len() {
            let level = parts[..depth].join("/");
            if self.folder_exists(&level) {
                continue;
            }
            let level_dir = self.folder_dir(&level);
            self.check_free(&level, &level_dir)?;
            folder::ensure_maildir(&level_dir)?;
            // Unique per account and never given twice, so no earlier folder of this name
            // (deleted, or renamed away) shares it: clients' caches keyed on it stay right.
            folder::start_uidlist(&level_dir, uidvalidity::next(&self.root)?)?;
            if self.layout == FolderLayout::MaildirPlusPlus {
                let marker = level_dir.join("maildirfolder");
                if let Err(err) = fs::write(&marker, b"") {
                    return Err(MailboxError::io(&marker, err));
                }
            }
        }
        if let Some(special_use) = special_use {
            let mut uses = self.special_uses();
            uses.retain(|_, u| *u != special_use);
            uses.insert(name, special_use);
            self.write_special_uses(&uses)?;
        }
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), MailboxError> {
        let name = name::check(name, self.layout)?;
        if name == "INBOX" {
            return Err(MailboxError::CannotDeleteInbox);
        }
        if !self.folder_exists(&name) {
            return Err(MailboxError::NotFound(name));
        }
        let dir = self.folder_dir(&name);
        let prefix = format!("{name}/");
        if list_dirs(&self.root, self.layout)?
            .iter()
            .any(|(n, _)| n.starts_with(&prefix))
        {
            return Err(MailboxError::HasChildren(name));
        }
        self.forget_open(&dir);
        // Its messages leave the quota with it, held exclusively against our own writers.
        let held = crate::quota::hold_exclusive(&self.root, self.quota)?;
        // Moved out of the tree first, as Dovecot does (`DOVECOT-TRASHED`): a writer still holding the folder's
        // path (the index write of its last handle, another process delivering) then fails
        // to land anything in it instead of landing a file while it is being removed (which
        // made the removal fail half done) or after it was counted (deleted uncounted).
        let doomed = self
            .root
            .join(format!("..mailstead-deleted-{}", unique_suffix()));
        if let Err(err) = fs::rename(&dir, &doomed) {
            return Err(MailboxError::io(&dir, err));
        }
        let gone = crate::quota::scan_one(&doomed)?;
        #[cfg(test)]
        tests::after_delete_count(&dir);
        held.record(
            &self.root,
            -i64::try_from(gone.bytes).unwrap_or(i64::MAX),
            -i64::try_from(gone.count).unwrap_or(i64::MAX),
        );
        // remove_dir_all removes symbolic links inside, never what they point to.
        if let Err(err) = fs::remove_dir_all(&doomed) {
            return Err(MailboxError::io(&doomed, err));
        }
        let mut uses = self.special_uses();
        if uses.remove(&name).is_some() {
            self.write_special_uses(&uses)?;
        }
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), MailboxError> {
        let from = name::check(from, self.layout)?;
        let to = name::check(to, self.layout)?;
        if to == "INBOX" || to.starts_with("INBOX/") && from == "INBOX" {
            return Err(MailboxError::InvalidName {
                name: to,
                reason: "cannot rename to INBOX or below it",
            });
        }
        if self.folder_exists(&to) {
            return Err(MailboxError::AlreadyExists(to));
        }
        let to_dir = self.folder_dir(&to);
        // Something else there (a link, a file, a LAYOUT=fs parent holding folders) is in
        // the way too; only an empty directory may be replaced.
        let empty_dir = maildir::is_real_dir(&to_dir)
            && fs::read_dir(&to_dir).is_ok_and(|mut entries| entries.next().is_none());
        if fs::symlink_metadata(&to_dir).is_ok() && !empty_dir {
            return Err(MailboxError::AlreadyExists(to));
        }
        self.check_free(&to, &to_dir)?;
        if from == "INBOX" {
            self.create(&to, None)?;
            return folder::move_all_files(&self.root, &to_dir);
        }
        if !self.folder_exists(&from) {
            return Err(MailboxError::NotFound(from));
        }
        let from_dir = self.folder_dir(&from);
        if to.starts_with(&format!("{from}/")) {
            return Err(MailboxError::InvalidName {
                name: to,
                reason: "cannot move a folder below itself",
            });
        }
        let children: Vec<(String, PathBuf)> = list_dirs(&self.root, self.layout)?
            .into_iter()
            .filter(|(n, _)| n.starts_with(&format!("{from}/")))
            .collect();
        // Every child's new name must be valid too (depth, length), before anything moves.
        let mut moves = Vec::with_capacity(children.len());
        for (child, dir) in children {
            let new_name = name::check(&format!("{to}{}", &child[from.len()..]), self.layout)?;
            moves.push((dir, new_name));
        }
        // Parents of the new name must exist.
        if let Some((parent, _)) = to.rsplit_once('/')
            && !self.folder_exists(parent)
        {
            self.create(parent, None)?;
        }
        self.forget_open(&from_dir);
        for (dir, _) in &moves {
            self.forget_open(dir);
        }
        if let Err(err) = fs::rename(&from_dir, &to_dir) {
            return Err(MailboxError::io(&from_dir, err));
        }
        if self.layout == FolderLayout::MaildirPlusPlus {
            for (dir, new_name) in moves {
                let new_dir = self.folder_dir(&new_name);
                if let Err(err) = fs::rename(&dir, &new_dir) {
                    return Err(MailboxError::io(&dir, err));
                }
            }
        }
        let uses: HashMap<String, SpecialUse> = self
            .special_uses()
            .into_iter()
            .map(|(name, u)| {
                if name == from {
                    (to.clone(), u)
                } else if let Some(rest) = name.strip_prefix(&format!("{from}/")) {
                    (format!("{to}/{rest}"), u)
                } else {
                    (name, u)
                }
            })
            .collect();
        self.write_special_uses(&uses)
    }

    /// A renamed or deleted folder's open handle must not be handed out again.
    fn forget_open(&self, dir: &Path) {
        lock(&self.store.inner.folders).remove(dir);
        self.store.inner.kept.forget(dir);
    }

    fn read_subscriptions(&self) -> Result<Vec<String>, MailboxError> {
        let path = self.root.join(SUBSCRIPTIONS_FILE);
        match fs::read(&path) {
            Ok(contents) => Ok(format::parse_subscriptions(
                &contents,
                self.layout.separator(),
            )),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(err) => Err(MailboxError::io(&path, err)),
        }
    }

    fn special_uses(&self) -> HashMap<String, SpecialUse> {
        let Ok(contents) = fs::read(self.root.join(SPECIAL_USE_FILE)) else {
            return HashMap::new();
        };
        String::from_utf8_lossy(&contents)
            .lines()
            .filter_map(|line| {
                let (attribute, name) = line.split_once(' ')?;
                Some((name.to_owned(), SpecialUse::from_attribute(attribute)?))
            })
            .collect()
    }

    fn write_special_uses(&self, uses: &HashMap<String, SpecialUse>) -> Result<(), MailboxError> {
        let mut lines: Vec<String> = uses
            .iter()
            .map(|(name, u)| format!("{} {name}\n", u.attribute()))
            .collect();
        lines.sort();
        write_atomic(&self.root.join(SPECIAL_USE_FILE), lines.concat().as_bytes())
    }
}

/// Folders below `root` as (name, directory), INBOX not included: the Maildirs
/// `maildir::folder_dirs` finds (no symbolic link followed, no deeper than the depth
/// limit) whose names [`name::check`] accepts and map back to the same directory.
fn list_dirs(root: &Path, layout: FolderLayout) -> Result<Vec<(String, PathBuf)>, MailboxError> {
    let found = maildir::folder_dirs(
        root,
        layout == FolderLayout::MaildirPlusPlus,
        layout == FolderLayout::Fs,
    )
    .map_err(|err| MailboxError::io(root, err))?;
    let mut out = Vec::with_capacity(found.len());
    for (levels, dir) in found {
        let levels: Vec<String> = match layout {
            FolderLayout::MaildirPlusPlus => levels
                .iter()
                .flat_map(|disk| disk.split('.'))
                .map(str::to_owned)
                .collect(),
            FolderLayout::Fs => levels,
        };
        let Ok(name) = name::check(&levels.join("/"), layout) else {
            continue;
        };
        if name != "INBOX" && root.join(name::relative_dir(&name, layout)) == dir {
            out.push((name, dir));
        }
    }
    Ok(out)
}

/// Unique among this process's writers (several folders or accounts may write the same
/// file at once).
pub(crate) fn unique_suffix() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// Writes a whole file: temporary name, fsync, rename.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), MailboxError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".{}.tmp", unique_suffix()));
    let tmp = PathBuf::from(tmp_name);
    let res = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| file.write_all(contents).and_then(|()| file.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(err) = res {
        let _ = fs::remove_file(&tmp);
        return Err(MailboxError::io(path, err));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    type Hook = Box<dyn FnOnce(&Path)>;

    thread_local! {
        static AFTER_DELETE_COUNT: RefCell<Option<Hook>> = RefCell::new(None);
    }

    /// Called by a folder DELETE once it has counted the folder's messages, with the
    /// folder's directory: where a test plays a writer that lands a file at that moment.
    pub(super) fn after_delete_count(dir: &Path) {
        if let Some(hook) = AFTER_DELETE_COUNT.with(|hook| hook.borrow_mut().take()) {
            hook(dir);
        }
    }

    /// The sum of `maildirsize`'s lines after the header.
    fn maildirsize_total(root: &Path) -> (u64, u64) {
        let text = fs::read_to_string(root.join("maildirsize")).expect("maildirsize");
        text.lines().skip(1).fold((0, 0), |(bytes, count), line| {
            let mut fields = line
                .split_whitespace()
                .map(|f| f.parse::<i64>().expect("number"));
            let (b, c) = (fields.next().expect("bytes"), fields.next().expect("count"));
            (
                bytes.checked_add_signed(b).expect("bytes"),
                count.checked_add_signed(c).expect("count"),
            )
        })
    }

    /// A message lands in a folder (as another process delivers: `tmp/`, then `new/`, then
    /// `maildirsize`) after a DELETE of that folder counted its messages. The DELETE must
    /// neither fail half done nor remove a message it did not count: the late writer finds
    /// no folder, so its message is never acknowledged, and `maildirsize` stays exact.
    #[test]
    fn a_folder_delete_racing_a_writer_neither_fails_nor_miscounts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("Maildir");
        let store = Store::new("mx.example.com", dir.path().join("spool")).expect("store");
        let quota = QuotaLimit::bytes(Some(1 << 30));
        let account = AccountInner {
            root: root.clone(),
            layout: FolderLayout::MaildirPlusPlus,
            quota,
            store: MailStore::new(&store),
            meta: Mutex::new(()),
        };
        account.ensure_defaults().expect("defaults");
        let archive = root.join(".Archive");
        fs::write(archive.join("cur/1.M1P1.mx,S=12:2,S"), b"Subject: x\n").expect("message");
        crate::quota::hold_exclusive(&root, quota)
            .expect("hold")
            .record(&root, 0, 0);
        assert_eq!(maildirsize_total(&root), (12, 1));

        let delivered = Rc::new(Cell::new(None));
        let late = Rc::clone(&delivered);
        AFTER_DELETE_COUNT.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(move |folder: &Path| {
                let body = b"Subject: late\n";
                let landed = fs::write(folder.join("tmp/2.M2P2.mx"), body).and_then(|()| {
                    fs::rename(
                        folder.join("tmp/2.M2P2.mx"),
                        folder.join("new/2.M2P2.mx,S=15"),
                    )
                });
                if landed.is_ok() {
                    let mut size = fs::OpenOptions::new()
                        .append(true)
                        .open(root_of(folder).join("maildirsize"))
                        .expect("maildirsize");
                    std::io::Write::write_all(&mut size, b"15 1\n").expect("record");
                }
                late.set(Some(landed.is_ok()));
            }));
        });
        account.delete("Archive").expect("the DELETE succeeds");
        assert_eq!(
            delivered.get(),
            Some(false),
            "a message landing in a folder being deleted must not be taken"
        );
        assert!(!archive.exists());
        let usage = crate::quota::scan(&root).expect("scan");
        assert_eq!(maildirsize_total(&root), (usage.bytes, usage.count));
        assert_eq!(maildirsize_total(&root), (0, 0));
        let leftovers: Vec<_> = fs::read_dir(&root)
            .expect("root")
            .flatten()
            .map(|entry| entry.file_name())
            .filter(|name| name.to_string_lossy().starts_with(".."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    fn root_of(folder: &Path) -> &Path {
        folder.parent().expect("the account's root")
    }

    #[test]
    fn special_use_attributes() {
        for u in SpecialUse::ALL {
            assert_eq!(SpecialUse::from_attribute(u.attribute()), Some(u));
        }
        assert_eq!(SpecialUse::from_attribute("sent"), Some(SpecialUse::Sent));
        assert_eq!(SpecialUse::from_attribute("\\JUNK"), Some(SpecialUse::Junk));
        assert_eq!(SpecialUse::from_attribute("\\All"), None);
        assert_eq!(SpecialUse::from_attribute(""), None);
    }

    #[test]
    fn system_flags() {
        let mut flags = SystemFlags::empty();
        assert!(flags.is_empty());
        flags.insert(SystemFlags::SEEN.union(SystemFlags::DRAFT));
        assert!(flags.contains(SystemFlags::SEEN));
        flags.remove(SystemFlags::SEEN);
        assert_eq!(flags, SystemFlags::DRAFT);
        assert_eq!(SystemFlags::from_bits(0xff).bits(), 31);
    }
}
