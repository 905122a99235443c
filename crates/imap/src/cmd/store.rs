//! STORE (with CONDSTORE's UNCHANGEDSINCE), COPY and MOVE, and their UID forms.

use std::io;
use std::sync::Arc;

use mailstead_store::{FlagOperation, MailboxError};

use crate::cmd::{split_flags, uid_set_string, write_flags};
use crate::command::{SequenceSet, StoreCommand, StoreOperation};
use crate::session::{Done, Session};

impl Session {
    pub(crate) async fn store(&mut self, store: StoreCommand) -> io::Result<Done> {
        if store.unchanged_since.is_some() {
            self.enable_condstore().await?;
        }
        let condstore = self.condstore;
        let Some(selected) = self.selected.as_mut() else {
            return Ok(Done::bad("No mailbox selected."));
        };
        if selected.read_only {
            return Ok(Done::no("[READ-ONLY] Mailbox is read-only."));
        }
        let positions = match selected.resolve(&store.set, store.uid) {
            Ok(positions) => positions,
            Err(message) => return Ok(Done::bad(message)),
        };
        let (flags, keywords) = match split_flags(&store.flags) {
            Ok(split) => split,
            Err(message) => return Ok(Done::bad(message)),
        };
        let operation = match store.operation {
            StoreOperation::Replace => FlagOperation::Replace,
            StoreOperation::Add => FlagOperation::Add,
            StoreOperation::Remove => FlagOperation::Remove,
        };
        let targets: Vec<(usize, u32)> = positions
            .iter()
            .filter_map(|&position| selected.uids.get(position).map(|uid| (position, uid)))
            .collect();
        let uids: Vec<u32> = targets.iter().map(|(_, uid)| *uid).collect();
        let folder = Arc::clone(&selected.folder);
        let result = match self
            .store_flags(
                &folder,
                &uids,
                operation,
                flags,
                &keywords,
                store.unchanged_since,
            )
            .await
        {
            Ok(result) => result,
            Err(err) => return Ok(self.no_for(&err)),
        };
        let snapshot = self.seen_view(folder.snapshot());
        let Some(selected) = self.selected.as_mut() else {
            return Ok(Done::bad("No mailbox selected."));
        };
        let mut out = Vec::new();
        if snapshot.keywords.len() != selected.known_keywords {
            selected.known_keywords = snapshot.keywords.len();
            out.extend_from_slice(&crate::cmd::flags_announcement(&snapshot, false));
        }
        for (position, uid) in &targets {
            let Some(meta) = snapshot
                .position(*uid)
                .and_then(|i| snapshot.messages.get(i))
            else {
                continue;
            };
            let updated = result.updated.contains(uid);
            if updated {
                selected.own_changes.insert(*uid, meta.modseq);
            }
            if result.modified.contains(uid) {
                continue;
            }
            // .SILENT still reports the new MODSEQ to a CONDSTORE client (RFC 7162 3.1.3).
            if store.silent && !(condstore && updated) {
                continue;
            }
            out.extend_from_slice(format!("* {} FETCH (", position + 1).as_bytes());
            let mut items = Vec::new();
            if store.uid {
                items.push(format!("UID {uid}").into_bytes());
            }
            if !store.silent {
                let mut flags = Vec::new();
                write_flags(&mut flags, meta, &snapshot, selected.is_recent(*uid));
                items.push(flags);
            }
            if condstore {
                items.push(format!("MODSEQ ({})", meta.modseq).into_bytes());
            }
            out.extend_from_slice(&items.join(&b' '));
            out.extend_from_slice(b")\r\n");
        }
        self.conn.write(&out).await?;
        if !result.modified.is_empty() {
            // Sequence numbers for STORE, UIDs for UID STORE (RFC 7162 3.1.3).
            let numbers: Vec<u32> = targets
                .iter()
                .filter(|(_, uid)| result.modified.contains(uid))
                .map(|(position, uid)| {
                    if store.uid {
                        *uid
                    } else {
                        u32::try_from(position + 1).unwrap_or(u32::MAX)
                    }
                })
                .collect();
            return Ok(Done::ok(format!(
                "[MODIFIED {}] Conditional store failed.",
                uid_set_string(&numbers)
            )));
        }
        Ok(Done::ok("Store completed."))
    }

    /// COPY and MOVE (`move_messages`), with UIDPLUS's COPYUID.
    pub(crate) async fn copy(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        mailbox: &str,
        move_messages: bool,
    ) -> io::Result<Done> {
        let Some(selected) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected."));
        };
        if move_messages && selected.read_only {
            return Ok(Done::no("[READ-ONLY] Mailbox is read-only."));
        }
        let positions = match selected.resolve(set, uid) {
            Ok(positions) => positions,
            Err(message) => return Ok(Done::bad(message)),
        };
        let uids: Vec<u32> = positions
            .iter()
            .filter_map(|&position| selected.uids.get(position))
            .collect();
        let source = Arc::clone(&selected.folder);
        let target = match self.target(mailbox).await {
            Ok(target) => target,
            Err(refused) => return Ok(refused),
        };
        let destination = match target.mail.open(&target.name).await {
            Ok(folder) => folder,
            Err(MailboxError::NotFound(_)) => {
                return Ok(Done::no("[TRYCREATE] Mailbox doesn't exist."));
            }
            Err(err) => return Ok(self.no_for(&err)),
        };
        if uids.is_empty() {
            return Ok(Done::ok("No messages found."));
        }
        let result = if move_messages {
            source.move_to(&uids, &destination).await
        } else {
            source.copy_to(&uids, &destination).await
        };
        let pairs = match result {
            Ok(pairs) => pairs,
            Err(err) => return Ok(self.no_for(&err)),
        };
        let uid_validity = destination.snapshot().uid_validity;
        let (from, to): (Vec<u32>, Vec<u32>) = pairs.into_iter().unzip();
        let copyuid = format!(
            "[COPYUID {uid_validity} {} {}]",
            join_in_order(&from),
            join_in_order(&to)
        );
        if move_messages {
            // RFC 6851: COPYUID goes in an untagged OK before the expunges.
            self.conn
                .write(format!("* OK {copyuid} Moved UIDs.\r\n").as_bytes())
                .await?;
            return Ok(Done::ok("Move completed."));
        }
        Ok(Done::ok(format!("{copyuid} Copy completed.")))
    }
}

/// UIDs in the order given: COPYUID pairs source and destination UIDs by position, so the
/// two lists must not be sorted apart.
fn join_in_order(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
