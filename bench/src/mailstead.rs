//! The operations measured on Mailstead: calls on a `Directory` handle, nothing else.

use anyhow::Result;
use mailstead_directory::Directory;
use mailstead_directory::account::AuthOutcome;
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

/// `Directory::authenticate` with the right password: lookup plus hash verification.
pub struct Authenticate(pub Directory);

impl Worker for Authenticate {
    async fn call(&mut self, key: &Key) -> Result<bool> {
        let outcome = self.0.authenticate(&key.addr, PASSWORD.as_bytes()).await?;
        Ok(matches!(outcome, AuthOutcome::Accepted(_)))
    }
}
