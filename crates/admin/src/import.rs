//! The two imports, a Dovecot passwd-file and a MUM database, as a plan then its application.
//!
//! An import first compares every record of the source with the target directory and makes a
//! [`Step`] of it: create it, it exists unchanged, or it exists and differs (then it is kept as
//! it is: an import never overwrites what an administrator may have changed since). A dry run
//! stops there and reports the plan. Applying runs the creations in order (domains, mailboxes,
//! aliases, TLS policies, so that each finds what it refers to), each one audited under the
//! import's actor. Running an import again therefore changes nothing and reports everything as
//! existing.
//!
//! A record that cannot be imported (bad data, or an address that is an alias here and a
//! mailbox there) is skipped and reported, and the rest goes ahead; a failing database stops
//! the import (see [`AdminError::Apply`]).
//!
//! A domain's limits (`max_quota`, `max_mailboxes`, `max_aliases`) are set after its mailboxes
//! and aliases are in: MUM enforces no `max_quota` and lets limits be lowered below what a
//! domain holds, and Mailstead refuses additions beyond them, so setting them first could make
//! a faithful copy impossible.

use std::collections::HashSet;
use std::fmt::Display;

use serde::Serialize;

use mailstead_directory::access::Actor;
use mailstead_directory::address::{
    Address, AliasAddress, check_domain_path_safe, normalize_domain,
};
use mailstead_directory::manage::{
    DomainUpdate, MumSnapshot, NewAlias, NewDomain, NewMailbox, NewTlsPolicy, fill_template,
};
use mailstead_directory::model::{Mailbox, MailboxLocation, Quota, TlsPolicyKind};
use mailstead_directory::{Backend, Directory, DirectoryError, DirectoryOptions};

use crate::AdminError;
use crate::passwd_file::PasswdEntry;

/// The audit actor of a passwd-file import.
pub const PASSWD_FILE_ACTOR: &str = "import:passwd-file";
/// The audit actor of a MUM import.
pub const MUM_ACTOR: &str = "import:mum";

/// What a step is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Domain,
    Mailbox,
    Alias,
    TlsPolicy,
}

impl Kind {
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Domain => "domain",
            Kind::Mailbox => "mailbox",
            Kind::Alias => "alias",
            Kind::TlsPolicy => "tls policy",
        }
    }
}

/// Where a record stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    /// Not in the target yet; applying creates it.
    Create,
    /// Created by this run.
    Created,
    /// In the target and the same.
    Unchanged,
    /// In the target and different; kept as it is. Each entry names a field and both values.
    Differs { differences: Vec<String> },
    /// Cannot be imported; left out.
    Skipped { reason: String },
    /// Creating it was refused by the directory.
    Failed { reason: String },
}

impl Status {
    /// The words the report shows.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Create => "create",
            Status::Created => "created",
            Status::Unchanged => "exists, unchanged",
            Status::Differs { .. } => "exists, differs: kept",
            Status::Skipped { .. } => "skipped",
            Status::Failed { .. } => "failed",
        }
    }

    /// The differences, skip reason or failure, for the report.
    pub fn detail(&self) -> Option<String> {
        match self {
            Status::Differs { differences } => Some(differences.join("; ")),
            Status::Skipped { reason } | Status::Failed { reason } => Some(reason.clone()),
            Status::Create | Status::Created | Status::Unchanged => None,
        }
    }
}

/// One record of the source and what the import does with it.
#[derive(Serialize)]
pub struct Step {
    pub kind: Kind,
    /// The domain, address or alias (`@domain` for a catch-all), normalised.
    pub subject: String,
    #[serde(flatten)]
    pub status: Status,
    /// Fields that were ignored, doubtful hashes and the like.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The write that creates it; `Some` while the status is [`Status::Create`].
    #[serde(skip)]
    op: Option<Op>,
}

impl Step {
    fn new(kind: Kind, subject: impl Into<String>, status: Status) -> Step {
        Step {
            kind,
            subject: subject.into(),
            status,
            notes: Vec::new(),
            op: None,
        }
    }

    fn create(kind: Kind, subject: impl Into<String>, op: Op) -> Step {
        Step {
            op: Some(op),
            ..Step::new(kind, subject, Status::Create)
        }
    }

