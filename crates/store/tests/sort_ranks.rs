//! The orders a folder keeps for SORT: shared by every handle of the folder, forgotten when a
//! sort value they may have been made from changes, and gone with the folder.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mailstead_store::{
    CacheKey, Folder, FolderLayout, MailStore, QuotaLimit, RankKey, SortRanks, Store, SystemFlags,
};

async fn open_inbox(mail: &MailStore, root: &Path) -> Arc<Folder> {
    let account = mail
        .open_account(root, FolderLayout::MaildirPlusPlus, QuotaLimit::UNLIMITED)
        .await
        .expect("open account");
    account.open("INBOX").await.expect("open INBOX")
}

#[tokio::test]
async fn ranks_are_shared_kept_until_a_sort_value_changes_and_go_with_the_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("Maildir");
    let delivery = Store::new("mx.example.com", dir.path().join("spool")).expect("store");
    let mail = MailStore::new(&delivery);
    let inbox = open_inbox(&mail, &root).await;
    let mut uids = Vec::new();
    for _ in 0..3 {
        let message = b"From: a@example.com\r\nSubject: hi\r\n\r\nHello\r\n";
        let uid = inbox
            .append(message, SystemFlags::empty(), &[], None)
            .await
            .expect("append");
        uids.push(uid);
        inbox.cache(uid, CacheKey::SortValues, Arc::from(&b"value"[..]));
    }
    let uid_validity = inbox.snapshot().uid_validity;
    assert!(inbox.sort_ranks(RankKey::Subject).is_none());

    let ranked = uids
        .iter()
        .zip([2, 0, 1])
        .map(|(&uid, r)| (uid, r))
        .collect();
    inbox.keep_sort_ranks(RankKey::Subject, SortRanks::new(uid_validity, ranked));
    // Another session's handle of the same folder sees them; other keys have none.
    let again = open_inbox(&mail, &root).await;
    let ranks = again.sort_ranks(RankKey::Subject).expect("kept");
    assert_eq!(
        ranks.ranks_of(uid_validity, uids.iter().copied()),
        Some(vec![2, 0, 1])
    );
    assert!(again.sort_ranks(RankKey::From).is_none());

    // The same value cached again, or another key's value changed: the ranks still hold.
    inbox.cache(uids[1], CacheKey::SortValues, Arc::from(&b"value"[..]));
    inbox.cache(uids[1], CacheKey::Envelope, Arc::from(&b"(NIL)"[..]));
    inbox.cache(uids[1], CacheKey::Envelope, Arc::from(&b"(\"x\")"[..]));
    assert!(again.sort_ranks(RankKey::Subject).is_some());
    // A sort value that changed (a damaged entry mended): the ranks may be wrong, and go.
    inbox.cache(uids[1], CacheKey::SortValues, Arc::from(&b"other"[..]));
    assert!(again.sort_ranks(RankKey::Subject).is_none());

    // Gone with the folder: a folder opened afresh has none.
    inbox.keep_sort_ranks(
        RankKey::From,
        SortRanks::new(uid_validity, vec![(uids[0], 0)]),
    );
    drop((inbox, again, ranks));
    drop(mail);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mail = MailStore::new(&delivery);
    let inbox = open_inbox(&mail, &root).await;
    assert!(inbox.sort_ranks(RankKey::From).is_none());
}
