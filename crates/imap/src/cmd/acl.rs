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

/// What a folder's rights are looked up with.
struct Lookup {
    acls: Arc<Acls>,
    dir: PathBuf,
    name: String,
    login: String,
    domain: String,
}

impl Session {
    /// The rights the logged-in user has on the folder with store name `name`: every right
    /// when ACLs are off.
    pub(crate) async fn rights_on(&mut self, name: &str) -> Rights {
        let Some(acls) = self.ctx.acls.clone() else {
            return Rights::ALL;
        };
        let Some(user) = &self.user else {
            return Rights::empty();
        };
        let Ok(dir) = user.mail.folder_path(name) else {
            // An invalid name names no folder; the command itself says why.
            return Rights::ALL;
        };
        let lookup = Lookup {
            acls,
            dir,
            name: name.to_owned(),
            login: user.account.address.to_string(),
            domain: user.account.address.domain().to_owned(),
        };
        let res = tokio::task::spawn_blocking(move || {
            // The user's ACL groups (Dovecot's `acl_groups`) come in here, once the
            // directory has them.
            let groups: Vec<String> = Vec::new();
            let who = Requester {
                user: &lookup.login,
                groups: &groups,
                is_owner: true,
            };
            lookup
                .acls
                .rights(&lookup.dir, &lookup.name, &lookup.domain, &who)
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
        let selected_name = self
            .selected
            .as_ref()
            .map(|selected| selected.folder.name().to_owned());
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
                self.require_selected(&selected_name, Rights::EXPUNGE)
                    .await?;
            }
            Command::Move { mailbox, .. } => {
                require(self.client_rights(mailbox).await?, Rights::INSERT)?;
                self.require_selected(&selected_name, Rights::WRITE_DELETED.union(Rights::EXPUNGE))
                    .await?;
            }
            Command::Expunge | Command::UidExpunge(_) => {
                self.require_selected(&selected_name, Rights::EXPUNGE)
                    .await?;
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
                self.require_selected(&selected_name, needed).await?;
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
            Some(selected) if self.ctx.acls.is_some() => {
                let name = selected.folder.name().to_owned();
                self.rights_on(&name).await.contains(Rights::WRITE_SEEN)
            }
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
        let name = self.store_name_of(mailbox)?;
        Ok(self.rights_on(&name).await)
    }

    async fn require_selected(
        &mut self,
        name: &Option<String>,
        needed: Rights,
    ) -> Result<(), Done> {
        let Some(name) = name else {
            return Ok(());
        };
        let rights = self.rights_on(name).await;
        if rights.contains(needed) {
            return Ok(());
        }
        Err(Done::no("[NOPERM] Permission denied."))
    }

    /// GETACL: the folder's own entries; a folder without any shows its owner's default.
    pub(crate) async fn get_acl(&mut self, mailbox: &str) -> io::Result<Done> {
        let (acls, dir) = match self.acl_target(mailbox) {
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
        if entries.is_empty() {
            out.extend_from_slice(format!(" owner {}", Rights::ALL.to_imap()).as_bytes());
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
        let (_, dir) = match self.acl_target(mailbox) {
            Ok(target) => target,
            Err(done) => return Ok(done),
        };
        let res = tokio::task::spawn_blocking(move || {
            modify_acl_file(&dir, &identifier, negative, change).map(|_: Vec<AclEntry>| ())
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
        if let Err(done) = self.acl_target(mailbox) {
            return Ok(done);
        }
        let mut out = b"* LISTRIGHTS ".to_vec();
        crate::wire::mailbox(&mut out, mailbox, self.utf8_names());
        out.push(b' ');
        crate::wire::astring(&mut out, identifier.as_bytes());
        out.extend_from_slice(b" \"\" l r w s t i p e k x a c d\r\n");
        self.conn.write(&out).await?;
        Ok(Done::ok("Listrights completed."))
    }

    /// MYRIGHTS.
    pub(crate) async fn my_rights(&mut self, mailbox: &str) -> io::Result<Done> {
        let name = match self.store_name_of(mailbox) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        if !self.mail().is_some_and(|mail| mail.folder_exists(&name)) {
            return Ok(nonexistent());
        }
        let rights = self.rights_on(&name).await;
        let mut out = b"* MYRIGHTS ".to_vec();
        crate::wire::mailbox(&mut out, mailbox, self.utf8_names());
        out.push(b' ');
        crate::wire::astring(&mut out, rights.to_imap().as_bytes());
        out.extend_from_slice(b"\r\n");
        self.conn.write(&out).await?;
        Ok(Done::ok("Myrights completed."))
    }

    /// The ACL configuration and the directory of an existing folder, or the refusal.
    fn acl_target(&self, mailbox: &str) -> Result<(Arc<Acls>, PathBuf), Done> {
        let Some(acls) = self.ctx.acls.clone() else {
            return Err(Done::no("[CANNOT] ACLs are not enabled on this server."));
        };
        let name = self.store_name_of(mailbox)?;
        let Some(mail) = self.mail() else {
            return Err(Done::bad("Please log in first."));
        };
        if !mail.folder_exists(&name) {
            return Err(nonexistent());
        }
        match mail.folder_path(&name) {
            Ok(dir) => Ok((acls, dir)),
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

fn nonexistent() -> Done {
    Done::no("[NONEXISTENT] Mailbox doesn't exist.")
}
