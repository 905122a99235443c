//! The maildrop as one session sees it (RFC 1939 5: message numbers fixed for the session):
//! INBOX's messages at login with their sizes and UIDLs, and which ones the client deleted
//! and retrieved. The store is only changed at QUIT, from what this says.

use std::collections::HashMap;

use mailstead_store::{Pop3Record, Snapshot};

/// One message of the maildrop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub uid: u32,
    /// The CRLF size (the store's `W=`), which LIST and STAT give and RETR sends.
    pub size: u64,
    pub uidl: String,
}

/// Why a message number is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoMessage {
    #[error("There's no message {0}.")]
    OutOfRange(u32),
    #[error("Message is deleted.")]
    Deleted,
}

#[derive(Debug, Default)]
pub struct Maildrop {
    messages: Vec<Message>,
    deleted: Vec<bool>,
    retrieved: Vec<bool>,
}

impl Maildrop {
    /// The maildrop of a snapshot whose sizes are all known. `recorded` is what
    /// `dovecot-uidlist` holds for POP3 (a migration's UIDLs and order); every other
    /// message gets Dovecot's default `pop3_uidl_format = %08Xu%08Xv` and follows in UID
    /// order, so a client moved from Dovecot sees the same list.
    pub fn new(snapshot: &Snapshot, recorded: &HashMap<u32, Pop3Record>) -> Maildrop {
        let mut messages: Vec<(Option<u32>, Message)> = snapshot
            .messages
            .iter()
            .map(|meta| {
                let record = recorded.get(&meta.uid);
                let uidl = match record.and_then(|record| record.uidl.as_deref()) {
                    Some(uidl) if valid_uidl(uidl) => uidl.to_owned(),
                    _ => default_uidl(meta.uid, snapshot.uid_validity),
                };
                let message = Message {
                    uid: meta.uid,
                    size: meta.rfc822_size.unwrap_or(0),
                    uidl,
                };
                (record.and_then(|record| record.order), message)
            })
            .collect();
        // Messages with an order first, lowest first; the rest keep UID order (a stable sort
        // of a list in UID order).
        messages.sort_by_key(|(order, _)| order.map_or((1, 0), |order| (0, order)));
        let messages: Vec<Message> = messages.into_iter().map(|(_, message)| message).collect();
        let count = messages.len();
        Maildrop {
            messages,
            deleted: vec![false; count],
            retrieved: vec![false; count],
        }
    }

    /// Messages not marked deleted and their total size (STAT).
    pub fn stat(&self) -> (usize, u64) {
        self.present().fold((0, 0), |(count, size), (_, message)| {
            (count + 1, size + message.size)
        })
    }

    /// Messages not marked deleted, with their numbers (LIST, UIDL).
    pub fn present(&self) -> impl Iterator<Item = (u32, &Message)> {
        self.messages
            .iter()
            .zip(&self.deleted)
            .enumerate()
            .filter(|(_, (_, deleted))| !**deleted)
            .map(|(i, (message, _))| (number_of(i), message))
    }

    /// Message `number` (from 1), unless out of range or deleted.
    ///
    /// # Errors
    ///
    /// [`NoMessage`].
    pub fn get(&self, number: u32) -> Result<&Message, NoMessage> {
        let i = self.index(number)?;
        if self.deleted.get(i).copied().unwrap_or(true) {
            return Err(NoMessage::Deleted);
        }
        self.messages.get(i).ok_or(NoMessage::OutOfRange(number))
    }

    /// Marks message `number` deleted (DELE).
    ///
    /// # Errors
    ///
    /// [`NoMessage`].
    pub fn delete(&mut self, number: u32) -> Result<(), NoMessage> {
        self.get(number)?;
        let i = self.index(number)?;
        if let Some(deleted) = self.deleted.get_mut(i) {
            *deleted = true;
        }
        Ok(())
    }

    /// Notes that message `number` was retrieved whole (RETR): it becomes `\Seen` at QUIT.
    pub fn retrieved(&mut self, number: u32) {
        if let Ok(i) = self.index(number)
            && let Some(retrieved) = self.retrieved.get_mut(i)
        {
            *retrieved = true;
        }
    }

    /// Unmarks every deletion (RSET).
    pub fn reset(&mut self) {
        self.deleted.fill(false);
    }

    /// UIDs to expunge at QUIT.
    pub fn to_expunge(&self) -> Vec<u32> {
        self.messages
            .iter()
            .zip(&self.deleted)
            .filter(|(_, deleted)| **deleted)
            .map(|(message, _)| message.uid)
            .collect()
    }

    /// UIDs to mark `\Seen` at QUIT: retrieved and not deleted.
    pub fn to_mark_seen(&self) -> Vec<u32> {
        self.messages
            .iter()
            .zip(self.deleted.iter().zip(&self.retrieved))
            .filter(|(_, (deleted, retrieved))| !**deleted && **retrieved)
            .map(|(message, _)| message.uid)
            .collect()
    }

