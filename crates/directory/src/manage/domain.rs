//! Hosted domains: adding, changing, removing and listing them, with MUM's limits.

use super::*;

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

impl Directory {
    /// Adds a hosted domain.
    ///
    /// # Errors
    /// A bad name, an existing domain or alias domain, or a database failure.
    pub async fn add_domain(
        &self,
        actor: impl Into<Actor>,
        new: NewDomain,
    ) -> Result<Domain, DirectoryError> {
        let actor: &Actor = &actor.into();
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
        actor: impl Into<Actor>,
        domain: &str,
        update: DomainUpdate,
    ) -> Result<Domain, DirectoryError> {
        let actor: &Actor = &actor.into();
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
        actor: impl Into<Actor>,
        domain: &str,
        force: bool,
    ) -> Result<(), DirectoryError> {
        let actor: &Actor = &actor.into();
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
}
