//! The commands on folders as a whole: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST
//! (with LIST-EXTENDED selection and RETURN options, SPECIAL-USE, LIST-STATUS), LSUB, NAMESPACE,
//! STATUS, GETQUOTA and GETQUOTAROOT.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::sync::Arc;

use mailstead_store::{Account, FolderInfo, MailboxError, Snapshot, SpecialUse, SystemFlags};

use crate::command::{ListCommand, StatusItem};
use crate::session::{Done, Session};
use crate::wire;

/// `INBOX` in any case is the INBOX (RFC 3501 5.1); other names are case-sensitive. A
/// trailing `separator` names the same mailbox.
fn normalize(name: &str, separator: char) -> String {
    let trimmed = name.strip_suffix(separator).unwrap_or(name);
    match trimmed.get(..5) {
        Some(prefix) if prefix.eq_ignore_ascii_case("INBOX") => {
            let rest = trimmed.get(5..).unwrap_or("");
            if rest.is_empty() || rest.starts_with(separator) {
                return format!("INBOX{rest}");
            }
            trimmed.to_owned()
        }
        _ => trimmed.to_owned(),
    }
}

/// A client's mailbox name as the store names it (`/` between levels, `INBOX` in any case as
/// `INBOX`). Clients see the separator Dovecot shows for the account's layout, so a Maildir
/// migrated from Dovecot keeps its names; with Maildir++ that is `.`, and a `/` would be a
/// level the store cannot tell from its own separator: refused, as Dovecot refuses it.
pub(crate) fn store_name(mail: &Account, mailbox: &str) -> Result<String, Done> {
    let separator = mail.layout().separator();
    let name = normalize(mailbox, separator);
    if separator == '/' {
        return Ok(name);
    }
    if name.contains('/') {
        return Err(Done::no(
            "[CANNOT] Character not allowed in mailbox name: '/'.",
        ));
    }
    Ok(name.replace(separator, "/"))
}

/// A store name as the account's clients see it: [`store_name`] undone, and in UTF-8 when
/// `utf8` (IMAP4rev2, UTF8=ACCEPT).
pub(crate) fn client_name(name: &str, separator: char, utf8: bool) -> String {
    crate::cmd::rev2::shown_name(name, utf8).replace('/', separator.encode_utf8(&mut [0; 4]))
}

/// LIST wildcards: `*` matches anything, `%` anything but the separator. One pass over the
/// name per pattern character with two reused rows (no backtracking, no allocation per step),
/// so the cost is at most pattern length x name length; the parser bounds the pattern.
fn list_matches(pattern: &str, name: &str, separator: char) -> bool {
    let name: Vec<char> = name.chars().collect();
    // row[j]: the pattern so far matches name[..j].
    let mut row = vec![false; name.len() + 1];
    let mut next = vec![false; name.len() + 1];
    if let Some(first) = row.first_mut() {
        *first = true;
    }
    let mut previous = None;
    for p in pattern.chars() {
        // `**` and `*%` match what `*` matches, `%%` what `%` does.
        let repeated = match p {
            '*' => previous == Some('*'),
            '%' => matches!(previous, Some('*' | '%')),
            _ => false,
        };
        if repeated {
            continue;
        }
        match p {
            '*' | '%' => {
                // A wildcard span starts wherever the pattern so far matched and, for `%`,
                // cannot run over a separator.
                let mut reachable = false;
                for (j, slot) in next.iter_mut().enumerate() {
                    if p == '%' && j > 0 && name.get(j - 1) == Some(&separator) {
                        reachable = false;
                    }
                    if row.get(j) == Some(&true) {
                        reachable = true;
                    }
                    *slot = reachable;
                }
            }
            _ => {
                if let Some(first) = next.first_mut() {
                    *first = false;
                }
                for j in 1..=name.len() {
                    next[j] = row[j - 1] && name[j - 1] == p;
                }
            }
        }
        std::mem::swap(&mut row, &mut next);
        if !row.contains(&true) {
            return false;
        }
        previous = Some(p);
    }
    row.last() == Some(&true)
}

