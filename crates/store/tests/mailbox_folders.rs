//! The IMAP-facing Maildir store on its own: folders, UIDs across handles and processes,
//! flags, keywords, expunge, delivery wake-ups, the index.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mailstead_store::QuotaLimit;
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
        .deliver(maildir, QuotaLimit::UNLIMITED, None)
        .await
        .expect("deliver");
}

#[tokio::test]
async fn folders_are_created_listed_renamed_deleted() {
    for layout in [FolderLayout::MaildirPlusPlus, FolderLayout::Fs] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("Maildir");
        let mail = MailStore::new(&store(dir.path()));
        let account = mail
            .open_account(&root, layout, QuotaLimit::UNLIMITED)
            .await
            .expect("open");
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
        // A sibling that sorts between a folder and its children ('-' < '/') hides nothing,
        // and a name that only starts like a folder's is not its child.
        account.create("Work-old", None).await.expect("create");
        account.create("Workshop", None).await.expect("create");
        let list = account.list().await.expect("list");
        assert!(list.iter().any(|f| f.name == "Work" && f.has_children));
        assert!(list.iter().any(|f| f.name == "Work-old" && !f.has_children));
        assert!(list.iter().any(|f| f.name == "Workshop" && !f.has_children));
        account.delete("Work-old").await.expect("delete");
        account.delete("Workshop").await.expect("delete");
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
            .open_account(&root, layout, QuotaLimit::UNLIMITED)
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

        // Names are modified UTF-7, as the client sent them and as Dovecot names the
        // directory.
        account.create("Entw&APw-rfe", None).await.expect("mutf7");
        let on_disk = match layout {
            FolderLayout::MaildirPlusPlus => root.join(".Entw&APw-rfe"),
            FolderLayout::Fs => root.join("Entw&APw-rfe"),
        };
        assert!(on_disk.join("cur").is_dir());
        assert!(names(account.list().await.expect("list")).contains(&"Entw&APw-rfe".to_owned()));
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
        .open_account(&root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
        .await
        .expect("a");
    let b = two
        .open_account(&root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
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
    assert_eq!(snap.messages[0].rfc822_size, Some(MESSAGE.len() as u64));

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
    // Many at once: each UID's value in turn, `None` for a key or message with none.
    assert_eq!(
        a_inbox.cached_each(&[uid2, uid1, uid2], CacheKey::Envelope),
        [
            Some(Arc::from(&b"env"[..])),
            None,
            Some(Arc::from(&b"env"[..]))
        ]
    );
    assert_eq!(a_inbox.cached_each(&[uid2], CacheKey::Body), [None]);
}

#[tokio::test]
async fn keywords_stop_at_26() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mail = MailStore::new(&store(dir.path()));
    let account = mail
        .open_account(
            &dir.path().join("Maildir"),
            FolderLayout::Fs,
            QuotaLimit::UNLIMITED,
        )
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
                .open_account(&root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
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
        .open_account(&root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
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
            .open_account(&root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
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
        .open_account(
            &root,
            FolderLayout::MaildirPlusPlus,
            QuotaLimit::bytes(Some(1 << 20)),
        )
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
            .open_account(&root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
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
        .open_account(&root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
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
        .open_account(&root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
        .await
        .expect("open");
    let inbox = account.open("INBOX").await.expect("inbox");
    assert_eq!(inbox.sync().await.expect("sync").messages.len(), 3);
}

// ---- Hardening: control-file names, the uidlist lock, depth and length, symbolic links ----

fn levels(n: usize) -> String {
    (0..n)
        .map(|level| format!("L{level}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// `CREATE "dovecot-uidlist.lock"` used to put a directory where Dovecot's lock file goes,
/// and every later sync of that folder spun forever trying to take the lock.
#[tokio::test]
async fn folder_names_of_control_files_are_refused() {
    for layout in [FolderLayout::MaildirPlusPlus, FolderLayout::Fs] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("Maildir");
        let mail = MailStore::new(&store(dir.path()));
        let account = mail
            .open_account(&root, layout, QuotaLimit::UNLIMITED)
            .await
            .expect("open");
        account.create("Work", None).await.expect("Work");
        for name in [
            "dovecot-uidlist.lock",
            "dovecot-uidlist",
            "dovecot-keywords",
            "dovecot.index.log",
            "maildirsize",
            "subscriptions",
            "mailstead.index",
            "Work/dovecot-uidlist.lock",
            "Work/x.lock",
        ] {
            let err = account.create(name, None).await.expect_err(name);
            assert!(
                matches!(err, MailboxError::InvalidName { .. }),
                "{name} {layout:?}: {err}"
            );
            let err = account.rename("Work", name).await.expect_err(name);
            assert!(matches!(err, MailboxError::InvalidName { .. }), "{err}");
            let err = account.set_subscribed(name, true).await.expect_err(name);
            assert!(matches!(err, MailboxError::InvalidName { .. }), "{err}");
            let Err(err) = account.open(name).await else {
                panic!("{name} opened");
            };
            assert!(matches!(err, MailboxError::InvalidName { .. }), "{err}");
        }
        if layout == FolderLayout::Fs {
            for name in ["cur", "Work/new", "tmp"] {
                let err = account.create(name, None).await.expect_err(name);
                assert!(matches!(err, MailboxError::InvalidName { .. }), "{err}");
            }
        }
        // Nothing was made, and the folders still take messages.
        let work = account.open("Work").await.expect("Work");
        work.append(MESSAGE, SystemFlags::empty(), &[], None)
            .await
            .expect("append");
        let inbox = account.open("INBOX").await.expect("INBOX");
        inbox
            .append(MESSAGE, SystemFlags::empty(), &[], None)
            .await
            .expect("append");
        assert!(!root.join("dovecot-uidlist.lock").exists());
        assert!(!root.join("Work/dovecot-uidlist.lock").exists());
    }
}

/// A directory left where the lock goes (by the old CREATE) is an error at once, not a
/// wait: the old loop spun at 100 % CPU forever once the directory was two minutes old.
#[tokio::test]
async fn a_directory_at_the_lock_path_fails_the_command_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    let mail = MailStore::new(&delivery);
    let account = mail
        .open_account(&root, FolderLayout::Fs, QuotaLimit::UNLIMITED)
        .await
        .expect("open");
    let lock = root.join("dovecot-uidlist.lock");
    for sub in ["", "cur", "new", "tmp"] {
        fs::create_dir_all(lock.join(sub)).expect("mkdir");
    }
    let old = std::time::SystemTime::now() - Duration::from_secs(600);
    fs::File::open(&lock)
        .and_then(|file| file.set_modified(old))
        .expect("mtime");
    deliver(&delivery, &root, "m1").await;
    let Err(err) = account.open("INBOX").await else {
        panic!("opened under a blocked lock");
    };
    assert!(matches!(err, MailboxError::Io { .. }), "{err}");
    assert!(err.to_string().contains("not a regular file"), "{err}");
    // Not a folder either: the list does not show it.
    let names: Vec<String> = account
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert!(!names.iter().any(|n| n.contains("lock")), "{names:?}");
    // Once it is gone, the folder works again and the message is there.
    fs::remove_dir_all(&lock).expect("rm");
    let inbox = account.open("INBOX").await.expect("INBOX");
    assert_eq!(inbox.snapshot().messages.len(), 1);
}

/// The quota scan used to stop at 16 levels while folders could be 32 deep: mail in the
/// deeper ones was never counted. One limit now holds for create, list and the scan.
#[tokio::test]
async fn every_folder_that_takes_mail_is_counted_in_the_quota() {
    for layout in [FolderLayout::Fs, FolderLayout::MaildirPlusPlus] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("Maildir");
        let mail = MailStore::new(&store(dir.path()));
        let account = mail
            .open_account(&root, layout, QuotaLimit::bytes(Some(1 << 20)))
            .await
            .expect("open");
        let deepest = levels(20);
        account.create(&deepest, None).await.expect("20 levels");
        let folder = account.open(&deepest).await.expect("open deepest");
        folder
            .append(MESSAGE, SystemFlags::empty(), &[], None)
            .await
            .expect("append");
        let stored = fs::metadata(
            fs::read_dir(account_dir(&root, layout, &deepest).join("cur"))
                .expect("cur")
                .next()
                .expect("a file")
                .expect("entry")
                .path(),
        )
        .expect("stat")
        .len();
        // Recalculated from the files: the message is there.
        fs::remove_file(root.join("maildirsize")).expect("rm maildirsize");
        let usage = account.quota_usage().await.expect("usage");
        assert_eq!((usage.bytes, usage.messages), (stored, 1), "{layout:?}");
        let err = account
            .create(&levels(21), None)
            .await
            .expect_err("21 levels");
        assert!(
            matches!(err, MailboxError::InvalidName { reason, .. } if reason.contains("20 hierarchy levels")),
            "{err}"
        );
        let err = account
            .rename(&deepest, &format!("{deepest}/X"))
            .await
            .expect_err("below itself and too deep");
        assert!(matches!(err, MailboxError::InvalidName { .. }), "{err}");
        // A rename that would push a child past the limit is refused whole.
        account.create("Top", None).await.expect("Top");
        let err = account
            .rename("L0", "Top/L0")
            .await
            .expect_err("child too deep");
        assert!(matches!(err, MailboxError::InvalidName { .. }), "{err}");
        assert!(
            account
                .list()
                .await
                .expect("list")
                .iter()
                .any(|f| f.name == deepest),
            "{layout:?}"
        );
    }
}

fn account_dir(root: &Path, layout: FolderLayout, name: &str) -> std::path::PathBuf {
    match layout {
        FolderLayout::Fs => root.join(name),
        FolderLayout::MaildirPlusPlus => root.join(format!(".{}", name.replace('/', "."))),
    }
}

/// Names of 256 to 1000 bytes used to fail with an I/O error (`[SERVERBUG]` in IMAP).
#[tokio::test]
async fn over_long_names_are_refused_cleanly() {
    for layout in [FolderLayout::MaildirPlusPlus, FolderLayout::Fs] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("Maildir");
        let mail = MailStore::new(&store(dir.path()));
        let account = mail
            .open_account(&root, layout, QuotaLimit::UNLIMITED)
            .await
            .expect("open");
        let three_levels = ["y".repeat(100), "y".repeat(100), "y".repeat(100)].join("/");
        for name in [
            "x".repeat(256),
            "x".repeat(1000),
            format!("Work/{}", "z".repeat(300)),
            "é".repeat(150),
        ] {
            let err = account.create(&name, None).await.expect_err("too long");
            assert!(
                matches!(&err, MailboxError::InvalidName { reason, .. } if reason.contains("255 bytes")),
                "{layout:?} {}: {err}",
                name.len()
            );
            let err = account.rename("Sent", &name).await.expect_err("too long");
            assert!(matches!(err, MailboxError::InvalidName { .. }), "{err}");
        }
        let err = account
            .create(&"w".repeat(1001), None)
            .await
            .expect_err("too long");
        assert!(
            matches!(&err, MailboxError::InvalidName { reason, .. } if reason.contains("1000 bytes")),
            "{err}"
        );
        match layout {
            // Levels of 100 bytes are fine apart; together they are one name on disk.
            FolderLayout::Fs => account.create(&three_levels, None).await.expect("fs"),
            FolderLayout::MaildirPlusPlus => {
                let err = account
                    .create(&three_levels, None)
                    .await
                    .expect_err("one name");
                assert!(matches!(err, MailboxError::InvalidName { .. }), "{err}");
            }
        }
    }
}

/// A folder that is a symbolic link (to `/etc`, to another user's Maildir) is no folder:
/// not listed, not opened, not deleted or renamed through, not counted, not cleaned.
#[tokio::test]
async fn symlinked_folders_are_not_followed() {
    for layout in [FolderLayout::MaildirPlusPlus, FolderLayout::Fs] {
        let dir = tempfile::tempdir().expect("tempdir");
        let delivery = store(dir.path());
        let victim = dir.path().join("victim/Maildir");
        deliver(&delivery, &victim, "secret").await;
        let root = dir.path().join("attacker/Maildir");
        let mail = MailStore::new(&delivery);
        let account = mail
            .open_account(&root, layout, QuotaLimit::bytes(Some(1 << 20)))
            .await
            .expect("open");
        let (evil, parent) = match layout {
            FolderLayout::MaildirPlusPlus => (root.join(".Evil"), root.join(".Up")),
            FolderLayout::Fs => (root.join("Evil"), root.join("Up")),
        };
        std::os::unix::fs::symlink(&victim, &evil).expect("symlink");
        // LAYOUT=fs: a parent level that is a link to a directory holding folders.
        std::os::unix::fs::symlink(victim.parent().expect("parent"), &parent).expect("symlink");

        let names: Vec<String> = account
            .list()
            .await
            .expect("list")
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("Evil") || n.starts_with("Up")),
            "{names:?}"
        );
        assert!(matches!(
            account.open("Evil").await,
            Err(MailboxError::NotFound(_))
        ));
        if layout == FolderLayout::Fs {
            assert!(matches!(
                account.open("Up/Maildir").await,
                Err(MailboxError::NotFound(_))
            ));
            assert!(account.create("Up/New", None).await.is_err());
            assert!(!victim.parent().expect("parent").join("New").exists());
        }
        assert!(matches!(
            account.delete("Evil").await,
            Err(MailboxError::NotFound(_))
        ));
        assert!(matches!(
            account.rename("Evil", "Mine").await,
            Err(MailboxError::NotFound(_))
        ));
        assert!(account.create("Evil", None).await.is_err());
        let usage = account.quota_usage().await.expect("usage");
        assert_eq!(usage.messages, 0);
        // The victim's message is where it was.
        assert_eq!(fs::read_dir(victim.join("new")).expect("new").count(), 1);

        // tmp/ as a link: the cleaner refuses it instead of deleting files where it points.
        let tmp = root.join("tmp");
        fs::remove_dir(&tmp).expect("rmdir tmp");
        std::os::unix::fs::symlink(victim.join("new"), &tmp).expect("symlink");
        let later = std::time::SystemTime::now() + Duration::from_secs(3600);
        assert!(
            mailstead_store::clean_maildir_tmp(&root, later)
                .await
                .is_err()
        );
        assert_eq!(fs::read_dir(victim.join("new")).expect("new").count(), 1);
    }
}

/// A message file that is a symbolic link (to another user's mail, to a system file) gets
/// no UID and is never read.
#[tokio::test]
async fn symlinked_message_files_are_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let delivery = store(dir.path());
    let victim = dir.path().join("victim/Maildir");
    deliver(&delivery, &victim, "secret").await;
    let secret = fs::read_dir(victim.join("new"))
        .expect("new")
        .next()
        .expect("one")
        .expect("entry")
        .path();
    let root = dir.path().join("attacker/Maildir");
    deliver(&delivery, &root, "own").await;
    std::os::unix::fs::symlink(&secret, root.join("cur/1.M1P1Q1.evil,S=10:2,")).expect("link");
    std::os::unix::fs::symlink(&secret, root.join("new/2.M1P1Q2.evil")).expect("link");
    let mail = MailStore::new(&delivery);
    let account = mail
        .open_account(&root, FolderLayout::Fs, QuotaLimit::UNLIMITED)
        .await
        .expect("open");
    let inbox = account.open("INBOX").await.expect("INBOX");
    let snapshot = inbox.snapshot();
    assert_eq!(snapshot.messages.len(), 1);
    let own = inbox
        .read(snapshot.messages[0].uid)
        .await
        .expect("read")
        .expect("there");
    assert!(String::from_utf8_lossy(&own).contains("own"));
}

/// UIDVALIDITY is unique per account and never comes back for a name: the five folders of a
/// new account (made in one second) differ, and a name deleted and made again, or taken by
/// a rename, never shows an earlier folder's value.
#[tokio::test]
async fn uidvalidity_is_unique_per_account_and_never_reused() {
    for layout in [FolderLayout::MaildirPlusPlus, FolderLayout::Fs] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("Maildir");
        let mail = MailStore::new(&store(dir.path()));
        let account = mail
            .open_account(&root, layout, QuotaLimit::UNLIMITED)
            .await
            .expect("open");
        let validity = |name: &'static str| {
            let account = account.clone();
            async move {
                account
                    .open(name)
                    .await
                    .expect("open")
                    .snapshot()
                    .uid_validity
            }
        };
        let mut seen = HashSet::new();
        for name in ["INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"] {
            assert!(seen.insert(validity(name).await), "{name} repeats a value");
        }
        let old_trash = validity("Trash").await;
        let junk = validity("Junk").await;

        account.delete("Sent").await.expect("delete");
        account.create("Sent", None).await.expect("create");
        assert!(seen.insert(validity("Sent").await), "Sent got an old value");

        account.delete("Trash").await.expect("delete");
        account.rename("Junk", "Trash").await.expect("rename");
        let new_trash = validity("Trash").await;
        assert_ne!(new_trash, old_trash);
        assert_eq!(new_trash, junk, "a renamed folder keeps its messages' UIDs");
        account.create("Junk", None).await.expect("create");
        assert!(seen.insert(validity("Junk").await), "Junk got an old value");
    }
}

/// Folder names are modified UTF-7 as the client sent them, and that is the directory name,
/// as Dovecot keeps it: a folder Dovecot made and one Mailstead made are the same directory,
/// and `&` is never escaped a second time.
#[tokio::test]
async fn mutf7_names_are_the_directory_names_dovecot_uses() {
    for layout in [FolderLayout::MaildirPlusPlus, FolderLayout::Fs] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("Maildir");
        let mail = MailStore::new(&store(dir.path()));
        let account = mail
            .open_account(&root, layout, QuotaLimit::UNLIMITED)
            .await
            .expect("open");
        let disk = |name: &str| match layout {
            FolderLayout::MaildirPlusPlus => root.join(format!(".{name}")),
            FolderLayout::Fs => root.join(name),
        };
        account.create("Entw&APw-rfe", None).await.expect("create");
        account.create("x&-y", None).await.expect("create");
        assert!(disk("Entw&APw-rfe").join("cur").is_dir());
        assert!(disk("x&-y").join("cur").is_dir());
        // Made by Dovecot: a directory named as the client sent the name.
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(disk("Gel&APY-scht").join(sub)).expect("mkdir");
        }
        let names: Vec<String> = account
            .list()
            .await
            .expect("list")
            .into_iter()
            .map(|f| f.name)
            .collect();
        for name in ["Entw&APw-rfe", "x&-y", "Gel&APY-scht"] {
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
        }
        account.open("Gel&APY-scht").await.expect("open Dovecot's");
        assert!(matches!(
            account.create("Gel&APY-scht", None).await,
            Err(MailboxError::AlreadyExists(_))
        ));
    }
}

