//! The outbound queue: every message a session hands over that could not be delivered at
//! once (remote recipients, a local mailbox that failed for now), kept on disk until each
//! recipient is delivered or has failed and its sender was told.
//!
//! # SUMMARY
//!
//! [`Queue::enqueue`] links the session's spooled message into `<queue>/<id>.msg`, writes
//! the envelope and every recipient's state to `<id>.env` and fsyncs both and the
//! directory before it returns: only then may the session say `250`. [`Queue::run`] tries
//! each message when it is due: local recipients through the store (the same Maildir write
//! path as a new message), remote ones through [`outbound::Outbound`] (one transaction per
//! destination domain). Temporary failures are retried with a doubling back-off
//! (`min_backoff`..`max_backoff`); a sender is warned after `delay_warning` and gets a bounce
//! (RFC 3464 report) when a recipient fails permanently or the message is older than
//! `max_age`. The null sender never gets a report, so a bounce never bounces.
//!
//! # DURABILITY
//!
//! The state file is replaced atomically (write, fsync, rename, fsync directory) after every
//! attempt, before anything else happens. A remote `250` is recorded at once; a crash between
//! the remote reply and that write sends the message again to that recipient (the window
//! RFC 5321 §6.1 accepts; nothing acknowledged is lost). At start every `.msg` without an
//! `.env` (a crash inside `enqueue`, never acknowledged) is removed.
//!
//! # Layout
//! - this file: `enqueue`, the schedule (what is due when; one task per message attempt,
//!   `max_active` at once), an attempt (local and remote recipients), back-off, expiry and
//!   the reports owed (queued before the new state is written).
//! - `envelope.rs`: the state file. `dsn.rs`: reports. `dkim.rs`: signing submitted mail.
//! - `local.rs`: `LocalDelivery`, the one local delivery agent (sessions and the queue):
//!   filing through the store, quota warnings, carrying out Sieve's actions.
//!   `filter.rs`: running the scripts (cache, global scripts, errors), the vacation memory,
//!   redirect limits and the messages Sieve sends.
//! - `control.rs`: `queue list|show|hold|release|retry|remove|flush` for the CLI, through a
//!   Unix socket while the server runs, on the files when it does not.
//! - `outbound/`: the SMTP client (routes, MX, TLS policies, DANE, connection reuse).

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailstead_directory::Directory;
use mailstead_directory::resolve::{Outcome, Recipient};
use mailstead_events::{Event, Kind};
use mailstead_store::{SpooledMessage, Store, StoreError};
use tracing::{info, warn};

pub mod control;
pub mod dkim;
pub mod dsn;
pub mod envelope;
mod filter;
pub mod local;
pub mod outbound;

pub use envelope::{Envelope, QueuedRecipient, RecipientState, Ret};
pub use filter::SieveConfig;
pub use local::{LocalConfig, LocalDelivery, LocalOutcome, LocalRequest, QuotaWarning};
pub use outbound::{Notify, Outbound, OutboundConfig};

use crate::dsn::{Report, ReportKind};
use crate::outbound::{AttemptResult, DeliveryRequest, OutboundRecipient};

/// How the queue retries and gives up.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// `<data_dir>/queue`.
    pub dir: PathBuf,
    /// Reports come from `MAILER-DAEMON@hostname`.
    pub hostname: String,
    /// The first retry waits this long, each next one twice as long…
    pub min_backoff: Duration,
    /// …up to this (Postfix: 300 s and 4000 s).
    pub max_backoff: Duration,
    /// A message still undelivered after this long bounces (Postfix's
    /// `maximal_queue_lifetime`, 5 days).
    pub max_age: Duration,
    /// Senders are warned once when a message is still queued after this long; `None`: never.
    pub delay_warning: Option<Duration>,
    /// Messages being tried at once.
    pub max_active: usize,
}

