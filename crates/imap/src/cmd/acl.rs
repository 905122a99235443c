//! RFC 4314 ACL: the rights each command needs (one table, [`Session::acl_gate`]), and
//! SETACL, DELETEACL, GETACL, LISTRIGHTS and MYRIGHTS over the store's `dovecot-acl` files.
//!
//! A user without `l` or `r` on a folder is answered as if it did not exist, as Dovecot
//! does, so ACLs do not tell which folders exist.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use mailstead_store::FolderInfo;
use mailstead_store::acl::{AclEntry, Acls, Identifier, Requester, Rights, modify_acl_file};
use tracing::warn;

use crate::cmd::mailbox::store_name;
use crate::command::{Command, Flag, StoreOperation};
use crate::session::{Done, Session};

/// Rights which make a SELECT read-write (RFC 4314 section 4: without any of them the
/// folder is READ-ONLY).
const WRITE_RIGHTS: Rights = Rights::WRITE_SEEN
    .union(Rights::WRITE)
    .union(Rights::WRITE_DELETED)
    .union(Rights::INSERT)
    .union(Rights::EXPUNGE);

/// Where a folder's ACL is looked up.
#[derive(Clone, Debug)]
pub(crate) struct AclPlace {
    /// The folder's Maildir directory, where its `dovecot-acl` is.
    dir: PathBuf,
    /// Its name for the global ACLs (the owner's name for it).
    mailbox: String,
    /// `%d` of a global ACL directory: the owner's domain.
    domain: String,
    /// Whether the logged-in user owns the folder.
    own: bool,
}

/// A folder a command names: the account it is in, and its store name there.
pub(crate) struct Target {
    pub(crate) mail: mailstead_store::Account,
    pub(crate) name: String,
    /// The owner's login when the folder is another user's (shared namespace).
    pub(crate) owner: Option<String>,
    pub(crate) domain: String,
    /// Public namespace: the name global ACLs know the folder by (`Public/Team`); such a
    /// folder has no owner, so `owner` entries never match it.
    pub(crate) public_name: Option<String>,
}

impl Target {
    /// `None` for a name that names no folder (the command says why).
    pub(crate) fn place(&self) -> Option<AclPlace> {
        let dir = self.mail.folder_path(&self.name).ok()?;
        Some(AclPlace {
            dir,
            mailbox: self
                .public_name
                .clone()
                .unwrap_or_else(|| self.name.clone()),
            domain: self.domain.clone(),
            own: self.owner.is_none() && self.public_name.is_none(),
        })
    }
}

impl Session {
    /// The rights the logged-in user has on the folder with store name `name` in their own
    /// account: every right when ACLs are off.
    pub(crate) async fn rights_on(&mut self, name: &str) -> Rights {
        let Some(user) = &self.user else {
            return Rights::empty();
        };
        let place = user.mail.folder_path(name).ok().map(|dir| AclPlace {
            dir,
            mailbox: name.to_owned(),
            domain: user.account.address.domain().to_owned(),
            own: true,
        });
        self.rights_at(place).await
    }

    /// The rights the logged-in user has at `place` (`None`: no folder can be there, and
    /// the command itself refuses the name).
    pub(crate) async fn rights_at(&mut self, place: Option<AclPlace>) -> Rights {
        let Some(acls) = self.ctx.acls.clone() else {
            return Rights::ALL;
        };
        let Some(user) = &self.user else {
            return Rights::empty();
        };
        let Some(place) = place else {
            return Rights::ALL;
        };
        let login = user.account.address.to_string();
        let groups = user.account.acl_groups.clone();
        let res = tokio::task::spawn_blocking(move || {
            // The user's ACL groups from the directory (Dovecot's `acl_groups`).
            let who = Requester {
                user: &login,
                groups: &groups,
                is_owner: place.own,
            };
            acls.rights(&place.dir, &place.mailbox, &place.domain, &who)
        })
        .await;
        match res {
            Ok(Ok(rights)) => rights,
            Ok(Err(err)) => {
                warn!(cause = %err, "ACL unreadable; no rights granted");
                Rights::empty()
            }
            Err(err) => {
                warn!(cause = %err, "ACL lookup failed; no rights granted");
                Rights::empty()
            }
        }
    }

