//! The failure penalty (Dovecot's auth_penalty, Postfix's anvil): failed logins counted per
//! client address and per account across every connection, listener and protocol, in a sliding
//! window. Pure bookkeeping over an injected clock, so its rules are tested without waiting.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use tokio::time::Instant;

use crate::AuthOptions;

/// Failures of one account kept for the per-account rule; beyond it the oldest are forgotten
/// (an address forgotten there may try that account again while the window runs).
const MAX_FAILURES_KEPT_PER_ACCOUNT: usize = 1024;

/// What the penalty says about an attempt before any work is done for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    /// The address failed `max_failures_per_address` times within the window.
    AddressBlocked,
    /// The account failed `max_failures_per_account` times within the window, and this address
    /// is one of those that failed against it.
    AccountBlocked,
}

/// The key a client address is counted under: IPv4 as it is, IPv4-mapped IPv6 as IPv4, other
/// IPv6 by its /64, the smallest block one customer usually gets (one host can take any
/// address in it).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

pub(crate) struct Penalty {
    window: Duration,
    max_per_address: usize,
    max_per_account: usize,
    first_delay: Duration,
    max_delay: Duration,
    max_tracked: usize,
    /// Times of each address's recent failures, oldest first, at most `max_per_address` kept.
    addresses: HashMap<IpAddr, VecDeque<Instant>>,
    /// Each account's recent failures and the address each came from, oldest first.
    accounts: HashMap<String, VecDeque<(Instant, IpAddr)>>,
}

impl Penalty {
    pub(crate) fn new(options: &AuthOptions) -> Penalty {
        Penalty {
            window: options.failure_window,
            max_per_address: usize::try_from(options.max_failures_per_address.max(1))
                .unwrap_or(usize::MAX),
            max_per_account: usize::try_from(options.max_failures_per_account.max(1))
                .unwrap_or(usize::MAX),
            first_delay: options.failure_delay,
            max_delay: options.max_failure_delay,
            max_tracked: options.max_tracked.max(1),
            addresses: HashMap::new(),
            accounts: HashMap::new(),
        }
    }

    pub(crate) fn check(&mut self, client: IpAddr, account: &str, now: Instant) -> Verdict {
        let client = address_key(client);
        let window = self.window;
        if let Some(failures) = self.addresses.get_mut(&client) {
            expire(failures, now, window, |at| *at);
            if failures.len() >= self.max_per_address {
                return Verdict::AddressBlocked;
            }
        }
        if let Some(failures) = self.accounts.get_mut(account) {
            expire(failures, now, window, |(at, _)| *at);
            if failures.len() >= self.max_per_account
                && failures.iter().any(|(_, from)| *from == client)
            {
                return Verdict::AccountBlocked;
            }
        }
        Verdict::Allowed
    }

    /// Counts a failure and returns how long to wait before answering it: the first delay,
    /// doubled for each earlier failure of the address in the window, capped. A `trusted`
    /// client (many users behind one address) is not counted: its delay stays the first one,
    /// and only the account's count grows.
    pub(crate) fn record_failure(
        &mut self,
        client: IpAddr,
        account: &str,
        trusted: bool,
        now: Instant,
    ) -> Duration {
        let client = address_key(client);
        let window = self.window;
        let earlier = if trusted {
            0
        } else {
            make_room(&mut self.addresses, &client, self.max_tracked, |failures| {
                failures.back().copied()
            });
            let failures = self.addresses.entry(client).or_default();
            expire(failures, now, window, |at| *at);
            failures.push_back(now);
            while failures.len() > self.max_per_address {
                failures.pop_front();
            }
            failures.len().saturating_sub(1)
        };
        if !account.is_empty() {
            make_room(&mut self.accounts, account, self.max_tracked, |failures| {
                failures.back().map(|(at, _)| *at)
            });
            let failures = self.accounts.entry(account.to_owned()).or_default();
            expire(failures, now, window, |(at, _)| *at);
            failures.push_back((now, client));
            while failures.len() > MAX_FAILURES_KEPT_PER_ACCOUNT {
                failures.pop_front();
            }
        }
        let doublings = u32::try_from(earlier.min(31)).unwrap_or(31);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }

