//! Validated, audited writes: what the CLI (and later the HTTP API) changes.
//!
//! Every write runs in one transaction that also appends to `audit_log` (who and from where,
//! what, when: an [`Actor`]) and
//! bumps `directory_state.change_serial`, so running servers drop their caches. Errors say what
//! to fix, with MUM's rules: a local part is unique across mailboxes and aliases of a domain,
//! `max_mailboxes` and `max_aliases` are limits (NULL = none), and here `max_quota` (GiB) is a
//! limit on a mailbox's quota too (MUM stores it but enforces it nowhere).
//!
//! # Layout
//!
//! - `mod.rs`: the transaction and its audit line (`begin`, `finish`), the checks and row
//!   readers the kinds share, and [`fill_template`], where a mailbox's location is made.
//! - One file per kind of thing the directory holds: `domain.rs`, `mailbox.rs`, `alias.rs`
//!   (aliases, their senders, alias domains), `tls_policy.rs`, `transport.rs`, `dkim.rs`.
//! - `admins.rs`: MUM's `domain_admins` and `mailbox_admins` grants.
//! - `acl_group.rs`: the groups of a mailbox for IMAP ACLs (`mailbox_acl_groups`).
//! - `token.rs`: API tokens; `page.rs`: lists a page at a time, filtered and sorted in SQL.
//! - `audit.rs`: reading the audit log back; `mum.rs`: MUM's tables read for an import.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::access::Actor;
use crate::address::{
    Address, AddressError, AliasAddress, check_domain_path_safe, normalize_domain,
};
use crate::lookup::{self, flag};
use crate::model::{
    Alias, AliasDomain, AuditEntry, DkimAlgorithm, DkimKeyInfo, Domain, Mailbox, MailboxLocation,
    NextHop, Quota, TlsPolicy, TlsPolicyKind, Transport,
};
use crate::resolve::unix_now;
use crate::{Directory, DirectoryError};

mod acl_group;
mod admins;
mod alias;
mod audit;
mod dkim;
mod domain;
mod mailbox;
mod mum;
mod page;
mod tls_policy;
mod token;
mod transport;

pub use acl_group::MAX_ACL_GROUP_LEN;
pub use admins::AdminGrant;
pub use alias::{AliasUpdate, NewAlias};
pub use domain::{DomainUpdate, NewDomain};
pub use mailbox::{MailboxUpdate, NewMailbox};
pub use mum::{MumSnapshot, NewAliasRecord, NewDomainRecord, NewMailboxRecord, TlsPolicyRecord};
pub use page::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, Page, PageRequest, Sort, Visibility};
pub use tls_policy::{NewTlsPolicy, TlsPolicyUpdate};
pub use token::{ApiToken, MAX_TOKEN_LEN, NewToken, TOKEN_PREFIX};
pub use transport::TransportUpdate;

fn not_found_domain(domain: &str) -> DirectoryError {
    DirectoryError::NotFound(format!(
        "unknown domain {domain}; add it first with `mailstead domain add {domain}`"
    ))
}

/// Fills MUM's `%d` (domain), `%n` (local part) and `%u` (address) placeholders in one pass
/// (a value is never read again as a placeholder); any other `%x` is left as it is. This is
/// where a mailbox's location is built from its address, so an address whose parts could
/// climb out of their directory (`/`, `..`, a leading `.`; see
/// [`crate::address::path_component_problem`]) is refused here whoever asks.
///
/// # Errors
/// [`AddressError::PathUnsafe`] for such an address.
pub fn fill_template(template: &str, address: &Address) -> Result<String, AddressError> {
    address.check_path_safe()?;
    let mut out = String::with_capacity(template.len() + 64);
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(address.domain()),
            Some('n') => out.push_str(address.local_part()),
            Some('u') => {
                out.push_str(address.local_part());
                out.push('@');
                out.push_str(address.domain());
            }
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    Ok(out)
}

/// MUM's `quota` and Mailstead's `quota_bytes` columns for an optional quota (NULL inherits).
fn quota_columns(quota: Option<Quota>) -> (Option<i64>, Option<i64>) {
    match quota {
        Some(quota) => {
            let (gib, bytes) = quota.to_columns();
            (Some(gib), bytes)
        }
        None => (None, None),
    }
}

/// A number for the audit log, or `none`.
fn show_number(value: Option<i64>) -> String {
    value.map_or_else(|| "none".to_owned(), |n| n.to_string())
}

/// A text for the audit log, quoted, or `none`.
fn show_text(value: Option<&str>) -> String {
    value.map_or_else(|| "none".to_owned(), |text| format!("{text:?}"))
}

fn non_negative(value: Option<i64>, what: &str) -> Result<Option<i64>, DirectoryError> {
    match value {
        Some(n) if n < 0 => Err(DirectoryError::Invalid(format!(
            "{what} must be 0 or more, not {n}"
        ))),
        other => Ok(other),
    }
}

