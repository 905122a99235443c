//! Mailstead's login service: the one place that answers "is this login good?" for every
//! protocol (IMAP today; submission, POP3, ManageSieve and the HTTP API later) and for the
//! CLI's `auth test`.
//!
//! [`Authenticator::log_in`] takes the service, the client's address, the login and the
//! password, and decides:
//!
//! 1. A password longer than [`mailstead_password::MAX_PASSWORD_LEN`] is refused before any
//!    work is queued.
//! 2. The failure penalty (Dovecot's auth_penalty, Postfix's anvil), across every connection,
//!    listener and protocol: an address with `max_failures_per_address` failures in the
//!    window is refused without verifying, and so is an address that failed against an
//!    account that has `max_failures_per_account` failures in the window (an address that
//!    never failed against it is still verified, so a stranger cannot lock the owner out).
//! 3. The directory fetches the stored hash and the account
//!    ([`Directory::login_credentials`], cached; a change made by another process, the CLI
//!    included, is seen when the directory's change polling clears that cache: 1–2 s with
//!    SQLite, measured). If the account is
//!    active and logged in within [`AuthOptions::cache_ttl`] with the same password against
//!    the same stored hash, it is let in without hashing (the verified-login cache, Dovecot's
//!    `auth_cache`: it keeps a keyed digest of the stored hash and the password, never the
//!    password; a password change or a deactivation is seen at once; failures are never
//!    cached). Otherwise the password is verified on a small pool of
//!    dedicated hashing threads, at most one verification queued or running per client
//!    address. An unknown login is verified against a dummy hash made like every new hash, so
//!    it costs what a wrong password costs.
//! 4. A failure is answered after a delay that doubles with the address's recent failures
//!    (1 s, 2 s, 4 s … up to 15 s by default) and logged in one line a fail2ban filter matches
//!    (`dist/fail2ban/filter.d/mailstead.conf`):
//!    `auth failed: service=imap rip=203.0.113.5 user="bob@example.com" reason=wrong_password`.
//! 5. The service decides what an account may do: send-only mailboxes may use submission but
//!    not IMAP or POP3 (MUM's Dovecot user query leaves them out).
//!
//! Every client-supplied string is logged through [`LogSafe`].

#![forbid(unsafe_code)]

mod cache;
mod penalty;
mod pool;
pub mod sasl;

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailstead_directory::account::Account;
use mailstead_directory::{Directory, DirectoryError};
use mailstead_net::LogSafe;
use mailstead_password::{MAX_PASSWORD_LEN, PasswordError};
use tokio::time::Instant;
use tracing::{error, info};

use crate::cache::LoginCache;
use crate::penalty::{Penalty, Verdict};
use crate::pool::{Expected, HashPool};

/// How the service counts and answers failures; the binary fills it from `[auth]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthOptions {
    /// How long a failure counts against its address and account.
    pub failure_window: Duration,
    /// Failures of one client address (IPv6: its /64) in the window after which its attempts
    /// are refused without verifying.
    pub max_failures_per_address: u32,
    /// Failures against one account in the window after which the addresses that failed
    /// against it are refused on it without verifying.
    pub max_failures_per_account: u32,
    /// Delay before answering an address's first failure; it doubles with each further one.
    pub failure_delay: Duration,
    /// The longest a failure's answer is delayed; also how long a refusal without
    /// verification (too many failures) waits.
    pub max_failure_delay: Duration,
    /// Password hashing threads (about one per core).
    pub hashing_threads: usize,
    /// Addresses and accounts whose failures are remembered, each; beyond it the oldest are
    /// forgotten, so memory stays bounded under a spread-out attack.
    pub max_tracked: usize,
    /// Clients that speak for many users (a webmail, a proxy): their failures are never
    /// counted against their address nor do they block it, like Dovecot's
    /// `login_trusted_networks`; each failure still waits `failure_delay` and still counts
    /// against the account.
    pub trusted_networks: Vec<Network>,
    /// How long a successful login is remembered, so the same login with the same password
    /// skips the slow hash (Dovecot's `auth_cache_ttl`); zero disables the cache.
    pub cache_ttl: Duration,
    /// Logins remembered at most; zero disables the cache.
    pub cache_size: u64,
}

impl Default for AuthOptions {
    fn default() -> AuthOptions {
        AuthOptions {
            failure_window: Duration::from_secs(15 * 60),
            max_failures_per_address: 10,
            max_failures_per_account: 10,
            failure_delay: Duration::from_secs(1),
            max_failure_delay: Duration::from_secs(15),
            hashing_threads: std::thread::available_parallelism().map_or(1, usize::from),
            max_tracked: 100_000,
            trusted_networks: Vec::new(),
            cache_ttl: DEFAULT_CACHE_TTL,
            cache_size: DEFAULT_CACHE_SIZE,
        }
    }
}

