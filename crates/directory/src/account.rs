//! Logins: authentication, the addresses a login may send as, and a mailbox's quota and
//! location.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;

use crate::address::Address;
use crate::lookup::{self, MailboxRow};
use crate::model::{DkimKey, MailboxLocation, Quota, TlsPolicy, Transport};
use crate::resolve::unix_now;
use crate::{Directory, DirectoryError};

/// A mailbox that may log in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    pub mailbox_id: i64,
    #[serde(serialize_with = "crate::resolve::serialize_address")]
    pub address: Address,
    /// Send-only mailboxes log in and send but receive nothing.
    pub send_only: bool,
    pub is_super_admin: bool,
    pub location: MailboxLocation,
    pub quota: Quota,
    /// The groups whose `group=NAME` entries of dovecot-acl files apply to this login
    /// (Dovecot's userdb field `acl_groups`), by name.
    pub acl_groups: Vec<String>,
}

/// What checking a login needs from the directory: the stored password and, when the
/// mailbox may log in, its account. Verifying the password is the auth service's job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginCredentials {
    /// The stored value as MUM and Dovecot hold it (`{SCHEME}...` or a bare crypt string).
    pub password_hash: String,
    /// `None` when the mailbox or its domain is deactivated.
    pub account: Option<Account>,
}

/// The addresses a login owns for sending.
#[derive(Clone, Debug, Default)]
pub(crate) struct OwnedAddresses {
    exact: HashSet<Address>,
    /// Domains where a catch-all alias names this login as a sender: any address there.
    whole_domains: HashSet<String>,
    /// Unix second at which one of the aliases expires.
    valid_until: Option<i64>,
}

impl Directory {
    /// The account behind a login (the full address), without checking a password; `None`
    /// when the login cannot log in. Cached.
    ///
    /// # Errors
    /// A malformed login or a database failure.
    pub async fn account(&self, login: &str) -> Result<Option<Account>, DirectoryError> {
        let login = Address::parse(login)?;
        let row = self.account_row(&login).await?;
        Ok(row.as_ref().as_ref().and_then(usable_account))
    }

    async fn account_row(
        &self,
        login: &Address,
    ) -> Result<Arc<Option<MailboxRow>>, DirectoryError> {
        let key = login.to_string();
        if let Some(hit) = self.inner.caches.accounts.get(&key) {
            return Ok(hit);
        }
        let ticket = self.inner.caches.accounts.ticket();
        let row = Arc::new(lookup::mailbox_by_address(&self.inner.db, login).await?);
        self.inner
            .caches
            .accounts
            .insert(key, Arc::clone(&row), ticket);
        Ok(row)
    }

    /// The stored password and account of a login (the full address, as MUM's Dovecot
    /// `password_query` expects); `None` when no mailbox has this address. Send-only mailboxes
    /// are included: whether a service accepts them is the auth service's decision. Cached.
    ///
    /// # Errors
    /// A malformed login or a database failure.
    pub async fn login_credentials(
        &self,
        login: &str,
    ) -> Result<Option<LoginCredentials>, DirectoryError> {
        let login = Address::parse(login)?;
        let row = self.account_row(&login).await?;
        Ok(row.as_ref().as_ref().map(|mailbox| LoginCredentials {
            password_hash: mailbox.password.clone(),
            account: usable_account(mailbox),
        }))
    }

