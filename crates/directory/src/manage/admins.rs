//! MUM's admin grants: `domain_admins` (a mailbox manages a domain's mailboxes and aliases)
//! and `mailbox_admins` (a mailbox manages another mailbox).

use super::*;
use crate::access::Actor;

/// One grant, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AdminGrant {
    /// The mailbox holding the right.
    pub admin: String,
    /// The domain (`domain_admins`) or mailbox (`mailbox_admins`) it manages.
    pub manages: String,
    /// Unix seconds.
    pub created_at: Option<i64>,
}

/// The two kinds of grant: where each is stored and how the audit log names it.
#[derive(Clone, Copy)]
enum GrantKind {
    Domain,
    Mailbox,
}

impl GrantKind {
    fn table(self) -> &'static str {
        match self {
            GrantKind::Domain => "domain_admins",
            GrantKind::Mailbox => "mailbox_admins",
        }
    }

    /// The column of the mailbox holding the right, and of what it manages.
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            GrantKind::Domain => ("mailbox_id", "domain_id"),
            GrantKind::Mailbox => ("admin_mailbox_id", "mailbox_id"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            GrantKind::Domain => "domain admin",
            GrantKind::Mailbox => "mailbox admin",
        }
    }

    fn action(self, verb: &str) -> String {
        match self {
            GrantKind::Domain => format!("domain-admin.{verb}"),
            GrantKind::Mailbox => format!("mailbox-admin.{verb}"),
        }
    }
}

impl Directory {
    /// Stores the grant of `admin` (row `ids.0`) over `target` (row `ids.1`) in `tx` and
    /// audits it; a grant that exists is a conflict.
    async fn store_grant(
        &self,
        mut tx: Tx,
        actor: &Actor,
        kind: GrantKind,
        ids: (i64, i64),
        admin: &Address,
        target: &str,
    ) -> Result<(), DirectoryError> {
        let (admin_column, target_column) = kind.columns();
        let sql = format!(
            "INSERT INTO {} ({admin_column}, {target_column}, created_at, updated_at) VALUES (?, ?, {{ts}}, {{ts}})",
            kind.table()
        );
        let now = unix_now();
        let outcome = sqlx::query(self.inner.db.sql(&sql))
            .bind(ids.0)
            .bind(ids.1)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await;
        let tx = inserted(tx, outcome, || {
            format!("{admin} is a {} of {target} already", kind.name())
        })
        .await?;
        let action = kind.action("add");
        self.finish(tx, actor, &action, target, Some(format!("admin={admin}")))
            .await
    }

