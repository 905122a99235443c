//! The read queries behind every answer, uncached. One function per question; each returns
//! plain rows that `resolve`, `cache` and `manage` turn into answers.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::DirectoryError;
use crate::address::Address;
use crate::model::{MailboxLocation, Quota, TlsPolicy, TlsPolicyKind};
use crate::sql::Db;

/// A hosted domain as resolution needs it.
#[derive(Clone, Debug)]
pub(crate) struct DomainRow {
    pub(crate) domain: String,
    pub(crate) active: bool,
}

/// A mailbox with what delivery and login need.
#[derive(Clone, Debug)]
pub(crate) struct MailboxRow {
    pub(crate) id: i64,
    pub(crate) address: Address,
    pub(crate) password: String,
    pub(crate) location: MailboxLocation,
    pub(crate) own_quota: Option<Quota>,
    pub(crate) domain_quota: Option<Quota>,
    pub(crate) send_only: bool,
    pub(crate) active: bool,
    pub(crate) domain_active: bool,
    pub(crate) is_super_admin: bool,
}

impl MailboxRow {
    /// Own quota, else the domain's, else unlimited: Dovecot's
    /// `COALESCE(mailboxes.quota, domains.quota, 0)`.
    pub(crate) fn effective_quota(&self) -> Quota {
        self.own_quota
            .or(self.domain_quota)
            .unwrap_or(Quota::UNLIMITED)
    }
}

/// An alias and its recipients.
#[derive(Clone, Debug)]
pub(crate) struct AliasRow {
    pub(crate) active: bool,
    pub(crate) deactivate_at: Option<i64>,
    pub(crate) recipients: Vec<String>,
}

pub(crate) fn flag(row: &AnyRow, column: &str) -> Result<bool, DirectoryError> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

pub(crate) async fn domain_by_name(
    db: &Db,
    domain: &str,
) -> Result<Option<DomainRow>, DirectoryError> {
    let row =
        sqlx::query(db.sql("SELECT domain, {flag:active} AS active FROM domains WHERE domain = ?"))
            .bind(domain)
            .fetch_optional(&db.pool)
            .await?;
    row.map(|row| {
        Ok(DomainRow {
            domain: row.try_get("domain")?,
            active: flag(&row, "active")?,
        })
    })
    .transpose()
}

/// The target of an alias domain: `(target domain, alias domain active)`.
pub(crate) async fn alias_domain_target(
    db: &Db,
    domain: &str,
) -> Result<Option<(String, bool)>, DirectoryError> {
    let row = sqlx::query(db.sql(
        "SELECT d.domain AS target, {flag:ad.active} AS active FROM alias_domains ad \
         INNER JOIN domains d ON ad.target_domain_id = d.id WHERE ad.domain = ?",
    ))
    .bind(domain)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|row| Ok((row.try_get("target")?, flag(&row, "active")?)))
        .transpose()
}

const MAILBOX_COLUMNS: &str = "m.id AS id, m.local_part AS local_part, d.domain AS domain, \
     m.password AS password, m.homedir AS homedir, m.maildir AS maildir, m.quota AS quota, \
     m.quota_bytes AS quota_bytes, d.quota AS domain_quota, d.quota_bytes AS domain_quota_bytes, \
     {flag:m.send_only} AS send_only, {flag:m.active} AS active, {flag:d.active} AS domain_active, \
     {flag:m.is_super_admin} AS is_super_admin";

pub(crate) fn mailbox_from_row(row: &AnyRow) -> Result<MailboxRow, DirectoryError> {
    let local: String = row.try_get("local_part")?;
    let domain: String = row.try_get("domain")?;
    let homedir: String = row.try_get("homedir")?;
    let maildir: String = row.try_get("maildir")?;
    Ok(MailboxRow {
        id: row.try_get("id")?,
        address: Address::from_normalized(&local, &domain),
        password: row.try_get("password")?,
        location: MailboxLocation::parse(&homedir, &maildir),
        own_quota: Quota::from_columns(row.try_get("quota")?, row.try_get("quota_bytes")?),
        domain_quota: Quota::from_columns(
            row.try_get("domain_quota")?,
            row.try_get("domain_quota_bytes")?,
        ),
        send_only: flag(row, "send_only")?,
        active: flag(row, "active")?,
        domain_active: flag(row, "domain_active")?,
        is_super_admin: flag(row, "is_super_admin")?,
    })
}

