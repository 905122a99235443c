//! Local delivery: the one path every local recipient takes, whether the SMTP or LMTP session
//! delivers before its reply or the queue delivers later.
//!
//! [`LocalDelivery::deliver`] writes the copy's own `Return-Path:` and `Delivered-To:` lines
//! before the spooled message and files it through the store: INBOX without flags by
//! [`SpooledMessage::deliver`] (a link or a copy into `new/`), any other folder or a copy with
//! IMAP flags through the account's folder ([`mailstead_store::Folder::append`], the same
//! write path as IMAP APPEND: `dovecot-keywords`, `:2,S` info, UIDs). Quota applies to every
//! copy. After a delivery that makes the account's usage cross a configured threshold upward
//! the user gets one warning in INBOX and the warning command runs (Dovecot's
//! `quota_warning`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};

use mailstead_directory::model::MaildirLayout;
use mailstead_directory::resolve::LocalRecipient;
use mailstead_events::{Event, Kind};
use mailstead_sieve::Action;
use mailstead_store::{
    FolderLayout, MailStore, MailboxError, QuotaLimit, SpooledMessage, Store, StoreError,
    SystemFlags,
};
use tracing::{info, warn};

use crate::filter::{self, Decision, FilterState, SieveConfig};
use crate::{NewMessage, Queue, QueuedRecipient};

/// How long the quota warning command may run.
const WARNING_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How local delivery behaves beyond writing the message.
#[derive(Clone, Debug, Default)]
pub struct LocalConfig {
    /// Thresholds in percent of the byte quota, lowest first or in any order.
    pub quota_warnings: Vec<QuotaWarning>,
    /// Run with the address and the percent as arguments (no shell) when a threshold is
    /// crossed; never as root.
    pub quota_warning_command: Option<PathBuf>,
    /// `[sieve]`: the users' filters and the global scripts.
    pub sieve: SieveConfig,
}

/// One `quota_warning` threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaWarning {
    pub percent: u32,
    /// The body of the message to the user; `{percent}` is replaced. Empty: a default text.
    pub message: String,
}

/// The handle every session and the queue deliver local mail through; cheap to clone.
#[derive(Clone)]
pub struct LocalDelivery {
    inner: Arc<LocalInner>,
}

struct LocalInner {
    store: Store,
    mail: MailStore,
    config: LocalConfig,
    filters: FilterState,
    /// The queue redirects, vacation replies and refusals go through; weak, since the queue
    /// holds this delivery too.
    queue: OnceLock<Weak<crate::Inner>>,
}

/// One local recipient of one message.
pub struct LocalRequest<'a> {
    /// The message's id, for the log.
    pub queue_id: &'a str,
    /// The envelope sender, `""` for the null sender.
    pub sender: &'a str,
    /// The mailbox the directory resolved.
    pub recipient: &'a LocalRecipient,
    /// The address as given in `RCPT TO`, when known (Sieve's `envelope :orig "to"`...).
    pub original_to: Option<&'a str>,
    /// Header lines (wire form) after `Return-Path:`/`Delivered-To:`: what submission adds
    /// (`Message-ID:`, `Date:`) or the queue kept.
    pub added: &'a str,
    /// LMTP answers each recipient: a script's refusal becomes that recipient's `550`
    /// instead of a message to the sender.
    pub lmtp: bool,
}

/// What became of one copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalOutcome {
    /// Filed, discarded or sent on as the recipient's filter said: the message is taken.
    Delivered,
    /// The recipient's filter refuses the message (LMTP only): answer `550 5.7.1` with this
    /// reason.
    Refused(String),
}

/// Where one copy goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filing {
    /// The folder name, `/` as the hierarchy separator, UTF-8 (mapped to the account's
    /// modified UTF-7 directory name here); `INBOX` for the INBOX.
    pub folder: String,
    /// IMAP flags: system flags (`\Seen`) and keywords.
    pub flags: Vec<String>,
    /// Create the folder when it is missing; otherwise a missing folder means INBOX.
    pub create: bool,
}

impl Filing {
    /// INBOX, no flags: what a delivery does when nothing says otherwise.
    pub fn inbox() -> Filing {
        Filing {
            folder: "INBOX".to_owned(),
            flags: Vec::new(),
            create: false,
        }
    }
}

impl LocalDelivery {
    /// `mail` is the registry of open folders IMAP uses too (made from `store`), so a
    /// delivery into a folder updates the one `Folder` every session shares.
    pub fn new(store: &Store, mail: MailStore, config: LocalConfig) -> LocalDelivery {
        LocalDelivery {
            inner: Arc::new(LocalInner {
                store: store.clone(),
                mail,
                config,
                filters: FilterState::default(),
                queue: OnceLock::new(),
            }),
        }
    }