    /// Deletes the grant of `admin` (row `ids.0`) over `target` (row `ids.1`) in `tx` and
    /// audits it; no such grant is not found.
    async fn drop_grant(
        &self,
        mut tx: Tx,
        actor: &Actor,
        kind: GrantKind,
        ids: (i64, i64),
        admin: &Address,
        target: &str,
    ) -> Result<(), DirectoryError> {
        let (admin_column, target_column) = kind.columns();
        let sql = format!(
            "DELETE FROM {} WHERE {admin_column} = ? AND {target_column} = ?",
            kind.table()
        );
        let done = sqlx::query(self.inner.db.sql(&sql))
            .bind(ids.0)
            .bind(ids.1)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            let _ = tx.rollback().await;
            return Err(DirectoryError::NotFound(format!(
                "{admin} is no {} of {target}",
                kind.name()
            )));
        }
        let action = kind.action("remove");
        self.finish(tx, actor, &action, target, Some(format!("admin={admin}")))
            .await
    }

    /// Makes mailbox `admin` a domain admin of `domain`.
    ///
    /// # Errors
    /// An unknown mailbox or domain, a grant that exists, or a database failure.
    pub async fn add_domain_admin(
        &self,
        actor: impl Into<Actor>,
        admin: &str,
        domain: &str,
    ) -> Result<(), DirectoryError> {
        let domain = normalize_domain(domain)?;
        let admin = Address::parse(admin)?;
        let mut tx = self.begin().await?;
        let mailbox_id = self.require_mailbox(&mut tx, &admin).await?;
        let domain_id = self.domain_id(&mut tx, &domain).await?;
        let ids = (mailbox_id, domain_id);
        self.store_grant(tx, &actor.into(), GrantKind::Domain, ids, &admin, &domain)
            .await
    }

    /// Takes the domain admin right on `domain` from `admin`.
    ///
    /// # Errors
    /// No such grant, or a database failure.
    pub async fn remove_domain_admin(
        &self,
        actor: impl Into<Actor>,
        admin: &str,
        domain: &str,
    ) -> Result<(), DirectoryError> {
        let domain = normalize_domain(domain)?;
        let admin = Address::parse(admin)?;
        let mut tx = self.begin().await?;
        let mailbox_id = self.require_mailbox(&mut tx, &admin).await?;
        let domain_id = self.domain_id(&mut tx, &domain).await?;
        let ids = (mailbox_id, domain_id);
        self.drop_grant(tx, &actor.into(), GrantKind::Domain, ids, &admin, &domain)
            .await
    }

    /// Domain admins, of one domain or all, by domain then admin.
    ///
    /// # Errors
    /// A bad domain or a database failure.
    pub async fn list_domain_admins(
        &self,
        domain: Option<&str>,
    ) -> Result<Vec<AdminGrant>, DirectoryError> {
        let domain = domain.map(normalize_domain).transpose()?;
        let db = &self.inner.db;
        let sql = "SELECT m.local_part AS local_part, md.domain AS admin_domain, d.domain AS manages, {epoch:a.created_at} AS created_at \
             FROM domain_admins a INNER JOIN mailboxes m ON a.mailbox_id = m.id INNER JOIN domains md ON m.domain_id = md.id \
             INNER JOIN domains d ON a.domain_id = d.id";
        let rows = match &domain {
            Some(domain) => {
                sqlx::query(db.sql(&format!(
                    "{sql} WHERE d.domain = ? ORDER BY d.domain, md.domain, m.local_part"
                )))
                .bind(domain)
                .fetch_all(&db.pool)
                .await?
            }
            None => {
                sqlx::query(db.sql(&format!("{sql} ORDER BY d.domain, md.domain, m.local_part")))
                    .fetch_all(&db.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(AdminGrant {
                    admin: format!(
                        "{}@{}",
                        row.try_get::<String, _>("local_part")?,
                        row.try_get::<String, _>("admin_domain")?
                    ),
                    manages: row.try_get("manages")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Makes mailbox `admin` a mailbox admin of `mailbox`.
    ///
    /// # Errors
    /// An unknown mailbox, a mailbox named as its own admin, a grant that exists, or a
    /// database failure.
    pub async fn add_mailbox_admin(
        &self,
        actor: impl Into<Actor>,
        admin: &str,
        mailbox: &str,
    ) -> Result<(), DirectoryError> {
        let admin = Address::parse(admin)?;
        let mailbox = Address::parse(mailbox)?;
        if admin == mailbox {
            return Err(DirectoryError::Invalid(format!(
                "{admin} manages its own name, alternative address and password already"
            )));
        }
        let mut tx = self.begin().await?;
        let ids = (
            self.require_mailbox(&mut tx, &admin).await?,
            self.require_mailbox(&mut tx, &mailbox).await?,
        );
        let target = mailbox.to_string();
        self.store_grant(tx, &actor.into(), GrantKind::Mailbox, ids, &admin, &target)
            .await
    }

    /// Takes the mailbox admin right on `mailbox` from `admin`.
    ///
    /// # Errors
    /// No such grant, or a database failure.
    pub async fn remove_mailbox_admin(
        &self,
        actor: impl Into<Actor>,
        admin: &str,
        mailbox: &str,
    ) -> Result<(), DirectoryError> {
        let admin = Address::parse(admin)?;
        let mailbox = Address::parse(mailbox)?;
        let mut tx = self.begin().await?;
        let ids = (
            self.require_mailbox(&mut tx, &admin).await?,
            self.require_mailbox(&mut tx, &mailbox).await?,
        );
        let target = mailbox.to_string();
        self.drop_grant(tx, &actor.into(), GrantKind::Mailbox, ids, &admin, &target)
            .await
    }

    /// Mailbox admins, by managed mailbox then admin.
    ///
    /// # Errors
    /// A database failure.
    pub async fn list_mailbox_admins(&self) -> Result<Vec<AdminGrant>, DirectoryError> {
        let db = &self.inner.db;
        let rows = sqlx::query(db.sql(
            "SELECT am.local_part AS admin_local, ad.domain AS admin_domain, m.local_part AS local_part, d.domain AS domain, \
             {epoch:a.created_at} AS created_at \
             FROM mailbox_admins a INNER JOIN mailboxes am ON a.admin_mailbox_id = am.id INNER JOIN domains ad ON am.domain_id = ad.id \
             INNER JOIN mailboxes m ON a.mailbox_id = m.id INNER JOIN domains d ON m.domain_id = d.id \
             ORDER BY d.domain, m.local_part, ad.domain, am.local_part",
        ))
        .fetch_all(&db.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AdminGrant {
                    admin: format!(
                        "{}@{}",
                        row.try_get::<String, _>("admin_local")?,
                        row.try_get::<String, _>("admin_domain")?
                    ),
                    manages: format!(
                        "{}@{}",
                        row.try_get::<String, _>("local_part")?,
                        row.try_get::<String, _>("domain")?
                    ),
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}
