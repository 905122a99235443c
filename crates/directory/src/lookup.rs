//! The read queries behind every answer, uncached. One function per question; each returns
//! plain rows that `resolve`, `cache` and `manage` turn into answers.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::DirectoryError;
use crate::address::Address;
use crate::model::{
    DkimAlgorithm, DkimKey, DkimKeyInfo, MailboxLocation, NextHop, Quota, TlsPolicy, TlsPolicyKind,
    Transport, unsafe_location,
};
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
    /// Its groups for IMAP ACLs; read only where an account is made from the row.
    pub(crate) acl_groups: Vec<String>,
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

/// Everything one address can be in its domain, fetched in one round trip: the domain, the
/// aliases (with recipients) and the mailboxes among the candidate local parts, and the
/// catch-all alias. Resolution picks from it in its own order.
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    pub(crate) domain: Option<DomainRow>,
    /// By local part; the catch-all under "".
    pub(crate) aliases: HashMap<String, AliasRow>,
    pub(crate) mailboxes: HashMap<String, MailboxRow>,
}

/// The columns of the three branches line up; a branch fills only its own and NULLs the rest.
/// The first branch types its NULLs, and integers are cast, so that every backend agrees on
/// one type per column (MySQL would otherwise widen unsigned mixes to DECIMAL).
const CANDIDATES_SQL: &str = "\
SELECT 'domain' AS kind, '' AS local_part, d.id AS id, {flag:d.active} AS active, \
       {int:NULL} AS deactivate_at, {text:NULL} AS recipient, {text:NULL} AS password, \
       {text:NULL} AS homedir, {text:NULL} AS maildir, {int:NULL} AS quota, \
       {int:NULL} AS quota_bytes, {int:NULL} AS domain_quota, {int:NULL} AS domain_quota_bytes, \
       0 AS send_only, {flag:d.active} AS domain_active, 0 AS is_super_admin, d.domain AS domain \
  FROM domains d WHERE d.domain = ? \
UNION ALL \
SELECT 'alias', a.local_part, a.id, {flag:a.active}, {epoch:a.deactivate_at}, r.recipient_address, \
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, {flag:d.active}, 0, d.domain \
  FROM aliases a INNER JOIN domains d ON a.domain_id = d.id \
  LEFT JOIN alias_recipients r ON r.alias_id = a.id \
 WHERE d.domain = ? AND a.local_part IN (?, ?, '') \
UNION ALL \
SELECT 'mailbox', m.local_part, m.id, {flag:m.active}, NULL, NULL, m.password, m.homedir, m.maildir, \
       {int:m.quota}, {int:m.quota_bytes}, {int:d.quota}, {int:d.quota_bytes}, {flag:m.send_only}, \
       {flag:d.active}, {flag:m.is_super_admin}, d.domain \
  FROM mailboxes m INNER JOIN domains d ON m.domain_id = d.id \
 WHERE d.domain = ? AND m.local_part IN (?, ?)";

/// [`Candidates`] for `exact` and, when the address had an extension, `base` (local parts).
pub(crate) async fn candidates(
    db: &Db,
    domain: &str,
    exact: &str,
    base: Option<&str>,
) -> Result<Candidates, DirectoryError> {
    let base = base.unwrap_or(exact);
    let rows = sqlx::query(db.sql(CANDIDATES_SQL))
        .bind(domain)
        .bind(domain)
        .bind(exact)
        .bind(base)
        .bind(domain)
        .bind(exact)
        .bind(base)
        .fetch_all(&db.pool)
        .await?;
    let mut found = Candidates::default();
    for row in &rows {
        let kind: String = row.try_get("kind")?;
        match kind.as_str() {
            "domain" => {
                found.domain = Some(DomainRow {
                    domain: row.try_get("domain")?,
                    active: flag(row, "active")?,
                });
            }
            "alias" => {
                let local: String = row.try_get("local_part")?;
                let recipient: Option<String> = row.try_get("recipient")?;
                let alias = match found.aliases.entry(local) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => entry.insert(AliasRow {
                        active: flag(row, "active")?,
                        deactivate_at: row.try_get("deactivate_at")?,
                        recipients: Vec::new(),
                    }),
                };
                alias.recipients.extend(recipient);
            }
            _ => {
                let mailbox = mailbox_from_row(row)?;
                if safe_to_serve(&mailbox) {
                    found
                        .mailboxes
                        .insert(mailbox.address.local_part().to_owned(), mailbox);
                }
            }
        }
    }
    for alias in found.aliases.values_mut() {
        // One order whatever the join returned, so the trace and the fan-out are stable.
        alias.recipients.sort();
    }
    Ok(found)
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

pub(crate) const MAILBOX_COLUMNS: &str = "m.id AS id, m.local_part AS local_part, d.domain AS domain, \
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
        acl_groups: Vec::new(),
    })
}