pub(crate) async fn mailbox_by_address(
    db: &Db,
    address: &Address,
) -> Result<Option<MailboxRow>, DirectoryError> {
    let sql = format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes m INNER JOIN domains d ON m.domain_id = d.id \
         WHERE m.local_part = ? AND d.domain = ?"
    );
    let row = sqlx::query(db.sql(&sql))
        .bind(address.local_part())
        .bind(address.domain())
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(mailbox_from_row).transpose()
}

/// An alias by its local part (empty for the catch-all) and domain.
pub(crate) async fn alias_by_parts(
    db: &Db,
    local_part: &str,
    domain: &str,
) -> Result<Option<AliasRow>, DirectoryError> {
    let row = sqlx::query(db.sql(
        "SELECT a.id AS id, {flag:a.active} AS active, {epoch:a.deactivate_at} AS deactivate_at \
         FROM aliases a INNER JOIN domains d ON a.domain_id = d.id \
         WHERE a.local_part = ? AND d.domain = ?",
    ))
    .bind(local_part)
    .bind(domain)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let id: i64 = row.try_get("id")?;
    let recipients = sqlx::query_scalar(
        db.sql("SELECT recipient_address FROM alias_recipients WHERE alias_id = ? ORDER BY id"),
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    Ok(Some(AliasRow {
        active: flag(&row, "active")?,
        deactivate_at: row.try_get("deactivate_at")?,
        recipients,
    }))
}

/// The aliases a mailbox may send as, with the semantics of MUM's sender-login map: the alias
/// and both domains active. Expiry (`deactivate_at`) is left to the caller, which knows the time.
/// Returns `(local_part, domain, deactivate_at)`; an empty local part is a catch-all.
pub(crate) async fn sender_aliases(
    db: &Db,
    mailbox_id: i64,
) -> Result<Vec<(String, String, Option<i64>)>, DirectoryError> {
    let rows = sqlx::query(db.sql(
        "SELECT a.local_part AS local_part, ad.domain AS domain, {epoch:a.deactivate_at} AS deactivate_at \
         FROM alias_senders s \
         INNER JOIN aliases a ON s.alias_id = a.id \
         INNER JOIN domains ad ON a.domain_id = ad.id \
         INNER JOIN mailboxes m ON s.mailbox_id = m.id \
         INNER JOIN domains md ON m.domain_id = md.id \
         WHERE s.mailbox_id = ? AND a.active = 1 AND ad.active = 1 AND md.active = 1",
    ))
    .bind(mailbox_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("local_part")?,
                row.try_get("domain")?,
                row.try_get("deactivate_at")?,
            ))
        })
        .collect()
}

/// How many mailboxes may send as the alias at `address`, with the conditions of MUM's
/// sender-login map (alias and both domains active).
pub(crate) async fn alias_sender_count(db: &Db, address: &Address) -> Result<i64, DirectoryError> {
    Ok(sqlx::query_scalar(db.sql(
        "SELECT COUNT(*) FROM aliases a \
         INNER JOIN domains ad ON a.domain_id = ad.id \
         INNER JOIN alias_senders s ON s.alias_id = a.id \
         INNER JOIN mailboxes m ON s.mailbox_id = m.id \
         INNER JOIN domains md ON m.domain_id = md.id \
         WHERE a.local_part = ? AND ad.domain = ? AND a.active = 1 AND ad.active = 1 AND md.active = 1",
    ))
    .bind(address.local_part())
    .bind(address.domain())
    .fetch_one(&db.pool)
    .await?)
}

pub(crate) fn tls_policy_from_row(row: &AnyRow) -> Result<TlsPolicy, DirectoryError> {
    let policy: String = row.try_get("policy")?;
    Ok(TlsPolicy {
        id: row.try_get("id")?,
        domain: row.try_get("domain")?,
        policy: TlsPolicyKind::parse(&policy).map_err(DirectoryError::Invalid)?,
        params: row.try_get("params")?,
        description: row.try_get("description")?,
        active: flag(row, "active")?,
    })
}

pub(crate) const TLS_POLICY_COLUMNS: &str =
    "id, domain, policy, params, description, {flag:active} AS active";

pub(crate) async fn tls_policy(db: &Db, domain: &str) -> Result<Option<TlsPolicy>, DirectoryError> {
    let sql = format!("SELECT {TLS_POLICY_COLUMNS} FROM tls_policies WHERE domain = ?");
    let row = sqlx::query(db.sql(&sql))
        .bind(domain)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(tls_policy_from_row).transpose()
}

pub(crate) async fn change_serial(db: &Db) -> Result<i64, DirectoryError> {
    Ok(
        sqlx::query_scalar("SELECT change_serial FROM directory_state WHERE id = 1")
            .fetch_one(&db.pool)
            .await?,
    )
}
