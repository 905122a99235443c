//! One quota account for every writer: delivery, APPEND, COPY, EXPUNGE and folder DELETE keep
//! `maildirsize` exact among themselves and refuse by the same rule.

use std::fs;
use std::path::Path;

use mailstead_store::{
    FlagOperation, FolderLayout, MailStore, MailboxError, QuotaLimit, Store, StoreError,
    SystemFlags,
};

fn store(dir: &Path) -> Store {
    Store::new("mx.example.com", dir.join("spool")).expect("store")
}

fn message(n: usize) -> Vec<u8> {
    // Different sizes, so a line counted twice or lost shows in the bytes too.
    format!("Subject: {n}\r\n\r\n{}\r\n", "x".repeat(100 + n * 7)).into_bytes()
}

async fn deliver(
    store: &Store,
    maildir: &Path,
    wire: &[u8],
    limit: QuotaLimit,
) -> Result<(), StoreError> {
    let mut writer = store.begin().await.expect("begin");
    writer.write_all(wire).await.expect("write");
    let spooled = writer.finish().await.expect("finish");
    spooled.deliver(maildir, limit, None).await.map(|_| ())
}

/// The sum of every line after the first.
fn maildirsize_total(root: &Path) -> (i64, i64) {
    let text = fs::read_to_string(root.join("maildirsize")).expect("maildirsize");
    text.lines().skip(1).fold((0, 0), |(bytes, count), line| {
        let mut fields = line.split_whitespace();
        let b: i64 = fields.next().and_then(|f| f.parse().ok()).expect("bytes");
        let c: i64 = fields.next().and_then(|f| f.parse().ok()).expect("count");
        (bytes + b, count + c)
    })
}

/// What is on disk: every message file of every folder, by its size.
fn on_disk(root: &Path) -> (i64, i64) {
    let mut dirs = vec![root.to_path_buf()];
    for entry in fs::read_dir(root).expect("root").flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') && entry.path().is_dir() {
            dirs.push(entry.path());
        }
    }
    let (mut bytes, mut count) = (0, 0);
    for dir in dirs {
        for sub in ["new", "cur"] {
            let Ok(entries) = fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                bytes += entry.metadata().expect("stat").len() as i64;
                count += 1;
            }
        }
    }
    (bytes, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_deliveries_and_expunges_keep_maildirsize_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    let mail = MailStore::new(&delivery);
    let limit = QuotaLimit::bytes(Some(1 << 30));
    let account = mail
        .open_account(&root, FolderLayout::MaildirPlusPlus, limit)
        .await
        .expect("open");
    // Stale (another limit): the first writers recalculate while the others append, and a
    // file grown past 5120 bytes is recalculated again in the middle of the run.
    fs::write(root.join("maildirsize"), "5S\n0 0\n").expect("stale maildirsize");

    let mut tasks = Vec::new();
    for task in 0..3 {
        let delivery = delivery.clone();
        let root = root.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..40 {
                deliver(&delivery, &root, &message(task * 40 + n), limit)
                    .await
                    .expect("deliver");
            }
        }));
    }
    for folder in ["INBOX", "Sent"] {
        let account = account.clone();
        tasks.push(tokio::spawn(async move {
            let folder = account.open(folder).await.expect("open");
            for n in 0..40 {
                let uid = folder
                    .append(&message(n), SystemFlags::empty(), &[], None)
                    .await
                    .expect("append");
                // Expunged only in Sent: copies below are taken from INBOX.
                if folder.name() == "Sent" && n % 3 == 0 {
                    folder
                        .store(&[uid], FlagOperation::Add, SystemFlags::DELETED, &[], None)
                        .await
                        .expect("flag");
                    folder.expunge(Some(&[uid])).await.expect("expunge");
                }
            }
        }));
    }
    {
        let account = account.clone();
        tasks.push(tokio::spawn(async move {
            let archive = account.open("Archive").await.expect("archive");
            let inbox = account.open("INBOX").await.expect("inbox");
            for _ in 0..20 {
                let snapshot = inbox.sync().await.expect("sync");
                let uids: Vec<u32> = snapshot.messages.iter().take(2).map(|m| m.uid).collect();
                inbox.copy_to(&uids, &archive).await.expect("copy");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(maildirsize_total(&root), on_disk(&root));

    // A folder deleted with its messages takes them off the account.
    account.delete("Archive").await.expect("delete");
    assert_eq!(maildirsize_total(&root), on_disk(&root));
    let usage = account.quota_usage().await.expect("usage");
    let (bytes, count) = on_disk(&root);
    assert_eq!((usage.bytes as i64, usage.messages as i64), (bytes, count));
}

/// APPEND and delivery answer the same for the same message at the same usage: exactly full
/// is allowed, one byte more is not, and the message-count limit counts both.
#[tokio::test]
async fn append_over_quota_is_refused_like_delivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    let mail = MailStore::new(&delivery);
    let wire = b"Subject: q\r\n\r\nbody\r\n";
    let stored_len = wire.len() as u64 - 3;
    let limit = QuotaLimit::bytes(Some(stored_len * 3));
    let account = mail
        .open_account(&root, FolderLayout::MaildirPlusPlus, limit)
        .await
        .expect("open");
    let inbox = account.open("INBOX").await.expect("inbox");
    deliver(&delivery, &root, wire, limit).await.expect("first");
    inbox
        .append(wire, SystemFlags::empty(), &[], None)
        .await
        .expect("second fits");
    // Exactly full.
    inbox
        .append(wire, SystemFlags::empty(), &[], None)
        .await
        .expect("third fits exactly");
    let by_append = inbox.append(wire, SystemFlags::empty(), &[], None).await;
    let by_delivery = deliver(&delivery, &root, wire, limit).await;
    match (by_append, by_delivery) {
        (
            Err(MailboxError::OverQuota {
                limit: l1,
                used: u1,
                size: s1,
                ..
            }),
            Err(StoreError::OverQuota {
                limit: l2,
                used: u2,
                size: s2,
                ..
            }),
        ) => assert_eq!((l1, u1, s1), (l2, u2, s2)),
        other => panic!("both must be refused alike: {other:?}"),
    }

    // A message-count limit: the same rule on both paths.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let limit = QuotaLimit {
        bytes: None,
        messages: Some(2),
    };
    let account = mail
        .open_account(&root, FolderLayout::MaildirPlusPlus, limit)
        .await
        .expect("open");
    let inbox = account.open("INBOX").await.expect("inbox");
    deliver(&delivery, &root, wire, limit).await.expect("one");
    inbox
        .append(wire, SystemFlags::empty(), &[], None)
        .await
        .expect("two");
    assert!(matches!(
        inbox.append(wire, SystemFlags::empty(), &[], None).await,
        Err(MailboxError::OverQuota { .. })
    ));
    assert!(matches!(
        deliver(&delivery, &root, wire, limit).await,
        Err(StoreError::OverQuota { .. })
    ));
    assert_eq!(
        fs::read_to_string(root.join("maildirsize"))
            .expect("maildirsize")
            .lines()
            .next(),
        Some("2C")
    );
}