/// How long a verified login is remembered by default: Dovecot's `auth_cache_ttl`. A password
/// change or a deactivation is seen at once whatever the TTL (see [`AuthOptions::cache_ttl`]).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60 * 60);

/// Verified logins remembered by default: about 100 bytes each.
pub const DEFAULT_CACHE_SIZE: u64 = 100_000;

/// An IP network written `address/prefix` (`127.0.0.0/8`, `2001:db8::/32`), or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

/// A network that does not parse; the message says what is expected.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a network: write an address, or address/prefix like 10.0.0.0/8 or fd00::/8")]
pub struct NetworkError(String);

impl std::str::FromStr for Network {
    type Err = NetworkError;

    fn from_str(text: &str) -> Result<Network, NetworkError> {
        let error = || NetworkError(text.to_owned());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.trim().parse().map_err(|_| error())?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => prefix.trim().parse::<u8>().map_err(|_| error())?,
        };
        if prefix > bits {
            return Err(error());
        }
        Ok(Network { address, prefix })
    }
}

impl Network {
    /// Does `ip` lie in this network? IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        match (self.address, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Who is asking: decides what an account may use and names the line in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Imap,
    Pop3,
    ManageSieve,
    /// SMTP AUTH on 587/465.
    Submission,
    /// The admin API and web pages.
    Http,
    /// `mailstead auth test`.
    Cli,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Imap => "imap",
            Service::Pop3 => "pop3",
            Service::ManageSieve => "managesieve",
            Service::Submission => "submission",
            Service::Http => "http",
            Service::Cli => "cli",
        }
    }

    fn metric(self) -> mailstead_metrics::Protocol {
        use mailstead_metrics::Protocol;
        match self {
            Service::Imap => Protocol::Imap,
            Service::Pop3 => Protocol::Pop3,
            Service::ManageSieve => Protocol::ManageSieve,
            Service::Submission => Protocol::Submission,
            Service::Http => Protocol::Http,
            Service::Cli => Protocol::Cli,
        }
    }

    /// Mailbox access (IMAP, POP3, Sieve) is refused to send-only mailboxes, as MUM's Dovecot
    /// user query does; sending and checking the password are not.
    fn allows_send_only(self) -> bool {
        matches!(self, Service::Submission | Service::Http | Service::Cli)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One login attempt as a protocol received it.
#[derive(Clone, Copy, Debug)]
pub struct LoginAttempt<'a> {
    pub service: Service,
    /// The client's address, which the penalty counts failures against.
    pub client: IpAddr,
    /// The login as the client sent it (the full address).
    pub login: &'a str,
    pub password: &'a [u8],
}

/// The answer to a login attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    Accepted(Account),
    /// Which refusal is not said to the client beyond [`Refusal::is_temporary`]; the reason is
    /// for logs and the CLI.
    Refused(Refusal),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No mailbox has this login (or it is not an address).
    UnknownLogin,
    /// The mailbox or its domain is deactivated.
    Deactivated,
    WrongPassword,
    /// Longer than [`MAX_PASSWORD_LEN`]; nothing was hashed.
    PasswordTooLong,
    /// The password is right but this service is not for send-only mailboxes.
    SendOnly,
    /// Too many recent failures from this address; nothing was verified. Temporary.
    TooManyFailuresFromAddress,
    /// Too many recent failures on this account, this address among them; nothing was
    /// verified. Temporary.
    TooManyFailuresOnAccount,
}

impl Refusal {
    /// The word in the log line.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::UnknownLogin => "unknown_user",
            Refusal::Deactivated => "deactivated",
            Refusal::WrongPassword => "wrong_password",
            Refusal::PasswordTooLong => "password_too_long",
            Refusal::SendOnly => "send_only",
            Refusal::TooManyFailuresFromAddress => "too_many_failures_from_address",
            Refusal::TooManyFailuresOnAccount => "too_many_failures_on_account",
        }
    }

    /// Why, in words, for the CLI.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::UnknownLogin => "no mailbox has this login",
            Refusal::Deactivated => "the mailbox or its domain is deactivated",
            Refusal::WrongPassword => "wrong password",
            Refusal::PasswordTooLong => "the password is longer than allowed",
            Refusal::SendOnly => "a send-only mailbox may not use this service",
            Refusal::TooManyFailuresFromAddress => "too many failed logins from this address",
            Refusal::TooManyFailuresOnAccount => "too many failed logins on this account",
        }
    }

    /// Answered as a temporary failure (IMAP `NO [UNAVAILABLE]`, SMTP `454 4.7.0`): the same
    /// login may succeed later without changing anything.
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            Refusal::TooManyFailuresFromAddress | Refusal::TooManyFailuresOnAccount
        )
    }
}

