//! Opens a folder again and again after its last handle went, as a session re-SELECTing
//! INBOX does, then syncs it `noops` times as NOOP does: run it under
//! `valgrind --tool=callgrind` twice with different counts; the difference in instructions
//! divided by the difference in count is the cost of one re-open (or one sync).
//!
//! `cargo run -p mailstead-store --example reselect [messages] [reopens] [noops]`

use std::fs::{self, File};
use std::time::{Duration, SystemTime};

use mailstead_store::{FolderLayout, MailStore, Store};

const BODY: &[u8] = b"From: a@example.com\nSubject: benchmark\n\nHello\n";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |n: usize, default: usize| {
        std::env::args()
            .nth(n)
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    };
    let (count, reopens, noops) = (arg(1, 1000), arg(2, 100), arg(3, 0));
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(root.join(sub))?;
    }
    let vsize = mailstead_store::form::wire_len(BODY);
    for n in 0..count {
        let name = format!(
            "{}.M{}P1Q{n}.bench,S={},W={vsize}:2,",
            1_700_000_000 + n,
            n % 1_000_000,
            BODY.len(),
        );
        fs::write(root.join("cur").join(name), BODY)?;
    }
    let store = Store::new("bench", dir.path().join("spool"))?;
    let mail = MailStore::new(&store);
    let account = mail
        .open_account(
            &root,
            FolderLayout::MaildirPlusPlus,
            mailstead_store::QuotaLimit::UNLIMITED,
        )
        .await?;
    drop(account.open("INBOX").await?);
    // Past the mtime slack, so that an unchanged directory is trusted.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let old = SystemTime::now() - Duration::from_secs(60);
    for sub in ["cur", "new", "dovecot-uidlist"] {
        File::open(root.join(sub))?.set_modified(old)?;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..reopens {
        let folder = account.open("INBOX").await?;
        drop(folder);
        // The index write a dropped folder starts runs meanwhile.
        tokio::task::yield_now().await;
    }
    let folder = account.open("INBOX").await?;
    for _ in 0..noops {
        folder.sync().await?;
    }
    println!("{} messages", folder.snapshot().messages.len());
    Ok(())
}