pub(crate) fn list_pattern_matches(pattern: &str, name: &str, separator: char) -> bool {
    if name == "INBOX" {
        // The INBOX matches its name in any case.
        return list_matches(&normalize(pattern, separator), name, separator)
            || list_matches(pattern, name, separator);
    }
    list_matches(pattern, name, separator)
}

/// The attributes LIST gives an existing folder.
fn folder_attributes(folder: &FolderInfo) -> Vec<&'static str> {
    let mut attributes = vec![if folder.has_children {
        "\\HasChildren"
    } else {
        "\\HasNoChildren"
    }];
    if let Some(special_use) = folder.special_use {
        attributes.push(special_use.attribute());
    }
    attributes
}

/// What a LIST line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listed {
    /// The folder at this index of the account's list.
    Folder(usize),
    /// No folder, but the parent of one (a Maildir++ `.Work.Projects` without `.Work`).
    Parent,
    /// No folder at all (a subscription to a folder that is gone).
    Missing,
}

/// One line of a LIST answer.
#[derive(Debug)]
struct ListEntry {
    name: String,
    kind: Listed,
    /// RFC 5258 RECURSIVEMATCH: a subscribed name below it is not matched by the pattern.
    subscribed_child: bool,
}

/// Every parent of `name` (`a` and `a/b` for `a/b/c`).
fn ancestors(name: &str, separator: char) -> impl Iterator<Item = &str> {
    name.match_indices(separator)
        .filter_map(|(index, _)| name.get(..index))
        .filter(|parent| !parent.is_empty())
}

/// INBOX first, then by name, as the store lists folders.
fn listing_order(a: &str, b: &str) -> std::cmp::Ordering {
    (a != "INBOX", a).cmp(&(b != "INBOX", b))
}

/// LIST without SUBSCRIBED: the folders that match and the parents that exist only as the
/// path of a deeper folder (Dovecot lists those `\Noselect \HasChildren`, and a client
/// walking the tree with `%` needs them to find the children).
fn list_all(
    folders: &[FolderInfo],
    separator: char,
    matches: impl Fn(&str) -> bool,
) -> Vec<ListEntry> {
    let existing: HashSet<&str> = folders.iter().map(|folder| folder.name.as_str()).collect();
    let mut parents: BTreeSet<&str> = BTreeSet::new();
    for folder in folders {
        parents
            .extend(ancestors(&folder.name, separator).filter(|parent| !existing.contains(parent)));
    }
    let mut entries: Vec<ListEntry> = folders
        .iter()
        .enumerate()
        .filter(|(_, folder)| matches(&folder.name))
        .map(|(index, folder)| ListEntry {
            name: folder.name.clone(),
            kind: Listed::Folder(index),
            subscribed_child: false,
        })
        .collect();
    entries.extend(
        parents
            .into_iter()
            .filter(|parent| matches(parent))
            .map(|parent| ListEntry {
                name: parent.to_owned(),
                kind: Listed::Parent,
                subscribed_child: false,
            }),
    );
    entries.sort_by(|a, b| listing_order(&a.name, &b.name));
    entries
}

/// LIST (SUBSCRIBED): the subscriptions that match; with RECURSIVEMATCH also the names that
/// match and have a subscribed descendant the pattern does not reach, marked for CHILDINFO
/// (RFC 5258 3.5).
fn list_subscribed(
    folders: &[FolderInfo],
    subscriptions: &[String],
    recursive_match: bool,
    separator: char,
    matches: impl Fn(&str) -> bool,
) -> Vec<ListEntry> {
    let by_name: HashMap<&str, usize> = folders
        .iter()
        .enumerate()
        .map(|(index, folder)| (folder.name.as_str(), index))
        .collect();
    let kind = |name: &str| match by_name.get(name) {
        Some(index) => Listed::Folder(*index),
        None if folders
            .iter()
            .any(|folder| ancestors(&folder.name, separator).any(|parent| parent == name)) =>
        {
            Listed::Parent
        }
        None => Listed::Missing,
    };
    let mut with_child: BTreeSet<&str> = BTreeSet::new();
    if recursive_match {
        for name in subscriptions.iter().filter(|name| !matches(name)) {
            with_child.extend(ancestors(name, separator).filter(|parent| matches(parent)));
        }
    }
    let mut names: BTreeSet<&str> = subscriptions
        .iter()
        .map(String::as_str)
        .filter(|name| matches(name))
        .collect();
    names.extend(with_child.iter().copied());
    let mut entries: Vec<ListEntry> = names
        .into_iter()
        .map(|name| ListEntry {
            name: name.to_owned(),
            kind: kind(name),
            subscribed_child: with_child.contains(name),
        })
        .collect();
    entries.sort_by(|a, b| listing_order(&a.name, &b.name));
    entries
}

