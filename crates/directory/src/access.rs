//! Who is asking and what they may do: MUM's roles, the one policy every API route and web page
//! asks, and the actor a write is audited under.
//!
//! MUM has no users table: a mailbox is the login identity. Its roles come from three places,
//! read fresh on every request so that a revoked right or a deactivated mailbox counts at once:
//! - `mailboxes.is_super_admin`: a super admin passes every check;
//! - `domain_admins`: a domain admin manages the mailboxes and aliases of those domains, but
//!   creates, changes and removes no domain (MUM's `DomainPolicy` returns false);
//! - `mailbox_admins`: a mailbox admin manages those mailboxes (every field but
//!   `is_super_admin`), and creates or removes none.
//!
//! Every user reads their own mailbox and changes its name, alternative address and password;
//! quota, `send_only` and `active` are for admins, `is_super_admin` for super admins only. A
//! user reads the aliases that list them as a recipient or a sender.
//!
//! An API token carries one [`TokenScope`] instead of a mailbox's roles: `super`,
//! `domain:<domain>` (a domain admin of that domain alone) or `user:<address>` (that user's own
//! rights, none of its admin rights).

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::address::{Address, AliasAddress, normalize_domain};
use crate::{Directory, DirectoryError};

/// Who a change is audited under: `name` (`cli:root`, `mailbox:alice@example.com`,
/// `token:3:deploy`) and `source`, where it came from (`cli`, `http 203.0.113.7 session`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub name: String,
    pub source: String,
}

impl Actor {
    pub fn new(name: impl Into<String>, source: impl Into<String>) -> Actor {
        Actor {
            name: name.into(),
            source: source.into(),
        }
    }
}

/// A bare name is a change made on this host (tools, imports, tests): source `local`.
impl From<&str> for Actor {
    fn from(name: &str) -> Actor {
        Actor::new(name, "local")
    }
}

impl From<&String> for Actor {
    fn from(name: &String) -> Actor {
        Actor::from(name.as_str())
    }
}

impl From<&Actor> for Actor {
    fn from(actor: &Actor) -> Actor {
        actor.clone()
    }
}

/// What an API token may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum TokenScope {
    /// Everything, as a super admin.
    Super,
    /// A domain admin of this domain (normalised) and nothing else.
    Domain(String),
    /// This user's own rights.
    User(Address),
}

impl TokenScope {
    /// `super`, `domain:example.com` or `user:alice@example.com`.
    ///
    /// # Errors
    /// [`DirectoryError::Invalid`] naming what is wrong.
    pub fn parse(input: &str) -> Result<TokenScope, DirectoryError> {
        let input = input.trim();
        if input == "super" {
            return Ok(TokenScope::Super);
        }
        if let Some(domain) = input.strip_prefix("domain:") {
            return Ok(TokenScope::Domain(normalize_domain(domain)?));
        }
        if let Some(address) = input.strip_prefix("user:") {
            return Ok(TokenScope::User(Address::parse(address)?));
        }
        Err(DirectoryError::Invalid(format!(
            "unknown scope {input:?}; use super, domain:DOMAIN or user:ADDRESS"
        )))
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenScope::Super => f.write_str("super"),
            TokenScope::Domain(domain) => write!(f, "domain:{domain}"),
            TokenScope::User(address) => write!(f, "user:{address}"),
        }
    }
}

impl From<TokenScope> for String {
    fn from(scope: TokenScope) -> String {
        scope.to_string()
    }
}

/// How a principal proved who it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Identity {
    /// A mailbox that logged in with its password.
    Mailbox { address: String },
    /// An API token.
    Token {
        id: i64,
        name: String,
        scope: TokenScope,
    },
}

/// Who is asking, with the roles that decide what they may do. Built by
/// [`Directory::principal_for_login`] or [`Directory::principal_for_token`]; never by hand
/// outside tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub identity: Identity,
    /// The mailbox whose own rights apply (name, alternative address, password); `None` for a
    /// `super` or `domain:` token.
    pub own_address: Option<String>,
    pub super_admin: bool,
    /// Domains this principal is a domain admin of.
    pub admin_domains: BTreeSet<String>,
    /// Mailboxes (addresses) this principal is a mailbox admin of.
    pub admin_mailboxes: BTreeSet<String>,
}

/// A mailbox's fields, as the policy tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailboxField {
    Name,
    AlternativeEmail,
    Password,
    Quota,
    SendOnly,
    Active,
    IsSuperAdmin,
}

impl MailboxField {
    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            MailboxField::Name => "name",
            MailboxField::AlternativeEmail => "alternative_email",
            MailboxField::Password => "password",
            MailboxField::Quota => "quota",
            MailboxField::SendOnly => "send_only",
            MailboxField::Active => "active",
            MailboxField::IsSuperAdmin => "is_super_admin",
        }
    }

    /// What every user may change of their own mailbox.
    fn is_own(self) -> bool {
        matches!(
            self,
            MailboxField::Name | MailboxField::AlternativeEmail | MailboxField::Password
        )
    }
}

