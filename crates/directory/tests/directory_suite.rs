//! The directory's behaviour, run unchanged on SQLite, PostgreSQL and MariaDB.
//!
//! Each test gets a brand-new database (see `support`). A backend that cannot be reached
//! fails the test: nothing here is skipped.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use std::time::{Duration, Instant};

use mailstead_auth::{AuthOutcome, Refusal as AuthRefusal};
use mailstead_directory::manage::{
    AliasUpdate, DomainUpdate, MailboxUpdate, NewAlias, NewDomain, NewMailbox, NewTlsPolicy,
    TransportUpdate,
};
use mailstead_directory::model::{DkimAlgorithm, HopProtocol, Quota, TlsPolicyKind};
use mailstead_directory::resolve::{Outcome, Recipient, Rejection};
use mailstead_directory::{Directory, DirectoryError, DirectoryOptions};
use support::{Authenticate as _, TestBackend, TestDirectory, fresh_database, fresh_directory};

const ACTOR: &str = "test";
/// `doveadm pw -s SHA512-CRYPT -p secret-one` (Debian's Dovecot 2.3.19).
const SHA512_SECRET_ONE: &str = "{SHA512-CRYPT}$6$AYZBtQJk2uCtkUqD$Yf8mrY45JSzFkEpj41FElxYlNt3uBrrXgWiDp2eWqwA602ZrAzC89xWkWmOgWLmVYCW35GCUdHKHytW0YxarT/";
/// `doveadm pw -s BLF-CRYPT -r 5 -p secret-two`, stored bare as MUM writes bcrypt.
const BARE_BCRYPT_SECRET_TWO: &str = "$2y$05$XPwrsEu2Hlq9V3iLY9ssB.GdtNWLTdFkhWsu8n1M8AjNLZTPtwpUi";

async fn domain(dir: &Directory, name: &str) {
    dir.add_domain(
        ACTOR,
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
        ACTOR,
        NewMailbox {
            address: address.to_owned(),
            password_hash: SHA512_SECRET_ONE.to_owned(),
            active: true,
            ..NewMailbox::default()
        },
    )
    .await
    .unwrap();
}

async fn alias(dir: &Directory, address: &str, recipients: &[&str]) {
    dir.add_alias(
        ACTOR,
        NewAlias {
            address: address.to_owned(),
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            active: true,
            ..NewAlias::default()
        },
    )
    .await
    .unwrap();
}

/// Final recipients of `address` as strings (`local:` / `external:`), sorted; or the rejection.
async fn resolved(dir: &Directory, address: &str) -> Result<Vec<String>, Rejection> {
    let resolution = dir.resolve(address).await.unwrap();
    match &resolution.outcome {
        Outcome::Deliver(recipients) => {
            let mut out: Vec<String> = recipients
                .iter()
                .map(|r| match r {
                    Recipient::Local(local) => match &local.detail {
                        Some(detail) => format!("local:{}+{detail}", local.address),
                        None => format!("local:{}", local.address),
                    },
                    Recipient::External { address } => format!("external:{address}"),
                })
                .collect();
            out.sort();
            Ok(out)
        }
        Outcome::Reject(rejection) => Err(*rejection),
    }
}

on_every_backend!(
    domains_are_managed_with_clear_errors,
    mailboxes_follow_mums_rules,
    mailboxes_and_aliases_share_one_namespace,
    resolution_of_mailboxes_aliases_and_externals,
    catch_all_comes_after_exact_matches,
    recipient_delimiter_and_case,
    alias_domains_map_to_their_target,
    inactive_and_send_only_are_not_recipients,
    alias_loops_and_limits,
    logins_authenticate,
    send_as_follows_alias_senders,
    quota_location_and_tls_policy,
    every_change_is_audited,
    changes_reach_a_running_server_before_its_cache_expires,
    newer_schema_is_refused,
    path_unsafe_addresses_are_refused_where_they_are_created,
    unsafe_rows_of_other_writers_are_never_served,
    every_table_the_directory_reads_bumps_the_change_counter,
    other_writers_reach_a_running_server,
    refusals_expire_after_the_negative_ttl,
    an_existing_database_of_the_previous_version_is_upgraded,
    transports_are_validated_normalised_and_audited,
    dkim_keys_belong_to_hosted_domains,
    transport_and_dkim_changes_reach_a_running_server,
);