    /// Sends redirects, vacation replies and refusals through this queue.
    pub(crate) fn bind(&self, queue: &Arc<crate::Inner>) {
        let _ = self.inner.queue.set(Arc::downgrade(queue));
    }

    fn queue(&self) -> Option<Queue> {
        let inner = self.inner.queue.get()?.upgrade()?;
        Some(Queue { inner })
    }

    pub fn config(&self) -> &LocalConfig {
        &self.inner.config
    }

    /// Delivers one copy: the recipient's Sieve scripts decide where it goes (INBOX when
    /// there are none, or when one fails), then what a crossed quota threshold owes is sent.
    ///
    /// # Errors
    ///
    /// `OverQuota` (permanent unless the caller prefers a temporary failure), `Io` and the
    /// rest temporary, as [`StoreError::is_temporary`] says. Copies filed before a failure
    /// stay: a retry may duplicate, never lose.
    pub async fn deliver(
        &self,
        spooled: &SpooledMessage,
        request: &LocalRequest<'_>,
    ) -> Result<LocalOutcome, StoreError> {
        let recipient = request.recipient;
        let address = log_safe_address(recipient);
        let quota = QuotaLimit::bytes(recipient.quota.bytes);
        let before = self.usage_for_warnings(recipient).await;
        let prefix = copy_prefix(request.sender, &address, request.added);
        let outcome = match self.decide(spooled, request, &address, &prefix).await {
            None => {
                self.file(
                    spooled,
                    recipient,
                    prefix.as_bytes(),
                    None,
                    &Filing::inbox(),
                )
                .await?;
                self.delivered(request, &address, "INBOX");
                LocalOutcome::Delivered
            }
            Some(decision) => {
                self.carry_out(spooled, request, &address, &prefix, decision)
                    .await?
            }
        };
        if let Some(before) = before {
            self.after_delivery(recipient, quota, before).await;
        }
        Ok(outcome)
    }

    fn delivered(&self, request: &LocalRequest<'_>, address: &str, folder: &str) {
        info!(queue_id = request.queue_id, to = %address, folder = %mailstead_net::LogSafe(folder), "delivered");
        mailstead_events::record(
            Event::now(Kind::Delivered)
                .sender(request.sender)
                .recipient(address),
        );
    }

    /// Runs the filters, when there are any, on a blocking thread. `None`: no script applies.
    async fn decide(
        &self,
        spooled: &SpooledMessage,
        request: &LocalRequest<'_>,
        address: &str,
        prefix: &str,
    ) -> Option<Decision> {
        let config = &self.inner.config.sieve;
        let home = request.recipient.location.home.clone();
        let has_user_script = std::fs::symlink_metadata(home.join(".dovecot.sieve")).is_ok();
        if !config.enabled
            || (!has_user_script && config.before.is_empty() && config.after.is_empty())
        {
            return None;
        }
        // The scripts see the copy as it is filed, with its Return-Path: and Delivered-To:.
        let message = match spooled.wire_bytes(prefix.as_bytes()).await {
            Ok(message) => message,
            Err(err) => {
                warn!(queue_id = request.queue_id, cause = %err, "cannot read the message for Sieve; keeping it");
                return None;
            }
        };
        let account = self.account(request.recipient).await.ok();
        let filter_request = filter::Request {
            sender: request.sender.to_owned(),
            to: address.to_owned(),
            original_to: request
                .original_to
                .filter(|original| !original.eq_ignore_ascii_case(address))
                .map(str::to_owned),
            message,
            own_addresses: vec![address.to_owned()],
            account,
            layout: folder_layout(request.recipient.location.layout),
        };
        let inner = Arc::clone(&self.inner);
        let decided = tokio::task::spawn_blocking(move || {
            filter::decide(&inner.filters, &inner.config.sieve, &home, &filter_request)
        })
        .await;
        match decided {
            Ok(decision) => decision,
            Err(err) => {
                warn!(queue_id = request.queue_id, cause = %err, "Sieve evaluation stopped; keeping the message");
                None
            }
        }
    }

    async fn account(
        &self,
        recipient: &LocalRecipient,
    ) -> Result<mailstead_store::Account, StoreError> {
        let layout = folder_layout(recipient.location.layout);
        let maildir = &recipient.location.maildir;
        self.inner
            .mail
            .open_account(maildir, layout, QuotaLimit::bytes(recipient.quota.bytes))
            .await
            .map_err(|err| store_error(maildir, err))
    }