impl QueueConfig {
    pub fn new(dir: PathBuf, hostname: String) -> QueueConfig {
        QueueConfig {
            dir,
            hostname,
            min_backoff: Duration::from_secs(300),
            max_backoff: Duration::from_secs(4000),
            max_age: Duration::from_secs(5 * 24 * 3600),
            delay_warning: Some(Duration::from_secs(4 * 3600)),
            max_active: 100,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("queue file {} is damaged: {reason}", path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error("no queued message {0}")]
    NotFound(String),
    #[error("the queue in {} is in use by a running server", .0.display())]
    Busy(PathBuf),
    #[error("{0}")]
    Control(String),
}

impl QueueError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> QueueError {
        QueueError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A message handed to the queue.
#[derive(Clone, Debug, Default)]
pub struct NewMessage {
    /// The id the session gave the message (its `250 … queued as` and `Received:` name it);
    /// `None`: a new one.
    pub id: Option<String>,
    pub sender: String,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    /// Header lines (wire form) to send before the spooled file (Message-ID, Date).
    pub prefix: String,
    pub submitted_by: Option<String>,
    /// Sign with this domain's DKIM key, when it has one.
    pub dkim_domain: Option<String>,
    pub recipients: Vec<QueuedRecipient>,
}

/// The handle every session and the CLI use; cheap to clone.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    config: QueueConfig,
    directory: Directory,
    store: Store,
    outbound: Arc<Outbound>,
    /// Local recipients' path, the sessions' too; set once at start-up, else the default.
    local: std::sync::OnceLock<LocalDelivery>,
    schedule: Mutex<Schedule>,
    wake: tokio::sync::Notify,
    /// Held while the queue is open: one process owns the files.
    _owner: File,
}

/// What is due when: `due` ordered by time, `at` the same by id. A message being tried is in
/// `running` and in neither.
#[derive(Default)]
struct Schedule {
    due: BTreeSet<(i64, String)>,
    at: HashMap<String, i64>,
    running: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// Per-message locks for messages not running (admin commands take them too).
    locks: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
}

impl Schedule {
    fn set(&mut self, id: &str, when: i64) {
        if let Some(previous) = self.at.insert(id.to_owned(), when) {
            self.due.remove(&(previous, id.to_owned()));
        }
        self.due.insert((when, id.to_owned()));
    }

    fn unset(&mut self, id: &str) {
        if let Some(previous) = self.at.remove(id) {
            self.due.remove(&(previous, id.to_owned()));
        }
    }

    fn lock(&mut self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(self.locks.entry(id.to_owned()).or_default())
    }
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

static ID_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A message id for replies, headers, logs and queue file names: time-ordered, unique in
/// this process, safe as a file name.
pub fn new_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let counter = ID_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:X}{:05X}{:04X}",
        now.as_secs(),
        now.subsec_micros(),
        counter & 0xFFFF
    )
}

