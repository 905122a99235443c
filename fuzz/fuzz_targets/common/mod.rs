//! The world the session targets run in: a real SQLite directory with one domain and one
//! mailbox (`alice@example.com`, password `x`) and a real store, in a temporary directory.

use std::path::Path;

use mailstead_directory::manage::{NewDomain, NewMailbox};
use mailstead_directory::{Directory, DirectoryOptions};
use mailstead_store::Store;

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

pub async fn directory_and_store(dir: &Path) -> (Directory, Store) {
    let url = format!("sqlite://{}", dir.join("directory.db").display());
    let mail_root = dir.join("mail").display().to_string();
    let (directory, _) = Directory::open_and_migrate(DirectoryOptions::new(url, &mail_root))
        .await
        .expect("directory");
    let domain = NewDomain {
        domain: "example.com".into(),
        active: true,
        ..NewDomain::default()
    };
    directory.add_domain("fuzz", domain).await.expect("domain");
    let mailbox = NewMailbox {
        address: "alice@example.com".into(),
        password_hash: "{PLAIN}x".into(),
        active: true,
        ..NewMailbox::default()
    };
    directory
        .add_mailbox("fuzz", mailbox)
        .await
        .expect("mailbox");
    let store = Store::new("fuzz", dir.join("spool")).expect("store");
    (directory, store)
}
