//! Validated, audited writes: what the CLI (and later the HTTP API) changes.
//!
//! Every write runs in one transaction that also appends to `audit_log` (who, what, when) and
//! bumps `directory_state.change_serial`, so running servers drop their caches. Errors say what
//! to fix, with MUM's rules: a local part is unique across mailboxes and aliases of a domain,
//! `max_mailboxes` and `max_aliases` are limits (NULL = none), and here `max_quota` (GiB) is a
//! limit on a mailbox's quota too (MUM stores it but enforces it nowhere).

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

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

/// A new domain. `quota` is the default for its mailboxes.
#[derive(Clone, Debug, Default)]
pub struct NewDomain {
    pub domain: String,
    pub description: Option<String>,
    pub quota: Option<Quota>,
    pub max_quota_gib: Option<i64>,
    pub max_aliases: Option<i64>,
    pub max_mailboxes: Option<i64>,
    pub active: bool,
    /// Kept when importing; otherwise MUM's rule: the homedir template cut after `%d`.
    pub homedir: Option<String>,
}

/// Changes to a domain; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct DomainUpdate {
    pub description: Option<Option<String>>,
    pub quota: Option<Option<Quota>>,
    pub max_quota_gib: Option<Option<i64>>,
    pub max_aliases: Option<Option<i64>>,
    pub max_mailboxes: Option<Option<i64>>,
    pub active: Option<bool>,
}

/// A new mailbox. `password_hash` is stored as given (import keeps hashes as they are; the CLI
/// hashes new passwords as ARGON2ID first).
#[derive(Clone, Debug, Default)]
pub struct NewMailbox {
    pub address: String,
    pub password_hash: String,
    pub name: Option<String>,
    pub alternative_email: Option<String>,
    /// `None` inherits the domain's quota.
    pub quota: Option<Quota>,
    pub send_only: bool,
    pub active: bool,
    pub is_super_admin: bool,
    /// Kept when importing; otherwise filled from the templates.
    pub homedir: Option<String>,
    pub maildir: Option<String>,
}

/// Changes to a mailbox; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct MailboxUpdate {
    pub name: Option<Option<String>>,
    pub alternative_email: Option<Option<String>>,
    pub quota: Option<Option<Quota>>,
    pub send_only: Option<bool>,
    pub active: Option<bool>,
    pub is_super_admin: Option<bool>,
}

/// A new alias (`@domain` for a catch-all).
#[derive(Clone, Debug, Default)]
pub struct NewAlias {
    pub address: String,
    pub description: Option<String>,
    pub recipients: Vec<String>,
    /// Mailboxes that may send as the alias.
    pub senders: Vec<String>,
    pub active: bool,
    /// Unix seconds after which it stops receiving.
    pub deactivate_at: Option<i64>,
}

/// Changes to an alias. As in MUM, activating an alias clears its `deactivate_at`.
#[derive(Clone, Debug, Default)]
pub struct AliasUpdate {
    pub description: Option<Option<String>>,
    pub active: Option<bool>,
    pub deactivate_at: Option<Option<i64>>,
}

/// A new or replaced TLS policy for a remote domain.
#[derive(Clone, Debug)]
pub struct NewTlsPolicy {
    pub domain: String,
    pub policy: TlsPolicyKind,
    pub params: Option<String>,
    pub description: Option<String>,
    pub active: bool,
}

/// Changes to a TLS policy.
#[derive(Clone, Debug, Default)]
pub struct TlsPolicyUpdate {
    pub policy: Option<TlsPolicyKind>,
    pub params: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub active: Option<bool>,
}

