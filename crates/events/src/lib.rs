//! Mailstead's durable record of mail events: what `mailstead report` summarises (like
//! pflogsumm does Postfix's log) and what the traffic charts draw.
//!
//! # Layout
//! - this file: [`Event`], [`record`] (what the counting points in `smtp`, `queue` and `auth`
//!   call) and [`EventLog`], the background writer `serve` starts.
//! - `store`: the daily files (`<dir>/YYYY-MM-DD.jsonl`, UTC days) and reading them back.
//! - `report`: the summary ([`Report`]) and the hourly traffic ([`hourly`]).
//!
//! # Why files, and why this way
//! One JSON line per event in one file per UTC day: appending costs the server nothing it
//! waits for (no database round trip on the SMTP path, whichever SQL backend the directory
//! uses), old days go by deleting a file, `mailstead report` reads them with or without the
//! server running (as pflogsumm reads `mail.log`), and an operator can `grep` or `jq` them.
//! A counting point never blocks: [`record`] tries a bounded channel and, when the writer is
//! behind, drops the event and counts it (`mailstead_events_dropped_total`). Lines are
//! flushed when the channel runs empty, not fsync'd: these are statistics, and a crash may
//! lose the last few.
//!
//! # Security
//! Addresses and logins come from clients: they are bounded by the protocols' line limits
//! before they get here, JSON escapes them in the files, and the report escapes them again
//! wherever it prints them.

#![forbid(unsafe_code)]

mod report;
mod store;

use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use report::{Count, Report, Totals, Traffic, hourly, report};
pub use store::read_events;

/// Events the writer may fall behind by before new ones are dropped (each a few hundred
/// bytes: a few MB at most).
pub const CHANNEL_CAPACITY: usize = 10_000;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A message accepted from a client (SMTP, submission, LMTP answered 250).
    Received,
    /// A copy written into a local mailbox.
    Delivered,
    /// A copy accepted by a remote server (the queue's SMTP client).
    Sent,
    /// A queued recipient's attempt failed for now.
    Deferred,
    /// A queued recipient given up: a bounce goes to the sender.
    Bounced,
    /// A recipient refused at `RCPT TO`.
    Rejected,
    /// A failed login (any protocol).
    AuthFailed,
}

/// One event: the fields that apply to its kind, the rest absent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unix seconds (UTC).
    pub at: i64,
    pub kind: Kind,
    /// The envelope sender (`""` for the null sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// Recipients of a received message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<u64>,
    /// Bytes of a received message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Why it was rejected, deferred or bounced, or why a login failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The login of a failed authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The listener or service: smtp, submission, lmtp, imap, pop3 …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl Event {
    /// An event of `kind` now, with no details yet.
    pub fn now(kind: Kind) -> Event {
        Event {
            at: unix_seconds(SystemTime::now()),
            kind,
            sender: None,
            recipient: None,
            recipients: None,
            size: None,
            reason: None,
            login: None,
            client: None,
            service: None,
        }
    }

    pub fn sender(mut self, sender: &str) -> Event {
        self.sender = Some(sender.to_owned());
        self
    }

    pub fn recipient(mut self, recipient: &str) -> Event {
        self.recipient = Some(recipient.to_owned());
        self
    }

    pub fn recipients(mut self, count: usize) -> Event {
        self.recipients = Some(u64::try_from(count).unwrap_or(u64::MAX));
        self
    }

    pub fn size(mut self, bytes: u64) -> Event {
        self.size = Some(bytes);
        self
    }

    pub fn reason(mut self, reason: &str) -> Event {
        self.reason = Some(reason.to_owned());
        self
    }

    pub fn login(mut self, login: &str) -> Event {
        self.login = Some(login.to_owned());
        self
    }

    pub fn client(mut self, client: impl std::fmt::Display) -> Event {
        self.client = Some(client.to_string());
        self
    }

    pub fn service(mut self, service: &str) -> Event {
        self.service = Some(service.to_owned());
        self
    }
}

