//! What every listener of Mailstead needs, whatever protocol it speaks: the one accept loop
//! ([`serve`]) with the process-wide registry of connections ([`Connections`]: the global
//! cap, and the oldest idle connection before login evicted when full), the TLS configuration
//! that certificate renewal swaps under running listeners, and a count of connections per
//! client address.

#![forbid(unsafe_code)]

mod accept;
mod registry;

pub use accept::{
    HANDSHAKE_TIMEOUT, Io, Listener, ListenerOptions, Peer, Protocol, Refusal, serve,
};
pub use registry::{
    Closing, ConnectionHandle, Connections, Full, MAX_EVICTING, MAX_REFUSING, Refusing,
    TRANSIENT_CONNECTIONS,
};

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

/// The TLS configuration new handshakes use, swapped as a whole when the certificate is
/// renewed; sessions already in TLS keep the one they started with.
#[derive(Debug)]
pub struct TlsConfig {
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl TlsConfig {
    pub fn new(config: Arc<rustls::ServerConfig>) -> TlsConfig {
        TlsConfig {
            current: RwLock::new(config),
        }
    }

    /// The configuration for a handshake starting now.
    pub fn get(&self) -> Arc<rustls::ServerConfig> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        Arc::clone(&current)
    }

    /// Replaces the configuration for every later handshake.
    pub fn set(&self, config: Arc<rustls::ServerConfig>) {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        *current = config;
    }
}

impl From<Arc<rustls::ServerConfig>> for TlsConfig {
    fn from(config: Arc<rustls::ServerConfig>) -> TlsConfig {
        TlsConfig::new(config)
    }
}

/// Counts open connections per key (a client address, a user); a [`Slot`] gives its place
/// back when dropped, so a session that ends in any way frees it.
#[derive(Debug)]
pub struct ConnectionCounter<K: Eq + Hash + Clone = IpAddr> {
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Eq + Hash + Clone> Default for ConnectionCounter<K> {
    fn default() -> Self {
        ConnectionCounter {
            counts: Arc::default(),
        }
    }
}

impl<K: Eq + Hash + Clone> Clone for ConnectionCounter<K> {
    fn clone(&self) -> Self {
        ConnectionCounter {
            counts: Arc::clone(&self.counts),
        }
    }
}

/// One counted connection.
#[derive(Debug)]
pub struct Slot<K: Eq + Hash + Clone = IpAddr> {
    counts: Arc<Mutex<HashMap<K, usize>>>,
    key: K,
}

impl<K: Eq + Hash + Clone> ConnectionCounter<K> {
    /// Takes a slot for `key`, or `None` when `limit` connections already hold one.
    pub fn take(&self, key: K, limit: usize) -> Option<Slot<K>> {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            counts: Arc::clone(&self.counts),
            key,
        })
    }
}

impl<K: Eq + Hash + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_key_and_given_back() {
        let counter: ConnectionCounter<&str> = ConnectionCounter::default();
        let first = counter.take("a", 2);
        let second = counter.take("a", 2);
        assert!(first.is_some() && second.is_some());
        assert!(counter.take("a", 2).is_none(), "third over the limit of 2");
        assert!(counter.take("b", 2).is_some(), "other keys are independent");
        drop(first);
        assert!(
            counter.take("a", 2).is_some(),
            "a dropped slot frees its place"
        );
    }
}
