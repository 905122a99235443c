//! Connection limits and reuse: a permit per open connection from a global semaphore and one
//! per destination, and idle sessions kept for the next transaction to the same host under the
//! same TLS plan (Postfix's scache).
//!
//! An idle connection keeps its permits: it is an open connection. A delivery that finds no
//! permit closes idle connections to make room before it waits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::client::Connection;

/// Which idle connections may carry a transaction: same host name, address and port, made
/// under the same TLS plan.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub(crate) host: String,
    pub(crate) addr: SocketAddr,
    pub(crate) tls: String,
}

/// The permits an open connection holds; dropping them frees the slots.
pub(crate) struct Permits {
    destination: String,
    _global: OwnedSemaphorePermit,
    _destination: OwnedSemaphorePermit,
}

struct Idle {
    id: u64,
    connection: Connection,
    permits: Permits,
}

pub(crate) struct Pool {
    idle: Mutex<HashMap<PoolKey, Vec<Idle>>>,
    next_id: Mutex<u64>,
    global: Arc<Semaphore>,
    destinations: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_destination: usize,
    idle_time: Duration,
    /// Per key: wakes one delivery waiting for a permit when a connection under its key goes
    /// idle, so it takes that connection. One, not all: with a hundred deliveries waiting on
    /// twenty connections, waking all at every park made fifty context switches a message.
    /// (A delivery to another destination waiting on the global limit closes idle connections
    /// when it next looks, or finds their permits freed by the idle timeout.)
    parked: Mutex<HashMap<PoolKey, Arc<Notify>>>,
}

impl Pool {
    pub(crate) fn new(max_connections: usize, per_destination: usize, idle_time: Duration) -> Pool {
        Pool {
            idle: Mutex::new(HashMap::new()),
            next_id: Mutex::new(0),
            global: Arc::new(Semaphore::new(max_connections)),
            destinations: Mutex::new(HashMap::new()),
            per_destination,
            idle_time,
            parked: Mutex::new(HashMap::new()),
        }
    }

    /// The newest idle connection for `key`, with its permits.
    pub(crate) fn take(&self, key: &PoolKey) -> Option<(Connection, Permits)> {
        let mut idle = lock(&self.idle);
        let list = idle.get_mut(key)?;
        let found = list.pop();
        if list.is_empty() {
            idle.remove(key);
        }
        found.map(|idle| (idle.connection, idle.permits))
    }

    /// Keeps `connection` for `idle_time`, then closes it unless a transaction took it.
    pub(crate) fn park(self: &Arc<Self>, key: PoolKey, connection: Connection, permits: Permits) {
        if self.idle_time.is_zero() {
            tokio::spawn(connection.quit());
            return;
        }
        let id = {
            let mut next = lock(&self.next_id);
            *next += 1;
            *next
        };
        lock(&self.idle).entry(key.clone()).or_default().push(Idle {
            id,
            connection,
            permits,
        });
        self.parked_signal(&key).notify_one();
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(pool.idle_time).await;
            let expired = {
                let mut idle = lock(&pool.idle);
                let expired = idle.get_mut(&key).and_then(|list| {
                    let at = list.iter().position(|entry| entry.id == id)?;
                    Some(list.remove(at))
                });
                if idle.get(&key).is_some_and(Vec::is_empty) {
                    idle.remove(&key);
                }
                expired
            };
            if let Some(expired) = expired {
                expired.connection.quit().await;
            }
        });
    }

    /// Permits for a new connection to `destination` under `key`. While the limits are
    /// reached, an idle connection under another key may be closed to make room; an idle
    /// connection under `key` never is: `None` says one was parked, and the caller takes it
    /// (under load every transaction would otherwise open a connection of its own).
    pub(crate) async fn acquire(&self, key: &PoolKey, destination: &str) -> Option<Permits> {
        let semaphore = self.destination_semaphore(destination);
        let for_destination = self
            .acquire_one(key, &semaphore, |idle_key: &PoolKey, idle: &Idle| {
                idle_key != key && idle.permits.destination == destination
            })
            .await?;
        let global = self
            .acquire_one(key, &self.global, |idle_key: &PoolKey, _: &Idle| {
                idle_key != key
            })
            .await?;
        Some(Permits {
            destination: destination.to_owned(),
            _global: global,
            _destination: for_destination,
        })
    }

    async fn acquire_one(
        &self,
        key: &PoolKey,
        semaphore: &Arc<Semaphore>,
        closable: impl Fn(&PoolKey, &Idle) -> bool,
    ) -> Option<OwnedSemaphorePermit> {
        loop {
            if let Ok(permit) = Arc::clone(semaphore).try_acquire_owned() {
                return Some(permit);
            }
            if let Some(evicted) = self.evict(&closable) {
                // Its permits are free once it is dropped; the goodbye needs none.
                let Idle { connection, .. } = evicted;
                tokio::spawn(connection.quit());
                continue;
            }
            let signal = self.parked_signal(key);
            let parked = signal.notified();
            // Parked between the caller's look and this wait: take it now.
            if lock(&self.idle).contains_key(key) {
                return None;
            }
            tokio::select! {
                permit = Arc::clone(semaphore).acquire_owned() => {
                    if let Ok(permit) = permit {
                        return Some(permit);
                    }
                }
                () = parked => return None,
            }
        }
    }

    fn evict(&self, closable: &impl Fn(&PoolKey, &Idle) -> bool) -> Option<Idle> {
        let mut idle = lock(&self.idle);
        let key = idle
            .iter()
            .find(|(key, list)| list.iter().any(|entry| closable(key, entry)))
            .map(|(key, _)| key.clone())?;
        let list = idle.get_mut(&key)?;
        let at = list.iter().position(|entry| closable(&key, entry))?;
        let evicted = list.remove(at);
        if list.is_empty() {
            idle.remove(&key);
        }
        Some(evicted)
    }

    fn parked_signal(&self, key: &PoolKey) -> Arc<Notify> {
        let mut signals = lock(&self.parked);
        if signals.len() > 1024 {
            signals.retain(|_, signal| Arc::strong_count(signal) > 1);
        }
        Arc::clone(signals.entry(key.clone()).or_default())
    }

    fn destination_semaphore(&self, destination: &str) -> Arc<Semaphore> {
        let mut destinations = lock(&self.destinations);
        // Forget destinations nobody holds a permit for, so the map does not grow with every
        // domain ever delivered to.
        if destinations.len() > 1024 {
            destinations.retain(|_, semaphore| Arc::strong_count(semaphore) > 1);
        }
        destinations
            .entry(destination.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_destination)))
            .clone()
    }
}

/// A panic elsewhere while holding the lock leaves the maps consistent (every change is a
/// single insert or remove), so a poisoned lock is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