/// Directories an earlier Mailstead named with the name encoded twice are renamed once to
/// the name Dovecot uses; Dovecot's own directories are left alone.
#[tokio::test]
async fn doubly_encoded_directories_are_renamed_once() {
    for layout in [FolderLayout::MaildirPlusPlus, FolderLayout::Fs] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("Maildir");
        let disk = |name: &str| match layout {
            FolderLayout::MaildirPlusPlus => root.join(format!(".{name}")),
            FolderLayout::Fs => root.join(name),
        };
        for name in ["Entw&-APw-rfe", "x&--y", "A&-B"] {
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(disk(name).join(sub)).expect("mkdir");
            }
        }
        // Opened by an earlier Mailstead.
        fs::write(root.join("mailstead-defaults"), "1\n").expect("marker");
        let mail = MailStore::new(&store(dir.path()));
        let account = mail
            .open_account(&root, layout, QuotaLimit::UNLIMITED)
            .await
            .expect("open");
        let names: Vec<String> = account
            .list()
            .await
            .expect("list")
            .into_iter()
            .map(|f| f.name)
            .collect();
        for name in ["Entw&APw-rfe", "x&-y", "A&-B"] {
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
            assert!(disk(name).join("cur").is_dir(), "{name}");
        }
        assert!(!disk("Entw&-APw-rfe").exists());
    }
}