impl Session {
    pub(crate) async fn create(
        &mut self,
        mailbox: &str,
        special_use: &[String],
    ) -> io::Result<Done> {
        let Some(mail) = self.mail().cloned() else {
            return Ok(Done::bad("Please log in first."));
        };
        if !crate::utf7::is_valid(mailbox) {
            return Ok(Done::no("[CANNOT] Mailbox name is not valid mUTF-7."));
        }
        let mut name = match store_name(&mail, mailbox) {
            Ok(name) => name,
            Err(refused) => return Ok(refused),
        };
        if name == "INBOX" {
            return Ok(Done::no("[ALREADYEXISTS] Mailbox already exists."));
        }
        let given = self.normalize_new_name(&mut name);
        let use_attribute = match special_use {
            [] => None,
            [one] => match SpecialUse::from_attribute(one) {
                Some(attribute) => Some(attribute),
                None => return Ok(Done::no("[USEATTR] Unsupported special-use attribute.")),
            },
            _ => {
                return Ok(Done::no(
                    "[USEATTR] Only one special-use attribute per mailbox.",
                ));
            }
        };
        if let Err(err) = mail.create(&name, use_attribute).await {
            return Ok(self.no_for(&err));
        }
        self.mailboxes_changed();
        if let Some(given) = given {
            let line = own_list_line(&mail, &name, Some(&given), self.utf8_names()).await;
            self.conn.write(&line).await?;
        }
        // RFC 8474 4.1: the new folder's MAILBOXID, from its uidlist.
        let mailbox_id = match mail.open(&name).await {
            Ok(folder) => folder.sync().await.ok().map(|s| Arc::clone(&s.mailbox_id)),
            Err(_) => None,
        };
        Ok(match mailbox_id {
            Some(id) if !id.is_empty() => Done::ok(format!("[MAILBOXID ({id})] Create completed.")),
            _ => Done::ok("Create completed."),
        })
    }

    pub(crate) async fn delete(&mut self, mailbox: &str) -> io::Result<Done> {
        let Some(mail) = self.mail().cloned() else {
            return Ok(Done::bad("Please log in first."));
        };
        let name = match store_name(&mail, mailbox) {
            Ok(name) => name,
            Err(refused) => return Ok(refused),
        };
        if name == "INBOX" {
            return Ok(Done::no("[CANNOT] INBOX can't be deleted."));
        }
        if self
            .selected
            .as_ref()
            .is_some_and(|selected| selected.folder.name() == name)
        {
            return Ok(Done::no("[INUSE] Can't delete the selected mailbox."));
        }
        match mail.delete(&name).await {
            Ok(()) => {
                self.mailboxes_changed();
                Ok(Done::ok("Delete completed."))
            }
            // RFC 9051 7.1 has a code for it; rev1 clients get Dovecot's [INUSE].
            Err(MailboxError::HasChildren(_)) if self.imap4rev2 => Ok(Done::no(
                "[HASCHILDREN] Mailbox has children, delete them first.",
            )),
            Err(err) => Ok(self.no_for(&err)),
        }
    }

