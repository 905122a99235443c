//! Measures opening a 100,000-message folder: a cold scan (no uidlist, no index), a rescan
//! with the uidlist but a stale index, a warm index, and a folder already in memory.
//!
//! `cargo run --release -p mailstead-store --example select_100k [count]`

use std::fs::{self, File};
use std::time::{Duration, Instant, SystemTime};

use mailstead_store::{FolderLayout, MailStore, Store};

const BODY: &[u8] = b"From: a@example.com\nSubject: benchmark\n\nHello\n";

fn age(path: &std::path::Path) {
    let old = SystemTime::now() - Duration::from_secs(60);
    if let Ok(file) = File::open(path) {
        let _ = file.set_modified(old);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(root.join(sub))?;
    }
    let vsize = BODY.len() + BODY.iter().filter(|&&b| b == b'\n').count();
    for n in 0..count {
        let name = format!(
            "{}.M{}P1Q{n}.bench,S={},W={vsize}:2,{}",
            1_700_000_000 + n,
            n % 1_000_000,
            BODY.len(),
            if n % 3 == 0 { "S" } else { "" }
        );
        fs::write(root.join("cur").join(name), BODY)?;
    }
    // Fresh files give a fresh directory mtime; age it so the 2 s rule does not force rescans.
    let age_all = || {
        for sub in ["cur", "new"] {
            age(&root.join(sub));
        }
        age(&root.join("dovecot-uidlist"));
    };
    age_all();
    let store = Store::new("bench", dir.path().join("spool"))?;

    let timed = |label: &str, started: Instant, messages: usize| {
        println!(
            "{label:<44} {:>9.1} ms  ({messages} messages)",
            started.elapsed().as_secs_f64() * 1000.0
        );
    };

    // 1. Cold: no dovecot-uidlist, no index: scan, stat, number, write both.
    let mail = MailStore::new(&store);
    let account = mail
        .open_account(
            &root,
            FolderLayout::MaildirPlusPlus,
            mailstead_store::QuotaLimit::UNLIMITED,
        )
        .await?;
    let started = Instant::now();
    let folder = account.open("INBOX").await?;
    timed(
        "cold open (scan + assign UIDs + uidlist)",
        started,
        folder.snapshot().messages.len(),
    );
    drop(folder);
    drop(account);
    drop(mail);
    tokio::time::sleep(Duration::from_millis(500)).await;
    age_all();

    // 2. Index stale (mtimes changed): read it, rescan the directory, reconcile.
    let mail = MailStore::new(&store);
    let account = mail
        .open_account(
            &root,
            FolderLayout::MaildirPlusPlus,
            mailstead_store::QuotaLimit::UNLIMITED,
        )
        .await?;
    let started = Instant::now();
    let folder = account.open("INBOX").await?;
    timed(
        "open with stale index (rescan)",
        started,
        folder.snapshot().messages.len(),
    );
    drop(folder);
    drop(account);
    drop(mail);
    // The index is written in the background when the last handle goes.
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // 3. Warm index: nothing changed on disk since it was written.
    let mail = MailStore::new(&store);
    let account = mail
        .open_account(
            &root,
            FolderLayout::MaildirPlusPlus,
            mailstead_store::QuotaLimit::UNLIMITED,
        )
        .await?;
    let started = Instant::now();
    let folder = account.open("INBOX").await?;
    timed(
        "open with warm index",
        started,
        folder.snapshot().messages.len(),
    );

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
    let started = Instant::now();
    let uid = again
        .append(
            b"Subject: new\r\n\r\nnew\r\n",
            Default::default(),
            &[],
            None,
        )
        .await?;
    timed("append (fsync, uidlist rewrite)", started, 1);
    let started = Instant::now();
    let snapshot = again.sync().await?;
    timed(
        "sync right after our own change",
        started,
        snapshot.messages.len(),
    );
    println!(
        "last uid {uid}, index {} bytes",
        fs::metadata(root.join("mailstead.index"))?.len()
    );
    Ok(())
}
