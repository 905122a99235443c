//! The IMAP-facing Maildir store on its own: folders, UIDs across handles and processes,
//! flags, keywords, expunge, delivery wake-ups, the index.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mailstead_directory::model::Quota;
use mailstead_store::{
    CacheKey, FlagOperation, FolderLayout, MailStore, MailboxError, SpecialUse, Store, SystemFlags,
};

const MESSAGE: &[u8] = b"From: a@example.com\r\nSubject: hi\r\n\r\nHello\r\n";

fn store(dir: &Path) -> Store {
    Store::new("mx.example.com", dir.join("spool")).expect("store")
}

async fn deliver(store: &Store, maildir: &Path, body: &str) {
    let mut writer = store.begin().await.expect("begin");
    writer
        .write_all(format!("Subject: {body}\r\n\r\n{body}\r\n").as_bytes())
        .await
        .expect("write");
    let spooled = writer.finish().await.expect("finish");
    spooled
        .deliver(maildir, Quota::UNLIMITED, None)
        .await
        .expect("deliver");
}

#[tokio::test]
async fn folders_are_created_listed_renamed_deleted() {
    for layout in [FolderLayout::MaildirPlusPlus, FolderLayout::Fs] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("Maildir");
        let mail = MailStore::new(&store(dir.path()));
        let account = mail.open_account(&root, layout, None).await.expect("open");
        let names = |list: Vec<mailstead_store::FolderInfo>| -> Vec<String> {
            list.into_iter().map(|f| f.name).collect()
        };
        let list = account.list().await.expect("list");
        assert_eq!(list[0].name, "INBOX");
        assert_eq!(
            names(list.clone()),
            ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
        );
        let sent = list.iter().find(|f| f.name == "Sent").expect("Sent");
        assert_eq!(sent.special_use, Some(SpecialUse::Sent));

        account
            .create("Work/Projects/2026", None)
            .await
            .expect("create");
        let list = account.list().await.expect("list");
        assert!(list.iter().any(|f| f.name == "Work" && f.has_children));
        assert!(
            list.iter()
                .any(|f| f.name == "Work/Projects/2026" && !f.has_children)
        );
        assert!(matches!(
            account.create("work/Projects", None).await,
            Ok(())
        ));
        assert!(matches!(
            account.create("Work/Projects", None).await,
            Err(MailboxError::AlreadyExists(_))
        ));
        assert!(matches!(
            account.delete("Work").await,
            Err(MailboxError::HasChildren(_))
        ));
        assert!(matches!(
            account.delete("inbox").await,
            Err(MailboxError::CannotDeleteInbox)
        ));

        // A folder keeps its messages and UIDs across a rename, children included.
        let projects = account.open("Work/Projects").await.expect("open");
        let uid = projects
            .append(MESSAGE, SystemFlags::SEEN, &[], None)
            .await
            .expect("append");
        drop(projects);
        account.rename("Work", "Jobs").await.expect("rename");
        let names_now = names(account.list().await.expect("list"));
        assert!(
            names_now.contains(&"Jobs/Projects/2026".to_owned()),
            "{names_now:?}"
        );
        assert!(
            !names_now.iter().any(|n| n.starts_with("Work")),
            "{names_now:?}"
        );
        let projects = account.open("Jobs/Projects").await.expect("open renamed");
        let snapshot = projects.snapshot();
        assert_eq!(snapshot.messages.len(), 1);
        assert_eq!(snapshot.messages[0].uid, uid);
        assert!(snapshot.messages[0].flags.contains(SystemFlags::SEEN));

        // Renaming INBOX moves its messages and leaves it empty.
        let inbox = account.open("INBOX").await.expect("inbox");
        inbox
            .append(MESSAGE, SystemFlags::empty(), &[], None)
            .await
            .expect("append");
        account.rename("INBOX", "Old").await.expect("rename inbox");
        assert!(inbox.sync().await.expect("sync").messages.is_empty());
        let old = account.open("Old").await.expect("Old");
        assert_eq!(old.snapshot().messages.len(), 1);

        // Deleting a default folder is remembered: it is not recreated.
        account.delete("Junk").await.expect("delete");
        let again = mail
            .open_account(&root, layout, None)
            .await
            .expect("reopen");
        assert!(!names(again.list().await.expect("list")).contains(&"Junk".to_owned()));
        assert!(matches!(
            again.open("Junk").await,
            Err(MailboxError::NotFound(_))
        ));

        // Subscriptions in Dovecot's format.
        account
            .set_subscribed("Jobs/Projects", true)
            .await
            .expect("sub");
        account.set_subscribed("Sent", false).await.expect("unsub");
        let subs = account.subscriptions().await.expect("subs");
        assert!(subs.contains(&"Jobs/Projects".to_owned()));
        assert!(subs.contains(&"INBOX".to_owned()));
        assert!(!subs.contains(&"Sent".to_owned()));
        let raw = fs::read(root.join("subscriptions")).expect("file");
        assert!(raw.starts_with(b"V\t2\n\n"));
        assert!(raw.windows(13).any(|w| w == b"Jobs\tProjects"));

        // Non-ASCII names are modified UTF-7 on disk, as Dovecot names them.
        account.create("Entwürfe", None).await.expect("utf8");
        let on_disk = match layout {
            FolderLayout::MaildirPlusPlus => root.join(".Entw&APw-rfe"),
            FolderLayout::Fs => root.join("Entw&APw-rfe"),
        };
        assert!(on_disk.join("cur").is_dir());
        assert!(names(account.list().await.expect("list")).contains(&"Entwürfe".to_owned()));
    }
}