    /// A successful login forgives the address's failures against that account (a typo
    /// before the right password), not its failures elsewhere.
    pub(crate) fn record_success(&mut self, client: IpAddr, account: &str) {
        let client = address_key(client);
        if let Some(failures) = self.accounts.get_mut(account) {
            failures.retain(|(_, from)| *from != client);
            if failures.is_empty() {
                self.accounts.remove(account);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn tracked(&self) -> (usize, usize) {
        (self.addresses.len(), self.accounts.len())
    }
}

fn expire<T>(
    failures: &mut VecDeque<T>,
    now: Instant,
    window: Duration,
    at: impl Fn(&T) -> Instant,
) {
    while failures
        .front()
        .is_some_and(|oldest| now.saturating_duration_since(at(oldest)) >= window)
    {
        failures.pop_front();
    }
}

/// Before `key` is added to a full map, forgets the eighth of the entries whose last failure
/// is oldest, so the map stays bounded and the work of making room is shared by many inserts.
fn make_room<K, Q, V>(
    map: &mut HashMap<K, V>,
    key: &Q,
    max_entries: usize,
    last_failure: impl Fn(&V) -> Option<Instant>,
) where
    K: Eq + Hash + std::borrow::Borrow<Q>,
    Q: Eq + Hash + ?Sized,
{
    if map.len() < max_entries || map.contains_key(key) {
        return;
    }
    let mut ages: Vec<Option<Instant>> = map.values().map(&last_failure).collect();
    let evict = (max_entries / 8).max(1).min(ages.len());
    let (_, cutoff, _) = ages.select_nth_unstable(evict - 1);
    let cutoff = *cutoff;
    let mut evicted = 0;
    map.retain(|_, value| {
        if evicted < evict && last_failure(value) <= cutoff {
            evicted += 1;
            false
        } else {
            true
        }
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn options() -> AuthOptions {
        AuthOptions::default()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn delays_double_from_one_second_up_to_fifteen() {
        let mut penalty = Penalty::new(&options());
        let now = Instant::now();
        let delays: Vec<u64> = (0..6)
            .map(|_| {
                penalty
                    .record_failure(ip("203.0.113.5"), "bob@example.com", false, now)
                    .as_secs()
            })
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 15, 15]);
        // Another address starts at the first delay.
        assert_eq!(
            penalty.record_failure(ip("203.0.113.6"), "bob@example.com", false, now),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn an_address_is_blocked_after_its_failures_until_the_window_lets_them_go() {
        let mut penalty = Penalty::new(&options());
        let start = Instant::now();
        let attacker = ip("203.0.113.5");
        for n in 0..10 {
            assert_eq!(
                penalty.check(attacker, "bob@example.com", start),
                Verdict::Allowed
            );
            penalty.record_failure(attacker, &format!("user{n}@example.com"), false, start);
        }
        assert_eq!(
            penalty.check(attacker, "anyone@example.com", start),
            Verdict::AddressBlocked
        );
        assert_eq!(
            penalty.check(ip("198.51.100.7"), "anyone@example.com", start),
            Verdict::Allowed,
            "other addresses are not affected"
        );
        let later = start + Duration::from_secs(15 * 60);
        assert_eq!(
            penalty.check(attacker, "anyone@example.com", later),
            Verdict::Allowed
        );
    }

    #[test]
    fn an_account_refuses_the_addresses_that_failed_against_it_but_not_strangers() {
        let mut penalty = Penalty::new(&options());
        let now = Instant::now();
        // Ten addresses, one failure each: none reaches its own limit.
        for n in 1..=10 {
            penalty.record_failure(ip(&format!("203.0.113.{n}")), "bob@example.com", false, now);
        }
        assert_eq!(
            penalty.check(ip("203.0.113.1"), "bob@example.com", now),
            Verdict::AccountBlocked
        );
        assert_eq!(
            penalty.check(ip("203.0.113.1"), "carol@example.com", now),
            Verdict::Allowed,
            "other accounts are not affected"
        );
        assert_eq!(
            penalty.check(ip("192.0.2.44"), "bob@example.com", now),
            Verdict::Allowed,
            "the owner, who never failed, still gets verified"
        );
    }

    #[test]
    fn a_success_forgives_that_account_only() {
        let mut penalty = Penalty::new(&options());
        let now = Instant::now();
        let client = ip("192.0.2.44");
        for _ in 0..3 {
            penalty.record_failure(client, "bob@example.com", false, now);
        }
        penalty.record_success(client, "bob@example.com");
        assert_eq!(penalty.tracked(), (1, 0));
        // The address's own count stands: the next failure waits longer.
        assert_eq!(
            penalty.record_failure(client, "bob@example.com", false, now),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("::ffff:203.0.113.5")), ip("203.0.113.5"));
    }

    #[test]
    fn the_maps_stay_bounded() {
        let mut penalty = Penalty::new(&AuthOptions {
            max_tracked: 100,
            ..options()
        });
        let start = Instant::now();
        for n in 0..1000u32 {
            let at = start + Duration::from_millis(u64::from(n));
            let client = IpAddr::from(n.to_be_bytes());
            penalty.record_failure(client, &format!("user{n}@example.com"), false, at);
        }
        let (addresses, accounts) = penalty.tracked();
        assert!(
            addresses <= 100 && accounts <= 100,
            "{addresses} {accounts}"
        );
        // The newest are the ones kept.
        let newest = IpAddr::from(999u32.to_be_bytes());
        for _ in 0..9 {
            penalty.record_failure(newest, "x@example.com", false, start);
        }
        assert_eq!(
            penalty.check(newest, "y@example.com", start + Duration::from_secs(1)),
            Verdict::AddressBlocked
        );
    }

    #[test]
    fn a_trusted_client_is_never_blocked_nor_delayed_more() {
        let options = AuthOptions::default();
        let mut penalty = Penalty::new(&options);
        let webmail = ip("127.0.0.1");
        let now = Instant::now();
        for n in 0..50 {
            let delay = penalty.record_failure(webmail, &format!("user{n}@example.com"), true, now);
            assert_eq!(delay, options.failure_delay, "failure {n}");
        }
        assert_eq!(penalty.tracked().0, 0, "no address counted");
        // The accounts still count: an untrusted address that failed on one is blocked there.
        let stranger = ip("203.0.113.9");
        for _ in 0..10 {
            penalty.record_failure(webmail, "bob@example.com", true, now);
        }
        penalty.record_failure(stranger, "bob@example.com", false, now);
        assert_eq!(
            penalty.check(stranger, "bob@example.com", now),
            Verdict::AccountBlocked
        );
    }
}