/// Which domains a list may show a principal: every one, or these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Visible {
    All,
    Domains(BTreeSet<String>),
}

impl Principal {
    /// The name the audit log records.
    pub fn actor_name(&self) -> String {
        match &self.identity {
            Identity::Mailbox { address } => format!("mailbox:{address}"),
            Identity::Token { id, name, .. } => format!("token:{id}:{name}"),
        }
    }

    pub fn is_super(&self) -> bool {
        self.super_admin
    }

    /// Whether this principal administers anything at all (the console shows admin pages).
    pub fn is_admin(&self) -> bool {
        self.super_admin || !self.admin_domains.is_empty() || !self.admin_mailboxes.is_empty()
    }

    fn is_own(&self, address: &str) -> bool {
        self.own_address.as_deref() == Some(address)
    }

    fn admins_domain(&self, domain: &str) -> bool {
        self.super_admin || self.admin_domains.contains(domain)
    }

    /// Create, change or remove domains, alias domains, TLS policies, transports, DKIM keys,
    /// the queue, tokens and admin grants; read the audit log: super admins only.
    pub fn may_manage_server(&self) -> bool {
        self.super_admin
    }

    /// See a domain's settings (and its alias domains and DKIM keys): its admins.
    pub fn may_read_domain(&self, domain: &str) -> bool {
        self.admins_domain(domain)
    }

    /// Create and remove mailboxes and aliases of `domain`, change its aliases.
    pub fn may_manage_domain_contents(&self, domain: &str) -> bool {
        self.admins_domain(domain)
    }

    /// Which domains' mailboxes and aliases lists show in full.
    pub fn visible_domains(&self) -> Visible {
        if self.super_admin {
            Visible::All
        } else {
            Visible::Domains(self.admin_domains.clone())
        }
    }

    /// Read a mailbox: its admins and its owner.
    pub fn may_read_mailbox(&self, address: &Address) -> bool {
        let shown = address.to_string();
        self.admins_domain(address.domain())
            || self.admin_mailboxes.contains(&shown)
            || self.is_own(&shown)
    }

    /// Change one field of a mailbox.
    pub fn may_change_mailbox(&self, address: &Address, field: MailboxField) -> bool {
        if field == MailboxField::IsSuperAdmin {
            return self.super_admin;
        }
        let shown = address.to_string();
        self.admins_domain(address.domain())
            || self.admin_mailboxes.contains(&shown)
            || (field.is_own() && self.is_own(&shown))
    }

    /// Read an alias: admins of its domain, and users it lists as a recipient or a sender.
    pub fn may_read_alias(
        &self,
        alias: &AliasAddress,
        recipients: &[String],
        senders: &[String],
    ) -> bool {
        if self.admins_domain(alias.domain()) {
            return true;
        }
        let Some(own) = &self.own_address else {
            return false;
        };
        recipients.iter().chain(senders).any(|member| member == own)
    }

    /// Ask how an address would be delivered: admins of its domain.
    pub fn may_resolve(&self, domain: &str) -> bool {
        self.admins_domain(domain)
    }
}

impl Directory {
    /// The principal of a mailbox that has logged in, with its roles from MUM's tables.
    /// `None` when the mailbox is gone or cannot log in any more.
    ///
    /// # Errors
    /// A malformed address or a database failure.
    pub async fn principal_for_login(
        &self,
        login: &str,
    ) -> Result<Option<Principal>, DirectoryError> {
        let Some(account) = self.account(login).await? else {
            return Ok(None);
        };
        let address = account.address.to_string();
        let db = &self.inner.db;
        let admin_domains: Vec<String> = sqlx::query_scalar(db.sql(
            "SELECT d.domain FROM domain_admins a INNER JOIN domains d ON a.domain_id = d.id WHERE a.mailbox_id = ?",
        ))
        .bind(account.mailbox_id)
        .fetch_all(&db.pool)
        .await?;
        let admin_mailboxes: Vec<(String, String)> = sqlx::query_as(db.sql(
            "SELECT m.local_part, d.domain FROM mailbox_admins a INNER JOIN mailboxes m ON a.mailbox_id = m.id \
             INNER JOIN domains d ON m.domain_id = d.id WHERE a.admin_mailbox_id = ?",
        ))
        .bind(account.mailbox_id)
        .fetch_all(&db.pool)
        .await?;
        Ok(Some(Principal {
            identity: Identity::Mailbox {
                address: address.clone(),
            },
            own_address: Some(address),
            super_admin: account.is_super_admin,
            admin_domains: admin_domains.into_iter().collect(),
            admin_mailboxes: admin_mailboxes
                .into_iter()
                .map(|(local, domain)| format!("{local}@{domain}"))
                .collect(),
        }))
    }
}