    fn with_notes(mut self, notes: Vec<String>) -> Step {
        self.notes = notes;
        self
    }
}

/// The directory write behind a creation. Not `Debug`: it carries password hashes.
enum Op {
    Domain {
        new: NewDomain,
        /// Set once the domain's mailboxes and aliases are in (see the module comment).
        limits: DomainUpdate,
    },
    Mailbox {
        new: Box<NewMailbox>,
        /// Its groups for IMAP ACLs, added once it exists.
        acl_groups: Vec<String>,
    },
    Alias(NewAlias),
    TlsPolicy(NewTlsPolicy),
}

/// A planned (and perhaps applied) import.
pub struct Import {
    /// What was read: the file's path or the database URL without its password.
    pub source: String,
    /// Whether [`apply`] ran; until then this is a dry run's plan.
    pub applied: bool,
    pub steps: Vec<Step>,
}

/// How many steps stand where, for one kind or all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Still to create: in a dry run, what applying would create.
    pub to_create: usize,
    pub created: usize,
    pub unchanged: usize,
    pub differs: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl Counts {
    fn add(&mut self, status: &Status) {
        let slot = match status {
            Status::Create => &mut self.to_create,
            Status::Created => &mut self.created,
            Status::Unchanged => &mut self.unchanged,
            Status::Differs { .. } => &mut self.differs,
            Status::Skipped { .. } => &mut self.skipped,
            Status::Failed { .. } => &mut self.failed,
        };
        *slot += 1;
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CountsByKind {
    pub domains: Counts,
    pub mailboxes: Counts,
    pub aliases: Counts,
    pub tls_policies: Counts,
    pub total: Counts,
}

/// What `--json` prints for an import.
#[derive(Serialize)]
pub struct Report<'a> {
    pub source: &'a str,
    pub dry_run: bool,
    pub counts: CountsByKind,
    pub steps: &'a [Step],
}

impl Import {
    pub fn counts(&self) -> CountsByKind {
        let mut counts = CountsByKind::default();
        for step in &self.steps {
            let slot = match step.kind {
                Kind::Domain => &mut counts.domains,
                Kind::Mailbox => &mut counts.mailboxes,
                Kind::Alias => &mut counts.aliases,
                Kind::TlsPolicy => &mut counts.tls_policies,
            };
            slot.add(&step.status);
            counts.total.add(&step.status);
        }
        counts
    }

    pub fn report(&self) -> Report<'_> {
        Report {
            source: &self.source,
            dry_run: !self.applied,
            counts: self.counts(),
            steps: &self.steps,
        }
    }

    /// Whether some record was skipped or refused: the import is incomplete.
    pub fn is_incomplete(&self) -> bool {
        let total = self.counts().total;
        total.skipped > 0 || total.failed > 0
    }
}

/// Plans importing the users of a passwd-file (see [`crate::passwd_file`]): their domains,
/// created with no limits, and their mailboxes.
///
/// # Errors
/// Database failures of the target.
pub async fn plan_passwd_file(
    target: &Directory,
    source: &str,
    entries: &[PasswdEntry],
) -> Result<Import, AdminError> {
    let mut steps = Vec::new();
    let alias_domains = alias_domain_names(target).await?;
    let mut seen_domains = HashSet::new();
    for entry in entries {
        let domain = entry.address.domain();
        if !seen_domains.insert(domain.to_owned()) {
            continue;
        }
        let new = NewDomain {
            domain: domain.to_owned(),
            active: true,
            ..NewDomain::default()
        };
        steps.push(
            plan_domain(target, &alias_domains, new, DomainUpdate::default(), |_| {
                Vec::new()
            })
            .await?,
        );
    }
    for entry in entries {
        steps.push(plan_passwd_mailbox(target, entry).await?);
    }
    Ok(Import {
        source: source.to_owned(),
        applied: false,
        steps,
    })
}

