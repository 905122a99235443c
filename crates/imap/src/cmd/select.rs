//! SELECT, EXAMINE (with CONDSTORE and QRESYNC), CLOSE, UNSELECT, EXPUNGE, UID EXPUNGE.

use std::collections::HashMap;
use std::io;

use std::sync::Arc;

use mailstead_store::private_seen::PrivateSeen;
use mailstead_store::{MailboxError, SystemFlags};

use crate::cmd::mailbox::own_list_line;
use crate::cmd::rev2::nfc_name;
use crate::cmd::search_context::SearchState;
use crate::cmd::{flags_announcement, uid_set_string, write_flags};
use crate::command::{SelectCommand, SequenceSet};
use crate::session::{Done, Selected, Session};
use crate::uids::UidList;

impl Session {
    pub(crate) async fn select(
        &mut self,
        command: SelectCommand,
        read_only: bool,
    ) -> io::Result<Done> {
        if command.qresync.is_some() && !self.qresync {
            return Ok(Done::bad("QRESYNC isn't enabled."));
        }
        if command.condstore {
            self.condstore = true;
        }
        // A SELECT that fails leaves no mailbox selected (RFC 3501 6.3.1).
        if self.selected.take().is_some() && (self.qresync || self.imap4rev2) {
            self.conn
                .write(b"* OK [CLOSED] Previous mailbox closed.\r\n")
                .await?;
        }
        let target = match self.target(&command.mailbox).await {
            Ok(target) => target,
            Err(refused) => return Ok(refused),
        };
        let place = target.place();
        let seen_path = self.private_seen_path(&target);
        let (mail, mut name) = (target.mail, target.name);
        let mut opened = mail.open(&name).await;
        // A name given in another Unicode form than the one it was created in (NFC, see
        // `Session::normalize_new_name`) finds it; the LIST below says so (RFC 9051 6.3.2).
        let mut old_name = None;
        if self.utf8_names()
            && matches!(opened, Err(MailboxError::NotFound(_)))
            && let Some(normalized) = nfc_name(&name)
        {
            opened = mail.open(&normalized).await;
            old_name = Some(std::mem::replace(&mut name, normalized));
        }
        let folder = match opened {
            Ok(folder) => folder,
            Err(err) => return Ok(self.no_for(&err)),
        };
        let snapshot = match folder.sync().await {
            Ok(snapshot) => snapshot,
            Err(err) => return Ok(self.no_for(&err)),
        };
        let private_seen = match seen_path {
            Some(path) => match load_private_seen(path, snapshot.uid_validity).await {
                Ok(seen) => Some(seen),
                Err(err) => return Ok(self.no_for(&err)),
            },
            None => None,
        };
        let snapshot = match &private_seen {
            Some(seen) => Arc::new(seen.apply(&snapshot)),
            None => snapshot,
        };
        let uids: Vec<u32> = snapshot.messages.iter().map(|meta| meta.uid).collect();
        let first_recent = if read_only {
            folder.recent_from()
        } else {
            folder.claim_recent(snapshot.uid_next)
        };
        // IMAP4rev2 has no \Recent: the list stays empty.
        let recent: UidList = uids
            .get(uids.partition_point(|uid| *uid < first_recent)..)
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(|_| !self.imap4rev2)
            .collect();
        let mut out = flags_announcement(&snapshot, read_only);
        out.extend_from_slice(format!("* {} EXISTS\r\n", uids.len()).as_bytes());
        if !self.imap4rev2 {
            out.extend_from_slice(format!("* {} RECENT\r\n", recent.len()).as_bytes());
        }
        // RFC 9051 removed the UNSEEN response code (clients SEARCH UNSEEN instead).
        if !self.imap4rev2
            && let Some(position) = snapshot
                .messages
                .iter()
                .position(|meta| !meta.flags.contains(SystemFlags::SEEN))
        {
            out.extend_from_slice(
                format!("* OK [UNSEEN {}] First unseen.\r\n", position + 1).as_bytes(),
            );
        }
        out.extend_from_slice(
            format!(
                "* OK [UIDVALIDITY {}] UIDs valid.\r\n* OK [UIDNEXT {}] Predicted next UID.\r\n* OK [HIGHESTMODSEQ {}] Highest.\r\n",
                snapshot.uid_validity, snapshot.uid_next, snapshot.highest_modseq
            )
            .as_bytes(),
        );
        if !snapshot.mailbox_id.is_empty() {
            out.extend_from_slice(
                format!("* OK [MAILBOXID ({})] Ok\r\n", snapshot.mailbox_id).as_bytes(),
            );
        }
        if self.imap4rev2 {
            // RFC 9051 6.3.2: the mailbox's LIST, by its own name.
            let utf8 = self.utf8_names();
            let line = own_list_line(&mail, &name, old_name.as_deref(), utf8).await;
            out.extend_from_slice(&line);
        }
        if let Some(qresync) = command
            .qresync
            .as_ref()
            .filter(|params| params.uid_validity == snapshot.uid_validity)
        {
            let known = |uid: u32| {
                qresync
                    .known_uids
                    .as_ref()
                    .is_none_or(|set| set.contains(uid, snapshot.uid_next.saturating_sub(1)))
            };
            let vanished: Vec<u32> = folder
                .vanished_since(qresync.modseq)
                .into_iter()
                .filter(|uid| known(*uid))
                .collect();
            if !vanished.is_empty() {
                out.extend_from_slice(
                    format!("* VANISHED (EARLIER) {}\r\n", uid_set_string(&vanished)).as_bytes(),
                );
            }
            for (index, meta) in snapshot.messages.iter().enumerate() {
                if meta.modseq > qresync.modseq && known(meta.uid) {
                    out.extend_from_slice(
                        format!("* {} FETCH (UID {} ", index + 1, meta.uid).as_bytes(),
                    );
                    let is_recent = recent.position(meta.uid).is_some();
                    write_flags(&mut out, meta, &snapshot, is_recent);
                    out.extend_from_slice(format!(" MODSEQ ({}))\r\n", meta.modseq).as_bytes());
                }
            }
        }
        self.conn.write(&out).await?;
        self.selected_place = place;
        self.selected = Some(Box::new(Selected {
            folder,
            read_only,
            uids: uids.into_iter().collect(),
            recent,
            uid_next: snapshot.uid_next,
            known_modseq: snapshot.highest_modseq,
            known_expunges: snapshot.expunge_serial,
            known_keywords: snapshot.keywords.len(),
            own_changes: HashMap::new(),
            search: SearchState::default(),
            private_seen,
        }));
        Ok(Done::ok(if read_only {
            "[READ-ONLY] Examine completed."
        } else {
            "[READ-WRITE] Select completed."
        }))
    }

