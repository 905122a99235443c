//! `mailstead alias …`: aliases, their recipients, and their expiry.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use mailstead_admin::{input, output};
use mailstead_directory::DirectoryError;
use mailstead_directory::address::AliasAddress;
use mailstead_directory::manage::{AliasUpdate, NewAlias};

use crate::cli::{Ctx, actor, require_change, text_change, toggle};

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Add an alias (@domain for a catch-all) forwarding to RECIPIENTs
    Add {
        address: String,
        #[arg(required = true)]
        recipients: Vec<String>,
        /// A mailbox that may send as the alias (repeatable)
        #[arg(long = "sender", value_name = "MAILBOX")]
        senders: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        expiry: Expiry,
        /// Add it deactivated
        #[arg(long)]
        inactive: bool,
    },
    /// List aliases, of one domain or all
    List { domain: Option<String> },
    /// Show one alias
    Show { address: String },
    /// Change an alias (activating it clears its expiry, as in MUM)
    Update {
        address: String,
        #[arg(long, conflicts_with = "deactivate")]
        activate: bool,
        #[arg(long)]
        deactivate: bool,
        #[command(flatten)]
        expiry: Expiry,
        /// Remove the expiry
        #[arg(long, conflicts_with_all = ["expires_in", "expires_at"])]
        no_expiry: bool,
        /// New description ("" clears it)
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove an alias
    Remove { address: String },
    /// Add or remove recipients
    #[command(subcommand)]
    Recipient(RecipientCommand),
}

/// When an alias stops receiving.
#[derive(Debug, Args)]
pub struct Expiry {
    /// Stop receiving after this long, like 2d3h10m
    #[arg(long, value_name = "DURATION", conflicts_with = "expires_at")]
    expires_in: Option<String>,
    /// Stop receiving at this time, like 2030-01-31T12:00:00Z
    #[arg(long, value_name = "RFC3339")]
    expires_at: Option<String>,
}

impl Expiry {
    /// The Unix second the alias expires at, if one was given.
    fn resolve(&self) -> anyhow::Result<Option<i64>> {
        let now = input::unix_now();
        Ok(match (&self.expires_in, &self.expires_at) {
            (Some(duration), _) => Some(input::parse_expires_in(duration, now)?),
            (None, Some(at)) => Some(input::parse_expires_at(at, now)?),
            (None, None) => None,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum RecipientCommand {
    /// Add recipients to an alias
    Add {
        alias: String,
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Remove recipients from an alias
    Remove {
        alias: String,
        #[arg(required = true)]
        addresses: Vec<String>,
    },
}

pub async fn run(ctx: &Ctx, command: AliasCommand) -> anyhow::Result<ExitCode> {
    match command {
        AliasCommand::Add {
            address,
            recipients,
            senders,
            description,
            expiry,
            inactive,
        } => {
            let new = NewAlias {
                address,
                description: description.filter(|text| !text.is_empty()),
                recipients,
                senders,
                active: !inactive,
                deactivate_at: expiry.resolve()?,
            };
            let directory = ctx.directory().await?;
            let alias = directory.add_alias(&actor(), new).await?;
            ctx.show(&alias, || {
                format!(
                    "added alias {}\n{}",
                    shown(&alias.address),
                    output::alias(&alias)
                )
            })?;
        }
        AliasCommand::List { domain } => {
            let directory = ctx.directory().await?;
            let aliases = directory.list_aliases(domain.as_deref()).await?;
            ctx.show(&aliases, || output::aliases(&aliases))?;
        }
        AliasCommand::Show { address } => {
            let directory = ctx.directory().await?;
            let alias = directory.get_alias(&address).await?;
            ctx.show(&alias, || output::alias(&alias))?;
        }
        AliasCommand::Update {
            address,
            activate,
            deactivate,
            expiry,
            no_expiry,
            description,
        } => {
            let deactivate_at = match expiry.resolve()? {
                Some(at) => Some(Some(at)),
                None if no_expiry => Some(None),
                None => None,
            };
            let update = AliasUpdate {
                description: text_change(description),
                active: toggle(activate, deactivate),
                deactivate_at,
            };
            require_change(
                update.description.is_some()
                    || update.active.is_some()
                    || update.deactivate_at.is_some(),
                "alias update",
            )?;
            let directory = ctx.directory().await?;
            let alias = directory.update_alias(&actor(), &address, update).await?;
            ctx.show(&alias, || {
                format!(
                    "updated alias {}\n{}",
                    shown(&alias.address),
                    output::alias(&alias)
                )
            })?;
        }
        AliasCommand::Remove { address } => {
            let address = shown(&AliasAddress::parse(&address).map_err(DirectoryError::from)?);
            let directory = ctx.directory().await?;
            directory.remove_alias(&actor(), &address).await?;
            let removed = serde_json::json!({ "removed": "alias", "subject": address });
            ctx.show(&removed, || format!("removed alias {address}\n"))?;
        }
        AliasCommand::Recipient(RecipientCommand::Add { alias, addresses }) => {
            let directory = ctx.directory().await?;
            let alias = directory
                .add_alias_recipients(&actor(), &alias, &addresses)
                .await?;
            ctx.show(&alias, || {
                format!(
                    "updated alias {}\n{}",
                    shown(&alias.address),
                    output::alias(&alias)
                )
            })?;
        }
        AliasCommand::Recipient(RecipientCommand::Remove { alias, addresses }) => {
            let directory = ctx.directory().await?;
            let alias = directory
                .remove_alias_recipients(&actor(), &alias, &addresses)
                .await?;
            ctx.show(&alias, || {
                format!(
                    "updated alias {}\n{}",
                    shown(&alias.address),
                    output::alias(&alias)
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `@domain` for a catch-all (its `Display` is `@domain` with an empty local part already,
/// but say it explicitly so the form does not depend on that).
fn shown(address: &AliasAddress) -> String {
    if address.is_catch_all() {
        format!("@{}", address.domain())
    } else {
        address.to_string()
    }
}
