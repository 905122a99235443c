//! NOTIFY (RFC 5465): what the client asked to hear about is sent as it happens, between
//! commands, without IDLE.
//!
//! Supported: the SELECTED and SELECTED-DELAYED filters with MessageNew, MessageExpunge and
//! FlagChange (the usual EXISTS, EXPUNGE/VANISHED and FETCH FLAGS, sent at once); INBOXES,
//! PERSONAL, SUBSCRIBED, SUBTREE and MAILBOXES with MessageNew and MessageExpunge (an untagged
//! STATUS with MESSAGES, UIDNEXT and UIDVALIDITY, and HIGHESTMODSEQ for a CONDSTORE client)
//! and FlagChange (UNSEEN added, sent on a flag change too); MailboxName (an untagged LIST for
//! a mailbox created, `\NonExistent` for one deleted; a rename is both) and SubscriptionChange
//! (an untagged LIST with or without `\Subscribed`). `MessageNew` with fetch attributes,
//! AnnotationChange and the METADATA events get `NO [BADEVENT]`.
//!
//! What wakes a session: the store's notifier for each watched folder (`Folder::changes`,
//! which deliveries and other sessions signal, with the inotify watch IDLE uses for other
//! processes), a per-user signal this process's sessions raise when they create, delete,
//! rename or (un)subscribe a mailbox, and a check every `idle_check_interval` that also finds
//! such changes made by other processes. A session's own mailbox changes are not reported
//! back to it. At most [`MAX_WATCHED`] mailboxes are watched: a NOTIFY SET naming more gets
//! `NO [LIMIT]`; when new mailboxes take a PERSONAL or SUBTREE watch past it, the session
//! says `* OK [NOTIFICATIONOVERFLOW]` and stops notifying (RFC 5465 5.8).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use mailstead_store::{Account, Folder, WatchGuard};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cmd::mailbox::{client_name, status_item, store_name};
use crate::command::{NotifyEvent, NotifyFilter, NotifySet, StatusItem};
use crate::session::{Done, Session};
use crate::wire;

/// The most mailboxes one session watches.
pub(crate) const MAX_WATCHED: usize = 100;

const BADEVENT: &str = "[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName \
                        SubscriptionChange)]";

