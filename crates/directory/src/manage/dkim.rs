//! DKIM signing keys, checked before they are stored.

use super::*;

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

impl Directory {
    /// Stores a DKIM key of a hosted domain. The key is made by the caller (the admin crate
    /// generates them); here it is only checked for its form: a PEM of the kind the algorithm
    /// needs and a base64 public key.
    ///
    /// # Errors
    /// A domain that is not hosted, a bad selector, a key of the wrong form, a selector the
    /// domain already has, or a database failure.
    pub async fn add_dkim_key(
        &self,
        actor: impl Into<Actor>,
        domain: &str,
        selector: &str,
        algorithm: DkimAlgorithm,
        private_key_pem: &str,
        public_key_b64: &str,
    ) -> Result<DkimKeyInfo, DirectoryError> {
        let actor: &Actor = &actor.into();
        let domain = normalize_domain(domain)?;
        let selector = normalize_selector(selector)?;
        check_private_key_pem(algorithm, private_key_pem)?;
        check_public_key(public_key_b64)?;
        let mut tx = self.begin().await?;
        // Only a hosted domain's mail is signed here: a key for any other would never be used.
        self.domain_id(&mut tx, &domain).await?;
        let now = unix_now();
        let inserted_row = sqlx::query(self.inner.db.sql(
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
        let tx = inserted(tx, inserted_row, || {
                format!(
                    "{domain} already has a DKIM key with selector {selector}; choose another selector with --selector, or remove it first with `mailstead dkim remove {domain} --selector {selector}`"
                )
        })
        .await?;
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
        actor: impl Into<Actor>,
        domain: &str,
        selector: Option<&str>,
    ) -> Result<u64, DirectoryError> {
        let actor: &Actor = &actor.into();
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
}