async fn plan_passwd_mailbox(target: &Directory, entry: &PasswdEntry) -> Result<Step, AdminError> {
    let address = entry.address.to_string();
    let template_home = match fill_template(&target.options().homedir_template, &entry.address) {
        Ok(home) => home,
        Err(err) => {
            return Ok(skipped(Kind::Mailbox, &address, err).with_notes(entry.notes.clone()));
        }
    };
    let home = entry.home.clone().unwrap_or(template_home);
    let mail = entry.mail_location(&home);
    let step = match lookup_mailbox(target, &address).await? {
        Some(existing) => {
            let mut differences = Vec::new();
            let stored = target.password_hash(&address).await?.unwrap_or_default();
            differ(
                &mut differences,
                "password",
                &describe_hash(&stored, &stored),
                &describe_hash(&entry.password, &stored),
                "the file",
            );
            if let Some(name) = &entry.name {
                differ(
                    &mut differences,
                    "name",
                    &show(&existing.name),
                    name,
                    "the file",
                );
            }
            if let Some(quota) = entry.quota {
                differ(
                    &mut differences,
                    "quota",
                    &show(&existing.own_quota),
                    &quota.to_string(),
                    "the file",
                );
            }
            if let Some(home) = &entry.home {
                differ(
                    &mut differences,
                    "home",
                    &existing.location.home.display().to_string(),
                    home,
                    "the file",
                );
            }
            if let Some(mail) = &mail {
                differ(
                    &mut differences,
                    "mail",
                    &existing.location.mail,
                    mail,
                    "the file",
                );
            }
            if !entry.acl_groups.is_empty() {
                let mut wanted = entry.acl_groups.clone();
                wanted.sort();
                wanted.dedup();
                differ(
                    &mut differences,
                    "acl_groups",
                    &target.acl_groups(&address).await?.join(","),
                    &wanted.join(","),
                    "the file",
                );
            }
            existing_status(Kind::Mailbox, address, differences)
        }
        None => match alias_clash(target, &address).await? {
            Some(reason) => Step::new(Kind::Mailbox, address, Status::Skipped { reason }),
            None => {
                let new = NewMailbox {
                    address: address.clone(),
                    password_hash: entry.password.clone(),
                    name: entry.name.clone(),
                    quota: entry.quota,
                    active: true,
                    // A home is passed when the file fixes the location; else the templates apply.
                    homedir: mail.is_some().then_some(home),
                    maildir: mail,
                    ..NewMailbox::default()
                };
                let mut acl_groups = entry.acl_groups.clone();
                acl_groups.sort();
                acl_groups.dedup();
                let op = Op::Mailbox {
                    new: Box::new(new),
                    acl_groups,
                };
                Step::create(Kind::Mailbox, address, op)
            }
        },
    };
    Ok(step.with_notes(entry.notes.clone()))
}

/// Opens the database an import reads, without touching its schema (it is MUM's).
///
/// # Errors
/// [`AdminError::Usage`] for a URL that is no database URL, [`AdminError::Source`] when it
/// cannot be reached.
pub async fn connect_source(url: &str, label: &str) -> Result<Directory, AdminError> {
    if let Err(err) = Backend::from_url(url) {
        return Err(AdminError::Usage(format!(
            "{label} is not a database URL: {err}; write it like mysql://user:password@host/mum"
        )));
    }
    let mut options = DirectoryOptions::new(url, "/nonexistent");
    options.max_connections = 2;
    options.cache_capacity = 0;
    Directory::connect(options)
        .await
        .map_err(|source| AdminError::Source {
            label: label.to_owned(),
            source,
        })
}

/// Reads MUM's tables from an import's source.
///
/// # Errors
/// [`AdminError::NotMum`] when the tables cannot be read as MUM's (a wrong database, say),
/// [`AdminError::Source`] when the database fails.
pub async fn read_mum(source: &Directory, label: &str) -> Result<MumSnapshot, AdminError> {
    source
        .read_mum_tables()
        .await
        .map_err(|source| match source {
            DirectoryError::Sql(_) => AdminError::NotMum {
                label: label.to_owned(),
                source,
            },
            source => AdminError::Source {
                label: label.to_owned(),
                source,
            },
        })
}

