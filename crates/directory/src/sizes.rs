//! Mailbox sizes over time, in MUM's `size_measurements` table (migration 0007), so MUM's
//! dashboard draws what Mailstead records: one row per mailbox (`App\Mailbox`), per domain
//! (`App\Domain`) and for the whole server (both columns NULL) each round, `size` in KiB.
//!
//! Statistics, not configuration: these writes are neither audited nor counted as changes
//! (no answer the directory caches depends on them), unlike every write in `manage`.

use sqlx::Row;

use crate::{Directory, DirectoryError};

/// MUM's `measurable_type` of a mailbox (its Eloquent model's class).
pub const MAILBOX_TYPE: &str = "App\\Mailbox";
/// MUM's `measurable_type` of a domain.
pub const DOMAIN_TYPE: &str = "App\\Domain";

/// What a measurement is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Measurable {
    /// Every mailbox of the server together.
    Root,
    /// A domain, by its id.
    Domain(i64),
    /// A mailbox, by its id.
    Mailbox(i64),
}

impl Measurable {
    /// The `measurable_type` and `measurable_id` columns.
    fn columns(self) -> (Option<&'static str>, Option<i64>) {
        match self {
            Measurable::Root => (None, None),
            Measurable::Domain(id) => (Some(DOMAIN_TYPE), Some(id)),
            Measurable::Mailbox(id) => (Some(MAILBOX_TYPE), Some(id)),
        }
    }
}

/// One size of one measurable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measurement {
    pub measurable: Measurable,
    /// KiB, as MUM stores it.
    pub kib: u64,
}

/// One point of a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SizeSample {
    /// Unix seconds (UTC).
    pub at: i64,
    pub kib: u64,
}

impl Directory {
    /// Records one round of measurements, all stamped `at` (Unix seconds), in one transaction:
    /// a reader sees a whole round or none of it.
    ///
    /// # Errors
    /// A database failure; nothing is recorded then.
    pub async fn record_sizes(
        &self,
        at: i64,
        measurements: &[Measurement],
    ) -> Result<(), DirectoryError> {
        let db = &self.inner.db;
        let insert = "INSERT INTO size_measurements \
             (measurable_id, measurable_type, size, created_at, updated_at) VALUES (?, ?, ?, {ts}, {ts})";
        let mut tx = db.pool.begin().await?;
        for measurement in measurements {
            let (kind, id) = measurement.measurable.columns();
            sqlx::query(db.sql(insert))
                .bind(id)
                .bind(kind)
                .bind(i64::try_from(measurement.kib).unwrap_or(i64::MAX))
                .bind(at)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the measurements taken before `before` (Unix seconds), as MUM's
    /// `size-measurements:delete-old` does; returns how many.
    ///
    /// # Errors
    /// A database failure.
    pub async fn prune_sizes(&self, before: i64) -> Result<u64, DirectoryError> {
        let db = &self.inner.db;
        let done = sqlx::query(db.sql("DELETE FROM size_measurements WHERE created_at < {ts}"))
            .bind(before)
            .execute(&db.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The sizes of `measurable` recorded at or after `since` (Unix seconds), oldest first.
    ///
    /// # Errors
    /// A database failure.
    pub async fn size_series(
        &self,
        measurable: Measurable,
        since: i64,
    ) -> Result<Vec<SizeSample>, DirectoryError> {
        let db = &self.inner.db;
        let (kind, id) = measurable.columns();
        let rows = match (kind, id) {
            (Some(kind), Some(id)) => {
                sqlx::query(db.sql(
                    "SELECT {epoch:created_at} AS at, {int:size} AS size FROM size_measurements \
                     WHERE measurable_type = ? AND measurable_id = ? AND created_at >= {ts} \
                     ORDER BY created_at, id",
                ))
                .bind(kind)
                .bind(id)
                .bind(since)
                .fetch_all(&db.pool)
                .await?
            }
            _ => {
                sqlx::query(db.sql(
                    "SELECT {epoch:created_at} AS at, {int:size} AS size FROM size_measurements \
                     WHERE measurable_type IS NULL AND measurable_id IS NULL AND created_at >= {ts} \
                     ORDER BY created_at, id",
                ))
                .bind(since)
                .fetch_all(&db.pool)
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                let at: Option<i64> = row.try_get("at")?;
                let size: i64 = row.try_get("size")?;
                Ok(SizeSample {
                    at: at.unwrap_or(0),
                    kib: u64::try_from(size).unwrap_or(0),
                })
            })
            .collect()
    }
}