#[tokio::test]
async fn two_handles_see_each_others_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    // Two MailStores stand for two server processes; one MailStore shares its Folder.
    let one = MailStore::new(&delivery);
    let two = MailStore::new(&delivery);
    let a = one
        .open_account(&root, FolderLayout::MaildirPlusPlus, None)
        .await
        .expect("a");
    let b = two
        .open_account(&root, FolderLayout::MaildirPlusPlus, None)
        .await
        .expect("b");
    let a_inbox = a.open("INBOX").await.expect("a inbox");
    let same = a.open("inbox").await.expect("same");
    assert!(
        Arc::ptr_eq(&a_inbox, &same),
        "one Folder per mailbox per MailStore"
    );
    let b_inbox = b.open("INBOX").await.expect("b inbox");
    assert!(!Arc::ptr_eq(&a_inbox, &b_inbox));

    let uid1 = a_inbox
        .append(MESSAGE, SystemFlags::empty(), &[], Some(1_600_000_000))
        .await
        .expect("append");
    let uid2 = a_inbox
        .append(MESSAGE, SystemFlags::DRAFT, &["$Work".to_owned()], None)
        .await
        .expect("append");
    assert_eq!(uid2, uid1 + 1);
    let before = a_inbox.snapshot().highest_modseq;
    let res = a_inbox
        .store(
            &[uid1],
            FlagOperation::Add,
            SystemFlags::SEEN.union(SystemFlags::FLAGGED),
            &["Todo".to_owned()],
            None,
        )
        .await
        .expect("store");
    assert_eq!(res.updated, [uid1]);
    let snap = a_inbox.snapshot();
    assert!(snap.highest_modseq > before);
    assert_eq!(snap.messages[0].internal_date, 1_600_000_000);
    assert_eq!(snap.messages[0].rfc822_size, MESSAGE.len() as u64);

    let seen = b_inbox.sync().await.expect("sync b");
    assert_eq!(seen.uid_validity, snap.uid_validity);
    let uids: Vec<u32> = seen.messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [uid1, uid2]);
    let m1 = seen.messages[seen.position(uid1).expect("uid1")];
    assert!(m1.flags.contains(SystemFlags::SEEN) && m1.flags.contains(SystemFlags::FLAGGED));
    let names: Vec<&str> = (0..26)
        .filter(|bit| m1.keywords & (1 << bit) != 0)
        .map(|bit| seen.keywords[bit].as_str())
        .collect();
    assert_eq!(names, ["Todo"]);
    let m2 = seen.messages[seen.position(uid2).expect("uid2")];
    assert!(m2.flags.contains(SystemFlags::DRAFT));

    // UNCHANGEDSINCE: b's view of uid1 is older than a's last change there.
    let res = b_inbox
        .store(
            &[uid1, uid2],
            FlagOperation::Remove,
            SystemFlags::SEEN,
            &[],
            Some(m2.modseq),
        )
        .await
        .expect("conditional store");
    assert!(
        res.modified.contains(&uid1) || m1.modseq <= m2.modseq,
        "{res:?}"
    );
    let res = b_inbox
        .store(
            &[uid1],
            FlagOperation::Replace,
            SystemFlags::ANSWERED,
            &[],
            None,
        )
        .await
        .expect("replace");
    assert_eq!(res.updated, [uid1]);
    let seen_by_a = a_inbox.sync().await.expect("sync a");
    let m1 = seen_by_a.messages[seen_by_a.position(uid1).expect("uid1")];
    assert_eq!(m1.flags, SystemFlags::ANSWERED);
    assert_eq!(m1.keywords, 0);
    assert_eq!(
        a_inbox.read(uid1).await.expect("read").expect("present"),
        b"From: a@example.com\nSubject: hi\n\nHello\n"
    );

    // Copy and move keep flags and keywords by name.
    let sent = a.open("Sent").await.expect("Sent");
    let pairs = a_inbox.copy_to(&[uid2], &sent).await.expect("copy");
    assert_eq!(pairs.len(), 1);
    let copied = sent.snapshot();
    let m = copied.messages[copied.position(pairs[0].1).expect("copied")];
    assert!(m.flags.contains(SystemFlags::DRAFT));
    assert_eq!(
        copied.keywords[m.keywords.trailing_zeros() as usize],
        "$Work"
    );
    let moved = a_inbox.move_to(&[uid1], &sent).await.expect("move");
    assert_eq!(moved.len(), 1);
    assert!(a_inbox.snapshot().position(uid1).is_none());
    assert_eq!(a_inbox.vanished_since(0), [uid1]);
    assert_eq!(sent.snapshot().messages.len(), 2);
    assert!(a_inbox.read(uid1).await.expect("read").is_none());

    a_inbox.cache(uid2, CacheKey::Envelope, Arc::from(&b"env"[..]));
    assert_eq!(
        a_inbox.cached(uid2, CacheKey::Envelope).as_deref(),
        Some(&b"env"[..])
    );
    assert!(a_inbox.cached(uid2, CacheKey::Body).is_none());
}

