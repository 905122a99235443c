//! `mailstead alias-domain …`: domains whose addresses are another domain's.

use std::process::ExitCode;

use clap::Subcommand;

use mailstead_admin::output;
use mailstead_directory::DirectoryError;
use mailstead_directory::address::normalize_domain;

use crate::cli::{Ctx, actor};

#[derive(Debug, Subcommand)]
pub enum AliasDomainCommand {
    /// Make DOMAIN receive as TARGET (user@DOMAIN is user@TARGET)
    Add {
        domain: String,
        target: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List alias domains
    List,
    /// Remove an alias domain
    Remove { domain: String },
}

pub async fn run(ctx: &Ctx, command: AliasDomainCommand) -> anyhow::Result<ExitCode> {
    let directory = ctx.directory().await?;
    match command {
        AliasDomainCommand::Add {
            domain,
            target,
            description,
        } => {
            let description = description.filter(|text| !text.is_empty());
            let added = directory
                .add_alias_domain(&actor(), &domain, &target, description)
                .await?;
            ctx.show(&added, || {
                format!("added alias domain {} for {}\n", added.domain, added.target)
            })?;
        }
        AliasDomainCommand::List => {
            let alias_domains = directory.list_alias_domains().await?;
            ctx.show(&alias_domains, || output::alias_domains(&alias_domains))?;
        }
        AliasDomainCommand::Remove { domain } => {
            let domain = normalize_domain(&domain).map_err(DirectoryError::from)?;
            directory.remove_alias_domain(&actor(), &domain).await?;
            let removed = serde_json::json!({ "removed": "alias-domain", "subject": domain });
            ctx.show(&removed, || format!("removed alias domain {domain}\n"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
