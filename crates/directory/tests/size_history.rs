//! Mailbox sizes over time in MUM's `size_measurements`, on SQLite, PostgreSQL and MariaDB:
//! a round is written whole, read back per mailbox, domain and root in time order, stored as
//! MUM stores it (`App\Mailbox`, `App\Domain`, NULLs for the root), and pruned by age.
//! A backend that cannot be reached fails the test.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use mailstead_directory::sizes::{Measurable, Measurement};
use sqlx::Row;
use support::{TestBackend, fresh_directory};

on_every_backend!(sizes_are_recorded_read_back_and_pruned);

async fn sizes_are_recorded_read_back_and_pruned(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    let day = 86_400;
    let t0 = 1_796_256_000; // 2026-12-03 00:00:00 UTC
    let round = |mailbox_kib: u64, other_kib: u64| {
        vec![
            Measurement {
                measurable: Measurable::Mailbox(7),
                kib: mailbox_kib,
            },
            Measurement {
                measurable: Measurable::Mailbox(8),
                kib: other_kib,
            },
            Measurement {
                measurable: Measurable::Domain(3),
                kib: mailbox_kib + other_kib,
            },
            Measurement {
                measurable: Measurable::Root,
                kib: mailbox_kib + other_kib,
            },
        ]
    };
    dir.record_sizes(t0 - 400 * day, &round(1, 1))
        .await
        .unwrap();
    dir.record_sizes(t0, &round(10, 5)).await.unwrap();
    dir.record_sizes(t0 + 3600, &round(12, 5)).await.unwrap();
    // Larger than any 32-bit column holds: MUM's BIGINT.
    dir.record_sizes(t0 + 7200, &round(5_000_000_000, 0))
        .await
        .unwrap();

    let mailbox = dir.size_series(Measurable::Mailbox(7), t0).await.unwrap();
    let points: Vec<(i64, u64)> = mailbox.iter().map(|s| (s.at, s.kib)).collect();
    assert_eq!(
        points,
        [(t0, 10), (t0 + 3600, 12), (t0 + 7200, 5_000_000_000)]
    );
    let domain = dir
        .size_series(Measurable::Domain(3), t0 + 1)
        .await
        .unwrap();
    assert_eq!(
        domain.iter().map(|s| s.kib).collect::<Vec<_>>(),
        [17, 5_000_000_000]
    );
    let root = dir.size_series(Measurable::Root, 0).await.unwrap();
    assert_eq!(root.len(), 4);
    assert_eq!(root[0].kib, 2);
    // A domain and a mailbox with the same id are different series.
    assert!(
        dir.size_series(Measurable::Domain(7), 0)
            .await
            .unwrap()
            .is_empty()
    );

    // Stored as MUM stores it, so MUM's dashboard reads it.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&test.url).await.unwrap();
    let rows = sqlx::query("SELECT measurable_type FROM size_measurements WHERE size = 10")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let kind: Option<String> = rows[0].try_get("measurable_type").unwrap();
    assert_eq!(kind.as_deref(), Some("App\\Mailbox"));
    let roots: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM size_measurements WHERE measurable_type IS NULL AND measurable_id IS NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(roots, 4);
    pool.close().await;

    // A year's worth is kept: the round of 400 days ago goes.
    let pruned = dir.prune_sizes(t0 - 365 * day).await.unwrap();
    assert_eq!(pruned, 4);
    let root = dir.size_series(Measurable::Root, 0).await.unwrap();
    assert_eq!(root.len(), 3);
    assert_eq!(dir.prune_sizes(t0 - 365 * day).await.unwrap(), 0);

    test.cleanup().await;
}
