//! Local delivery: a message is spooled once, then written into each recipient's Maildir the
//! way Dovecot writes and reads it.
//!
//! # SUMMARY
//!
//! [`Store::begin`] opens a [`MessageWriter`] on a temporary file in `<spool>/tmp`. The
//! caller streams the message into it as it arrives on the wire (CRLF line endings, already
//! dot-unstuffed by the SMTP/LMTP layer); the writer stores it with LF line endings, as
//! Dovecot's Maildir does with `mail_save_crlf = no`, and counts both sizes on the way.
//! [`MessageWriter::finish`] fsyncs the file and returns a [`SpooledMessage`], which
//! [`SpooledMessage::deliver`] links (or copies, across filesystems) into every recipient's
//! Maildir as `new/<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<vsize>`.
//! A per-recipient header prefix (`Delivered-To:`) may be given to `deliver`: that copy is then
//! written (prefix, then the spooled bytes) instead of linked, and its sizes include the prefix.
//! Dropping the `SpooledMessage` removes the spool file; the Maildir copies stay.
//!
//! # Layout
//!
//! - `lib.rs`: `Store`, `StoreError`, `clean_maildir_tmp`.
//! - `writer.rs`: `MessageWriter`, `SpooledMessage`, delivery into a Maildir.
//! - `form.rs`: the one rule for the stored form (CRLF to LF), the wire form (LF to CRLF)
//!   and the `S=`/`W=` sizes, used by delivery, APPEND, a file found without `W=`, and IMAP
//!   serving a message.
//! - `maildir.rs`: file names, creating a Maildir, and `write_message`, the one write path
//!   of every message into a folder (delivery, APPEND, COPY).
//! - `quota.rs`: the account's quota (`QuotaLimit`): the one reader and writer of the
//!   Maildir++ `maildirsize` file, as Dovecot's `quota = maildir` backend keeps it, the one
//!   usage scan, and the lock every writer holds from its check to its recorded line.
//! - `retire.rs`: moving a removed mailbox's files aside (or deleting them), so that an
//!   address added again starts empty.
//! - `scripts.rs`: a user's Sieve scripts (`ScriptStore`) in Pigeonhole's layout,
//!   `~/sieve/NAME.sieve` and the `~/.dovecot.sieve` link to the active one.
//! - `mailbox/`: the IMAP-facing side: [`MailStore`], [`Account`], [`Folder`] (folders, UIDs,
//!   flags, keywords, modseqs) in Dovecot 2.3's own files; a delivery wakes the open
//!   [`Folder`] of its Maildir through a registry shared with [`Store`].
//!
//! # Durability contract
//!
//! `deliver` returns `Ok` only after the message file is fsync'd and the `new/` directory
//! holding its name is fsync'd: a `250` sent after it survives a power cut.
//! Nothing partial is ever visible in `new/` or `cur/`: files are complete in `tmp/` before
//! they get a name in `new/`, and that name is made with `link(2)`, which never replaces an
//! existing message. A crash leaves at most stray files in `tmp/` (Dovecot deletes those
//! older than 36 hours; [`Store::clean_spool`] deletes the spool's, [`clean_maildir_tmp`] a
//! Maildir's, from before the server started).
//! The `maildirsize` update comes after the message is safe and is best effort: a failure is
//! logged, and the file is recalculated when it is missing or looks wrong.
//! Quota is checked before anything is written into the Maildir, so a refused message leaves
//! no trace there (no Maildir, no `maildirsize` is created for it).
//! Mailstead's own writers keep `maildirsize` exact among themselves: delivery, APPEND,
//! COPY/MOVE and EXPUNGE each hold a shared `flock(2)` on the Maildir directory from the quota
//! check to its recorded line, and a rewrite from a scan or a folder DELETE holds it
//! exclusively. Dovecot ignores that lock, so against Dovecot's
//! own writes the file is as approximate as Maildir++ always is (and recalculated when it
//! looks wrong).
//!
//! # SECURITY
//!
//! Untrusted input: the message bytes, which delivery copies and never parses, and the folder
//! names IMAP clients choose, which `mailbox::name` checks before they reach a path (no control
//! file names, depth and length bounded). Delivery's file names come from the clock, the pid,
//! a counter and the host name given to [`Store::new`]; nothing from the message or the
//! envelope reaches a path. The Maildir path comes from the directory, which refuses addresses
//! unsafe as paths; symbolic links inside a Maildir (folders, message files, lock paths) are
//! never followed. Files are created `0600`, directories `0700`. This crate knows nothing
//! about SQL, IMAP or SMTP.

