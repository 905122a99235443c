//! Roles, API tokens, admin grants and paged lists, run unchanged on SQLite, PostgreSQL and
//! MariaDB (a backend that cannot be reached fails the test; see `support`).

#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use mailstead_directory::access::{Actor, MailboxField, TokenScope};
use mailstead_directory::manage::{NewDomain, NewMailbox, NewToken, PageRequest, Sort, Visibility};
use mailstead_directory::{Directory, DirectoryError};
use support::{TestBackend, fresh_directory};

const SECRET_HASH: &str = "{PLAIN}long-enough";

on_every_backend!(
    roles_come_from_mums_tables,
    tokens_are_stored_hashed_and_refused_when_revoked_or_expired,
    lists_page_filter_and_sort_in_sql,
    writes_record_who_and_from_where,
);

async fn domain(dir: &Directory, name: &str) {
    dir.add_domain(
        "test",
        NewDomain {
            domain: name.to_owned(),
            active: true,
            ..NewDomain::default()
        },
    )
    .await
    .unwrap();
}

async fn mailbox(dir: &Directory, address: &str) {
    dir.add_mailbox(
        "test",
        NewMailbox {
            address: address.to_owned(),
            password_hash: SECRET_HASH.to_owned(),
            active: true,
            ..NewMailbox::default()
        },
    )
    .await
    .unwrap();
}

async fn roles_come_from_mums_tables(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    domain(dir, "a.test").await;
    domain(dir, "b.test").await;
    for address in ["da@a.test", "ma@a.test", "u1@a.test", "x@b.test"] {
        mailbox(dir, address).await;
    }
    dir.add_domain_admin("test", "da@a.test", "a.test")
        .await
        .unwrap();
    dir.add_mailbox_admin("test", "ma@a.test", "u1@a.test")
        .await
        .unwrap();
    let again = dir.add_domain_admin("test", "da@a.test", "a.test").await;
    assert!(
        matches!(again, Err(DirectoryError::Conflict(_))),
        "{again:?}"
    );
    let own = dir
        .add_mailbox_admin("test", "u1@a.test", "u1@a.test")
        .await;
    assert!(matches!(own, Err(DirectoryError::Invalid(_))), "{own:?}");

    let da = dir.principal_for_login("da@a.test").await.unwrap().unwrap();
    let inside = Directory::parse_address("u1@a.test").unwrap();
    let outside = Directory::parse_address("x@b.test").unwrap();
    assert!(da.may_change_mailbox(&inside, MailboxField::Quota));
    assert!(!da.may_read_mailbox(&outside));
    assert!(!da.may_manage_server());
    assert_eq!(da.actor_name(), "mailbox:da@a.test");

    let ma = dir.principal_for_login("ma@a.test").await.unwrap().unwrap();
    assert!(ma.may_change_mailbox(&inside, MailboxField::Active));
    assert!(!ma.may_manage_domain_contents("a.test"));

    let user = dir.principal_for_login("u1@a.test").await.unwrap().unwrap();
    assert!(!user.may_change_mailbox(&inside, MailboxField::Quota));
    assert!(user.may_change_mailbox(&inside, MailboxField::Password));

    // Revoked at once: the next principal has no grant.
    dir.remove_domain_admin("test", "da@a.test", "a.test")
        .await
        .unwrap();
    let da = dir.principal_for_login("da@a.test").await.unwrap().unwrap();
    assert!(!da.may_read_mailbox(&inside));
    assert!(dir.list_domain_admins(None).await.unwrap().is_empty());
    assert_eq!(
        dir.list_mailbox_admins().await.unwrap()[0].admin,
        "ma@a.test"
    );
    let gone = dir.remove_domain_admin("test", "da@a.test", "a.test").await;
    assert!(matches!(gone, Err(DirectoryError::NotFound(_))), "{gone:?}");
    let twice = dir
        .add_mailbox_admin("test", "ma@a.test", "u1@a.test")
        .await;
    assert!(
        matches!(twice, Err(DirectoryError::Conflict(_))),
        "{twice:?}"
    );
    dir.remove_mailbox_admin("test", "ma@a.test", "u1@a.test")
        .await
        .unwrap();
    assert!(dir.list_mailbox_admins().await.unwrap().is_empty());
    let ma = dir.principal_for_login("ma@a.test").await.unwrap().unwrap();
    assert!(!ma.may_read_mailbox(&inside));
    let gone = dir
        .remove_mailbox_admin("test", "ma@a.test", "u1@a.test")
        .await;
    assert!(matches!(gone, Err(DirectoryError::NotFound(_))), "{gone:?}");
    let actions: Vec<String> = dir
        .audit_log(10)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.action)
        .collect();
    for action in [
        "domain-admin.add",
        "domain-admin.remove",
        "mailbox-admin.add",
        "mailbox-admin.remove",
    ] {
        assert!(actions.iter().any(|done| done == action), "{actions:?}");
    }
    test.cleanup().await;
}