    /// Carries out the scripts' actions: every filing first (a failure there fails the
    /// delivery before anything leaves), then redirects, vacation replies and refusals
    /// through the queue.
    async fn carry_out(
        &self,
        spooled: &SpooledMessage,
        request: &LocalRequest<'_>,
        address: &str,
        prefix: &str,
        decision: Decision,
    ) -> Result<LocalOutcome, StoreError> {
        let recipient = request.recipient;
        let Decision { outcome, failure } = decision;
        // An edited header already holds this copy's own lines.
        let (file_prefix, header): (&[u8], Option<&[u8]>) = match &outcome.header {
            Some(header) => (b"", Some(header.as_slice())),
            None => (prefix.as_bytes(), None),
        };
        let mut kept = false;
        for action in &outcome.actions {
            let filing = match action {
                Action::Keep { flags } => Filing {
                    folder: "INBOX".to_owned(),
                    flags: flags.clone(),
                    create: false,
                },
                Action::FileInto {
                    mailbox,
                    flags,
                    create,
                } => Filing {
                    folder: mailbox.clone(),
                    flags: flags.clone(),
                    create: *create,
                },
                _ => continue,
            };
            self.file(spooled, recipient, file_prefix, header, &filing)
                .await?;
            kept |= filing.folder.eq_ignore_ascii_case("INBOX");
            self.delivered(request, address, &filing.folder);
        }
        if let Some(failure) = &failure {
            self.notify_failure(recipient, address, failure).await;
        }
        let queue = self.queue();
        let mut refused = None;
        let mut keep_instead = false;
        for action in &outcome.actions {
            match action {
                Action::Keep { .. } | Action::FileInto { .. } => {}
                Action::Discard => {
                    info!(queue_id = request.queue_id, to = %address, "discarded by the recipient's Sieve script");
                }
                Action::Redirect { address: to } => {
                    let sent = match &queue {
                        Some(queue) => {
                            self.redirect(queue, spooled, request, address, prefix, &outcome, to)
                                .await
                        }
                        None => false,
                    };
                    keep_instead |= !sent;
                }
                Action::Vacation(vacation) => {
                    if let Some(queue) = &queue {
                        self.vacation(queue, request, address, vacation).await;
                    }
                }
                Action::Reject { reason, extended } => {
                    mailstead_events::record(
                        Event::now(Kind::Rejected)
                            .sender(request.sender)
                            .recipient(address)
                            .reason(reason),
                    );
                    if request.lmtp && *extended {
                        info!(queue_id = request.queue_id, to = %address, "refused by the recipient's Sieve script (ereject)");
                        refused = Some(reason.clone());
                    } else if let Some(queue) = &queue {
                        self.reject(queue, spooled, request, address, prefix, reason)
                            .await;
                    }
                }
            }
        }
        if keep_instead && !kept {
            // A redirect that could not be sent: the message stays with the user.
            self.file(spooled, recipient, file_prefix, header, &Filing::inbox())
                .await?;
            self.delivered(request, address, "INBOX");
        }
        Ok(match refused {
            Some(reason) => LocalOutcome::Refused(reason),
            None => LocalOutcome::Delivered,
        })
    }

