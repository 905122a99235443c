//! `mailstead mailbox …`: mailboxes. Passwords are read by `password`, never taken from argv.

use std::process::ExitCode;

use clap::Subcommand;

use mailstead_admin::{input, output};
use mailstead_directory::manage::{MailboxUpdate, NewMailbox};
use mailstead_directory::model::Quota;
use mailstead_directory::{Directory, DirectoryError};

use crate::cli::values::{self, QuotaSetting};
use crate::cli::{Ctx, actor, password, require_change, text_change, toggle};

#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// Add a mailbox; the password is asked for (or read from stdin when piped)
    Add {
        address: String,
        /// Display name
        #[arg(long)]
        name: Option<String>,
        /// Where password-reset mail goes
        #[arg(long, value_name = "ADDRESS")]
        alternative_email: Option<String>,
        /// Its own quota, like 500M (0 = unlimited); default: the domain's
        #[arg(long, value_name = "SIZE", value_parser = values::quota)]
        quota: Option<Quota>,
        /// It logs in and sends but receives nothing
        #[arg(long)]
        send_only: bool,
        /// Add it deactivated
        #[arg(long)]
        inactive: bool,
        /// May manage everything in MUM's web UI
        #[arg(long)]
        super_admin: bool,
    },
    /// List mailboxes, of one domain or all
    List { domain: Option<String> },
    /// Show one mailbox
    Show { address: String },
    /// Change a mailbox
    Update {
        address: String,
        /// New display name ("" clears it)
        #[arg(long)]
        name: Option<String>,
        /// New alternative email ("" clears it)
        #[arg(long, value_name = "ADDRESS")]
        alternative_email: Option<String>,
        /// Its own quota, or "inherit" for the domain's
        #[arg(long, value_name = "SIZE|inherit", value_parser = values::quota_setting)]
        quota: Option<QuotaSetting>,
        #[arg(long, conflicts_with = "no_send_only")]
        send_only: bool,
        #[arg(long)]
        no_send_only: bool,
        #[arg(long, conflicts_with = "deactivate")]
        activate: bool,
        /// Refuse its mail and logins
        #[arg(long)]
        deactivate: bool,
        #[arg(long, conflicts_with = "no_super_admin")]
        super_admin: bool,
        #[arg(long)]
        no_super_admin: bool,
    },
    /// Remove a mailbox (its mail on disk stays)
    Remove { address: String },
    /// Set a new password; asked for (or read from stdin when piped)
    Passwd { address: String },
}

pub async fn run(ctx: &Ctx, command: MailboxCommand) -> anyhow::Result<ExitCode> {
    match command {
        MailboxCommand::Add {
            address,
            name,
            alternative_email,
            quota,
            send_only,
            inactive,
            super_admin,
        } => {
            // Everything that can be checked is checked before the password is asked for.
            let parsed = Directory::parse_address(&address)?;
            parsed.check_path_safe().map_err(DirectoryError::from)?;
            let directory = ctx.directory().await?;
            directory.get_domain(parsed.domain()).await?;
            let address = parsed.to_string();
            let password = password::read_new(&address)?;
            let password_hash = input::hash_new_password(&password)?;
            let new = NewMailbox {
                address,
                password_hash,
                name: name.filter(|text| !text.is_empty()),
                alternative_email: alternative_email.filter(|text| !text.is_empty()),
                quota,
                send_only,
                active: !inactive,
                is_super_admin: super_admin,
                homedir: None,
                maildir: None,
            };
            let mailbox = directory.add_mailbox(&actor(), new).await?;
            ctx.show(&mailbox, || {
                format!(
                    "added mailbox {}\n{}",
                    mailbox.address,
                    output::mailbox(&mailbox)
                )
            })?;
        }
        MailboxCommand::List { domain } => {
            let directory = ctx.directory().await?;
            let mailboxes = directory.list_mailboxes(domain.as_deref()).await?;
            ctx.show(&mailboxes, || output::mailboxes(&mailboxes))?;
        }
        MailboxCommand::Show { address } => {
            let directory = ctx.directory().await?;
            let mailbox = directory.get_mailbox(&address).await?;
            ctx.show(&mailbox, || output::mailbox(&mailbox))?;
        }
        MailboxCommand::Update {
            address,
            name,
            alternative_email,
            quota,
            send_only,
            no_send_only,
            activate,
            deactivate,
            super_admin,
            no_super_admin,
        } => {
            let update = MailboxUpdate {
                name: text_change(name),
                alternative_email: text_change(alternative_email),
                quota: quota.map(|setting| setting.0),
                send_only: toggle(send_only, no_send_only),
                active: toggle(activate, deactivate),
                is_super_admin: toggle(super_admin, no_super_admin),
            };
            require_change(
                update.name.is_some()
                    || update.alternative_email.is_some()
                    || update.quota.is_some()
                    || update.send_only.is_some()
                    || update.active.is_some()
                    || update.is_super_admin.is_some(),
                "mailbox update",
            )?;
            let directory = ctx.directory().await?;
            let mailbox = directory.update_mailbox(&actor(), &address, update).await?;
            ctx.show(&mailbox, || {
                format!(
                    "updated mailbox {}\n{}",
                    mailbox.address,
                    output::mailbox(&mailbox)
                )
            })?;
        }
        MailboxCommand::Remove { address } => {
            let address = Directory::parse_address(&address)?.to_string();
            let directory = ctx.directory().await?;
            directory.remove_mailbox(&actor(), &address).await?;
            let removed = serde_json::json!({ "removed": "mailbox", "subject": address });
            ctx.show(&removed, || format!("removed mailbox {address}\n"))?;
        }
        MailboxCommand::Passwd { address } => {
            let address = Directory::parse_address(&address)?.to_string();
            let directory = ctx.directory().await?;
            // Fail on an unknown mailbox before asking for a password.
            directory.get_mailbox(&address).await?;
            let password = password::read_new(&address)?;
            let password_hash = input::hash_new_password(&password)?;
            directory
                .set_password(&actor(), &address, &password_hash)
                .await?;
            let changed = serde_json::json!({ "password_changed": address });
            ctx.show(&changed, || format!("changed the password of {address}\n"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
