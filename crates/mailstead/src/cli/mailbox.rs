//! `mailstead mailbox …`: mailboxes. Passwords are read by `password`, never taken from argv.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Subcommand;

use mailstead_admin::{input, output};
use mailstead_directory::manage::{MailboxUpdate, NewMailbox};
use mailstead_directory::model::{Mailbox, Quota};
use mailstead_directory::{Directory, DirectoryError};
use mailstead_store::{Retire, RetireError, RetiredDir, retire_mailbox};

use crate::cli::exit::CliError;
use crate::cli::values::{self, QuotaSetting};
use crate::cli::{Ctx, actor, password, require_change, text_change, toggle};
use crate::cli::{acl_group, admins};

#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// Who may manage mailboxes (MUM's mailbox_admins)
    #[command(subcommand)]
    Admin(admins::MailboxAdminCommand),
    /// Groups for IMAP ACLs (`group=NAME` in dovecot-acl files)
    #[command(subcommand)]
    Group(acl_group::AclGroupCommand),
    /// Add a mailbox; the password is asked for (or read from stdin when piped). Files an
    /// earlier mailbox left at its home are moved aside first
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
        /// Serve the mail already at its home (a Maildir taken over from Dovecot) instead of
        /// moving it aside as an earlier owner's
        #[arg(long)]
        keep_existing_mail: bool,
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
    /// Remove a mailbox; its home (mail included) is moved aside to
    /// `.removed-<UTC time>-<local part>` next to it, so the address starts empty if added again
    Remove {
        address: String,
        /// Delete its home and mail instead of moving them aside
        #[arg(long)]
        purge: bool,
    },
    /// Set a new password; asked for (or read from stdin when piped)
    Passwd { address: String },
}

pub async fn run(ctx: &Ctx, command: MailboxCommand) -> anyhow::Result<ExitCode> {
    match command {
        MailboxCommand::Admin(command) => {
            admins::mailbox(ctx, &ctx.directory().await?, command).await?;
        }
        MailboxCommand::Group(command) => {
            acl_group::run(ctx, &ctx.directory().await?, command).await?;
        }
        MailboxCommand::Add {
            address,
            name,
            alternative_email,
            quota,
            send_only,
            inactive,
            super_admin,
            keep_existing_mail,
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
            // Files left at its home by a mailbox removed without us (another writer of the
            // directory) would hand the old owner's mail to the new one.
            let leftovers = if keep_existing_mail {
                Ok(Vec::new())
            } else {
                retire(&directory, &mailbox, Retire::AsideIfNotEmpty).await
            };
            let note = match leftovers {
                Ok(retired) => retired
                    .iter()
                    .map(|dir| match &dir.to {
                        Some(to) => format!(
                            "files left at {} by an earlier mailbox were moved to {}\n",
                            dir.from.display(),
                            to.display()
                        ),
                        None => String::new(),
                    })
                    .collect::<String>(),
                Err(err) => format!("warning: {err}\n"),
            };
            if ctx.json && !note.is_empty() {
                eprint!("{note}");
            }
            ctx.show(&mailbox, || {
                format!(
                    "added mailbox {}\n{}{note}",
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
        MailboxCommand::Remove { address, purge } => {
            let address = Directory::parse_address(&address)?.to_string();
            let directory = ctx.directory().await?;
            // Where its files are, asked before the directory forgets it.
            let mailbox = directory.get_mailbox(&address).await?;
            directory.remove_mailbox(&actor(), &address).await?;
            let how = if purge { Retire::Purge } else { Retire::Aside };
            let retired = match retire(&directory, &mailbox, how).await {
                Ok(retired) => retired,
                Err(err) => {
                    return Err(CliError::Io {
                        what: format!("removed mailbox {address}, but not its files"),
                        source: std::io::Error::other(err),
                    }
                    .into());
                }
            };
            let removed = serde_json::json!({
                "removed": "mailbox",
                "subject": address,
                "files": retired.iter().map(|dir| serde_json::json!({
                    "from": dir.from,
                    "moved_to": dir.to,
                })).collect::<Vec<_>>(),
            });
            ctx.show(&removed, || {
                let mut text = format!("removed mailbox {address}\n");
                if retired.is_empty() {
                    text.push_str("it had no files on disk\n");
                }
                for dir in &retired {
                    match &dir.to {
                        Some(to) => text.push_str(&format!(
                            "its mail ({}) was moved to {}\n",
                            dir.from.display(),
                            to.display()
                        )),
                        None => text
                            .push_str(&format!("its mail ({}) was deleted\n", dir.from.display())),
                    }
                }
                text
            })?;
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

/// Retires `mailbox`'s home (and a Maildir outside it), refusing directories another
/// mailbox lives in.
async fn retire(
    directory: &Directory,
    mailbox: &Mailbox,
    how: Retire,
) -> Result<Vec<RetiredDir>, anyhow::Error> {
    let others: Vec<PathBuf> = directory
        .list_mailboxes(None)
        .await?
        .into_iter()
        .filter(|other| other.id != mailbox.id)
        .flat_map(|other| [other.location.home, other.location.maildir])
        .collect();
    let res: Result<_, RetireError> = retire_mailbox(
        &mailbox.location.home,
        &mailbox.location.maildir,
        mailbox.address.local_part(),
        others,
        how,
        SystemTime::now(),
    )
    .await;
    Ok(res?)
}