/// Plans importing MUM's tables (from [`read_mum`]): domains, mailboxes (hash, homedir and
/// maildir kept), aliases with their recipients and senders, TLS policies.
///
/// # Errors
/// Database failures of the target.
pub async fn plan_mum(
    snapshot: &MumSnapshot,
    label: &str,
    target: &Directory,
) -> Result<Import, AdminError> {
    let mut steps = Vec::new();
    let alias_domains = alias_domain_names(target).await?;
    for record in &snapshot.domains {
        let domain = match normalize_domain(&record.domain) {
            Ok(domain) => domain,
            Err(err) => {
                steps.push(skipped(Kind::Domain, &record.domain, err));
                continue;
            }
        };
        let quota = Quota::from_columns(record.quota_gib, None);
        let new = NewDomain {
            domain,
            description: record.description.clone(),
            quota,
            active: record.active,
            homedir: Some(record.homedir.clone()),
            ..NewDomain::default()
        };
        let limits = DomainUpdate {
            max_quota_gib: record.max_quota_gib.map(Some),
            max_aliases: record.max_aliases.map(Some),
            max_mailboxes: record.max_mailboxes.map(Some),
            ..DomainUpdate::default()
        };
        let step = plan_domain(target, &alias_domains, new, limits, |existing| {
            let mut differences = Vec::new();
            differ(
                &mut differences,
                "description",
                &show(&existing.description),
                &show(&record.description),
                "MUM",
            );
            differ(
                &mut differences,
                "quota",
                &show(&existing.quota),
                &show(&quota),
                "MUM",
            );
            differ(
                &mut differences,
                "max_quota",
                &show_gib(existing.max_quota_gib),
                &show_gib(record.max_quota_gib),
                "MUM",
            );
            differ(
                &mut differences,
                "max_mailboxes",
                &show(&existing.max_mailboxes),
                &show(&record.max_mailboxes),
                "MUM",
            );
            differ(
                &mut differences,
                "max_aliases",
                &show(&existing.max_aliases),
                &show(&record.max_aliases),
                "MUM",
            );
            differ(
                &mut differences,
                "active",
                &existing.active.to_string(),
                &record.active.to_string(),
                "MUM",
            );
            differences
        })
        .await?;
        steps.push(step);
    }

    for record in &snapshot.mailboxes {
        let parsed = Address::parse(&record.address).and_then(|address| {
            address.check_path_safe()?;
            Ok(address)
        });
        let address = match parsed {
            Ok(address) => address.to_string(),
            Err(err) => {
                steps.push(skipped(Kind::Mailbox, &record.address, err));
                continue;
            }
        };
        if record.password.is_empty() {
            let reason = "it has no password in MUM".to_owned();
            steps.push(Step::new(
                Kind::Mailbox,
                address,
                Status::Skipped { reason },
            ));
            continue;
        }
        if let Some(why) = MailboxLocation::parse(&record.homedir, &record.maildir).escape_problem()
        {
            let reason = format!("{why} in MUM; correct its homedir and maildir there first");
            steps.push(Step::new(
                Kind::Mailbox,
                address,
                Status::Skipped { reason },
            ));
            continue;
        }
        let quota = Quota::from_columns(record.quota_gib, None);
        let step = match lookup_mailbox(target, &address).await? {
            Some(existing) => {
                let mut differences = Vec::new();
                let stored = target.password_hash(&address).await?.unwrap_or_default();
                differ(
                    &mut differences,
                    "password",
                    &describe_hash(&stored, &stored),
                    &describe_hash(&record.password, &stored),
                    "MUM",
                );
                differ(
                    &mut differences,
                    "name",
                    &show(&existing.name),
                    &show(&record.name),
                    "MUM",
                );
                differ(
                    &mut differences,
                    "alternative_email",
                    &show(&existing.alternative_email),
                    &show(&record.alternative_email),
                    "MUM",
                );
                differ(
                    &mut differences,
                    "quota",
                    &show(&existing.own_quota),
                    &show(&quota),
                    "MUM",
                );
                differ(
                    &mut differences,
                    "homedir",
                    &existing.location.home.display().to_string(),
                    &record.homedir,
                    "MUM",
                );
                differ(
                    &mut differences,
                    "maildir",
                    &existing.location.mail,
                    &record.maildir,
                    "MUM",
                );
                differ(
                    &mut differences,
                    "super admin",
                    &existing.is_super_admin.to_string(),
                    &record.is_super_admin.to_string(),
                    "MUM",
                );
                differ(
                    &mut differences,
                    "send_only",
                    &existing.send_only.to_string(),
                    &record.send_only.to_string(),
                    "MUM",
                );
                differ(
                    &mut differences,
                    "active",
                    &existing.active.to_string(),
                    &record.active.to_string(),
                    "MUM",
                );
                existing_status(Kind::Mailbox, address, differences)
            }
            None => match alias_clash(target, &address).await? {
                Some(reason) => Step::new(Kind::Mailbox, address, Status::Skipped { reason }),
                None => {
                    let new = NewMailbox {
                        address: address.clone(),
                        password_hash: record.password.clone(),
                        name: record.name.clone(),
                        alternative_email: record.alternative_email.clone(),
                        quota,
                        send_only: record.send_only,
                        active: record.active,
                        is_super_admin: record.is_super_admin,
                        homedir: Some(record.homedir.clone()),
                        maildir: Some(record.maildir.clone()),
                    };
                    let mut notes = Vec::new();
                    if let Err(err) = mailstead_password::scheme_name(&record.password) {
                        notes.push(format!(
                            "its password cannot be checked by mailstead ({err}); it is kept as is, but this login will fail until the password is set again"
                        ));
                    }
                    Step::create(
                        Kind::Mailbox,
                        address,
                        Op::Mailbox {
                            new: Box::new(new),
                            acl_groups: Vec::new(),
                        },
                    )
                    .with_notes(notes)
                }
            },
        };
        steps.push(step);
    }

    for record in &snapshot.aliases {
        let parsed = AliasAddress::parse(&record.address).and_then(|address| {
            address.check_path_safe()?;
            Ok(address)
        });
        let address = match parsed {
            Ok(address) => address,
            Err(err) => {
                steps.push(skipped(Kind::Alias, &record.address, err));
                continue;
            }
        };
        let shown = if address.is_catch_all() {
            format!("@{}", address.domain())
        } else {
            address.to_string()
        };
        let recipients = match normalize_all(&record.recipients) {
            Ok(recipients) => recipients,
            Err(err) => {
                let reason = format!("recipient {err}");
                steps.push(Step::new(Kind::Alias, shown, Status::Skipped { reason }));
                continue;
            }
        };
        let senders = match normalize_all(&record.senders) {
            Ok(senders) => senders,
            Err(err) => {
                let reason = format!("sender {err}");
                steps.push(Step::new(Kind::Alias, shown, Status::Skipped { reason }));
                continue;
            }
        };
        let step = match target.get_alias(&shown).await {
            Ok(existing) => {
                let existing_recipients =
                    normalize_all(&existing.recipients).unwrap_or(existing.recipients.clone());
                let existing_senders =
                    normalize_all(&existing.senders).unwrap_or(existing.senders.clone());
                let mut differences = Vec::new();
                differ(
                    &mut differences,
                    "description",
                    &show(&existing.description),
                    &show(&record.description),
                    "MUM",
                );
                differ(
                    &mut differences,
                    "active",
                    &existing.active.to_string(),
                    &record.active.to_string(),
                    "MUM",
                );
                differ(
                    &mut differences,
                    "deactivate_at",
                    &show(&existing.deactivate_at),
                    &show(&record.deactivate_at),
                    "MUM",
                );
                differ(
                    &mut differences,
                    "recipients",
                    &existing_recipients.join(","),
                    &recipients.join(","),
                    "MUM",
                );
                differ(
                    &mut differences,
                    "senders",
                    &existing_senders.join(","),
                    &senders.join(","),
                    "MUM",
                );
                existing_status(Kind::Alias, shown, differences)
            }
            Err(DirectoryError::NotFound(_)) => {
                let as_mailbox = (!address.is_catch_all()).then(|| address.to_string());
                match as_mailbox {
                    Some(mailbox) if lookup_mailbox(target, &mailbox).await?.is_some() => {
                        let reason = format!(
                            "{mailbox} is a mailbox here; an address is either a mailbox or an alias"
                        );
                        Step::new(Kind::Alias, shown, Status::Skipped { reason })
                    }
                    _ => {
                        let new = NewAlias {
                            address: shown.clone(),
                            description: record.description.clone(),
                            recipients,
                            senders,
                            active: record.active,
                            deactivate_at: record.deactivate_at,
                        };
                        Step::create(Kind::Alias, shown, Op::Alias(new))
                    }
                }
            }
            Err(err) => return Err(err.into()),
        };
        steps.push(step);
    }

    for record in &snapshot.tls_policies {
        let domain = match normalize_domain(&record.domain) {
            Ok(domain) => domain,
            Err(err) => {
                steps.push(skipped(Kind::TlsPolicy, &record.domain, err));
                continue;
            }
        };
        let policy = match TlsPolicyKind::parse(&record.policy) {
            Ok(policy) => policy,
            Err(reason) => {
                steps.push(Step::new(
                    Kind::TlsPolicy,
                    domain,
                    Status::Skipped { reason },
                ));
                continue;
            }
        };
        let step = match target.get_tls_policy(&domain).await {
            Ok(existing) => {
                let mut differences = Vec::new();
                differ(
                    &mut differences,
                    "policy",
                    existing.policy.as_str(),
                    policy.as_str(),
                    "MUM",
                );
                differ(
                    &mut differences,
                    "params",
                    &show(&existing.params),
                    &show(&record.params),
                    "MUM",
                );
                differ(
                    &mut differences,
                    "description",
                    &show(&existing.description),
                    &show(&record.description),
                    "MUM",
                );
                differ(
                    &mut differences,
                    "active",
                    &existing.active.to_string(),
                    &record.active.to_string(),
                    "MUM",
                );
                existing_status(Kind::TlsPolicy, domain, differences)
            }
            Err(DirectoryError::NotFound(_)) => {
                let new = NewTlsPolicy {
                    domain: domain.clone(),
                    policy,
                    params: record.params.clone(),
                    description: record.description.clone(),
                    active: record.active,
                };
                Step::create(Kind::TlsPolicy, domain, Op::TlsPolicy(new))
            }
            Err(err) => return Err(err.into()),
        };
        steps.push(step);
    }

    Ok(Import {
        source: label.to_owned(),
        applied: false,
        steps,
    })
}

