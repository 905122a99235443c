//! The in-process answer cache and the watcher that keeps it honest.
//!
//! Answers (not rows) are cached, so a hit costs one hash lookup. Every write to a table the
//! directory reads bumps `directory_state.change_serial` in its own transaction: Mailstead's
//! writes do it themselves, and database triggers (migration 0004) do it for every other writer
//! (MUM's web UI, hand-written SQL). A running server polls that one row
//! ([`Directory::watch_changes`]) and drops everything when it moves, so any change is seen
//! within one poll interval.
//!
//! Should the triggers be missing (dropped by hand, or a database restored without them), the
//! TTLs bound the staleness: `cache_ttl` for answers that say yes, and the much shorter
//! `negative_cache_ttl` for answers that say no (an unknown recipient, an unknown or
//! deactivated login), so that a mailbox created elsewhere is never refused for long: the
//! sender of a `550` gives up for good.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;
use tokio::task::JoinHandle;

use crate::Directory;
use crate::account::OwnedAddresses;
use crate::lookup::{self, MailboxRow};
use crate::model::{DkimKey, TlsPolicy, Transport};
use crate::resolve::{Outcome, Resolution};

pub(crate) struct Caches {
    pub(crate) resolutions: Cache<String, Arc<Resolution>>,
    pub(crate) accounts: Cache<String, Arc<Option<MailboxRow>>>,
    pub(crate) senders: Cache<String, Arc<OwnedAddresses>>,
    pub(crate) tls_policies: Cache<String, Arc<Option<TlsPolicy>>>,
    pub(crate) transports: Cache<String, Arc<Option<Transport>>>,
    pub(crate) dkim_keys: Cache<String, Arc<Option<DkimKey>>>,
}

/// A cached answer that may say no.
pub(crate) trait Answer {
    /// Whether the answer refuses (or finds nothing): such answers live `negative_ttl` only.
    fn is_negative(&self) -> bool;
}

impl Answer for Arc<Resolution> {
    fn is_negative(&self) -> bool {
        matches!(self.outcome, Outcome::Reject(_))
    }
}

impl Answer for Arc<Option<MailboxRow>> {
    fn is_negative(&self) -> bool {
        self.as_ref()
            .as_ref()
            .is_none_or(|mailbox| !mailbox.active || !mailbox.domain_active)
    }
}

impl Answer for Arc<OwnedAddresses> {
    fn is_negative(&self) -> bool {
        false
    }
}

impl Answer for Arc<Option<TlsPolicy>> {
    fn is_negative(&self) -> bool {
        self.is_none()
    }
}

impl Answer for Arc<Option<Transport>> {
    fn is_negative(&self) -> bool {
        self.is_none()
    }
}

impl Answer for Arc<Option<DkimKey>> {
    fn is_negative(&self) -> bool {
        self.is_none()
    }
}

/// How long an answer is trusted: one policy for every cache.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Freshness {
    pub(crate) ttl: Duration,
    pub(crate) negative_ttl: Duration,
}

impl Freshness {
    pub(crate) fn ttl_for(&self, answer: &impl Answer) -> Duration {
        if answer.is_negative() {
            self.negative_ttl.min(self.ttl)
        } else {
            self.ttl
        }
    }
}

impl<V: Answer> Expiry<String, V> for Freshness {
    fn expire_after_create(&self, _key: &String, value: &V, _at: Instant) -> Option<Duration> {
        Some(self.ttl_for(value))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &V,
        _at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.ttl_for(value))
    }
}

impl Caches {
    pub(crate) fn new(capacity: u64, freshness: Freshness) -> Caches {
        fn build<V: Answer + Clone + Send + Sync + 'static>(
            capacity: u64,
            freshness: Freshness,
        ) -> Cache<String, V> {
            Cache::builder()
                .max_capacity(capacity)
                .expire_after(freshness)
                .build()
        }
        Caches {
            resolutions: build(capacity, freshness),
            accounts: build(capacity, freshness),
            senders: build(capacity, freshness),
            tls_policies: build(capacity / 10 + 1, freshness),
            transports: build(capacity / 10 + 1, freshness),
            dkim_keys: build(capacity / 10 + 1, freshness),
        }
    }

    pub(crate) fn clear(&self) {
        self.resolutions.invalidate_all();
        self.accounts.invalidate_all();
        self.senders.invalidate_all();
        self.tls_policies.invalidate_all();
        self.transports.invalidate_all();
        self.dkim_keys.invalidate_all();
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
                        // The first reading clears too: answers cached before it (or a
                        // change made before it) could not be compared with any counter.
                        if last_seen.is_none_or(|last| last != serial) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::resolve::Rejection;

    fn resolution(outcome: Outcome) -> Arc<Resolution> {
        Arc::new(Resolution {
            address: Address::parse("bob@example.com").expect("an address"),
            outcome,
            trace: Vec::new(),
            valid_until: None,
        })
    }

    #[test]
    fn refusals_get_the_short_ttl_and_never_a_longer_one() {
        let freshness = Freshness {
            ttl: Duration::from_secs(10),
            negative_ttl: Duration::from_secs(5),
        };
        let unknown = resolution(Outcome::Reject(Rejection::UnknownUser));
        assert_eq!(freshness.ttl_for(&unknown), Duration::from_secs(5));
        let deliver = resolution(Outcome::Deliver(Vec::new()));
        assert_eq!(freshness.ttl_for(&deliver), Duration::from_secs(10));
        let no_login: Arc<Option<MailboxRow>> = Arc::new(None);
        assert_eq!(freshness.ttl_for(&no_login), Duration::from_secs(5));
        let no_policy: Arc<Option<TlsPolicy>> = Arc::new(None);
        assert_eq!(freshness.ttl_for(&no_policy), Duration::from_secs(5));
        let longer = Freshness {
            ttl: Duration::from_secs(1),
            negative_ttl: Duration::from_secs(5),
        };
        assert_eq!(longer.ttl_for(&unknown), Duration::from_secs(1));
    }
}
