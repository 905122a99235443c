//! Imports against a real (SQLite) directory: plans, skips, failures, and re-runs.

#![allow(clippy::unwrap_used)]

use mailstead_admin::import::{self, Status};
use mailstead_admin::passwd_file;
use mailstead_directory::manage::{
    MumSnapshot, NewAlias, NewAliasRecord, NewDomain, NewDomainRecord, NewMailboxRecord,
    TlsPolicyRecord,
};
use mailstead_directory::{Directory, DirectoryOptions};

const BCRYPT: &str = "$2y$10$LphoQAi6RGvDDO9.UqiSq.de8SXIQ9y8tlgH1z.ZarpOrLEc.kzre";

async fn target(dir: &tempfile::TempDir) -> Directory {
    let root = dir.path().display().to_string();
    let options = DirectoryOptions::new(format!("sqlite://{root}/test.db"), &root);
    Directory::open_and_migrate(options).await.unwrap().0
}

fn statuses(import: &import::Import) -> Vec<(String, &'static str)> {
    import
        .steps
        .iter()
        .map(|step| (step.subject.clone(), step.status.label()))
        .collect()
}

fn mailbox(address: &str, quota_gib: Option<i64>) -> NewMailboxRecord {
    let (local, domain) = address.split_once('@').unwrap();
    NewMailboxRecord {
        address: address.to_owned(),
        password: BCRYPT.to_owned(),
        name: None,
        alternative_email: None,
        quota_gib,
        homedir: format!("/srv/mail/{domain}/{local}"),
        maildir: format!("maildir:/srv/mail/{domain}/{local}:LAYOUT=fs"),
        is_super_admin: false,
        send_only: false,
        active: true,
    }
}

#[tokio::test]
async fn passwd_file_skips_an_address_that_is_an_alias_here() {
    let dir = tempfile::tempdir().unwrap();
    let target = target(&dir).await;
    let new_domain = NewDomain {
        domain: "example.org".to_owned(),
        active: true,
        ..NewDomain::default()
    };
    target.add_domain("test", new_domain).await.unwrap();
    let new_alias = NewAlias {
        address: "info@example.org".to_owned(),
        recipients: vec!["someone@elsewhere.org".to_owned()],
        active: true,
        ..NewAlias::default()
    };
    target.add_alias("test", new_alias).await.unwrap();

    let entries = passwd_file::parse(
        "info@example.org:{PLAIN}secret-one\nnew@example.org:{PLAIN}secret-two::::/home/new\n",
        "users",
    )
    .unwrap();
    let mut plan = import::plan_passwd_file(&target, "users", &entries)
        .await
        .unwrap();
    assert_eq!(
        statuses(&plan),
        [
            ("example.org".to_owned(), "exists, unchanged"),
            ("info@example.org".to_owned(), "skipped"),
            ("new@example.org".to_owned(), "create"),
        ]
    );
    import::apply(&target, "import:test", &mut plan)
        .await
        .unwrap();
    assert!(plan.is_incomplete());
    assert_eq!(plan.counts().mailboxes.created, 1);
    assert_eq!(plan.counts().mailboxes.skipped, 1);
    let created = target.get_mailbox("new@example.org").await.unwrap();
    assert_eq!(created.location.mail, "maildir:/home/new/Maildir");
    assert_eq!(target.audit_log(1).await.unwrap()[0].actor, "import:test");
}