    /// Sends the message on, from its original envelope sender (Pigeonhole's default; `<>`
    /// stays `<>`), within the per-user hourly allowance and never around a loop. Returns
    /// whether it is queued.
    #[allow(clippy::too_many_arguments)]
    async fn redirect(
        &self,
        queue: &Queue,
        spooled: &SpooledMessage,
        request: &LocalRequest<'_>,
        address: &str,
        prefix: &str,
        outcome: &mailstead_sieve::Outcome,
        to: &str,
    ) -> bool {
        let header = match &outcome.header {
            Some(header) => header.clone(),
            None => {
                let mut header = prefix.as_bytes().to_vec();
                match spooled.header_block(256 * 1024).await {
                    Ok(block) => header.extend_from_slice(&block),
                    Err(err) => {
                        warn!(queue_id = request.queue_id, cause = %err, "cannot read the message to redirect");
                        return false;
                    }
                }
                header
            }
        };
        if filter::redirect_loops(&header, address) {
            warn!(queue_id = request.queue_id, from = %address, to = %mailstead_net::LogSafe(to), "redirect refused: the message already went through this mailbox's redirect");
            return false;
        }
        let per_hour = self.inner.config.sieve.max_redirects_per_hour;
        if !self
            .inner
            .filters
            .allow_redirect(address, crate::now(), per_hour)
        {
            warn!(queue_id = request.queue_id, from = %address, to = %mailstead_net::LogSafe(to), per_hour, "redirect refused: hourly limit reached");
            return false;
        }
        let marker = format!("{}: {address}\r\n", filter::REDIRECTED_HEADER);
        let res = match &outcome.header {
            // Edited: the new header (without Return-Path:, which only a final delivery
            // has) and the original body in a spool file of its own.
            Some(edited) => {
                let mut bytes = marker.into_bytes();
                bytes.extend_from_slice(strip_return_path(edited));
                match spooled.wire_bytes(b"").await {
                    Ok(whole) => bytes.extend_from_slice(body_of(&whole)),
                    Err(err) => {
                        warn!(queue_id = request.queue_id, cause = %err, "cannot read the message to redirect");
                        return false;
                    }
                }
                self.enqueue_new(queue, request.sender, to, &bytes, None)
                    .await
            }
            None => {
                let added = format!("{marker}{}", strip_return_path_str(prefix));
                let local = crate::is_local(&queue.inner.directory, to).await;
                queue
                    .enqueue(
                        spooled,
                        NewMessage {
                            sender: request.sender.to_owned(),
                            prefix: added,
                            recipients: vec![QueuedRecipient::pending(to.to_owned(), local)],
                            ..NewMessage::default()
                        },
                    )
                    .await
            }
        };
        match res {
            Ok(id) => {
                info!(queue_id = request.queue_id, from = %address, to = %mailstead_net::LogSafe(to), redirect_id = %id, "redirected by the recipient's Sieve script");
                true
            }
            Err(err) => {
                warn!(queue_id = request.queue_id, cause = %err, "cannot queue the redirect");
                false
            }
        }
    }

