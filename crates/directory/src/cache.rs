//! The in-process answer cache and the watcher that keeps it honest.
//!
//! Answers (not rows) are cached, so a hit costs one hash lookup. Every write made through
//! Mailstead bumps `directory_state.change_serial` in its own transaction; a running server
//! polls that one row ([`Directory::watch_changes`]) and drops everything when it moves, so a
//! change made with the CLI in another process is seen within one poll interval. Writers that
//! do not bump the counter (MUM's own UI, hand-written SQL) are seen within the cache TTL.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use tokio::task::JoinHandle;

use crate::Directory;
use crate::account::OwnedAddresses;
use crate::lookup::{self, MailboxRow};
use crate::model::TlsPolicy;
use crate::resolve::Resolution;

pub(crate) struct Caches {
    pub(crate) resolutions: Cache<String, Arc<Resolution>>,
    pub(crate) accounts: Cache<String, Arc<Option<MailboxRow>>>,
    pub(crate) senders: Cache<String, Arc<OwnedAddresses>>,
    pub(crate) tls_policies: Cache<String, Arc<Option<TlsPolicy>>>,
}

impl Caches {
    pub(crate) fn new(capacity: u64, ttl: Duration) -> Caches {
        fn build<V: Clone + Send + Sync + 'static>(
            capacity: u64,
            ttl: Duration,
        ) -> Cache<String, V> {
            Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build()
        }
        Caches {
            resolutions: build(capacity, ttl),
            accounts: build(capacity, ttl),
            senders: build(capacity, ttl),
            tls_policies: build(capacity / 10 + 1, ttl),
        }
    }

    pub(crate) fn clear(&self) {
        self.resolutions.invalidate_all();
        self.accounts.invalidate_all();
        self.senders.invalidate_all();
        self.tls_policies.invalidate_all();
    }
}

/// Polls the change counter while it lives; dropping it stops the polling.
#[must_use = "the watcher stops when dropped"]
pub struct ChangeWatcher {
    task: JoinHandle<()>,
}

impl Drop for ChangeWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Directory {
    /// Starts polling the change counter every `change_poll`; every move clears the cache.
    /// Must be called inside a tokio runtime.
    pub fn watch_changes(&self) -> ChangeWatcher {
        let directory = self.clone();
        let task = tokio::spawn(async move {
            let mut last_seen: Option<i64> = None;
            let mut interval = tokio::time::interval(directory.inner.options.change_poll);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                match lookup::change_serial(&directory.inner.db).await {
                    Ok(serial) => {
                        if last_seen.is_some_and(|last| last != serial) {
                            tracing::debug!(serial, "directory changed; cache cleared");
                            directory.clear_cache();
                        }
                        last_seen = Some(serial);
                    }
                    Err(err) => {
                        // Without the counter we cannot know what changed: trust nothing.
                        tracing::warn!(error = %err, "cannot read the directory change counter");
                        directory.clear_cache();
                    }
                }
            }
        });
        ChangeWatcher { task }
    }
}
