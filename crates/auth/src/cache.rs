//! The verified-login cache (Dovecot's `auth_cache` for successes): a login that succeeded
//! with a password is let in again within the TTL without the slow hash, as long as the
//! directory still holds the same stored hash string and the account is still active.
//!
//! What is kept per login is a keyed digest, HMAC-SHA256 under a random key made when the
//! process starts and never written anywhere, of (the stored hash string, the password), and
//! when it was made. So:
//! - a password change (the stored string changes) or a wrong password never matches;
//! - a deactivation is seen because the directory is still asked on every login, and only an
//!   active account is looked up here;
//! - nothing in memory reveals a password: the digest cannot be reversed, and without the key
//!   it cannot even be used to test guesses.
//!
//! Only successes are remembered; failures always take the slow path and the penalty.

use std::time::Duration;

use hmac::{KeyInit as _, Mac as _};
use moka::sync::Cache;
use tokio::time::Instant;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

#[derive(Clone)]
struct Entry {
    digest: [u8; 32],
    /// When the slow verification succeeded; tokio's clock, so tests can move it.
    verified_at: Instant,
}

pub(crate) struct LoginCache {
    /// `None` when disabled (`cache_ttl` or `cache_size` 0).
    entries: Option<Cache<String, Entry>>,
    ttl: Duration,
    /// Keyed once; each digest starts from a clone.
    keyed: HmacSha256,
}

impl LoginCache {
    pub(crate) fn new(ttl: Duration, size: u64) -> LoginCache {
        let entries = (!ttl.is_zero() && size > 0).then(|| Cache::new(size));
        LoginCache {
            entries,
            ttl,
            // A key of HMAC-SHA256's block size, used as is; ThreadRng is a CSPRNG seeded
            // from the OS.
            keyed: HmacSha256::new(&rand::random::<[u8; 64]>().into()),
        }
    }

    /// Did `password` verify against exactly `stored` for `login` within the TTL?
    pub(crate) fn is_verified(&self, login: &str, stored: &str, password: &[u8]) -> bool {
        let Some(entries) = &self.entries else {
            return false;
        };
        let Some(entry) = entries.get(login) else {
            return false;
        };
        if entry.verified_at.elapsed() >= self.ttl {
            entries.invalidate(login);
            return false;
        }
        // `verify_slice` compares in constant time.
        self.mac(stored, password)
            .verify_slice(&entry.digest)
            .is_ok()
    }

    /// Remembers a successful slow verification of `password` against `stored`.
    pub(crate) fn remember(&self, login: &str, stored: &str, password: &[u8]) {
        let Some(entries) = &self.entries else {
            return;
        };
        let digest = self.mac(stored, password).finalize().into_bytes().into();
        entries.insert(
            login.to_owned(),
            Entry {
                digest,
                verified_at: Instant::now(),
            },
        );
    }

    fn mac(&self, stored: &str, password: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        // The stored string's length first, so no (stored, password) pair reads as another.
        mac.update(&(stored.len() as u64).to_be_bytes());
        mac.update(stored.as_bytes());
        mac.update(password);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_stored_string_and_password_match() {
        let cache = LoginCache::new(Duration::from_secs(60), 10);
        cache.remember("a@example.com", "{PLAIN}secret", b"secret");
        assert!(cache.is_verified("a@example.com", "{PLAIN}secret", b"secret"));
        assert!(!cache.is_verified("a@example.com", "{PLAIN}secret", b"Secret"));
        assert!(!cache.is_verified("a@example.com", "{PLAIN}other", b"secret"));
        assert!(!cache.is_verified("b@example.com", "{PLAIN}secret", b"secret"));
        // The length prefix keeps the boundary between the two parts.
        assert!(!cache.is_verified("a@example.com", "{PLAIN}secre", b"tsecret"));
    }

    #[test]
    fn a_zero_ttl_or_size_disables_it() {
        for cache in [
            LoginCache::new(Duration::ZERO, 10),
            LoginCache::new(Duration::from_secs(60), 0),
        ] {
            cache.remember("a@example.com", "{PLAIN}secret", b"secret");
            assert!(!cache.is_verified("a@example.com", "{PLAIN}secret", b"secret"));
        }
    }
}