    /// A vacation reply, once per (handle, sender) and period, from `<>` through the queue.
    async fn vacation(
        &self,
        queue: &Queue,
        request: &LocalRequest<'_>,
        address: &str,
        vacation: &mailstead_sieve::Vacation,
    ) {
        if request.sender.is_empty() {
            return;
        }
        let period = filter::vacation_period(
            vacation.period_seconds,
            self.inner.config.sieve.vacation_min_period,
        );
        let home = request.recipient.location.home.clone();
        let (handle, sender) = (vacation.handle.clone(), vacation.to.clone());
        let now = crate::now();
        let due = tokio::task::spawn_blocking(move || {
            filter::vacation_due(&home, &handle, &sender, now, period)
        })
        .await;
        match due {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                info!(queue_id = request.queue_id, to = %mailstead_net::LogSafe(&vacation.to), "vacation reply already sent in this period");
                return;
            }
            Ok(Err(err)) => {
                // Without the memory a reply could go out at every message: send none.
                warn!(queue_id = request.queue_id, cause = %err, "cannot keep the vacation memory; no reply");
                return;
            }
            Err(err) => {
                warn!(queue_id = request.queue_id, cause = %err, "vacation memory task failed");
                return;
            }
        }
        let bytes = filter::vacation_message(vacation, address, now);
        let domain = address
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_ascii_lowercase());
        match self
            .enqueue_new(queue, "", &vacation.to, &bytes, domain)
            .await
        {
            Ok(id) => {
                info!(queue_id = request.queue_id, to = %mailstead_net::LogSafe(&vacation.to), reply_id = %id, "vacation reply queued")
            }
            Err(err) => {
                warn!(queue_id = request.queue_id, cause = %err, "cannot queue the vacation reply")
            }
        }
    }

    /// `reject` outside LMTP: an MDN to the sender; nothing to the null sender.
    async fn reject(
        &self,
        queue: &Queue,
        spooled: &SpooledMessage,
        request: &LocalRequest<'_>,
        address: &str,
        prefix: &str,
        reason: &str,
    ) {
        if request.sender.is_empty() {
            info!(queue_id = request.queue_id, to = %address, "rejected by the recipient's Sieve script; no notice to the null sender");
            return;
        }
        let mut header = prefix.as_bytes().to_vec();
        if let Ok(block) = spooled.header_block(64 * 1024).await {
            header.extend_from_slice(&block);
        }
        let bytes = filter::rejection_message(
            address,
            request.sender,
            reason,
            &header,
            &queue.config().hostname,
            crate::now(),
        );
        match queue.enqueue_report(request.sender, &bytes).await {
            Ok(id) => {
                info!(queue_id = request.queue_id, to = %address, notice_id = %id, "rejected by the recipient's Sieve script; sender notified")
            }
            Err(err) => {
                warn!(queue_id = request.queue_id, cause = %err, "cannot queue the rejection notice")
            }
        }
    }

    /// Queues a message built here (wire form) from `sender` to `to`.
    async fn enqueue_new(
        &self,
        queue: &Queue,
        sender: &str,
        to: &str,
        bytes: &[u8],
        dkim_domain: Option<String>,
    ) -> Result<String, crate::QueueError> {
        let mut writer = self.inner.store.begin().await?;
        writer.write_all(bytes).await?;
        let spooled = writer.finish().await?;
        let local = crate::is_local(&queue.inner.directory, to).await;
        queue
            .enqueue(
                &spooled,
                NewMessage {
                    sender: sender.to_owned(),
                    dkim_domain,
                    recipients: vec![QueuedRecipient::pending(to.to_owned(), local)],
                    ..NewMessage::default()
                },
            )
            .await
    }

    /// Tells the user, once per version of the script, that it failed.
    async fn notify_failure(
        &self,
        recipient: &LocalRecipient,
        address: &str,
        failure: &filter::ScriptFailure,
    ) {
        warn!(to = %address, script = %failure.key.path.display(), cause = %failure.message, "Sieve script failed; message kept in INBOX");
        let home = recipient.location.home.clone();
        let key = failure.key.clone();
        let first = tokio::task::spawn_blocking(move || filter::first_notice(&home, &key)).await;
        if !matches!(first, Ok(Ok(true))) {
            return;
        }
        let bytes = filter::failure_notice(address, failure, crate::now());
        let res = async {
            let mut writer = self.inner.store.begin().await?;
            writer.write_all(&bytes).await?;
            let spooled = writer.finish().await?;
            let prefix = copy_prefix(&postmaster_of(address), address, "");
            spooled
                .deliver(
                    &recipient.location.maildir,
                    QuotaLimit::UNLIMITED,
                    Some(prefix.as_bytes()),
                )
                .await
        }
        .await;
        if let Err(err) = res {
            warn!(to = %address, cause = %err, "cannot deliver the Sieve error notice");
        }
    }

    /// Files one copy: `prefix` (wire form) then, when given, `header` (a replaced header
    /// section, wire form, ending with the empty line) and the spooled body, or else the
    /// spooled message. A folder that does not exist and may not be created, or whose name
    /// the account cannot hold, means INBOX (as Pigeonhole does), logged.
    ///
    /// # Errors
    ///
    /// As [`LocalDelivery::deliver`].
    pub async fn file(
        &self,
        spooled: &SpooledMessage,
        recipient: &LocalRecipient,
        prefix: &[u8],
        header: Option<&[u8]>,
        filing: &Filing,
    ) -> Result<(), StoreError> {
        let maildir = &recipient.location.maildir;
        let quota = QuotaLimit::bytes(recipient.quota.bytes);
        let inbox = filing.folder.eq_ignore_ascii_case("INBOX");
        if inbox && filing.flags.is_empty() && header.is_none() {
            spooled.deliver(maildir, quota, Some(prefix)).await?;
            return Ok(());
        }
        let mut message = match header {
            Some(header) => {
                let mut bytes = prefix.to_vec();
                bytes.extend_from_slice(header);
                let whole = spooled.wire_bytes(b"").await?;
                bytes.extend_from_slice(body_of(&whole));
                bytes
            }
            None => spooled.wire_bytes(prefix).await?,
        };
        message.shrink_to_fit();
        let account = self.account(recipient).await?;
        let name = folder_name(&filing.folder, account.layout());
        let folder = match account.open(&name).await {
            Ok(folder) => folder,
            Err(MailboxError::NotFound(_)) if filing.create => {
                match account.create(&name, None).await {
                    Ok(()) | Err(MailboxError::AlreadyExists(_)) => {}
                    Err(err) => {
                        warn!(folder = %mailstead_net::LogSafe(&filing.folder), cause = %err, "cannot create the folder; filing into INBOX")
                    }
                }
                match account.open(&name).await {
                    Ok(folder) => folder,
                    Err(_) => account
                        .open("INBOX")
                        .await
                        .map_err(|err| store_error(maildir, err))?,
                }
            }
            Err(err @ (MailboxError::NotFound(_) | MailboxError::InvalidName { .. })) => {
                info!(folder = %mailstead_net::LogSafe(&filing.folder), cause = %err, "no such folder; filing into INBOX");
                account
                    .open("INBOX")
                    .await
                    .map_err(|err| store_error(maildir, err))?
            }
            Err(err) => return Err(store_error(maildir, err)),
        };
        let (system, keywords) = split_flags(&filing.flags);
        match folder.append(&message, system, &keywords, None).await {
            Ok(_) => Ok(()),
            Err(MailboxError::TooManyKeywords(_) | MailboxError::InvalidKeyword(_)) => {
                // Flags are a nicety; the message is not.
                folder
                    .append(&message, system, &[], None)
                    .await
                    .map(|_| ())
                    .map_err(|err| store_error(maildir, err))
            }
            Err(err) => Err(store_error(maildir, err)),
        }
    }

    /// The usage before a delivery, when a warning could follow it.
    async fn usage_for_warnings(&self, recipient: &LocalRecipient) -> Option<u64> {
        if self.inner.config.quota_warnings.is_empty() {
            return None;
        }
        let limit = recipient.quota.bytes.filter(|&limit| limit > 0)?;
        let quota = QuotaLimit::bytes(Some(limit));
        match mailstead_store::quota_usage(&recipient.location.maildir, quota).await {
            Ok(usage) => Some(usage.map_or(0, |usage| usage.bytes)),
            Err(err) => {
                warn!(cause = %err, "cannot read the quota usage; no quota warning for this delivery");
                None
            }
        }
    }

    /// Warns the user once for each threshold the delivery crossed upward. A usage that falls
    /// back below a threshold and crosses it again warns again; concurrent deliveries may
    /// each see a crossing the other made, so a warning can come twice, never not at all.
    async fn after_delivery(&self, recipient: &LocalRecipient, quota: QuotaLimit, before: u64) {
        let Some(limit) = quota.bytes.filter(|&limit| limit > 0) else {
            return;
        };
        let after = match mailstead_store::quota_usage(&recipient.location.maildir, quota).await {
            Ok(usage) => usage.map_or(0, |usage| usage.bytes),
            Err(err) => {
                warn!(cause = %err, "cannot read the quota usage after delivery");
                return;
            }
        };
        let crossed = crossed_thresholds(&self.inner.config.quota_warnings, limit, before, after);
        // One message, for the highest threshold crossed, as Dovecot runs only that one.
        let Some(warning) = crossed.last() else {
            return;
        };
        let address = recipient.address.to_string();
        info!(to = %mailstead_net::LogSafe(&address), percent = warning.percent, "quota warning");
        if let Err(err) = self.send_warning(recipient, warning).await {
            warn!(to = %mailstead_net::LogSafe(&address), cause = %err, "cannot deliver the quota warning");
        }
        if let Some(command) = &self.inner.config.quota_warning_command {
            run_warning_command(command, &address, warning.percent).await;
        }
    }

    async fn send_warning(
        &self,
        recipient: &LocalRecipient,
        warning: &QuotaWarning,
    ) -> Result<(), StoreError> {
        let address = recipient.address.to_string();
        let bytes = warning_message(&address, warning, crate::now());
        let mut writer = self.inner.store.begin().await?;
        writer.write_all(&bytes).await?;
        let spooled = writer.finish().await?;
        let postmaster = postmaster_of(&address);
        let prefix = copy_prefix(&postmaster, &address, "");
        // The warning itself is exempt from the quota it warns about, as Dovecot's
        // quota-warning script delivers with the quota ignored.
        spooled
            .deliver(
                &recipient.location.maildir,
                QuotaLimit::UNLIMITED,
                Some(prefix.as_bytes()),
            )
            .await?;
        Ok(())
    }
}