async fn tokens_are_stored_hashed_and_refused_when_revoked_or_expired(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    domain(dir, "a.test").await;
    mailbox(dir, "u1@a.test").await;
    let (token, secret) = dir
        .create_token(
            "test",
            NewToken {
                name: "deploy".to_owned(),
                scope: TokenScope::parse("domain:a.test").unwrap(),
                expires_at: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(token.scope, "domain:a.test");
    let principal = dir.principal_for_token(&secret).await.unwrap().unwrap();
    assert!(principal.may_manage_domain_contents("a.test"));
    assert!(!principal.may_manage_domain_contents("b.test"));
    // Only a digest is kept: the secret appears in no column.
    let listed = dir.list_tokens().await.unwrap();
    assert!(listed[0].last_used_at.is_some());
    assert!(!format!("{listed:?}").contains(&secret));

    let unknown_domain = dir
        .create_token(
            "test",
            NewToken {
                name: "x".to_owned(),
                scope: TokenScope::parse("domain:nowhere.test").unwrap(),
                expires_at: None,
            },
        )
        .await;
    assert!(
        matches!(unknown_domain, Err(DirectoryError::NotFound(_))),
        "{unknown_domain:?}"
    );
    let past = dir
        .create_token(
            "test",
            NewToken {
                name: "x".to_owned(),
                scope: TokenScope::Super,
                expires_at: Some(1),
            },
        )
        .await;
    assert!(matches!(past, Err(DirectoryError::Invalid(_))), "{past:?}");

    dir.revoke_token("test", token.id).await.unwrap();
    assert!(dir.principal_for_token(&secret).await.unwrap().is_none());
    let twice = dir.revoke_token("test", token.id).await;
    assert!(
        matches!(twice, Err(DirectoryError::NotFound(_))),
        "{twice:?}"
    );

    // A user token stops with its mailbox.
    let (_, user_secret) = dir
        .create_token(
            "test",
            NewToken {
                name: "me".to_owned(),
                scope: TokenScope::parse("user:u1@a.test").unwrap(),
                expires_at: Some(unix_now() + 3600),
            },
        )
        .await
        .unwrap();
    assert!(
        dir.principal_for_token(&user_secret)
            .await
            .unwrap()
            .is_some()
    );
    dir.remove_mailbox("test", "u1@a.test").await.unwrap();
    assert!(
        dir.principal_for_token(&user_secret)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        dir.principal_for_token("mst_forged")
            .await
            .unwrap()
            .is_none()
    );
    test.cleanup().await;
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

async fn lists_page_filter_and_sort_in_sql(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    domain(dir, "a.test").await;
    domain(dir, "b.test").await;
    for n in 0..12 {
        mailbox(dir, &format!("user{n:02}@a.test")).await;
    }
    mailbox(dir, "under_score@b.test").await;
    mailbox(dir, "underXscore@b.test").await;

    let page = dir
        .page_mailboxes(&PageRequest {
            limit: 5,
            offset: 10,
            ..PageRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 14);
    let shown: Vec<String> = page.items.iter().map(|m| m.address.to_string()).collect();
    assert_eq!(
        shown,
        [
            "user10@a.test",
            "user11@a.test",
            "under_score@b.test",
            "underxscore@b.test"
        ]
    );

    let descending = dir
        .page_mailboxes(&PageRequest {
            limit: 1,
            sort: Sort::AddressDescending,
            domain: Some("a.test".to_owned()),
            ..PageRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(descending.total, 12);
    assert_eq!(descending.items[0].address.to_string(), "user11@a.test");

    // `_` is a character, not LIKE's wildcard; case does not matter.
    let filtered = dir
        .page_mailboxes(&PageRequest {
            q: Some("UNDER_".to_owned()),
            ..PageRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(filtered.total, 1, "{filtered:?}");

    // An address, whole or in part, is matched as one: the local part's end, the domain's
    // start.
    for (q, expected) in [
        ("user01@a.test", vec!["user01@a.test"]),
        ("ER_SCORE@B", vec!["under_score@b.test"]),
        ("1@a", vec!["user01@a.test", "user11@a.test"]),
        ("user01@b.test", vec![]),
    ] {
        let found = dir
            .page_mailboxes(&PageRequest {
                q: Some(q.to_owned()),
                ..PageRequest::default()
            })
            .await
            .unwrap();
        let shown: Vec<String> = found.items.iter().map(|m| m.address.to_string()).collect();
        assert_eq!(shown, expected, "{q}");
    }

    // A domain admin's view: only its domains, and what it is a mailbox admin of.
    let scoped = dir
        .page_mailboxes(&PageRequest {
            visibility: Visibility {
                all: false,
                domains: vec!["b.test".to_owned()],
                mailboxes: vec!["user03@a.test".to_owned()],
                member: None,
            },
            ..PageRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(scoped.total, 3, "{scoped:?}");
    let nothing = dir
        .page_domains(&PageRequest {
            visibility: Visibility {
                all: false,
                ..Visibility::default()
            },
            ..PageRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(nothing.total, 0);

    let too_many = dir
        .page_mailboxes(&PageRequest {
            limit: 5000,
            ..PageRequest::default()
        })
        .await;
    assert!(
        matches!(too_many, Err(DirectoryError::Invalid(_))),
        "{too_many:?}"
    );
    test.cleanup().await;
}

async fn writes_record_who_and_from_where(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    let actor = Actor::new("mailbox:root@a.test", "http 203.0.113.7 session");
    dir.add_domain(
        &actor,
        NewDomain {
            domain: "a.test".to_owned(),
            active: true,
            ..NewDomain::default()
        },
    )
    .await
    .unwrap();
    let log = dir.audit_log(1).await.unwrap();
    assert_eq!(log[0].actor, "mailbox:root@a.test");
    assert_eq!(log[0].source.as_deref(), Some("http 203.0.113.7 session"));
    let page = dir
        .page_audit_log(&PageRequest {
            q: Some("203.0.113".to_owned()),
            ..PageRequest::default()
        })
        .await
        .unwrap();
    // `q` looks at actor, action and subject, not the source.
    assert_eq!(page.total, 0);
    let page = dir
        .page_audit_log(&PageRequest {
            q: Some("root@".to_owned()),
            ..PageRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    test.cleanup().await;
}
