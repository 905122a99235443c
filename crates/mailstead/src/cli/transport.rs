//! `mailstead transport …`: where mail for a remote domain goes instead of its MX (Postfix's
//! `transport_maps`).

use std::process::ExitCode;

use clap::Subcommand;

use mailstead_admin::output;
use mailstead_directory::DirectoryError;
use mailstead_directory::address::normalize_domain;
use mailstead_directory::manage::TransportUpdate;

use crate::cli::{Ctx, actor, require_change, text_change, toggle};

#[derive(Debug, Subcommand)]
pub enum TransportCommand {
    /// Send mail for DOMAIN to NEXTHOP: smtp:[host]:port, smtp:host, lmtp:host:port or [host]:port
    Add {
        domain: String,
        #[arg(value_name = "NEXTHOP")]
        next_hop: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List transports
    List,
    /// Show one transport
    Show { domain: String },
    /// Change a transport
    Update {
        domain: String,
        /// New next hop
        #[arg(long, value_name = "NEXTHOP")]
        next_hop: Option<String>,
        /// New description ("" clears it)
        #[arg(long)]
        description: Option<String>,
        #[arg(long, conflicts_with = "deactivate")]
        activate: bool,
        #[arg(long)]
        deactivate: bool,
    },
    /// Remove a transport: mail for DOMAIN goes to its MX again
    Remove { domain: String },
}

pub async fn run(ctx: &Ctx, command: TransportCommand) -> anyhow::Result<ExitCode> {
    let directory = ctx.directory().await?;
    match command {
        TransportCommand::Add {
            domain,
            next_hop,
            description,
        } => {
            let description = description.filter(|text| !text.is_empty());
            let transport = directory
                .add_transport(&actor(), &domain, &next_hop, description.as_deref())
                .await?;
            ctx.show(&transport, || {
                format!(
                    "added transport for {}\n{}",
                    transport.domain,
                    output::transport(&transport)
                )
            })?;
        }
        TransportCommand::List => {
            let transports = directory.list_transports().await?;
            ctx.show(&transports, || output::transports(&transports))?;
        }
        TransportCommand::Show { domain } => {
            let transport = directory.get_transport(&domain).await?;
            ctx.show(&transport, || output::transport(&transport))?;
        }
        TransportCommand::Update {
            domain,
            next_hop,
            description,
            activate,
            deactivate,
        } => {
            let update = TransportUpdate {
                next_hop,
                description: text_change(description),
                active: toggle(activate, deactivate),
            };
            require_change(
                update.next_hop.is_some()
                    || update.description.is_some()
                    || update.active.is_some(),
                "transport update",
            )?;
            let transport = directory
                .update_transport(&actor(), &domain, update)
                .await?;
            ctx.show(&transport, || {
                format!(
                    "updated transport for {}\n{}",
                    transport.domain,
                    output::transport(&transport)
                )
            })?;
        }
        TransportCommand::Remove { domain } => {
            let domain = normalize_domain(&domain).map_err(DirectoryError::from)?;
            directory.remove_transport(&actor(), &domain).await?;
            let removed = serde_json::json!({ "removed": "transport", "subject": domain });
            ctx.show(&removed, || format!("removed transport for {domain}\n"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