    /// May `login` use `from` as its envelope sender? Yes for its own address and for the
    /// aliases whose `alias_senders` name its mailbox (MUM's sender-login map), including
    /// those addresses in alias domains and with a recipient-delimiter extension (`bob+x@`).
    /// A catch-all alias naming it as sender gives it every address of the domain that has no
    /// entry of its own in MUM's sender-login map (no active mailbox, no alias with senders),
    /// like Postfix's `@domain` key, which applies only when no more specific key matches.
    ///
    /// # Errors
    /// A malformed login or a database failure. A malformed `from` is simply not owned.
    pub async fn may_send_as(&self, login: &str, from: &str) -> Result<bool, DirectoryError> {
        let login = Address::parse(login)?;
        let Ok(from) = Address::parse(from) else {
            return Ok(false);
        };
        let owned = self.owned_addresses(&login).await?;
        let mut candidates = vec![from.clone()];
        if let Some((base, _)) = from.split_extension(&self.inner.options.recipient_delimiter) {
            candidates.push(base);
        }
        if let Some((target, true)) =
            lookup::alias_domain_target(&self.inner.db, from.domain()).await?
        {
            let mapped: Vec<Address> = candidates.iter().map(|a| a.with_domain(&target)).collect();
            candidates.extend(mapped);
        }
        if candidates
            .iter()
            .any(|candidate| owned.exact.contains(candidate))
        {
            return Ok(true);
        }
        for candidate in candidates
            .iter()
            .filter(|candidate| owned.whole_domains.contains(candidate.domain()))
        {
            // Postfix takes the first key that matches: an address with an entry of its own in
            // the sender-login map is decided by that entry, never by the domain's catch-all.
            if !self.has_own_entry(candidate).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether MUM's sender-login map has a row for `address`: an active mailbox in an active
    /// domain, or an active alias with senders.
    async fn has_own_entry(&self, address: &Address) -> Result<bool, DirectoryError> {
        let db = &self.inner.db;
        let mailbox = lookup::mailbox_by_address(db, address).await?;
        if mailbox.is_some_and(|m| m.active && m.domain_active) {
            return Ok(true);
        }
        Ok(lookup::alias_sender_count(db, address).await? > 0)
    }

    /// Every address `login` may send as, sorted, for display (`@domain` for a whole domain).
    ///
    /// # Errors
    /// A malformed login or a database failure.
    pub async fn sendable_addresses(&self, login: &str) -> Result<Vec<String>, DirectoryError> {
        let login = Address::parse(login)?;
        let owned = self.owned_addresses(&login).await?;
        let mut all: Vec<String> = owned.exact.iter().map(Address::to_string).collect();
        all.extend(
            owned
                .whole_domains
                .iter()
                .map(|domain| format!("@{domain}")),
        );
        all.sort();
        Ok(all)
    }

    pub(crate) async fn owned_addresses(
        &self,
        login: &Address,
    ) -> Result<Arc<OwnedAddresses>, DirectoryError> {
        let key = login.to_string();
        let now = unix_now();
        if let Some(hit) = self.inner.caches.senders.get(&key)
            && hit.valid_until.is_none_or(|until| until > now)
        {
            return Ok(hit);
        }
        let ticket = self.inner.caches.senders.ticket();
        let mut owned = OwnedAddresses::default();
        let row = self.account_row(login).await?;
        if let Some(mailbox) = row
            .as_ref()
            .as_ref()
            .filter(|m| m.active && m.domain_active)
        {
            owned.exact.insert(mailbox.address.clone());
            for (local, domain, deactivate_at) in
                lookup::sender_aliases(&self.inner.db, mailbox.id).await?
            {
                if let Some(at) = deactivate_at {
                    if at <= now {
                        continue;
                    }
                    owned.valid_until = Some(owned.valid_until.map_or(at, |until| until.min(at)));
                }
                if local.is_empty() {
                    owned.whole_domains.insert(domain);
                } else {
                    owned
                        .exact
                        .insert(Address::from_normalized(&local, &domain));
                }
            }
        }
        let owned = Arc::new(owned);
        self.inner
            .caches
            .senders
            .insert(key, Arc::clone(&owned), ticket);
        Ok(owned)
    }

    /// The quota of the mailbox at `address`: its own, else its domain's, else unlimited.
    /// `None` when there is no such mailbox.
    ///
    /// # Errors
    /// A malformed address or a database failure.
    pub async fn quota(&self, address: &str) -> Result<Option<Quota>, DirectoryError> {
        let address = Address::parse(address)?;
        let row = self.account_row(&address).await?;
        Ok(row.as_ref().as_ref().map(MailboxRow::effective_quota))
    }

    /// Where the mailbox at `address` lives on disk. `None` when there is no such mailbox.
    ///
    /// # Errors
    /// A malformed address or a database failure.
    pub async fn mailbox_location(
        &self,
        address: &str,
    ) -> Result<Option<MailboxLocation>, DirectoryError> {
        let address = Address::parse(address)?;
        let row = self.account_row(&address).await?;
        Ok(row
            .as_ref()
            .as_ref()
            .map(|mailbox| mailbox.location.clone()))
    }

    /// The active TLS policy for mail to `domain`, if any. Cached.
    ///
    /// # Errors
    /// A malformed domain or a database failure.
    pub async fn tls_policy(&self, domain: &str) -> Result<Option<TlsPolicy>, DirectoryError> {
        let domain = crate::address::normalize_domain(domain)?;
        if let Some(hit) = self.inner.caches.tls_policies.get(&domain) {
            return Ok(hit.as_ref().clone());
        }
        let ticket = self.inner.caches.tls_policies.ticket();
        let policy = lookup::tls_policy(&self.inner.db, &domain)
            .await?
            .filter(|policy| policy.active);
        self.inner
            .caches
            .tls_policies
            .insert(domain, Arc::new(policy.clone()), ticket);
        Ok(policy)
    }

    /// The active transport for mail to `domain` (where it goes instead of the domain's MX),
    /// if any. Cached.
    ///
    /// # Errors
    /// A malformed domain, a stored transport that is no usable next hop, or a database
    /// failure.
    pub async fn transport(&self, domain: &str) -> Result<Option<Transport>, DirectoryError> {
        let domain = crate::address::normalize_domain(domain)?;
        if let Some(hit) = self.inner.caches.transports.get(&domain) {
            return Ok(hit.as_ref().clone());
        }
        let ticket = self.inner.caches.transports.ticket();
        let transport = lookup::transport(&self.inner.db, &domain)
            .await?
            .filter(|transport| transport.active);
        self.inner
            .caches
            .transports
            .insert(domain, Arc::new(transport.clone()), ticket);
        Ok(transport)
    }

    /// The key that signs mail from `domain`: its newest active DKIM key, private key
    /// included, or `None` when it has none. Cached.
    ///
    /// # Errors
    /// A malformed domain or a database failure.
    pub async fn dkim_signing_key(&self, domain: &str) -> Result<Option<DkimKey>, DirectoryError> {
        let domain = crate::address::normalize_domain(domain)?;
        if let Some(hit) = self.inner.caches.dkim_keys.get(&domain) {
            return Ok(hit.as_ref().clone());
        }
        let ticket = self.inner.caches.dkim_keys.ticket();
        let key = lookup::dkim_signing_key(&self.inner.db, &domain).await?;
        self.inner
            .caches
            .dkim_keys
            .insert(domain, Arc::new(key.clone()), ticket);
        Ok(key)
    }
}

fn usable_account(mailbox: &MailboxRow) -> Option<Account> {
    (mailbox.active && mailbox.domain_active).then(|| Account {
        mailbox_id: mailbox.id,
        address: mailbox.address.clone(),
        send_only: mailbox.send_only,
        is_super_admin: mailbox.is_super_admin,
        location: mailbox.location.clone(),
        quota: mailbox.effective_quota(),
        acl_groups: mailbox.acl_groups.clone(),
    })
}