pub mod acl;
mod dirsync;
pub mod form;
pub mod mailbox;
mod maildir;
pub mod private_seen;
mod quota;
mod retire;
mod scripts;
mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

pub use dirsync::sync_dir;
pub use mailbox::{
    Account, CacheKey, FlagOperation, Folder, FolderInfo, FolderLayout, MailStore, MailboxError,
    MessageMeta, NewMessage, Pop3Record, QuotaUsage, RankKey, Snapshot, SortRanks, SpecialUse,
    StoreResult, SystemFlags, WatchGuard, email_id, quota_usage,
};
pub use private_seen::uid_set_string;
pub use quota::{QuotaLimit, QuotaResource};
pub use retire::{Retire, RetireError, RetiredDir, retire_mailbox};
pub use scripts::{
    ActiveScript, DEFAULT_MAX_SCRIPT_BYTES, MAX_SCRIPT_NAME_CHARS, RESCUED_SCRIPT_NAME,
    ScriptEntry, ScriptError, ScriptStore, ScriptUsage, check_script_name,
};
pub use writer::{MessageWriter, SpooledMessage};

/// The handle to local delivery; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    /// The host name as it appears in Maildir file names, with `/` and `:` escaped.
    hostname: String,
    /// `<spool>/tmp`, where messages are written before they are linked into mailboxes.
    spool_tmp: PathBuf,
    /// Open IMAP folders by Maildir path, woken after a delivery (shared with `MailStore`).
    notifier: Arc<mailbox::notify::Notifier>,
}

