//! `mailstead tls-policy …`: how mail to a remote domain must be encrypted (Postfix's
//! `smtp_tls_policy_maps`, MUM's `tls_policies`).

use std::process::ExitCode;

use clap::Subcommand;

use mailstead_admin::output;
use mailstead_directory::DirectoryError;
use mailstead_directory::address::normalize_domain;
use mailstead_directory::manage::{NewTlsPolicy, TlsPolicyUpdate};
use mailstead_directory::model::TlsPolicyKind;

use crate::cli::values;
use crate::cli::{Ctx, actor, require_change, text_change, toggle};

#[derive(Debug, Subcommand)]
pub enum TlsPolicyCommand {
    /// Add a policy for DOMAIN: none, may, encrypt, dane, dane-only, fingerprint, verify, secure
    Add {
        domain: String,
        #[arg(value_parser = values::tls_policy)]
        policy: TlsPolicyKind,
        /// Postfix policy parameters, like "match=.example.com"
        #[arg(long)]
        params: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Add it deactivated
        #[arg(long)]
        inactive: bool,
    },
    /// List TLS policies
    List,
    /// Show one policy
    Show { domain: String },
    /// Change a policy
    Update {
        domain: String,
        #[arg(long, value_parser = values::tls_policy)]
        policy: Option<TlsPolicyKind>,
        /// New parameters ("" clears them)
        #[arg(long)]
        params: Option<String>,
        /// New description ("" clears it)
        #[arg(long)]
        description: Option<String>,
        #[arg(long, conflicts_with = "deactivate")]
        activate: bool,
        #[arg(long)]
        deactivate: bool,
    },
    /// Remove a policy
    Remove { domain: String },
}

pub async fn run(ctx: &Ctx, command: TlsPolicyCommand) -> anyhow::Result<ExitCode> {
    let directory = ctx.directory().await?;
    match command {
        TlsPolicyCommand::Add {
            domain,
            policy,
            params,
            description,
            inactive,
        } => {
            let new = NewTlsPolicy {
                domain,
                policy,
                params: params.filter(|text| !text.is_empty()),
                description: description.filter(|text| !text.is_empty()),
                active: !inactive,
            };
            let policy = directory.add_tls_policy(&actor(), new).await?;
            ctx.show(&policy, || {
                format!(
                    "added TLS policy for {}\n{}",
                    policy.domain,
                    output::tls_policy(&policy)
                )
            })?;
        }
        TlsPolicyCommand::List => {
            let policies = directory.list_tls_policies().await?;
            ctx.show(&policies, || output::tls_policies(&policies))?;
        }
        TlsPolicyCommand::Show { domain } => {
            let policy = directory.get_tls_policy(&domain).await?;
            ctx.show(&policy, || output::tls_policy(&policy))?;
        }
        TlsPolicyCommand::Update {
            domain,
            policy,
            params,
            description,
            activate,
            deactivate,
        } => {
            let update = TlsPolicyUpdate {
                policy,
                params: text_change(params),
                description: text_change(description),
                active: toggle(activate, deactivate),
            };
            require_change(
                update.policy.is_some()
                    || update.params.is_some()
                    || update.description.is_some()
                    || update.active.is_some(),
                "tls-policy update",
            )?;
            let policy = directory
                .update_tls_policy(&actor(), &domain, update)
                .await?;
            ctx.show(&policy, || {
                format!(
                    "updated TLS policy for {}\n{}",
                    policy.domain,
                    output::tls_policy(&policy)
                )
            })?;
        }
        TlsPolicyCommand::Remove { domain } => {
            let domain = normalize_domain(&domain).map_err(DirectoryError::from)?;
            directory.remove_tls_policy(&actor(), &domain).await?;
            let removed = serde_json::json!({ "removed": "tls-policy", "subject": domain });
            ctx.show(&removed, || format!("removed TLS policy for {domain}\n"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