#[tokio::test]
async fn mum_snapshot_plan_apply_and_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let target = target(&dir).await;
    let snapshot = MumSnapshot {
        domains: vec![NewDomainRecord {
            domain: "Mum.Example".to_owned(),
            homedir: "/srv/mail/mailboxes/mum.example".to_owned(),
            description: Some("from MUM".to_owned()),
            quota_gib: Some(2),
            // Lower than what the domain holds: limits are set last, so this still imports.
            max_quota_gib: Some(1),
            max_aliases: Some(1),
            max_mailboxes: Some(1),
            active: true,
        }],
        mailboxes: vec![
            mailbox("jane@mum.example", Some(5)),
            mailbox("john@mum.example", None),
            mailbox("bad address@mum.example", None),
        ],
        aliases: vec![
            NewAliasRecord {
                address: "@mum.example".to_owned(),
                description: None,
                active: true,
                deactivate_at: None,
                recipients: vec!["JANE@mum.example".to_owned()],
                senders: vec!["john@mum.example".to_owned()],
            },
            NewAliasRecord {
                address: "list@mum.example".to_owned(),
                description: None,
                active: true,
                deactivate_at: None,
                recipients: vec!["jane@mum.example".to_owned()],
                // Skipped above, so creating this alias is refused.
                senders: vec!["bad.address@mum.example".to_owned()],
            },
        ],
        tls_policies: vec![TlsPolicyRecord {
            domain: "bank.example".to_owned(),
            policy: "maybe".to_owned(),
            params: None,
            description: None,
            active: true,
        }],
    };

    let mut plan = import::plan_mum(&snapshot, "mum", &target).await.unwrap();
    assert_eq!(plan.counts().total.to_create, 5);
    assert_eq!(plan.counts().total.skipped, 2, "{:?}", statuses(&plan));
    import::apply(&target, "import:mum", &mut plan)
        .await
        .unwrap();
    let counts = plan.counts();
    assert_eq!(counts.total.created, 4, "{:?}", statuses(&plan));
    assert_eq!(counts.aliases.failed, 1);
    let failed = plan
        .steps
        .iter()
        .find(|step| step.subject == "list@mum.example")
        .unwrap();
    assert!(
        matches!(&failed.status, Status::Failed { reason } if reason.contains("not a mailbox"))
    );

    let domain = target.get_domain("mum.example").await.unwrap();
    assert_eq!(
        domain.homedir, "/srv/mail/mailboxes/mum.example",
        "MUM's homedir is kept"
    );
    assert_eq!(
        (
            domain.max_quota_gib,
            domain.max_mailboxes,
            domain.max_aliases
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(
        target
            .get_mailbox("jane@mum.example")
            .await
            .unwrap()
            .own_quota
            .unwrap()
            .to_string(),
        "5G"
    );
    assert!(
        target
            .may_send_as("john@mum.example", "anything@mum.example")
            .await
            .unwrap()
    );

    // Again: what was created is unchanged; what could not be done still cannot.
    let plan = import::plan_mum(&snapshot, "mum", &target).await.unwrap();
    let counts = plan.counts();
    assert_eq!(counts.total.to_create, 1, "{:?}", statuses(&plan));
    assert_eq!(counts.total.unchanged, 4);

    // A change made here since is reported and kept.
    let update = mailstead_directory::manage::MailboxUpdate {
        name: Some(Some("Jane".to_owned())),
        ..Default::default()
    };
    target
        .update_mailbox("admin", "jane@mum.example", update)
        .await
        .unwrap();
    let plan = import::plan_mum(&snapshot, "mum", &target).await.unwrap();
    let jane = plan
        .steps
        .iter()
        .find(|step| step.subject == "jane@mum.example")
        .unwrap();
    assert_eq!(
        jane.status,
        Status::Differs {
            differences: vec!["name: Jane here, none in MUM".to_owned()]
        }
    );

    // A password changed here is told apart from MUM's, without showing either hash.
    let new_hash = mailstead_password::hash(b"a new password").unwrap();
    target
        .set_password("admin", "jane@mum.example", &new_hash)
        .await
        .unwrap();
    let plan = import::plan_mum(&snapshot, "mum", &target).await.unwrap();
    let jane = plan
        .steps
        .iter()
        .find(|step| step.subject == "jane@mum.example")
        .unwrap();
    let Status::Differs { differences } = &jane.status else {
        panic!("{:?}", jane.status);
    };
    assert!(
        differences
            .contains(&"password: the stored hash here, another BLF-CRYPT hash in MUM".to_owned()),
        "{differences:?}"
    );
    assert!(
        !differences
            .iter()
            .any(|d| d.contains("$2y$") || d.contains("argon2"))
    );
}

/// The reason a step was skipped, by subject.
fn skip_reason(import: &import::Import, subject: &str) -> String {
    let step = import
        .steps
        .iter()
        .find(|step| step.subject == subject)
        .unwrap_or_else(|| panic!("no step for {subject}: {:?}", statuses(import)));
    match &step.status {
        Status::Skipped { reason } => reason.clone(),
        other => panic!("{subject} is {other:?}, not skipped"),
    }
}

#[tokio::test]
async fn passwd_file_skips_addresses_unsafe_as_paths_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let target = target(&dir).await;
    let entries = passwd_file::parse(
        "alice@example.org:{PLAIN}secret-one\n\
         alice/work@example.org:{PLAIN}secret-two::::::userdb_mail=maildir:/var/vmail/%d/%n\n\
         bob@example.org:{PLAIN}secret-three\n",
        "users",
    )
    .unwrap();
    let mut plan = import::plan_passwd_file(&target, "users", &entries)
        .await
        .unwrap();
    let reason = skip_reason(&plan, "alice/work@example.org");
    assert!(reason.contains("local part contains '/'"), "{reason}");
    import::apply(&target, "import:test", &mut plan)
        .await
        .unwrap();
    assert!(plan.is_incomplete());
    assert_eq!(plan.counts().mailboxes.created, 2, "{:?}", statuses(&plan));
    let addresses: Vec<String> = target
        .list_mailboxes(None)
        .await
        .unwrap()
        .iter()
        .map(|mailbox| mailbox.address.to_string())
        .collect();
    assert_eq!(addresses, ["alice@example.org", "bob@example.org"]);
}

