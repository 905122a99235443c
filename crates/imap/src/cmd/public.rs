//! The public namespace: `Public/Team` is the folder `Team` of a Maildir tree that belongs
//! to no user (Dovecot's `type = public` namespace). Its rights come from the folders'
//! `dovecot-acl` files and the global ACLs named `Public/...`; without an ACL nobody has any
//! right, and `owner` entries never match. Sessions on the same folder share one `Folder`,
//! so IDLE wakes on any user's changes.

use std::io;

use mailstead_store::acl::Rights;

use crate::cmd::acl::Target;
use crate::cmd::mailbox::list_pattern_matches;
use crate::session::{Done, Session};
use crate::wire;

/// The separator of the public namespace, whatever the tree's layout.
const SEPARATOR: char = '/';

impl Session {
    /// The public folder a client's mailbox name names; `None` when the name is not in the
    /// public namespace.
    pub(crate) fn public_target(&self, mailbox: &str) -> Result<Option<Target>, Done> {
        let Some(public) = &self.ctx.public else {
            return Ok(None);
        };
        let Some(name) = mailbox.strip_prefix(public.prefix.as_str()) else {
            return Ok(None);
        };
        let Some(user) = &self.user else {
            return Err(Done::bad("Please log in first."));
        };
        // The tree's root is not a folder: it has no INBOX.
        if name.is_empty() || name.eq_ignore_ascii_case("INBOX") {
            return Err(nonexistent());
        }
        let mail = self
            .ctx
            .mail
            .open_tree(&public.location, public.layout)
            .map_err(|err| self.no_for(&err))?;
        Ok(Some(Target {
            mail,
            name: name.to_owned(),
            owner: None,
            domain: user.account.address.domain().to_owned(),
            public_name: Some(mailbox.to_owned()),
        }))
    }

    /// Whether a client's mailbox name is in the public namespace.
    pub(crate) fn in_public_namespace(&self, mailbox: &str) -> bool {
        self.ctx
            .public
            .as_ref()
            .is_some_and(|public| mailbox.starts_with(public.prefix.as_str()))
    }

    /// LIST's lines for the public namespace: its root and the folders the user has `l` on,
    /// as far as `patterns` match them.
    pub(crate) async fn list_public(&mut self, patterns: &[String]) -> io::Result<()> {
        let Some(public) = self.ctx.public.clone() else {
            return Ok(());
        };
        let matches = |name: &str| {
            patterns
                .iter()
                .any(|pattern| list_pattern_matches(pattern, name, SEPARATOR))
        };
        let could_match = patterns.iter().any(|pattern| {
            let head: String = pattern
                .chars()
                .take_while(|c| *c != '*' && *c != '%')
                .collect();
            public.prefix.starts_with(&head) || head.starts_with(&public.prefix)
        });
        if !could_match {
            return Ok(());
        }
        let root = public.prefix.trim_end_matches(SEPARATOR).to_owned();
        let mut lines: Vec<(String, &'static str)> = Vec::new();
        if matches(&root) {
            lines.push((root, "\\Noselect \\HasChildren"));
        }
        let Ok(tree) = self.ctx.mail.open_tree(&public.location, public.layout) else {
            return Ok(());
        };
        let folders = tree.list().await.unwrap_or_default();
        for folder in folders {
            if folder.name.eq_ignore_ascii_case("INBOX") {
                continue;
            }
            let full = format!("{}{}", public.prefix, folder.name);
            if !matches(&full) {
                continue;
            }
            let Ok(Some(target)) = self.public_target(&full) else {
                continue;
            };
            if self.rights_at(target.place()).await.contains(Rights::LOOKUP) {
                lines.push((full, ""));
            }
        }
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

fn nonexistent() -> Done {
    Done::no("[NONEXISTENT] Mailbox doesn't exist.")
}