#[tokio::test]
async fn keywords_stop_at_26() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mail = MailStore::new(&store(dir.path()));
    let account = mail
        .open_account(&dir.path().join("Maildir"), FolderLayout::Fs, None)
        .await
        .expect("open");
    let inbox = account.open("INBOX").await.expect("inbox");
    let uid = inbox
        .append(MESSAGE, SystemFlags::empty(), &[], None)
        .await
        .expect("append");
    let many: Vec<String> = (0..26).map(|i| format!("kw{i}")).collect();
    inbox
        .store(
            &[uid],
            FlagOperation::Add,
            SystemFlags::empty(),
            &many,
            None,
        )
        .await
        .expect("26 fit");
    let err = inbox
        .store(
            &[uid],
            FlagOperation::Add,
            SystemFlags::empty(),
            &["one-more".to_owned()],
            None,
        )
        .await
        .expect_err("27th");
    assert!(matches!(err, MailboxError::TooManyKeywords(_)), "{err}");
    let err = inbox
        .store(
            &[uid],
            FlagOperation::Add,
            SystemFlags::empty(),
            &["bad word".to_owned()],
            None,
        )
        .await
        .expect_err("invalid");
    assert!(matches!(err, MailboxError::InvalidKeyword(_)), "{err}");
    let snap = inbox.snapshot();
    assert_eq!(snap.messages[0].keywords, (1 << 26) - 1);
    let keywords = fs::read_to_string(dir.path().join("Maildir/dovecot-keywords")).expect("file");
    assert!(keywords.starts_with("0 kw0\n1 kw1\n"), "{keywords}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uids_are_never_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    let mut tasks = Vec::new();
    for process in 0..3 {
        let mail = MailStore::new(&delivery);
        let root = root.clone();
        let delivery = delivery.clone();
        tasks.push(tokio::spawn(async move {
            let account = mail
                .open_account(&root, FolderLayout::MaildirPlusPlus, None)
                .await
                .expect("open");
            let inbox = account.open("INBOX").await.expect("inbox");
            let mut uids = Vec::new();
            for n in 0..15 {
                let uid = inbox
                    .append(MESSAGE, SystemFlags::DELETED, &[], None)
                    .await
                    .expect("append");
                uids.push(uid);
                deliver(&delivery, &root, &format!("{process}/{n}")).await;
                if n % 4 == 0 {
                    inbox.expunge(None).await.expect("expunge");
                }
                inbox.sync().await.expect("sync");
            }
            let snapshot = inbox.sync().await.expect("sync");
            (uids, snapshot.uid_validity)
        }));
    }
    let mut all = HashSet::new();
    let mut validity = HashSet::new();
    for task in tasks {
        let (uids, uid_validity) = task.await.expect("task");
        validity.insert(uid_validity);
        for uid in uids {
            assert!(all.insert(uid), "uid {uid} given twice");
        }
    }
    assert_eq!(validity.len(), 1);
    assert_eq!(all.len(), 45);

    // A fresh process sees every delivery with a UID no append got, and all distinct.
    let mail = MailStore::new(&delivery);
    let account = mail
        .open_account(&root, FolderLayout::MaildirPlusPlus, None)
        .await
        .expect("open");
    let inbox = account.open("INBOX").await.expect("inbox");
    let snap = inbox.sync().await.expect("sync");
    let delivered: Vec<u32> = snap
        .messages
        .iter()
        .filter(|m| !m.flags.contains(SystemFlags::DELETED))
        .map(|m| m.uid)
        .collect();
    assert_eq!(delivered.len(), 45);
    for uid in &delivered {
        assert!(!all.contains(uid), "delivery got append's uid {uid}");
    }
    let mut removed = inbox.expunge(None).await.expect("expunge rest");
    let mut last_next = inbox.snapshot().uid_next;
    drop(inbox);
    drop(account);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Expunged messages never come back: warm index, then without it.
    for remove_index in [false, true] {
        if remove_index {
            let _ = fs::remove_file(root.join("mailstead.index"));
        }
        let mail = MailStore::new(&delivery);
        let account = mail
            .open_account(&root, FolderLayout::MaildirPlusPlus, None)
            .await
            .expect("open");
        let inbox = account.open("INBOX").await.expect("inbox");
        let snap = inbox.snapshot();
        assert_eq!(snap.messages.len(), 45);
        assert_eq!(snap.uid_next, last_next);
        for uid in all.iter().chain(&removed) {
            assert!(snap.position(*uid).is_none(), "expunged uid {uid} is back");
        }
        let next = inbox
            .append(MESSAGE, SystemFlags::empty(), &[], None)
            .await
            .expect("append");
        assert!(next >= last_next);
        inbox
            .store(&[next], FlagOperation::Add, SystemFlags::DELETED, &[], None)
            .await
            .expect("flag");
        assert_eq!(inbox.expunge(Some(&[next])).await.expect("expunge"), [next]);
        removed.push(next);
        last_next = inbox.snapshot().uid_next;
        drop(inbox);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn delivery_wakes_idle_and_modseq_only_grows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    let mail = MailStore::new(&delivery);
    let account = mail
        .open_account(&root, FolderLayout::MaildirPlusPlus, Some(1 << 20))
        .await
        .expect("open");
    let inbox = account.open("INBOX").await.expect("inbox");
    let mut changes = inbox.changes();
    changes.borrow_and_update();
    let first = inbox.claim_recent(inbox.snapshot().uid_next);
    deliver(&delivery, &root, "wake up").await;
    // Woken by the delivery's notification, not by a periodic re-scan (which this test
    // never runs); the bound only keeps a broken notifier from hanging the test.
    tokio::time::timeout(Duration::from_secs(30), changes.changed())
        .await
        .expect("woken by the delivery")
        .expect("sender alive");
    let snap = inbox.sync().await.expect("sync");
    assert_eq!(snap.messages.len(), 1);
    let uid = snap.messages[0].uid;
    assert!(uid >= first);
    // Recent for exactly one claimer.
    assert!(inbox.claim_recent(snap.uid_next) <= uid);
    assert!(inbox.claim_recent(snap.uid_next) > uid);
    assert!(
        fs::read_dir(root.join("new"))
            .expect("new")
            .next()
            .is_none(),
        "moved to cur/"
    );

    // A change made behind our back (as Dovecot would) is picked up and gets a new modseq.
    let cur = root.join("cur");
    let name = fs::read_dir(&cur)
        .expect("cur")
        .next()
        .expect("one")
        .expect("entry")
        .file_name();
    let name = name.to_string_lossy().into_owned();
    fs::rename(cur.join(&name), cur.join(format!("{}S", name))).expect("rename");
    let after = inbox.sync().await.expect("sync");
    assert!(after.messages[0].flags.contains(SystemFlags::SEEN));
    assert!(after.highest_modseq > snap.highest_modseq);
    assert!(after.messages[0].modseq > snap.messages[0].modseq);

    let usage = account.quota_usage().await.expect("usage");
    assert_eq!(usage.messages, 1);
    assert_eq!(usage.limit_bytes, Some(1 << 20));
    assert!(matches!(
        inbox
            .append(&vec![b'x'; 1 << 20], SystemFlags::empty(), &[], None)
            .await,
        Err(MailboxError::OverQuota { .. })
    ));
}

#[tokio::test]
async fn damaged_files_are_survived() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    for n in 0..3 {
        deliver(&delivery, &root, &format!("m{n}")).await;
    }
    {
        let mail = MailStore::new(&delivery);
        let account = mail
            .open_account(&root, FolderLayout::MaildirPlusPlus, None)
            .await
            .expect("open");
        let inbox = account.open("INBOX").await.expect("inbox");
        assert_eq!(inbox.snapshot().messages.len(), 3);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A garbage index is ignored; a garbage keywords file is ignored.
    fs::write(
        root.join("mailstead.index"),
        b"MSTIDX\r\n\x01\x00\x00\x00garbage",
    )
    .expect("write");
    fs::write(
        root.join("dovecot-keywords"),
        b"\xff\x00 0\n99999999999999999999 x\n",
    )
    .expect("write");
    let mail = MailStore::new(&delivery);
    let account = mail
        .open_account(&root, FolderLayout::MaildirPlusPlus, None)
        .await
        .expect("open");
    let inbox = account.open("INBOX").await.expect("inbox");
    let snap = inbox.snapshot();
    let uids: Vec<u32> = snap.messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [1, 2, 3]);
    drop(inbox);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A garbage uidlist: new UIDVALIDITY, every message numbered again, nothing lost.
    fs::write(root.join("dovecot-uidlist"), b"3 V\xff N--\n1 :x\n").expect("write");
    let mail = MailStore::new(&delivery);
    let account = mail
        .open_account(&root, FolderLayout::MaildirPlusPlus, None)
        .await
        .expect("open");
    let inbox = account.open("INBOX").await.expect("inbox");
    assert_eq!(inbox.sync().await.expect("sync").messages.len(), 3);
}
