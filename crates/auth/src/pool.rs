//! Password verification off the I/O threads: a bounded pool of dedicated hashing threads,
//! each with its own reusable Argon2 memory, fed by one queue in which each client address
//! holds at most one place. An address with a verification queued or running waits for it to
//! end before queueing the next, so a flooding address gets one worker's share at most and
//! every other address keeps its turn in line.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use mailstead_password::{PasswordError, Verifier};
use tokio::sync::oneshot;

use crate::penalty::address_key;

/// What a password is checked against.
pub(crate) enum Expected {
    Stored(String),
    /// No mailbox: the dummy hash, so the answer costs what a wrong password costs.
    Dummy,
}

type Reply = Result<bool, PasswordError>;

struct Job {
    id: u64,
    expected: Expected,
    password: Vec<u8>,
    reply: oneshot::Sender<Reply>,
    /// The client address's place, held until the job is done or dropped.
    _turn: Turn,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    next_id: u64,
    started: bool,
    threads: usize,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
    /// Verifications run, for tests and operators.
    verified: AtomicU64,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

pub(crate) struct HashPool {
    shared: Arc<Shared>,
    threads: usize,
    turns: Turns,
}

/// Why the pool did not answer.
pub(crate) struct PoolClosed;

impl HashPool {
    /// A pool of `threads` hashing threads, started at the first verification.
    pub(crate) fn new(threads: usize) -> HashPool {
        HashPool {
            shared: Arc::default(),
            threads: threads.max(1),
            turns: Turns::default(),
        }
    }

    pub(crate) fn verified(&self) -> u64 {
        self.shared.verified.load(Ordering::Relaxed)
    }

    /// Verifies `password` on a hashing thread once `client` has its turn. Dropping the future
    /// gives up its place in the queue.
    pub(crate) async fn verify(
        &self,
        client: IpAddr,
        expected: Expected,
        password: Vec<u8>,
    ) -> Result<Reply, PoolClosed> {
        let turn = self.turns.take(address_key(client)).await;
        let (reply, answer) = oneshot::channel();
        let id = {
            let mut queue = self.shared.queue();
            if !queue.started {
                queue.started = true;
                queue.threads = self.start_threads();
            }
            if queue.closed || queue.threads == 0 {
                return Err(PoolClosed);
            }
            let id = queue.next_id;
            queue.next_id = queue.next_id.wrapping_add(1);
            queue.jobs.push_back(Job {
                id,
                expected,
                password,
                reply,
                _turn: turn,
            });
            id
        };
        self.shared.work.notify_one();
        let queued = Queued {
            shared: &self.shared,
            id,
        };
        let answer = answer.await.map_err(|_| PoolClosed);
        drop(queued);
        answer
    }

    fn start_threads(&self) -> usize {
        let mut started = 0;
        for n in 0..self.threads {
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name(format!("auth-hash-{n}"))
                .spawn(move || work(&shared));
            match spawned {
                Ok(_) => started += 1,
                Err(err) => {
                    tracing::error!(cause = %err, "cannot start a password hashing thread");
                }
            }
        }
        started
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        let mut queue = self.shared.queue();
        queue.closed = true;
        queue.jobs.clear();
        drop(queue);
        self.shared.work.notify_all();
    }
}

/// Takes a job out of the queue when the future waiting for it is dropped.
struct Queued<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.shared.queue().jobs.retain(|job| job.id != self.id);
    }
}

fn work(shared: &Shared) {
    let mut verifier = Verifier::default();
    loop {
        let job = {
            let mut queue = shared.queue();
            loop {
                if queue.closed {
                    return;
                }
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                queue = shared
                    .work
                    .wait(queue)
                    .unwrap_or_else(|poison| poison.into_inner());
            }
        };
        let Job {
            expected,
            password,
            reply,
            _turn: turn,
            ..
        } = job;
        if reply.is_closed() {
            continue;
        }
        let result = match &expected {
            Expected::Stored(stored) => verifier.verify(stored, &password),
            Expected::Dummy => match dummy_hash() {
                Some(dummy) => verifier.verify(dummy, &password),
                // No dummy (the system's random source failed): hashing the password with
                // the default scheme costs the same.
                None => mailstead_password::hash(&password).map(|_| false),
            },
        };
        shared.verified.fetch_add(1, Ordering::Relaxed);
        // The address's place is free before it hears the answer, so its next attempt finds
        // it free.
        drop(turn);
        let _ = reply.send(result);
    }
}

/// The hash an unknown login is checked against: made once by [`mailstead_password::hash`],
/// so it has the scheme and parameters of every new password and costs the same to verify.
pub(crate) fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| mailstead_password::hash(b"no mailbox has this login").ok())
        .as_deref()
}

