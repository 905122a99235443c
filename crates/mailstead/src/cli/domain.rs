//! `mailstead domain …`: hosted domains.

use std::process::ExitCode;

use clap::Subcommand;

use mailstead_admin::output;
use mailstead_directory::manage::{DomainUpdate, NewDomain};
use mailstead_directory::model::Quota;

use crate::cli::admins;
use crate::cli::values::{self, Limit, QuotaSetting};
use crate::cli::{Ctx, actor, require_change, text_change, toggle};

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Who may manage domains (MUM's domain_admins)
    #[command(subcommand)]
    Admin(admins::DomainAdminCommand),
    /// Add a hosted domain
    Add {
        domain: String,
        #[arg(long)]
        description: Option<String>,
        /// Default quota of its mailboxes, like 2G (0 = unlimited)
        #[arg(long, value_name = "SIZE", value_parser = values::quota)]
        quota: Option<Quota>,
        /// Largest quota a mailbox may have, in whole GiB, like 10G
        #[arg(long, value_name = "SIZE", value_parser = values::max_quota)]
        max_quota: Option<Limit>,
        /// Most mailboxes it may have
        #[arg(long, value_name = "N", value_parser = values::count_limit)]
        max_mailboxes: Option<Limit>,
        /// Most aliases it may have
        #[arg(long, value_name = "N", value_parser = values::count_limit)]
        max_aliases: Option<Limit>,
        /// Add it deactivated
        #[arg(long)]
        inactive: bool,
    },
    /// List domains
    List,
    /// Show one domain
    Show { domain: String },
    /// Change a domain
    Update {
        domain: String,
        /// New description ("" clears it)
        #[arg(long)]
        description: Option<String>,
        /// Default mailbox quota, or "inherit" for none (unlimited)
        #[arg(long, value_name = "SIZE|inherit", value_parser = values::quota_setting)]
        quota: Option<QuotaSetting>,
        /// Largest mailbox quota in whole GiB, or "none"
        #[arg(long, value_name = "SIZE|none", value_parser = values::max_quota)]
        max_quota: Option<Limit>,
        #[arg(long, value_name = "N|none", value_parser = values::count_limit)]
        max_mailboxes: Option<Limit>,
        #[arg(long, value_name = "N|none", value_parser = values::count_limit)]
        max_aliases: Option<Limit>,
        #[arg(long, conflicts_with = "deactivate")]
        activate: bool,
        /// Refuse its mail and logins
        #[arg(long)]
        deactivate: bool,
    },
    /// Remove a domain
    Remove {
        domain: String,
        /// Also remove its mailboxes and aliases (mail on disk stays)
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(ctx: &Ctx, command: DomainCommand) -> anyhow::Result<ExitCode> {
    let directory = ctx.directory().await?;
    match command {
        DomainCommand::Admin(command) => admins::domain(ctx, &directory, command).await?,
        DomainCommand::Add {
            domain,
            description,
            quota,
            max_quota,
            max_mailboxes,
            max_aliases,
            inactive,
        } => {
            let new = NewDomain {
                domain,
                description: description.filter(|text| !text.is_empty()),
                quota,
                max_quota_gib: max_quota.and_then(|limit| limit.0),
                max_aliases: max_aliases.and_then(|limit| limit.0),
                max_mailboxes: max_mailboxes.and_then(|limit| limit.0),
                active: !inactive,
                homedir: None,
            };
            let domain = directory.add_domain(&actor(), new).await?;
            ctx.show(&domain, || {
                format!(
                    "added domain {}\n{}",
                    domain.domain,
                    output::domain(&domain)
                )
            })?;
        }
        DomainCommand::List => {
            let domains = directory.list_domains().await?;
            ctx.show(&domains, || output::domains(&domains))?;
        }
        DomainCommand::Show { domain } => {
            let domain = directory.get_domain(&domain).await?;
            ctx.show(&domain, || output::domain(&domain))?;
        }
        DomainCommand::Update {
            domain,
            description,
            quota,
            max_quota,
            max_mailboxes,
            max_aliases,
            activate,
            deactivate,
        } => {
            let update = DomainUpdate {
                description: text_change(description),
                quota: quota.map(|setting| setting.0),
                max_quota_gib: max_quota.map(|limit| limit.0),
                max_aliases: max_aliases.map(|limit| limit.0),
                max_mailboxes: max_mailboxes.map(|limit| limit.0),
                active: toggle(activate, deactivate),
            };
            require_change(
                update.description.is_some()
                    || update.quota.is_some()
                    || update.max_quota_gib.is_some()
                    || update.max_aliases.is_some()
                    || update.max_mailboxes.is_some()
                    || update.active.is_some(),
                "domain update",
            )?;
            let domain = directory.update_domain(&actor(), &domain, update).await?;
            ctx.show(&domain, || {
                format!(
                    "updated domain {}\n{}",
                    domain.domain,
                    output::domain(&domain)
                )
            })?;
        }
        DomainCommand::Remove { domain, force } => {
            let shown = mailstead_directory::address::normalize_domain(&domain)
                .map_err(mailstead_directory::DirectoryError::from)?;
            directory.remove_domain(&actor(), &shown, force).await?;
            let removed = serde_json::json!({ "removed": "domain", "subject": shown });
            ctx.show(&removed, || format!("removed domain {shown}\n"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