    pub(crate) async fn rename(&mut self, from: &str, to: &str) -> io::Result<Done> {
        let Some(mail) = self.mail().cloned() else {
            return Ok(Done::bad("Please log in first."));
        };
        if !crate::utf7::is_valid(to) {
            return Ok(Done::no("[CANNOT] Mailbox name is not valid mUTF-7."));
        }
        let (from, mut to) = match (store_name(&mail, from), store_name(&mail, to)) {
            (Ok(from), Ok(to)) => (from, to),
            (Err(refused), _) | (_, Err(refused)) => return Ok(refused),
        };
        let given = self.normalize_new_name(&mut to);
        match mail.rename(&from, &to).await {
            Ok(()) => {
                self.mailboxes_changed();
                if let Some(given) = given {
                    let line = own_list_line(&mail, &to, Some(&given), self.utf8_names()).await;
                    self.conn.write(&line).await?;
                }
                Ok(Done::ok("Rename completed."))
            }
            Err(err) => Ok(self.no_for(&err)),
        }
    }

    pub(crate) async fn subscribe(&mut self, mailbox: &str, subscribed: bool) -> io::Result<Done> {
        let Some(mail) = self.mail().cloned() else {
            return Ok(Done::bad("Please log in first."));
        };
        let name = match store_name(&mail, mailbox) {
            Ok(name) => name,
            Err(refused) => return Ok(refused),
        };
        match mail.set_subscribed(&name, subscribed).await {
            Ok(()) => {
                self.mailboxes_changed();
                Ok(Done::ok(if subscribed {
                    "Subscribe completed."
                } else {
                    "Unsubscribe completed."
                }))
            }
            Err(err) => Ok(self.no_for(&err)),
        }
    }

