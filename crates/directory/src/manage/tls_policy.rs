//! TLS policies for remote domains.

use super::*;

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

impl Directory {
    /// Adds a TLS policy for mail to a remote domain.
    ///
    /// # Errors
    /// A bad domain, an existing policy, or a database failure.
    pub async fn add_tls_policy(
        &self,
        actor: impl Into<Actor>,
        new: NewTlsPolicy,
    ) -> Result<TlsPolicy, DirectoryError> {
        let actor: &Actor = &actor.into();
        let domain = normalize_domain(&new.domain)?;
        let mut tx = self.begin().await?;
        let now = unix_now();
        let inserted_row = sqlx::query(self.inner.db.sql(
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
        let tx = inserted(tx, inserted_row, || {
                format!(
                    "{domain} already has a TLS policy; change it with `mailstead tls-policy update {domain}`"
                )
        })
        .await?;
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
        actor: impl Into<Actor>,
        domain: &str,
        update: TlsPolicyUpdate,
    ) -> Result<TlsPolicy, DirectoryError> {
        let actor: &Actor = &actor.into();
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
    pub async fn remove_tls_policy(
        &self,
        actor: impl Into<Actor>,
        domain: &str,
    ) -> Result<(), DirectoryError> {
        let actor: &Actor = &actor.into();
        let domain = normalize_domain(domain)?;
        self.remove_by_domain(actor, "tls_policies", "tls-policy.remove", &domain, || {
            DirectoryError::NotFound(format!("no TLS policy for {domain}"))
        })
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
}
