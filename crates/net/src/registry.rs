//! Every live connection of the process, across listeners, with its age and whether it is
//! still before login: the one place that decides whether a new connection fits, and which
//! idle one makes room for it when the server is full.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use mailstead_metrics::Gauge;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// Connections told to leave that may still be closing; past this, a full server refuses
/// new connections instead of evicting more (each closing one still holds a descriptor).
pub const MAX_EVICTING: usize = 32;
/// Connections being refused (told why and closed) at once; more are closed silently.
pub const MAX_REFUSING: usize = 32;
/// Descriptors that connections may hold beyond [`Connections::capacity`]: the ones being
/// evicted and the ones being refused. The caller's descriptor budget must leave room for them.
pub const TRANSIENT_CONNECTIONS: usize = MAX_EVICTING + MAX_REFUSING;

/// The registry of live connections, shared by every listener of the process.
#[derive(Clone, Debug)]
pub struct Connections {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Ids grow with the start time, so the map is ordered oldest first.
    next_id: u64,
    live: BTreeMap<u64, Entry>,
    evicting: usize,
    refusing: usize,
}

#[derive(Debug)]
struct Entry {
    pre_login: Arc<AtomicBool>,
    evict: watch::Sender<bool>,
    evicted: bool,
}

/// Why a connection could not be admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// Every slot is held by a logged-in session or a mail transaction (or too many are
    /// already being evicted).
    NothingToEvict,
}

/// Why a session is asked to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closing {
    /// The listener is stopping.
    Shutdown,
    /// The server is full and this idle connection, not logged in, is the oldest.
    Evicted,
}

impl State {
    fn counted(&self) -> usize {
        self.live.len() - self.evicting
    }
}

