//! `mailstead mailbox group …`: the groups a mailbox belongs to for IMAP ACLs (`group=NAME`
//! entries of dovecot-acl files; Dovecot's userdb field `acl_groups`).

use clap::Subcommand;

use mailstead_directory::Directory;

use crate::cli::{Ctx, actor};

#[derive(Debug, Subcommand)]
pub enum AclGroupCommand {
    /// Put a mailbox in an ACL group
    Add { address: String, group: String },
    /// Take a mailbox out of an ACL group
    Remove { address: String, group: String },
    /// The ACL groups of a mailbox
    List { address: String },
}

pub async fn run(ctx: &Ctx, directory: &Directory, command: AclGroupCommand) -> anyhow::Result<()> {
    match command {
        AclGroupCommand::Add { address, group } => {
            directory.add_acl_group(&actor(), &address, &group).await?;
            let json =
                serde_json::json!({ "added": "acl-group", "mailbox": address, "group": group });
            ctx.show(&json, || format!("{address} is now in ACL group {group}\n"))
        }
        AclGroupCommand::Remove { address, group } => {
            directory
                .remove_acl_group(&actor(), &address, &group)
                .await?;
            let json =
                serde_json::json!({ "removed": "acl-group", "mailbox": address, "group": group });
            ctx.show(&json, || {
                format!("{address} is no longer in ACL group {group}\n")
            })
        }
        AclGroupCommand::List { address } => {
            let groups = directory.acl_groups(&address).await?;
            ctx.show(&groups, || {
                groups.iter().map(|group| format!("{group}\n")).collect()
            })
        }
    }
}