/// The login could not be checked (answer with a temporary failure).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("stored password of {login} cannot be read: {source}")]
    StoredPassword {
        login: String,
        #[source]
        source: PasswordError,
    },
    #[error("the password hashing threads are not running")]
    Unavailable,
}

/// The login service; cheap to clone, one per process, shared by every listener.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    directory: Directory,
    /// How long a refusal without verification waits: the longest failure delay, so a
    /// blocked address cannot fill the log at network speed.
    blocked_delay: Duration,
    pool: HashPool,
    penalty: Mutex<Penalty>,
    trusted_networks: Vec<Network>,
    cache: LoginCache,
}

impl Authenticator {
    /// The hashing threads start at the first login.
    pub fn new(directory: Directory, options: AuthOptions) -> Authenticator {
        Authenticator {
            inner: Arc::new(Inner {
                directory,
                blocked_delay: options.max_failure_delay,
                pool: HashPool::new(options.hashing_threads),
                penalty: Mutex::new(Penalty::new(&options)),
                trusted_networks: options.trusted_networks,
                cache: LoginCache::new(options.cache_ttl, options.cache_size),
            }),
        }
    }

    /// Is `client` in `trusted_networks` (a webmail or proxy speaking for many users)?
    pub fn is_trusted(&self, client: IpAddr) -> bool {
        self.inner
            .trusted_networks
            .iter()
            .any(|network| network.contains(client))
    }

    /// Slow verifications run so far (the CLI and tests check that a refusal hashed nothing,
    /// and that a cached login hashed nothing either).
    pub fn verifications(&self) -> u64 {
        self.inner.pool.verified()
    }

    /// Decides a login attempt. A failure returns after its delay; a dropped future gives up
    /// its place in the hashing queue.
    ///
    /// # Errors
    /// The directory failed, the stored password cannot be read, or the hashing threads are
    /// gone: nothing is known about the password; answer with a temporary failure.
    pub async fn log_in(&self, attempt: LoginAttempt<'_>) -> Result<AuthOutcome, AuthError> {
        let outcome = self.decide(attempt).await;
        if let Ok(decided) = &outcome {
            let ok = matches!(decided, AuthOutcome::Accepted(_));
            mailstead_metrics::login(attempt.service.metric(), ok);
        }
        outcome
    }

    async fn decide(&self, attempt: LoginAttempt<'_>) -> Result<AuthOutcome, AuthError> {
        let LoginAttempt {
            service,
            client,
            login,
            password,
        } = attempt;
        // Failures are counted under the normalised address when there is one, so case and
        // IDNA variants of one login share a count; cut short, so a long login cannot make
        // the penalty's memory grow.
        let account_key = Directory::parse_address(login)
            .map(|address| address.to_string())
            .unwrap_or_else(|_| login.trim().to_lowercase());
        let account_key = shown_login(&account_key);
        if password.len() > MAX_PASSWORD_LEN {
            return Ok(self
                .fail(attempt, account_key, Refusal::PasswordTooLong)
                .await);
        }
        // A trusted client speaks for many users: one user's typos must not block the rest.
        let verdict = if self.is_trusted(client) {
            Verdict::Allowed
        } else {
            self.penalty().check(client, account_key, Instant::now())
        };
        let blocked = match verdict {
            Verdict::Allowed => None,
            Verdict::AddressBlocked => Some(Refusal::TooManyFailuresFromAddress),
            Verdict::AccountBlocked => Some(Refusal::TooManyFailuresOnAccount),
        };
        if let Some(refusal) = blocked {
            log_failure(service, client, login, refusal);
            tokio::time::sleep(self.inner.blocked_delay).await;
            return Ok(AuthOutcome::Refused(refusal));
        }

        let credentials = match self.inner.directory.login_credentials(login).await {
            Ok(credentials) => credentials,
            // A login that is not an address cannot belong to anyone.
            Err(DirectoryError::Address(_)) => None,
            Err(err) => return Err(err.into()),
        };
        // Only an active account is looked up in the cache or remembered: the directory has
        // just said so, so a deactivation is seen at once.
        let active = credentials
            .as_ref()
            .is_some_and(|credentials| credentials.account.is_some());
        let cached = active
            && credentials.as_ref().is_some_and(|credentials| {
                self.inner
                    .cache
                    .is_verified(account_key, &credentials.password_hash, password)
            });
        let (expected, account) = match credentials {
            None => (Expected::Dummy, None),
            Some(credentials) => (
                Expected::Stored(credentials.password_hash),
                Some(credentials.account),
            ),
        };
        let matches = if cached {
            true
        } else {
            self.verify_slowly(attempt, account_key, expected, active)
                .await?
        };
        let account = match account {
            None => {
                return Ok(self.fail(attempt, account_key, Refusal::UnknownLogin).await);
            }
            Some(_) if !matches => {
                return Ok(self
                    .fail(attempt, account_key, Refusal::WrongPassword)
                    .await);
            }
            Some(None) => return Ok(self.fail(attempt, account_key, Refusal::Deactivated).await),
            Some(Some(account)) => account,
        };
        self.penalty().record_success(client, account_key);
        if account.send_only && !service.allows_send_only() {
            // The password was right: not a failure to count, but said in the log.
            info!(
                "auth denied: service={service} rip={client} user={} reason={}",
                LogSafe(shown_login(login)),
                Refusal::SendOnly.reason()
            );
            return Ok(AuthOutcome::Refused(Refusal::SendOnly));
        }
        Ok(AuthOutcome::Accepted(account))
    }