/// What the writer thread is sent.
enum Message {
    Event(Event),
    /// Write what came before, then answer.
    Flush(SyncSender<()>),
    Stop,
}

/// The process's writer, once `serve` started one.
static SINK: OnceLock<SyncSender<Message>> = OnceLock::new();

/// Records `event` if this process keeps an event log (`serve` does; the other commands and
/// the crates' own tests do not). Never waits: a full channel drops the event and counts it.
pub fn record(event: Event) {
    let Some(sink) = SINK.get() else {
        return;
    };
    match sink.try_send(Message::Event(event)) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => mailstead_metrics::event_dropped(),
        // The writer stopped (shutdown): nothing more is recorded.
        Err(TrySendError::Disconnected(_)) => {}
    }
}

/// The background writer: a thread appending events to the day's file under its directory
/// and deleting files older than `keep`. Stop it with [`EventLog::stop`], which writes what
/// is queued first.
#[must_use]
pub struct EventLog {
    sender: SyncSender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl EventLog {
    /// Starts the writer and makes [`record`] reach it. One per process.
    ///
    /// # Errors
    /// The directory cannot be made, the thread cannot start, or a writer already runs.
    pub fn start(dir: PathBuf, keep: Duration) -> io::Result<EventLog> {
        std::fs::create_dir_all(&dir)?;
        let (sender, receiver) = sync_channel(CHANNEL_CAPACITY);
        SINK.set(sender.clone())
            .map_err(|_| io::Error::other("an event log already runs in this process"))?;
        let thread = std::thread::Builder::new()
            .name("event-log".to_owned())
            .spawn(move || write_events(&receiver, store::DailyFiles::new(dir, keep)))?;
        Ok(EventLog {
            sender,
            thread: Some(thread),
        })
    }

    /// Returns once every event recorded before the call is in its file (a test, or a
    /// report made by the server itself, reads them next).
    pub fn flush(&self) {
        let (done, wait) = sync_channel(1);
        if self.sender.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(10));
        }
    }

    /// Writes what is queued and ends the thread.
    pub fn stop(mut self) {
        let _ = self.sender.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread: writes batches, flushing whenever the channel runs empty.
fn write_events(receiver: &Receiver<Message>, mut files: store::DailyFiles) {
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Event(event) => files.append(&event),
                Message::Flush(done) => {
                    files.flush();
                    let _ = done.try_send(());
                }
                Message::Stop => {
                    files.flush();
                    return;
                }
            }
            next = receiver.try_recv().ok();
        }
        files.flush();
    }
}

/// A refusal as a reason to group by: the reply's code and text without the address it
/// names in angle brackets, so "550 5.1.1 <a@x>: Recipient address rejected: User unknown"
/// and the same for `<b@x>` count as one reason.
pub fn reply_reason(code: u16, text: &str) -> String {
    format!("{code} {}", without_addresses(text))
}

/// `text` without the addresses it names in angle brackets (and a `:` right after one), its
/// spaces collapsed: what stays is the same for every recipient a refusal or bounce hits.
pub fn without_addresses(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '<' {
            for inside in chars.by_ref() {
                if inside == '>' {
                    break;
                }
            }
            if chars.peek() == Some(&':') {
                chars.next();
            }
            continue;
        }
        kept.push(c);
    }
    let words: Vec<&str> = kept.split_whitespace().collect();
    words.join(" ")
}

/// Unix seconds of `at` (0 before 1970).
pub fn unix_seconds(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_leaves_the_reason() {
        assert_eq!(
            reply_reason(
                550,
                "5.1.1 <a@x.org>: Recipient address rejected: User unknown"
            ),
            "550 5.1.1 Recipient address rejected: User unknown"
        );
        assert_eq!(
            reply_reason(554, "5.7.1 <b@y.org>: Relay access denied"),
            "554 5.7.1 Relay access denied"
        );
        assert_eq!(
            reply_reason(452, "4.5.3 Error: too many recipients"),
            "452 4.5.3 Error: too many recipients"
        );
    }
}
