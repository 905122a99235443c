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
//!    ([`Directory::login_credentials`]); the password is verified on a small pool of
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

mod penalty;
mod pool;

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
            }),
        }
    }

    /// Verifications run so far (the CLI and tests check that a refusal hashed nothing).
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
        let verdict = self.penalty().check(client, account_key, Instant::now());
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
        let (expected, account) = match credentials {
            None => (Expected::Dummy, None),
            Some(credentials) => (
                Expected::Stored(credentials.password_hash),
                Some(credentials.account),
            ),
        };
        let matches = self
            .inner
            .pool
            .verify(client, expected, password.to_vec())
            .await
            .map_err(|_| AuthError::Unavailable)?
            .map_err(|source| AuthError::StoredPassword {
                login: account_key.to_owned(),
                source,
            });
        let matches = match matches {
            Ok(matches) => matches,
            Err(err) => {
                error!(service = service.name(), rip = %client, cause = %err, "cannot check a password");
                return Err(err);
            }
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
        let delay = self
            .penalty()
            .record_failure(attempt.client, account_key, Instant::now());
        log_failure(attempt.service, attempt.client, attempt.login, refusal);
        tokio::time::sleep(delay).await;
        AuthOutcome::Refused(refusal)
    }
}

/// The one line per failure that fail2ban's filter matches; `user` is escaped and quoted, so
/// it can neither end the line nor forge another `rip=`.
fn log_failure(service: Service, client: IpAddr, login: &str, refusal: Refusal) {
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