/// The per-user signal of mailbox list and subscription changes made in this process.
#[derive(Default)]
pub(crate) struct AccountChanges {
    senders: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl AccountChanges {
    fn subscribe(&self, user: &str) -> watch::Receiver<u64> {
        let mut senders = self
            .senders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if senders.len() >= 1024 {
            senders.retain(|_, sender| sender.receiver_count() > 0);
        }
        senders
            .entry(user.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn changed(&self, user: &str) {
        let mut senders = self
            .senders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sender) = senders.get(user) {
            if sender.receiver_count() == 0 {
                senders.remove(user);
            } else {
                sender.send_modify(|serial| *serial = serial.wrapping_add(1));
            }
        }
    }
}

/// A watched mailbox other than the selected one.
struct Watched {
    /// The store's name.
    name: String,
    folder: Arc<Folder>,
    changes: watch::Receiver<u64>,
    _watch: Option<WatchGuard>,
    /// MESSAGES, UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ as last told (or found).
    told: (usize, u32, u32, u64),
}

/// A session's NOTIFY SET.
pub(crate) struct Notify {
    /// The groups that name other mailboxes than the selected one (see [`Notify::watches`]).
    filters: Vec<NotifyFilter>,
    /// FlagChange for other mailboxes: UNSEEN in their STATUS.
    other_flags: bool,
    /// The selected mailbox's changes are sent as they happen.
    selected: bool,
    mailbox_names: bool,
    subscriptions: bool,
    watched: Vec<Watched>,
    /// The selected folder's signal, for the folder it was taken from.
    selected_changes: Option<(Arc<Folder>, watch::Receiver<u64>, Option<WatchGuard>)>,
    account: Option<watch::Receiver<u64>>,
    /// Store names of the folders and the subscriptions as last told.
    names: BTreeSet<String>,
    subscribed: BTreeSet<String>,
    /// The session itself changed the list: take the new one as told.
    rebase: bool,
    next_check: Instant,
}

/// What woke a NOTIFY session.
pub(crate) enum Wake {
    Selected,
    Folder(usize),
    Account,
    Check,
}

/// Waits for the next thing worth looking at; never returns when NOTIFY is off.
pub(crate) async fn wait(notify: &mut Option<Box<Notify>>) -> Wake {
    let Some(notify) = notify.as_mut() else {
        return std::future::pending().await;
    };
    let mut waits: Vec<Pin<Box<dyn Future<Output = Wake> + Send + '_>>> = Vec::new();
    let next_check = notify.next_check;
    waits.push(Box::pin(async move {
        tokio::time::sleep_until(next_check).await;
        Wake::Check
    }));
    if let Some((_, changes, _)) = notify.selected_changes.as_mut() {
        waits.push(Box::pin(signal(changes, Wake::Selected)));
    }
    if let Some(changes) = notify.account.as_mut() {
        waits.push(Box::pin(signal(changes, Wake::Account)));
    }
    for (index, watched) in notify.watched.iter_mut().enumerate() {
        waits.push(Box::pin(signal(&mut watched.changes, Wake::Folder(index))));
    }
    std::future::poll_fn(|cx| {
        for wait in &mut waits {
            if let Poll::Ready(wake) = wait.as_mut().poll(cx) {
                return Poll::Ready(wake);
            }
        }
        Poll::Pending
    })
    .await
}

/// `wake` once `changes` moves; never when its sender is gone (the periodic check stays).
async fn signal(changes: &mut watch::Receiver<u64>, wake: Wake) -> Wake {
    if changes.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
    wake
}

fn counts(folder: &Folder) -> (usize, u32, u32, u64) {
    let snapshot = folder.snapshot();
    (
        snapshot.messages.len(),
        snapshot.uid_next,
        snapshot.uid_validity,
        snapshot.highest_modseq,
    )
}

impl Session {
    pub(crate) async fn notify_command(&mut self, set: Option<NotifySet>) -> io::Result<Done> {
        let Some(set) = set else {
            self.notify = None;
            return Ok(Done::ok("NOTIFY completed."));
        };
        let Some(user) = self.user.as_ref() else {
            return Ok(Done::bad("Please log in first."));
        };
        let mail = user.mail.clone();
        let address = user.account.address.to_string();
        let mut notify = Notify {
            filters: Vec::new(),
            other_flags: false,
            selected: false,
            mailbox_names: false,
            subscriptions: false,
            watched: Vec::new(),
            selected_changes: None,
            account: None,
            names: BTreeSet::new(),
            subscribed: BTreeSet::new(),
            rebase: false,
            next_check: Instant::now() + self.ctx.limits.idle_check_interval,
        };
        for group in set.groups {
            let has = |event: &NotifyEvent| group.events.contains(event);
            let new = group
                .events
                .iter()
                .any(|event| matches!(event, NotifyEvent::MessageNew { .. }));
            let expunge = has(&NotifyEvent::MessageExpunge);
            let flags = has(&NotifyEvent::FlagChange);
            // RFC 5465 5: MessageNew and MessageExpunge go together, FlagChange needs both.
            if new != expunge || flags && !new {
                return Ok(Done::bad(
                    "MessageNew and MessageExpunge must be asked for together (and with FlagChange).",
                ));
            }
            for event in &group.events {
                match event {
                    NotifyEvent::MessageNew { fetch: true } => {
                        return Ok(Done::no(format!(
                            "{BADEVENT} MessageNew with fetch attributes isn't supported."
                        )));
                    }
                    NotifyEvent::Other(name) => {
                        return Ok(Done::no(format!(
                            "{BADEVENT} {} isn't supported.",
                            mailstead_net::LogSafe(name)
                        )));
                    }
                    NotifyEvent::MailboxName => notify.mailbox_names = true,
                    NotifyEvent::SubscriptionChange => notify.subscriptions = true,
                    _ => {}
                }
            }
            match group.filter {
                NotifyFilter::Selected | NotifyFilter::SelectedDelayed => notify.selected = new,
                filter if new => {
                    notify.other_flags |= flags;
                    notify.filters.push(filter);
                }
                _ => {}
            }
        }
        if notify.mailbox_names || notify.subscriptions {
            notify.account = Some(self.ctx.account_changes.subscribe(&address));
        }
        if let Err(done) = notify.rebase_names(&mail).await {
            return Ok(self.no_for(&done));
        }
        match notify.watches(&mail).await {
            Ok(Some(names)) => notify.watch(&mail, names).await,
            Ok(None) => {
                return Ok(Done::no(format!(
                    "[LIMIT] At most {MAX_WATCHED} mailboxes can be watched."
                )));
            }
            Err(err) => return Ok(self.no_for(&err)),
        }
        if set.status {
            let separator = mail.layout().separator();
            let mut out = Vec::new();
            let selected = self.selected_folder().filter(|_| notify.selected);
            for watched in &notify.watched {
                if selected
                    .as_ref()
                    .is_some_and(|selected| Arc::ptr_eq(selected, &watched.folder))
                {
                    continue;
                }
                let shown = client_name(&watched.name, separator, self.utf8_names());
                out.extend(self.status_notification(&notify, &watched.folder, &shown));
            }
            self.conn.write(&out).await?;
        }
        self.notify = Some(Box::new(notify));
        Ok(Done::ok("NOTIFY completed."))
    }

    /// This session changed the mailbox list or subscriptions: other sessions of the user
    /// in this process with NOTIFY look at theirs; this one does not report its own change.
    pub(crate) fn mailboxes_changed(&mut self) {
        if let Some(notify) = self.notify.as_mut() {
            notify.rebase = true;
        }
        if let Some(user) = self.user.as_ref() {
            self.ctx
                .account_changes
                .changed(&user.account.address.to_string());
        }
    }

    fn selected_folder(&self) -> Option<Arc<Folder>> {
        self.selected
            .as_ref()
            .map(|selected| Arc::clone(&selected.folder))
    }

    /// Before waiting: the selected folder's signal follows the selection.
    pub(crate) fn notify_prepare(&mut self) {
        let selected = self.selected_folder();
        let Some(notify) = self.notify.as_mut() else {
            return;
        };
        let wanted = selected.filter(|_| notify.selected);
        let current = notify.selected_changes.as_ref().map(|(folder, ..)| folder);
        let same = match (current, &wanted) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            notify.selected_changes = wanted.map(|folder| {
                let changes = folder.changes();
                let watch = folder.watch();
                (folder, changes, watch)
            });
        }
    }

    /// Sends what woke the session; then the caller flushes.
    pub(crate) async fn notify_wake(&mut self, wake: Wake) -> io::Result<()> {
        let Some(mail) = self.mail().cloned() else {
            return Ok(());
        };
        match wake {
            Wake::Selected => Box::pin(self.refresh(true)).await,
            Wake::Folder(index) => self.notify_folders(&mail, Some(index)).await,
            Wake::Account => self.notify_names(&mail).await,
            Wake::Check => {
                if let Some(notify) = self.notify.as_mut() {
                    notify.next_check = Instant::now() + self.ctx.limits.idle_check_interval;
                }
                if self.notify.as_ref().is_some_and(|notify| notify.selected) {
                    Box::pin(self.refresh(true)).await?;
                }
                self.notify_names(&mail).await?;
                self.notify_folders(&mail, None).await
            }
        }
    }

    /// STATUS for the watched folder at `index` (all when `None`) that changed since told.
    async fn notify_folders(&mut self, mail: &Account, index: Option<usize>) -> io::Result<()> {
        let Some(notify) = self.notify.as_mut() else {
            return Ok(());
        };
        let folders: Vec<(usize, Arc<Folder>)> = notify
            .watched
            .iter()
            .enumerate()
            .filter(|(i, _)| index.is_none_or(|index| index == *i))
            .map(|(i, watched)| (i, Arc::clone(&watched.folder)))
            .collect();
        let separator = mail.layout().separator();
        let utf8 = self.utf8_names();
        // The selected mailbox's changes go out as EXISTS/EXPUNGE/FETCH when SELECTED asks
        // for them, not as STATUS.
        let selected = self
            .selected_folder()
            .filter(|_| self.notify.as_ref().is_some_and(|notify| notify.selected));
        let mut out = Vec::new();
        for (i, folder) in folders {
            // Another process's change is seen only after a sync; an error leaves the last
            // snapshot, and the next check tries again.
            let _ = folder.sync().await;
            let now = counts(&folder);
            let Some(notify) = self.notify.as_mut() else {
                return Ok(());
            };
            let Some(watched) = notify.watched.get_mut(i) else {
                continue;
            };
            let (messages, uid_next, uid_validity, modseq) = watched.told;
            let changed = (messages, uid_next, uid_validity) != (now.0, now.1, now.2)
                || notify.other_flags && modseq != now.3;
            watched.told = now;
            let is_selected = selected
                .as_ref()
                .is_some_and(|selected| Arc::ptr_eq(selected, &folder));
            if changed && !is_selected {
                let shown = client_name(&watched.name, separator, utf8);
                let Some(notify) = self.notify.as_deref() else {
                    return Ok(());
                };
                out.extend(self.status_notification(notify, &folder, &shown));
            }
        }
        if !out.is_empty() {
            self.conn.write(&out).await?;
        }
        Ok(())
    }

    /// `* STATUS name (...)` for a watched folder, from its snapshot.
    fn status_notification(&self, notify: &Notify, folder: &Folder, shown: &str) -> Vec<u8> {
        let snapshot = folder.snapshot();
        let mut items = vec![
            StatusItem::Messages,
            StatusItem::UidNext,
            StatusItem::UidValidity,
        ];
        if notify.other_flags {
            items.push(StatusItem::Unseen);
        }
        if self.condstore {
            items.push(StatusItem::HighestModSeq);
        }
        let mut line = b"* STATUS ".to_vec();
        wire::mailbox(&mut line, shown, self.utf8_names());
        line.extend_from_slice(b" (");
        let values: Vec<String> = items
            .into_iter()
            .map(|item| status_item(&snapshot, 0, item))
            .collect();
        line.extend_from_slice(values.join(" ").as_bytes());
        line.extend_from_slice(b")\r\n");
        line
    }

    /// LIST for mailboxes created, deleted, (un)subscribed since told; then the watched set
    /// follows the new list.
    async fn notify_names(&mut self, mail: &Account) -> io::Result<()> {
        let Some(notify) = self.notify.as_mut() else {
            return Ok(());
        };
        if !notify.mailbox_names && !notify.subscriptions && notify.filters.is_empty() {
            return Ok(());
        }
        let (Ok(folders), Ok(subscriptions)) = (mail.list().await, mail.subscriptions().await)
        else {
            return Ok(());
        };
        let names: BTreeSet<String> = folders.iter().map(|folder| folder.name.clone()).collect();
        let subscribed: BTreeSet<String> = subscriptions.into_iter().collect();
        let separator = mail.layout().separator();
        let utf8 = self.utf8_names();
        let Some(notify) = self.notify.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        if !std::mem::take(&mut notify.rebase) {
            let mut list = |attributes: &str, name: &str| {
                out.extend_from_slice(format!("* LIST ({attributes}) \"{separator}\" ").as_bytes());
                wire::mailbox(&mut out, &client_name(name, separator, utf8), utf8);
                out.extend_from_slice(b"\r\n");
            };
            if notify.mailbox_names {
                for gone in notify.names.difference(&names) {
                    list("\\NonExistent", gone);
                }
                for new in names.difference(&notify.names) {
                    let children = folders
                        .iter()
                        .find(|folder| &folder.name == new)
                        .is_some_and(|folder| folder.has_children);
                    list(
                        if children {
                            "\\HasChildren"
                        } else {
                            "\\HasNoChildren"
                        },
                        new,
                    );
                }
            }
            if notify.subscriptions {
                for gone in notify.subscribed.difference(&subscribed) {
                    list("", gone);
                }
                for new in subscribed.difference(&notify.subscribed) {
                    list("\\Subscribed", new);
                }
            }
        }
        let list_changed = notify.names != names || notify.subscribed != subscribed;
        notify.names = names;
        notify.subscribed = subscribed;
        if list_changed {
            match notify.watches(mail).await {
                Ok(Some(wanted)) => {
                    if let Some(notify) = self.notify.as_mut() {
                        notify.watch(mail, wanted).await;
                    }
                }
                Ok(None) => {
                    out.extend_from_slice(
                        b"* OK [NOTIFICATIONOVERFLOW] Too many mailboxes to watch; NOTIFY is off.\r\n",
                    );
                    self.notify = None;
                }
                Err(_) => {}
            }
        }
        if !out.is_empty() {
            self.conn.write(&out).await?;
        }
        Ok(())
    }
}

impl Notify {
    /// Takes the current folder list and subscriptions as told.
    async fn rebase_names(&mut self, mail: &Account) -> Result<(), mailstead_store::MailboxError> {
        self.names = mail
            .list()
            .await?
            .into_iter()
            .map(|folder| folder.name)
            .collect();
        self.subscribed = mail.subscriptions().await?.into_iter().collect();
        Ok(())
    }