/// MUM's own tables, read with MUM's columns only: the source of an import.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MumSnapshot {
    pub domains: Vec<NewDomainRecord>,
    pub mailboxes: Vec<NewMailboxRecord>,
    pub aliases: Vec<NewAliasRecord>,
    pub tls_policies: Vec<TlsPolicyRecord>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NewDomainRecord {
    pub domain: String,
    pub homedir: String,
    pub description: Option<String>,
    pub quota_gib: Option<i64>,
    pub max_quota_gib: Option<i64>,
    pub max_aliases: Option<i64>,
    pub max_mailboxes: Option<i64>,
    pub active: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct NewMailboxRecord {
    pub address: String,
    #[serde(skip)]
    pub password: String,
    pub name: Option<String>,
    pub alternative_email: Option<String>,
    pub quota_gib: Option<i64>,
    pub homedir: String,
    pub maildir: String,
    pub is_super_admin: bool,
    pub send_only: bool,
    pub active: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct NewAliasRecord {
    pub address: String,
    pub description: Option<String>,
    pub active: bool,
    pub deactivate_at: Option<i64>,
    pub recipients: Vec<String>,
    pub senders: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TlsPolicyRecord {
    pub domain: String,
    pub policy: String,
    pub params: Option<String>,
    pub description: Option<String>,
    pub active: bool,
}

/// Changes to a transport; `None` leaves a field alone, `Some(None)` clears the description.
#[derive(Clone, Debug, Default)]
pub struct TransportUpdate {
    /// A next hop in Postfix's syntax, checked like a new one.
    pub next_hop: Option<String>,
    pub description: Option<Option<String>>,
    pub active: Option<bool>,
}

fn no_transport(domain: &str) -> DirectoryError {
    DirectoryError::NotFound(format!(
        "no transport for {domain}; see `mailstead transport list`"
    ))
}

/// A DKIM selector is one or more DNS labels (RFC 6376 3.1), stored in lower case since DNS
/// does not tell case apart.
fn normalize_selector(input: &str) -> Result<String, DirectoryError> {
    let selector = input.trim().to_ascii_lowercase();
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if selector.len() > 200 || !selector.split('.').all(label_ok) {
        return Err(DirectoryError::Invalid(format!(
            "bad DKIM selector {input:?}: use letters, digits and hyphens, like s202612"
        )));
    }
    Ok(selector)
}

fn check_private_key_pem(algorithm: DkimAlgorithm, pem: &str) -> Result<(), DirectoryError> {
    let label = algorithm.pem_label();
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let text = pem.trim();
    if text.starts_with(&begin) && text.ends_with(&end) {
        return Ok(());
    }
    Err(DirectoryError::Invalid(format!(
        "the private key of a {} DKIM key must be a PEM \"{label}\" block",
        algorithm.as_str()
    )))
}

fn check_public_key(base64: &str) -> Result<(), DirectoryError> {
    let ok = !base64.is_empty()
        && base64
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
    if ok {
        return Ok(());
    }
    Err(DirectoryError::Invalid(
        "the public key of a DKIM key must be base64 on one line (the DNS record's p= value)"
            .to_owned(),
    ))
}

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

    /// Audits, bumps the change counter and commits; then clears this process's cache.
    async fn finish(
        &self,
        mut tx: Tx,
        actor: &str,
        action: &str,
        subject: &str,
        details: Option<String>,
    ) -> Result<(), DirectoryError> {
        let db = &self.inner.db;
        sqlx::query(db.sql(
            "INSERT INTO audit_log (created_at, actor, action, subject, details) VALUES ({ts}, ?, ?, ?, ?)",
        ))
        .bind(unix_now())
        .bind(actor)
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

    // ---- domains ----

    /// Adds a hosted domain.
    ///
    /// # Errors
    /// A bad name, an existing domain or alias domain, or a database failure.
    pub async fn add_domain(&self, actor: &str, new: NewDomain) -> Result<Domain, DirectoryError> {
        let domain = normalize_domain(&new.domain)?;
        check_domain_path_safe(&domain)?;
        let max_quota_gib = non_negative(new.max_quota_gib, "max quota")?;
        let max_aliases = non_negative(new.max_aliases, "max aliases")?;
        let max_mailboxes = non_negative(new.max_mailboxes, "max mailboxes")?;
        let db = &self.inner.db;
        let mut tx = self.begin().await?;
        if self.find_domain_id(&mut tx, &domain).await?.is_some() {
            return Err(DirectoryError::Conflict(format!(
                "domain {domain} already exists"
            )));
        }
        let alias_domain: Option<i64> =
            sqlx::query_scalar(db.sql("SELECT id FROM alias_domains WHERE domain = ?"))
                .bind(&domain)
                .fetch_optional(&mut *tx)
                .await?;
        if alias_domain.is_some() {
            return Err(DirectoryError::Conflict(format!(
                "{domain} is an alias domain; remove it with `mailstead alias-domain remove {domain}` first"
            )));
        }
        // MUM: the domain's homedir is the mailbox template cut after %d.
        let homedir = new.homedir.clone().unwrap_or_else(|| {
            let template = &self.inner.options.homedir_template;
            let cut = template.find("%d").map_or(template.len(), |at| at + 2);
            template[..cut].replace("%d", &domain)
        });
        let (quota, quota_bytes) = quota_columns(new.quota);
        let now = unix_now();
        sqlx::query(db.sql(
            "INSERT INTO domains (domain, description, quota, quota_bytes, max_quota, max_aliases, max_mailboxes, homedir, active, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {ts}, {ts})",
        ))
        .bind(&domain)
        .bind(&new.description)
        .bind(quota)
        .bind(quota_bytes)
        .bind(max_quota_gib)
        .bind(max_aliases)
        .bind(max_mailboxes)
        .bind(&homedir)
        .bind(i64::from(new.active))
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let details = format!(
            "quota={} max_mailboxes={} max_aliases={} active={}",
            new.quota.map_or("inherit".to_owned(), |q| q.to_string()),
            show_number(max_mailboxes),
            show_number(max_aliases),
            new.active
        );
        self.finish(tx, actor, "domain.add", &domain, Some(details))
            .await?;
        self.get_domain(&domain).await
    }

    /// Changes a domain.
    ///
    /// # Errors
    /// An unknown domain, a bad value, or a database failure.
    pub async fn update_domain(
        &self,
        actor: &str,
        domain: &str,
        update: DomainUpdate,
    ) -> Result<Domain, DirectoryError> {
        let domain = normalize_domain(domain)?;
        let db = &self.inner.db;
        let mut tx = self.begin().await?;
        let id = self.domain_id(&mut tx, &domain).await?;
        let mut changes = Vec::new();
        if let Some(description) = &update.description {
            sqlx::query(db.sql("UPDATE domains SET description = ? WHERE id = ?"))
                .bind(description)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            changes.push(format!("description={}", show_text(description.as_deref())));
        }
        if let Some(quota) = update.quota {
            self.set_quota(&mut tx, "domains", id, quota).await?;
            changes.push(format!(
                "quota={}",
                quota.map_or("none".to_owned(), |q| q.to_string())
            ));
        }
        for (column, value, what) in [
            ("max_quota", update.max_quota_gib, "max quota"),
            ("max_aliases", update.max_aliases, "max aliases"),
            ("max_mailboxes", update.max_mailboxes, "max mailboxes"),
        ]
        .into_iter()
        .filter_map(|(c, v, w)| v.map(|v| (c, v, w)))
        {
            let value = non_negative(value, what)?;
            sqlx::query(db.sql(&format!("UPDATE domains SET {column} = ? WHERE id = ?")))
                .bind(value)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            changes.push(format!("{column}={}", show_number(value)));
        }
        if let Some(active) = update.active {
            sqlx::query(db.sql("UPDATE domains SET active = ? WHERE id = ?"))
                .bind(i64::from(active))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            changes.push(format!("active={active}"));
        }
        self.touch(&mut tx, "domains", id).await?;
        self.finish(tx, actor, "domain.update", &domain, Some(changes.join(" ")))
            .await?;
        self.get_domain(&domain).await
    }

    /// Removes a domain. With mailboxes or aliases in it, `force` is required: they go too.
    ///
    /// # Errors
    /// An unknown domain, a non-empty domain without `force`, or a database failure.
    pub async fn remove_domain(
        &self,
        actor: &str,
        domain: &str,
        force: bool,
    ) -> Result<(), DirectoryError> {
        let domain = normalize_domain(domain)?;
        let mut tx = self.begin().await?;
        let id = self.domain_id(&mut tx, &domain).await?;
        let mailboxes = self
            .count(
                &mut tx,
                "SELECT COUNT(*) FROM mailboxes WHERE domain_id = ?",
                id,
            )
            .await?;
        let aliases = self
            .count(
                &mut tx,
                "SELECT COUNT(*) FROM aliases WHERE domain_id = ?",
                id,
            )
            .await?;
        if (mailboxes > 0 || aliases > 0) && !force {
            return Err(DirectoryError::Conflict(format!(
                "domain {domain} still has {mailboxes} mailboxes and {aliases} aliases; remove them or pass --force to remove them all"
            )));
        }
        sqlx::query(self.inner.db.sql("DELETE FROM domains WHERE id = ?"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // Keys name their domain rather than reference its row; a domain added again later
        // must not sign with keys whose DNS records are long gone.
        sqlx::query(self.inner.db.sql("DELETE FROM dkim_keys WHERE domain = ?"))
            .bind(&domain)
            .execute(&mut *tx)
            .await?;
        self.finish(
            tx,
            actor,
            "domain.remove",
            &domain,
            Some(format!("mailboxes={mailboxes} aliases={aliases}")),
        )
        .await
    }

    /// All domains, by name.
    ///
    /// # Errors
    /// A database failure.
    pub async fn list_domains(&self) -> Result<Vec<Domain>, DirectoryError> {
        let rows = sqlx::query(
            self.inner
                .db
                .sql(&format!("{DOMAIN_SELECT} ORDER BY d.domain")),
        )
        .fetch_all(&self.inner.db.pool)
        .await?;
        rows.iter().map(domain_from_row).collect()
    }

    /// One domain.
    ///
    /// # Errors
    /// An unknown domain or a database failure.
    pub async fn get_domain(&self, domain: &str) -> Result<Domain, DirectoryError> {
        let domain = normalize_domain(domain)?;
        let row = sqlx::query(
            self.inner
                .db
                .sql(&format!("{DOMAIN_SELECT} WHERE d.domain = ?")),
        )
        .bind(&domain)
        .fetch_optional(&self.inner.db.pool)
        .await?;
        row.as_ref()
            .map(domain_from_row)
            .transpose()?
            .ok_or_else(|| not_found_domain(&domain))
    }

    // ---- mailboxes ----

    /// Adds a mailbox, with MUM's checks: the domain exists, the address is no alias or
    /// mailbox yet, `max_mailboxes` and `max_quota` are kept.
    ///
    /// # Errors
    /// A sentence saying which rule was broken, or a database failure.
    pub async fn add_mailbox(
        &self,
        actor: &str,
        new: NewMailbox,
    ) -> Result<Mailbox, DirectoryError> {
        let address = Address::parse(&new.address)?;
        address.check_path_safe()?;
        if new.password_hash.is_empty() {
            return Err(DirectoryError::Invalid(format!(
                "mailbox {address} needs a password"
            )));
        }
        let db = &self.inner.db;
        let mut tx = self.begin().await?;
        let domain = self.load_domain_limits(&mut tx, address.domain()).await?;
        if self.mailbox_id(&mut tx, &address).await?.is_some() {
            return Err(DirectoryError::Conflict(format!(
                "{address} is already a mailbox"
            )));
        }
        if self
            .alias_id(&mut tx, address.local_part(), address.domain())
            .await?
            .is_some()
        {
            return Err(DirectoryError::Conflict(format!(
                "{address} is already an alias; an address is either a mailbox or an alias"
            )));
        }
        if let Some(max) = domain.max_mailboxes {
            let used = self
                .count(
                    &mut tx,
                    "SELECT COUNT(*) FROM mailboxes WHERE domain_id = ?",
                    domain.id,
                )
                .await?;
            if used >= max {
                return Err(DirectoryError::LimitExceeded(format!(
                    "domain {} allows {max} mailboxes (max_mailboxes) and has {used}; raise it with `mailstead domain update {} --max-mailboxes N`",
                    address.domain(),
                    address.domain()
                )));
            }
        }
        check_max_quota(&address, new.quota, domain.max_quota_gib)?;
        let homedir = match &new.homedir {
            Some(homedir) => homedir.clone(),
            None => fill_template(&self.inner.options.homedir_template, &address)?,
        };
        let maildir = match &new.maildir {
            Some(maildir) => maildir.clone(),
            None => fill_template(&self.inner.options.maildir_template, &address)?,
        };
        if let Some(why) = MailboxLocation::parse(&homedir, &maildir).escape_problem() {
            return Err(DirectoryError::Invalid(format!(
                "mailbox {address} cannot be created: {why}; give a home and Maildir without '..'"
            )));
        }
        let (quota, quota_bytes) = quota_columns(new.quota);
        let now = unix_now();
        let inserted = sqlx::query(db.sql(
            "INSERT INTO mailboxes (local_part, password, name, domain_id, alternative_email, quota, quota_bytes, homedir, maildir, is_super_admin, send_only, active, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {ts}, {ts})",
        ))
        .bind(address.local_part())
        .bind(&new.password_hash)
        .bind(&new.name)
        .bind(domain.id)
        .bind(&new.alternative_email)
        .bind(quota)
        .bind(quota_bytes)
        .bind(&homedir)
        .bind(&maildir)
        .bind(i64::from(new.is_super_admin))
        .bind(i64::from(new.send_only))
        .bind(i64::from(new.active))
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            // Rolled back now, not when the dropped transaction's connection is next used:
            // on SQLite its write lock would otherwise outlive the call ("database is locked").
            let _ = tx.rollback().await;
            return Err(unique_violation(err, || {
                format!("homedir {homedir} or maildir {maildir} is already used by another mailbox")
            }));
        }
        let details = format!(
            "quota={} send_only={} active={} maildir={maildir}",
            new.quota.map_or("inherit".to_owned(), |q| q.to_string()),
            new.send_only,
            new.active
        );
        self.finish(
            tx,
            actor,
            "mailbox.add",
            &address.to_string(),
            Some(details),
        )
        .await?;
        self.get_mailbox(&address.to_string()).await
    }

    async fn load_domain_limits(
        &self,
        tx: &mut Tx,
        domain: &str,
    ) -> Result<DomainLimits, DirectoryError> {
        let row =
            sqlx::query(self.inner.db.sql(
                "SELECT id, max_quota, max_aliases, max_mailboxes FROM domains WHERE domain = ?",
            ))
            .bind(domain)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(row) = row else {
            return Err(not_found_domain(domain));
        };
        Ok(DomainLimits {
            id: row.try_get("id")?,
            max_quota_gib: row.try_get("max_quota")?,
            max_aliases: row.try_get("max_aliases")?,
            max_mailboxes: row.try_get("max_mailboxes")?,
        })
    }

    /// Changes a mailbox.
    ///
    /// # Errors
    /// An unknown mailbox, a broken limit, or a database failure.
    pub async fn update_mailbox(
        &self,
        actor: &str,
        address: &str,
        update: MailboxUpdate,
    ) -> Result<Mailbox, DirectoryError> {
        let address = Address::parse(address)?;
        let db = &self.inner.db;
        let mut tx = self.begin().await?;
        let id = self.require_mailbox(&mut tx, &address).await?;
        let mut changes = Vec::new();
        for (column, value) in [
            ("name", &update.name),
            ("alternative_email", &update.alternative_email),
        ] {
            if let Some(value) = value {
                sqlx::query(db.sql(&format!("UPDATE mailboxes SET {column} = ? WHERE id = ?")))
                    .bind(value)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                changes.push(format!("{column}={}", show_text(value.as_deref())));
            }
        }
        if let Some(quota) = update.quota {
            let limits = self.load_domain_limits(&mut tx, address.domain()).await?;
            check_max_quota(&address, quota, limits.max_quota_gib)?;
            self.set_quota(&mut tx, "mailboxes", id, quota).await?;
            changes.push(format!(
                "quota={}",
                quota.map_or("inherit".to_owned(), |q| q.to_string())
            ));
        }
        for (column, value) in [
            ("send_only", update.send_only),
            ("active", update.active),
            ("is_super_admin", update.is_super_admin),
        ] {
            if let Some(value) = value {
                sqlx::query(db.sql(&format!("UPDATE mailboxes SET {column} = ? WHERE id = ?")))
                    .bind(i64::from(value))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                changes.push(format!("{column}={value}"));
            }
        }
        self.touch(&mut tx, "mailboxes", id).await?;
        self.finish(
            tx,
            actor,
            "mailbox.update",
            &address.to_string(),
            Some(changes.join(" ")),
        )
        .await?;
        self.get_mailbox(&address.to_string()).await
    }

    /// Stores a new password hash for a mailbox.
    ///
    /// # Errors
    /// An unknown mailbox or a database failure.
    pub async fn set_password(
        &self,
        actor: &str,
        address: &str,
        password_hash: &str,
    ) -> Result<(), DirectoryError> {
        let address = Address::parse(address)?;
        if password_hash.is_empty() {
            return Err(DirectoryError::Invalid(
                "the password hash is empty".to_owned(),
            ));
        }
        let mut tx = self.begin().await?;
        let id = self.require_mailbox(&mut tx, &address).await?;
        sqlx::query(
            self.inner
                .db
                .sql("UPDATE mailboxes SET password = ?, updated_at = {ts} WHERE id = ?"),
        )
        .bind(password_hash)
        .bind(unix_now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let scheme = mailstead_password::scheme_name(password_hash).unwrap_or("unknown");
        self.finish(
            tx,
            actor,
            "mailbox.passwd",
            &address.to_string(),
            Some(format!("scheme={scheme}")),
        )
        .await
    }

    /// Removes a mailbox (its alias memberships and sender rights go with it; mail on disk stays).
    ///
    /// # Errors
    /// An unknown mailbox or a database failure.
    pub async fn remove_mailbox(&self, actor: &str, address: &str) -> Result<(), DirectoryError> {
        let address = Address::parse(address)?;
        let mut tx = self.begin().await?;
        let id = self.require_mailbox(&mut tx, &address).await?;
        sqlx::query(self.inner.db.sql("DELETE FROM mailboxes WHERE id = ?"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.finish(tx, actor, "mailbox.remove", &address.to_string(), None)
            .await
    }

    async fn require_mailbox(&self, tx: &mut Tx, address: &Address) -> Result<i64, DirectoryError> {
        self.mailbox_id(tx, address).await?.ok_or_else(|| {
            DirectoryError::NotFound(format!(
                "no mailbox {address}; see `mailstead mailbox list {}`",
                address.domain()
            ))
        })
    }

    /// Mailboxes, optionally of one domain, by address.
    ///
    /// # Errors
    /// A database failure.
    pub async fn list_mailboxes(
        &self,
        domain: Option<&str>,
    ) -> Result<Vec<Mailbox>, DirectoryError> {
        let db = &self.inner.db;
        let rows = match domain {
            Some(domain) => {
                let domain = normalize_domain(domain)?;
                sqlx::query(db.sql(&format!(
                    "{} WHERE d.domain = ? ORDER BY d.domain, m.local_part",
                    mailbox_select()
                )))
                .bind(domain)
                .fetch_all(&db.pool)
                .await?
            }
            None => {
                sqlx::query(db.sql(&format!(
                    "{} ORDER BY d.domain, m.local_part",
                    mailbox_select()
                )))
                .fetch_all(&db.pool)
                .await?
            }
        };
        rows.iter().map(mailbox_from_row).collect()
    }

    /// One mailbox.
    ///
    /// # Errors
    /// An unknown mailbox or a database failure.
    pub async fn get_mailbox(&self, address: &str) -> Result<Mailbox, DirectoryError> {
        let address = Address::parse(address)?;
        let db = &self.inner.db;
        let row = sqlx::query(db.sql(&format!(
            "{} WHERE m.local_part = ? AND d.domain = ?",
            mailbox_select()
        )))
        .bind(address.local_part())
        .bind(address.domain())
        .fetch_optional(&db.pool)
        .await?;
        row.as_ref()
            .map(mailbox_from_row)
            .transpose()?
            .ok_or_else(|| DirectoryError::NotFound(format!("no mailbox {address}")))
    }

    /// The stored password hash of a mailbox, exactly as in the database; for imports that
    /// must tell an unchanged password from a changed one. Never print it.
    ///
    /// # Errors
    /// A malformed address or a database failure.
    pub async fn password_hash(&self, address: &str) -> Result<Option<String>, DirectoryError> {
        let address = Address::parse(address)?;
        Ok(lookup::mailbox_by_address(&self.inner.db, &address)
            .await?
            .map(|mailbox| mailbox.password))
    }

    // ---- aliases ----

    /// Adds an alias with its recipients and senders.
    ///
    /// # Errors
    /// A sentence saying which rule was broken, or a database failure.
    pub async fn add_alias(&self, actor: &str, new: NewAlias) -> Result<Alias, DirectoryError> {
        let address = AliasAddress::parse(&new.address)?;
        address.check_path_safe()?;
        let mut tx = self.begin().await?;
        let domain = self.load_domain_limits(&mut tx, address.domain()).await?;
        if self
            .alias_id(&mut tx, address.local_part(), address.domain())
            .await?
            .is_some()
        {
            return Err(DirectoryError::Conflict(format!(
                "{address} is already an alias"
            )));
        }
        if !address.is_catch_all() {
            let as_mailbox = Address::from_normalized(address.local_part(), address.domain());
            if self.mailbox_id(&mut tx, &as_mailbox).await?.is_some() {
                return Err(DirectoryError::Conflict(format!(
                    "{address} is already a mailbox; an address is either a mailbox or an alias"
                )));
            }
        }
        if let Some(max) = domain.max_aliases {
            let used = self
                .count(
                    &mut tx,
                    "SELECT COUNT(*) FROM aliases WHERE domain_id = ?",
                    domain.id,
                )
                .await?;
            if used >= max {
                return Err(DirectoryError::LimitExceeded(format!(
                    "domain {} allows {max} aliases (max_aliases) and has {used}; raise it with `mailstead domain update {} --max-aliases N`",
                    address.domain(),
                    address.domain()
                )));
            }
        }
        let now = unix_now();
        sqlx::query(self.inner.db.sql(
            "INSERT INTO aliases (local_part, description, domain_id, active, deactivate_at, created_at, updated_at) VALUES (?, ?, ?, ?, {ts}, {ts}, {ts})",
        ))
        .bind(address.local_part())
        .bind(&new.description)
        .bind(domain.id)
        .bind(i64::from(new.active))
        .bind(new.deactivate_at)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let alias_id = self
            .alias_id(&mut tx, address.local_part(), address.domain())
            .await?
            .ok_or_else(|| {
                DirectoryError::Invalid(format!("alias {address} vanished while being created"))
            })?;
        let recipients = self
            .insert_recipients(&mut tx, alias_id, &new.recipients)
            .await?;
        let senders = self.insert_senders(&mut tx, alias_id, &new.senders).await?;
        let details = format!(
            "recipients={} senders={} active={} deactivate_at={}",
            recipients.join(","),
            senders.join(","),
            new.active,
            show_number(new.deactivate_at)
        );
        self.finish(tx, actor, "alias.add", &address.to_string(), Some(details))
            .await?;
        self.get_alias(&address.to_string()).await
    }

    async fn insert_recipients(
        &self,
        tx: &mut Tx,
        alias_id: i64,
        recipients: &[String],
    ) -> Result<Vec<String>, DirectoryError> {
        let mut added = Vec::new();
        for recipient in recipients {
            let address = Address::parse(recipient)?;
            let mailbox_id = self.mailbox_id(tx, &address).await?;
            let text = address.to_string();
            let exists: Option<i64> = sqlx::query_scalar(self.inner.db.sql(
                "SELECT id FROM alias_recipients WHERE alias_id = ? AND recipient_address = ?",
            ))
            .bind(alias_id)
            .bind(&text)
            .fetch_optional(&mut **tx)
            .await?;
            if exists.is_some() {
                continue;
            }
            sqlx::query(self.inner.db.sql("INSERT INTO alias_recipients (alias_id, recipient_address, mailbox_id) VALUES (?, ?, ?)"))
                .bind(alias_id)
                .bind(&text)
                .bind(mailbox_id)
                .execute(&mut **tx)
                .await?;
            added.push(text);
        }
        Ok(added)
    }

    async fn insert_senders(
        &self,
        tx: &mut Tx,
        alias_id: i64,
        senders: &[String],
    ) -> Result<Vec<String>, DirectoryError> {
        let mut added = Vec::new();
        for sender in senders {
            let address = Address::parse(sender)?;
            let Some(mailbox_id) = self.mailbox_id(tx, &address).await? else {
                return Err(DirectoryError::NotFound(format!(
                    "sender {address} is not a mailbox; only mailboxes can send as an alias"
                )));
            };
            let exists: Option<i64> = sqlx::query_scalar(
                self.inner
                    .db
                    .sql("SELECT id FROM alias_senders WHERE alias_id = ? AND mailbox_id = ?"),
            )
            .bind(alias_id)
            .bind(mailbox_id)
            .fetch_optional(&mut **tx)
            .await?;
            if exists.is_some() {
                continue;
            }
            sqlx::query(
                self.inner
                    .db
                    .sql("INSERT INTO alias_senders (mailbox_id, alias_id) VALUES (?, ?)"),
            )
            .bind(mailbox_id)
            .bind(alias_id)
            .execute(&mut **tx)
            .await?;
            added.push(address.to_string());
        }
        Ok(added)
    }

    async fn require_alias(
        &self,
        tx: &mut Tx,
        address: &AliasAddress,
    ) -> Result<i64, DirectoryError> {
        self.alias_id(tx, address.local_part(), address.domain())
            .await?
            .ok_or_else(|| {
                DirectoryError::NotFound(format!(
                    "no alias {address}; see `mailstead alias list {}`",
                    address.domain()
                ))
            })
    }

    /// Changes an alias. Activating it clears `deactivate_at`, as MUM does.
    ///
    /// # Errors
    /// An unknown alias or a database failure.
    pub async fn update_alias(
        &self,
        actor: &str,
        address: &str,
        update: AliasUpdate,
    ) -> Result<Alias, DirectoryError> {
        let address = AliasAddress::parse(address)?;
        let db = &self.inner.db;
        let mut tx = self.begin().await?;
        let id = self.require_alias(&mut tx, &address).await?;
        let mut changes = Vec::new();
        if let Some(description) = &update.description {
            sqlx::query(db.sql("UPDATE aliases SET description = ? WHERE id = ?"))
                .bind(description)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            changes.push(format!("description={}", show_text(description.as_deref())));
        }
        let mut deactivate_at = update.deactivate_at;
        if let Some(active) = update.active {
            sqlx::query(db.sql("UPDATE aliases SET active = ? WHERE id = ?"))
                .bind(i64::from(active))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            changes.push(format!("active={active}"));
            if active && deactivate_at.is_none() {
                deactivate_at = Some(None);
            }
        }
        if let Some(at) = deactivate_at {
            sqlx::query(db.sql("UPDATE aliases SET deactivate_at = {ts} WHERE id = ?"))
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            changes.push(format!("deactivate_at={}", show_number(at)));
        }
        self.touch(&mut tx, "aliases", id).await?;
        self.finish(
            tx,
            actor,
            "alias.update",
            &address.to_string(),
            Some(changes.join(" ")),
        )
        .await?;
        self.get_alias(&address.to_string()).await
    }

    /// Adds recipients to an alias (already present ones are left alone).
    ///
    /// # Errors
    /// An unknown alias, a malformed recipient, or a database failure.
    pub async fn add_alias_recipients(
        &self,
        actor: &str,
        address: &str,
        recipients: &[String],
    ) -> Result<Alias, DirectoryError> {
        let address = AliasAddress::parse(address)?;
        let mut tx = self.begin().await?;
        let id = self.require_alias(&mut tx, &address).await?;
        let added = self.insert_recipients(&mut tx, id, recipients).await?;
        self.finish(
            tx,
            actor,
            "alias.recipient.add",
            &address.to_string(),
            Some(added.join(",")),
        )
        .await?;
        self.get_alias(&address.to_string()).await
    }

    /// Removes recipients from an alias.
    ///
    /// # Errors
    /// An unknown alias, a recipient the alias does not have, or a database failure.
    pub async fn remove_alias_recipients(
        &self,
        actor: &str,
        address: &str,
        recipients: &[String],
    ) -> Result<Alias, DirectoryError> {
        let address = AliasAddress::parse(address)?;
        let mut tx = self.begin().await?;
        let id = self.require_alias(&mut tx, &address).await?;
        let mut removed = Vec::new();
        for recipient in recipients {
            let recipient = Address::parse(recipient)?.to_string();
            let done =
                sqlx::query(self.inner.db.sql(
                    "DELETE FROM alias_recipients WHERE alias_id = ? AND recipient_address = ?",
                ))
                .bind(id)
                .bind(&recipient)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(DirectoryError::NotFound(format!(
                    "{recipient} is not a recipient of {address}"
                )));
            }
            removed.push(recipient);
        }
        self.finish(
            tx,
            actor,
            "alias.recipient.remove",
            &address.to_string(),
            Some(removed.join(",")),
        )
        .await?;
        self.get_alias(&address.to_string()).await
    }

    /// Lets `mailbox` send as `alias` (MUM's `alias_senders`).
    ///
    /// # Errors
    /// An unknown alias or mailbox, or a database failure.
    pub async fn add_sender(
        &self,
        actor: &str,
        alias: &str,
        mailbox: &str,
    ) -> Result<Alias, DirectoryError> {
        let address = AliasAddress::parse(alias)?;
        let mut tx = self.begin().await?;
        let id = self.require_alias(&mut tx, &address).await?;
        let added = self
            .insert_senders(&mut tx, id, &[mailbox.to_owned()])
            .await?;
        self.finish(
            tx,
            actor,
            "sender.add",
            &address.to_string(),
            Some(added.join(",")),
        )
        .await?;
        self.get_alias(&address.to_string()).await
    }

    /// Takes away `mailbox`'s right to send as `alias`.
    ///
    /// # Errors
    /// An unknown alias, a mailbox without that right, or a database failure.
    pub async fn remove_sender(
        &self,
        actor: &str,
        alias: &str,
        mailbox: &str,
    ) -> Result<Alias, DirectoryError> {
        let address = AliasAddress::parse(alias)?;
        let sender = Address::parse(mailbox)?;
        let mut tx = self.begin().await?;
        let id = self.require_alias(&mut tx, &address).await?;
        let mailbox_id = self.require_mailbox(&mut tx, &sender).await?;
        let done = sqlx::query(
            self.inner
                .db
                .sql("DELETE FROM alias_senders WHERE alias_id = ? AND mailbox_id = ?"),
        )
        .bind(id)
        .bind(mailbox_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DirectoryError::NotFound(format!(
                "{sender} may not send as {address} anyway"
            )));
        }
        self.finish(
            tx,
            actor,
            "sender.remove",
            &address.to_string(),
            Some(sender.to_string()),
        )
        .await?;
        self.get_alias(&address.to_string()).await
    }

    /// Removes an alias.
    ///
    /// # Errors
    /// An unknown alias or a database failure.
    pub async fn remove_alias(&self, actor: &str, address: &str) -> Result<(), DirectoryError> {
        let address = AliasAddress::parse(address)?;
        let mut tx = self.begin().await?;
        let id = self.require_alias(&mut tx, &address).await?;
        sqlx::query(self.inner.db.sql("DELETE FROM aliases WHERE id = ?"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.finish(tx, actor, "alias.remove", &address.to_string(), None)
            .await
    }

    /// Aliases, optionally of one domain.
    ///
    /// # Errors
    /// A database failure.
    pub async fn list_aliases(&self, domain: Option<&str>) -> Result<Vec<Alias>, DirectoryError> {
        let db = &self.inner.db;
        let rows = match domain {
            Some(domain) => {
                let domain = normalize_domain(domain)?;
                sqlx::query(db.sql(&format!(
                    "{ALIAS_SELECT} WHERE d.domain = ? ORDER BY d.domain, a.local_part"
                )))
                .bind(domain)
                .fetch_all(&db.pool)
                .await?
            }
            None => {
                sqlx::query(db.sql(&format!("{ALIAS_SELECT} ORDER BY d.domain, a.local_part")))
                    .fetch_all(&db.pool)
                    .await?
            }
        };
        let mut aliases = Vec::with_capacity(rows.len());
        for row in &rows {
            aliases.push(self.alias_from_row(row).await?);
        }
        Ok(aliases)
    }

    /// One alias.
    ///
    /// # Errors
    /// An unknown alias or a database failure.
    pub async fn get_alias(&self, address: &str) -> Result<Alias, DirectoryError> {
        let address = AliasAddress::parse(address)?;
        let db = &self.inner.db;
        let row = sqlx::query(db.sql(&format!(
            "{ALIAS_SELECT} WHERE a.local_part = ? AND d.domain = ?"
        )))
        .bind(address.local_part())
        .bind(address.domain())
        .fetch_optional(&db.pool)
        .await?;
        match row {
            Some(row) => self.alias_from_row(&row).await,
            None => Err(DirectoryError::NotFound(format!("no alias {address}"))),
        }
    }

    async fn alias_from_row(&self, row: &AnyRow) -> Result<Alias, DirectoryError> {
        let db = &self.inner.db;
        let id: i64 = row.try_get("id")?;
        let local: String = row.try_get("local_part")?;
        let domain: String = row.try_get("domain")?;
        let recipients = sqlx::query_scalar(db.sql("SELECT recipient_address FROM alias_recipients WHERE alias_id = ? ORDER BY recipient_address"))
            .bind(id)
            .fetch_all(&db.pool)
            .await?;
        let senders = self.sender_addresses(id).await?;
        let address = AliasAddress::parse(&format!("{local}@{domain}"))?;
        Ok(Alias {
            id,
            address,
            description: row.try_get("description")?,
            active: flag(row, "active")?,
            deactivate_at: row.try_get("deactivate_at")?,
            recipients,
            senders,
            created_at: row.try_get("created_at")?,
        })
    }

    /// The mailboxes that may send as alias `alias_id`, as addresses, sorted.
    async fn sender_addresses(&self, alias_id: i64) -> Result<Vec<String>, DirectoryError> {
        let db = &self.inner.db;
        let rows = sqlx::query(db.sql(
            "SELECT m.local_part AS local_part, d.domain AS domain FROM alias_senders s INNER JOIN mailboxes m ON s.mailbox_id = m.id \
             INNER JOIN domains d ON m.domain_id = d.id WHERE s.alias_id = ?",
        ))
        .bind(alias_id)
        .fetch_all(&db.pool)
        .await?;
        let mut senders = rows
            .iter()
            .map(|r| {
                Ok(format!(
                    "{}@{}",
                    r.try_get::<String, _>("local_part")?,
                    r.try_get::<String, _>("domain")?
                ))
            })
            .collect::<Result<Vec<String>, DirectoryError>>()?;
        senders.sort();
        Ok(senders)
    }

    // ---- alias domains ----

    /// Makes `domain` an alias domain of the hosted `target`.
    ///
    /// # Errors
    /// An unknown target, a name that is already a domain, or a database failure.
    pub async fn add_alias_domain(
        &self,
        actor: &str,
        domain: &str,
        target: &str,
        description: Option<String>,
    ) -> Result<AliasDomain, DirectoryError> {
        let domain = normalize_domain(domain)?;
        let target = normalize_domain(target)?;
        check_domain_path_safe(&domain)?;
        let mut tx = self.begin().await?;
        if self.find_domain_id(&mut tx, &domain).await?.is_some() {
            return Err(DirectoryError::Conflict(format!(
                "{domain} is a hosted domain; an alias domain cannot also be one"
            )));
        }
        let target_id = self.domain_id(&mut tx, &target).await?;
        let now = unix_now();
        let inserted = sqlx::query(self.inner.db.sql(
            "INSERT INTO alias_domains (domain, target_domain_id, description, active, created_at, updated_at) VALUES (?, ?, ?, 1, {ts}, {ts})",
        ))
        .bind(&domain)
        .bind(target_id)
        .bind(&description)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            // Rolled back now, not when the dropped transaction's connection is next used:
            // on SQLite its write lock would otherwise outlive the call ("database is locked").
            let _ = tx.rollback().await;
            return Err(unique_violation(err, || {
                format!("{domain} is already an alias domain")
            }));
        }
        self.finish(
            tx,
            actor,
            "alias-domain.add",
            &domain,
            Some(format!("target={target}")),
        )
        .await?;
        self.list_alias_domains()
            .await?
            .into_iter()
            .find(|a| a.domain == domain)
            .ok_or_else(|| DirectoryError::NotFound(domain))
    }

    /// Removes an alias domain.
    ///
    /// # Errors
    /// An unknown alias domain or a database failure.
    pub async fn remove_alias_domain(
        &self,
        actor: &str,
        domain: &str,
    ) -> Result<(), DirectoryError> {
        let domain = normalize_domain(domain)?;
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            self.inner
                .db
                .sql("DELETE FROM alias_domains WHERE domain = ?"),
        )
        .bind(&domain)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DirectoryError::NotFound(format!(
                "no alias domain {domain}"
            )));
        }
        self.finish(tx, actor, "alias-domain.remove", &domain, None)
            .await
    }

    /// All alias domains.
    ///
    /// # Errors
    /// A database failure.
    pub async fn list_alias_domains(&self) -> Result<Vec<AliasDomain>, DirectoryError> {
        let rows = sqlx::query(self.inner.db.sql(
            "SELECT ad.id AS id, ad.domain AS domain, d.domain AS target, ad.description AS description, {flag:ad.active} AS active \
             FROM alias_domains ad INNER JOIN domains d ON ad.target_domain_id = d.id ORDER BY ad.domain",
        ))
        .fetch_all(&self.inner.db.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AliasDomain {
                    id: row.try_get("id")?,
                    domain: row.try_get("domain")?,
                    target: row.try_get("target")?,
                    description: row.try_get("description")?,
                    active: flag(row, "active")?,
                })
            })
            .collect()
    }

    // ---- TLS policies ----

    /// Adds a TLS policy for mail to a remote domain.
    ///
    /// # Errors
    /// A bad domain, an existing policy, or a database failure.
    pub async fn add_tls_policy(
        &self,
        actor: &str,
        new: NewTlsPolicy,
    ) -> Result<TlsPolicy, DirectoryError> {
        let domain = normalize_domain(&new.domain)?;
        let mut tx = self.begin().await?;
        let now = unix_now();
        let inserted = sqlx::query(self.inner.db.sql(
            "INSERT INTO tls_policies (domain, policy, params, description, active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, {ts}, {ts})",
        ))
        .bind(&domain)
        .bind(new.policy.as_str())
        .bind(&new.params)
        .bind(&new.description)
        .bind(i64::from(new.active))
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            // Rolled back now, not when the dropped transaction's connection is next used:
            // on SQLite its write lock would otherwise outlive the call ("database is locked").
            let _ = tx.rollback().await;
            return Err(unique_violation(err, || {
                format!(
                    "{domain} already has a TLS policy; change it with `mailstead tls-policy update {domain}`"
                )
            }));
        }
        self.finish(
            tx,
            actor,
            "tls-policy.add",
            &domain,
            Some(format!(
                "policy={} params={}",
                new.policy.as_str(),
                show_text(new.params.as_deref())
            )),
        )
        .await?;
        self.get_tls_policy(&domain).await
    }

    /// Changes a TLS policy.
    ///
    /// # Errors
    /// An unknown policy or a database failure.
    pub async fn update_tls_policy(
        &self,
        actor: &str,
        domain: &str,
        update: TlsPolicyUpdate,
    ) -> Result<TlsPolicy, DirectoryError> {
        let domain = normalize_domain(domain)?;
        let existing = self.get_tls_policy(&domain).await?;
        let db = &self.inner.db;
        let mut tx = self.begin().await?;
        let policy = update.policy.unwrap_or(existing.policy);
        let params = update.params.clone().unwrap_or(existing.params);
        let description = update.description.clone().unwrap_or(existing.description);
        let active = update.active.unwrap_or(existing.active);
        sqlx::query(db.sql("UPDATE tls_policies SET policy = ?, params = ?, description = ?, active = ?, updated_at = {ts} WHERE id = ?"))
            .bind(policy.as_str())
            .bind(&params)
            .bind(&description)
            .bind(i64::from(active))
            .bind(unix_now())
            .bind(existing.id)
            .execute(&mut *tx)
            .await?;
        self.finish(
            tx,
            actor,
            "tls-policy.update",
            &domain,
            Some(format!(
                "policy={} params={} active={active}",
                policy.as_str(),
                show_text(params.as_deref())
            )),
        )
        .await?;
        self.get_tls_policy(&domain).await
    }

    /// Removes a TLS policy.
    ///
    /// # Errors
    /// An unknown policy or a database failure.
    pub async fn remove_tls_policy(&self, actor: &str, domain: &str) -> Result<(), DirectoryError> {
        let domain = normalize_domain(domain)?;
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            self.inner
                .db
                .sql("DELETE FROM tls_policies WHERE domain = ?"),
        )
        .bind(&domain)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DirectoryError::NotFound(format!(
                "no TLS policy for {domain}"
            )));
        }
        self.finish(tx, actor, "tls-policy.remove", &domain, None)
            .await
    }

    /// All TLS policies, active or not.
    ///
    /// # Errors
    /// A database failure.
    pub async fn list_tls_policies(&self) -> Result<Vec<TlsPolicy>, DirectoryError> {
        let sql = format!(
            "SELECT {} FROM tls_policies ORDER BY domain",
            lookup::TLS_POLICY_COLUMNS
        );
        let rows = sqlx::query(self.inner.db.sql(&sql))
            .fetch_all(&self.inner.db.pool)
            .await?;
        rows.iter().map(lookup::tls_policy_from_row).collect()
    }

    /// One TLS policy, active or not.
    ///
    /// # Errors
    /// An unknown policy or a database failure.
    pub async fn get_tls_policy(&self, domain: &str) -> Result<TlsPolicy, DirectoryError> {
        let domain = normalize_domain(domain)?;
        lookup::tls_policy(&self.inner.db, &domain)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("no TLS policy for {domain}")))
    }

    // ---- transports ----

    /// Sends mail for `domain` to `next_hop` instead of the domain's MX. The domain need not
    /// be hosted (a transport is usually for one that is not).
    ///
    /// # Errors
    /// A bad domain, a next hop that is not in Postfix's syntax, an existing transport, or a
    /// database failure.
    pub async fn add_transport(
        &self,
        actor: &str,
        domain: &str,
        next_hop: &str,
        description: Option<&str>,
    ) -> Result<Transport, DirectoryError> {
        let domain = normalize_domain(domain)?;
        let next_hop = NextHop::parse(next_hop)
            .map_err(DirectoryError::Invalid)?
            .to_string();
        let mut tx = self.begin().await?;
        let now = unix_now();
        let inserted = sqlx::query(self.inner.db.sql(
            "INSERT INTO transports (domain, transport, description, active, created_at, updated_at) VALUES (?, ?, ?, 1, {ts}, {ts})",
        ))
        .bind(&domain)
        .bind(&next_hop)
        .bind(description)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            // Rolled back now, not when the dropped transaction's connection is next used:
            // on SQLite its write lock would otherwise outlive the call ("database is locked").
            let _ = tx.rollback().await;
            return Err(unique_violation(err, || {
                format!(
                    "{domain} already has a transport; change it with `mailstead transport update {domain} NEXTHOP`"
                )
            }));
        }
        self.finish(
            tx,
            actor,
            "transport.add",
            &domain,
            Some(format!("transport={next_hop}")),
        )
        .await?;
        self.get_transport(&domain).await
    }

    /// Changes a transport; `None` leaves a field alone, `Some(None)` clears the description.
    ///
    /// # Errors
    /// An unknown transport, a bad next hop, or a database failure.
    pub async fn update_transport(
        &self,
        actor: &str,
        domain: &str,
        update: TransportUpdate,
    ) -> Result<Transport, DirectoryError> {
        let domain = normalize_domain(domain)?;
        let next_hop = match &update.next_hop {
            Some(text) => Some(NextHop::parse(text).map_err(DirectoryError::Invalid)?),
            None => None,
        };
        let existing_id = self.transport_id(&domain).await?;
        let existing = match self.get_transport(&domain).await {
            Ok(existing) => Some(existing),
            // Another writer stored a value that does not parse: a new next hop replaces it.
            Err(DirectoryError::Invalid(_)) => None,
            Err(err) => return Err(err),
        };
        let next_hop = match (next_hop, &existing) {
            (Some(hop), _) => hop.to_string(),
            (None, Some(existing)) => existing.next_hop.to_string(),
            // A stored value that no longer parses can only be replaced, not kept.
            (None, None) => {
                return Err(DirectoryError::Invalid(format!(
                    "the transport of {domain} cannot be read; give a new next hop"
                )));
            }
        };
        let description = match update.description {
            Some(description) => description,
            None => existing.as_ref().and_then(|t| t.description.clone()),
        };
        let active = update
            .active
            .or(existing.as_ref().map(|t| t.active))
            .unwrap_or(true);
        let mut tx = self.begin().await?;
        sqlx::query(self.inner.db.sql(
            "UPDATE transports SET transport = ?, description = ?, active = ?, updated_at = {ts} WHERE id = ?",
        ))
        .bind(&next_hop)
        .bind(&description)
        .bind(i64::from(active))
        .bind(unix_now())
        .bind(existing_id)
        .execute(&mut *tx)
        .await?;
        self.finish(
            tx,
            actor,
            "transport.update",
            &domain,
            Some(format!("transport={next_hop} active={active}")),
        )
        .await?;
        self.get_transport(&domain).await
    }

    /// Removes a transport: mail for the domain goes to its MX again.
    ///
    /// # Errors
    /// An unknown transport or a database failure.
    pub async fn remove_transport(&self, actor: &str, domain: &str) -> Result<(), DirectoryError> {
        let domain = normalize_domain(domain)?;
        let mut tx = self.begin().await?;
        let done = sqlx::query(self.inner.db.sql("DELETE FROM transports WHERE domain = ?"))
            .bind(&domain)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(no_transport(&domain));
        }
        self.finish(tx, actor, "transport.remove", &domain, None)
            .await
    }

    /// All transports, active or not, by domain.
    ///
    /// # Errors
    /// A stored value that is no usable next hop, or a database failure.
    pub async fn list_transports(&self) -> Result<Vec<Transport>, DirectoryError> {
        let sql = format!(
            "SELECT {} FROM transports ORDER BY domain",
            lookup::TRANSPORT_COLUMNS
        );
        let rows = sqlx::query(self.inner.db.sql(&sql))
            .fetch_all(&self.inner.db.pool)
            .await?;
        rows.iter().map(lookup::transport_from_row).collect()
    }

    /// One transport, active or not.
    ///
    /// # Errors
    /// An unknown transport, a stored value that is no usable next hop, or a database failure.
    pub async fn get_transport(&self, domain: &str) -> Result<Transport, DirectoryError> {
        let domain = normalize_domain(domain)?;
        lookup::transport(&self.inner.db, &domain)
            .await?
            .ok_or_else(|| no_transport(&domain))
    }

    async fn transport_id(&self, domain: &str) -> Result<i64, DirectoryError> {
        sqlx::query_scalar(
            self.inner
                .db
                .sql("SELECT id FROM transports WHERE domain = ?"),
        )
        .bind(domain)
        .fetch_optional(&self.inner.db.pool)
        .await?
        .ok_or_else(|| no_transport(domain))
    }

    // ---- DKIM keys ----

    /// Stores a DKIM key of a hosted domain. The key is made by the caller (the admin crate
    /// generates them); here it is only checked for its form: a PEM of the kind the algorithm
    /// needs and a base64 public key.
    ///
    /// # Errors
    /// A domain that is not hosted, a bad selector, a key of the wrong form, a selector the
    /// domain already has, or a database failure.
    pub async fn add_dkim_key(
        &self,
        actor: &str,
        domain: &str,
        selector: &str,
        algorithm: DkimAlgorithm,
        private_key_pem: &str,
        public_key_b64: &str,
    ) -> Result<DkimKeyInfo, DirectoryError> {
        let domain = normalize_domain(domain)?;
        let selector = normalize_selector(selector)?;
        check_private_key_pem(algorithm, private_key_pem)?;
        check_public_key(public_key_b64)?;
        let mut tx = self.begin().await?;
        // Only a hosted domain's mail is signed here: a key for any other would never be used.
        self.domain_id(&mut tx, &domain).await?;
        let now = unix_now();
        let inserted = sqlx::query(self.inner.db.sql(
            "INSERT INTO dkim_keys (domain, selector, algorithm, private_key, public_key, active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, {ts}, {ts})",
        ))
        .bind(&domain)
        .bind(&selector)
        .bind(algorithm.as_str())
        .bind(private_key_pem)
        .bind(public_key_b64)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            // Rolled back now, not when the dropped transaction's connection is next used:
            // on SQLite its write lock would otherwise outlive the call ("database is locked").
            let _ = tx.rollback().await;
            return Err(unique_violation(err, || {
                format!(
                    "{domain} already has a DKIM key with selector {selector}; choose another selector with --selector, or remove it first with `mailstead dkim remove {domain} --selector {selector}`"
                )
            }));
        }
        // The private key never goes into the audit log.
        self.finish(
            tx,
            actor,
            "dkim.add",
            &domain,
            Some(format!(
                "selector={selector} algorithm={}",
                algorithm.as_str()
            )),
        )
        .await?;
        self.list_dkim_keys()
            .await?
            .into_iter()
            .find(|key| key.domain == domain && key.selector == selector)
            .ok_or_else(|| {
                DirectoryError::NotFound(format!(
                    "the DKIM key {selector} of {domain} was removed while it was added"
                ))
            })
    }

    /// Removes one DKIM key of `domain` (`selector`), or all of them (`None`).
    ///
    /// # Errors
    /// Nothing to remove, a bad domain or selector, or a database failure.
    pub async fn remove_dkim_key(
        &self,
        actor: &str,
        domain: &str,
        selector: Option<&str>,
    ) -> Result<u64, DirectoryError> {
        let domain = normalize_domain(domain)?;
        let selector = selector.map(normalize_selector).transpose()?;
        let mut tx = self.begin().await?;
        let done = match &selector {
            Some(selector) => {
                sqlx::query(
                    self.inner
                        .db
                        .sql("DELETE FROM dkim_keys WHERE domain = ? AND selector = ?"),
                )
                .bind(&domain)
                .bind(selector)
                .execute(&mut *tx)
                .await?
            }
            None => {
                sqlx::query(self.inner.db.sql("DELETE FROM dkim_keys WHERE domain = ?"))
                    .bind(&domain)
                    .execute(&mut *tx)
                    .await?
            }
        };
        let removed = done.rows_affected();
        if removed == 0 {
            return Err(DirectoryError::NotFound(match &selector {
                Some(selector) => format!(
                    "{domain} has no DKIM key with selector {selector}; see `mailstead dkim list`"
                ),
                None => format!("{domain} has no DKIM keys; see `mailstead dkim list`"),
            }));
        }
        let details = match &selector {
            Some(selector) => format!("selector={selector}"),
            None => format!("selector=all keys={removed}"),
        };
        self.finish(tx, actor, "dkim.remove", &domain, Some(details))
            .await?;
        Ok(removed)
    }

    /// Every DKIM key, by domain, newest first within a domain; no private keys.
    ///
    /// # Errors
    /// A database failure.
    pub async fn list_dkim_keys(&self) -> Result<Vec<DkimKeyInfo>, DirectoryError> {
        let sql = format!(
            "SELECT {} FROM dkim_keys k ORDER BY k.domain, k.id DESC",
            lookup::DKIM_KEY_COLUMNS
        );
        let rows = sqlx::query(self.inner.db.sql(&sql))
            .fetch_all(&self.inner.db.pool)
            .await?;
        rows.iter().map(lookup::dkim_key_info_from_row).collect()
    }

    // ---- audit and import ----

    /// The newest `limit` audit entries, newest first.
    ///
    /// # Errors
    /// A database failure.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, DirectoryError> {
        let rows = sqlx::query(self.inner.db.sql(
            "SELECT id, {epoch:created_at} AS at, actor, action, subject, details FROM audit_log ORDER BY id DESC LIMIT ?",
        ))
        .bind(limit)
        .fetch_all(&self.inner.db.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    subject: row.try_get("subject")?,
                    details: row.try_get("details")?,
                })
            })
            .collect()
    }

    /// Reads MUM's tables with MUM's columns only, so it works on a database MUM made.
    ///
    /// # Errors
    /// A database failure (for instance, tables that are not MUM's).
    pub async fn read_mum_tables(&self) -> Result<MumSnapshot, DirectoryError> {
        let db = &self.inner.db;
        let pool = &db.pool;
        let mut snapshot = MumSnapshot::default();
        for row in sqlx::query(db.sql(
            "SELECT domain, homedir, description, quota, max_quota, max_aliases, max_mailboxes, {flag:active} AS active FROM domains ORDER BY id",
        ))
        .fetch_all(pool)
        .await?
        {
            snapshot.domains.push(NewDomainRecord {
                domain: row.try_get("domain")?,
                homedir: row.try_get("homedir")?,
                description: row.try_get("description")?,
                quota_gib: row.try_get("quota")?,
                max_quota_gib: row.try_get("max_quota")?,
                max_aliases: row.try_get("max_aliases")?,
                max_mailboxes: row.try_get("max_mailboxes")?,
                active: flag(&row, "active")?,
            });
        }
        for row in sqlx::query(db.sql(
            "SELECT m.local_part AS local_part, d.domain AS domain, m.password AS password, m.name AS name, m.alternative_email AS alternative_email, \
             m.quota AS quota, m.homedir AS homedir, m.maildir AS maildir, {flag:m.is_super_admin} AS is_super_admin, \
             {flag:m.send_only} AS send_only, {flag:m.active} AS active \
             FROM mailboxes m INNER JOIN domains d ON m.domain_id = d.id ORDER BY m.id",
        ))
        .fetch_all(pool)
        .await?
        {
            snapshot.mailboxes.push(NewMailboxRecord {
                address: format!("{}@{}", row.try_get::<String, _>("local_part")?, row.try_get::<String, _>("domain")?),
                password: row.try_get("password")?,
                name: row.try_get("name")?,
                alternative_email: row.try_get("alternative_email")?,
                quota_gib: row.try_get("quota")?,
                homedir: row.try_get("homedir")?,
                maildir: row.try_get("maildir")?,
                is_super_admin: flag(&row, "is_super_admin")?,
                send_only: flag(&row, "send_only")?,
                active: flag(&row, "active")?,
            });
        }
        for row in sqlx::query(db.sql(
            "SELECT a.id AS id, a.local_part AS local_part, d.domain AS domain, a.description AS description, {flag:a.active} AS active, \
             {epoch:a.deactivate_at} AS deactivate_at FROM aliases a INNER JOIN domains d ON a.domain_id = d.id ORDER BY a.id",
        ))
        .fetch_all(pool)
        .await?
        {
            let id: i64 = row.try_get("id")?;
            let recipients = sqlx::query_scalar(db.sql("SELECT recipient_address FROM alias_recipients WHERE alias_id = ? ORDER BY id"))
                .bind(id)
                .fetch_all(pool)
                .await?;
            let senders = self.sender_addresses(id).await?;
            snapshot.aliases.push(NewAliasRecord {
                address: format!("{}@{}", row.try_get::<String, _>("local_part")?, row.try_get::<String, _>("domain")?),
                description: row.try_get("description")?,
                active: flag(&row, "active")?,
                deactivate_at: row.try_get("deactivate_at")?,
                recipients,
                senders,
            });
        }
        for row in sqlx::query(db.sql("SELECT domain, policy, params, description, {flag:active} AS active FROM tls_policies ORDER BY id"))
            .fetch_all(pool)
            .await?
        {
            snapshot.tls_policies.push(TlsPolicyRecord {
                domain: row.try_get("domain")?,
                policy: row.try_get("policy")?,
                params: row.try_get("params")?,
                description: row.try_get("description")?,
                active: flag(&row, "active")?,
            });
        }
        Ok(snapshot)
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
