//! The operations measured on Mailstead: calls on a `Directory` handle, nothing else.

use anyhow::Result;
use mailstead_auth::{AuthOutcome, Authenticator, LoginAttempt, Service};
use mailstead_directory::Directory;
use mailstead_directory::resolve::{Outcome, Recipient, Rejection};

use crate::dataset::{Key, Kind, PASSWORD};
use crate::harness::Worker;

/// `Directory::resolve`.
pub struct Resolve(pub Directory);

impl Worker for Resolve {
    async fn call(&mut self, key: &Key) -> Result<bool> {
        let resolution = self.0.resolve(&key.addr).await?;
        Ok(match (&resolution.outcome, key.kind) {
            (Outcome::Deliver(to), Kind::Mailbox) => {
                matches!(to.as_slice(), [Recipient::Local(_)])
            }
            (Outcome::Deliver(to), Kind::Alias) => {
                matches!(
                    to.as_slice(),
                    [Recipient::Local(_), Recipient::External { .. }]
                )
            }
            (Outcome::Reject(Rejection::UnknownUser), Kind::Unknown) => true,
            _ => false,
        })
    }
}

/// `Directory::account`: the login lookup, no password hashing.
pub struct Account(pub Directory);

impl Worker for Account {
    async fn call(&mut self, key: &Key) -> Result<bool> {
        let account = self.0.account(&key.addr).await?;
        Ok(account.is_some() == (key.kind == Kind::Mailbox))
    }
}

/// `Authenticator::log_in` with the right password: lookup plus hash verification on the
/// login service's hashing threads. Each worker is its own client address, as concurrent
/// logins from many clients are (one address gets one verification at a time).
pub struct Authenticate {
    auth: Authenticator,
    client: std::net::IpAddr,
}

impl Authenticate {
    pub fn new(auth: Authenticator) -> Authenticate {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Authenticate {
            auth,
            client: std::net::IpAddr::from((0x0a00_0000 | (n & 0x00ff_ffff)).to_be_bytes()),
        }
    }
}

impl Worker for Authenticate {
    async fn call(&mut self, key: &Key) -> Result<bool> {
        let outcome = self
            .auth
            .log_in(LoginAttempt {
                service: Service::Cli,
                client: self.client,
                login: &key.addr,
                password: PASSWORD.as_bytes(),
            })
            .await?;
        Ok(matches!(outcome, AuthOutcome::Accepted(_)))
    }
}