async fn domains_are_managed_with_clear_errors(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    let created = dir
        .add_domain(
            ACTOR,
            NewDomain {
                domain: "Example.COM".to_owned(),
                description: Some("main".to_owned()),
                quota: Some(Quota::parse("2G").unwrap()),
                max_mailboxes: Some(10),
                active: true,
                ..NewDomain::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(created.domain, "example.com");
    assert_eq!(created.quota, Some(Quota::parse("2G").unwrap()));
    assert!(
        created.homedir.ends_with("/example.com"),
        "{}",
        created.homedir
    );

    let again = dir
        .add_domain(
            ACTOR,
            NewDomain {
                domain: "example.com".to_owned(),
                active: true,
                ..NewDomain::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(again, DirectoryError::Conflict(_)), "{again}");
    assert!(again.to_string().contains("already exists"));

    let bad = dir
        .add_domain(
            ACTOR,
            NewDomain {
                domain: "not a domain".to_owned(),
                ..NewDomain::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(bad, DirectoryError::Address(_)), "{bad}");

    let updated = dir
        .update_domain(
            ACTOR,
            "example.com",
            DomainUpdate {
                active: Some(false),
                quota: Some(Some(Quota::parse("500M").unwrap())),
                ..DomainUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(!updated.active);
    assert_eq!(updated.quota.unwrap().bytes, Some(500 << 20));

    domain(dir, "b.example").await;
    let names: Vec<String> = dir
        .list_domains()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.domain)
        .collect();
    assert_eq!(names, vec!["b.example", "example.com"]);

    mailbox(dir, "x@b.example").await;
    let refused = dir
        .remove_domain(ACTOR, "b.example", false)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("--force"), "{refused}");
    dir.remove_domain(ACTOR, "b.example", true).await.unwrap();
    assert!(
        dir.get_mailbox("x@b.example").await.is_err(),
        "cascade removed the mailbox"
    );
    let gone = dir.get_domain("b.example").await.unwrap_err();
    assert!(
        gone.to_string().contains("mailstead domain add b.example"),
        "{gone}"
    );
    test.cleanup().await;
}

async fn mailboxes_follow_mums_rules(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    let unknown = dir
        .add_mailbox(
            ACTOR,
            NewMailbox {
                address: "bob@nowhere.example".to_owned(),
                password_hash: SHA512_SECRET_ONE.to_owned(),
                active: true,
                ..NewMailbox::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(unknown, DirectoryError::NotFound(_)));
    assert!(
        unknown
            .to_string()
            .contains("unknown domain nowhere.example"),
        "{unknown}"
    );

    dir.add_domain(
        ACTOR,
        NewDomain {
            domain: "example.com".to_owned(),
            max_mailboxes: Some(2),
            max_quota_gib: Some(5),
            quota: Some(Quota::parse("1G").unwrap()),
            active: true,
            ..NewDomain::default()
        },
    )
    .await
    .unwrap();
    let bob = dir
        .add_mailbox(
            ACTOR,
            NewMailbox {
                address: "Bob@Example.com".to_owned(),
                password_hash: SHA512_SECRET_ONE.to_owned(),
                name: Some("Bob".to_owned()),
                quota: Some(Quota::parse("500M").unwrap()),
                active: true,
                ..NewMailbox::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(bob.address.to_string(), "bob@example.com");
    assert_eq!(bob.effective_quota.bytes, Some(500 << 20));
    assert_eq!(bob.password_scheme, "SHA512-CRYPT");
    let home = bob.location.home.to_string_lossy().into_owned();
    assert!(home.ends_with("/example.com/bob"), "{home}");
    assert!(
        bob.location.mail.starts_with("maildir:"),
        "{}",
        bob.location.mail
    );

    let duplicate = dir
        .add_mailbox(
            ACTOR,
            NewMailbox {
                address: "bob@example.com".to_owned(),
                password_hash: SHA512_SECRET_ONE.to_owned(),
                active: true,
                ..NewMailbox::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        duplicate.to_string().contains("already a mailbox"),
        "{duplicate}"
    );

    let too_big = dir
        .add_mailbox(
            ACTOR,
            NewMailbox {
                address: "carol@example.com".to_owned(),
                password_hash: SHA512_SECRET_ONE.to_owned(),
                quota: Some(Quota::parse("6G").unwrap()),
                active: true,
                ..NewMailbox::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(too_big, DirectoryError::LimitExceeded(_)));
    assert!(too_big.to_string().contains("max_quota"), "{too_big}");

    mailbox(dir, "carol@example.com").await;
    let carol = dir.get_mailbox("carol@example.com").await.unwrap();
    assert_eq!(carol.own_quota, None);
    assert_eq!(
        carol.effective_quota.bytes,
        Some(1 << 30),
        "inherits the domain's 1G"
    );

    let full = dir
        .add_mailbox(
            ACTOR,
            NewMailbox {
                address: "dave@example.com".to_owned(),
                password_hash: SHA512_SECRET_ONE.to_owned(),
                active: true,
                ..NewMailbox::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(full, DirectoryError::LimitExceeded(_)));
    assert!(full.to_string().contains("max_mailboxes"), "{full}");

    let unlimited = dir
        .update_mailbox(
            ACTOR,
            "carol@example.com",
            MailboxUpdate {
                quota: Some(Some(Quota::UNLIMITED)),
                ..MailboxUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        unlimited.to_string().contains("max_quota of 5G"),
        "{unlimited}"
    );
    let updated = dir
        .update_mailbox(
            ACTOR,
            "carol@example.com",
            MailboxUpdate {
                quota: Some(Some(Quota::parse("5G").unwrap())),
                send_only: Some(true),
                ..MailboxUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.effective_quota.bytes, Some(5 << 30));
    assert!(updated.send_only);

    dir.set_password(ACTOR, "carol@example.com", BARE_BCRYPT_SECRET_TWO)
        .await
        .unwrap();
    assert_eq!(
        dir.get_mailbox("carol@example.com")
            .await
            .unwrap()
            .password_scheme,
        "BLF-CRYPT"
    );

    let listed: Vec<String> = dir
        .list_mailboxes(Some("example.com"))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.address.to_string())
        .collect();
    assert_eq!(listed, vec!["bob@example.com", "carol@example.com"]);
    dir.remove_mailbox(ACTOR, "bob@example.com").await.unwrap();
    assert!(dir.remove_mailbox(ACTOR, "bob@example.com").await.is_err());
    test.cleanup().await;
}

async fn mailboxes_and_aliases_share_one_namespace(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    domain(dir, "example.com").await;
    mailbox(dir, "bob@example.com").await;
    let over_mailbox = dir
        .add_alias(
            ACTOR,
            NewAlias {
                address: "bob@example.com".to_owned(),
                recipients: vec!["x@elsewhere.example".to_owned()],
                active: true,
                ..NewAlias::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        over_mailbox.to_string().contains("already a mailbox"),
        "{over_mailbox}"
    );
    alias(dir, "sales@example.com", &["bob@example.com"]).await;
    let over_alias = dir
        .add_mailbox(
            ACTOR,
            NewMailbox {
                address: "sales@example.com".to_owned(),
                password_hash: SHA512_SECRET_ONE.to_owned(),
                active: true,
                ..NewMailbox::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        over_alias.to_string().contains("already an alias"),
        "{over_alias}"
    );
    let bad_sender = dir
        .add_sender(ACTOR, "sales@example.com", "ghost@example.com")
        .await
        .unwrap_err();
    assert!(
        bad_sender.to_string().contains("not a mailbox"),
        "{bad_sender}"
    );
    test.cleanup().await;
}

async fn resolution_of_mailboxes_aliases_and_externals(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    domain(dir, "example.com").await;
    domain(dir, "example.org").await;
    mailbox(dir, "bob@example.com").await;
    mailbox(dir, "alice@example.org").await;
    alias(
        dir,
        "team@example.com",
        &["bob@example.com", "Friend@External.example"],
    )
    .await;
    // Nested, and listing bob twice through two paths: bob gets one copy.
    alias(
        dir,
        "all@example.com",
        &["team@example.com", "bob@example.com", "alice@example.org"],
    )
    .await;

    assert_eq!(
        resolved(dir, "bob@example.com").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    assert_eq!(
        resolved(dir, "team@example.com").await,
        Ok(vec![
            "external:friend@external.example".to_owned(),
            "local:bob@example.com".to_owned()
        ])
    );
    assert_eq!(
        resolved(dir, "all@example.com").await,
        Ok(vec![
            "external:friend@external.example".to_owned(),
            "local:alice@example.org".to_owned(),
            "local:bob@example.com".to_owned(),
        ])
    );
    assert_eq!(
        resolved(dir, "nobody@example.com").await,
        Err(Rejection::UnknownUser)
    );
    assert_eq!(
        resolved(dir, "someone@gmail.example").await,
        Err(Rejection::NotHosted)
    );

    let trace = dir
        .resolve("team@example.com")
        .await
        .unwrap()
        .trace
        .join("\n");
    assert!(
        trace.contains("team@example.com is an alias for"),
        "{trace}"
    );
    assert!(
        trace.contains("friend@external.example is external"),
        "{trace}"
    );

    // Recipients added and removed later are seen (the write clears this process's cache).
    dir.remove_alias_recipients(
        ACTOR,
        "team@example.com",
        &["friend@external.example".to_owned()],
    )
    .await
    .unwrap();
    assert_eq!(
        resolved(dir, "team@example.com").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    let bad = dir.resolve("not an address").await.unwrap_err();
    assert!(matches!(bad, DirectoryError::Address(_)));
    test.cleanup().await;
}

async fn catch_all_comes_after_exact_matches(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    domain(dir, "example.com").await;
    mailbox(dir, "bob@example.com").await;
    mailbox(dir, "postmaster@example.com").await;
    alias(dir, "sales@example.com", &["bob@example.com"]).await;
    alias(dir, "@example.com", &["postmaster@example.com"]).await;
    assert_eq!(
        resolved(dir, "bob@example.com").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    assert_eq!(
        resolved(dir, "sales@example.com").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    assert_eq!(
        resolved(dir, "bob+tag@example.com").await,
        Ok(vec!["local:bob@example.com+tag".to_owned()])
    );
    assert_eq!(
        resolved(dir, "anything@example.com").await,
        Ok(vec!["local:postmaster@example.com".to_owned()])
    );
    test.cleanup().await;
}

async fn recipient_delimiter_and_case(backend: TestBackend) {
    let test = fresh_directory(backend, |options| {
        options.recipient_delimiter = "+-".to_owned()
    })
    .await;
    let dir = &test.directory;
    domain(dir, "bücher.example").await;
    mailbox(dir, "bob@bücher.example").await;
    mailbox(dir, "owner-list@bücher.example").await;
    alias(dir, "sales@bücher.example", &["bob@bücher.example"]).await;
    alias(
        dir,
        "sales+vip@bücher.example",
        &["owner-list@bücher.example"],
    )
    .await;
    assert_eq!(
        resolved(dir, "BOB@XN--BCHER-KVA.EXAMPLE").await,
        Ok(vec!["local:bob@xn--bcher-kva.example".to_owned()])
    );
    assert_eq!(
        resolved(dir, "bob-news@bücher.example").await,
        Ok(vec!["local:bob@xn--bcher-kva.example+news".to_owned()])
    );
    // The exact address wins over the one with the extension split off.
    assert_eq!(
        resolved(dir, "sales+vip@bücher.example").await,
        Ok(vec!["local:owner-list@xn--bcher-kva.example".to_owned()])
    );
    assert_eq!(
        resolved(dir, "sales+other@bücher.example").await,
        Ok(vec!["local:bob@xn--bcher-kva.example".to_owned()])
    );
    // owner-* is never split, like Postfix.
    assert_eq!(
        resolved(dir, "owner-list@bücher.example").await,
        Ok(vec!["local:owner-list@xn--bcher-kva.example".to_owned()])
    );
    assert_eq!(
        resolved(dir, "owner-other@bücher.example").await,
        Err(Rejection::UnknownUser)
    );
    test.cleanup().await;
}

async fn alias_domains_map_to_their_target(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    domain(dir, "example.com").await;
    mailbox(dir, "bob@example.com").await;
    alias(dir, "sales@example.com", &["bob@example.com"]).await;
    dir.add_alias_domain(ACTOR, "example.net", "example.com", None)
        .await
        .unwrap();
    assert_eq!(
        resolved(dir, "bob@example.net").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    assert_eq!(
        resolved(dir, "sales@example.net").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    assert_eq!(
        resolved(dir, "ghost@example.net").await,
        Err(Rejection::UnknownUser)
    );
    let clash = dir
        .add_alias_domain(ACTOR, "example.com", "example.com", None)
        .await
        .unwrap_err();
    assert!(clash.to_string().contains("hosted domain"), "{clash}");
    let unknown_target = dir
        .add_alias_domain(ACTOR, "example.io", "nowhere.example", None)
        .await
        .unwrap_err();
    assert!(matches!(unknown_target, DirectoryError::NotFound(_)));
    dir.remove_alias_domain(ACTOR, "example.net").await.unwrap();
    assert_eq!(
        resolved(dir, "bob@example.net").await,
        Err(Rejection::NotHosted)
    );
    test.cleanup().await;
}

async fn inactive_and_send_only_are_not_recipients(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    domain(dir, "example.com").await;
    domain(dir, "sleepy.example").await;
    mailbox(dir, "bob@example.com").await;
    mailbox(dir, "noreply@example.com").await;
    mailbox(dir, "gone@example.com").await;
    mailbox(dir, "zed@sleepy.example").await;
    alias(dir, "old@example.com", &["bob@example.com"]).await;
    alias(dir, "temp@example.com", &["bob@example.com"]).await;
    alias(dir, "later@example.com", &["bob@example.com"]).await;
    alias(
        dir,
        "mixed@example.com",
        &["noreply@example.com", "bob@example.com"],
    )
    .await;
    alias(
        dir,
        "dead@example.com",
        &["noreply@example.com", "zed@sleepy.example"],
    )
    .await;
    alias(dir, "@example.com", &["bob@example.com"]).await;
    dir.update_mailbox(
        ACTOR,
        "noreply@example.com",
        MailboxUpdate {
            send_only: Some(true),
            ..MailboxUpdate::default()
        },
    )
    .await
    .unwrap();
    dir.update_mailbox(
        ACTOR,
        "gone@example.com",
        MailboxUpdate {
            active: Some(false),
            ..MailboxUpdate::default()
        },
    )
    .await
    .unwrap();
    dir.update_domain(
        ACTOR,
        "sleepy.example",
        DomainUpdate {
            active: Some(false),
            ..DomainUpdate::default()
        },
    )
    .await
    .unwrap();
    dir.update_alias(
        ACTOR,
        "old@example.com",
        AliasUpdate {
            active: Some(false),
            ..AliasUpdate::default()
        },
    )
    .await
    .unwrap();
    let past = unix_now() - 60;
    dir.update_alias(
        ACTOR,
        "temp@example.com",
        AliasUpdate {
            deactivate_at: Some(Some(past)),
            ..AliasUpdate::default()
        },
    )
    .await
    .unwrap();
    let soon = unix_now() + 3600;
    dir.update_alias(
        ACTOR,
        "later@example.com",
        AliasUpdate {
            deactivate_at: Some(Some(soon)),
            ..AliasUpdate::default()
        },
    )
    .await
    .unwrap();

    assert_eq!(
        resolved(dir, "noreply@example.com").await,
        Err(Rejection::SendOnly)
    );
    assert_eq!(
        resolved(dir, "gone@example.com").await,
        Err(Rejection::MailboxInactive)
    );
    assert_eq!(
        resolved(dir, "zed@sleepy.example").await,
        Err(Rejection::DomainInactive)
    );
    // Deactivated and expired aliases refuse; they do not fall through to the catch-all.
    assert_eq!(
        resolved(dir, "old@example.com").await,
        Err(Rejection::AliasInactive)
    );
    assert_eq!(
        resolved(dir, "temp@example.com").await,
        Err(Rejection::AliasInactive)
    );
    assert_eq!(
        resolved(dir, "later@example.com").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    assert_eq!(
        resolved(dir, "mixed@example.com").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    assert_eq!(
        resolved(dir, "dead@example.com").await,
        Err(Rejection::NoDeliverableRecipients)
    );
    let trace = dir
        .resolve("mixed@example.com")
        .await
        .unwrap()
        .trace
        .join("\n");
    assert!(trace.contains("noreply@example.com skipped"), "{trace}");
    // Re-activating clears deactivate_at, as in MUM.
    let revived = dir
        .update_alias(
            ACTOR,
            "temp@example.com",
            AliasUpdate {
                active: Some(true),
                ..AliasUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(revived.deactivate_at, None);
    assert_eq!(
        resolved(dir, "temp@example.com").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    test.cleanup().await;
}

async fn alias_loops_and_limits(backend: TestBackend) {
    let test = fresh_directory(backend, |options| {
        options.expansion_limit = 5;
        options.recursion_limit = 3;
    })
    .await;
    let dir = &test.directory;
    domain(dir, "example.com").await;
    mailbox(dir, "bob@example.com").await;
    mailbox(dir, "self@example.com").await;
    alias(dir, "a@example.com", &["b@example.com", "bob@example.com"]).await;
    alias(dir, "b@example.com", &["a@example.com"]).await;
    assert_eq!(
        resolved(dir, "a@example.com").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    assert_eq!(
        resolved(dir, "b@example.com").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );

    // An alias that names itself delivers to the mailbox of the same name (Postfix's idiom).
    dir.remove_mailbox(ACTOR, "self@example.com").await.unwrap();
    alias(
        dir,
        "self@example.com",
        &["self@example.com", "bob@example.com"],
    )
    .await;
    let trace = dir
        .resolve("self@example.com")
        .await
        .unwrap()
        .trace
        .join("\n");
    assert!(trace.contains("lists itself but has no mailbox"), "{trace}");

    alias(
        dir,
        "wide@example.com",
        &[
            "w1@elsewhere.example",
            "w2@elsewhere.example",
            "w3@elsewhere.example",
            "w4@elsewhere.example",
            "w5@elsewhere.example",
        ],
    )
    .await;
    assert_eq!(
        resolved(dir, "wide@example.com").await,
        Err(Rejection::ExpansionLimit)
    );
    alias(dir, "d1@example.com", &["d2@example.com"]).await;
    alias(dir, "d2@example.com", &["d3@example.com"]).await;
    alias(dir, "d3@example.com", &["d4@example.com"]).await;
    alias(dir, "d4@example.com", &["bob@example.com"]).await;
    assert_eq!(
        resolved(dir, "d2@example.com").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    assert_eq!(
        resolved(dir, "d1@example.com").await,
        Err(Rejection::ExpansionLimit)
    );
    test.cleanup().await;
}

async fn logins_authenticate(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    domain(dir, "example.com").await;
    domain(dir, "sleepy.example").await;
    mailbox(dir, "bob@example.com").await;
    mailbox(dir, "zed@sleepy.example").await;
    dir.add_mailbox(
        ACTOR,
        NewMailbox {
            address: "mum@example.com".to_owned(),
            password_hash: BARE_BCRYPT_SECRET_TWO.to_owned(),
            send_only: true,
            active: true,
            ..NewMailbox::default()
        },
    )
    .await
    .unwrap();
    let fresh = mailstead_password::hash(b"brand new password").unwrap();
    dir.add_mailbox(
        ACTOR,
        NewMailbox {
            address: "new@example.com".to_owned(),
            password_hash: fresh,
            active: true,
            ..NewMailbox::default()
        },
    )
    .await
    .unwrap();

    match dir
        .authenticate("Bob@Example.com", b"secret-one")
        .await
        .unwrap()
    {
        AuthOutcome::Accepted(account) => {
            assert_eq!(account.address.to_string(), "bob@example.com")
        }
        other => panic!("bob refused: {other:?}"),
    }
    assert_eq!(
        dir.authenticate("bob@example.com", b"secret-two")
            .await
            .unwrap(),
        AuthOutcome::Refused(AuthRefusal::WrongPassword)
    );
    assert_eq!(
        dir.authenticate("ghost@example.com", b"secret-one")
            .await
            .unwrap(),
        AuthOutcome::Refused(AuthRefusal::UnknownLogin)
    );
    // Send-only mailboxes log in (MUM: they can log in and send).
    match dir
        .authenticate("mum@example.com", b"secret-two")
        .await
        .unwrap()
    {
        AuthOutcome::Accepted(account) => assert!(account.send_only),
        other => panic!("mum refused: {other:?}"),
    }
    assert!(matches!(
        dir.authenticate("new@example.com", b"brand new password")
            .await
            .unwrap(),
        AuthOutcome::Accepted(_)
    ));
    dir.update_domain(
        ACTOR,
        "sleepy.example",
        DomainUpdate {
            active: Some(false),
            ..DomainUpdate::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        dir.authenticate("zed@sleepy.example", b"secret-one")
            .await
            .unwrap(),
        AuthOutcome::Refused(AuthRefusal::Deactivated)
    );
    dir.update_mailbox(
        ACTOR,
        "bob@example.com",
        MailboxUpdate {
            active: Some(false),
            ..MailboxUpdate::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        dir.authenticate("bob@example.com", b"secret-one")
            .await
            .unwrap(),
        AuthOutcome::Refused(AuthRefusal::Deactivated)
    );
    assert!(dir.account("bob@example.com").await.unwrap().is_none());
    assert_eq!(
        dir.authenticate("no-at-sign", b"x").await.unwrap(),
        AuthOutcome::Refused(AuthRefusal::UnknownLogin)
    );
    assert!(dir.login_credentials("no-at-sign").await.is_err());
    test.cleanup().await;
}

async fn send_as_follows_alias_senders(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    domain(dir, "example.com").await;
    domain(dir, "example.org").await;
    mailbox(dir, "bob@example.com").await;
    mailbox(dir, "carol@example.com").await;
    dir.add_alias(
        ACTOR,
        NewAlias {
            address: "sales@example.org".to_owned(),
            recipients: vec!["bob@example.com".to_owned()],
            senders: vec!["bob@example.com".to_owned(), "carol@example.com".to_owned()],
            active: true,
            ..NewAlias::default()
        },
    )
    .await
    .unwrap();
    alias(dir, "info@example.com", &["bob@example.com"]).await;
    dir.add_alias_domain(ACTOR, "example.net", "example.org", None)
        .await
        .unwrap();

    assert!(
        dir.may_send_as("bob@example.com", "bob@example.com")
            .await
            .unwrap()
    );
    assert!(
        dir.may_send_as("bob@example.com", "Bob+lists@Example.com")
            .await
            .unwrap()
    );
    assert!(
        dir.may_send_as("bob@example.com", "sales@example.org")
            .await
            .unwrap()
    );
    assert!(
        dir.may_send_as("carol@example.com", "sales@example.org")
            .await
            .unwrap()
    );
    assert!(
        dir.may_send_as("bob@example.com", "sales@example.net")
            .await
            .unwrap(),
        "alias domain"
    );
    // Receiving through an alias does not give the right to send as it.
    assert!(
        !dir.may_send_as("bob@example.com", "info@example.com")
            .await
            .unwrap()
    );
    assert!(
        !dir.may_send_as("bob@example.com", "carol@example.com")
            .await
            .unwrap()
    );
    assert!(!dir.may_send_as("bob@example.com", "garbage").await.unwrap());
    assert_eq!(
        dir.sendable_addresses("carol@example.com").await.unwrap(),
        vec![
            "carol@example.com".to_owned(),
            "sales@example.org".to_owned()
        ]
    );
    dir.remove_sender(ACTOR, "sales@example.org", "carol@example.com")
        .await
        .unwrap();
    assert!(
        !dir.may_send_as("carol@example.com", "sales@example.org")
            .await
            .unwrap()
    );
    dir.update_alias(
        ACTOR,
        "sales@example.org",
        AliasUpdate {
            active: Some(false),
            ..AliasUpdate::default()
        },
    )
    .await
    .unwrap();
    assert!(
        !dir.may_send_as("bob@example.com", "sales@example.org")
            .await
            .unwrap(),
        "inactive alias"
    );

    // A catch-all naming a sender gives it the whole domain (Postfix's @domain key).
    dir.add_alias(
        ACTOR,
        NewAlias {
            address: "@example.org".to_owned(),
            recipients: vec!["carol@example.com".to_owned()],
            senders: vec!["carol@example.com".to_owned()],
            active: true,
            ..NewAlias::default()
        },
    )
    .await
    .unwrap();
    assert!(
        dir.may_send_as("carol@example.com", "whatever@example.org")
            .await
            .unwrap()
    );
    assert!(
        !dir.may_send_as("bob@example.com", "whatever@example.org")
            .await
            .unwrap()
    );
    // …but not addresses with an entry of their own in the sender-login map (Postfix: the
    // more specific key wins): an active mailbox, or an active alias with senders.
    dir.update_alias(
        ACTOR,
        "sales@example.org",
        AliasUpdate {
            active: Some(true),
            ..AliasUpdate::default()
        },
    )
    .await
    .unwrap();
    mailbox(dir, "erin@example.org").await;
    assert!(
        !dir.may_send_as("carol@example.com", "sales@example.org")
            .await
            .unwrap()
    );
    assert!(
        !dir.may_send_as("carol@example.com", "erin@example.org")
            .await
            .unwrap()
    );
    // An alias without senders has no entry of its own: the catch-all decides.
    alias(dir, "list@example.org", &["bob@example.com"]).await;
    assert!(
        dir.may_send_as("carol@example.com", "list@example.org")
            .await
            .unwrap()
    );
    test.cleanup().await;
}

async fn quota_location_and_tls_policy(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    dir.add_domain(
        ACTOR,
        NewDomain {
            domain: "example.com".to_owned(),
            quota: Some(Quota::parse("3G").unwrap()),
            active: true,
            ..NewDomain::default()
        },
    )
    .await
    .unwrap();
    mailbox(dir, "bob@example.com").await;
    dir.add_mailbox(
        ACTOR,
        NewMailbox {
            address: "imported@example.com".to_owned(),
            password_hash: SHA512_SECRET_ONE.to_owned(),
            quota: Some(Quota::parse("750M").unwrap()),
            homedir: Some("/srv/mail/mailboxes/example.com/imported".to_owned()),
            maildir: Some("maildir:/srv/mail/mailboxes/example.com/imported:LAYOUT=fs".to_owned()),
            active: true,
            ..NewMailbox::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        dir.quota("bob@example.com").await.unwrap(),
        Some(Quota::parse("3G").unwrap())
    );
    assert_eq!(
        dir.quota("imported@example.com").await.unwrap(),
        Some(Quota::parse("750M").unwrap())
    );
    assert_eq!(dir.quota("ghost@example.com").await.unwrap(), None);
    let location = dir
        .mailbox_location("imported@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        location.maildir.to_string_lossy(),
        "/srv/mail/mailboxes/example.com/imported"
    );
    assert_eq!(
        location.layout,
        mailstead_directory::model::MaildirLayout::Fs
    );

    dir.add_tls_policy(
        ACTOR,
        NewTlsPolicy {
            domain: "Bank.example".to_owned(),
            policy: TlsPolicyKind::Secure,
            params: Some("match=.bank.example".to_owned()),
            description: None,
            active: true,
        },
    )
    .await
    .unwrap();
    dir.add_tls_policy(
        ACTOR,
        NewTlsPolicy {
            domain: "old.example".to_owned(),
            policy: TlsPolicyKind::Encrypt,
            params: None,
            description: None,
            active: false,
        },
    )
    .await
    .unwrap();
    let bank = dir.tls_policy("bank.example").await.unwrap().unwrap();
    assert_eq!(bank.policy, TlsPolicyKind::Secure);
    assert_eq!(bank.params.as_deref(), Some("match=.bank.example"));
    assert_eq!(
        dir.tls_policy("old.example").await.unwrap(),
        None,
        "inactive policies do not apply"
    );
    assert_eq!(dir.tls_policy("other.example").await.unwrap(), None);
    let dup = dir
        .add_tls_policy(
            ACTOR,
            NewTlsPolicy {
                domain: "bank.example".to_owned(),
                policy: TlsPolicyKind::May,
                params: None,
                description: None,
                active: true,
            },
        )
        .await
        .unwrap_err();
    assert!(
        dup.to_string().contains("already has a TLS policy"),
        "{dup}"
    );
    dir.update_tls_policy(
        ACTOR,
        "old.example",
        mailstead_directory::manage::TlsPolicyUpdate {
            active: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        dir.tls_policy("old.example").await.unwrap().unwrap().policy,
        TlsPolicyKind::Encrypt
    );
    assert_eq!(dir.list_tls_policies().await.unwrap().len(), 2);
    dir.remove_tls_policy(ACTOR, "bank.example").await.unwrap();
    assert_eq!(dir.tls_policy("bank.example").await.unwrap(), None);
    test.cleanup().await;
}

async fn every_change_is_audited(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    dir.add_domain(
        "alice-admin",
        NewDomain {
            domain: "example.com".to_owned(),
            active: true,
            ..NewDomain::default()
        },
    )
    .await
    .unwrap();
    dir.add_mailbox(
        "bob-admin",
        NewMailbox {
            address: "bob@example.com".to_owned(),
            password_hash: SHA512_SECRET_ONE.to_owned(),
            active: true,
            ..NewMailbox::default()
        },
    )
    .await
    .unwrap();
    dir.set_password("bob-admin", "bob@example.com", BARE_BCRYPT_SECRET_TWO)
        .await
        .unwrap();
    let entries = dir.audit_log(10).await.unwrap();
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| (e.actor.clone(), e.action.clone(), e.subject.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "bob-admin".to_owned(),
                "mailbox.passwd".to_owned(),
                "bob@example.com".to_owned()
            ),
            (
                "bob-admin".to_owned(),
                "mailbox.add".to_owned(),
                "bob@example.com".to_owned()
            ),
            (
                "alice-admin".to_owned(),
                "domain.add".to_owned(),
                "example.com".to_owned()
            ),
        ]
    );
    let now = unix_now();
    for entry in &entries {
        let at = entry.at.expect("audit entries carry a time");
        assert!((now - at).abs() < 120, "audit time {at} is not now ({now})");
    }
    assert!(
        entries[0]
            .details
            .as_deref()
            .unwrap_or("")
            .contains("scheme=BLF-CRYPT"),
        "{:?}",
        entries[0].details
    );
    assert!(
        !entries[0].details.as_deref().unwrap_or("").contains("$2y$"),
        "no hash in the audit log"
    );
    test.cleanup().await;
}

async fn changes_reach_a_running_server_before_its_cache_expires(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let writer = &test.directory;
    domain(writer, "example.com").await;
    mailbox(writer, "bob@example.com").await;
    // The "server": a second handle with its own pool and cache, as another process would have.
    let mut options: DirectoryOptions = writer.options().clone();
    options.change_poll = Duration::from_millis(250);
    options.cache_ttl = Duration::from_secs(3600);
    let server = Directory::open(options).await.unwrap();
    let _watcher = server.watch_changes();
    assert_eq!(
        resolved(&server, "bob@example.com").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    writer
        .update_mailbox(
            ACTOR,
            "bob@example.com",
            MailboxUpdate {
                active: Some(false),
                ..MailboxUpdate::default()
            },
        )
        .await
        .unwrap();
    let changed_at = Instant::now();
    loop {
        if resolved(&server, "bob@example.com").await == Err(Rejection::MailboxInactive) {
            break;
        }
        // The cached answer would live for the whole cache TTL: only the change watcher
        // explains a fresh answer well before it.
        assert!(
            changed_at.elapsed() < Duration::from_secs(20),
            "the server still sees the old answer after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.close().await;
    test.cleanup().await;
}

async fn newer_schema_is_refused(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let (current, latest) = test.directory.schema_versions().await.unwrap();
    assert_eq!(current, latest);
    assert!(latest >= 2);
    // A later Mailstead migrated this database further than this binary knows.
    let checksum = if backend == TestBackend::Postgres {
        "'\\x00'::bytea"
    } else {
        "X'00'"
    };
    let insert = format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99990101000000, 'from the future', TRUE, {checksum}, 0)"
    );
    execute(&test.url, &insert).await;
    let err = Directory::open(test.directory.options().clone())
        .await
        .err()
        .expect("a newer schema must be refused");
    assert!(matches!(err, DirectoryError::SchemaTooNew { .. }), "{err}");
    assert!(err.to_string().contains("upgrade mailstead"), "{err}");
    let err = Directory::open_and_migrate(test.directory.options().clone())
        .await
        .err()
        .expect("and not migrated either");
    assert!(matches!(err, DirectoryError::SchemaTooNew { .. }), "{err}");
    test.cleanup().await;
}

fn unix_now() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(elapsed.as_secs()).unwrap()
}

/// Runs one statement on the test database behind the directory's back.
async fn execute(url: &str, sql: &str) {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(url).await.unwrap();
    connection
        .execute(sqlx::AssertSqlSafe(sql.to_owned()))
        .await
        .unwrap();
    connection.close().await.unwrap();
}

/// How long a test waits for a change to show before failing: generous, so that a loaded
/// machine does not fail it; the behaviour, not the speed, is what is checked.
const EVENTUALLY: Duration = Duration::from_secs(20);

/// Polls `check` until it holds; fails naming `what` after [`EVENTUALLY`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < EVENTUALLY,
            "{what}: not seen within {EVENTUALLY:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The change counter, read behind the directory's back.
async fn change_serial(url: &str) -> i64 {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(url).await.unwrap();
    let serial: i64 = sqlx::query_scalar("SELECT change_serial FROM directory_state WHERE id = 1")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    serial
}

/// A mailbox row written the way MUM's web UI writes one, not through Mailstead.
/// Another writer (MUM's web UI) creates mailbox `local` of example.com, its home beside
/// `neighbour`'s, with raw SQL that Mailstead's code never sees.
async fn insert_foreign_mailbox(test: &TestDirectory, local: &str, neighbour: &str) {
    let home = test
        .directory
        .get_mailbox(neighbour)
        .await
        .unwrap()
        .location
        .home;
    let home = home.with_file_name(local).display().to_string();
    execute(
        &test.url,
        &foreign_mailbox_insert(local, &home, &format!("maildir:{home}/Maildir")),
    )
    .await;
}

fn foreign_mailbox_insert(local: &str, home: &str, maildir: &str) -> String {
    format!(
        "INSERT INTO mailboxes (local_part, password, domain_id, homedir, maildir, created_at, updated_at) \
         SELECT '{local}', '{SHA512_SECRET_ONE}', id, '{home}', '{maildir}', NULL, NULL FROM domains WHERE domain = 'example.com'"
    )
}

async fn path_unsafe_addresses_are_refused_where_they_are_created(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    domain(dir, "example.test").await;
    mailbox(dir, "alice@example.test").await;
    let new_mailbox = |address: &str| NewMailbox {
        address: address.to_owned(),
        password_hash: SHA512_SECRET_ONE.to_owned(),
        active: true,
        ..NewMailbox::default()
    };
    let err = dir
        .add_mailbox(ACTOR, new_mailbox("alice/work@example.test"))
        .await
        .unwrap_err();
    assert!(matches!(err, DirectoryError::Address(_)), "{err}");
    assert!(
        err.to_string().contains("its local part contains '/'"),
        "{err}"
    );
    let err = dir
        .add_alias(
            ACTOR,
            NewAlias {
                address: "alice/work@example.test".to_owned(),
                recipients: vec!["alice@example.test".to_owned()],
                active: true,
                ..NewAlias::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DirectoryError::Address(_)), "{err}");
    for bad_domain in ["..", ".hidden.example", "a/b.example"] {
        let err = dir
            .add_domain(
                ACTOR,
                NewDomain {
                    domain: bad_domain.to_owned(),
                    active: true,
                    ..NewDomain::default()
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, DirectoryError::Address(_)),
            "{bad_domain}: {err}"
        );
        let err = dir
            .add_alias_domain(ACTOR, bad_domain, "example.test", None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, DirectoryError::Address(_)),
            "{bad_domain}: {err}"
        );
    }
    // A location given by an import must not climb out either.
    let mut imported = new_mailbox("imported@example.test");
    imported.homedir = Some("/srv/mail/example.test/imported".to_owned());
    imported.maildir = Some("maildir:/srv/mail/example.test/imported/../alice/Maildir".to_owned());
    let err = dir.add_mailbox(ACTOR, imported).await.unwrap_err();
    assert!(err.to_string().contains("'..'"), "{err}");
    let addresses: Vec<String> = dir
        .list_mailboxes(None)
        .await
        .unwrap()
        .iter()
        .map(|m| m.address.to_string())
        .collect();
    assert_eq!(addresses, ["alice@example.test"]);
    assert!(dir.list_aliases(None).await.unwrap().is_empty());
    test.cleanup().await;
}

async fn unsafe_rows_of_other_writers_are_never_served(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    domain(dir, "example.com").await;
    mailbox(dir, "alice@example.com").await;
    let alice = dir.get_mailbox("alice@example.com").await.unwrap();
    let alice_home = alice.location.home.display().to_string();
    // Rows another tool wrote: one named so that its home is inside alice's, one whose
    // Maildir climbs into hers.
    execute(
        &test.url,
        &foreign_mailbox_insert(
            "alice/work",
            &format!("{alice_home}/work"),
            &format!("maildir:{alice_home}/work:LAYOUT=fs"),
        ),
    )
    .await;
    execute(
        &test.url,
        &foreign_mailbox_insert(
            "mallory",
            "/srv/mail/example.com/mallory",
            &format!("maildir:/srv/mail/example.com/mallory/..{alice_home}/Maildir"),
        ),
    )
    .await;
    for address in ["alice/work@example.com", "mallory@example.com"] {
        assert_eq!(
            resolved(dir, address).await,
            Err(Rejection::UnknownUser),
            "{address}"
        );
        assert!(dir.account(address).await.unwrap().is_none(), "{address}");
        let login = dir.authenticate(address, b"secret-one").await.unwrap();
        assert_eq!(
            login,
            AuthOutcome::Refused(AuthRefusal::UnknownLogin),
            "{address}"
        );
    }
    alias(
        dir,
        "team@example.com",
        &["alice/work@example.com", "alice@example.com"],
    )
    .await;
    assert_eq!(
        resolved(dir, "team@example.com").await,
        Ok(vec!["local:alice@example.com".to_owned()])
    );
    // Management still shows them, so that they can be removed.
    assert_eq!(dir.list_mailboxes(None).await.unwrap().len(), 3);
    dir.remove_mailbox(ACTOR, "alice/work@example.com")
        .await
        .unwrap();
    test.cleanup().await;
}

async fn every_table_the_directory_reads_bumps_the_change_counter(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    domain(dir, "example.com").await;
    mailbox(dir, "bob@example.com").await;
    mailbox(dir, "carol@example.com").await;
    let statements = [
        "INSERT INTO domains (domain, homedir, active) VALUES ('other.example', '/srv/mail/other.example', 1)",
        "UPDATE domains SET description = 'changed' WHERE domain = 'other.example'",
        "DELETE FROM domains WHERE domain = 'other.example'",
        &foreign_mailbox_insert(
            "zed",
            "/srv/mail/example.com/zed",
            "maildir:/srv/mail/example.com/zed",
        ),
        "UPDATE mailboxes SET active = 0 WHERE local_part = 'zed'",
        "DELETE FROM mailboxes WHERE local_part = 'zed'",
        "INSERT INTO aliases (local_part, domain_id, active) SELECT 'list', id, 1 FROM domains WHERE domain = 'example.com'",
        "UPDATE aliases SET description = 'changed' WHERE local_part = 'list'",
        "INSERT INTO alias_recipients (alias_id, recipient_address) SELECT id, 'x@elsewhere.example' FROM aliases WHERE local_part = 'list'",
        "UPDATE alias_recipients SET recipient_address = 'y@elsewhere.example' WHERE recipient_address = 'x@elsewhere.example'",
        "DELETE FROM alias_recipients WHERE recipient_address = 'y@elsewhere.example'",
        "INSERT INTO alias_senders (mailbox_id, alias_id) SELECT m.id, a.id FROM mailboxes m, aliases a WHERE m.local_part = 'bob' AND a.local_part = 'list'",
        "UPDATE alias_senders SET mailbox_id = (SELECT id FROM mailboxes WHERE local_part = 'carol')",
        "DELETE FROM alias_senders",
        "DELETE FROM aliases WHERE local_part = 'list'",
        "INSERT INTO tls_policies (domain, policy, active) VALUES ('tls.example', 'encrypt', 1)",
        "UPDATE tls_policies SET policy = 'secure' WHERE domain = 'tls.example'",
        "DELETE FROM tls_policies WHERE domain = 'tls.example'",
        "INSERT INTO alias_domains (domain, target_domain_id, active) SELECT 'alias.example', id, 1 FROM domains WHERE domain = 'example.com'",
        "UPDATE alias_domains SET active = 0 WHERE domain = 'alias.example'",
        "DELETE FROM alias_domains WHERE domain = 'alias.example'",
        "INSERT INTO transports (domain, transport, active) VALUES ('relay.example', 'smtp:[10.0.0.1]:25', 1)",
        "UPDATE transports SET active = 0 WHERE domain = 'relay.example'",
        "DELETE FROM transports WHERE domain = 'relay.example'",
        "INSERT INTO dkim_keys (domain, selector, algorithm, private_key, public_key, active) VALUES ('example.com', 'sel', 'ed25519', 'x', 'eA==', 1)",
        "UPDATE dkim_keys SET active = 0 WHERE selector = 'sel'",
        "DELETE FROM dkim_keys WHERE selector = 'sel'",
    ];
    for statement in statements {
        let before = change_serial(&test.url).await;
        execute(&test.url, statement).await;
        let after = change_serial(&test.url).await;
        assert!(
            after > before,
            "{statement}: the change counter stayed at {before}"
        );
    }
    test.cleanup().await;
}

async fn other_writers_reach_a_running_server(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let writer = &test.directory;
    domain(writer, "example.com").await;
    mailbox(writer, "bob@example.com").await;
    mailbox(writer, "carol@example.com").await;
    alias(
        writer,
        "team@example.com",
        &["carol@example.com", "friend@elsewhere.example"],
    )
    .await;
    // The server trusts its cache for an hour: only the change counter can tell it.
    let mut options: DirectoryOptions = writer.options().clone();
    options.cache_ttl = Duration::from_secs(3600);
    options.negative_cache_ttl = Duration::from_secs(3600);
    let server = Directory::open(options).await.unwrap();
    let _watcher = server.watch_changes();
    assert_eq!(
        resolved(&server, "bob@example.com").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    assert!(server.account("bob@example.com").await.unwrap().is_some());
    assert_eq!(
        resolved(&server, "dave@example.com").await,
        Err(Rejection::UnknownUser)
    );
    assert_eq!(
        resolved(&server, "team@example.com").await.unwrap().len(),
        2
    );

    // A mailbox deactivated in MUM's web UI stops receiving and logging in.
    execute(
        &test.url,
        "UPDATE mailboxes SET active = 0, updated_at = NULL WHERE local_part = 'bob'",
    )
    .await;
    eventually("bob deactivated by another writer", || async {
        resolved(&server, "bob@example.com").await == Err(Rejection::MailboxInactive)
    })
    .await;
    // Each answer is fresh within one poll: a fresh resolution does not make every other
    // answer fresh (the watcher's first reading may have come between the two lookups).
    eventually(
        "bob's login refused after another writer deactivated it",
        || async { server.account("bob@example.com").await.unwrap().is_none() },
    )
    .await;

    // A mailbox created there receives.
    insert_foreign_mailbox(&test, "dave", "carol@example.com").await;
    eventually("dave created by another writer", || async {
        resolved(&server, "dave@example.com").await == Ok(vec!["local:dave@example.com".to_owned()])
    })
    .await;

    // A recipient removed from an alias there is no longer delivered to.
    execute(
        &test.url,
        "DELETE FROM alias_recipients WHERE recipient_address = 'friend@elsewhere.example'",
    )
    .await;
    eventually("a recipient removed by another writer", || async {
        resolved(&server, "team@example.com").await
            == Ok(vec!["local:carol@example.com".to_owned()])
    })
    .await;
    server.close().await;
    test.cleanup().await;
}

async fn refusals_expire_after_the_negative_ttl(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let writer = &test.directory;
    domain(writer, "example.com").await;
    mailbox(writer, "bob@example.com").await;
    // No change watcher: as if the triggers were missing, only the TTLs bound staleness.
    let mut options: DirectoryOptions = writer.options().clone();
    options.cache_ttl = Duration::from_secs(3600);
    options.negative_cache_ttl = Duration::from_millis(200);
    let server = Directory::open(options).await.unwrap();
    assert_eq!(
        resolved(&server, "dave@example.com").await,
        Err(Rejection::UnknownUser)
    );
    assert!(server.account("dave@example.com").await.unwrap().is_none());
    assert!(server.account("bob@example.com").await.unwrap().is_some());

    insert_foreign_mailbox(&test, "dave", "bob@example.com").await;
    execute(
        &test.url,
        "UPDATE mailboxes SET active = 0 WHERE local_part = 'bob'",
    )
    .await;
    eventually("the refusal of dave expiring", || async {
        resolved(&server, "dave@example.com").await == Ok(vec!["local:dave@example.com".to_owned()])
    })
    .await;
    eventually("the unknown login dave expiring", || async {
        server.account("dave@example.com").await.unwrap().is_some()
    })
    .await;
    // The positive answer about bob is still the cached one: only refusals expire early.
    assert!(server.account("bob@example.com").await.unwrap().is_some());
    server.close().await;
    test.cleanup().await;
}

async fn an_existing_database_of_the_previous_version_is_upgraded(backend: TestBackend) {
    use sqlx::Connection;
    let database = fresh_database(backend).await;
    let migrator = match backend {
        TestBackend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        TestBackend::Postgres => sqlx::migrate!("./migrations/postgres"),
        TestBackend::MariaDb => sqlx::migrate!("./migrations/mysql"),
    };
    let mut versions: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    versions.sort_unstable();
    let latest = versions.pop().unwrap();
    let previous = versions.pop().unwrap();
    // The database as the previous release left it: its schema, and data written by it.
    let url = if backend == TestBackend::Sqlite {
        format!("{}?mode=rwc", database.url)
    } else {
        database.url.clone()
    };
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(&url).await.unwrap();
    migrator.run_to(previous, &mut connection).await.unwrap();
    connection.close().await.unwrap();
    let old = Directory::connect(database.options()).await.unwrap();
    assert_eq!(old.schema_versions().await.unwrap(), (previous, latest));
    old.close().await;
    // Rows as the previous release wrote them: in SQL, since this release's writes also fill
    // the columns the newest migration adds.
    execute(
        &database.url,
        "INSERT INTO domains (domain, homedir, active) VALUES ('example.com', '/srv/mail/example.com', 1)",
    )
    .await;
    execute(
        &database.url,
        &format!(
            "INSERT INTO mailboxes (local_part, password, domain_id, homedir, maildir, active) \
             SELECT 'bob', '{SHA512_SECRET_ONE}', id, '/srv/mail/example.com/bob', \
             'maildir:/srv/mail/example.com/bob/Maildir:LAYOUT=fs', 1 FROM domains WHERE domain = 'example.com'"
        ),
    )
    .await;
    let refused = Directory::open(database.options()).await.err().unwrap();
    assert!(
        matches!(refused, DirectoryError::SchemaTooOld { .. }),
        "{refused}"
    );

    // The server trusts its cache for an hour: only the change counter can tell it.
    let mut options = database.options();
    options.cache_ttl = Duration::from_secs(3600);
    options.negative_cache_ttl = Duration::from_secs(3600);
    let (server, report) = Directory::open_and_migrate(options).await.unwrap();
    assert_eq!((report.from_version, report.to_version), (previous, latest));
    let _watcher = server.watch_changes();
    assert_eq!(
        resolved(&server, "bob@example.com").await,
        Ok(vec!["local:bob@example.com".to_owned()])
    );
    execute(
        &database.url,
        "UPDATE mailboxes SET active = 0 WHERE local_part = 'bob'",
    )
    .await;
    eventually("a change by another writer after the upgrade", || async {
        resolved(&server, "bob@example.com").await == Err(Rejection::MailboxInactive)
    })
    .await;
    server.close().await;
    database.cleanup().await;
}

/// The (action, subject) of the newest `n` audit entries, newest first.
async fn audited(dir: &Directory, n: i64) -> Vec<(String, String)> {
    dir.audit_log(n)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| (entry.action, entry.subject))
        .collect()
}

async fn transports_are_validated_normalised_and_audited(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    // Not a hosted domain: a transport is for mail that leaves.
    let added = dir
        .add_transport(
            ACTOR,
            "Transport.COM",
            "SMTP:Mail.Transport.com",
            Some("their gateway"),
        )
        .await
        .unwrap();
    assert_eq!(added.domain, "transport.com");
    assert_eq!(added.next_hop.to_string(), "smtp:mail.transport.com");
    assert!(!added.next_hop.no_mx);
    assert_eq!(added.description.as_deref(), Some("their gateway"));
    dir.add_transport(ACTOR, "lmtp.example", "lmtp:[::1]:24", None)
        .await
        .unwrap();

    let bad = dir
        .add_transport(ACTOR, "other.example", "uucp:somewhere", None)
        .await
        .unwrap_err();
    assert!(matches!(bad, DirectoryError::Invalid(_)), "{bad}");
    assert!(
        bad.to_string()
            .contains("smtp:[host]:port, smtp:host, lmtp:host:port or [host]:port"),
        "{bad}"
    );
    let dup = dir
        .add_transport(ACTOR, "transport.com", "[10.0.0.2]:25", None)
        .await
        .unwrap_err();
    assert!(matches!(dup, DirectoryError::Conflict(_)), "{dup}");
    assert!(dup.to_string().contains("already has a transport"), "{dup}");

    let listed: Vec<(String, String)> = dir
        .list_transports()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.domain, t.next_hop.to_string()))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("lmtp.example".to_owned(), "lmtp:[::1]:24".to_owned()),
            (
                "transport.com".to_owned(),
                "smtp:mail.transport.com".to_owned()
            ),
        ]
    );
    let lmtp = dir.transport("LMTP.example").await.unwrap().unwrap();
    assert_eq!(
        (
            lmtp.next_hop.protocol,
            lmtp.next_hop.host.as_str(),
            lmtp.next_hop.port
        ),
        (HopProtocol::Lmtp, "::1", Some(24))
    );
    assert_eq!(dir.transport("nowhere.example").await.unwrap(), None);

    let updated = dir
        .update_transport(
            ACTOR,
            "transport.com",
            TransportUpdate {
                next_hop: Some("[10.0.0.9]:2525".to_owned()),
                active: Some(false),
                ..TransportUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.next_hop.to_string(), "smtp:[10.0.0.9]:2525");
    assert_eq!(updated.description.as_deref(), Some("their gateway"));
    assert_eq!(
        dir.transport("transport.com").await.unwrap(),
        None,
        "an inactive transport does not apply"
    );
    let unknown = dir
        .remove_transport(ACTOR, "nowhere.example")
        .await
        .unwrap_err();
    assert!(matches!(unknown, DirectoryError::NotFound(_)), "{unknown}");
    dir.remove_transport(ACTOR, "lmtp.example").await.unwrap();
    assert_eq!(dir.transport("lmtp.example").await.unwrap(), None);
    assert_eq!(
        audited(dir, 4).await,
        vec![
            ("transport.remove".to_owned(), "lmtp.example".to_owned()),
            ("transport.update".to_owned(), "transport.com".to_owned()),
            ("transport.add".to_owned(), "lmtp.example".to_owned()),
            ("transport.add".to_owned(), "transport.com".to_owned()),
        ]
    );

    // Another writer's value that Mailstead cannot use is an error naming the domain, not a
    // guess; a new next hop replaces it.
    execute(
        &test.url,
        "INSERT INTO transports (domain, transport, active) VALUES ('legacy.example', 'relay:[x.example]', 1)",
    )
    .await;
    let unusable = dir.transport("legacy.example").await.unwrap_err();
    assert!(
        unusable.to_string().contains("legacy.example"),
        "{unusable}"
    );
    dir.update_transport(
        ACTOR,
        "legacy.example",
        TransportUpdate {
            next_hop: Some("smtp:[x.example]".to_owned()),
            ..TransportUpdate::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        dir.transport("legacy.example")
            .await
            .unwrap()
            .unwrap()
            .next_hop
            .to_string(),
        "smtp:[x.example]"
    );
    test.cleanup().await;
}

const ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPrivateKeyMaterialForTests0000000000\n-----END PRIVATE KEY-----\n";
const RSA_PEM: &str =
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAsecret\n-----END RSA PRIVATE KEY-----\n";

async fn dkim_keys_belong_to_hosted_domains(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let dir = &test.directory;
    let unhosted = dir
        .add_dkim_key(
            ACTOR,
            "example.com",
            "s1",
            DkimAlgorithm::Ed25519,
            ED25519_PEM,
            "cHVi",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(unhosted, DirectoryError::NotFound(_)),
        "{unhosted}"
    );
    assert!(
        unhosted
            .to_string()
            .contains("mailstead domain add example.com"),
        "{unhosted}"
    );
    domain(dir, "example.com").await;
    let wrong_form = dir
        .add_dkim_key(
            ACTOR,
            "example.com",
            "s1",
            DkimAlgorithm::Rsa,
            ED25519_PEM,
            "cHVi",
        )
        .await
        .unwrap_err();
    assert!(
        wrong_form.to_string().contains("RSA PRIVATE KEY"),
        "{wrong_form}"
    );
    let bad_selector = dir
        .add_dkim_key(
            ACTOR,
            "example.com",
            "s 1",
            DkimAlgorithm::Ed25519,
            ED25519_PEM,
            "cHVi",
        )
        .await
        .unwrap_err();
    assert!(
        bad_selector.to_string().contains("selector"),
        "{bad_selector}"
    );
    let bad_public = dir
        .add_dkim_key(
            ACTOR,
            "example.com",
            "s1",
            DkimAlgorithm::Ed25519,
            ED25519_PEM,
            "p=x;",
        )
        .await
        .unwrap_err();
    assert!(bad_public.to_string().contains("base64"), "{bad_public}");
    assert_eq!(dir.dkim_signing_key("example.com").await.unwrap(), None);

    let first = dir
        .add_dkim_key(
            ACTOR,
            "Example.COM",
            "S1",
            DkimAlgorithm::Rsa,
            RSA_PEM,
            "cnNh",
        )
        .await
        .unwrap();
    assert_eq!(
        (
            first.domain.as_str(),
            first.selector.as_str(),
            first.algorithm
        ),
        ("example.com", "s1", DkimAlgorithm::Rsa)
    );
    assert!(first.active);
    assert!(first.created_at.is_some());
    let dup = dir
        .add_dkim_key(
            ACTOR,
            "example.com",
            "s1",
            DkimAlgorithm::Ed25519,
            ED25519_PEM,
            "cHVi",
        )
        .await
        .unwrap_err();
    assert!(matches!(dup, DirectoryError::Conflict(_)), "{dup}");
    assert!(dup.to_string().contains("--selector"), "{dup}");
    dir.add_dkim_key(
        ACTOR,
        "example.com",
        "s2",
        DkimAlgorithm::Ed25519,
        ED25519_PEM,
        "cHVi",
    )
    .await
    .unwrap();

    // The newest key signs, with its private key; Debug never shows that.
    let signing = dir.dkim_signing_key("EXAMPLE.com").await.unwrap().unwrap();
    assert_eq!(signing.info.selector, "s2");
    assert_eq!(signing.info.algorithm, DkimAlgorithm::Ed25519);
    assert_eq!(signing.private_key_pem(), ED25519_PEM);
    assert!(!format!("{signing:?}").contains("PrivateKeyMaterial"));
    let listed: Vec<(String, String)> = dir
        .list_dkim_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|key| (key.domain, key.selector))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("example.com".to_owned(), "s2".to_owned()),
            ("example.com".to_owned(), "s1".to_owned()),
        ]
    );

    let unknown = dir
        .remove_dkim_key(ACTOR, "example.com", Some("s9"))
        .await
        .unwrap_err();
    assert!(matches!(unknown, DirectoryError::NotFound(_)), "{unknown}");
    assert_eq!(
        dir.remove_dkim_key(ACTOR, "example.com", Some("S2"))
            .await
            .unwrap(),
        1
    );
    let fallback = dir.dkim_signing_key("example.com").await.unwrap().unwrap();
    assert_eq!(fallback.info.selector, "s1");
    dir.add_dkim_key(
        ACTOR,
        "example.com",
        "s3",
        DkimAlgorithm::Ed25519,
        ED25519_PEM,
        "cHVi",
    )
    .await
    .unwrap();
    assert_eq!(
        dir.remove_dkim_key(ACTOR, "example.com", None)
            .await
            .unwrap(),
        2
    );
    assert_eq!(dir.dkim_signing_key("example.com").await.unwrap(), None);
    assert!(dir.list_dkim_keys().await.unwrap().is_empty());

    let entries = dir.audit_log(6).await.unwrap();
    let summary: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.subject.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("dkim.remove", "example.com"),
            ("dkim.add", "example.com"),
            ("dkim.remove", "example.com"),
            ("dkim.add", "example.com"),
            ("dkim.add", "example.com"),
            ("domain.add", "example.com"),
        ]
    );
    for entry in &entries {
        let details = entry.details.as_deref().unwrap_or("");
        assert!(!details.contains("PRIVATE KEY"), "{details}");
    }

    // Removing the domain takes its keys: a domain added again must not sign with them.
    dir.add_dkim_key(
        ACTOR,
        "example.com",
        "s4",
        DkimAlgorithm::Ed25519,
        ED25519_PEM,
        "cHVi",
    )
    .await
    .unwrap();
    dir.remove_domain(ACTOR, "example.com", false)
        .await
        .unwrap();
    domain(dir, "example.com").await;
    assert_eq!(dir.dkim_signing_key("example.com").await.unwrap(), None);
    test.cleanup().await;
}

async fn transport_and_dkim_changes_reach_a_running_server(backend: TestBackend) {
    let test = fresh_directory(backend, |_| {}).await;
    let writer = &test.directory;
    domain(writer, "example.com").await;
    // The server trusts every cached answer, "no" included, for an hour: only the change
    // counter can tell it.
    let mut options: DirectoryOptions = writer.options().clone();
    options.cache_ttl = Duration::from_secs(3600);
    options.negative_cache_ttl = Duration::from_secs(3600);
    options.change_poll = Duration::from_millis(100);
    let server = Directory::open(options).await.unwrap();
    let _watcher = server.watch_changes();
    assert_eq!(server.transport("relay.example").await.unwrap(), None);
    assert_eq!(server.dkim_signing_key("example.com").await.unwrap(), None);

    writer
        .add_transport(ACTOR, "relay.example", "smtp:[10.0.0.1]:25", None)
        .await
        .unwrap();
    eventually("a new transport", || async {
        server.transport("relay.example").await.unwrap().is_some()
    })
    .await;
    writer
        .add_dkim_key(
            ACTOR,
            "example.com",
            "s1",
            DkimAlgorithm::Ed25519,
            ED25519_PEM,
            "cHVi",
        )
        .await
        .unwrap();
    eventually("a new DKIM key", || async {
        server
            .dkim_signing_key("example.com")
            .await
            .unwrap()
            .is_some()
    })
    .await;

    // Another writer, with plain SQL: only the triggers can tell the server, whose answers
    // are cached just before. The watcher is first given time to see the writer's last
    // change, which would otherwise clear those answers by itself.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(server.transport("relay.example").await.unwrap().is_some());
    execute(
        &test.url,
        "UPDATE transports SET transport = 'smtp:[10.0.0.2]:25' WHERE domain = 'relay.example'",
    )
    .await;
    eventually("another writer's transport change", || async {
        server
            .transport("relay.example")
            .await
            .unwrap()
            .is_some_and(|t| t.next_hop.host == "10.0.0.2")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        server
            .dkim_signing_key("example.com")
            .await
            .unwrap()
            .is_some()
    );
    execute(&test.url, "UPDATE dkim_keys SET active = 0").await;
    eventually("another writer's deactivated key", || async {
        server
            .dkim_signing_key("example.com")
            .await
            .unwrap()
            .is_none()
    })
    .await;
    server.close().await;
    test.cleanup().await;
}
