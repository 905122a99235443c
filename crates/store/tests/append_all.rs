//! Several messages appended at once (MULTIAPPEND), removal whatever the flags (REPLACE),
//! and the ids and dates a message keeps (OBJECTID, SAVEDATE).

use std::fs;
use std::path::Path;
use std::sync::Arc;

use mailstead_store::{
    FlagOperation, Folder, FolderLayout, MailStore, MailboxError, NewMessage, QuotaLimit, Store,
    SystemFlags,
};

const MESSAGE: &[u8] = b"From: a@example.com\r\nSubject: hi\r\n\r\nHello\r\n";

fn store(dir: &Path) -> Store {
    Store::new("mx.example.com", dir.join("spool")).expect("store")
}

async fn open(mail: &MailStore, root: &Path, limit: QuotaLimit, name: &str) -> Arc<Folder> {
    let account = mail
        .open_account(root, FolderLayout::MaildirPlusPlus, limit)
        .await
        .expect("open account");
    if name != "INBOX" {
        let _ = account.create(name, None).await;
    }
    account.open(name).await.expect("open folder")
}

fn bytes(message: &[u8]) -> NewMessage {
    NewMessage::bytes(message.to_vec(), SystemFlags::empty(), &[], None)
}

fn files_in_cur(root: &Path) -> usize {
    fs::read_dir(root.join("cur")).expect("cur").count()
}

fn uidlist_records(root: &Path) -> usize {
    let text = fs::read_to_string(root.join("dovecot-uidlist")).expect("uidlist");
    text.lines().skip(1).count()
}

#[tokio::test]
async fn messages_appended_together_get_ascending_uids_in_their_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let mail = MailStore::new(&store(dir.path()));
    let inbox = open(&mail, &root, QuotaLimit::UNLIMITED, "INBOX").await;
    let first = inbox
        .append(MESSAGE, SystemFlags::empty(), &[], None)
        .await
        .expect("append");
    let messages = vec![
        bytes(b"Subject: 1\r\n\r\none\r\n"),
        NewMessage::bytes(
            b"Subject: 2\r\n\r\ntwo\r\n".to_vec(),
            SystemFlags::SEEN,
            &["$Work".to_owned()],
            Some(1_000_000_000),
        ),
        bytes(b"Subject: 3\r\n\r\nthree\r\n"),
    ];
    let uids = inbox.append_all(messages).await.expect("append all");
    assert_eq!(uids, vec![first + 1, first + 2, first + 3]);
    for (uid, text) in uids.iter().zip(["one", "two", "three"]) {
        let stored = inbox.read(*uid).await.expect("read").expect("present");
        assert!(stored.ends_with(format!("{text}\n").as_bytes()));
    }
    let snapshot = inbox.snapshot();
    let second = snapshot.messages[snapshot.position(uids[1]).expect("there")];
    assert!(second.flags.contains(SystemFlags::SEEN));
    assert_eq!(second.internal_date, 1_000_000_000);
    assert_eq!(uidlist_records(&root), 4);
}

#[tokio::test]
async fn when_one_message_fails_none_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    let mail = MailStore::new(&delivery);
    let inbox = open(&mail, &root, QuotaLimit::UNLIMITED, "INBOX").await;

    // The second one's spool file is gone when its turn comes: the first was written already.
    let mut writer = mail.begin().await.expect("begin");
    writer.write_all(MESSAGE).await.expect("write");
    let spooled = writer.finish().await.expect("finish");
    let vanishing = NewMessage::spooled(&spooled, SystemFlags::empty(), &[], None);
    drop(spooled);
    let res = inbox
        .append_all(vec![bytes(MESSAGE), vanishing, bytes(MESSAGE)])
        .await;
    assert!(matches!(res, Err(MailboxError::Io { .. })), "{res:?}");
    assert_eq!(files_in_cur(&root), 0, "the first one's file was removed");
    assert!(inbox.snapshot().messages.is_empty());

    // A bad keyword on the last one: nothing is written.
    let bad = NewMessage::bytes(
        MESSAGE.to_vec(),
        SystemFlags::empty(),
        &["a(b".into()],
        None,
    );
    let res = inbox.append_all(vec![bytes(MESSAGE), bad]).await;
    assert!(
        matches!(res, Err(MailboxError::InvalidKeyword(_))),
        "{res:?}"
    );
    assert_eq!(files_in_cur(&root), 0);

    // Over quota counted for all of them together, though each alone would fit.
    let limited = dir.path().join("Limited");
    let small = open(
        &mail,
        &limited,
        QuotaLimit::bytes(Some(MESSAGE.len() as u64 + 10)),
        "INBOX",
    )
    .await;
    let res = small.append_all(vec![bytes(MESSAGE), bytes(MESSAGE)]).await;
    assert!(
        matches!(res, Err(MailboxError::OverQuota { .. })),
        "{res:?}"
    );
    assert_eq!(files_in_cur(&limited), 0);
    assert!(small.snapshot().messages.is_empty());
    // Afterwards the folder takes messages as before.
    let uid = inbox
        .append(MESSAGE, SystemFlags::empty(), &[], None)
        .await
        .expect("append");
    assert_eq!(inbox.snapshot().messages.len(), 1);
    assert_eq!(inbox.snapshot().messages[0].uid, uid);
}