/// `Return-Path:` and `Delivered-To:` (the final mailbox, as Postfix's virtual and Dovecot's
/// LMTP add them), then what the caller adds: this copy's own lines, since the spool file is
/// shared by every recipient.
pub fn copy_prefix(sender: &str, address: &str, added: &str) -> String {
    let sender: String = sender.chars().filter(|c| !c.is_control()).collect();
    format!("Return-Path: <{sender}>\r\nDelivered-To: {address}\r\n{added}")
}

fn log_safe_address(recipient: &LocalRecipient) -> String {
    recipient
        .address
        .to_string()
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

fn postmaster_of(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((_, domain)) => format!("postmaster@{domain}"),
        None => "postmaster".to_owned(),
    }
}

/// The thresholds `before..after` crossed upward, lowest first.
fn crossed_thresholds(
    warnings: &[QuotaWarning],
    limit: u64,
    before: u64,
    after: u64,
) -> Vec<&QuotaWarning> {
    let mut crossed: Vec<&QuotaWarning> = warnings
        .iter()
        .filter(|warning| {
            let threshold = u128::from(limit) * u128::from(warning.percent) / 100;
            u128::from(before) < threshold && u128::from(after) >= threshold
        })
        .collect();
    crossed.sort_by_key(|warning| warning.percent);
    crossed
}

