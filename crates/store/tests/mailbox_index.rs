//! What a change costs on disk: `dovecot-uidlist` is appended to, not rewritten, and
//! `mailstead.index` takes changes in its log; sizes missing from file names are counted
//! only when asked for.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mailstead_store::{
    CacheKey, FlagOperation, Folder, FolderLayout, MailStore, QuotaLimit, Store, SystemFlags,
};

const MESSAGE: &[u8] = b"From: a@example.com\r\nSubject: hi\r\n\r\nHello\r\n";

fn store(dir: &Path) -> Store {
    Store::new("mx.example.com", dir.join("spool")).expect("store")
}

async fn open_inbox(mail: &MailStore, root: &Path) -> Arc<Folder> {
    let account = mail
        .open_account(root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
        .await
        .expect("open account");
    account.open("INBOX").await.expect("open INBOX")
}

async fn append(inbox: &Folder) -> u32 {
    inbox
        .append(MESSAGE, SystemFlags::empty(), &[], None)
        .await
        .expect("append")
}

async fn expunge(inbox: &Folder, uids: &[u32]) {
    inbox
        .store(uids, FlagOperation::Add, SystemFlags::DELETED, &[], None)
        .await
        .expect("flag");
    assert_eq!(inbox.expunge(Some(uids)).await.expect("expunge"), uids);
}

fn uidlist_uids(root: &Path) -> Vec<u32> {
    let text = fs::read_to_string(root.join("dovecot-uidlist")).expect("read uidlist");
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_once(' ')?.0.parse().ok())
        .collect()
}

#[tokio::test]
async fn new_messages_are_appended_to_the_uidlist_and_expunged_lines_wait_for_a_rewrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    let mail = MailStore::new(&delivery);
    let inbox = open_inbox(&mail, &root).await;
    let mut uids = Vec::new();
    for _ in 0..8 {
        uids.push(append(&inbox).await);
    }
    let path = root.join("dovecot-uidlist");
    let before = fs::read(&path).expect("read");
    let inode = fs::metadata(&path).expect("stat").ino();

    // One more message: its line is added, every earlier byte (the header too) stays.
    let uid = append(&inbox).await;
    uids.push(uid);
    let after = fs::read(&path).expect("read");
    assert!(after.starts_with(&before), "earlier bytes changed");
    let added = String::from_utf8_lossy(&after[before.len()..]).into_owned();
    assert!(
        added.starts_with(&format!("{uid} :")) && added.ends_with('\n'),
        "{added:?}"
    );
    assert_eq!(added.lines().count(), 1);
    assert_eq!(fs::metadata(&path).expect("stat").ino(), inode);

    // Two of nine expunged: their lines stay (Dovecot leaves them too).
    expunge(&inbox, &uids[..2]).await;
    assert_eq!(fs::read(&path).expect("read"), after);
    // A third: over a quarter of the lines name nothing, so the file is rewritten without.
    expunge(&inbox, &uids[2..3]).await;
    assert_eq!(uidlist_uids(&root), uids[3..]);

    // A new process without the index numbers the files as the uidlist says, and the next
    // message gets a UID never given before.
    drop(inbox);
    drop(mail);
    tokio::time::sleep(Duration::from_millis(100)).await;
    fs::remove_file(root.join("mailstead.index")).expect("remove index");
    let mail = MailStore::new(&delivery);
    let inbox = open_inbox(&mail, &root).await;
    let seen: Vec<u32> = inbox.snapshot().messages.iter().map(|m| m.uid).collect();
    assert_eq!(seen, uids[3..]);
    assert_eq!(append(&inbox).await, uid + 1);
}

