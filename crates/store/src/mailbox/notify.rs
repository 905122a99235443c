//! Change signals for open folders, keyed by the folder's Maildir path. A delivery through
//! `Store` wakes the folder it went into at once; while a session IDLEs on a folder, an
//! inotify watch on its `new/` and `cur/` wakes it for anyone else's change too (another
//! Mailstead process on the same Maildir, Dovecot's LDA, a shell).
//!
//! One inotify instance per process, created at the first watch; one pair of watches per
//! folder, shared by every session IDLEing on it and removed when the last one stops. When
//! inotify is unavailable or out of watches, IDLE falls back to its periodic check.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use futures_util::StreamExt;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use tokio::sync::watch;

#[derive(Default)]
pub(crate) struct Notifier {
    folders: Mutex<HashMap<PathBuf, Weak<watch::Sender<u64>>>>,
    watching: Mutex<Watching>,
}

#[derive(Default)]
struct Watching {
    /// The process's inotify instance, once a session IDLEd.
    watches: Option<Watches>,
    /// inotify could not be set up: not tried again.
    unavailable: bool,
    /// Watched Maildirs: how many sessions want them, and the watches on `new/` and `cur/`.
    dirs: HashMap<PathBuf, (usize, Vec<WatchDescriptor>)>,
    by_descriptor: HashMap<WatchDescriptor, PathBuf>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

/// A session's interest in a folder's directory; the watch goes with the last guard.
pub struct WatchGuard {
    notifier: Weak<Notifier>,
    maildir: PathBuf,
}

impl fmt::Debug for WatchGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchGuard")
            .field("maildir", &self.maildir)
            .finish()
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if let Some(notifier) = self.notifier.upgrade() {
            notifier.unwatch(&self.maildir);
        }
    }
}

impl Notifier {
    pub(crate) fn register(&self, maildir: &Path, signal: &Arc<watch::Sender<u64>>) {
        let mut folders = super::lock(&self.folders);
        folders.retain(|_, weak| weak.strong_count() > 0);
        folders.insert(maildir.to_path_buf(), Arc::downgrade(signal));
    }

    /// Called after a message landed in `maildir`; a no-op when no folder is open there.
    pub(crate) fn notify(&self, maildir: &Path) {
        let signal = super::lock(&self.folders)
            .get(maildir)
            .and_then(Weak::upgrade);
        if let Some(signal) = signal {
            signal.send_modify(|serial| *serial = serial.wrapping_add(1));
        }
    }

    /// Watches `maildir`'s `new/` and `cur/` until the guard goes; `None` when inotify is
    /// unavailable or out of watches (the caller then checks periodically).
    pub(crate) fn watch(self: &Arc<Self>, maildir: &Path) -> Option<WatchGuard> {
        let guard = WatchGuard {
            notifier: Arc::downgrade(self),
            maildir: maildir.to_path_buf(),
        };
        let mut watching = super::lock(&self.watching);
        let watching = &mut *watching;
        if let Some((count, _)) = watching.dirs.get_mut(maildir) {
            *count += 1;
            return Some(guard);
        }
        if watching.watches.is_none() && !watching.unavailable {
            match self.start() {
                Ok(watches) => watching.watches = Some(watches),
                Err(err) => {
                    tracing::warn!(cause = %err, "inotify unavailable: IDLE checks folders periodically");
                    watching.unavailable = true;
                }
            }
        }
        let watches = watching.watches.as_mut()?;
        let mask = WatchMask::CREATE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::DELETE
            | WatchMask::ONLYDIR
            | WatchMask::DONT_FOLLOW;
        let mut descriptors = Vec::with_capacity(2);
        for sub in ["new", "cur"] {
            match watches.add(maildir.join(sub), mask) {
                Ok(descriptor) => descriptors.push(descriptor),
                Err(err) => {
                    tracing::debug!(dir = %maildir.display(), cause = %err, "no inotify watch");
                    for descriptor in descriptors {
                        let _ = watches.remove(descriptor);
                    }
                    return None;
                }
            }
        }
        for descriptor in &descriptors {
            watching
                .by_descriptor
                .insert(descriptor.clone(), maildir.to_path_buf());
        }
        watching
            .dirs
            .insert(maildir.to_path_buf(), (1, descriptors));
        Some(guard)
    }

    fn unwatch(&self, maildir: &Path) {
        let mut watching = super::lock(&self.watching);
        let watching = &mut *watching;
        let Some((count, _)) = watching.dirs.get_mut(maildir) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        let Some((_, descriptors)) = watching.dirs.remove(maildir) else {
            return;
        };
        for descriptor in descriptors {
            watching.by_descriptor.remove(&descriptor);
            if let Some(watches) = watching.watches.as_mut() {
                // Fails when the directory went (the kernel removed the watch): nothing to do.
                let _ = watches.remove(descriptor);
            }
        }
    }

    /// The inotify instance and the task that turns its events into folder signals.
    fn start(self: &Arc<Self>) -> io::Result<Watches> {
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let inotify = Inotify::init()?;
        let watches = inotify.watches();
        let mut events = inotify.into_event_stream(vec![0u8; 4096])?;
        let notifier = Arc::downgrade(self);
        runtime.spawn(async move {
            while let Some(event) = events.next().await {
                let Some(notifier) = notifier.upgrade() else {
                    break;
                };
                match event {
                    Ok(event) => notifier.woken(&event.wd, event.mask),
                    Err(err) => {
                        tracing::warn!(cause = %err, "inotify failed: IDLE checks folders periodically");
                        break;
                    }
                }
            }
        });
        Ok(watches)
    }

    fn woken(&self, descriptor: &WatchDescriptor, mask: EventMask) {
        let dirs: Vec<PathBuf> = {
            let watching = super::lock(&self.watching);
            if mask.contains(EventMask::Q_OVERFLOW) {
                // Events were lost: every watched folder may have changed.
                watching.dirs.keys().cloned().collect()
            } else {
                watching
                    .by_descriptor
                    .get(descriptor)
                    .cloned()
                    .into_iter()
                    .collect()
            }
        };
        for dir in dirs {
            self.notify(&dir);
        }
    }
}
