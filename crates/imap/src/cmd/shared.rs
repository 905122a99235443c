//! The shared namespace: `Shared/alice@example.org/Work` is alice's folder `Work`, opened in
//! her Maildir (found through the directory, as her login finds it) with the rights her ACLs
//! give the logged-in user. Sessions on the same folder share one `Folder` whoever's account
//! opened it, so IDLE wakes on either user's changes.

use std::io;

use mailstead_store::acl::Rights;
use tracing::warn;

use crate::cmd::acl::{Target, nonexistent};
use crate::cmd::mailbox::{list_pattern_matches, store_name};
use crate::session::{Done, Session};
use crate::wire;

/// The separator of the shared namespace, whatever the owners' layouts.
const SEPARATOR: char = '/';

impl Session {
    /// The folder a client's mailbox name names: in the user's own account, or in another
    /// user's through the shared namespace.
    pub(crate) async fn target(&mut self, mailbox: &str) -> Result<Target, Done> {
        let Some(user) = &self.user else {
            return Err(Done::bad("Please log in first."));
        };
        let own_login = user.account.address.to_string();
        let own = Target {
            mail: user.mail.clone(),
            name: String::new(),
            owner: None,
            domain: user.account.address.domain().to_owned(),
            public_name: None,
        };
        if let Some(target) = self.public_target(mailbox)? {
            return Ok(target);
        }
        let shared_rest = self
            .ctx
            .shared
            .as_ref()
            .and_then(|shared| mailbox.strip_prefix(shared.prefix.as_str()));
        let Some(rest) = shared_rest else {
            let name = store_name(&own.mail, mailbox)?;
            return Ok(Target { name, ..own });
        };
        let Some((owner, folder)) = rest.split_once(SEPARATOR) else {
            return Err(nonexistent());
        };
        if folder.is_empty() {
            return Err(nonexistent());
        }
        if owner.eq_ignore_ascii_case(&own_login) {
            return Ok(Target {
                name: folder.to_owned(),
                ..own
            });
        }
        let account = match self.ctx.directory.account(owner).await {
            Ok(Some(account)) => account,
            Ok(None) => return Err(nonexistent()),
            Err(err) => {
                warn!(cause = %err, "shared namespace: directory lookup failed");
                return Err(Done::no("[UNAVAILABLE] Try again later."));
            }
        };
        let mail = crate::cmd::auth::open_mail(&self.ctx.mail, &account)
            .await
            .map_err(|err| self.no_for(&err))?;
        Ok(Target {
            mail,
            name: folder.to_owned(),
            owner: Some(account.address.to_string()),
            domain: account.address.domain().to_owned(),
            public_name: None,
        })
    }

    /// Whether a client's mailbox name is in the shared namespace.
    pub(crate) fn in_shared_namespace(&self, mailbox: &str) -> bool {
        self.ctx
            .shared
            .as_ref()
            .is_some_and(|shared| mailbox.starts_with(shared.prefix.as_str()))
    }

    /// LIST's lines for the shared namespace: the namespace's root, each owner who gave the
    /// user `l` on some folder (found through the shared index, then checked), and those
    /// folders, as far as `patterns` match them.
    pub(crate) async fn list_shared(&mut self, patterns: &[String]) -> io::Result<()> {
        let Some(shared) = self.ctx.shared.clone() else {
            return Ok(());
        };
        let Some(user) = &self.user else {
            return Ok(());
        };
        let root = shared.prefix.trim_end_matches(SEPARATOR).to_owned();
        let matches = |name: &str| {
            patterns
                .iter()
                .any(|pattern| list_pattern_matches(pattern, name, SEPARATOR))
        };
        // A pattern that cannot reach the namespace costs no lookup.
        let could_match = patterns.iter().any(|pattern| {
            let head: String = pattern
                .chars()
                .take_while(|c| *c != '*' && *c != '%')
                .collect();
            shared.prefix.starts_with(&head) || head.starts_with(&shared.prefix)
        });
        if !could_match {
            return Ok(());
        }
        let mut lines: Vec<(String, &'static str)> = Vec::new();
        if matches(&root) {
            lines.push((root.clone(), "\\Noselect \\HasChildren"));
        }
        let login = user.account.address.to_string();
        let index_owners = {
            let shared = shared.clone();
            tokio::task::spawn_blocking(move || shared.index.owners_for(&login)).await
        };
        let owners = match index_owners {
            Ok(Ok(owners)) => owners,
            Ok(Err(err)) => {
                warn!(cause = %err, "shared mailbox index unreadable");
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        for owner in owners {
            let owner_root = format!("{}{owner}", shared.prefix);
            // The owner's folders the user may see.
            let probe = format!("{owner_root}{SEPARATOR}INBOX");
            let Ok(target) = self.target(&probe).await else {
                continue;
            };
            let Ok(folders) = target.mail.list().await else {
                continue;
            };
            let mut visible = Vec::new();
            for folder in folders {
                let place = Target {
                    mail: target.mail.clone(),
                    name: folder.name.clone(),
                    owner: target.owner.clone(),
                    domain: target.domain.clone(),
                    public_name: None,
                }
                .place();
                if self.rights_at(place).await.contains(Rights::LOOKUP) {
                    visible.push(folder.name);
                }
            }
            if visible.is_empty() {
                continue;
            }
            if matches(&owner_root) {
                lines.push((owner_root.clone(), "\\Noselect \\HasChildren"));
            }
            for name in visible {
                let full = format!("{owner_root}{SEPARATOR}{name}");
                if matches(&full) {
                    lines.push((full, ""));
                }
            }
        }
        self.write_list_lines(lines).await
    }

    /// `* LIST` lines for names in another namespace (`Shared/`, `Public/`).
    pub(super) async fn write_list_lines(
        &mut self,
        lines: Vec<(String, &'static str)>,
    ) -> std::io::Result<()> {
        let utf8 = self.utf8_names();
        for (name, attributes) in lines {
            let mut line = format!("* LIST ({attributes}) \"{SEPARATOR}\" ").into_bytes();
            wire::mailbox(&mut line, &name, utf8);
            line.extend_from_slice(b"\r\n");
            self.conn.write(&line).await?;
        }
        Ok(())
    }
}
