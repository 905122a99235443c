//! MUM's own tables, read with MUM's columns only: the source of an import.

use super::*;

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

impl Directory {
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