/// One message written into one Maildir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The file in `<maildir>/new/`.
    pub path: PathBuf,
    /// Its size on disk (the `S=` of its name).
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The message does not fit in the mailbox's quota. Nothing was written.
    #[error(
        "mailbox {} is over quota: {used} of {limit} {resource} used, the message needs {size}",
        maildir.display()
    )]
    OverQuota {
        maildir: PathBuf,
        resource: QuotaResource,
        limit: u64,
        used: u64,
        size: u64,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The host name cannot be part of a Maildir file name.
    #[error(
        "host name {0:?} cannot be used in Maildir file names: it is empty or has a control character or a comma"
    )]
    InvalidHostname(String),
    /// A blocking file-system task panicked or was cancelled.
    #[error("a file-system task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// Whether the sender should try again later (4xx) rather than give up (5xx).
    /// Every I/O failure (disk full, permissions, a vanished mount) is temporary: nothing is
    /// lost by retrying. Over quota is permanent here; a caller that prefers Dovecot's
    /// `quota_full_tempfail` can say otherwise.
    pub fn is_temporary(&self) -> bool {
        match self {
            StoreError::OverQuota { .. } | StoreError::InvalidHostname(_) => false,
            StoreError::Io { .. } | StoreError::Task(_) => true,
        }
    }

    fn io(path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl Store {
    /// `spool_dir` is where a message is written once before it is linked into mailboxes.
    /// On the same filesystem as the mailboxes (the default `<data_dir>/spool`) delivery is a
    /// hard link; elsewhere it is a copy. Creates `<spool_dir>/tmp` if missing.
    ///
    /// # Errors
    ///
    /// `InvalidHostname` for an empty host name or one with a control character or a comma;
    /// `Io` when the spool directory cannot be created.
    pub fn new(hostname: &str, spool_dir: PathBuf) -> Result<Store, StoreError> {
        let hostname = maildir::sanitize_hostname(hostname)?;
        let spool_tmp = spool_dir.join("tmp");
        if let Err(err) = maildir::create_dir_all_private(&spool_tmp) {
            return Err(StoreError::io(&spool_tmp, err));
        }
        Ok(Store {
            inner: Arc::new(StoreInner {
                hostname,
                spool_tmp,
                notifier: Arc::default(),
            }),
        })
    }

    /// Starts a message: bytes given to the writer are streamed to a temporary file in
    /// `<spool_dir>/tmp`.
    ///
    /// # Errors
    ///
    /// `Io` when the file cannot be created.
    pub async fn begin(&self) -> Result<MessageWriter, StoreError> {
        MessageWriter::create(Arc::clone(&self.inner)).await
    }

    /// Whether a message of `size` bytes fits in the Maildir's quota now (Dovecot's
    /// `lmtp_rcpt_check_quota`): for refusing at RCPT time what delivery would refuse.
    /// Delivery checks again; this only answers early.
    ///
    /// # Errors
    ///
    /// `OverQuota` when it does not fit; `Io` when `maildirsize` cannot be read.
    pub async fn check_quota(
        &self,
        maildir: &Path,
        quota: QuotaLimit,
        size: u64,
    ) -> Result<(), StoreError> {
        let maildir = maildir.to_path_buf();
        run_blocking(move || quota::fits(&maildir, quota, size, 1)).await
    }

    /// A message file the outbound queue keeps (written by [`SpooledMessage::link_to`]), to
    /// deliver it again through the same path as a new message. Dropping the handle leaves
    /// the file.
    ///
    /// # Errors
    ///
    /// `Io` when the file cannot be read.
    pub async fn queued(&self, path: PathBuf) -> Result<SpooledMessage, StoreError> {
        SpooledMessage::open_kept(Arc::clone(&self.inner), path).await
    }

    /// Removes leftovers in `<spool_dir>/tmp` (messages whose session died); call at start,
    /// before any `begin`. Returns how many files were removed.
    ///
    /// # Errors
    ///
    /// `Io` when the directory cannot be read or a file cannot be removed.
    pub async fn clean_spool(&self) -> Result<u64, StoreError> {
        let spool_tmp = self.inner.spool_tmp.clone();
        run_blocking(move || maildir::remove_files_in(&spool_tmp)).await
    }
}

/// Removes what a crash left in `<maildir>/tmp`: regular files last modified before
/// `before` (give the server's start time, or earlier, so that deliveries in progress are
/// never touched). Dovecot does the same for files older than 36 hours. A Maildir without
/// `tmp/` has nothing to clean. Returns how many files were removed.
///
/// # Errors
///
/// `Io` when the directory cannot be read or a file cannot be removed.
pub async fn clean_maildir_tmp(maildir: &Path, before: SystemTime) -> Result<u64, StoreError> {
    let tmp = maildir.join("tmp");
    run_blocking(move || maildir::remove_stale_files_in(&tmp, before)).await
}

/// Runs blocking file-system work off the async threads.
async fn run_blocking<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(res) => res,
        Err(err) => Err(StoreError::Task(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::fs;

    use super::*;

    const MESSAGE: &[u8] = b"From: a@example.com\r\nSubject: test\r\n\r\nHello\r\nworld\r\n";

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        spool: PathBuf,
        maildir: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = dir.path().join("spool");
        let store = Store::new("mx.example.com", spool.clone()).expect("store");
        let maildir = dir.path().join("mail/example.com/bob");
        Fixture {
            store,
            spool,
            maildir,
            _dir: dir,
        }
    }

    async fn spool(store: &Store, bytes: &[u8]) -> SpooledMessage {
        let mut writer = store.begin().await.expect("begin");
        // Odd chunks, so CRLF pairs are split across writes.
        for chunk in bytes.chunks(7) {
            writer.write_all(chunk).await.expect("write");
        }
        writer.finish().await.expect("finish")
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(dir) {
            Ok(entries) => entries
                .map(|entry| {
                    entry
                        .expect("entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    fn limit(bytes: u64) -> QuotaLimit {
        QuotaLimit::bytes(Some(bytes))
    }

    #[test]
    fn hostname_is_escaped_like_dovecot() {
        assert_eq!(
            maildir::sanitize_hostname("mx/1:2.example").expect("valid"),
            "mx\\0571\\0722.example"
        );
        assert!(maildir::sanitize_hostname("").is_err());
        assert!(maildir::sanitize_hostname("a,S=1").is_err());
        assert!(maildir::sanitize_hostname("a\nb").is_err());
    }

    #[test]
    fn names_are_dovecot_style_and_unique() {
        let name = maildir::unique_name("host");
        let (secs, rest) = name.split_once(".M").expect("secs.M");
        assert!(secs.parse::<u64>().is_ok(), "{name}");
        let (usecs, rest) = rest.split_once('P').expect("P");
        assert!(usecs.parse::<u32>().is_ok_and(|usecs| usecs < 1_000_000));
        let (pid, rest) = rest.split_once('Q').expect("Q");
        assert_eq!(pid, std::process::id().to_string());
        let (counter, host) = rest.split_once('.').expect(".host");
        assert!(counter.parse::<u64>().is_ok());
        assert_eq!(host, "host");
        assert_eq!(maildir::new_name("b", 10, 12), "b,S=10,W=12");
        let names: HashSet<String> = (0..1000).map(|_| maildir::unique_name("h")).collect();
        assert_eq!(names.len(), 1000);
    }

    #[tokio::test]
    async fn delivers_lf_with_sizes_in_the_name() {
        let fx = fixture();
        let message = spool(&fx.store, MESSAGE).await;
        let stored = b"From: a@example.com\nSubject: test\n\nHello\nworld\n";
        assert_eq!(message.size(), stored.len() as u64);
        assert_eq!(message.vsize(), MESSAGE.len() as u64);

        let delivered = message
            .deliver(&fx.maildir, QuotaLimit::UNLIMITED, None)
            .await
            .expect("deliver");
        assert_eq!(fs::read(&delivered.path).expect("read"), stored);
        assert_eq!(delivered.size, stored.len() as u64);
        let name = delivered
            .path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("name");
        assert!(
            name.ends_with(&format!(
                ".mx.example.com,S={},W={}",
                stored.len(),
                MESSAGE.len()
            )),
            "{name}"
        );
        assert_eq!(
            delivered.path.parent(),
            Some(fx.maildir.join("new").as_path())
        );
        assert!(fx.maildir.join("cur").is_dir());
        assert!(files_in(&fx.maildir.join("tmp")).is_empty());
        // Unlimited and no maildirsize before: none is created.
        assert!(!fx.maildir.join("maildirsize").exists());

        // The same spooled message goes to a second mailbox; dropping it empties the spool.
        let other = fx.maildir.with_file_name("alice");
        message
            .deliver(&other, QuotaLimit::UNLIMITED, None)
            .await
            .expect("deliver");
        drop(message);
        assert!(files_in(&fx.spool.join("tmp")).is_empty());
        assert_eq!(files_in(&other.join("new")).len(), 1);
        assert_eq!(fs::read(&delivered.path).expect("still there"), stored);
    }

    #[tokio::test]
    async fn prefix_is_per_copy_and_counted_in_sizes() {
        let fx = fixture();
        let message = spool(&fx.store, MESSAGE).await;
        let stored = b"From: a@example.com\nSubject: test\n\nHello\nworld\n";
        let other = fx.maildir.with_file_name("alice");
        let bob = message
            .deliver(
                &fx.maildir,
                QuotaLimit::UNLIMITED,
                Some(b"Delivered-To: bob@example.com\r\n"),
            )
            .await
            .expect("bob");
        let alice = message
            .deliver(
                &other,
                limit(1 << 20),
                Some(b"Delivered-To: alice@example.com\r\n"),
            )
            .await
            .expect("alice");
        let plain = message
            .deliver(&fx.maildir, QuotaLimit::UNLIMITED, None)
            .await
            .expect("plain");
        for (delivered, address) in [(&bob, "bob"), (&alice, "alice")] {
            let mut expected = format!("Delivered-To: {address}@example.com\n").into_bytes();
            expected.extend_from_slice(stored);
            assert_eq!(fs::read(&delivered.path).expect("read"), expected);
            assert_eq!(delivered.size, expected.len() as u64);
            let name = delivered.path.to_string_lossy().into_owned();
            let vsize = expected.len() + expected.iter().filter(|&&b| b == b'\n').count();
            assert!(
                name.ends_with(&format!(",S={},W={vsize}", expected.len())),
                "{name}"
            );
        }
        // Copies, not links: the spool file and the plain copy are untouched.
        assert_eq!(fs::read(&plain.path).expect("read"), stored);
        assert_eq!(plain.size, message.size());
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(&bob.path).expect("stat").nlink(), 1);
        assert_eq!(
            fs::read_to_string(other.join("maildirsize")).expect("maildirsize"),
            format!("1048576S\n{} 1\n", alice.size)
        );
    }

    #[tokio::test]
    async fn over_quota_is_refused_before_any_write() {
        let fx = fixture();
        let message = spool(&fx.store, MESSAGE).await;
        let err = message
            .deliver(&fx.maildir, limit(message.size() - 1), None)
            .await
            .expect_err("over quota");
        assert!(
            matches!(err, StoreError::OverQuota { used: 0, .. }),
            "{err}"
        );
        assert!(!err.is_temporary());
        assert!(
            !fx.maildir.exists(),
            "nothing may appear for a refused message"
        );

        // Exactly full is allowed; one more byte is not, and leaves the Maildir untouched.
        message
            .deliver(&fx.maildir, limit(message.size() * 2), None)
            .await
            .expect("fits");
        message
            .deliver(&fx.maildir, limit(message.size() * 2), None)
            .await
            .expect("fits exactly");
        let before: Vec<Vec<String>> = ["new", "cur", "tmp", ""]
            .iter()
            .map(|sub| files_in(&fx.maildir.join(sub)))
            .collect();
        let maildirsize = fs::read(fx.maildir.join("maildirsize")).expect("maildirsize");
        let err = message
            .deliver(&fx.maildir, limit(message.size() * 2), None)
            .await
            .expect_err("full");
        assert!(matches!(err, StoreError::OverQuota { .. }), "{err}");
        let after: Vec<Vec<String>> = ["new", "cur", "tmp", ""]
            .iter()
            .map(|sub| files_in(&fx.maildir.join(sub)))
            .collect();
        assert_eq!(before, after);
        assert_eq!(
            fs::read(fx.maildir.join("maildirsize")).expect("maildirsize"),
            maildirsize
        );
    }

    #[tokio::test]
    async fn maildirsize_is_appended_and_recalculated() {
        let fx = fixture();
        let quota = limit(1 << 20);
        let message = spool(&fx.store, MESSAGE).await;
        let size = message.size();
        message
            .deliver(&fx.maildir, quota, None)
            .await
            .expect("first");
        let path = fx.maildir.join("maildirsize");
        assert_eq!(
            fs::read_to_string(&path).expect("created"),
            format!("1048576S\n{size} 1\n")
        );
        message
            .deliver(&fx.maildir, quota, None)
            .await
            .expect("second");
        assert_eq!(
            fs::read_to_string(&path).expect("appended"),
            format!("1048576S\n{size} 1\n{size} 1\n")
        );

        // Deleted: recalculated from the files, including one in a Maildir++ folder and one
        // Dovecot has moved to cur/ with flags.
        let folder = fx.maildir.join(".Archive");
        message
            .deliver(&folder, QuotaLimit::UNLIMITED, None)
            .await
            .expect("folder");
        let new_files = files_in(&fx.maildir.join("new"));
        fs::rename(
            fx.maildir.join("new").join(&new_files[0]),
            fx.maildir.join("cur").join(format!("{}:2,S", new_files[0])),
        )
        .expect("move to cur");
        fs::remove_file(&path).expect("delete maildirsize");
        message
            .deliver(&fx.maildir, quota, None)
            .await
            .expect("third");
        assert_eq!(
            fs::read_to_string(&path).expect("recalculated"),
            format!("1048576S\n{} 4\n", size * 4)
        );

        // A changed limit makes the file stale too.
        let message_count = 5;
        message
            .deliver(&fx.maildir, limit(1 << 21), None)
            .await
            .expect("fourth");
        assert_eq!(
            fs::read_to_string(&path).expect("recalculated"),
            format!("2097152S\n{} {message_count}\n", size * message_count)
        );

        // A wrong count in a fresh-looking file is believed, as Dovecot does; the check
        // refuses on it without scanning.
        fs::write(&path, "100S\n90 1\n").expect("write");
        let err = message
            .deliver(&fx.maildir, limit(100), None)
            .await
            .expect_err("over");
        assert!(
            matches!(
                err,
                StoreError::OverQuota {
                    used: 90,
                    limit: 100,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_deliveries_are_all_kept() {
        let fx = fixture();
        let mut tasks = Vec::new();
        for task in 0..20 {
            let store = fx.store.clone();
            let maildir = fx.maildir.clone();
            tasks.push(tokio::spawn(async move {
                let mut paths = Vec::new();
                for n in 0..10 {
                    let body = format!("Subject: {task}/{n}\r\n\r\nbody {task} {n}\r\n");
                    let message = spool(&store, body.as_bytes()).await;
                    let delivered = message
                        .deliver(&maildir, limit(1 << 30), None)
                        .await
                        .expect("deliver");
                    paths.push((delivered.path, body.replace("\r\n", "\n")));
                }
                paths
            }));
        }
        let mut seen = HashSet::new();
        for task in tasks {
            for (path, body) in task.await.expect("task") {
                assert_eq!(fs::read_to_string(&path).expect("read"), body);
                assert!(seen.insert(path), "two deliveries got the same name");
            }
        }
        assert_eq!(seen.len(), 200);
        assert_eq!(files_in(&fx.maildir.join("new")).len(), 200);
        assert!(files_in(&fx.maildir.join("tmp")).is_empty());
        assert!(files_in(&fx.spool.join("tmp")).is_empty());
        // The quota file counted every delivery, whatever the interleaving.
        let text = fs::read_to_string(fx.maildir.join("maildirsize")).expect("maildirsize");
        let count: i64 = text
            .lines()
            .skip(1)
            .map(|line| {
                line.split_whitespace()
                    .nth(1)
                    .and_then(|count| count.parse::<i64>().ok())
                    .expect("count")
            })
            .sum();
        assert_eq!(count, 200, "{text}");
    }

    #[tokio::test]
    async fn clean_spool_removes_leftovers() {
        let fx = fixture();
        fs::write(fx.spool.join("tmp/1.M1P1Q1.old"), b"partial").expect("write");
        fs::write(fx.spool.join("tmp/2.M1P1Q2.old"), b"partial").expect("write");
        assert_eq!(fx.store.clean_spool().await.expect("clean"), 2);
        assert!(files_in(&fx.spool.join("tmp")).is_empty());
        assert_eq!(fx.store.clean_spool().await.expect("clean again"), 0);
    }

    #[tokio::test]
    async fn clean_maildir_tmp_removes_only_old_regular_files() {
        let fx = fixture();
        // No Maildir yet: nothing to do.
        let now = std::time::SystemTime::now();
        assert_eq!(clean_maildir_tmp(&fx.maildir, now).await.expect("clean"), 0);

        let message = spool(&fx.store, MESSAGE).await;
        let delivered = message
            .deliver(&fx.maildir, QuotaLimit::UNLIMITED, None)
            .await
            .expect("deliver");
        let tmp = fx.maildir.join("tmp");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for name in ["1.M1P1Q1.old", "2.M1P1Q2.old"] {
            let file = fs::File::create(tmp.join(name)).expect("create");
            file.set_modified(old).expect("mtime");
        }
        fs::write(tmp.join("3.M1P1Q3.live"), b"being written").expect("write");
        fs::create_dir(tmp.join("subdir")).expect("mkdir");
        let outside = fx.maildir.with_file_name("outside");
        fs::write(&outside, b"not ours").expect("write");
        std::os::unix::fs::symlink(&outside, tmp.join("link")).expect("symlink");

        let started = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        assert_eq!(
            clean_maildir_tmp(&fx.maildir, started)
                .await
                .expect("clean"),
            2
        );
        assert_eq!(files_in(&tmp), ["3.M1P1Q3.live", "link", "subdir"]);
        assert!(outside.exists());
        // new/ and cur/ are never touched.
        assert_eq!(
            fs::read(&delivered.path).expect("kept").len() as u64,
            delivered.size
        );
        assert_eq!(
            clean_maildir_tmp(&fx.maildir, started)
                .await
                .expect("again"),
            0
        );
    }

    #[tokio::test]
    async fn dropped_writer_leaves_nothing() {
        let fx = fixture();
        let mut writer = fx.store.begin().await.expect("begin");
        writer.write_all(MESSAGE).await.expect("write");
        assert_eq!(files_in(&fx.spool.join("tmp")).len(), 1);
        drop(writer);
        assert!(files_in(&fx.spool.join("tmp")).is_empty());
        assert!(!fx.maildir.exists());
    }

    #[tokio::test]
    async fn large_message_streams_through() {
        let fx = fixture();
        let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
        let mut writer = fx.store.begin().await.expect("begin");
        for _ in 0..20_000 {
            writer.write_all(line).await.expect("write");
        }
        let message = writer.finish().await.expect("finish");
        assert_eq!(message.size(), 20_000 * (line.len() as u64 - 1));
        assert_eq!(message.vsize(), 20_000 * line.len() as u64);
        let delivered = message
            .deliver(&fx.maildir, QuotaLimit::UNLIMITED, None)
            .await
            .expect("deliver");
        assert_eq!(
            fs::metadata(&delivered.path).expect("stat").len(),
            message.size()
        );
    }

    #[test]
    fn temporary_errors() {
        let io = StoreError::Io {
            path: PathBuf::from("/x"),
            source: io::Error::from(io::ErrorKind::StorageFull),
        };
        assert!(io.is_temporary());
        let quota = StoreError::OverQuota {
            maildir: PathBuf::from("/x"),
            resource: QuotaResource::Bytes,
            limit: 1,
            used: 1,
            size: 1,
        };
        assert!(!quota.is_temporary());
    }
}
