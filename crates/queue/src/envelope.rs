//! What the queue knows of one message besides its bytes: the envelope and every recipient's
//! state, kept in `<id>.env` (JSON) beside `<id>.msg`, rewritten whole (write, fsync, rename,
//! fsync the directory) after every change, so a crash leaves the old state or the new one.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::QueueError;
use crate::outbound::Notify;

/// The queue file of one message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    /// The envelope sender; empty for the null sender (bounces), which never gets a bounce.
    pub sender: String,
    /// Unix seconds when the message was accepted; expiry counts from here.
    pub arrived: i64,
    /// DSN's ENVID and RET (RFC 3461), as given on submission.
    #[serde(default)]
    pub envid: Option<String>,
    #[serde(default)]
    pub ret: Option<Ret>,
    /// Header lines (wire form, CRLF) sent before the stored file: DKIM-Signature, and the
    /// Message-ID and Date added on submission.
    #[serde(default)]
    pub prefix: String,
    /// Who submitted it (the SASL login), for `queue show` and the logs.
    #[serde(default)]
    pub submitted_by: Option<String>,
    /// `queue hold`: kept, never tried, until released.
    #[serde(default)]
    pub held: bool,
    /// The delay warning went out already.
    #[serde(default)]
    pub warned: bool,
    pub recipients: Vec<QueuedRecipient>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ret {
    Full,
    Hdrs,
}

/// One recipient and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecipient {
    pub address: String,
    /// Delivered into a mailbox of ours (resolved again at every attempt) rather than sent on.
    pub local: bool,
    #[serde(default)]
    pub orcpt: Option<String>,
    #[serde(default)]
    pub notify: Option<Notify>,
    pub state: RecipientState,
    #[serde(default)]
    pub attempts: u32,
    /// Unix seconds of the next try (pending recipients).
    #[serde(default)]
    pub next_attempt: i64,
    #[serde(default)]
    pub last_attempt: Option<i64>,
    /// The last answer: enhanced status code, RFC 3464 diagnostic, the server.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub diagnostic: Option<String>,
    #[serde(default)]
    pub remote: Option<String>,
    /// The report this recipient's end calls for (failure, or success when asked) is queued.
    #[serde(default)]
    pub reported: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientState {
    /// Still to be delivered.
    Pending,
    Delivered,
    /// Given up; the sender was told (or needs no telling).
    Failed,
}

impl QueuedRecipient {
    pub fn pending(address: String, local: bool) -> QueuedRecipient {
        QueuedRecipient {
            address,
            local,
            orcpt: None,
            notify: None,
            state: RecipientState::Pending,
            attempts: 0,
            next_attempt: 0,
            last_attempt: None,
            status: None,
            diagnostic: None,
            remote: None,
            reported: false,
        }
    }

    pub fn notifies(&self, what: impl Fn(&Notify) -> bool, by_default: bool) -> bool {
        match &self.notify {
            Some(notify) => !notify.never && what(notify),
            None => by_default,
        }
    }
}

impl Envelope {
    /// Whether nothing is left to do: no recipient pending, no report owed.
    pub fn finished(&self) -> bool {
        self.recipients
            .iter()
            .all(|recipient| recipient.state != RecipientState::Pending && recipient.reported)
    }

    /// When the queue must next look at this message: the earliest pending recipient's
    /// attempt, or now when a report is owed.
    pub fn next_attempt(&self) -> Option<i64> {
        if self.finished() {
            return None;
        }
        self.recipients
            .iter()
            .filter(|recipient| recipient.state == RecipientState::Pending)
            .map(|recipient| recipient.next_attempt)
            .min()
            .or(Some(0))
    }

    pub fn read(path: &Path) -> Result<Envelope, QueueError> {
        let bytes = std::fs::read(path).map_err(|err| QueueError::io(path, err))?;
        serde_json::from_slice(&bytes).map_err(|err| QueueError::Damaged {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })
    }

    /// Replaces `path` with this state atomically; returns after the file is fsync'd and
    /// renamed. The caller syncs the directory (once for everything it changed).
    pub fn write(&self, path: &Path) -> Result<(), QueueError> {
        let bytes = serde_json::to_vec(self).map_err(|err| QueueError::Damaged {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
        let temporary = path.with_extension("env.tmp");
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_data()?;
            std::fs::rename(&temporary, path)
        })();
        result.map_err(|err| QueueError::io(path, err))
    }
}

/// Makes the entries added, renamed or removed in `dir` durable (the store's directory
/// fsync, which concurrent callers share).
pub fn sync_dir(dir: &Path) -> Result<(), QueueError> {
    mailstead_store::sync_dir(dir).map_err(|err| QueueError::io(dir, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_survives_writing_and_reading_and_knows_when_it_is_done() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("A1.env");
        let mut envelope = Envelope {
            id: "A1".into(),
            sender: "alice@example.com".into(),
            arrived: 1_700_000_000,
            envid: Some("x1".into()),
            ret: Some(Ret::Hdrs),
            prefix: "Message-ID: <1@example.com>\r\n".into(),
            submitted_by: Some("alice@example.com".into()),
            held: false,
            warned: false,
            recipients: vec![
                QueuedRecipient::pending("bob@example.net".into(), false),
                QueuedRecipient::pending("carol@example.com".into(), true),
            ],
        };
        envelope.recipients[1].next_attempt = 5;
        envelope.write(&path).expect("write");
        sync_dir(dir.path()).expect("sync");
        assert_eq!(Envelope::read(&path).expect("read"), envelope);
        assert!(!dir.path().join("A1.env.tmp").exists());
        assert_eq!(envelope.next_attempt(), Some(0));
        assert!(!envelope.finished());
        envelope.recipients[0].state = RecipientState::Delivered;
        assert_eq!(envelope.next_attempt(), Some(5));
        envelope.recipients[1].state = RecipientState::Failed;
        // Done trying, but the reports are still owed: due at once.
        assert!(!envelope.finished());
        assert_eq!(envelope.next_attempt(), Some(0));
        for recipient in &mut envelope.recipients {
            recipient.reported = true;
        }
        assert!(envelope.finished());
        assert_eq!(envelope.next_attempt(), None);
    }

    #[test]
    fn a_damaged_envelope_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("B2.env");
        std::fs::write(&path, b"{\"id\": 3").expect("write");
        assert!(matches!(
            Envelope::read(&path),
            Err(QueueError::Damaged { .. })
        ));
    }
}