/// A principal for a token of `scope`.
pub(crate) fn token_principal(id: i64, name: String, scope: TokenScope) -> Principal {
    let (own_address, super_admin, admin_domains) = match &scope {
        TokenScope::Super => (None, true, BTreeSet::new()),
        TokenScope::Domain(domain) => (None, false, BTreeSet::from([domain.clone()])),
        TokenScope::User(address) => (Some(address.to_string()), false, BTreeSet::new()),
    };
    Principal {
        identity: Identity::Token { id, name, scope },
        own_address,
        super_admin,
        admin_domains,
        admin_mailboxes: BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Address {
        Address::parse(text).expect("an address")
    }

    fn user(own: &str) -> Principal {
        token_principal(1, "t".to_owned(), TokenScope::User(address(own)))
    }

    #[test]
    fn scopes_parse_and_print_back() {
        for text in ["super", "domain:example.com", "user:alice@example.com"] {
            assert_eq!(TokenScope::parse(text).expect("a scope").to_string(), text);
        }
        assert_eq!(
            TokenScope::parse("domain:EXAMPLE.com").expect("a scope"),
            TokenScope::Domain("example.com".to_owned())
        );
        let err = TokenScope::parse("admin").expect_err("refused");
        assert!(err.to_string().contains("unknown scope"), "{err}");
        assert!(TokenScope::parse("user:not an address").is_err());
    }

    #[test]
    fn a_user_changes_only_their_own_name_address_and_password() {
        let alice = user("alice@a.example");
        let own = address("alice@a.example");
        let other = address("bob@a.example");
        assert!(alice.may_read_mailbox(&own));
        assert!(!alice.may_read_mailbox(&other));
        for field in [
            MailboxField::Name,
            MailboxField::AlternativeEmail,
            MailboxField::Password,
        ] {
            assert!(alice.may_change_mailbox(&own, field), "{field:?}");
            assert!(!alice.may_change_mailbox(&other, field), "{field:?}");
        }
        for field in [
            MailboxField::Quota,
            MailboxField::SendOnly,
            MailboxField::Active,
            MailboxField::IsSuperAdmin,
        ] {
            assert!(!alice.may_change_mailbox(&own, field), "{field:?}");
        }
        assert!(!alice.may_manage_domain_contents("a.example"));
        assert!(!alice.may_manage_server());
    }

    #[test]
    fn a_domain_admin_stays_in_their_domain_and_never_makes_super_admins() {
        let admin = token_principal(
            2,
            "d".to_owned(),
            TokenScope::Domain("a.example".to_owned()),
        );
        let inside = address("bob@a.example");
        let outside = address("bob@b.example");
        assert!(admin.may_read_mailbox(&inside));
        assert!(admin.may_change_mailbox(&inside, MailboxField::Quota));
        assert!(!admin.may_change_mailbox(&inside, MailboxField::IsSuperAdmin));
        assert!(!admin.may_read_mailbox(&outside));
        assert!(!admin.may_change_mailbox(&outside, MailboxField::Password));
        assert!(admin.may_manage_domain_contents("a.example"));
        assert!(!admin.may_manage_domain_contents("b.example"));
        assert!(!admin.may_manage_server());
        assert_eq!(
            admin.visible_domains(),
            Visible::Domains(BTreeSet::from(["a.example".to_owned()]))
        );
    }

    #[test]
    fn a_mailbox_admin_manages_those_mailboxes_only() {
        let mut admin = user("carol@a.example");
        admin.admin_mailboxes.insert("bob@a.example".to_owned());
        let managed = address("bob@a.example");
        assert!(admin.may_change_mailbox(&managed, MailboxField::Quota));
        assert!(!admin.may_change_mailbox(&managed, MailboxField::IsSuperAdmin));
        assert!(!admin.may_read_mailbox(&address("dave@a.example")));
        assert!(!admin.may_manage_domain_contents("a.example"));
        assert!(admin.is_admin());
    }

    #[test]
    fn users_read_the_aliases_that_name_them() {
        let alice = user("alice@a.example");
        let alias = AliasAddress::parse("team@a.example").expect("an alias");
        let alice_listed = ["alice@a.example".to_owned()];
        assert!(alice.may_read_alias(&alias, &alice_listed, &[]));
        assert!(alice.may_read_alias(&alias, &[], &alice_listed));
        assert!(!alice.may_read_alias(&alias, &["bob@a.example".to_owned()], &[]));
    }

    #[test]
    fn a_super_token_passes_every_check() {
        let root = token_principal(3, "root".to_owned(), TokenScope::Super);
        let anyone = address("x@z.example");
        assert!(root.may_change_mailbox(&anyone, MailboxField::IsSuperAdmin));
        assert!(root.may_manage_server());
        assert_eq!(root.visible_domains(), Visible::All);
        assert_eq!(root.actor_name(), "token:3:root");
    }
}