/// Two messages delivered to a new INBOX and claimed `\Recent` by a first `MailStore`,
/// which is returned with the folder kept open by it (its handles dropped).
async fn two_messages_claimed_recent(delivery: &Store, root: &Path) -> MailStore {
    deliver(delivery, root, "one").await;
    deliver(delivery, root, "two").await;
    let mail = MailStore::new(delivery);
    let account = mail
        .open_account(root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
        .await
        .expect("open");
    let inbox = account.open("INBOX").await.expect("inbox");
    let snapshot = inbox.snapshot();
    assert_eq!(snapshot.messages.len(), 2);
    assert_eq!(inbox.claim_recent(snapshot.uid_next), 1, "both recent here");
    mail
}

/// The first message still `\Recent` for a new process opening the INBOX at `root`.
async fn recent_from_in_a_new_process(delivery: &Store, root: &Path) -> u32 {
    let mail = MailStore::new(delivery);
    let account = mail
        .open_account(root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
        .await
        .expect("open");
    account.open("INBOX").await.expect("inbox").recent_from()
}

#[tokio::test]
async fn a_recent_claim_outlives_the_process_that_made_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    drop(two_messages_claimed_recent(&delivery, &root).await);
    // The first process is gone (its index written on the way out); a second one opens the
    // folder: the messages were seen already, so they are no longer recent.
    let mut first_recent = 0;
    for _ in 0..200 {
        first_recent = recent_from_in_a_new_process(&delivery, &root).await;
        if first_recent == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(first_recent, 3, "nothing recent for the second process");
}

#[tokio::test]
async fn a_kept_folder_takes_a_changed_quota_once_no_session_holds_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let mail = MailStore::new(&store(dir.path()));
    let unlimited = mail
        .open_account(&root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
        .await
        .expect("open");
    // Kept open after this handle goes.
    drop(unlimited.open("INBOX").await.expect("inbox"));
    let limited = mail
        .open_account(
            &root,
            FolderLayout::MaildirPlusPlus,
            QuotaLimit::bytes(Some(10)),
        )
        .await
        .expect("open");
    let mut refused = false;
    for _ in 0..200 {
        let inbox = limited.open("INBOX").await.expect("inbox");
        let res = inbox.append(MESSAGE, SystemFlags::empty(), &[], None).await;
        if matches!(res, Err(MailboxError::OverQuota { .. })) {
            refused = true;
            break;
        }
        drop(inbox);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the 10-byte quota applies");
}

/// A folder kept open after its last session writes its index when the server stops
/// (`MailStore::flush`), so what only the index holds (here a `\Recent` claim) is there for the
/// next process even though the folder never left the cache.
#[tokio::test]
async fn flush_writes_what_kept_folders_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    let mail = two_messages_claimed_recent(&delivery, &root).await;
    // Still kept by `mail`: stopping writes it.
    mail.flush().await;
    assert_eq!(
        recent_from_in_a_new_process(&delivery, &root).await,
        3,
        "the claim was written"
    );
    drop(mail);
}
