//! The size recorder `serve` runs (`[stats] size_interval`): every round it measures each
//! mailbox's Maildir (`mailstead_store::quota_usage`, what GETQUOTA reports), sums each domain and the server, and
//! records them in MUM's `size_measurements` in one transaction, then deletes what is older
//! than `[stats] size_keep`. It does what MUM's `mailbox_size_crawler.sh` (`du`) and
//! `size-measurements:report` and `:delete-old` do from cron, inside the server.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use mailstead_directory::model::unsafe_location;
use mailstead_directory::sizes::{Measurable, Measurement};
use mailstead_directory::{Directory, DirectoryError};
use mailstead_store::QuotaLimit;

/// Measures every `interval` (the first round at once) until `stopped` completes.
pub async fn run(
    directory: Directory,
    interval: Duration,
    keep: Duration,
    stopped: impl Future<Output = ()>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = &mut stopped => return,
        }
        match record_round(&directory, keep).await {
            Ok((measured, pruned)) => info!(measured, pruned, "mailbox sizes recorded"),
            Err(err) => warn!(cause = %err, "cannot record mailbox sizes"),
        }
    }
}

/// One round: measures, records, prunes. Returns the rows written and the rows deleted.
///
/// # Errors
/// A database failure (a Maildir that cannot be read is logged and left out).
pub async fn record_round(
    directory: &Directory,
    keep: Duration,
) -> Result<(usize, u64), DirectoryError> {
    let domains = directory.list_domains().await?;
    let domain_ids: HashMap<&str, i64> = domains
        .iter()
        .map(|domain| (domain.domain.as_str(), domain.id))
        .collect();
    let mut measurements = Vec::new();
    let mut per_domain: HashMap<i64, u64> = domains.iter().map(|d| (d.id, 0)).collect();
    let mut total = 0u64;
    for mailbox in directory.list_mailboxes(None).await? {
        // Another writer's row that could reach someone else's files is not read.
        if unsafe_location(&mailbox.address, &mailbox.location).is_some() {
            continue;
        }
        let quota = QuotaLimit::bytes(mailbox.effective_quota.bytes);
        let bytes = match mailstead_store::quota_usage(&mailbox.location.maildir, quota).await {
            Ok(usage) => usage.map_or(0, |usage| usage.bytes),
            Err(err) => {
                warn!(mailbox = %mailbox.address, cause = %err, "cannot measure the Maildir");
                continue;
            }
        };
        let kib = bytes.div_ceil(1024);
        measurements.push(Measurement {
            measurable: Measurable::Mailbox(mailbox.id),
            kib,
        });
        if let Some(id) = domain_ids.get(mailbox.address.domain()) {
            *per_domain.entry(*id).or_default() += kib;
        }
        total += kib;
    }
    let mut domain_rows: Vec<(i64, u64)> = per_domain.into_iter().collect();
    domain_rows.sort_unstable();
    for (id, kib) in domain_rows {
        measurements.push(Measurement {
            measurable: Measurable::Domain(id),
            kib,
        });
    }
    measurements.push(Measurement {
        measurable: Measurable::Root,
        kib: total,
    });
    let now = unix_seconds(SystemTime::now());
    directory.record_sizes(now, &measurements).await?;
    let keep = i64::try_from(keep.as_secs()).unwrap_or(i64::MAX);
    let pruned = directory.prune_sizes(now.saturating_sub(keep)).await?;
    Ok((measurements.len(), pruned))
}

fn unix_seconds(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
