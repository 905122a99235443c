//! The public namespace: `Public/Team` is the folder `Team` of a Maildir tree that belongs
//! to no user (Dovecot's `type = public` namespace). Its rights come from the folders'
//! `dovecot-acl` files and the global ACLs named `Public/...`; without an ACL nobody has any
//! right, and `owner` entries never match. Sessions on the same folder share one `Folder`,
//! so IDLE wakes on any user's changes.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use mailstead_store::acl::Rights;
use mailstead_store::private_seen::PrivateSeen;
use mailstead_store::{FlagOperation, Folder, MailboxError, Snapshot, StoreResult, SystemFlags};

use crate::cmd::acl::{Target, nonexistent};
use crate::cmd::mailbox::list_pattern_matches;
use crate::session::{Done, Session};

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

    /// The user's `\Seen` file for a public folder, when the namespace keeps `\Seen` per
    /// user (`private_index`, where `~` is the user's home).
    pub(crate) fn private_seen_path(&self, target: &Target) -> Option<PathBuf> {
        target.public_name.as_ref()?;
        let index = self.ctx.public.as_ref()?.private_index.as_deref()?;
        let user = self.user.as_ref()?;
        let dir = match index.strip_prefix('~') {
            Some(rest) => user
                .account
                .location
                .home
                .join(rest.trim_start_matches('/')),
            None => PathBuf::from(index),
        };
        Some(PrivateSeen::path_for(&dir, &target.name))
    }

    /// The selected folder's messages as this user sees them: with their own `\Seen` in a
    /// public folder with a private index. Every command that reads flags looks through it.
    pub(crate) fn seen_view(&self, snapshot: Arc<Snapshot>) -> Arc<Snapshot> {
        match self.selected.as_ref().and_then(|s| s.private_seen.as_ref()) {
            Some(seen) => Arc::new(seen.apply(&snapshot)),
            None => snapshot,
        }
    }

    /// Changes flags of the selected folder: `\Seen` goes to the user's own file in a public
    /// folder with a private index, everything else to the Maildir file names everyone shares.
    pub(crate) async fn store_flags(
        &mut self,
        folder: &Arc<Folder>,
        uids: &[u32],
        operation: FlagOperation,
        mut flags: SystemFlags,
        keywords: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<StoreResult, MailboxError> {
        let Some(mut seen) = self
            .selected
            .as_mut()
            .and_then(|selected| selected.private_seen.take())
        else {
            return folder
                .store(uids, operation, flags, keywords, unchanged_since)
                .await;
        };
        let wants_seen = flags.contains(SystemFlags::SEEN);
        flags.remove(SystemFlags::SEEN);
        let mut result =
            if operation == FlagOperation::Replace || !flags.is_empty() || !keywords.is_empty() {
                folder
                    .store(uids, operation, flags, keywords, unchanged_since)
                    .await
            } else {
                Ok(StoreResult::default())
            };
        if let Ok(result) = &mut result {
            let allowed: Vec<u32> = uids
                .iter()
                .copied()
                .filter(|uid| !result.modified.contains(uid))
                .collect();
            let changed = match operation {
                FlagOperation::Add if wants_seen => seen.set(&allowed, true),
                FlagOperation::Remove if wants_seen => seen.set(&allowed, false),
                FlagOperation::Replace => seen.set(&allowed, wants_seen),
                _ => Vec::new(),
            };
            if !changed.is_empty() {
                let snapshot = folder.snapshot();
                let (saved, written) = tokio::task::spawn_blocking(move || {
                    let written = seen.save(&snapshot);
                    (seen, written)
                })
                .await
                .map_err(|err| MailboxError::Task(err.to_string()))?;
                seen = saved;
                if let Err(err) = written {
                    self.put_private_seen(seen);
                    return Err(err);
                }
                result.updated.extend(changed);
                result.updated.sort_unstable();
                result.updated.dedup();
            }
        }
        self.put_private_seen(seen);
        result
    }

    fn put_private_seen(&mut self, seen: PrivateSeen) {
        if let Some(selected) = self.selected.as_mut() {
            selected.private_seen = Some(seen);
        }
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
            if self
                .rights_at(target.place())
                .await
                .contains(Rights::LOOKUP)
            {
                lines.push((full, ""));
            }
        }
        self.write_list_lines(lines).await
    }
}
