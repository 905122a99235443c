//! Transports: the next hop for a domain.

use super::*;

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

impl Directory {
    /// Sends mail for `domain` to `next_hop` instead of the domain's MX. The domain need not
    /// be hosted (a transport is usually for one that is not).
    ///
    /// # Errors
    /// A bad domain, a next hop that is not in Postfix's syntax, an existing transport, or a
    /// database failure.
    pub async fn add_transport(
        &self,
        actor: impl Into<Actor>,
        domain: &str,
        next_hop: &str,
        description: Option<&str>,
    ) -> Result<Transport, DirectoryError> {
        let actor: &Actor = &actor.into();
        let domain = normalize_domain(domain)?;
        let next_hop = NextHop::parse(next_hop)
            .map_err(DirectoryError::Invalid)?
            .to_string();
        let mut tx = self.begin().await?;
        let now = unix_now();
        let inserted_row = sqlx::query(self.inner.db.sql(
            "INSERT INTO transports (domain, transport, description, active, created_at, updated_at) VALUES (?, ?, ?, 1, {ts}, {ts})",
        ))
        .bind(&domain)
        .bind(&next_hop)
        .bind(description)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        let tx = inserted(tx, inserted_row, || {
                format!(
                    "{domain} already has a transport; change it with `mailstead transport update {domain} NEXTHOP`"
                )
        })
        .await?;
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
        actor: impl Into<Actor>,
        domain: &str,
        update: TransportUpdate,
    ) -> Result<Transport, DirectoryError> {
        let actor: &Actor = &actor.into();
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
    pub async fn remove_transport(
        &self,
        actor: impl Into<Actor>,
        domain: &str,
    ) -> Result<(), DirectoryError> {
        let actor: &Actor = &actor.into();
        let domain = normalize_domain(domain)?;
        self.remove_by_domain(actor, "transports", "transport.remove", &domain, || {
            no_transport(&domain)
        })
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
}