/// Carries out the creations of a plan, in order, as `actor`. A record the directory refuses
/// is marked [`Status::Failed`] and the import goes on; anything else stops it.
///
/// # Errors
/// [`AdminError::Apply`] when the target database fails.
pub async fn apply(
    target: &Directory,
    actor: impl Into<Actor>,
    import: &mut Import,
) -> Result<(), AdminError> {
    let actor: &Actor = &actor.into();
    let mut done = 0usize;
    let mut deferred_limits: Vec<(usize, DomainUpdate)> = Vec::new();
    for (index, step) in import.steps.iter_mut().enumerate() {
        let Some(op) = step.op.take() else {
            continue;
        };
        let result = match op {
            Op::Domain { new, limits } => {
                let result = target.add_domain(actor, new).await.map(drop);
                let has_limits = limits.max_quota_gib.is_some()
                    || limits.max_aliases.is_some()
                    || limits.max_mailboxes.is_some();
                if result.is_ok() && has_limits {
                    deferred_limits.push((index, limits));
                }
                result
            }
            Op::Mailbox { new, acl_groups } => {
                let address = new.address.clone();
                let mut result = target.add_mailbox(actor, *new).await.map(drop);
                for group in &acl_groups {
                    if result.is_err() {
                        break;
                    }
                    result = target.add_acl_group(actor, &address, group).await;
                }
                result
            }
            Op::Alias(new) => target.add_alias(actor, new).await.map(drop),
            Op::TlsPolicy(new) => target.add_tls_policy(actor, new).await.map(drop),
        };
        match result {
            Ok(()) => {
                step.status = Status::Created;
                done += 1;
            }
            Err(err) if is_record_error(&err) => {
                step.status = Status::Failed {
                    reason: err.to_string(),
                };
            }
            Err(err) => {
                return Err(AdminError::Apply {
                    step: format!("{} {}", step.kind.noun(), step.subject),
                    done,
                    source: err,
                });
            }
        }
    }
    for (index, limits) in deferred_limits {
        let Some(step) = import.steps.get_mut(index) else {
            continue;
        };
        match target.update_domain(actor, &step.subject, limits).await {
            Ok(_) => done += 1,
            Err(err) if is_record_error(&err) => {
                step.status = Status::Failed {
                    reason: format!("created, but its limits could not be set: {err}"),
                };
            }
            Err(err) => {
                return Err(AdminError::Apply {
                    step: format!("limits of domain {}", step.subject),
                    done,
                    source: err,
                });
            }
        }
    }
    import.applied = true;
    Ok(())
}