    fn index(&self, number: u32) -> Result<usize, NoMessage> {
        let i = usize::try_from(number)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .filter(|&i| i < self.messages.len());
        i.ok_or(NoMessage::OutOfRange(number))
    }
}

fn number_of(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// Dovecot 2.3's default `pop3_uidl_format = %08Xu%08Xv`: the UID and the UIDVALIDITY as
/// eight hex digits each. Dovecot 2.3's `%X` writes lower-case digits (what its POP3 server
/// sends, checked against it in the migration test), so these are lower-case too.
pub fn default_uidl(uid: u32, uid_validity: u32) -> String {
    format!("{uid:08x}{uid_validity:08x}")
}

/// RFC 1939 7: one to 70 characters from 0x21 to 0x7E. A recorded UIDL that breaks this is
/// not sent (the default takes its place).
pub fn valid_uidl(uidl: &str) -> bool {
    (1..=70).contains(&uidl.len()) && uidl.bytes().all(|byte| (0x21..=0x7e).contains(&byte))
}

#[cfg(test)]
mod tests {
    use mailstead_store::{MessageMeta, SystemFlags};

    use super::*;

    fn snapshot(sizes: &[(u32, u64)]) -> Snapshot {
        Snapshot {
            uid_validity: 0x5f5e_1234,
            uid_next: 100,
            highest_modseq: 1,
            expunge_serial: 0,
            messages: sizes
                .iter()
                .map(|&(uid, size)| MessageMeta {
                    uid,
                    flags: SystemFlags::empty(),
                    keywords: 0,
                    modseq: 1,
                    rfc822_size: Some(size),
                    internal_date: 0,
                    save_date: 0,
                    email_id: u64::from(uid),
                })
                .collect(),
            keywords: Vec::new(),
            mailbox_id: "".into(),
        }
    }

    fn uidl(uidl: &str) -> Pop3Record {
        Pop3Record {
            uidl: Some(uidl.to_owned()),
            order: None,
        }
    }

    #[test]
    fn uidls_are_dovecots_default_unless_recorded() {
        let recorded = HashMap::from([(3, uidl("migrated-uidl")), (7, uidl("has space"))]);
        let drop = Maildrop::new(&snapshot(&[(1, 10), (3, 20), (7, 30), (255, 1)]), &recorded);
        let uidls: Vec<&str> = drop.present().map(|(_, m)| m.uidl.as_str()).collect();
        assert_eq!(
            uidls,
            [
                "000000015f5e1234",
                "migrated-uidl",
                "000000075f5e1234",
                "000000ff5f5e1234"
            ]
        );
    }

    #[test]
    fn a_recorded_order_comes_first() {
        let order = |order| Pop3Record {
            uidl: None,
            order: Some(order),
        };
        let recorded = HashMap::from([(4, order(2)), (2, order(1))]);
        let drop = Maildrop::new(&snapshot(&[(1, 1), (2, 2), (3, 3), (4, 4)]), &recorded);
        let uids: Vec<u32> = drop.present().map(|(_, m)| m.uid).collect();
        assert_eq!(uids, [2, 4, 1, 3]);
    }

    #[test]
    fn deletions_hide_messages_until_reset() {
        let mut drop = Maildrop::new(&snapshot(&[(1, 10), (2, 20), (5, 30)]), &HashMap::new());
        assert_eq!(drop.stat(), (3, 60));
        assert_eq!(drop.delete(2), Ok(()));
        assert_eq!(drop.delete(2), Err(NoMessage::Deleted));
        assert_eq!(drop.get(2), Err(NoMessage::Deleted));
        assert_eq!(drop.get(4), Err(NoMessage::OutOfRange(4)));
        assert_eq!(drop.get(0), Err(NoMessage::OutOfRange(0)));
        assert_eq!(drop.stat(), (2, 40));
        let numbers: Vec<u32> = drop.present().map(|(n, _)| n).collect();
        assert_eq!(numbers, [1, 3], "numbers stay as they were");
        assert_eq!(drop.to_expunge(), [2]);
        drop.reset();
        assert_eq!(drop.stat(), (3, 60));
        assert!(drop.to_expunge().is_empty());
    }

    #[test]
    fn retrieved_messages_become_seen_unless_deleted() {
        let mut drop = Maildrop::new(&snapshot(&[(1, 10), (2, 20), (3, 30)]), &HashMap::new());
        drop.retrieved(1);
        drop.retrieved(2);
        drop.retrieved(9);
        drop.delete(2).unwrap();
        assert_eq!(drop.to_mark_seen(), [1]);
        assert_eq!(drop.to_expunge(), [2]);
    }

    #[test]
    fn uidl_characters() {
        assert!(valid_uidl("abc~!"));
        assert!(!valid_uidl(""));
        assert!(!valid_uidl("a b"));
        assert!(!valid_uidl(&"a".repeat(71)));
        assert!(!valid_uidl("é"));
    }
}