fn warning_message(address: &str, warning: &QuotaWarning, now: i64) -> Vec<u8> {
    let percent = warning.percent.to_string();
    let text = if warning.message.trim().is_empty() {
        format!(
            "Your mailbox is now {percent}% full.\r\n\r\nPlease delete messages you no longer need, or mail sent to you may be refused.\r\n"
        )
    } else {
        let text = warning.message.replace("{percent}", &percent);
        let mut wire = String::new();
        for line in text.lines() {
            wire.push_str(line);
            wire.push_str("\r\n");
        }
        wire
    };
    let date = crate::dsn::rfc2822(now);
    let postmaster = postmaster_of(address);
    let id = crate::new_id();
    let domain = address.rsplit_once('@').map_or("localhost", |(_, d)| d);
    format!(
        "From: Mail Delivery System <{postmaster}>\r\nTo: <{address}>\r\nSubject: Quota warning: your mailbox is {percent}% full\r\nDate: {date}\r\nMessage-ID: <{id}.quota@{domain}>\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}"
    )
    .into_bytes()
}

/// Runs the warning command with the address and the percent as its arguments, never
/// through a shell and never as root: a server still running as root (it did not drop
/// privileges) logs and skips it.
async fn run_warning_command(command: &Path, address: &str, percent: u32) {
    if running_as_root() {
        warn!(command = %command.display(), "quota warning command not run: the server runs as root");
        return;
    }
    let status = tokio::process::Command::new(command)
        .arg(address)
        .arg(percent.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    // The delivery waits for it (as Dovecot's does): a hanging command must not hold it.
    match tokio::time::timeout(WARNING_COMMAND_TIMEOUT, status).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => {
            warn!(command = %command.display(), status = %status, "quota warning command failed")
        }
        Ok(Err(err)) => {
            warn!(command = %command.display(), cause = %err, "cannot run the quota warning command")
        }
        Err(_) => warn!(command = %command.display(), "quota warning command killed after 30 s"),
    }
}

/// The process's effective user is root: `/proc/self` belongs to it.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// A header section without its leading `Return-Path:` line (only a final delivery has one).
fn strip_return_path(header: &[u8]) -> &[u8] {
    let starts = header.len() >= 12 && header[..12].eq_ignore_ascii_case(b"return-path:");
    match header.windows(2).position(|pair| pair == b"\r\n") {
        Some(end) if starts => &header[end + 2..],
        _ => header,
    }
}

fn strip_return_path_str(prefix: &str) -> &str {
    let bytes = strip_return_path(prefix.as_bytes());
    &prefix[prefix.len() - bytes.len()..]
}

/// The body of a wire-form message: what follows the first empty line.
fn body_of(message: &[u8]) -> &[u8] {
    match message.windows(4).position(|window| window == b"\r\n\r\n") {
        Some(end) => &message[end + 4..],
        None => b"",
    }
}

/// IMAP system flags and keywords, from imap4flags' list (case-insensitive system flags;
/// `\Recent` and unknown system flags are dropped, as Pigeonhole does).
fn split_flags(flags: &[String]) -> (SystemFlags, Vec<String>) {
    let mut system = SystemFlags::empty();
    let mut keywords = Vec::new();
    for flag in flags {
        match flag.to_ascii_lowercase().as_str() {
            "\\seen" => system.insert(SystemFlags::SEEN),
            "\\answered" => system.insert(SystemFlags::ANSWERED),
            "\\flagged" => system.insert(SystemFlags::FLAGGED),
            "\\deleted" => system.insert(SystemFlags::DELETED),
            "\\draft" => system.insert(SystemFlags::DRAFT),
            other if other.starts_with('\\') => {}
            _ => {
                if !keywords.contains(flag) {
                    keywords.push(flag.clone());
                }
            }
        }
    }
    (system, keywords)
}

fn store_error(maildir: &Path, err: MailboxError) -> StoreError {
    match err {
        MailboxError::OverQuota {
            resource,
            limit,
            used,
            size,
        } => StoreError::OverQuota {
            maildir: maildir.to_path_buf(),
            resource,
            limit,
            used,
            size,
        },
        MailboxError::Io { path, source } => StoreError::Io { path, source },
        other => StoreError::Task(other.to_string()),
    }
}