#[tokio::test]
async fn remove_takes_a_message_whatever_its_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let mail = MailStore::new(&store(dir.path()));
    let inbox = open(&mail, &root, QuotaLimit::UNLIMITED, "INBOX").await;
    let keep = inbox
        .append(MESSAGE, SystemFlags::empty(), &[], None)
        .await
        .expect("append");
    let gone = inbox
        .append(MESSAGE, SystemFlags::SEEN, &[], None)
        .await
        .expect("append");
    assert_eq!(inbox.remove(&[gone]).await.expect("remove"), vec![gone]);
    let uids: Vec<u32> = inbox.snapshot().messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, vec![keep]);
    assert_eq!(files_in_cur(&root), 1);
}

#[tokio::test]
async fn ids_and_save_dates_survive_flag_changes_and_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let (uid, email_id, save_date, mailbox_id) = {
        let mail = MailStore::new(&store(dir.path()));
        let inbox = open(&mail, &root, QuotaLimit::UNLIMITED, "INBOX").await;
        let before = time_now();
        // An old internal date: the save date is still now.
        let uid = inbox
            .append(MESSAGE, SystemFlags::empty(), &[], Some(1_000_000_000))
            .await
            .expect("append");
        let meta = inbox.snapshot().messages[0];
        assert!(meta.save_date >= before && meta.save_date <= time_now() + 1);
        assert_eq!(meta.internal_date, 1_000_000_000);
        inbox
            .store(&[uid], FlagOperation::Add, SystemFlags::FLAGGED, &[], None)
            .await
            .expect("store");
        let flagged = inbox.snapshot().messages[0];
        assert_eq!(
            (flagged.email_id, flagged.save_date),
            (meta.email_id, meta.save_date)
        );
        let mailbox_id = inbox.snapshot().mailbox_id.to_string();
        assert!(
            mailbox_id.starts_with('F') && mailbox_id.len() > 16,
            "{mailbox_id}"
        );
        assert!(mailbox_id.bytes().all(|b| b.is_ascii_alphanumeric()));
        inbox.sync().await.expect("sync");
        (uid, meta.email_id, meta.save_date, mailbox_id)
    };
    // Another process, reading the Maildir afresh (the index is removed too).
    let _ = fs::remove_file(root.join("mailstead.index"));
    let _ = fs::remove_file(root.join("mailstead.index.log"));
    let mail = MailStore::new(&store(dir.path()));
    let inbox = open(&mail, &root, QuotaLimit::UNLIMITED, "INBOX").await;
    let snapshot = inbox.sync().await.expect("sync");
    let meta = snapshot.messages[snapshot.position(uid).expect("there")];
    assert_eq!((meta.email_id, meta.save_date), (email_id, save_date));
    assert_eq!(&*snapshot.mailbox_id, mailbox_id);

    // A copy is a new message in its folder: a new EMAILID, saved now.
    let other = open(&mail, &root, QuotaLimit::UNLIMITED, "Other").await;
    let pairs = inbox.copy_to(&[uid], &other).await.expect("copy");
    let copied = other.snapshot();
    let copy = copied.messages[copied.position(pairs[0].1).expect("there")];
    assert_ne!(copy.email_id, email_id);
    assert_ne!(&*copied.mailbox_id, mailbox_id);
}

#[tokio::test]
async fn a_dovecot_folder_keeps_its_guid_as_mailbox_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(root.join(sub)).expect("mkdir");
    }
    fs::write(
        root.join("dovecot-uidlist"),
        "3 V1700000000 N5 G0123456789abcdef0123456789abcdef\n4 :1700000001.M1P2.host\n",
    )
    .expect("uidlist");
    fs::write(
        root.join("cur/1700000001.M1P2.host:2,S"),
        "Subject: x\n\nx\n",
    )
    .expect("message");
    let mail = MailStore::new(&store(dir.path()));
    let inbox = open(&mail, &root, QuotaLimit::UNLIMITED, "INBOX").await;
    let snapshot = inbox.sync().await.expect("sync");
    assert_eq!(&*snapshot.mailbox_id, "F0123456789abcdef0123456789abcdef");
    assert_eq!(snapshot.messages[0].uid, 4);
    assert_eq!(snapshot.messages[0].save_date, 1_700_000_001);
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