/// Errors about one record, after which the import can go on with the others.
fn is_record_error(err: &DirectoryError) -> bool {
    matches!(
        err,
        DirectoryError::NotFound(_)
            | DirectoryError::Conflict(_)
            | DirectoryError::LimitExceeded(_)
            | DirectoryError::Invalid(_)
            | DirectoryError::Address(_)
            | DirectoryError::StoredPassword { .. }
    )
}

async fn plan_domain(
    target: &Directory,
    alias_domains: &HashSet<String>,
    new: NewDomain,
    limits: DomainUpdate,
    compare: impl FnOnce(&mailstead_directory::model::Domain) -> Vec<String>,
) -> Result<Step, AdminError> {
    let domain = new.domain.clone();
    if let Err(err) = check_domain_path_safe(&domain) {
        return Ok(skipped(Kind::Domain, &domain, err));
    }
    match target.get_domain(&domain).await {
        Ok(existing) => Ok(existing_status(Kind::Domain, domain, compare(&existing))),
        Err(DirectoryError::NotFound(_)) if alias_domains.contains(&domain) => {
            let reason = format!(
                "{domain} is an alias domain here; remove it with `mailstead alias-domain remove {domain}` to import it"
            );
            Ok(Step::new(Kind::Domain, domain, Status::Skipped { reason }))
        }
        Err(DirectoryError::NotFound(_)) => Ok(Step::create(
            Kind::Domain,
            domain,
            Op::Domain { new, limits },
        )),
        Err(err) => Err(err.into()),
    }
}

