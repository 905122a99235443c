//! Delivery wakes IDLE: `Store` and `MailStore` share one registry of open folders' change
//! signals, keyed by the folder's Maildir path.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;

#[derive(Default)]
pub(crate) struct Notifier {
    folders: Mutex<HashMap<PathBuf, Weak<watch::Sender<u64>>>>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
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
}