    /// The store names the filters name now (the selected one too: it is skipped while
    /// selected); `None` when more than [`MAX_WATCHED`].
    async fn watches(
        &self,
        mail: &Account,
    ) -> Result<Option<BTreeSet<String>>, mailstead_store::MailboxError> {
        let mut wanted = BTreeSet::new();
        for filter in &self.filters {
            match filter {
                NotifyFilter::Inboxes => {
                    wanted.insert("INBOX".to_owned());
                }
                NotifyFilter::Personal => wanted.extend(self.names.iter().cloned()),
                NotifyFilter::Subscribed => wanted.extend(
                    self.subscribed
                        .iter()
                        .filter(|name| self.names.contains(*name))
                        .cloned(),
                ),
                NotifyFilter::Subtree(roots) | NotifyFilter::Mailboxes(roots) => {
                    let subtree = matches!(filter, NotifyFilter::Subtree(_));
                    for root in roots {
                        let Ok(root) = store_name(mail, root) else {
                            continue;
                        };
                        let below = format!("{root}/");
                        wanted.extend(
                            self.names
                                .iter()
                                .filter(|name| {
                                    **name == root || subtree && name.starts_with(&below)
                                })
                                .cloned(),
                        );
                    }
                }
                NotifyFilter::Selected | NotifyFilter::SelectedDelayed => {}
            }
            if wanted.len() > MAX_WATCHED {
                return Ok(None);
            }
        }
        Ok(Some(wanted))
    }

    /// Watches exactly `names`, keeping what is already watched.
    async fn watch(&mut self, mail: &Account, names: BTreeSet<String>) {
        let mut old: HashMap<String, Watched> = std::mem::take(&mut self.watched)
            .into_iter()
            .map(|watched| (watched.name.clone(), watched))
            .collect();
        for name in names {
            if let Some(watched) = old.remove(&name) {
                self.watched.push(watched);
                continue;
            }
            // A folder that cannot be opened (gone again) is simply not watched.
            let Ok(folder) = mail.open(&name).await else {
                continue;
            };
            let _ = folder.sync().await;
            self.watched.push(Watched {
                changes: folder.changes(),
                _watch: folder.watch(),
                told: counts(&folder),
                folder,
                name,
            });
        }
    }
}