async fn alias_domain_names(target: &Directory) -> Result<HashSet<String>, AdminError> {
    Ok(target
        .list_alias_domains()
        .await?
        .into_iter()
        .map(|alias_domain| alias_domain.domain)
        .collect())
}

async fn lookup_mailbox(target: &Directory, address: &str) -> Result<Option<Mailbox>, AdminError> {
    match target.get_mailbox(address).await {
        Ok(mailbox) => Ok(Some(mailbox)),
        Err(DirectoryError::NotFound(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Why a mailbox cannot be created at `address`: it is an alias here.
async fn alias_clash(target: &Directory, address: &str) -> Result<Option<String>, AdminError> {
    match target.get_alias(address).await {
        Ok(_) => Ok(Some(format!(
            "{address} is an alias here; an address is either a mailbox or an alias"
        ))),
        Err(DirectoryError::NotFound(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

fn existing_status(kind: Kind, subject: String, differences: Vec<String>) -> Step {
    let status = if differences.is_empty() {
        Status::Unchanged
    } else {
        Status::Differs { differences }
    };
    Step::new(kind, subject, status)
}

fn skipped(kind: Kind, subject: &str, err: impl Display) -> Step {
    let reason = err.to_string();
    Step::new(kind, subject, Status::Skipped { reason })
}

fn differ(differences: &mut Vec<String>, field: &str, here: &str, there: &str, source: &str) {
    if here != there {
        differences.push(format!("{field}: {here} here, {there} in {source}"));
    }
}

fn show<T: Display>(value: &Option<T>) -> String {
    match value {
        Some(value) => value.to_string(),
        None => "none".to_owned(),
    }
}

fn show_gib(value: Option<i64>) -> String {
    match value {
        Some(gib) => format!("{gib}G"),
        None => "none".to_owned(),
    }
}

/// Names a hash for a report without showing it: "the stored hash" when it is the one stored,
/// else its scheme.
fn describe_hash(hash: &str, stored: &str) -> String {
    if hash == stored {
        "the stored hash".to_owned()
    } else {
        format!("another {} hash", scheme_of(hash))
    }
}

fn scheme_of(hash: &str) -> String {
    mailstead_password::scheme_name(hash)
        .unwrap_or("unknown")
        .to_owned()
}

/// Addresses normalised as the directory stores them, sorted; the first bad one is the error.
fn normalize_all(addresses: &[String]) -> Result<Vec<String>, DirectoryError> {
    let mut out = addresses
        .iter()
        .map(|address| Ok(Address::parse(address)?.to_string()))
        .collect::<Result<Vec<String>, DirectoryError>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}