/// Whether `id` can name a queue file (the CLI passes ids through).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Queue {
    /// Opens the queue directory (creating it), takes ownership of it (a second process gets
    /// `Busy`), removes what an interrupted `enqueue` left and schedules every message.
    ///
    /// # Errors
    ///
    /// `Io` when the directory cannot be made or read, `Busy` when another process has it.
    pub fn open(
        config: QueueConfig,
        directory: Directory,
        store: Store,
        outbound: Arc<Outbound>,
    ) -> Result<Queue, QueueError> {
        let owner = control::take_ownership(&config.dir)?;
        let mut schedule = Schedule::default();
        let queued = control::scan(&config.dir)?;
        mailstead_metrics::queue_size_set(queued.len());
        for (id, envelope) in queued {
            if envelope.held {
                continue;
            }
            if let Some(when) = envelope.next_attempt() {
                schedule.set(&id, when);
            }
        }
        info!(dir = %config.dir.display(), messages = schedule.at.len(), "queue opened");
        Ok(Queue {
            inner: Arc::new(Inner {
                config,
                directory,
                store,
                outbound,
                local: std::sync::OnceLock::new(),
                schedule: Mutex::new(schedule),
                wake: tokio::sync::Notify::new(),
                _owner: owner,
            }),
        })
    }

    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    /// Sets how local recipients are delivered (quota warnings and the rest); call once,
    /// before [`Queue::run`]. Returns false when it was already set.
    pub fn set_local_delivery(&self, local: LocalDelivery) -> bool {
        local.bind(&self.inner);
        self.inner.local.set(local).is_ok()
    }

    /// The local delivery every local recipient of this queue goes through.
    pub fn local_delivery(&self) -> &LocalDelivery {
        self.inner.local.get_or_init(|| {
            let store = &self.inner.store;
            let local = LocalDelivery::new(
                store,
                mailstead_store::MailStore::new(store),
                LocalConfig::default(),
            );
            local.bind(&self.inner);
            local
        })
    }

    fn paths(&self, id: &str) -> (PathBuf, PathBuf) {
        let dir = &self.inner.config.dir;
        (dir.join(format!("{id}.msg")), dir.join(format!("{id}.env")))
    }

    fn schedule(&self) -> std::sync::MutexGuard<'_, Schedule> {
        // A panic while holding the lock leaves the schedule as consistent as it was.
        self.inner
            .schedule
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a message: returns once it is durable in the queue, with its id. Recipients
    /// already `Failed` (a local mailbox that refused it for good) get their bounce at once.
    ///
    /// # Errors
    ///
    /// `Io`/`Store` when the files cannot be written and synced; nothing is left behind.
    pub async fn enqueue(
        &self,
        spooled: &SpooledMessage,
        message: NewMessage,
    ) -> Result<String, QueueError> {
        let id = match message
            .id
            .filter(|id| valid_id(id) && !self.paths(id).1.exists())
        {
            Some(id) => id,
            None => new_id(),
        };
        let (msg_path, env_path) = self.paths(&id);
        let mut prefix = message.prefix;
        if let Some(domain) = &message.dkim_domain {
            match self.dkim_header(domain, spooled, &prefix).await {
                Ok(Some(header)) => prefix.insert_str(0, &header),
                Ok(None) => {}
                // Unsigned mail still goes: a broken key must not stop a domain's mail.
                Err(err) => warn!(domain = %domain, cause = %err, "DKIM signing failed"),
            }
        }
        let now = now();
        let mut recipients = message.recipients;
        for recipient in &mut recipients {
            if recipient.state == RecipientState::Pending {
                recipient.next_attempt = now;
            }
        }
        let envelope = Envelope {
            id: id.clone(),
            sender: message.sender,
            arrived: now,
            envid: message.envid,
            ret: message.ret,
            prefix,
            submitted_by: message.submitted_by,
            held: false,
            warned: false,
            recipients,
        };
        spooled.link_to(&msg_path).await?;
        let dir = self.inner.config.dir.clone();
        let written = envelope.clone();
        let env_for_write = env_path.clone();
        let result = tokio::task::spawn_blocking(move || {
            written.write(&env_for_write)?;
            envelope::sync_dir(&dir)
        })
        .await
        .unwrap_or_else(|err| Err(QueueError::Control(err.to_string())));
        if let Err(err) = result {
            let _ = std::fs::remove_file(&env_path);
            let _ = std::fs::remove_file(&msg_path);
            return Err(err);
        }
        info!(
            queue_id = %id,
            from = %mailstead_net::LogSafe(&envelope.sender),
            recipients = envelope.recipients.len(),
            "queued"
        );
        mailstead_metrics::queue_message_added();
        self.schedule().set(&id, now);
        self.inner.wake.notify_one();
        Ok(id)
    }

    async fn dkim_header(
        &self,
        domain: &str,
        spooled: &SpooledMessage,
        prefix: &str,
    ) -> Result<Option<String>, QueueError> {
        let key = match self.inner.directory.dkim_signing_key(domain).await {
            Ok(Some(key)) => key,
            Ok(None) => return Ok(None),
            Err(err) => return Err(QueueError::Control(format!("DKIM key lookup: {err}"))),
        };
        let wire = spooled.wire_bytes(prefix.as_bytes()).await?;
        let header = tokio::task::spawn_blocking(move || dkim::sign(&key, &wire))
            .await
            .map_err(|err| QueueError::Control(err.to_string()))?
            .map_err(|err| QueueError::Control(err.to_string()))?;
        Ok(Some(header))
    }

    /// Delivers due messages until `shutdown` completes; attempts in progress finish first.
    pub async fn run(&self, shutdown: impl std::future::Future) {
        tokio::pin!(shutdown);
        let slots = Arc::new(tokio::sync::Semaphore::new(
            self.inner.config.max_active.max(1),
        ));
        let mut attempts = tokio::task::JoinSet::new();
        loop {
            while attempts.try_join_next().is_some() {}
            let next_due = self.take_due(now());
            match next_due {
                Due::Now(id, lock) => {
                    let permit = tokio::select! {
                        permit = Arc::clone(&slots).acquire_owned() => permit,
                        _ = &mut shutdown => break,
                    };
                    let Ok(permit) = permit else { break };
                    let queue = self.clone();
                    attempts.spawn(async move {
                        let _permit = permit;
                        let _guard = lock.lock().await;
                        queue.attempt(&id).await;
                        queue.finish_running(&id);
                    });
                }
                Due::Later(wait) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.inner.wake.notified() => {}
                        _ = &mut shutdown => break,
                    }
                }
            }
        }
        while attempts.join_next().await.is_some() {}
    }

    fn take_due(&self, now: i64) -> Due {
        let mut schedule = self.schedule();
        match schedule.due.first().cloned() {
            Some((when, id)) if when <= now => {
                schedule.unset(&id);
                let lock = schedule.lock(&id);
                schedule.running.insert(id.clone(), Arc::clone(&lock));
                Due::Now(id, lock)
            }
            Some((when, _)) => Due::Later(Duration::from_secs((when - now).clamp(1, 60) as u64)),
            None => Due::Later(Duration::from_secs(60)),
        }
    }

    fn finish_running(&self, id: &str) {
        let mut schedule = self.schedule();
        schedule.running.remove(id);
        if !schedule.at.contains_key(id) {
            schedule.locks.remove(id);
        }
    }

    /// One attempt at every due recipient of one message, then its new state on disk.
    async fn attempt(&self, id: &str) {
        let (msg_path, env_path) = self.paths(id);
        let read = tokio::task::spawn_blocking(move || Envelope::read(&env_path)).await;
        let read = read.unwrap_or_else(|err| Err(QueueError::Control(err.to_string())));
        let mut envelope = match read {
            Ok(envelope) => envelope,
            Err(QueueError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return;
            }
            Err(err) => {
                warn!(queue_id = id, cause = %err, "queue file unreadable; left alone");
                return;
            }
        };
        if envelope.held {
            return;
        }
        let message = match self.inner.store.queued(msg_path.clone()).await {
            Ok(message) => message,
            Err(err) => {
                warn!(queue_id = id, cause = %err, "queued message unreadable; retried later");
                self.reschedule(id, now() + self.inner.config.min_backoff.as_secs() as i64);
                return;
            }
        };
        let started = now();
        self.deliver_local(&mut envelope, &message, started).await;
        self.deliver_remote(&mut envelope, &message, started).await;
        if let Err(err) = self.settle(&mut envelope, &message, started).await {
            warn!(queue_id = id, cause = %err, "cannot record delivery state; retried later");
            self.reschedule(id, started + self.inner.config.min_backoff.as_secs() as i64);
            return;
        }
        if envelope.finished() {
            self.remove_files(id).await;
        } else if let Some(when) = envelope.next_attempt() {
            self.reschedule(id, when);
        }
    }

    fn reschedule(&self, id: &str, when: i64) {
        self.schedule().set(id, when);
        self.inner.wake.notify_one();
    }

    /// Removes a message's files and syncs the directory, on a blocking thread: the sync
    /// may wait for another one (group commit), which must not hold an I/O thread.
    async fn remove_files(&self, id: &str) {
        mailstead_metrics::queue_message_removed();
        let (msg_path, env_path) = self.paths(id);
        let dir = self.inner.config.dir.clone();
        let removed = tokio::task::spawn_blocking(move || {
            // The state file goes first: a crash in between leaves a `.msg` alone, removed
            // at the next start, never a state file without its message.
            let _ = std::fs::remove_file(env_path);
            let _ = std::fs::remove_file(msg_path);
            envelope::sync_dir(&dir)
        })
        .await;
        match removed {
            Ok(Ok(())) => {}
            Ok(Err(err)) => warn!(queue_id = id, cause = %err, "cannot sync the queue directory"),
            Err(err) => warn!(queue_id = id, cause = %err, "queue file removal failed"),
        }
    }

    fn due_recipients(envelope: &Envelope, now: i64, local: bool) -> Vec<usize> {
        envelope
            .recipients
            .iter()
            .enumerate()
            .filter(|(_, recipient)| {
                recipient.state == RecipientState::Pending
                    && recipient.local == local
                    && recipient.next_attempt <= now
            })
            .map(|(index, _)| index)
            .collect()
    }

    async fn deliver_local(&self, envelope: &mut Envelope, message: &SpooledMessage, now: i64) {
        for index in Self::due_recipients(envelope, now, true) {
            let address = envelope.recipients[index].address.clone();
            let result = self.deliver_one_local(envelope, message, &address).await;
            let recipient = &mut envelope.recipients[index];
            recipient.attempts += 1;
            recipient.last_attempt = Some(now);
            recipient.remote = None;
            match result {
                Ok(()) => {
                    recipient.state = RecipientState::Delivered;
                    recipient.status = Some("2.0.0".into());
                    recipient.diagnostic = None;
                    info!(queue_id = %envelope.id, to = %mailstead_net::LogSafe(&address), "delivered to mailbox");
                }
                Err((result, status, diagnostic)) => {
                    recipient.status = Some(status);
                    recipient.diagnostic = Some(diagnostic);
                    let arrived = envelope.arrived;
                    self.after_failure(index, arrived, result, envelope, now);
                }
            }
        }
    }

    async fn deliver_one_local(
        &self,
        envelope: &Envelope,
        message: &SpooledMessage,
        address: &str,
    ) -> Result<(), (AttemptResult, String, String)> {
        let temporary = |why: String| (AttemptResult::Deferred, "4.3.0".to_owned(), why);
        let parsed = Directory::parse_address(address).map_err(|err| {
            (
                AttemptResult::Failed,
                "5.1.3".to_owned(),
                format!("x-mailstead; bad address: {err}"),
            )
        })?;
        let resolution = self
            .inner
            .directory
            .resolve_address(&parsed)
            .await
            .map_err(|err| temporary(format!("x-mailstead; directory: {err}")))?;
        let local = match &resolution.outcome {
            Outcome::Deliver(recipients) => {
                recipients.iter().find_map(|recipient| match recipient {
                    Recipient::Local(local) if local.address.to_string() == address => {
                        Some(local.clone())
                    }
                    _ => None,
                })
            }
            Outcome::Reject(_) => None,
        };
        let Some(local) = local else {
            return Err((
                AttemptResult::Failed,
                "5.1.1".into(),
                "x-mailstead; the mailbox no longer exists".into(),
            ));
        };
        let request = LocalRequest {
            queue_id: &envelope.id,
            sender: &envelope.sender,
            recipient: &local,
            original_to: None,
            added: &envelope.prefix,
            lmtp: false,
        };
        match self.local_delivery().deliver(message, &request).await {
            Ok(LocalOutcome::Delivered) => Ok(()),
            Ok(LocalOutcome::Refused(reason)) => Err((
                AttemptResult::Failed,
                "5.7.1".into(),
                format!("x-mailstead; refused by the recipient's filter: {reason}"),
            )),
            Err(err @ StoreError::OverQuota { .. }) => Err((
                AttemptResult::Failed,
                "5.2.2".into(),
                format!("x-mailstead; {err}"),
            )),
            Err(err) => Err(temporary(format!("x-mailstead; {err}"))),
        }
    }

    async fn deliver_remote(&self, envelope: &mut Envelope, message: &SpooledMessage, now: i64) {
        let due = Self::due_recipients(envelope, now, false);
        if due.is_empty() {
            return;
        }
        let wire = match message.wire_bytes(envelope.prefix.as_bytes()).await {
            Ok(wire) => wire,
            Err(err) => {
                warn!(queue_id = %envelope.id, cause = %err, "queued message unreadable");
                let why = format!("x-mailstead; the queued message cannot be read: {err}");
                self.defer_all(envelope, &due, &why, now);
                return;
            }
        };
        // One transaction per recipient domain.
        let mut by_domain: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for index in due {
            let domain = envelope.recipients[index]
                .address
                .rsplit_once('@')
                .map(|(_, domain)| domain.to_ascii_lowercase())
                .unwrap_or_default();
            by_domain.entry(domain).or_default().push(index);
        }
        let mut transactions = Vec::new();
        for (domain, indexes) in by_domain {
            let directory = &self.inner.directory;
            let transport = match directory.transport(&domain).await {
                Ok(transport) => transport.map(|transport| transport.next_hop),
                Err(err) => {
                    warn!(domain = %domain, cause = %err, "transport lookup failed");
                    let why = format!("x-mailstead; transport lookup failed: {err}");
                    self.defer_all(envelope, &indexes, &why, now);
                    continue;
                }
            };
            let policy = match directory.tls_policy(&domain).await {
                Ok(policy) => policy.filter(|policy| policy.active),
                Err(err) => {
                    // Without the policy the TLS it demands is unknown: wait, never guess less.
                    warn!(domain = %domain, cause = %err, "TLS policy lookup failed");
                    let why = format!("x-mailstead; TLS policy lookup failed: {err}");
                    self.defer_all(envelope, &indexes, &why, now);
                    continue;
                }
            };
            let recipients: Vec<OutboundRecipient> = indexes
                .iter()
                .map(|&index| {
                    let recipient = &envelope.recipients[index];
                    OutboundRecipient {
                        address: recipient.address.clone(),
                        notify: recipient.notify,
                        orcpt: recipient.orcpt.clone(),
                    }
                })
                .collect();
            transactions.push((domain, transport, policy, recipients, indexes));
        }
        let outbound = &self.inner.outbound;
        let results = futures_util::future::join_all(transactions.iter().map(
            |(domain, transport, policy, recipients, _)| {
                let request = DeliveryRequest {
                    domain,
                    transport: transport.as_ref(),
                    tls_policy: policy.as_ref(),
                    sender: &envelope.sender,
                    envid: envelope.envid.as_deref(),
                    ret_full: envelope.ret.map(|ret| ret == Ret::Full),
                    recipients,
                    message: &wire,
                };
                async move { outbound.deliver(&request).await }
            },
        ))
        .await;
        let arrived = envelope.arrived;
        for ((_, _, _, _, indexes), attempts) in transactions.iter().zip(results) {
            for (&index, attempt) in indexes.iter().zip(attempts) {
                let recipient = &mut envelope.recipients[index];
                recipient.attempts += 1;
                recipient.last_attempt = Some(now);
                recipient.status = Some(attempt.status.clone());
                recipient.diagnostic = Some(attempt.diagnostic.clone());
                recipient.remote = attempt.remote.clone();
                info!(
                    queue_id = %envelope.id,
                    to = %mailstead_net::LogSafe(&recipient.address),
                    relay = attempt.remote.as_deref().unwrap_or("none"),
                    status = %attempt.status,
                    result = ?attempt.result,
                    diagnostic = %mailstead_net::LogSafe(&attempt.diagnostic),
                    "outbound attempt"
                );
                if attempt.result == AttemptResult::Delivered {
                    mailstead_events::record(
                        Event::now(Kind::Sent)
                            .sender(&envelope.sender)
                            .recipient(&recipient.address),
                    );
                    envelope.recipients[index].state = RecipientState::Delivered;
                } else {
                    self.after_failure(index, arrived, attempt.result, envelope, now);
                }
            }
        }
    }

    /// An attempt that could not reach any server (a lookup or the file failed): retried
    /// with the same back-off as a server's `4xx`.
    fn defer_all(&self, envelope: &mut Envelope, indexes: &[usize], why: &str, now: i64) {
        let arrived = envelope.arrived;
        for &index in indexes {
            let recipient = &mut envelope.recipients[index];
            recipient.attempts += 1;
            recipient.last_attempt = Some(now);
            recipient.status = Some("4.3.0".into());
            recipient.diagnostic = Some(why.to_owned());
            recipient.remote = None;
            self.after_failure(index, arrived, AttemptResult::Deferred, envelope, now);
        }
    }

    /// A failed attempt: gives up when it was permanent or the message is too old,
    /// otherwise sets the next try.
    fn after_failure(
        &self,
        index: usize,
        arrived: i64,
        result: AttemptResult,
        envelope: &mut Envelope,
        now: i64,
    ) {
        let config = &self.inner.config;
        let recipient = &mut envelope.recipients[index];
        let expired = now - arrived >= config.max_age.as_secs() as i64;
        let event = |kind| {
            Event::now(kind)
                .sender(&envelope.sender)
                .recipient(&recipient.address)
        };
        if result == AttemptResult::Failed || expired {
            mailstead_metrics::recipient_bounced();
            recipient.state = RecipientState::Failed;
            if expired && result != AttemptResult::Failed {
                let last = recipient.diagnostic.clone().unwrap_or_default();
                recipient.status = Some("4.4.7".into());
                recipient.diagnostic = Some(format!("{last} (gave up: message too old)"));
            }
            let reason = format!(
                "{} {}",
                recipient.status.as_deref().unwrap_or("5.0.0"),
                recipient.diagnostic.as_deref().unwrap_or("")
            );
            let reason = mailstead_events::without_addresses(&reason);
            mailstead_events::record(event(Kind::Bounced).reason(&reason));
            return;
        }
        let exponent = recipient.attempts.saturating_sub(1).min(20);
        let backoff = config
            .min_backoff
            .saturating_mul(1u32 << exponent)
            .min(config.max_backoff)
            .as_secs()
            .max(1) as i64;
        mailstead_metrics::recipient_deferred();
        let reason = recipient.status.as_deref().unwrap_or("4.0.0");
        mailstead_events::record(event(Kind::Deferred).reason(reason));
        recipient.next_attempt = now + backoff;
    }

    /// Sends the reports this attempt owes (failures, a delay warning, successes asked for),
    /// then records the new state. The reports are queued before the state is written, so a
    /// crash between the two repeats a report rather than loses one.
    async fn settle(
        &self,
        envelope: &mut Envelope,
        message: &SpooledMessage,
        now: i64,
    ) -> Result<(), QueueError> {
        let config = &self.inner.config;
        // Reports owed: failures not yet reported (NOTIFY=FAILURE, the default), deliveries
        // reported only when NOTIFY=SUCCESS asked.
        let just_failed: Vec<&QueuedRecipient> = envelope
            .recipients
            .iter()
            .filter(|recipient| {
                recipient.state == RecipientState::Failed
                    && !recipient.reported
                    && recipient.notifies(|notify| notify.failure, true)
            })
            .collect();
        let just_delivered: Vec<&QueuedRecipient> = envelope
            .recipients
            .iter()
            .filter(|recipient| {
                recipient.state == RecipientState::Delivered
                    && !recipient.reported
                    && recipient.notifies(|notify| notify.success, false)
            })
            .collect();
        let warn_now = !envelope.warned
            && config
                .delay_warning
                .is_some_and(|after| now - envelope.arrived >= after.as_secs() as i64);
        let delayed: Vec<&QueuedRecipient> = if warn_now {
            envelope
                .recipients
                .iter()
                .filter(|recipient| {
                    recipient.state == RecipientState::Pending
                        && recipient.notifies(|notify| notify.delay, true)
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut reports = Vec::new();
        if !envelope.sender.is_empty() {
            for (kind, recipients) in [
                (ReportKind::Failed, &just_failed),
                (ReportKind::Delayed, &delayed),
                (ReportKind::Delivered, &just_delivered),
            ] {
                if !recipients.is_empty() {
                    reports.push((kind, recipients.clone()));
                }
            }
        }
        if !reports.is_empty() {
            let wire = message.wire_bytes(envelope.prefix.as_bytes()).await?;
            for (kind, recipients) in reports {
                let retry_until = envelope.arrived + config.max_age.as_secs() as i64;
                let bytes = dsn::build(&Report {
                    kind,
                    hostname: &config.hostname,
                    envelope,
                    recipients: &recipients,
                    message: &wire,
                    retry_until: Some(retry_until),
                })
                .map_err(|err| QueueError::io(&config.dir, err))?;
                self.enqueue_report(&envelope.sender, &bytes).await?;
                info!(queue_id = %envelope.id, kind = ?kind, to = %mailstead_net::LogSafe(&envelope.sender), "report sent to sender");
            }
        }
        if warn_now {
            envelope.warned = true;
        }
        for recipient in &mut envelope.recipients {
            if recipient.state != RecipientState::Pending {
                recipient.reported = true;
            }
        }
        let (_, env_path) = self.paths(&envelope.id);
        if envelope.finished() {
            // Removing the files is the record.
            return Ok(());
        }
        let written = envelope.clone();
        let dir = config.dir.clone();
        tokio::task::spawn_blocking(move || {
            written.write(&env_path)?;
            envelope::sync_dir(&dir)
        })
        .await
        .unwrap_or_else(|err| Err(QueueError::Control(err.to_string())))
    }

    /// Queues a report to `to` from the null sender.
    pub(crate) async fn enqueue_report(
        &self,
        to: &str,
        bytes: &[u8],
    ) -> Result<String, QueueError> {
        let mut writer = self.inner.store.begin().await?;
        writer.write_all(bytes).await?;
        let spooled = writer.finish().await?;
        let local = is_local(&self.inner.directory, to).await;
        self.enqueue(
            &spooled,
            NewMessage {
                recipients: vec![QueuedRecipient::pending(to.to_owned(), local)],
                ..NewMessage::default()
            },
        )
        .await
    }
}

enum Due {
    Now(String, Arc<tokio::sync::Mutex<()>>),
    Later(Duration),
}

/// Whether `address` is a mailbox of ours (a report to a local sender goes straight to it).
async fn is_local(directory: &Directory, address: &str) -> bool {
    let Ok(parsed) = Directory::parse_address(address) else {
        return false;
    };
    matches!(
        directory.resolve_address(&parsed).await.map(|resolution| resolution.outcome.clone()),
        Ok(Outcome::Deliver(recipients)) if recipients.iter().any(|recipient| matches!(recipient, Recipient::Local(local) if local.address.to_string() == address))
    )
}
