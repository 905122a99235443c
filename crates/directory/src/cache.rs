//! The in-process answer cache and the watcher that keeps it honest.
//!
//! Answers (not rows) are cached, so a hit costs one hash lookup. Every write to a table the
//! directory reads bumps `directory_state.change_serial` in its own transaction: Mailstead's
//! writes do it themselves, and database triggers (migration 0004) do it for every other writer
//! (MUM's web UI, hand-written SQL). A running server polls that one row
//! ([`Directory::watch_changes`]) and drops everything when it moves, so any change is seen
//! within one poll interval.
//!
//! A clear is one atomic step for every cache at once: each answer carries the generation in
//! which its lookup *started*, and an answer from an older generation is never served. So a
//! lookup that read the old row just before a clear cannot put it back afterwards, and no
//! reader sees one cache cleared and another not yet.
//!
//! Should the triggers be missing (dropped by hand, or a database restored without them), the
//! TTLs bound the staleness: `cache_ttl` for answers that say yes, and the much shorter
//! `negative_cache_ttl` for answers that say no (an unknown recipient, an unknown or
//! deactivated login), so that a mailbox created elsewhere is never refused for long: the
//! sender of a `550` gives up for good.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    pub(crate) resolutions: AnswerCache<Arc<Resolution>>,
    pub(crate) accounts: AnswerCache<Arc<Option<MailboxRow>>>,
    pub(crate) senders: AnswerCache<Arc<OwnedAddresses>>,
    pub(crate) tls_policies: AnswerCache<Arc<Option<TlsPolicy>>>,
    pub(crate) transports: AnswerCache<Arc<Option<Transport>>>,
    pub(crate) dkim_keys: AnswerCache<Arc<Option<DkimKey>>>,
    generation: Arc<AtomicU64>,
}

/// One kind of answer, each stamped with the generation its lookup started in.
pub(crate) struct AnswerCache<V> {
    entries: Cache<String, Stamped<V>>,
    generation: Arc<AtomicU64>,
}

#[derive(Clone)]
struct Stamped<V> {
    generation: u64,
    answer: V,
}

/// The generation a lookup started in: take it before reading the database.
#[derive(Clone, Copy)]
pub(crate) struct Ticket(u64);

impl<V: Answer + Clone + Send + Sync + 'static> AnswerCache<V> {
    fn new(capacity: u64, freshness: Freshness, generation: Arc<AtomicU64>) -> AnswerCache<V> {
        AnswerCache {
            entries: Cache::builder()
                .max_capacity(capacity)
                .expire_after(freshness)
                .build(),
            generation,
        }
    }

    /// The cached answer, unless a clear came after its lookup started.
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        let answer = self
            .entries
            .get(key)
            .filter(|hit| hit.generation == self.generation.load(Ordering::Acquire))
            .map(|hit| hit.answer);
        mailstead_metrics::directory_cache(answer.is_some());
        answer
    }

    /// Take before the database read whose answer goes to [`AnswerCache::insert`].
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    pub(crate) fn insert(&self, key: String, answer: V, started: Ticket) {
        self.entries.insert(
            key,
            Stamped {
                generation: started.0,
                answer,
            },
        );
    }

    fn clear(&self) {
        self.entries.invalidate_all();
    }
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

impl<V: Answer> Answer for Stamped<V> {
    fn is_negative(&self) -> bool {
        self.answer.is_negative()
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
        let generation = Arc::new(AtomicU64::new(0));
        let small = capacity / 10 + 1;
        Caches {
            resolutions: AnswerCache::new(capacity, freshness, Arc::clone(&generation)),
            accounts: AnswerCache::new(capacity, freshness, Arc::clone(&generation)),
            senders: AnswerCache::new(capacity, freshness, Arc::clone(&generation)),
            tls_policies: AnswerCache::new(small, freshness, Arc::clone(&generation)),
            transports: AnswerCache::new(small, freshness, Arc::clone(&generation)),
            dkim_keys: AnswerCache::new(small, freshness, Arc::clone(&generation)),
            generation,
        }
    }

    pub(crate) fn clear(&self) {
        // The bump alone makes every answer stale at once; the invalidations free memory.
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.resolutions.clear();
        self.accounts.clear();
        self.senders.clear();
        self.tls_policies.clear();
        self.transports.clear();
        self.dkim_keys.clear();
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

    fn caches() -> Caches {
        Caches::new(
            100,
            Freshness {
                ttl: Duration::from_secs(3600),
                negative_ttl: Duration::from_secs(3600),
            },
        )
    }

    #[test]
    fn a_lookup_that_started_before_a_clear_is_not_served_after_it() {
        let caches = caches();
        let deliver = resolution(Outcome::Deliver(Vec::new()));
        // The lookup reads the old row, the watcher clears, then the lookup stores its answer.
        let ticket = caches.resolutions.ticket();
        caches.clear();
        caches
            .resolutions
            .insert("bob@example.com".to_owned(), Arc::clone(&deliver), ticket);
        assert!(caches.resolutions.get("bob@example.com").is_none());
        // A lookup that started after the clear is served.
        let ticket = caches.resolutions.ticket();
        caches
            .resolutions
            .insert("bob@example.com".to_owned(), deliver, ticket);
        assert!(caches.resolutions.get("bob@example.com").is_some());
    }

    #[test]
    fn one_clear_makes_every_cache_stale_at_once() {
        let caches = caches();
        caches.accounts.insert(
            "bob@example.com".to_owned(),
            Arc::new(None),
            caches.accounts.ticket(),
        );
        caches.tls_policies.insert(
            "example.com".to_owned(),
            Arc::new(None),
            caches.tls_policies.ticket(),
        );
        assert!(caches.accounts.get("bob@example.com").is_some());
        caches.generation.fetch_add(1, Ordering::AcqRel);
        // Before any invalidate_all has run, nothing older than the bump is served.
        assert!(caches.accounts.get("bob@example.com").is_none());
        assert!(caches.tls_policies.get("example.com").is_none());
    }
}