#[tokio::test]
async fn mum_import_skips_addresses_and_locations_unsafe_as_paths() {
    let dir = tempfile::tempdir().unwrap();
    let target = target(&dir).await;
    let mut climbing = mailbox("mallory@mum.example", None);
    climbing.maildir = "maildir:/srv/mail/mum.example/mallory/../alice:LAYOUT=fs".to_owned();
    let snapshot = MumSnapshot {
        domains: vec![NewDomainRecord {
            domain: "mum.example".to_owned(),
            homedir: "/srv/mail/mum.example".to_owned(),
            description: None,
            quota_gib: None,
            max_quota_gib: None,
            max_aliases: None,
            max_mailboxes: None,
            active: true,
        }],
        mailboxes: vec![
            mailbox("alice@mum.example", None),
            mailbox("alice/work@mum.example", None),
            climbing,
        ],
        aliases: vec![NewAliasRecord {
            address: "team/x@mum.example".to_owned(),
            description: None,
            active: true,
            deactivate_at: None,
            recipients: vec!["alice@mum.example".to_owned()],
            senders: Vec::new(),
        }],
        tls_policies: Vec::new(),
    };
    let mut plan = import::plan_mum(&snapshot, "mum", &target).await.unwrap();
    let reason = skip_reason(&plan, "alice/work@mum.example");
    assert!(reason.contains("local part contains '/'"), "{reason}");
    let reason = skip_reason(&plan, "mallory@mum.example");
    assert!(reason.contains("'..'"), "{reason}");
    let reason = skip_reason(&plan, "team/x@mum.example");
    assert!(reason.contains("local part contains '/'"), "{reason}");
    import::apply(&target, "import:mum", &mut plan)
        .await
        .unwrap();
    let counts = plan.counts();
    assert_eq!((counts.total.created, counts.total.skipped), (2, 3));
    assert_eq!(target.list_mailboxes(None).await.unwrap().len(), 1);
    assert!(target.list_aliases(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn passwd_file_acl_groups_become_the_mailboxs_groups() {
    let dir = tempfile::tempdir().unwrap();
    let target = target(&dir).await;
    // Seed 004's line: the groups come with the login's account.
    let entries = passwd_file::parse(
        "alice@example.org:{PLAIN}secret-one:5000:5000::/var/vmail/example.org/alice::userdb_quota_rule=\\\n    *:storage=5G userdb_acl_groups=PublicMailboxAdmins,Editors\n",
        "users",
    )
    .unwrap();
    let mut plan = import::plan_passwd_file(&target, "users", &entries)
        .await
        .unwrap();
    import::apply(&target, "import:test", &mut plan)
        .await
        .unwrap();
    assert!(!plan.is_incomplete());
    assert_eq!(
        target.acl_groups("alice@example.org").await.unwrap(),
        vec!["Editors", "PublicMailboxAdmins"]
    );
    let account = target
        .login_credentials("alice@example.org")
        .await
        .unwrap()
        .unwrap()
        .account
        .unwrap();
    assert_eq!(account.acl_groups, vec!["Editors", "PublicMailboxAdmins"]);

    // Run again: unchanged; with other groups in the file: a difference, reported.
    let plan = import::plan_passwd_file(&target, "users", &entries)
        .await
        .unwrap();
    assert_eq!(
        statuses(&plan)[1],
        ("alice@example.org".to_owned(), "exists, unchanged")
    );
    let changed = passwd_file::parse(
        "alice@example.org:{PLAIN}secret-one:5000:5000::/var/vmail/example.org/alice::userdb_quota_rule=*:storage=5G userdb_acl_groups=Editors\n",
        "users",
    )
    .unwrap();
    let plan = import::plan_passwd_file(&target, "users", &changed)
        .await
        .unwrap();
    assert_eq!(statuses(&plan)[1].1, "exists, differs: kept");
}