    /// Verifies on the hashing threads; a success is remembered if `active`.
    async fn verify_slowly(
        &self,
        attempt: LoginAttempt<'_>,
        account_key: &str,
        expected: Expected,
        active: bool,
    ) -> Result<bool, AuthError> {
        let stored = match &expected {
            Expected::Stored(stored) if active => Some(stored.clone()),
            _ => None,
        };
        let matches = self
            .inner
            .pool
            .verify(attempt.client, expected, attempt.password.to_vec())
            .await
            .map_err(|_| AuthError::Unavailable)?
            .map_err(|source| AuthError::StoredPassword {
                login: account_key.to_owned(),
                source,
            });
        match matches {
            Ok(matches) => {
                if let (true, Some(stored)) = (matches, stored) {
                    self.inner
                        .cache
                        .remember(account_key, &stored, attempt.password);
                }
                Ok(matches)
            }
            Err(err) => {
                error!(service = attempt.service.name(), rip = %attempt.client, cause = %err, "cannot check a password");
                Err(err)
            }
        }
    }

    fn penalty(&self) -> std::sync::MutexGuard<'_, Penalty> {
        self.inner
            .penalty
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Counts the failure, logs it, and waits the penalty's delay before answering.
    async fn fail(
        &self,
        attempt: LoginAttempt<'_>,
        account_key: &str,
        refusal: Refusal,
    ) -> AuthOutcome {
        let trusted = self.is_trusted(attempt.client);
        let delay =
            self.penalty()
                .record_failure(attempt.client, account_key, trusted, Instant::now());
        log_failure(attempt.service, attempt.client, attempt.login, refusal);
        tokio::time::sleep(delay).await;
        AuthOutcome::Refused(refusal)
    }
}

/// The one line per failure that fail2ban's filter matches; `user` is escaped and quoted, so
/// it can neither end the line nor forge another `rip=`.
fn log_failure(service: Service, client: IpAddr, login: &str, refusal: Refusal) {
    mailstead_events::record(
        mailstead_events::Event::now(mailstead_events::Kind::AuthFailed)
            .login(shown_login(login))
            .client(client)
            .service(service.name())
            .reason(refusal.reason()),
    );
    info!(
        "auth failed: service={service} rip={client} user={} reason={}",
        LogSafe(shown_login(login)),
        refusal.reason()
    );
}

/// The login as logged and counted: no address is longer than 254 bytes (RFC 5321's path
/// limit), so more says nothing and would only let a client write long lines or fill memory.
fn shown_login(login: &str) -> &str {
    const MAX_SHOWN: usize = 256;
    if login.len() <= MAX_SHOWN {
        return login;
    }
    let mut end = MAX_SHOWN;
    while !login.is_char_boundary(end) {
        end -= 1;
    }
    &login[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_contain() {
        let loopback: Network = "127.0.0.0/8".parse().unwrap();
        assert!(loopback.contains("127.0.0.2".parse().unwrap()));
        assert!(loopback.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!loopback.contains("128.0.0.1".parse().unwrap()));
        assert!(!loopback.contains("::1".parse().unwrap()));
        let one: Network = " ::1 ".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        let everything: Network = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains("203.0.113.5".parse().unwrap()));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "webmail",
            "10.0.0.0/x",
        ] {
            assert!(bad.parse::<Network>().is_err(), "{bad:?}");
        }
    }
}
