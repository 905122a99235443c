//! Spooling a message: CRLF in, LF on disk, both sizes counted on the way.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncWriteExt, BufWriter};

use crate::form::{self, LineEndings, Sizes};
use crate::maildir::{self, Content, Placement};
use crate::quota::{self, QuotaLimit};
use crate::{Delivered, StoreError, StoreInner, run_blocking};

/// How much of a message is held in memory before it goes to the file.
const WRITE_BUFFER: usize = 64 * 1024;

/// A message being received. Dropping it before [`MessageWriter::finish`] removes the
/// temporary file: nothing of it is ever delivered.
#[derive(Debug)]
pub struct MessageWriter {
    inner: Arc<StoreInner>,
    /// `None` once finished; the file is closed before it is synced and handed on.
    file: Option<BufWriter<tokio::fs::File>>,
    path: PathBuf,
    line_endings: LineEndings,
    /// Scratch space for the converted bytes of one `write_all`.
    converted: Vec<u8>,
}

/// A complete, fsync'd message in the spool, ready to be delivered to any number of
/// mailboxes. Dropping it removes the spool file; delivered copies stay.
#[derive(Debug)]
pub struct SpooledMessage {
    inner: Arc<StoreInner>,
    path: PathBuf,
    sizes: Sizes,
    /// A message the outbound queue owns (`Store::queued`): its file outlives this handle.
    kept: bool,
    /// When its transfer ended, for the delivery latency; unknown for a queued message.
    received: Option<Instant>,
}

impl MessageWriter {
    pub(crate) async fn create(inner: Arc<StoreInner>) -> Result<MessageWriter, StoreError> {
        let spool_tmp = inner.spool_tmp.clone();
        let hostname = inner.hostname.clone();
        let (file, path) = run_blocking(move || {
            loop {
                let path = spool_tmp.join(maildir::unique_name(&hostname));
                let res = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path);
                match res {
                    Ok(file) => return Ok((file, path)),
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(err) => return Err(StoreError::io(&path, err)),
                }
            }
        })
        .await?;
        Ok(MessageWriter {
            inner,
            file: Some(BufWriter::with_capacity(
                WRITE_BUFFER,
                tokio::fs::File::from_std(file),
            )),
            path,
            line_endings: LineEndings::default(),
            converted: Vec::new(),
        })
    }

    /// Appends wire bytes (CRLF line endings); they are stored with LF line endings.
    ///
    /// # Errors
    ///
    /// `Io` when the spool file cannot be written (disk full: temporary).
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.converted.clear();
        self.line_endings.convert(bytes, &mut self.converted);
        let Some(file) = self.file.as_mut() else {
            return Err(StoreError::Task("write after a failed finish".to_owned()));
        };
        match file.write_all(&self.converted).await {
            Ok(()) => Ok(()),
            Err(err) => Err(StoreError::io(&self.path, err)),
        }
    }

    /// The bytes stored so far (LF line endings).
    pub fn size(&self) -> u64 {
        self.line_endings.sizes().size
    }

    /// Flushes the file. It is not fsync'd here: whatever keeps it syncs what it keeps (the
    /// Maildir copy or link in `deliver`, the queue's link in `link_to`), so a message
    /// delivered into one mailbox costs one file fsync, not two.
    ///
    /// # Errors
    ///
    /// `Io` when the file cannot be written; the file is removed.
    pub async fn finish(mut self) -> Result<SpooledMessage, StoreError> {
        let mut tail = Vec::new();
        self.line_endings.finish(&mut tail);
        let Some(mut file) = self.file.take() else {
            return Err(StoreError::Task("finish called twice".to_owned()));
        };
        let res = async {
            file.write_all(&tail).await?;
            file.flush().await
        }
        .await;
        if let Err(err) = res {
            // Drop removes the file.
            return Err(StoreError::io(&self.path, err));
        }
        drop(file);
        let path = std::mem::take(&mut self.path);
        Ok(SpooledMessage {
            inner: Arc::clone(&self.inner),
            path,
            sizes: self.line_endings.sizes(),
            kept: false,
            received: Some(Instant::now()),
        })
    }
}

impl Drop for MessageWriter {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            remove_quietly(&self.path);
        }
    }
}

impl SpooledMessage {
    pub(crate) async fn open_kept(
        inner: Arc<StoreInner>,
        path: PathBuf,
    ) -> Result<SpooledMessage, StoreError> {
        let file_path = path.clone();
        let sizes = run_blocking(move || {
            let bytes = std::fs::read(&file_path).map_err(|err| StoreError::io(&file_path, err))?;
            Ok(Sizes::of_stored(&bytes))
        })
        .await?;
        Ok(SpooledMessage {
            inner,
            path,
            sizes,
            kept: true,
            received: None,
        })
    }

    /// Gives the spooled file a second name, `target` (the outbound queue's copy), a hard link
    /// where it can be, a copy across file systems; either is fsync'd. The directory of
    /// `target` is not synced: the caller does that once for everything it adds.
    ///
    /// # Errors
    ///
    /// `Io` when neither link nor copy works.
    pub async fn link_to(&self, target: &Path) -> Result<(), StoreError> {
        let source = self.path.clone();
        let target = target.to_path_buf();
        run_blocking(move || match std::fs::hard_link(&source, &target) {
            Ok(()) => std::fs::File::open(&target)
                .and_then(|file| file.sync_data())
                .map_err(|err| StoreError::io(&target, err)),
            Err(err) if err.kind() == std::io::ErrorKind::CrossesDevices => {
                std::fs::copy(&source, &target)
                    .and_then(|_| std::fs::File::open(&target)?.sync_data())
                    .map_err(|err| StoreError::io(&target, err))
            }
            Err(err) => Err(StoreError::io(&target, err)),
        })
        .await
    }

