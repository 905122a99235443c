//! The groups of a mailbox for IMAP ACLs (`mailbox_acl_groups`, Dovecot's userdb field
//! `acl_groups`): added, listed, removed, and given with the account a login returns, on
//! SQLite, PostgreSQL and MariaDB (a backend that cannot be reached fails the test).

#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use mailstead_directory::DirectoryError;
use mailstead_directory::manage::{NewDomain, NewMailbox};
use support::{TestBackend, fresh_directory};

on_every_backend!(groups_come_with_the_login_account);

async fn groups_come_with_the_login_account(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    dir.add_domain(
        "test",
        NewDomain {
            domain: "a.test".to_owned(),
            active: true,
            ..NewDomain::default()
        },
    )
    .await
    .unwrap();
    for address in ["u1@a.test", "u2@a.test"] {
        dir.add_mailbox(
            "test",
            NewMailbox {
                address: address.to_owned(),
                password_hash: "{PLAIN}long-enough".to_owned(),
                active: true,
                ..NewMailbox::default()
            },
        )
        .await
        .unwrap();
    }
    let groups = |login: &'static str| async move {
        dir.login_credentials(login)
            .await
            .unwrap()
            .unwrap()
            .account
            .unwrap()
            .acl_groups
    };
    assert_eq!(groups("u1@a.test").await, Vec::<String>::new());

    dir.add_acl_group("test", "u1@a.test", "PublicMailboxAdmins")
        .await
        .unwrap();
    dir.add_acl_group("test", "U1@A.test", "Editors")
        .await
        .unwrap();
    dir.add_acl_group("test", "u2@a.test", "Editors")
        .await
        .unwrap();
    // The cache of logins is cleared by the write: the next login sees the groups.
    assert_eq!(
        groups("u1@a.test").await,
        vec!["Editors".to_owned(), "PublicMailboxAdmins".to_owned()]
    );
    assert_eq!(dir.acl_groups("u2@a.test").await.unwrap(), vec!["Editors"]);

    let again = dir.add_acl_group("test", "u1@a.test", "Editors").await;
    assert!(
        matches!(again, Err(DirectoryError::Conflict(_))),
        "{again:?}"
    );
    for bad in ["", "two words", "a,b", "tab\t"] {
        let refused = dir.add_acl_group("test", "u1@a.test", bad).await;
        assert!(
            matches!(refused, Err(DirectoryError::Invalid(_))),
            "{bad:?}: {refused:?}"
        );
    }
    let unknown = dir.add_acl_group("test", "nobody@a.test", "Editors").await;
    assert!(
        matches!(unknown, Err(DirectoryError::NotFound(_))),
        "{unknown:?}"
    );

    dir.remove_acl_group("test", "u1@a.test", "Editors")
        .await
        .unwrap();
    assert_eq!(groups("u1@a.test").await, vec!["PublicMailboxAdmins"]);
    let missing = dir.remove_acl_group("test", "u1@a.test", "Editors").await;
    assert!(
        matches!(missing, Err(DirectoryError::NotFound(_))),
        "{missing:?}"
    );

    // A removed mailbox takes its memberships with it.
    dir.remove_mailbox("test", "u2@a.test").await.unwrap();
    dir.add_mailbox(
        "test",
        NewMailbox {
            address: "u2@a.test".to_owned(),
            password_hash: "{PLAIN}long-enough".to_owned(),
            active: true,
            ..NewMailbox::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(groups("u2@a.test").await, Vec::<String>::new());
    test.cleanup().await;
}