/// The groups of a mailbox for IMAP ACLs (`group=NAME` in dovecot-acl files), by name.
pub(crate) async fn acl_groups(db: &Db, mailbox_id: i64) -> Result<Vec<String>, DirectoryError> {
    let rows =
        sqlx::query(db.sql(
            "SELECT group_name FROM mailbox_acl_groups WHERE mailbox_id = ? ORDER BY group_name",
        ))
        .bind(mailbox_id)
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get("group_name")?))
        .collect()
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
    let mailbox = row.as_ref().map(mailbox_from_row).transpose()?;
    let Some(mut mailbox) = mailbox.filter(safe_to_serve) else {
        return Ok(None);
    };
    // One more query, not a join: a login's row stays one row however many groups it has.
    mailbox.acl_groups = acl_groups(db, mailbox.id).await?;
    Ok(Some(mailbox))
}

/// Whether mail may be delivered to and read from this row's location. Mailstead refuses to
/// create a mailbox whose address or location is unsafe as a path, but another writer (MUM,
/// hand-written SQL) may have: such a row counts as absent for delivery and logins, so it can
/// never reach another mailbox's files. Management still lists it, to be removed.
fn safe_to_serve(mailbox: &MailboxRow) -> bool {
    let Some(problem) = unsafe_location(&mailbox.address, &mailbox.location) else {
        return true;
    };
    tracing::warn!(
        mailbox = ?mailbox.address.to_string(),
        problem = ?problem,
        "mailbox row ignored for delivery and logins: its location is unsafe"
    );
    false
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

pub(crate) const TRANSPORT_COLUMNS: &str =
    "id, domain, transport, description, {flag:active} AS active, {epoch:created_at} AS created_at";

/// A transport row. Another writer (MUM's web UI, hand-written SQL) may have stored a value
/// that is no next hop Mailstead can use (`relay:`, `virtual:`): that is an error naming the
/// domain, never a guess.
pub(crate) fn transport_from_row(row: &AnyRow) -> Result<Transport, DirectoryError> {
    let domain: String = row.try_get("domain")?;
    let text: String = row.try_get("transport")?;
    let next_hop = NextHop::parse(&text).map_err(|why| {
        DirectoryError::Invalid(format!(
            "the transport of {domain} cannot be used: {why}; fix it with `mailstead transport add {domain} NEXTHOP` after `mailstead transport remove {domain}`"
        ))
    })?;
    Ok(Transport {
        id: row.try_get("id")?,
        domain,
        next_hop,
        description: row.try_get("description")?,
        active: flag(row, "active")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) async fn transport(db: &Db, domain: &str) -> Result<Option<Transport>, DirectoryError> {
    let sql = format!("SELECT {TRANSPORT_COLUMNS} FROM transports WHERE domain = ?");
    let row = sqlx::query(db.sql(&sql))
        .bind(domain)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(transport_from_row).transpose()
}

/// The columns of a listed key: never the private key.
pub(crate) const DKIM_KEY_COLUMNS: &str = "k.id AS id, k.domain AS domain, k.selector AS selector, k.algorithm AS algorithm, k.public_key AS public_key, {flag:k.active} AS active, {epoch:k.created_at} AS created_at";

pub(crate) fn dkim_key_info_from_row(row: &AnyRow) -> Result<DkimKeyInfo, DirectoryError> {
    let algorithm: String = row.try_get("algorithm")?;
    Ok(DkimKeyInfo {
        id: row.try_get("id")?,
        domain: row.try_get("domain")?,
        selector: row.try_get("selector")?,
        algorithm: DkimAlgorithm::parse(&algorithm).map_err(DirectoryError::Invalid)?,
        public_key: row.try_get("public_key")?,
        active: flag(row, "active")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The key that signs for `domain`: its newest active key (the last added: `created_at`
/// may be NULL from another writer, and PostgreSQL sorts NULL first), while the domain is hosted (a key
/// left behind by another writer's removal of the domain signs nothing).
pub(crate) async fn dkim_signing_key(
    db: &Db,
    domain: &str,
) -> Result<Option<DkimKey>, DirectoryError> {
    let sql = format!(
        "SELECT {DKIM_KEY_COLUMNS}, k.private_key AS private_key FROM dkim_keys k \
         WHERE k.domain = ? AND k.active = 1 AND EXISTS (SELECT 1 FROM domains d WHERE d.domain = k.domain) \
         ORDER BY k.id DESC LIMIT 1"
    );
    let row = sqlx::query(db.sql(&sql))
        .bind(domain)
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let info = dkim_key_info_from_row(&row)?;
    Ok(Some(DkimKey::new(info, row.try_get("private_key")?)))
}

pub(crate) async fn change_serial(db: &Db) -> Result<i64, DirectoryError> {
    Ok(
        sqlx::query_scalar("SELECT change_serial FROM directory_state WHERE id = 1")
            .fetch_one(&db.pool)
            .await?,
    )
}