    pub(crate) async fn list(&mut self, list: ListCommand) -> io::Result<Done> {
        let Some(mail) = self.mail().cloned() else {
            return Ok(Done::bad("Please log in first."));
        };
        let separator = mail.layout().separator();
        // `LIST "" ""` asks for the hierarchy separator.
        if list.patterns.iter().all(String::is_empty) && !list.patterns.is_empty() {
            self.conn
                .write(format!("* LIST (\\Noselect) \"{separator}\" \"\"\r\n").as_bytes())
                .await?;
            return Ok(Done::ok("List completed."));
        }
        let folders = match mail.list().await {
            Ok(folders) => self.visible_folders(folders).await,
            Err(err) => return Ok(self.no_for(&err)),
        };
        let need_subscriptions = list.subscribed || list.return_subscribed;
        let subscriptions = if need_subscriptions {
            match mail.subscriptions().await {
                Ok(subscriptions) => subscriptions,
                Err(err) => return Ok(self.no_for(&err)),
            }
        } else {
            Vec::new()
        };
        let patterns: Vec<String> = list
            .patterns
            .iter()
            .map(|pattern| format!("{}{pattern}", list.reference))
            .collect();
        // Matching every folder (or subscription) against every pattern is done off the I/O
        // threads.
        let subscribed_only = list.subscribed;
        let recursive_match = list.recursive_match;
        let shared_patterns = patterns.clone();
        let utf8 = self.utf8_names();
        let (folders, store_names, subscriptions, matched) = self
            .ctx
            .cpu
            .run(move || {
                // Patterns are the client's, so names are matched as the client sees them.
                let mut folders = folders;
                let store_names: Vec<String> = folders
                    .iter_mut()
                    .map(|folder| {
                        let shown = client_name(&folder.name, separator, utf8);
                        std::mem::replace(&mut folder.name, shown)
                    })
                    .collect();
                let subscriptions: Vec<String> = subscriptions
                    .iter()
                    .map(|name| client_name(name, separator, utf8))
                    .collect();
                let matches = |name: &str| {
                    patterns
                        .iter()
                        .any(|pattern| list_pattern_matches(pattern, name, separator))
                };
                let matched = if subscribed_only {
                    list_subscribed(
                        &folders,
                        &subscriptions,
                        recursive_match,
                        separator,
                        matches,
                    )
                } else {
                    list_all(&folders, separator, matches)
                };
                (folders, store_names, subscriptions, matched)
            })
            .await?;
        let subscribed: HashSet<&str> = subscriptions.iter().map(String::as_str).collect();
        let is_subscribed = |name: &str| subscribed.contains(name);
        for entry in matched {
            let (folder, store_name) = match entry.kind {
                Listed::Folder(index) => (folders.get(index), store_names.get(index)),
                Listed::Parent | Listed::Missing => (None, None),
            };
            if list.special_use_only && folder.and_then(|f| f.special_use).is_none() {
                continue;
            }
            let mut attributes: Vec<&str> = Vec::new();
            match (entry.kind, folder) {
                (_, Some(folder)) => attributes = folder_attributes(folder),
                (Listed::Parent, None) => attributes.extend(["\\Noselect", "\\HasChildren"]),
                (_, None) => attributes.push("\\NonExistent"),
            }
            let name = entry.name;
            if (list.subscribed || list.return_subscribed) && is_subscribed(&name) {
                attributes.push("\\Subscribed");
            }
            let mut line =
                format!("* LIST ({}) \"{separator}\" ", attributes.join(" ")).into_bytes();
            wire::mailbox(&mut line, &name, utf8);
            if entry.subscribed_child {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            line.extend_from_slice(b"\r\n");
            self.conn.write(&line).await?;
            if let (Some(items), Some(store_name)) = (&list.return_status, store_name) {
                // A folder that vanished between LIST and STATUS is simply not reported.
                if let Ok(status) = status_line(
                    &mail,
                    store_name,
                    (&name, utf8),
                    items,
                    (self.held_recent(), None),
                )
                .await
                {
                    self.conn.write(&status).await?;
                }
            }
        }
        if !subscribed_only && !list.special_use_only {
            self.list_shared(&shared_patterns).await?;
            self.list_public(&shared_patterns).await?;
        }
        Ok(Done::ok("List completed."))
    }

    /// One personal namespace, with the account's separator (RFC 2342).
    pub(crate) async fn namespace(&mut self) -> io::Result<Done> {
        let Some(mail) = self.mail() else {
            return Ok(Done::bad("Please log in first."));
        };
        // RFC 2342: personal, other users', shared.
        let others = match &self.ctx.shared {
            Some(shared) => {
                let mut others = b"((".to_vec();
                wire::string(&mut others, shared.prefix.as_bytes());
                others.extend_from_slice(b" \"/\"))");
                String::from_utf8_lossy(&others).into_owned()
            }
            None => "NIL".to_owned(),
        };
        let public = match &self.ctx.public {
            Some(public) => {
                let mut public_ns = b"((".to_vec();
                wire::string(&mut public_ns, public.prefix.as_bytes());
                public_ns.extend_from_slice(b" \"/\"))");
                String::from_utf8_lossy(&public_ns).into_owned()
            }
            None => "NIL".to_owned(),
        };
        let line = format!(
            "* NAMESPACE ((\"\" \"{}\")) {others} {public}\r\n",
            mail.layout().separator()
        );
        self.conn.write(line.as_bytes()).await?;
        Ok(Done::ok("Namespace completed."))
    }

    pub(crate) async fn lsub(&mut self, reference: &str, pattern: &str) -> io::Result<Done> {
        let Some(mail) = self.mail().cloned() else {
            return Ok(Done::bad("Please log in first."));
        };
        let subscriptions = match mail.subscriptions().await {
            Ok(subscriptions) => self.visible_names(subscriptions).await,
            Err(err) => return Ok(self.no_for(&err)),
        };
        let separator = mail.layout().separator();
        let pattern = format!("{reference}{pattern}");
        let utf8 = self.utf8_names();
        let matched = self
            .ctx
            .cpu
            .run(move || {
                let subscriptions: Vec<String> = subscriptions
                    .iter()
                    .map(|name| client_name(name, separator, utf8))
                    .collect();
                let matches = |name: &str| list_pattern_matches(&pattern, name, separator);
                let mut matched: Vec<(String, bool)> = subscriptions
                    .iter()
                    .filter(|name| matches(name))
                    .map(|name| (name.clone(), true))
                    .collect();
                // RFC 3501 6.3.9: with `%`, an unsubscribed parent of a subscribed name that
                // the pattern does not reach is named `\Noselect`, so that a client walking
                // the tree level by level finds the child.
                let subscribed: HashSet<&str> = subscriptions.iter().map(String::as_str).collect();
                let mut parents: BTreeSet<String> = BTreeSet::new();
                for name in subscriptions.iter().filter(|name| !matches(name)) {
                    for parent in ancestors(name, separator) {
                        if !subscribed.contains(parent) && matches(parent) {
                            parents.insert(parent.to_owned());
                        }
                    }
                }
                matched.extend(parents.into_iter().map(|name| (name, false)));
                matched.sort_by(|(a, _), (b, _)| listing_order(a, b));
                matched
            })
            .await?;
        for (name, subscribed) in matched {
            let attributes = if subscribed { "" } else { "\\Noselect" };
            let mut line = format!("* LSUB ({attributes}) \"{separator}\" ").into_bytes();
            wire::mailbox(&mut line, &name, utf8);
            line.extend_from_slice(b"\r\n");
            self.conn.write(&line).await?;
        }
        Ok(Done::ok("Lsub completed."))
    }

    pub(crate) async fn status(&mut self, mailbox: &str, items: &[StatusItem]) -> io::Result<Done> {
        let Some(mail) = self.mail().cloned() else {
            return Ok(Done::bad("Please log in first."));
        };
        if items.contains(&StatusItem::HighestModSeq) {
            self.enable_condstore().await?;
        }
        let target = match self.target(mailbox).await {
            Ok(target) => target,
            Err(refused) => return Ok(refused),
        };
        let seen_path = self.private_seen_path(&target);
        let name = target.name;
        let utf8 = self.utf8_names();
        let shown = match (target.owner, target.public_name) {
            (Some(_), _) | (_, Some(_)) => mailbox.to_owned(),
            (None, None) => client_name(&name, mail.layout().separator(), utf8),
        };
        match status_line(
            &target.mail,
            &name,
            (&shown, utf8),
            items,
            (self.held_recent(), seen_path),
        )
        .await
        {
            Ok(line) => {
                self.conn.write(&line).await?;
                Ok(Done::ok("Status completed."))
            }
            Err(err) => Ok(self.no_for(&err)),
        }
    }
}

impl Session {
    /// RFC 9051 5.1: a name a CREATE or RENAME gives is made Net-Unicode (NFC) when names
    /// are UTF-8 on the wire; returns the name as given when that changed it, for the
    /// `OLDNAME` of [`own_list_line`]. Names already in the store are found as
    /// they are.
    fn normalize_new_name(&self, name: &mut String) -> Option<String> {
        if !self.utf8_names() {
            return None;
        }
        let normalized = crate::cmd::rev2::nfc_name(name)?;
        Some(std::mem::replace(name, normalized))
    }