#[tokio::test]
async fn a_uidlist_cut_in_the_middle_of_a_line_is_rewritten_not_appended_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    let mail = MailStore::new(&delivery);
    let inbox = open_inbox(&mail, &root).await;
    let first = append(&inbox).await;
    // Another writer died halfway through its line for a message that never arrived.
    let path = root.join("dovecot-uidlist");
    let mut bytes = fs::read(&path).expect("read");
    bytes.extend_from_slice(format!("{} :1700000000.M1P9Q1.el", first + 1).as_bytes());
    fs::write(&path, &bytes).expect("write");
    let second = append(&inbox).await;
    assert!(second > first + 1, "{second}");
    let text = fs::read_to_string(&path).expect("read");
    assert!(text.ends_with('\n'), "{text:?}");
    assert!(
        text.lines()
            .any(|line| line.starts_with(&format!("{second} :"))),
        "{text:?}"
    );
    assert_eq!(uidlist_uids(&root).last(), Some(&second));
}

/// Another writer rewrote the uidlist (its highest UID expunged, so the file no longer names
/// it) and the rewrite happens to keep the file's inode, length and modification time: a
/// file identity unchanged proves nothing, the header's next UID still has to be obeyed.
#[tokio::test]
async fn a_rewritten_uidlist_that_looks_unchanged_still_raises_the_next_uid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    let mail = MailStore::new(&delivery);
    let inbox = open_inbox(&mail, &root).await;
    let first = append(&inbox).await;
    let path = root.join("dovecot-uidlist");
    let before = fs::read_to_string(&path).expect("read");
    let modified = fs::metadata(&path)
        .expect("stat")
        .modified()
        .expect("mtime");
    let (header, records) = before.split_once('\n').expect("header line");
    // UIDs up to first + 5 were given (and expunged) elsewhere: `N` says so. The same number
    // of bytes, written in place, with the old modification time put back.
    let next = first + 6;
    let mut fields: Vec<String> = header.split(' ').map(str::to_owned).collect();
    for field in &mut fields {
        if field.starts_with('N') {
            *field = format!("N{next}");
        }
    }
    let mut header = fields.join(" ");
    let width = before.len() - records.len() - 1;
    assert!(header.len() <= width, "{header:?}");
    while header.len() < width {
        header.push(' ');
    }
    let rewritten = format!("{header}\n{records}");
    assert_eq!(rewritten.len(), before.len());
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    std::io::Write::write_all(&mut &file, rewritten.as_bytes()).expect("write");
    file.set_modified(modified).expect("set mtime");
    drop(file);

    let second = append(&inbox).await;
    assert!(
        second >= next,
        "UID {second} may have been given elsewhere (N{next})"
    );
}

/// What a reopened folder must give back exactly.
#[derive(Debug, PartialEq)]
struct Seen {
    messages: Vec<mailstead_store::MessageMeta>,
    uid_next: u32,
    highest_modseq: u64,
    keywords: Vec<String>,
    vanished: Vec<u32>,
    envelopes: Vec<Option<Arc<[u8]>>>,
}

fn seen(inbox: &Folder, uids: &[u32]) -> Seen {
    let snapshot = inbox.snapshot();
    Seen {
        messages: snapshot.messages.clone(),
        uid_next: snapshot.uid_next,
        highest_modseq: snapshot.highest_modseq,
        keywords: snapshot.keywords.clone(),
        vanished: inbox.vanished_since(0),
        envelopes: uids
            .iter()
            .map(|&uid| inbox.cached(uid, CacheKey::Envelope))
            .collect(),
    }
}

