//! CPU-heavy command work (MIME parsing, body and text search, LIST pattern matching) runs
//! here, on tokio's blocking threads, so that it never holds one of the runtime's worker
//! threads, which every IMAP and SMTP session shares for its I/O. At most `slots` pieces of
//! such work run at once, whatever the number of sessions, so that many clients searching
//! together queue here instead of each taking a thread.

use std::io;
use std::sync::Arc;

use tokio::sync::Semaphore;

pub(crate) struct CpuPool {
    slots: Arc<Semaphore>,
}

impl CpuPool {
    pub(crate) fn new(slots: usize) -> CpuPool {
        CpuPool {
            slots: Arc::new(Semaphore::new(slots.max(1))),
        }
    }

    /// Two per core: enough to keep the cores busy while some of the work waits on the disk.
    pub(crate) fn for_this_machine() -> CpuPool {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        CpuPool::new(cores.saturating_mul(2))
    }

    /// Runs `work` off the I/O threads once a slot is free. A panic in `work` comes back as an
    /// error, which ends the session that asked.
    pub(crate) async fn run<T, F>(&self, work: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(io::Error::other)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_slots_run_at_once() {
        let pool = Arc::new(CpuPool::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        for task in tasks {
            assert!(task.await.is_ok_and(|result| result.is_ok()));
        }
        assert!(most.load(Ordering::SeqCst) <= 2);
    }
}
