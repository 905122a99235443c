//! The groups a mailbox belongs to for IMAP ACLs: `group=NAME` identifiers in dovecot-acl files
//! apply to the logins in group NAME, as Dovecot's userdb field `acl_groups` makes them.
//! A login's groups come with its account (`Account::acl_groups`).

use super::*;

/// Longest group name in bytes: what MySQL's key on the column holds.
pub const MAX_ACL_GROUP_LEN: usize = 191;

/// A group name as a dovecot-acl file can name it: not empty, no whitespace (which ends the
/// identifier there), no control character and no comma (which separates Dovecot's
/// `acl_groups` list).
fn check_group(group: &str) -> Result<(), DirectoryError> {
    if group.is_empty() || group.len() > MAX_ACL_GROUP_LEN {
        return Err(DirectoryError::Invalid(format!(
            "an ACL group name has 1 to {MAX_ACL_GROUP_LEN} bytes"
        )));
    }
    if group
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == ',')
    {
        return Err(DirectoryError::Invalid(format!(
            "ACL group {group:?} has a space, a comma or a control character"
        )));
    }
    Ok(())
}

impl Directory {
    /// Puts mailbox `address` in ACL group `group`.
    ///
    /// # Errors
    /// An invalid group name, an unknown mailbox, a membership that exists, or a database
    /// failure.
    pub async fn add_acl_group(
        &self,
        actor: impl Into<Actor>,
        address: &str,
        group: &str,
    ) -> Result<(), DirectoryError> {
        let address = Address::parse(address)?;
        check_group(group)?;
        let mut tx = self.begin().await?;
        let id = self.require_mailbox(&mut tx, &address).await?;
        let outcome = sqlx::query(
            self.inner
                .db
                .sql("INSERT INTO mailbox_acl_groups (mailbox_id, group_name) VALUES (?, ?)"),
        )
        .bind(id)
        .bind(group)
        .execute(&mut *tx)
        .await;
        let tx = inserted(tx, outcome, || {
            format!("{address} is in ACL group {group} already")
        })
        .await?;
        let subject = address.to_string();
        self.finish(
            tx,
            &actor.into(),
            "mailbox.acl-group.add",
            &subject,
            Some(format!("group={group}")),
        )
        .await
    }

    /// Takes mailbox `address` out of ACL group `group`.
    ///
    /// # Errors
    /// An unknown mailbox, no such membership, or a database failure.
    pub async fn remove_acl_group(
        &self,
        actor: impl Into<Actor>,
        address: &str,
        group: &str,
    ) -> Result<(), DirectoryError> {
        let address = Address::parse(address)?;
        let mut tx = self.begin().await?;
        let id = self.require_mailbox(&mut tx, &address).await?;
        let done = sqlx::query(
            self.inner
                .db
                .sql("DELETE FROM mailbox_acl_groups WHERE mailbox_id = ? AND group_name = ?"),
        )
        .bind(id)
        .bind(group)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let _ = tx.rollback().await;
            return Err(DirectoryError::NotFound(format!(
                "{address} is not in ACL group {group}"
            )));
        }
        let subject = address.to_string();
        self.finish(
            tx,
            &actor.into(),
            "mailbox.acl-group.remove",
            &subject,
            Some(format!("group={group}")),
        )
        .await
    }

    /// The ACL groups of mailbox `address`, by name.
    ///
    /// # Errors
    /// An unknown mailbox or a database failure.
    pub async fn acl_groups(&self, address: &str) -> Result<Vec<String>, DirectoryError> {
        let address = Address::parse(address)?;
        let mut tx = self.begin().await?;
        let id = self.require_mailbox(&mut tx, &address).await?;
        tx.commit().await?;
        lookup::acl_groups(&self.inner.db, id).await
    }
}
