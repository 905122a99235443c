//! The audit log every write appends to, as it is read back.

use super::*;

pub(super) const AUDIT_SELECT: &str =
    "SELECT id, {epoch:created_at} AS at, actor, source, action, subject, details FROM audit_log";

pub(super) fn audit_from_row(row: &AnyRow) -> Result<AuditEntry, DirectoryError> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        source: row.try_get("source")?,
        action: row.try_get("action")?,
        subject: row.try_get("subject")?,
        details: row.try_get("details")?,
    })
}

impl Directory {
    /// The newest `limit` audit entries, newest first.
    ///
    /// # Errors
    /// A database failure.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, DirectoryError> {
        let rows = sqlx::query(
            self.inner
                .db
                .sql(&format!("{AUDIT_SELECT} ORDER BY id DESC LIMIT ?")),
        )
        .bind(limit)
        .fetch_all(&self.inner.db.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}
