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

impl Directory {
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
        let actor: &Actor = &actor.into();
        let domain = normalize_domain(domain)?;
        let admin = Address::parse(admin)?;
        let mut tx = self.begin().await?;
        let mailbox_id = self.require_mailbox(&mut tx, &admin).await?;
        let domain_id = self.domain_id(&mut tx, &domain).await?;
        let now = unix_now();
        let outcome = sqlx::query(self.inner.db.sql(
            "INSERT INTO domain_admins (mailbox_id, domain_id, created_at, updated_at) VALUES (?, ?, {ts}, {ts})",
        ))
        .bind(mailbox_id)
        .bind(domain_id)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        let tx = inserted(tx, outcome, || {
            format!("{admin} is a domain admin of {domain} already")
        })
        .await?;
        self.finish(
            tx,
            actor,
            "domain-admin.add",
            &domain,
            Some(format!("admin={admin}")),
        )
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
        let actor: &Actor = &actor.into();
        let domain = normalize_domain(domain)?;
        let admin = Address::parse(admin)?;
        let mut tx = self.begin().await?;
        let mailbox_id = self.require_mailbox(&mut tx, &admin).await?;
        let domain_id = self.domain_id(&mut tx, &domain).await?;
        let done = sqlx::query(
            self.inner
                .db
                .sql("DELETE FROM domain_admins WHERE mailbox_id = ? AND domain_id = ?"),
        )
        .bind(mailbox_id)
        .bind(domain_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let _ = tx.rollback().await;
            return Err(DirectoryError::NotFound(format!(
                "{admin} is no domain admin of {domain}"
            )));
        }
        self.finish(
            tx,
            actor,
            "domain-admin.remove",
            &domain,
            Some(format!("admin={admin}")),
        )
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
        let actor: &Actor = &actor.into();
        let admin = Address::parse(admin)?;
        let mailbox = Address::parse(mailbox)?;
        if admin == mailbox {
            return Err(DirectoryError::Invalid(format!(
                "{admin} manages its own name, alternative address and password already"
            )));
        }
        let mut tx = self.begin().await?;
        let admin_id = self.require_mailbox(&mut tx, &admin).await?;
        let mailbox_id = self.require_mailbox(&mut tx, &mailbox).await?;
        let now = unix_now();
        let outcome = sqlx::query(self.inner.db.sql(
            "INSERT INTO mailbox_admins (admin_mailbox_id, mailbox_id, created_at, updated_at) VALUES (?, ?, {ts}, {ts})",
        ))
        .bind(admin_id)
        .bind(mailbox_id)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        let tx = inserted(tx, outcome, || {
            format!("{admin} is a mailbox admin of {mailbox} already")
        })
        .await?;
        self.finish(
            tx,
            actor,
            "mailbox-admin.add",
            &mailbox.to_string(),
            Some(format!("admin={admin}")),
        )
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
        let actor: &Actor = &actor.into();
        let admin = Address::parse(admin)?;
        let mailbox = Address::parse(mailbox)?;
        let mut tx = self.begin().await?;
        let admin_id = self.require_mailbox(&mut tx, &admin).await?;
        let mailbox_id = self.require_mailbox(&mut tx, &mailbox).await?;
        let done = sqlx::query(
            self.inner
                .db
                .sql("DELETE FROM mailbox_admins WHERE admin_mailbox_id = ? AND mailbox_id = ?"),
        )
        .bind(admin_id)
        .bind(mailbox_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let _ = tx.rollback().await;
            return Err(DirectoryError::NotFound(format!(
                "{admin} is no mailbox admin of {mailbox}"
            )));
        }
        self.finish(
            tx,
            actor,
            "mailbox-admin.remove",
            &mailbox.to_string(),
            Some(format!("admin={admin}")),
        )
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