type Tx = Transaction<'static, Any>;

impl Directory {
    async fn begin(&self) -> Result<Tx, DirectoryError> {
        Ok(self.inner.db.pool.begin().await?)
    }

    /// Deletes the one row of `table` (a table keyed by `domain`) and audits `action`;
    /// `missing` when there was none.
    async fn remove_by_domain(
        &self,
        actor: &Actor,
        table: &'static str,
        action: &str,
        domain: &str,
        missing: impl FnOnce() -> DirectoryError,
    ) -> Result<(), DirectoryError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            self.inner
                .db
                .sql(&format!("DELETE FROM {table} WHERE domain = ?")),
        )
        .bind(domain)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(missing());
        }
        self.finish(tx, actor, action, domain, None).await
    }

    /// Audits, bumps the change counter and commits; then clears this process's cache.
    async fn finish(
        &self,
        mut tx: Tx,
        actor: &Actor,
        action: &str,
        subject: &str,
        details: Option<String>,
    ) -> Result<(), DirectoryError> {
        let db = &self.inner.db;
        sqlx::query(db.sql(
            "INSERT INTO audit_log (created_at, actor, source, action, subject, details) VALUES ({ts}, ?, ?, ?, ?, ?)",
        ))
        .bind(unix_now())
        .bind(&actor.name)
        .bind(&actor.source)
        .bind(action)
        .bind(subject)
        .bind(details)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.clear_cache();
        Ok(())
    }

    /// Sets `updated_at` of row `id` in `table` (one of ours, never user input) to now.
    async fn touch(&self, tx: &mut Tx, table: &'static str, id: i64) -> Result<(), DirectoryError> {
        sqlx::query(self.inner.db.sql(&format!(
            "UPDATE {table} SET updated_at = {{ts}} WHERE id = ?"
        )))
        .bind(unix_now())
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Stores a quota (or NULL: inherit) in row `id` of `table` (`domains` or `mailboxes`).
    async fn set_quota(
        &self,
        tx: &mut Tx,
        table: &'static str,
        id: i64,
        quota: Option<Quota>,
    ) -> Result<(), DirectoryError> {
        let (gib, bytes) = quota_columns(quota);
        let sql = format!("UPDATE {table} SET quota = ?, quota_bytes = ? WHERE id = ?");
        sqlx::query(self.inner.db.sql(&sql))
            .bind(gib)
            .bind(bytes)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn find_domain_id(
        &self,
        tx: &mut Tx,
        domain: &str,
    ) -> Result<Option<i64>, DirectoryError> {
        Ok(
            sqlx::query_scalar(self.inner.db.sql("SELECT id FROM domains WHERE domain = ?"))
                .bind(domain)
                .fetch_optional(&mut **tx)
                .await?,
        )
    }

    async fn domain_id(&self, tx: &mut Tx, domain: &str) -> Result<i64, DirectoryError> {
        self.find_domain_id(tx, domain)
            .await?
            .ok_or_else(|| not_found_domain(domain))
    }

    async fn mailbox_id(
        &self,
        tx: &mut Tx,
        address: &Address,
    ) -> Result<Option<i64>, DirectoryError> {
        Ok(sqlx::query_scalar(self.inner.db.sql(
            "SELECT m.id FROM mailboxes m INNER JOIN domains d ON m.domain_id = d.id WHERE m.local_part = ? AND d.domain = ?",
        ))
        .bind(address.local_part())
        .bind(address.domain())
        .fetch_optional(&mut **tx)
        .await?)
    }

    async fn alias_id(
        &self,
        tx: &mut Tx,
        local: &str,
        domain: &str,
    ) -> Result<Option<i64>, DirectoryError> {
        Ok(sqlx::query_scalar(self.inner.db.sql(
            "SELECT a.id FROM aliases a INNER JOIN domains d ON a.domain_id = d.id WHERE a.local_part = ? AND d.domain = ?",
        ))
        .bind(local)
        .bind(domain)
        .fetch_optional(&mut **tx)
        .await?)
    }

    async fn count(&self, tx: &mut Tx, sql: &str, id: i64) -> Result<i64, DirectoryError> {
        Ok(sqlx::query_scalar(self.inner.db.sql(sql))
            .bind(id)
            .fetch_one(&mut **tx)
            .await?)
    }
}

struct DomainLimits {
    id: i64,
    max_quota_gib: Option<i64>,
    max_aliases: Option<i64>,
    max_mailboxes: Option<i64>,
}

fn check_max_quota(
    address: &Address,
    quota: Option<Quota>,
    max_quota_gib: Option<i64>,
) -> Result<(), DirectoryError> {
    let (Some(quota), Some(max_gib)) = (quota, max_quota_gib) else {
        return Ok(());
    };
    if max_gib <= 0 {
        return Ok(());
    }
    let max_bytes = u64::try_from(max_gib)
        .unwrap_or(0)
        .saturating_mul(crate::model::GIB);
    match quota.bytes {
        Some(bytes) if bytes <= max_bytes => Ok(()),
        _ => Err(DirectoryError::LimitExceeded(format!(
            "quota {quota} for {address} exceeds the domain's max_quota of {max_gib}G; choose a smaller quota or raise it with `mailstead domain update {} --max-quota {}G`",
            address.domain(),
            max_gib
        ))),
    }
}

/// The outcome of an INSERT run in `tx`: the transaction back to go on with, or the error,
/// a unique violation becoming a conflict that says what to do instead. On failure the
/// transaction is rolled back now, not when the dropped transaction's connection is next
/// used: on SQLite its write lock would otherwise outlive the call ("database is locked").
async fn inserted(
    tx: Tx,
    outcome: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
    conflict: impl FnOnce() -> String,
) -> Result<Tx, DirectoryError> {
    match outcome {
        Ok(_) => Ok(tx),
        Err(err) => {
            let _ = tx.rollback().await;
            Err(unique_violation(err, conflict))
        }
    }
}

fn unique_violation(err: sqlx::Error, message: impl FnOnce() -> String) -> DirectoryError {
    match &err {
        sqlx::Error::Database(db_err) if db_err.is_unique_violation() => {
            DirectoryError::Conflict(message())
        }
        _ => DirectoryError::from(err),
    }
}

const DOMAIN_SELECT: &str = "SELECT d.id AS id, d.domain AS domain, d.description AS description, d.quota AS quota, d.quota_bytes AS quota_bytes, \
     d.max_quota AS max_quota, d.max_aliases AS max_aliases, d.max_mailboxes AS max_mailboxes, d.homedir AS homedir, {flag:d.active} AS active, \
     {epoch:d.created_at} AS created_at, \
     (SELECT COUNT(*) FROM mailboxes m WHERE m.domain_id = d.id) AS mailbox_count, \
     (SELECT COUNT(*) FROM aliases a WHERE a.domain_id = d.id) AS alias_count \
     FROM domains d";

fn domain_from_row(row: &AnyRow) -> Result<Domain, DirectoryError> {
    Ok(Domain {
        id: row.try_get("id")?,
        domain: row.try_get("domain")?,
        description: row.try_get("description")?,
        quota: Quota::from_columns(row.try_get("quota")?, row.try_get("quota_bytes")?),
        max_quota_gib: row.try_get("max_quota")?,
        max_aliases: row.try_get("max_aliases")?,
        max_mailboxes: row.try_get("max_mailboxes")?,
        homedir: row.try_get("homedir")?,
        active: flag(row, "active")?,
        mailbox_count: row.try_get("mailbox_count")?,
        alias_count: row.try_get("alias_count")?,
        created_at: row.try_get("created_at")?,
    })
}

/// What a login needs (`lookup::MAILBOX_COLUMNS`) plus what only management shows.
fn mailbox_select() -> String {
    format!(
        "SELECT {}, m.name AS name, m.alternative_email AS alternative_email, \
         {{epoch:m.created_at}} AS created_at FROM mailboxes m INNER JOIN domains d ON m.domain_id = d.id",
        lookup::MAILBOX_COLUMNS
    )
}

fn mailbox_from_row(row: &AnyRow) -> Result<Mailbox, DirectoryError> {
    let base = lookup::mailbox_from_row(row)?;
    Ok(Mailbox {
        id: base.id,
        effective_quota: base.effective_quota(),
        password_scheme: mailstead_password::scheme_name(&base.password)
            .unwrap_or("unknown")
            .to_owned(),
        address: base.address,
        name: row.try_get("name")?,
        alternative_email: row.try_get("alternative_email")?,
        own_quota: base.own_quota,
        location: base.location,
        is_super_admin: base.is_super_admin,
        send_only: base.send_only,
        active: base.active,
        domain_active: base.domain_active,
        created_at: row.try_get("created_at")?,
    })
}

const ALIAS_SELECT: &str = "SELECT a.id AS id, a.local_part AS local_part, d.domain AS domain, a.description AS description, \
     {flag:a.active} AS active, {epoch:a.deactivate_at} AS deactivate_at, {epoch:a.created_at} AS created_at \
     FROM aliases a INNER JOIN domains d ON a.domain_id = d.id";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_in_one_pass_and_refuse_unsafe_addresses() {
        let address = Address::parse("x%d@example.com").expect("an address");
        assert_eq!(
            fill_template("/m/%d/%n", &address).expect("filled"),
            "/m/example.com/x%d"
        );
        assert_eq!(
            fill_template("/m/%u/%h/%", &address).expect("filled"),
            "/m/x%d@example.com/%h/%"
        );
        let slash = Address::parse("alice/work@example.com").expect("an address");
        let err = fill_template("/m/%d/%n", &slash).expect_err("refused");
        assert!(err.to_string().contains("contains '/'"), "{err}");
    }
}
