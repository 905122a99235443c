//! `mailstead sender …`: which mailboxes may send as an alias (MUM's `alias_senders`), and
//! every address a login may send as.

use std::process::ExitCode;

use clap::Subcommand;

use mailstead_admin::output;
use mailstead_directory::Directory;

use crate::cli::{Ctx, actor};

#[derive(Debug, Subcommand)]
pub enum SenderCommand {
    /// Let MAILBOX send as ALIAS
    Add { alias: String, mailbox: String },
    /// Stop MAILBOX sending as ALIAS
    Remove { alias: String, mailbox: String },
    /// The mailboxes that may send as ALIAS
    List { alias: String },
    /// Every address LOGIN may send as
    Show { login: String },
}

pub async fn run(ctx: &Ctx, command: SenderCommand) -> anyhow::Result<ExitCode> {
    let directory = ctx.directory().await?;
    match command {
        SenderCommand::Add { alias, mailbox } => {
            let mailbox = Directory::parse_address(&mailbox)?.to_string();
            let alias = directory.add_sender(&actor(), &alias, &mailbox).await?;
            ctx.show(&alias, || {
                format!(
                    "{mailbox} may now send as {}\n{}",
                    alias.address,
                    output::alias(&alias)
                )
            })?;
        }
        SenderCommand::Remove { alias, mailbox } => {
            let mailbox = Directory::parse_address(&mailbox)?.to_string();
            let alias = directory.remove_sender(&actor(), &alias, &mailbox).await?;
            ctx.show(&alias, || {
                format!(
                    "{mailbox} may no longer send as {}\n{}",
                    alias.address,
                    output::alias(&alias)
                )
            })?;
        }
        SenderCommand::List { alias } => {
            let alias = directory.get_alias(&alias).await?;
            let answer =
                serde_json::json!({ "alias": alias.address.to_string(), "senders": alias.senders });
            ctx.show(&answer, || {
                if alias.senders.is_empty() {
                    format!("no mailbox may send as {}\n", alias.address)
                } else {
                    alias
                        .senders
                        .iter()
                        .map(|sender| format!("{sender}\n"))
                        .collect()
                }
            })?;
        }
        SenderCommand::Show { login } => {
            let login = Directory::parse_address(&login)?.to_string();
            let addresses = directory.sendable_addresses(&login).await?;
            let answer = serde_json::json!({ "login": login, "addresses": addresses });
            ctx.show(&answer, || {
                if addresses.is_empty() {
                    format!("{login} may send as nothing: it is no active mailbox\n")
                } else {
                    let mut text = format!("{login} may send as:\n");
                    for address in &addresses {
                        text.push_str(&format!("  {address}\n"));
                    }
                    text
                }
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
