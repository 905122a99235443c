//! Group commit for directory fsyncs. A delivery must not return before the name it linked
//! into `new/` is durable, which takes an fsync of the directory; when twenty deliveries to
//! one Maildir link at once, one fsync started after all twenty links covers them all. So a
//! caller either starts an fsync (which covers every link made before it started) or waits
//! for the one running to end and then for the next: never for less than its own link.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

/// The syncs in progress, by directory; an entry lives while someone waits on it.
fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<DirSync>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Arc<DirSync>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

#[derive(Default)]
struct DirSync {
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Default)]
struct State {
    /// Tickets handed out: a caller's ticket is taken after its own change to the directory.
    requested: u64,
    /// Every ticket up to this one is durable.
    completed: u64,
    running: bool,
    /// The last fsync failed; it covered tickets up to the first value.
    failed: Option<(u64, io::ErrorKind, String)>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state is a few counters, consistent at every unlock: a panic elsewhere leaves
    // nothing half-done.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes every name added to or removed from `dir` before this call durable: the one
/// directory fsync of every Maildir and of the outbound queue.
///
/// # Errors
///
/// When the directory cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let entry = Arc::clone(lock(registry()).entry(dir.to_path_buf()).or_default());
    let result = entry.sync(dir);
    let mut dirs = lock(registry());
    // Only the map and this caller hold it: nobody waits, forget it.
    if Arc::strong_count(&entry) == 2 {
        dirs.remove(dir);
    }
    result
}

impl DirSync {
    fn sync(&self, dir: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.requested += 1;
        let ticket = state.requested;
        loop {
            if state.completed >= ticket {
                return Ok(());
            }
            if let Some((covered, kind, message)) = &state.failed
                && *covered >= ticket
            {
                return Err(io::Error::new(*kind, message.clone()));
            }
            if state.running {
                // That fsync may have started before this caller's change: wait, then look
                // again (it may cover us, or the next one will).
                state = self
                    .done
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.running = true;
            let covers = state.requested;
            drop(state);
            let result = File::open(dir).and_then(|handle| handle.sync_all());
            state = lock(&self.state);
            state.running = false;
            match result {
                Ok(()) => state.completed = state.completed.max(covers),
                Err(err) => state.failed = Some((covers, err.kind(), err.to_string())),
            }
            self.done.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_syncs_of_one_directory_all_return_and_the_entry_is_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let threads: Vec<_> = (0..16)
            .map(|index| {
                let path = path.clone();
                std::thread::spawn(move || {
                    std::fs::write(path.join(format!("f{index}")), b"x").expect("write");
                    sync_dir(&path)
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("join").expect("sync");
        }
        assert!(!lock(registry()).contains_key(&path));
    }

    #[test]
    fn a_directory_that_cannot_be_opened_is_an_error_for_its_caller() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("gone");
        assert_eq!(
            sync_dir(&missing).expect_err("missing").kind(),
            io::ErrorKind::NotFound
        );
        // The failure does not stick to a directory that exists later.
        std::fs::create_dir(&missing).expect("mkdir");
        sync_dir(&missing).expect("sync after the failure");
    }
}
