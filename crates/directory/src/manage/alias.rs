//! Aliases and their recipients and senders, and alias domains.

use super::*;

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

impl Directory {
    /// Adds an alias with its recipients and senders.
    ///
    /// # Errors
    /// A sentence saying which rule was broken, or a database failure.
    pub async fn add_alias(
        &self,
        actor: impl Into<Actor>,
        new: NewAlias,
    ) -> Result<Alias, DirectoryError> {
        let actor: &Actor = &actor.into();
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
        actor: impl Into<Actor>,
        address: &str,
        update: AliasUpdate,
    ) -> Result<Alias, DirectoryError> {
        let actor: &Actor = &actor.into();
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
        actor: impl Into<Actor>,
        address: &str,
        recipients: &[String],
    ) -> Result<Alias, DirectoryError> {
        let actor: &Actor = &actor.into();
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
        actor: impl Into<Actor>,
        address: &str,
        recipients: &[String],
    ) -> Result<Alias, DirectoryError> {
        let actor: &Actor = &actor.into();
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
        actor: impl Into<Actor>,
        alias: &str,
        mailbox: &str,
    ) -> Result<Alias, DirectoryError> {
        let actor: &Actor = &actor.into();
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
        actor: impl Into<Actor>,
        alias: &str,
        mailbox: &str,
    ) -> Result<Alias, DirectoryError> {
        let actor: &Actor = &actor.into();
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
    pub async fn remove_alias(
        &self,
        actor: impl Into<Actor>,
        address: &str,
    ) -> Result<(), DirectoryError> {
        let actor: &Actor = &actor.into();
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

    pub(super) async fn alias_from_row(&self, row: &AnyRow) -> Result<Alias, DirectoryError> {
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
    pub(super) async fn sender_addresses(
        &self,
        alias_id: i64,
    ) -> Result<Vec<String>, DirectoryError> {
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
        actor: impl Into<Actor>,
        domain: &str,
        target: &str,
        description: Option<String>,
    ) -> Result<AliasDomain, DirectoryError> {
        let actor: &Actor = &actor.into();
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
        let inserted_row = sqlx::query(self.inner.db.sql(
            "INSERT INTO alias_domains (domain, target_domain_id, description, active, created_at, updated_at) VALUES (?, ?, ?, 1, {ts}, {ts})",
        ))
        .bind(&domain)
        .bind(target_id)
        .bind(&description)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        let tx = inserted(tx, inserted_row, || {
            format!("{domain} is already an alias domain")
        })
        .await?;
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
        actor: impl Into<Actor>,
        domain: &str,
    ) -> Result<(), DirectoryError> {
        let actor: &Actor = &actor.into();
        let domain = normalize_domain(domain)?;
        self.remove_by_domain(
            actor,
            "alias_domains",
            "alias-domain.remove",
            &domain,
            || DirectoryError::NotFound(format!("no alias domain {domain}")),
        )
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
}