    /// The header section as stored (LF line endings), at most `limit` bytes of it.
    ///
    /// # Errors
    ///
    /// `Io` when the file cannot be read.
    pub async fn header_block(&self, limit: usize) -> Result<Vec<u8>, StoreError> {
        let path = self.path.clone();
        run_blocking(move || {
            use std::io::Read;
            let file = std::fs::File::open(&path).map_err(|err| StoreError::io(&path, err))?;
            let mut head = Vec::with_capacity(limit.min(64 * 1024));
            file.take(limit as u64)
                .read_to_end(&mut head)
                .map_err(|err| StoreError::io(&path, err))?;
            if let Some(end) = head.windows(2).position(|pair| pair == b"\n\n") {
                head.truncate(end + 1);
            }
            Ok(head)
        })
        .await
    }

    /// The whole message with CRLF line endings (what goes on the wire), `prefix` (wire bytes)
    /// first.
    ///
    /// # Errors
    ///
    /// `Io` when the file cannot be read.
    pub async fn wire_bytes(&self, prefix: &[u8]) -> Result<Vec<u8>, StoreError> {
        let path = self.path.clone();
        let mut wire = prefix.to_vec();
        run_blocking(move || {
            let stored = std::fs::read(&path).map_err(|err| StoreError::io(&path, err))?;
            form::WireForm::default().convert(&stored, &mut wire);
            Ok(wire)
        })
        .await
    }

    /// The spool file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn sizes(&self) -> Sizes {
        self.sizes
    }

    /// The size on disk, LF line endings: Maildir's `S=`.
    pub fn size(&self) -> u64 {
        self.sizes.size
    }

    /// The size with CRLF line endings, what IMAP's `RFC822.SIZE` reports: Maildir's `W=`.
    pub fn vsize(&self) -> u64 {
        self.sizes.vsize()
    }

    /// Delivers into the INBOX of the Maildir at `maildir`, creating `cur/`, `new/` and `tmp/`
    /// if missing. The quota is checked first, from `maildirsize` (recalculated when missing
    /// or stale); a message that does not fit is refused before anything is written.
    /// Returns once the file and the `new/` directory are fsync'd.
    ///
    /// `prefix`, when given, is written before the spooled message in this copy only: the
    /// per-recipient header lines such as `Delivered-To:` (wire bytes, CRLF line endings,
    /// stored with LF like the rest). Such a copy is a copy, never a hard link to the shared
    /// spool file, and its `S=`/`W=` sizes and quota charge include the prefix.
    ///
    /// # Errors
    ///
    /// `OverQuota` (permanent) when `used + size > limit`; `Io` (temporary) for anything the
    /// file system refuses.
    pub async fn deliver(
        &self,
        maildir: &Path,
        quota: QuotaLimit,
        prefix: Option<&[u8]>,
    ) -> Result<Delivered, StoreError> {
        // A per-recipient prefix is whole header lines (ending in a line end), so the
        // sizes of prefix and spooled bytes add up.
        let (prefix, sizes) = match prefix {
            Some(bytes) => {
                let (stored, prefix_sizes) = form::to_stored(bytes);
                let sizes = Sizes::known(
                    self.sizes.size + prefix_sizes.size,
                    self.sizes.vsize() + prefix_sizes.vsize(),
                );
                (Some(stored), sizes)
            }
            None => (None, self.sizes),
        };
        let spool_path = self.path.clone();
        let hostname = self.inner.hostname.clone();
        let target = maildir.to_path_buf();
        let delivered = run_blocking(move || {
            deliver_into(
                &spool_path,
                prefix.as_deref(),
                sizes,
                &target,
                &hostname,
                quota,
            )
        })
        .await?;
        mailstead_metrics::message_delivered(self.received);
        // Wakes an IDLE session on this Maildir's INBOX within milliseconds.
        self.inner.notifier.notify(maildir);
        Ok(delivered)
    }
}

impl Drop for SpooledMessage {
    fn drop(&mut self) {
        if !self.kept {
            remove_quietly(&self.path);
        }
    }
}

/// Delivers one spooled message into the INBOX of `maildir`, under the account's quota.
fn deliver_into(
    spool_path: &Path,
    prefix: Option<&[u8]>,
    sizes: Sizes,
    maildir: &Path,
    hostname: &str,
    limit: QuotaLimit,
) -> Result<Delivered, StoreError> {
    // Quota first: a refused message must leave no trace, not even a new Maildir.
    if !maildir::is_real_dir(maildir) {
        quota::fits(maildir, limit, sizes.size, 1)?;
    }
    maildir::ensure_maildir(maildir)?;
    let held = quota::reserve(maildir, limit, sizes.size, 1)?;
    let content = match prefix {
        None => Content::Link(spool_path),
        Some(prefix) => Content::Copy {
            prefix,
            source: spool_path,
        },
    };
    let path = maildir::write_message(
        &content,
        &Placement {
            folder: maildir,
            into_cur: false,
            hostname,
            sizes,
            info: "",
            mtime: None,
            sync_dir: true,
        },
    )?;
    held.record(maildir, i64::try_from(sizes.size).unwrap_or(i64::MAX), 1);
    Ok(Delivered {
        path,
        size: sizes.size,
    })
}

/// Removing one directory entry is quick enough to do inline, even from async code; an
/// error leaves a file `clean_spool` removes at the next start.
fn remove_quietly(path: &Path) {
    if let Err(err) = std::fs::remove_file(path)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), cause = %err, "cannot remove spool file");
    }
}