#[tokio::test]
async fn changes_go_to_the_index_log_and_a_reopened_folder_replays_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = store(dir.path());
    let mail = MailStore::new(&delivery);
    let inbox = open_inbox(&mail, &root).await;
    let mut uids = Vec::new();
    for _ in 0..20 {
        uids.push(append(&inbox).await);
    }
    drop(inbox);
    drop(mail);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let index = root.join("mailstead.index");
    let log = root.join("mailstead.index.log");

    let mail = MailStore::new(&delivery);
    let inbox = open_inbox(&mail, &root).await;
    let snapshot_before = fs::metadata(&index).expect("index");
    let log_before = fs::metadata(&log).expect("log").len();
    inbox
        .store(
            &uids[..5],
            FlagOperation::Add,
            SystemFlags::FLAGGED,
            &["$Later".to_owned()],
            None,
        )
        .await
        .expect("store");
    inbox.cache(uids[6], CacheKey::Envelope, Arc::from(&b"(NIL)"[..]));
    inbox.cache(uids[7], CacheKey::Envelope, Arc::from(&b"(\"x\")"[..]));
    let new_uid = append(&inbox).await;
    uids.push(new_uid);
    expunge(&inbox, &uids[7..9]).await;
    inbox.sync().await.expect("sync");
    let expected = seen(&inbox, &uids);
    assert_eq!(expected.vanished, uids[7..9]);
    assert!(expected.envelopes[6].is_some());
    drop(inbox);
    drop(mail);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The snapshot was not rewritten: the changes are records in the log.
    let snapshot_after = fs::metadata(&index).expect("index");
    assert_eq!(snapshot_after.ino(), snapshot_before.ino());
    assert_eq!(snapshot_after.len(), snapshot_before.len());
    assert!(fs::metadata(&log).expect("log").len() > log_before);

    let mail = MailStore::new(&delivery);
    let inbox = open_inbox(&mail, &root).await;
    assert_eq!(seen(&inbox, &uids), expected);
    drop(inbox);
    drop(mail);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A torn last record is ignored; the folder is still what its files say.
    let bytes = fs::read(&log).expect("log");
    fs::write(&log, &bytes[..bytes.len() - 3]).expect("tear");
    let mail = MailStore::new(&delivery);
    let inbox = open_inbox(&mail, &root).await;
    let snapshot = inbox.sync().await.expect("sync");
    let flagged: Vec<u32> = snapshot
        .messages
        .iter()
        .filter(|m| m.flags.contains(SystemFlags::FLAGGED))
        .map(|m| m.uid)
        .collect();
    assert_eq!(flagged, uids[..5]);
    let present: Vec<u32> = snapshot.messages.iter().map(|m| m.uid).collect();
    let mut expected_present = uids.clone();
    expected_present.retain(|uid| !uids[7..9].contains(uid));
    assert_eq!(present, expected_present);
}

#[tokio::test]
async fn sizes_missing_from_names_are_counted_when_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(root.join(sub)).expect("mkdir");
    }
    // Stored with LF line endings, as Dovecot keeps it: 3 lines, so 3 bytes more in CRLF.
    let stored = b"Subject: a\n\nbody\n";
    let crlf = (stored.len() + 3) as u64;
    fs::write(root.join("cur/1700000000.M1P1Q1.other:2,S"), stored).expect("write");
    fs::write(
        root.join("cur/1700000001.M1P1Q2.other,S=17,W=20:2,"),
        stored,
    )
    .expect("write");
    let delivery = store(dir.path());
    let mail = MailStore::new(&delivery);
    let inbox = open_inbox(&mail, &root).await;
    let snapshot = inbox.snapshot();
    let sizes: Vec<Option<u64>> = snapshot.messages.iter().map(|m| m.rfc822_size).collect();
    assert_eq!(
        sizes,
        [None, Some(20)],
        "the file without W= is not read at open"
    );
    let first = snapshot.messages[0].uid;
    assert_eq!(inbox.rfc822_size(first).await.expect("size"), Some(crlf));
    let sized = inbox.sized_snapshot().await.expect("sized");
    let sizes: Vec<Option<u64>> = sized.messages.iter().map(|m| m.rfc822_size).collect();
    assert_eq!(sizes, [Some(crlf), Some(20)]);
    assert_eq!(inbox.rfc822_size(999).await.expect("size"), None);

    // Counted once: the index keeps it for the next process.
    drop(sized);
    drop(inbox);
    drop(mail);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mail = MailStore::new(&delivery);
    let inbox = open_inbox(&mail, &root).await;
    assert_eq!(inbox.snapshot().messages[0].rfc822_size, Some(crlf));
}
