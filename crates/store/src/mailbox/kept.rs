//! Recently used folders, kept open after their last session leaves, so that selecting one
//! again (a client going back and forth between folders, a login every few minutes) costs a
//! look at the directory's mtimes instead of decoding its whole index and often rescanning
//! it. Bounded by the messages held in all, least recently opened first out; a folder that
//! leaves writes its index then (on a blocking thread), not at every close.
//!
//! Written by hand: a map and an ordered list are all it takes, and the bound is by messages
//! rather than by entries.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::Folder;
use super::lock;

/// At about 200 bytes of state per message, some 40 MiB at most.
const MAX_MESSAGES: usize = 200_000;
/// Many empty folders cost little each, but not nothing.
const MAX_FOLDERS: usize = 4096;

#[derive(Default)]
pub(crate) struct Kept {
    inner: Mutex<KeptInner>,
}

#[derive(Default)]
struct KeptInner {
    /// By directory: the folder, when it was last opened (`clock`) and its size then.
    folders: HashMap<PathBuf, (Arc<Folder>, u64, usize)>,
    /// Directories by when they were last opened, oldest first.
    order: BTreeMap<u64, PathBuf>,
    clock: u64,
    messages: usize,
}

impl Kept {
    /// `folder` was just opened: it is the last to leave now.
    pub(crate) fn keep(&self, dir: &Path, folder: &Arc<Folder>) {
        let size = folder.snapshot().messages.len();
        let mut gone = Vec::new();
        {
            let mut kept = lock(&self.inner);
            let kept = &mut *kept;
            kept.clock += 1;
            let now = kept.clock;
            if let Some((old, at, old_size)) = kept
                .folders
                .insert(dir.to_path_buf(), (Arc::clone(folder), now, size))
            {
                kept.order.remove(&at);
                kept.messages -= old_size;
                gone.push(old);
            }
            kept.order.insert(now, dir.to_path_buf());
            kept.messages += size;
            while kept.messages > MAX_MESSAGES || kept.folders.len() > MAX_FOLDERS {
                let Some((_, oldest)) = kept.order.pop_first() else {
                    break;
                };
                if let Some((folder, _, size)) = kept.folders.remove(&oldest) {
                    kept.messages -= size;
                    gone.push(folder);
                }
            }
        }
        // Dropped outside the lock: the last handle of a folder starts its index write.
        drop(gone);
    }

    /// Lets go of the folder at `dir` and of any below it (renamed, deleted, or its quota
    /// changed).
    pub(crate) fn forget(&self, dir: &Path) {
        let mut gone = Vec::new();
        {
            let mut kept = lock(&self.inner);
            let kept = &mut *kept;
            let dirs: Vec<PathBuf> = kept
                .folders
                .keys()
                .filter(|kept_dir| kept_dir.starts_with(dir))
                .cloned()
                .collect();
            for kept_dir in dirs {
                if let Some((folder, at, size)) = kept.folders.remove(&kept_dir) {
                    kept.order.remove(&at);
                    kept.messages -= size;
                    gone.push(folder);
                }
            }
        }
        drop(gone);
    }

    /// Lets go of every kept folder (the server is stopping), for the caller to write.
    pub(crate) fn take_all(&self) -> Vec<Arc<Folder>> {
        let mut kept = lock(&self.inner);
        kept.order.clear();
        kept.messages = 0;
        kept.folders
            .drain()
            .map(|(_, (folder, _, _))| folder)
            .collect()
    }
}
