//! `mailstead domain admin …` and `mailstead mailbox admin …`: MUM's `domain_admins` and
//! `mailbox_admins` grants.

use clap::Subcommand;

use mailstead_admin::output;
use mailstead_directory::Directory;

use crate::cli::{Ctx, actor};

#[derive(Debug, Subcommand)]
pub enum DomainAdminCommand {
    /// Let a mailbox manage a domain's mailboxes and aliases
    Add { admin: String, domain: String },
    /// Take that right back
    Remove { admin: String, domain: String },
    /// Domain admins, of one domain or all
    List { domain: Option<String> },
}

#[derive(Debug, Subcommand)]
pub enum MailboxAdminCommand {
    /// Let a mailbox manage another mailbox
    Add { admin: String, mailbox: String },
    /// Take that right back
    Remove { admin: String, mailbox: String },
    /// Mailbox admins
    List,
}

pub async fn domain(
    ctx: &Ctx,
    directory: &Directory,
    command: DomainAdminCommand,
) -> anyhow::Result<()> {
    match command {
        DomainAdminCommand::Add { admin, domain } => {
            directory
                .add_domain_admin(&actor(), &admin, &domain)
                .await?;
            let json =
                serde_json::json!({ "added": "domain-admin", "admin": admin, "domain": domain });
            ctx.show(&json, || {
                format!("{admin} is now a domain admin of {domain}\n")
            })
        }
        DomainAdminCommand::Remove { admin, domain } => {
            directory
                .remove_domain_admin(&actor(), &admin, &domain)
                .await?;
            let json =
                serde_json::json!({ "removed": "domain-admin", "admin": admin, "domain": domain });
            ctx.show(&json, || {
                format!("{admin} is no longer a domain admin of {domain}\n")
            })
        }
        DomainAdminCommand::List { domain } => {
            let grants = directory.list_domain_admins(domain.as_deref()).await?;
            ctx.show(&grants, || output::admin_grants(&grants, "domain"))
        }
    }
}

pub async fn mailbox(
    ctx: &Ctx,
    directory: &Directory,
    command: MailboxAdminCommand,
) -> anyhow::Result<()> {
    match command {
        MailboxAdminCommand::Add { admin, mailbox } => {
            directory
                .add_mailbox_admin(&actor(), &admin, &mailbox)
                .await?;
            let json =
                serde_json::json!({ "added": "mailbox-admin", "admin": admin, "mailbox": mailbox });
            ctx.show(&json, || {
                format!("{admin} is now a mailbox admin of {mailbox}\n")
            })
        }
        MailboxAdminCommand::Remove { admin, mailbox } => {
            directory
                .remove_mailbox_admin(&actor(), &admin, &mailbox)
                .await?;
            let json = serde_json::json!({ "removed": "mailbox-admin", "admin": admin, "mailbox": mailbox });
            ctx.show(&json, || {
                format!("{admin} is no longer a mailbox admin of {mailbox}\n")
            })
        }
        MailboxAdminCommand::List => {
            let grants = directory.list_mailbox_admins().await?;
            ctx.show(&grants, || output::admin_grants(&grants, "mailbox"))
        }
    }
}