    /// What STATUS counts as `\Recent` for this session.
    fn held_recent(&self) -> RecentCount {
        if self.imap4rev2 {
            return RecentCount::Never;
        }
        RecentCount::Held(
            self.selected
                .as_ref()
                .map(|selected| (Arc::clone(&selected.folder), selected.recent.len())),
        )
    }
}

/// `* LIST (attributes) "/" name` for one folder the store calls `name`, with
/// `("OLDNAME" (old))` when the client named it `old` (RFC 9051 6.3.2, 6.3.4, 6.3.9.7):
/// what SELECT and EXAMINE send under IMAP4rev2, and CREATE and RENAME after
/// normalizing a name. Attributes as LIST gives them; none if the folder list cannot be
/// read.
pub(crate) async fn own_list_line(
    mail: &Account,
    name: &str,
    old: Option<&str>,
    utf8: bool,
) -> Vec<u8> {
    let separator = mail.layout().separator();
    let folders = mail.list().await.unwrap_or_default();
    let attributes = folders
        .iter()
        .find(|folder| folder.name == name)
        .map(folder_attributes)
        .unwrap_or_default();
    let mut line = format!("* LIST ({}) \"{separator}\" ", attributes.join(" ")).into_bytes();
    wire::mailbox(&mut line, &client_name(name, separator, utf8), utf8);
    if let Some(old) = old {
        line.extend_from_slice(b" (\"OLDNAME\" (");
        wire::mailbox(&mut line, &client_name(old, separator, utf8), utf8);
        line.extend_from_slice(b"))");
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// What STATUS counts as `\Recent`.
enum RecentCount {
    /// Nothing: IMAP4rev2 has no `\Recent` (a rev2 client does not ask, RFC 9051 removed
    /// STATUS RECENT; one that does is told 0, as SEARCH RECENT finds nothing).
    Never,
    /// The session's selected folder and how many of its messages are `\Recent` for it.
    Held(Option<(Arc<mailstead_store::Folder>, usize)>),
}

/// `* STATUS shown (...)` for the folder the store calls `name` (`shown` in UTF-8 when
/// `utf8`).
async fn status_line(
    mail: &Account,
    name: &str,
    (shown, utf8): (&str, bool),
    items: &[StatusItem],
    (held, seen_path): (RecentCount, Option<std::path::PathBuf>),
) -> Result<Vec<u8>, MailboxError> {
    let folder = mail.open(name).await?;
    let mut snapshot = folder.sync().await?;
    if items.contains(&StatusItem::Size) {
        snapshot = folder.sized_snapshot().await?;
    }
    // A public folder with a private index: the user's own \Seen.
    if let Some(path) = seen_path {
        let seen = crate::cmd::select::load_private_seen(path, snapshot.uid_validity).await?;
        snapshot = Arc::new(seen.apply(&snapshot));
    }
    // \Recent is counted without claiming it (RFC 3501 6.3.10): the ones this session holds
    // when the folder is its own selected one, else the ones no session has seen yet.
    let recent = match held {
        RecentCount::Never => 0,
        RecentCount::Held(Some((selected, count))) if Arc::ptr_eq(&selected, &folder) => count,
        RecentCount::Held(_) => {
            let from = folder.recent_from();
            snapshot.messages.len() - snapshot.messages.partition_point(|meta| meta.uid < from)
        }
    };
    let mut line = b"* STATUS ".to_vec();
    wire::mailbox(&mut line, shown, utf8);
    line.extend_from_slice(b" (");
    let values: Vec<String> = items
        .iter()
        .map(|item| status_item(&snapshot, recent, *item))
        .collect();
    line.extend_from_slice(values.join(" ").as_bytes());
    line.extend_from_slice(b")\r\n");
    Ok(line)
}

impl Session {
    pub(crate) async fn get_quota_root(&mut self, mailbox: &str) -> io::Result<Done> {
        let Some(mail) = self.mail().cloned() else {
            return Ok(Done::bad("Please log in first."));
        };
        let name = match store_name(&mail, mailbox) {
            Ok(name) => name,
            Err(refused) => return Ok(refused),
        };
        if let Err(err) = mail.open(&name).await {
            return Ok(self.no_for(&err));
        }
        let usage = match mail.quota_usage().await {
            Ok(usage) => usage,
            Err(err) => return Ok(self.no_for(&err)),
        };
        let mut line = b"* QUOTAROOT ".to_vec();
        let utf8 = self.utf8_names();
        wire::mailbox(
            &mut line,
            &client_name(&name, mail.layout().separator(), utf8),
            utf8,
        );
        if let Some(limit) = usage.limit_bytes {
            line.extend_from_slice(b" \"\"\r\n");
            line.extend_from_slice(quota_line(usage.bytes, limit).as_bytes());
        } else {
            line.extend_from_slice(b"\r\n");
        }
        self.conn.write(&line).await?;
        Ok(Done::ok("Getquotaroot completed."))
    }

    pub(crate) async fn get_quota(&mut self, root: &str) -> io::Result<Done> {
        let Some(mail) = self.mail().cloned() else {
            return Ok(Done::bad("Please log in first."));
        };
        let usage = match mail.quota_usage().await {
            Ok(usage) => usage,
            Err(err) => return Ok(self.no_for(&err)),
        };
        match usage.limit_bytes {
            Some(limit) if root.is_empty() => {
                self.conn
                    .write(quota_line(usage.bytes, limit).as_bytes())
                    .await?;
                Ok(Done::ok("Getquota completed."))
            }
            _ => Ok(Done::no("[NONEXISTENT] Quota root doesn't exist.")),
        }
    }
}

/// `* QUOTA "" (STORAGE used limit)` in KiB, as RFC 9208 counts.
fn quota_line(used_bytes: u64, limit_bytes: u64) -> String {
    format!(
        "* QUOTA \"\" (STORAGE {} {})\r\n",
        used_bytes.div_ceil(1024),
        limit_bytes / 1024
    )
}

pub(crate) fn status_item(snapshot: &Snapshot, recent: usize, item: StatusItem) -> String {
    let count = |flag: SystemFlags, set: bool| {
        snapshot
            .messages
            .iter()
            .filter(|meta| meta.flags.contains(flag) == set)
            .count()
    };
    match item {
        StatusItem::Messages => format!("MESSAGES {}", snapshot.messages.len()),
        StatusItem::Recent => format!("RECENT {recent}"),
        StatusItem::UidNext => format!("UIDNEXT {}", snapshot.uid_next),
        StatusItem::UidValidity => format!("UIDVALIDITY {}", snapshot.uid_validity),
        StatusItem::Unseen => format!("UNSEEN {}", count(SystemFlags::SEEN, false)),
        StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", snapshot.highest_modseq),
        StatusItem::Size => format!(
            "SIZE {}",
            snapshot
                .messages
                .iter()
                .filter_map(|meta| meta.rfc822_size)
                .sum::<u64>()
        ),
        StatusItem::Deleted => format!("DELETED {}", count(SystemFlags::DELETED, true)),
        StatusItem::MailboxId => format!("MAILBOXID ({})", snapshot.mailbox_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_wildcards() {
        assert!(list_matches("*", "a/b/c", '/'));
        assert!(list_matches("%", "Sent", '/'));
        assert!(!list_matches("%", "a/b", '/'));
        assert!(list_matches("a/%", "a/b", '/'));
        assert!(!list_matches("a/%", "a/b/c", '/'));
        assert!(list_matches("a/*", "a/b/c", '/'));
        assert!(list_matches("*b*", "a/b/c", '/'));
        assert!(!list_matches("Sent", "Sentx", '/'));
        assert!(list_matches("S%t", "Sent", '/'));
        assert!(!list_matches("a%c", "a/c", '/'));
        assert!(list_matches("%/%", "a/c", '/'));
        assert!(list_matches("*%", "a/b", '/') && !list_matches("%%", "a/b", '/'));
        assert!(list_matches("a**%*c", "a/b/c", '/') && !list_matches("a%%c", "a/b/c", '/'));
        let long = "*".repeat(500);
        assert!(list_matches(&long, "abc", '/'));
        // What makes a backtracking matcher exponential is one pass per pattern character here.
        let name = format!("{}b", "a".repeat(300));
        assert!(!list_matches(&"*a".repeat(512), &name, '/'));
        assert!(list_matches(&format!("{}b", "%a".repeat(150)), &name, '/'));
    }

    #[test]
    fn inbox_is_case_insensitive() {
        assert_eq!(normalize("inbox", '/'), "INBOX");
        assert_eq!(normalize("Inbox/Sub", '/'), "INBOX/Sub");
        assert_eq!(normalize("Inboxes", '/'), "Inboxes");
        assert_eq!(normalize("Sent/", '/'), "Sent");
        assert!(list_pattern_matches("inbox", "INBOX", '/'));
        assert!(list_pattern_matches("IN%", "INBOX", '/'));
    }

    #[test]
    fn maildir_plus_plus_wildcards_stop_at_the_dot() {
        assert!(list_matches("Lists.%", "Lists.rust", '.'));
        assert!(!list_matches("%", "Lists.rust", '.'));
        assert!(list_matches("%", "a/b", '.'));
        assert!(list_matches("%.%", "Lists.rust", '.'));
        assert_eq!(normalize("inbox.Sub.", '.'), "INBOX.Sub");
        assert_eq!(normalize("inbox/Sub", '.'), "inbox/Sub");
        assert_eq!(client_name("Lists/rust", '.', false), "Lists.rust");
        assert_eq!(client_name("Lists/rust", '/', false), "Lists/rust");
    }
}
