//! Measures opening a 100,000-message folder: a cold scan (no uidlist, no index), a rescan
//! with the uidlist but a stale index, a warm index, and a folder already in memory; then
//! what one small change costs in it (append, flag change with the index write, expunge),
//! and a cold open of a folder whose file names lack `W=`.
//!
//! `cargo run --release -p mailstead-store --example select_100k [count]`

use std::fs::{self, File};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mailstead_store::{
    Account, FlagOperation, Folder, FolderLayout, MailStore, QuotaLimit, Store, SystemFlags,
};

/// How many times each small change is timed.
const ROUNDS: usize = 3;

/// Prints the median of `times` and empties it.
fn median(label: &str, times: &mut Vec<Duration>) {
    times.sort_unstable();
    let middle = times.get(times.len() / 2).copied().unwrap_or_default();
    println!(
        "{label:<44} {:>9.1} ms  (median of {})",
        middle.as_secs_f64() * 1000.0,
        times.len()
    );
    times.clear();
}

const BODY: &[u8] = b"From: a@example.com\nSubject: benchmark\n\nHello\n";

fn age(path: &std::path::Path) {
    let old = SystemTime::now() - Duration::from_secs(60);
    if let Ok(file) = File::open(path) {
        let _ = file.set_modified(old);
    }
}

/// A Maildir of `count` messages; `with_vsize` puts `W=` in their names.
fn fill(root: &std::path::Path, count: usize, with_vsize: bool) -> std::io::Result<()> {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(root.join(sub))?;
    }
    let vsize = mailstead_store::form::wire_len(BODY);
    for n in 0..count {
        let vsize = if with_vsize {
            format!(",W={vsize}")
        } else {
            String::new()
        };
        let name = format!(
            "{}.M{}P1Q{n}.bench,S={}{vsize}:2,{}",
            1_700_000_000 + n,
            n % 1_000_000,
            BODY.len(),
            if n % 3 == 0 { "S" } else { "" }
        );
        fs::write(root.join("cur").join(name), BODY)?;
    }
    Ok(())
}

fn timed(label: &str, started: Instant, messages: usize) {
    println!(
        "{label:<44} {:>9.1} ms  ({messages} messages)",
        started.elapsed().as_secs_f64() * 1000.0
    );
}

/// Opens the INBOX at `root` through a new `MailStore` (nothing of it in memory) and prints
/// how long the open took.
async fn open_fresh(
    store: &Store,
    root: &std::path::Path,
    label: &str,
) -> Result<(MailStore, Account, Arc<Folder>), Box<dyn std::error::Error>> {
    let mail = MailStore::new(store);
    let account = mail
        .open_account(root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
        .await?;
    let started = Instant::now();
    let folder = account.open("INBOX").await?;
    timed(label, started, folder.snapshot().messages.len());
    Ok((mail, account, folder))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("Maildir");
    fill(&root, count, true)?;
    // Fresh files give a fresh directory mtime; age it so the 2 s rule does not force rescans.
    let age_all = || {
        for sub in ["cur", "new"] {
            age(&root.join(sub));
        }
        age(&root.join("dovecot-uidlist"));
    };
    age_all();
    let store = Store::new("bench", dir.path().join("spool"))?;

    // 1. Cold: no dovecot-uidlist, no index: scan, stat, number, write both.
    let (mail, account, folder) =
        open_fresh(&store, &root, "cold open (scan + assign UIDs + uidlist)").await?;
    drop(folder);
    drop(account);
    drop(mail);
    tokio::time::sleep(Duration::from_millis(500)).await;
    age_all();

    // 2. Index stale (mtimes changed): read it, rescan the directory, reconcile.
    let (mail, account, folder) =
        open_fresh(&store, &root, "open with stale index (rescan)").await?;
    drop(folder);
    drop(account);
    drop(mail);
    // The index is written in the background when the last handle goes.
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // 3. Warm index: nothing changed on disk since it was written.
    let (mail, account, folder) = open_fresh(&store, &root, "open with warm index").await?;

    // 4. In memory: a second session opens the same Folder, then syncs.
    let started = Instant::now();
    let again = account.open("INBOX").await?;
    timed(
        "open while in memory (+ sync)",
        started,
        again.snapshot().messages.len(),
    );
    let started = Instant::now();
    let snapshot = again.sync().await?;
    timed("sync, nothing changed", started, snapshot.messages.len());
    // One small change, each kind timed ROUNDS times (the median is shown: fsync times
    // vary with whatever else the disk is doing).
    let mut uids = Vec::new();
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        uids.push(
            again
                .append(
                    b"Subject: new\r\n\r\nnew\r\n",
                    Default::default(),
                    &[],
                    None,
                )
                .await?,
        );
        times.push(started.elapsed());
    }
    median("append (fsync, uidlist)", &mut times);
    let uid = uids.last().copied().unwrap_or(0);
    let started = Instant::now();
    let snapshot = again.sync().await?;
    timed(
        "sync right after our own change",
        started,
        snapshot.messages.len(),
    );
    for &uid in &uids {
        // Index writes may be spaced up to 5 s apart: waiting that out first makes the flag
        // change pay for its index write however the index is kept.
        tokio::time::sleep(Duration::from_millis(5100)).await;
        let started = Instant::now();
        again
            .store(&[uid], FlagOperation::Add, SystemFlags::DELETED, &[], None)
            .await?;
        times.push(started.elapsed());
    }
    median("flag change + index write", &mut times);
    for &uid in &uids {
        let started = Instant::now();
        again.expunge(Some(&[uid])).await?;
        times.push(started.elapsed());
    }
    median("expunge (fsync, uidlist)", &mut times);
    let index_len = |name: &str| fs::metadata(root.join(name)).map_or(0, |meta| meta.len());
    println!(
        "last uid {uid}, index {} bytes, log {} bytes",
        index_len("mailstead.index"),
        index_len("mailstead.index.log")
    );
    drop(again);
    drop(folder);
    drop(account);
    drop(mail);

    // 5. Cold open of file names without W=: their sizes are not in the names.
    let plain = dir.path().join("Plain");
    fill(&plain, count, false)?;
    for sub in ["cur", "new"] {
        age(&plain.join(sub));
    }
    open_fresh(&store, &plain, "cold open, names without W=").await?;
    Ok(())
}