    /// Checks the rights `command` needs (RFC 4314 section 4) and returns the command to
    /// run, or the refusal. A SELECT without any right to change the folder becomes read-only.
    pub(crate) async fn acl_gate(&mut self, command: Command) -> Result<Command, Done> {
        if self.ctx.acls.is_none() || self.user.is_none() {
            return Ok(command);
        }
        match &command {
            Command::Select(select) => {
                let rights = self.client_rights(&select.mailbox).await?;
                require(rights, Rights::READ)?;
                if !rights.intersects(WRITE_RIGHTS) {
                    let Command::Select(select) = command else {
                        return Ok(command);
                    };
                    return Ok(Command::Examine(select));
                }
            }
            Command::Examine(select) => {
                require(self.client_rights(&select.mailbox).await?, Rights::READ)?;
            }
            Command::Status { mailbox, .. } => {
                require(self.client_rights(mailbox).await?, Rights::READ)?;
            }
            Command::Append { mailbox, .. }
            | Command::MultiAppend { mailbox, .. }
            | Command::Copy { mailbox, .. } => {
                require(self.client_rights(mailbox).await?, Rights::INSERT)?;
            }
            Command::Replace { mailbox, .. } => {
                require(self.client_rights(mailbox).await?, Rights::INSERT)?;
                self.require_selected(Rights::EXPUNGE).await?;
            }
            Command::Move { mailbox, .. } => {
                require(self.client_rights(mailbox).await?, Rights::INSERT)?;
                self.require_selected(Rights::WRITE_DELETED.union(Rights::EXPUNGE))
                    .await?;
            }
            Command::Expunge | Command::UidExpunge(_) => {
                self.require_selected(Rights::EXPUNGE).await?;
            }
            Command::Store(store) => {
                let mut needed = Rights::empty();
                if store.operation == StoreOperation::Replace {
                    needed = Rights::WRITE_SEEN
                        .union(Rights::WRITE_DELETED)
                        .union(Rights::WRITE);
                }
                for flag in &store.flags {
                    needed = needed.union(match flag {
                        Flag::Seen => Rights::WRITE_SEEN,
                        Flag::Deleted => Rights::WRITE_DELETED,
                        _ => Rights::WRITE,
                    });
                }
                self.require_selected(needed).await?;
            }
            Command::Create { mailbox, .. }
            | Command::Delete(mailbox)
            | Command::Rename { from: mailbox, .. }
            | Command::Rename { to: mailbox, .. }
                if self.in_shared_namespace(mailbox) || self.in_public_namespace(mailbox) =>
            {
                return Err(Done::no(
                    "[CANNOT] Shared and public folders are created, deleted and renamed by their owners.",
                ));
            }
            Command::Create { mailbox, .. } => {
                let name = self.store_name_of(mailbox)?;
                if let Some((parent, _)) = name.rsplit_once('/') {
                    require(self.rights_on(parent).await, Rights::CREATE)?;
                }
            }
            Command::Delete(mailbox) => {
                require(self.client_rights(mailbox).await?, Rights::DELETE)?;
            }
            Command::Rename { from, to } => {
                require(self.client_rights(from).await?, Rights::DELETE)?;
                let to = self.store_name_of(to)?;
                if let Some((parent, _)) = to.rsplit_once('/') {
                    require(self.rights_on(parent).await, Rights::CREATE)?;
                }
            }
            Command::SetAcl { mailbox, .. }
            | Command::DeleteAcl { mailbox, .. }
            | Command::GetAcl(mailbox)
            | Command::ListRights { mailbox, .. } => {
                require(self.client_rights(mailbox).await?, Rights::ADMIN)?;
            }
            Command::MyRights(mailbox) => {
                let rights = self.client_rights(mailbox).await?;
                if rights.is_empty() {
                    return Err(nonexistent());
                }
            }
            _ => {}
        }
        Ok(command)
    }

    /// Whether FETCH may set `\Seen` in the selected folder.
    pub(crate) async fn may_set_seen(&mut self) -> bool {
        match &self.selected {
            Some(_) if self.ctx.acls.is_some() => self
                .rights_at(self.selected_place.clone())
                .await
                .contains(Rights::WRITE_SEEN),
            _ => true,
        }
    }

    /// Whether LIST and LSUB show the folder (the `l` right).
    pub(crate) async fn visible(&mut self, name: &str) -> bool {
        self.ctx.acls.is_none() || self.rights_on(name).await.contains(Rights::LOOKUP)
    }

    /// The folders LIST shows: those with the `l` right.
    pub(crate) async fn visible_folders(&mut self, folders: Vec<FolderInfo>) -> Vec<FolderInfo> {
        if self.ctx.acls.is_none() {
            return folders;
        }
        let mut shown = Vec::with_capacity(folders.len());
        for folder in folders {
            if self.visible(&folder.name).await {
                shown.push(folder);
            }
        }
        shown
    }