impl Connections {
    /// A registry that admits at most `capacity` connections at once (at least one).
    pub fn new(capacity: usize) -> Connections {
        Connections {
            inner: Arc::new(Inner {
                capacity: capacity.max(1),
                state: Mutex::default(),
            }),
        }
    }

    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Connections holding a slot (not counting those told to leave).
    pub fn len(&self) -> usize {
        self.inner.lock().counted()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes a slot for a new connection. At capacity, the oldest connection that is still
    /// before login is told to leave and its slot given to this one; when there is none,
    /// the server is full.
    pub fn admit(&self, shutdown: watch::Receiver<bool>) -> Result<ConnectionHandle, Full> {
        let mut state = self.inner.lock();
        if state.counted() >= self.inner.capacity {
            if state.evicting >= MAX_EVICTING {
                return Err(Full::NothingToEvict);
            }
            let oldest_idle = state
                .live
                .iter_mut()
                .find(|(_, entry)| !entry.evicted && entry.pre_login.load(Ordering::Relaxed))
                .map(|(_, entry)| entry);
            let Some(oldest_idle) = oldest_idle else {
                return Err(Full::NothingToEvict);
            };
            oldest_idle.evicted = true;
            let _ = oldest_idle.evict.send(true);
            state.evicting += 1;
        }
        let id = state.next_id;
        state.next_id += 1;
        let pre_login = Arc::new(AtomicBool::new(true));
        let (evict, evicted) = watch::channel(false);
        state.live.insert(
            id,
            Entry {
                pre_login: Arc::clone(&pre_login),
                evict,
                evicted: false,
            },
        );
        Ok(ConnectionHandle {
            registry: Some(Arc::clone(&self.inner)),
            id,
            pre_login,
            evicted,
            shutdown,
            logged_in: None,
        })
    }

    /// A place for telling one refused connection why; `None` when too many are already
    /// being refused (the connection is then closed without a word).
    pub fn refusing(&self) -> Option<Refusing> {
        let mut state = self.inner.lock();
        if state.refusing >= MAX_REFUSING {
            return None;
        }
        state.refusing += 1;
        Some(Refusing {
            registry: Arc::clone(&self.inner),
        })
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// One admitted connection; dropping it frees its slot. The session marks itself logged in
/// (or in a mail transaction) with [`ConnectionHandle::set_pre_login`], which protects it
/// from eviction, and watches [`ConnectionHandle::closing`].
#[derive(Debug)]
pub struct ConnectionHandle {
    registry: Option<Arc<Inner>>,
    id: u64,
    pre_login: Arc<AtomicBool>,
    evicted: watch::Receiver<bool>,
    shutdown: watch::Receiver<bool>,
    /// The listener's `sessions_logged_in` gauge, and whether this session is in it.
    logged_in: Option<(Gauge, AtomicBool)>,
}

impl ConnectionHandle {
    /// A handle belonging to no registry and never asked to close, for sessions run on a
    /// stream outside any listener (fuzzing, tests).
    pub fn detached() -> ConnectionHandle {
        let (_, evicted) = watch::channel(false);
        let (_, shutdown) = watch::channel(false);
        ConnectionHandle {
            registry: None,
            id: 0,
            pre_login: Arc::new(AtomicBool::new(true)),
            evicted,
            shutdown,
            logged_in: None,
        }
    }

    /// Counts this session in `gauge` while it is logged in ([`Self::set_logged_in`]).
    pub(crate) fn counting_logins_in(mut self, gauge: Gauge) -> ConnectionHandle {
        self.logged_in = Some((gauge, AtomicBool::new(false)));
        self
    }

    /// Says whether the session is logged in now, for the `sessions_logged_in` metric; may be
    /// called after every command, only a change counts.
    pub fn set_logged_in(&self, logged_in: bool) {
        if let Some((gauge, counted)) = &self.logged_in
            && counted.swap(logged_in, Ordering::Relaxed) != logged_in
        {
            if logged_in {
                gauge.inc();
            } else {
                gauge.dec();
            }
        }
    }

    /// Marks the session as idle before login (evictable) or not (logged in, or in a mail
    /// transaction).
    pub fn set_pre_login(&self, pre_login: bool) {
        self.pre_login.store(pre_login, Ordering::Relaxed);
    }

    pub fn is_pre_login(&self) -> bool {
        self.pre_login.load(Ordering::Relaxed)
    }

    /// Completes when the session should say goodbye and end, and says why; again at once
    /// on every later call. Never completes while neither is asked.
    pub async fn closing(&mut self) -> Closing {
        // A receiver whose sender is gone can never be asked: `false`, and that branch ends.
        let shutdown = async { self.shutdown.wait_for(|stop| *stop).await.is_ok() };
        let evicted = async { self.evicted.wait_for(|evicted| *evicted).await.is_ok() };
        tokio::select! {
            biased;
            true = shutdown => Closing::Shutdown,
            true = evicted => Closing::Evicted,
            else => std::future::pending().await,
        }
    }

    /// Whether this connection was told to leave to make room.
    pub fn is_evicted(&self) -> bool {
        *self.evicted.borrow()
    }

    /// For the accept loop, which drops a session that does not leave when evicted.
    pub(crate) fn evicted_signal(&self) -> watch::Receiver<bool> {
        self.evicted.clone()
    }
}

impl Drop for ConnectionHandle {
    fn drop(&mut self) {
        self.set_logged_in(false);
        let Some(registry) = &self.registry else {
            return;
        };
        let mut state = registry.lock();
        if let Some(entry) = state.live.remove(&self.id)
            && entry.evicted
        {
            state.evicting -= 1;
        }
    }
}

/// A connection being told why it is refused; dropping it frees the place.
#[derive(Debug)]
pub struct Refusing {
    registry: Arc<Inner>,
}

impl Drop for Refusing {
    fn drop(&mut self) {
        let mut state = self.registry.lock();
        state.refusing = state.refusing.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> watch::Receiver<bool> {
        watch::channel(false).1
    }

    #[tokio::test]
    async fn at_capacity_the_oldest_idle_connection_makes_room() {
        let connections = Connections::new(3);
        let mut oldest = connections.admit(never()).expect("first");
        let logged_in_older = connections.admit(never()).expect("second");
        let mut newer = connections.admit(never()).expect("third");
        // The oldest is busy (logged in), so the next oldest idle one goes.
        oldest.set_pre_login(false);
        let fourth = connections.admit(never()).expect("room is made");
        assert!(!oldest.is_evicted());
        assert!(logged_in_older.is_evicted(), "oldest idle one is evicted");
        assert!(!newer.is_evicted());
        assert_eq!(connections.len(), 3, "the evicted one no longer counts");
        drop(logged_in_older);
        assert_eq!(connections.len(), 3);

        newer.set_pre_login(false);
        fourth.set_pre_login(false);
        assert_eq!(
            connections.admit(never()).err(),
            Some(Full::NothingToEvict),
            "nobody idle: refused"
        );
        drop(fourth);
        let _fifth = connections
            .admit(never())
            .expect("a freed slot is taken again");
        assert_eq!(newer.closing_now(), None);
        assert_eq!(oldest.closing_now(), None);
    }

    #[tokio::test]
    async fn an_evicted_session_is_told_so_and_shutdown_reaches_every_one() {
        let connections = Connections::new(1);
        let (stop, stopped) = watch::channel(false);
        let mut first = connections.admit(stopped.clone()).expect("first");
        let mut second = connections.admit(stopped).expect("second evicts first");
        assert_eq!(first.closing().await, Closing::Evicted);
        assert_eq!(
            first.closing().await,
            Closing::Evicted,
            "asked again, same answer"
        );
        let _ = stop.send(true);
        assert_eq!(second.closing().await, Closing::Shutdown);
    }

    #[tokio::test]
    async fn evictions_in_flight_are_bounded() {
        let connections = Connections::new(1);
        let mut held = Vec::new();
        for _ in 0..=MAX_EVICTING {
            held.push(connections.admit(never()).expect("evicts the previous one"));
        }
        assert_eq!(
            connections.admit(never()).err(),
            Some(Full::NothingToEvict),
            "too many still closing"
        );
        held.remove(0);
        assert!(
            connections.admit(never()).is_ok(),
            "one closed, one more fits"
        );
    }

    impl ConnectionHandle {
        fn closing_now(&mut self) -> Option<Closing> {
            if *self.shutdown.borrow() {
                Some(Closing::Shutdown)
            } else if *self.evicted.borrow() {
                Some(Closing::Evicted)
            } else {
                None
            }
        }
    }
}
