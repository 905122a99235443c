//! Mailboxes: adding (checked against the domain's limits), changing, passwords, removing, listing.

use super::*;

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

impl Directory {
    /// Adds a mailbox, with MUM's checks: the domain exists, the address is no alias or
    /// mailbox yet, `max_mailboxes` and `max_quota` are kept.
    ///
    /// # Errors
    /// A sentence saying which rule was broken, or a database failure.
    pub async fn add_mailbox(
        &self,
        actor: impl Into<Actor>,
        new: NewMailbox,
    ) -> Result<Mailbox, DirectoryError> {
        let actor: &Actor = &actor.into();
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
        let inserted_row = sqlx::query(db.sql(
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
        let tx = inserted(tx, inserted_row, || {
            format!("homedir {homedir} or maildir {maildir} is already used by another mailbox")
        })
        .await?;
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

    pub(super) async fn load_domain_limits(
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
        actor: impl Into<Actor>,
        address: &str,
        update: MailboxUpdate,
    ) -> Result<Mailbox, DirectoryError> {
        let actor: &Actor = &actor.into();
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
        actor: impl Into<Actor>,
        address: &str,
        password_hash: &str,
    ) -> Result<(), DirectoryError> {
        let actor: &Actor = &actor.into();
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
    pub async fn remove_mailbox(
        &self,
        actor: impl Into<Actor>,
        address: &str,
    ) -> Result<(), DirectoryError> {
        let actor: &Actor = &actor.into();
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

    pub(super) async fn require_mailbox(
        &self,
        tx: &mut Tx,
        address: &Address,
    ) -> Result<i64, DirectoryError> {
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
}