    /// CLOSE (`expunge`: removes `\Deleted` messages silently first) and UNSELECT.
    pub(crate) async fn close(&mut self, expunge: bool) -> io::Result<Done> {
        let Some(selected) = self.selected.take() else {
            return Ok(Done::bad("No mailbox selected."));
        };
        if expunge
            && !selected.read_only
            && let Err(err) = selected.folder.expunge(None).await
        {
            return Ok(self.no_for(&err));
        }
        Ok(Done::ok(if expunge {
            "Close completed."
        } else {
            "Unselect completed."
        }))
    }

    /// EXPUNGE and UID EXPUNGE; the expunged messages are reported by the refresh that
    /// follows every command.
    pub(crate) async fn expunge(&mut self, set: Option<SequenceSet>) -> io::Result<Done> {
        let Some(selected) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected."));
        };
        if selected.read_only {
            return Ok(Done::no("[READ-ONLY] Mailbox is read-only."));
        }
        let uids = match &set {
            Some(set) => match selected.resolve(set, true) {
                Ok(positions) => Some(
                    positions
                        .iter()
                        .filter_map(|&position| selected.uids.get(position))
                        .collect::<Vec<u32>>(),
                ),
                Err(message) => return Ok(Done::bad(message)),
            },
            None => None,
        };
        let folder = std::sync::Arc::clone(&selected.folder);
        match folder.expunge(uids.as_deref()).await {
            Ok(_) => Ok(Done::ok("Expunge completed.")),
            Err(err) => Ok(self.no_for(&err)),
        }
    }
}

/// Reads a user's `\Seen` file off the I/O threads.
pub(crate) async fn load_private_seen(
    path: std::path::PathBuf,
    uid_validity: u32,
) -> Result<PrivateSeen, MailboxError> {
    tokio::task::spawn_blocking(move || PrivateSeen::load(path, uid_validity))
        .await
        .map_err(|err| MailboxError::Task(err.to_string()))?
}