/// One place per client address: a FIFO lock per address, kept in the map while anyone holds
/// or waits for it.
#[derive(Default)]
struct Turns {
    places: Arc<Mutex<HashMap<IpAddr, Place>>>,
}

struct Place {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Holders and waiters; the entry goes when it reaches zero.
    users: usize,
}

struct Turn {
    places: Arc<Mutex<HashMap<IpAddr, Place>>>,
    client: IpAddr,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Turns {
    async fn take(&self, client: IpAddr) -> Turn {
        let lock = {
            let mut places = lock_places(&self.places);
            let place = places.entry(client).or_insert_with(|| Place {
                lock: Arc::default(),
                users: 0,
            });
            place.users += 1;
            Arc::clone(&place.lock)
        };
        // Counted before waiting, so a waiter dropped here still gives its count back.
        let mut turn = Turn {
            places: Arc::clone(&self.places),
            client,
            guard: None,
        };
        turn.guard = Some(lock.lock_owned().await);
        turn
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock_places(&self.places).len()
    }
}

fn lock_places(places: &Mutex<HashMap<IpAddr, Place>>) -> MutexGuard<'_, HashMap<IpAddr, Place>> {
    places.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.guard = None;
        let mut places = lock_places(&self.places);
        if let Some(place) = places.get_mut(&self.client) {
            place.users = place.users.saturating_sub(1);
            if place.users == 0 {
                places.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn one_place_per_address_others_pass() {
        let turns = Turns::default();
        let first = turns.take(ip("203.0.113.5")).await;
        let mut second = Box::pin(turns.take(ip("203.0.113.5")));
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut second)
                .await
                .is_err(),
            "the same address waits for its first verification"
        );
        let other = tokio::time::timeout(Duration::from_secs(5), turns.take(ip("198.51.100.7")))
            .await
            .expect("another address is not held up");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the second gets the place when the first is done");
        drop((second, other));
        assert_eq!(turns.len(), 0, "no entry outlives its users");
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaves_nothing_behind() {
        let turns = Turns::default();
        let first = turns.take(ip("203.0.113.5")).await;
        let waiting =
            tokio::time::timeout(Duration::from_millis(10), turns.take(ip("203.0.113.5")));
        assert!(waiting.await.is_err());
        drop(first);
        assert_eq!(turns.len(), 0);
    }

    #[tokio::test]
    async fn verifies_on_the_pool_and_a_dropped_request_gives_up_its_place() {
        let pool = Arc::new(HashPool::new(1));
        let good = pool
            .verify(
                ip("203.0.113.5"),
                Expected::Stored("{PLAIN}secret".to_owned()),
                b"secret".to_vec(),
            )
            .await;
        assert!(matches!(good, Ok(Ok(true))));
        // Keep the only worker busy with Dovecot's default Argon2id (64 MiB, t = 3).
        let slow = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$5upzRONyY5kiYtAP2bT7vw$dxm7bc9ab7CEBVQ07kqzfK9788tR/VenTt5ezB5w5PY";
        let busy = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move {
                pool.verify(
                    ip("203.0.113.5"),
                    Expected::Stored(slow.to_owned()),
                    b"secret".to_vec(),
                )
                .await
            }
        });
        // Running: the address holds its place and the queue is empty again.
        while pool.turns.len() == 0 || !pool.shared.queue().jobs.is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Another address queues behind it, then gives up: its job leaves the queue.
        let gave_up = tokio::time::timeout(
            Duration::from_millis(1),
            pool.verify(
                ip("198.51.100.7"),
                Expected::Stored("{PLAIN}x".to_owned()),
                b"x".to_vec(),
            ),
        )
        .await;
        assert!(gave_up.is_err());
        assert_eq!(pool.shared.queue().jobs.len(), 0);
        assert!(matches!(busy.await.unwrap(), Ok(Ok(true))));
        assert_eq!(pool.verified(), 2, "the abandoned request was never hashed");
    }

    #[test]
    fn the_dummy_hash_is_the_default_scheme_with_the_default_parameters() {
        let dummy = dummy_hash().unwrap();
        let fresh = mailstead_password::hash(b"anything").unwrap();
        let shape = |stored: &str| {
            let fields: Vec<&str> = stored.split('$').collect();
            // {ARGON2ID}, argon2id, v=19, m=..,t=..,p=.., salt, hash: all but the salt and
            // the hash, and their lengths.
            (
                fields[..4].join("$"),
                fields.get(4).map(|salt| salt.len()),
                fields.get(5).map(|hash| hash.len()),
                fields.len(),
            )
        };
        assert_eq!(shape(dummy), shape(&fresh));
        assert_eq!(
            mailstead_password::scheme_name(dummy).unwrap(),
            mailstead_password::scheme_name(&fresh).unwrap()
        );
    }
}