    /// The names LSUB shows: subscriptions to folders with the `l` right, and to folders
    /// that do not exist (RFC 3501 keeps those).
    pub(crate) async fn visible_names(&mut self, names: Vec<String>) -> Vec<String> {
        if self.ctx.acls.is_none() {
            return names;
        }
        let mut shown = Vec::with_capacity(names.len());
        for name in names {
            if self.visible(&name).await {
                shown.push(name);
            }
        }
        shown
    }

    fn store_name_of(&self, mailbox: &str) -> Result<String, Done> {
        match self.mail() {
            Some(mail) => store_name(mail, mailbox),
            None => Err(Done::bad("Please log in first.")),
        }
    }

    async fn client_rights(&mut self, mailbox: &str) -> Result<Rights, Done> {
        let target = self.target(mailbox).await?;
        Ok(self.rights_at(target.place()).await)
    }

    async fn require_selected(&mut self, needed: Rights) -> Result<(), Done> {
        if self.selected.is_none() {
            return Ok(());
        }
        let rights = self.rights_at(self.selected_place.clone()).await;
        if rights.contains(needed) {
            return Ok(());
        }
        Err(Done::no("[NOPERM] Permission denied."))
    }

    /// GETACL: the folder's own entries; a folder without any shows its owner's default
    /// (global ACLs are not listed: they cannot be changed over IMAP).
    pub(crate) async fn get_acl(&mut self, mailbox: &str) -> io::Result<Done> {
        let (acls, dir, owner) = match self.acl_target(mailbox).await {
            Ok(target) => target,
            Err(done) => return Ok(done),
        };
        let entries = match tokio::task::spawn_blocking(move || acls.folder_entries(&dir)).await {
            Ok(Ok(entries)) => entries,
            Ok(Err(err)) => {
                warn!(cause = %err, "GETACL: ACL unreadable");
                return Ok(Done::no("[SERVERBUG] The ACL file cannot be read."));
            }
            Err(_) => return Ok(Done::no("[SERVERBUG] Internal error.")),
        };
        let mut out = b"* ACL ".to_vec();
        crate::wire::mailbox(&mut out, mailbox, self.utf8_names());
        if entries.is_empty() && !owner.is_empty() {
            // As Dovecot shows a folder without an ACL: its owner, with every right.
            out.push(b' ');
            crate::wire::astring(&mut out, owner.as_bytes());
            out.push(b' ');
            out.extend_from_slice(Rights::ALL.to_imap().as_bytes());
        }
        for entry in &entries {
            for (negative, rights) in [(false, entry.rights), (true, entry.negative)] {
                let Some(rights) = rights else { continue };
                let id = entry.identifier.to_imap();
                let id = if negative { format!("-{id}") } else { id };
                out.push(b' ');
                crate::wire::astring(&mut out, id.as_bytes());
                out.push(b' ');
                crate::wire::astring(&mut out, rights.to_imap().as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        self.conn.write(&out).await?;
        Ok(Done::ok("Getacl completed."))
    }

    /// SETACL (`rights` may start with `+` or `-`) and DELETEACL (`rights` is `None`).
    pub(crate) async fn set_acl(
        &mut self,
        mailbox: &str,
        identifier: &str,
        rights: Option<&str>,
    ) -> io::Result<Done> {
        let (negative, id_text) = match identifier.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, identifier),
        };
        let Some(identifier) = Identifier::parse_imap(id_text) else {
            return Ok(Done::bad("Invalid identifier."));
        };
        let change: Box<dyn FnOnce(Option<Rights>) -> Option<Rights> + Send> = match rights {
            None => Box::new(|_| None),
            Some(text) => {
                let (mode, letters) = match text.as_bytes().first() {
                    Some(b'+') => (b'+', &text[1..]),
                    Some(b'-') => (b'-', &text[1..]),
                    _ => (b'=', text),
                };
                let parsed = match Rights::parse_imap(letters) {
                    Ok(parsed) => parsed,
                    Err(letter) => {
                        return Ok(Done::bad(format!(
                            "Invalid rights: unknown right '{letter}'."
                        )));
                    }
                };
                Box::new(move |now: Option<Rights>| {
                    let now = now.unwrap_or_default();
                    let new = match mode {
                        b'+' => now.union(parsed),
                        b'-' => now.without(parsed),
                        _ => parsed,
                    };
                    (!new.is_empty()).then_some(new)
                })
            }
        };
        let (_, dir, owner) = match self.acl_target(mailbox).await {
            Ok(target) => target,
            Err(done) => return Ok(done),
        };
        let shared = self.ctx.shared.clone();
        let res = tokio::task::spawn_blocking(move || {
            let entries = modify_acl_file(&dir, &identifier, negative, change)?;
            // LIST of the shared namespace finds the owner through the index.
            let grants_lookup = entries.iter().any(|e: &AclEntry| {
                e.identifier == identifier && e.rights.is_some_and(|r| r.contains(Rights::LOOKUP))
            });
            if let Some(shared) = shared
                && grants_lookup
                && !owner.is_empty()
                && let Err(err) = shared.index.add(&identifier, &owner)
            {
                warn!(cause = %err, "shared mailbox index not updated");
            }
            Ok::<(), mailstead_store::acl::AclError>(())
        })
        .await;
        Ok(match res {
            Ok(Ok(())) if rights.is_some() => Done::ok("Setacl completed."),
            Ok(Ok(())) => Done::ok("Deleteacl completed."),
            Ok(Err(mailstead_store::acl::AclError::TooManyEntries)) => {
                Done::no("[LIMIT] Too many ACL entries.")
            }
            Ok(Err(err)) => {
                warn!(cause = %err, "SETACL failed");
                Done::no("[SERVERBUG] The ACL file cannot be written.")
            }
            Err(_) => Done::no("[SERVERBUG] Internal error."),
        })
    }

    /// LISTRIGHTS: nothing is always granted; every right may be granted on its own.
    pub(crate) async fn list_rights(
        &mut self,
        mailbox: &str,
        identifier: &str,
    ) -> io::Result<Done> {
        if let Err(done) = self.acl_target(mailbox).await {
            return Ok(done);
        }
        let mut out = b"* LISTRIGHTS ".to_vec();
        crate::wire::mailbox(&mut out, mailbox, self.utf8_names());
        out.push(b' ');
        crate::wire::astring(&mut out, identifier.as_bytes());
        // Dovecot's list, in its order.
        out.extend_from_slice(b" \"\" l r w s t p i e k x a c d\r\n");
        self.conn.write(&out).await?;
        Ok(Done::ok("Listrights completed."))
    }

    /// MYRIGHTS.
    pub(crate) async fn my_rights(&mut self, mailbox: &str) -> io::Result<Done> {
        let target = match self.target(mailbox).await {
            Ok(target) => target,
            Err(done) => return Ok(done),
        };
        if !target.mail.folder_exists(&target.name) {
            return Ok(nonexistent());
        }
        let rights = self.rights_at(target.place()).await;
        let mut out = b"* MYRIGHTS ".to_vec();
        crate::wire::mailbox(&mut out, mailbox, self.utf8_names());
        out.push(b' ');
        crate::wire::astring(&mut out, rights.to_imap().as_bytes());
        out.extend_from_slice(b"\r\n");
        self.conn.write(&out).await?;
        Ok(Done::ok("Myrights completed."))
    }

    /// The ACL configuration, the directory of an existing folder and its owner's login, or
    /// the refusal.
    async fn acl_target(&mut self, mailbox: &str) -> Result<(Arc<Acls>, PathBuf, String), Done> {
        let Some(acls) = self.ctx.acls.clone() else {
            return Err(Done::no("[CANNOT] ACLs are not enabled on this server."));
        };
        let target = self.target(mailbox).await?;
        if !target.mail.folder_exists(&target.name) {
            return Err(nonexistent());
        }
        let owner = match (&target.owner, &self.user) {
            // A public folder has no owner.
            _ if target.public_name.is_some() => String::new(),
            (Some(owner), _) => owner.clone(),
            (None, Some(user)) => user.account.address.to_string(),
            (None, None) => return Err(Done::bad("Please log in first.")),
        };
        match target.mail.folder_path(&target.name) {
            Ok(dir) => Ok((acls, dir, owner)),
            Err(err) => Err(self.no_for(&err)),
        }
    }
}

/// Refuses without telling whether the folder exists, unless the user may see it.
fn require(rights: Rights, needed: Rights) -> Result<(), Done> {
    if rights.contains(needed) {
        return Ok(());
    }
    if !rights.intersects(Rights::LOOKUP.union(Rights::READ)) {
        return Err(nonexistent());
    }
    Err(Done::no("[NOPERM] Permission denied."))
}

/// What a folder the user may not see answers, the same as one that does not exist.
pub(super) fn nonexistent() -> Done {
    Done::no("[NONEXISTENT] Mailbox doesn't exist.")
}