/// The store's name (modified UTF-7, `/` between levels) of a folder a script names: `.` is
/// the hierarchy separator of Maildir++ accounts (Dovecot's default there), `/` of every
/// account; a leading `INBOX.` (Courier-style namespaces) is dropped.
pub(crate) fn folder_name(mailbox: &str, layout: FolderLayout) -> String {
    if mailbox.eq_ignore_ascii_case("INBOX") {
        return "INBOX".to_owned();
    }
    let name = match layout {
        FolderLayout::MaildirPlusPlus => {
            let trimmed = match mailbox.get(..6) {
                Some(head) if head.eq_ignore_ascii_case("INBOX.") && mailbox.len() > 6 => {
                    &mailbox[6..]
                }
                _ => mailbox,
            };
            trimmed.replace('.', "/")
        }
        FolderLayout::Fs => mailbox.to_owned(),
    };
    mutf7_encode(&name)
}

/// A UTF-8 folder name in modified UTF-7 (RFC 3501 5.1.3), the form IMAP clients send and
/// the directory names Dovecot and the store use on disk.
fn mutf7_encode(name: &str) -> String {
    use base64::Engine;
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|unit| unit.to_be_bytes()).collect();
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
        out.push('&');
        out.push_str(&encoded.replace('/', ","));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// The store's name for the directory's `LAYOUT=` option.
fn folder_layout(layout: MaildirLayout) -> FolderLayout {
    match layout {
        MaildirLayout::Fs => FolderLayout::Fs,
        MaildirLayout::MaildirPlusPlus => FolderLayout::MaildirPlusPlus,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_become_modified_utf7() {
        assert_eq!(mutf7_encode("Work"), "Work");
        assert_eq!(mutf7_encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(mutf7_encode("A&B"), "A&-B");
        assert_eq!(mutf7_encode("日本語"), "&ZeVnLIqe-");
    }

    #[test]
    fn script_folder_names_follow_the_layout() {
        let plus = FolderLayout::MaildirPlusPlus;
        assert_eq!(folder_name("inbox", plus), "INBOX");
        assert_eq!(folder_name("Work.Projects", plus), "Work/Projects");
        assert_eq!(folder_name("INBOX.Work", plus), "Work");
        assert_eq!(folder_name("Work/Entwürfe", plus), "Work/Entw&APw-rfe");
        assert_eq!(folder_name("v1.2", FolderLayout::Fs), "v1.2");
    }

    #[test]
    fn flags_split_into_system_flags_and_keywords() {
        let flags: Vec<String> = ["\\Seen", "\\flagged", "$Work", "\\Recent", "$Work"]
            .iter()
            .map(|f| (*f).to_owned())
            .collect();
        let (system, keywords) = split_flags(&flags);
        assert_eq!(system, SystemFlags::SEEN.union(SystemFlags::FLAGGED));
        assert_eq!(keywords, ["$Work"]);
    }

    #[test]
    fn thresholds_cross_upward_only() {
        let warnings = vec![
            QuotaWarning {
                percent: 95,
                message: String::new(),
            },
            QuotaWarning {
                percent: 80,
                message: String::new(),
            },
        ];
        let percents = |before, after| -> Vec<u32> {
            crossed_thresholds(&warnings, 1000, before, after)
                .iter()
                .map(|w| w.percent)
                .collect()
        };
        assert_eq!(percents(700, 850), [80]);
        assert_eq!(percents(700, 960), [80, 95]);
        assert_eq!(percents(850, 900), Vec::<u32>::new());
        assert_eq!(percents(850, 700), Vec::<u32>::new());
        assert_eq!(percents(799, 800), [80]);
    }

    #[test]
    fn warning_text_names_the_percent() {
        let warning = QuotaWarning {
            percent: 80,
            message: "Mailbox {percent}% full\nclean up".to_owned(),
        };
        let text =
            String::from_utf8(warning_message("bob@example.com", &warning, 0)).expect("utf-8");
        assert!(text.starts_with("From: Mail Delivery System <postmaster@example.com>\r\n"));
        assert!(text.contains("Subject: Quota warning: your mailbox is 80% full\r\n"));
        assert!(
            text.ends_with("\r\n\r\nMailbox 80% full\r\nclean up\r\n"),
            "{text}"
        );
    }

    #[test]
    fn body_follows_the_first_empty_line() {
        assert_eq!(body_of(b"A: b\r\n\r\nbody\r\n"), b"body\r\n");
        assert_eq!(body_of(b"A: b\r\n"), b"");
    }
}
