//! APPEND (RFC 3501 6.3.11, with UIDPLUS's APPENDUID and LITERAL+), MULTIAPPEND (RFC 3502)
//! and REPLACE (RFC 8508). A message up to `framing::STREAM_LITERAL_ABOVE` arrives with its
//! command; a larger one is streamed into the store's spool as it arrives and then linked
//! into the folder, so the server never holds it in memory whatever `[imap] max_append_size`
//! allows.
//!
//! A CATENATE message (`cmd/catenate.rs`) is built in the spool part by part, within
//! APPENDLIMIT; a TEXT part over 64 KiB is streamed there as such a message is.
//!
//! MULTIAPPEND is all or nothing: every message is taken first (inline, or into the spool),
//! then the store writes them all before any gets a UID (`Folder::append_all`). After a
//! streamed message, the rest of the command line is read by the session: it ends the command
//! or announces the next message's literal, which is streamed too (`Connection::stream_next`),
//! whatever its size.

use std::io;
use std::sync::Arc;

use mailstead_store::{Account, Folder, MailboxError, MessageWriter, NewMessage, SpooledMessage};
use time::OffsetDateTime;

use crate::cmd::{split_flags, uid_set_string};
use crate::command::{AppendItem, AppendMessage, CatenatePart, Flag};
use crate::framing::{Frame, MAX_DISCARD};
use crate::parser::{MAX_APPEND_MESSAGES, NextMessage, parse_append_rest};
use crate::session::{Done, Session};

/// One MULTIAPPEND carries at most this many times APPENDLIMIT in all (500 MiB by default):
/// every message goes to the spool before any is stored, and the spool is not the account's
/// to fill.
const MULTIAPPEND_SIZE_FACTOR: u64 = 10;

fn silent(_: tokio::time::error::Elapsed) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "client silent in APPEND")
}

/// A message taken from the client, ready for the store.
enum Taken {
    Inline(Vec<u8>),
    Spooled(SpooledMessage),
}

/// The streamed message that ends a command's head (a literal, or a CATENATE whose last
/// part is one), with what was checked of it.
struct FirstStreamed {
    flags: mailstead_store::SystemFlags,
    keywords: Vec<String>,
    date: Option<i64>,
    utf8: bool,
    /// What the command brings for it (the whole literal; a CATENATE's TEXT parts).
    size: u64,
    /// A literal the client waits for a continuation for (a CATENATE's are its own to take).
    synchronizing: bool,
    catenate: Option<Vec<CatenatePart>>,
}

/// A message with its flags split and its date in Unix seconds.
struct Ready {
    taken: Taken,
    flags: mailstead_store::SystemFlags,
    keywords: Vec<String>,
    date: Option<i64>,
}

impl Session {
    pub(crate) async fn append(
        &mut self,
        mailbox: &str,
        flags: &[Flag],
        date: Option<OffsetDateTime>,
        message: AppendMessage,
        utf8: bool,
    ) -> io::Result<Done> {
        let item = AppendItem {
            flags: flags.to_vec(),
            date,
            message,
            utf8,
        };
        self.multi_append(mailbox, vec![item]).await
    }

    /// APPEND of one or more messages; `[APPENDUID v uid-set]` on success.
    pub(crate) async fn multi_append(
        &mut self,
        mailbox: &str,
        messages: Vec<AppendItem>,
    ) -> io::Result<Done> {
        Ok(match self.store_messages(mailbox, messages).await? {
            Ok((folder, uids)) => {
                let uid_validity = folder.snapshot().uid_validity;
                Done::ok(format!(
                    "[APPENDUID {uid_validity} {}] Append completed.",
                    uid_set_string(&uids)
                ))
            }
            Err(done) => done,
        })
    }

    /// REPLACE / UID REPLACE: the new message is appended first; only once it is stored is
    /// the old one expunged, so a failed append leaves the old message in place.
    pub(crate) async fn replace(
        &mut self,
        uid: bool,
        target: u32,
        mailbox: &str,
        message: AppendItem,
    ) -> io::Result<Done> {
        let Some(selected) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected."));
        };
        let old_uid = if uid {
            selected.uids.position(target).map(|_| target)
        } else {
            target
                .checked_sub(1)
                .and_then(|index| selected.uids.get(index as usize))
        };
        let Some(old_uid) = old_uid else {
            return Ok(if uid {
                Done::no("[NONEXISTENT] No such message.")
            } else {
                Done::bad("Invalid message sequence number.")
            });
        };
        if selected.read_only {
            return Ok(Done::no("[READ-ONLY] Mailbox is read-only."));
        }
        let source = Arc::clone(&selected.folder);
        let (folder, uids) = match self.store_messages(mailbox, vec![message]).await? {
            Ok(stored) => stored,
            Err(done) => return Ok(done),
        };
        let uid_validity = folder.snapshot().uid_validity;
        let line = format!(
            "* OK [APPENDUID {uid_validity} {}] Replacement Message ready\r\n",
            uid_set_string(&uids)
        );
        self.conn.write(line.as_bytes()).await?;
        // The EXPUNGE follows with this command's updates.
        if let Err(err) = source.remove(&[old_uid]).await {
            return Ok(self.no_for(&err));
        }
        Ok(Done::ok("Replace completed."))
    }

    /// Takes every message of the command, then stores them all or none. `Err(done)` is the
    /// answer when nothing was stored.
    async fn store_messages(
        &mut self,
        mailbox: &str,
        messages: Vec<AppendItem>,
    ) -> io::Result<Result<(Arc<Folder>, Vec<u32>), Done>> {
        let Some(mail) = self.mail().cloned() else {
            return Ok(Err(Done::bad("Please log in first.")));
        };
        // Everything that can be refused before the (first streamed) literal is taken. After
        // a refusal only the streamed message (always the last) matters: what is still on
        // its way is dropped, never read as commands.
        let mut ready = Vec::with_capacity(messages.len());
        let mut streamed = None;
        let mut refused: Option<Done> = None;
        for item in messages {
            let (flags, keywords, date) = match &refused {
                None => match self.check_append_item(&item) {
                    Ok(checked) => checked,
                    Err(done) => {
                        refused = Some(done);
                        (mailstead_store::SystemFlags::empty(), Vec::new(), None)
                    }
                },
                Some(_) => (mailstead_store::SystemFlags::empty(), Vec::new(), None),
            };
            match item.message {
                AppendMessage::Streamed {
                    size,
                    synchronizing,
                } => {
                    streamed = Some(FirstStreamed {
                        flags,
                        keywords,
                        date,
                        utf8: item.utf8,
                        size,
                        synchronizing,
                        catenate: None,
                    });
                }
                // Built after the mailbox is found, as a streamed literal is taken.
                AppendMessage::Catenate(parts)
                    if matches!(parts.last(), Some(CatenatePart::Streamed { .. })) =>
                {
                    streamed = Some(FirstStreamed {
                        flags,
                        keywords,
                        date,
                        utf8: false,
                        size: parts.iter().map(CatenatePart::announced_size).sum(),
                        synchronizing: false,
                        catenate: Some(parts),
                    });
                }
                _ if refused.is_some() => {}
                AppendMessage::Inline(bytes) if bytes.is_empty() => {
                    refused = Some(Done::no("Can't save a zero byte message."));
                }
                AppendMessage::Inline(bytes) => ready.push(Ready {
                    taken: Taken::Inline(bytes),
                    flags,
                    keywords,
                    date,
                }),
                AppendMessage::Catenate(parts) => {
                    match self.catenate(&mail, parts, None).await?.message {
                        Ok(spooled) => ready.push(Ready {
                            taken: Taken::Spooled(spooled),
                            flags,
                            keywords,
                            date,
                        }),
                        Err(done) => refused = Some(done),
                    }
                }
            }
        }
        let mut folder = None;
        if refused.is_none() {
            match self.target(mailbox).await {
                Ok(target) => match target.mail.open(&target.name).await {
                    Ok(opened) => folder = Some(opened),
                    Err(MailboxError::NotFound(_)) => {
                        refused = Some(Done::no("[TRYCREATE] Mailbox doesn't exist."));
                    }
                    Err(err) => refused = Some(self.no_for(&err)),
                },
                Err(done) => refused = Some(done),
            }
        }
        if let Some(first) = streamed {
            let inline: u64 = ready
                .iter()
                .map(|m| match &m.taken {
                    Taken::Inline(bytes) => bytes.len() as u64,
                    Taken::Spooled(_) => 0,
                })
                .sum();
            let before = (ready.len(), inline + first.size);
            match self
                .take_streamed_messages(&mail, first, before, refused.take())
                .await?
            {
                Ok(more) => ready.extend(more),
                Err(done) => return Ok(Err(done)),
            }
        }
        if let Some(done) = refused {
            return Ok(Err(done));
        }
        let Some(folder) = folder else {
            return Ok(Err(Done::no("Append failed.")));
        };
        // The spool files stay in `spooled` until the store has linked them.
        let mut spooled = Vec::new();
        let mut messages = Vec::with_capacity(ready.len());
        for message in ready {
            messages.push(match message.taken {
                Taken::Inline(bytes) => {
                    NewMessage::bytes(bytes, message.flags, &message.keywords, message.date)
                }
                Taken::Spooled(file) => {
                    let new =
                        NewMessage::spooled(&file, message.flags, &message.keywords, message.date);
                    spooled.push(file);
                    new
                }
            });
        }
        let stored = folder.append_all(messages).await;
        drop(spooled);
        match stored {
            Ok(uids) => Ok(Ok((folder, uids))),
            Err(err) => Ok(Err(self.no_for(&err))),
        }
    }

    /// The checks on one APPEND message before any of its bytes are taken: its flags split,
    /// its date in Unix seconds.
    fn check_append_item(
        &self,
        item: &AppendItem,
    ) -> Result<(mailstead_store::SystemFlags, Vec<String>, Option<i64>), Done> {
        if item.utf8 && !self.utf8_accept {
            return Err(Done::bad("UTF8 APPEND needs ENABLE UTF8=ACCEPT first."));
        }
        let (flags, keywords) = split_flags(&item.flags).map_err(Done::bad)?;
        Ok((
            flags,
            keywords,
            item.date.map(OffsetDateTime::unix_timestamp),
        ))
    }

    /// Takes the streamed literal the command's head announced and every message the rest
    /// of the command line announces after it, each into the spool. After a refusal (or
    /// when `refused` already) the literals still on their way (LITERAL+) are read and
    /// dropped up to the command's end; a synchronizing one is never asked for.
    async fn take_streamed_messages(
        &mut self,
        mail: &Account,
        first: FirstStreamed,
        before: (usize, u64),
        mut refused: Option<Done>,
    ) -> io::Result<Result<Vec<Ready>, Done>> {
        let (before, mut total) = before;
        let total_limit =
            (self.ctx.limits.max_literal as u64).saturating_mul(MULTIAPPEND_SIZE_FACTOR);
        let mut taken = Vec::new();
        let FirstStreamed {
            mut flags,
            mut keywords,
            mut date,
            mut utf8,
            synchronizing,
            mut catenate,
            ..
        } = first;
        if let Some(done) = refused.take_if(|_| catenate.is_none() && synchronizing) {
            // Never asked for: the client ends the command on our answer.
            return Ok(Err(done));
        }
        loop {
            let rest = if let Some(parts) = catenate.take() {
                // A CATENATE reads its own line up to its `)`; the rest is read on below.
                let catenated = self.catenate(mail, parts, refused.take()).await?;
                match catenated.message {
                    Ok(spooled) => taken.push(Ready {
                        taken: Taken::Spooled(spooled),
                        flags,
                        keywords: std::mem::take(&mut keywords),
                        date,
                    }),
                    Err(done) => refused = Some(done),
                }
                match catenated.rest {
                    Some(rest) => rest,
                    None => {
                        return Ok(Err(
                            refused.unwrap_or_else(|| Done::bad("The CATENATE ended before its )"))
                        ));
                    }
                }
            } else {
                if refused.is_none() {
                    match self.spool_literal().await? {
                        Ok(spooled) => taken.push(Ready {
                            taken: Taken::Spooled(spooled),
                            flags,
                            keywords: std::mem::take(&mut keywords),
                            date,
                        }),
                        Err(done) => {
                            self.drop_literal().await?;
                            refused = Some(done);
                        }
                    }
                } else {
                    self.drop_literal().await?;
                }
                match self.read_rest().await? {
                    Ok(rest) => rest,
                    Err(done) => return Ok(Err(refused.unwrap_or(done))),
                }
            };
            let next = match parse_append_rest(&rest, utf8) {
                Ok(None) => break,
                Ok(Some(next)) => next,
                Err(message) => {
                    // Unparsable: whatever literal it announces is dropped (or never comes).
                    let refusal = refused.take().unwrap_or_else(|| Done::bad(message));
                    return self.refuse_announced(&rest, refusal).await;
                }
            };
            let NextMessage {
                flags: next_flags,
                date: next_date,
                size,
                synchronizing,
                utf8: next_utf8,
            } = next;
            utf8 = next_utf8;
            self.conn.stream_next(size, synchronizing);
            total = total.saturating_add(size);
            if refused.is_none() {
                if before + taken.len() >= MAX_APPEND_MESSAGES {
                    refused = Some(Done::no(format!(
                        "[LIMIT] More than {MAX_APPEND_MESSAGES} messages in one APPEND."
                    )));
                } else if total > total_limit {
                    refused = Some(Done::no(format!(
                        "[LIMIT] One APPEND may carry at most {total_limit} bytes."
                    )));
                } else if size > self.ctx.limits.max_literal as u64 {
                    refused = Some(Done::no("[TOOBIG] Message too large."));
                } else if utf8 && !self.utf8_accept {
                    refused = Some(Done::bad("UTF8 APPEND needs ENABLE UTF8=ACCEPT first."));
                } else if size == 0 {
                    refused = Some(Done::no("Can't save a zero byte message."));
                } else {
                    match split_flags(&next_flags) {
                        Ok((next_system, next_keywords)) => {
                            flags = next_system;
                            keywords = next_keywords;
                            date = next_date.map(OffsetDateTime::unix_timestamp);
                        }
                        Err(message) => refused = Some(Done::bad(message)),
                    }
                }
            }
            if let Some(done) = refused.take() {
                if synchronizing {
                    // Never asked for: the client ends the command on our answer.
                    self.conn.refuse_stream();
                    return Ok(Err(done));
                }
                if size > MAX_DISCARD {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "refused literal too large to drop",
                    ));
                }
                refused = Some(done);
            }
        }
        Ok(match refused {
            Some(done) => Err(done),
            None => Ok(taken),
        })
    }

    /// A refused command line that announces a literal: a synchronizing one never comes, a
    /// non-synchronizing one is dropped as it arrives with the rest of its line.
    async fn refuse_announced(
        &mut self,
        rest: &[u8],
        refusal: Done,
    ) -> io::Result<Result<Vec<Ready>, Done>> {
        self.refuse_literal_on(rest)?;
        Ok(Err(refusal))
    }

    /// Drops the literal a refused line announces at its end, if any (see
    /// [`Session::refuse_announced`]).
    pub(crate) fn refuse_literal_on(&mut self, line: &[u8]) -> io::Result<()> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some((size, synchronizing)) = crate::framing::literal_announcement(line) {
            if !synchronizing && size > MAX_DISCARD {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "refused literal too large to drop",
                ));
            }
            self.conn.stream_next(size, synchronizing);
            self.conn.refuse_stream();
        }
        Ok(())
    }

    /// Takes the streamed literal into a spool file. `Err(done)` answers the command without
    /// storing anything; the literal has then been read to its end and dropped.
    async fn spool_literal(&mut self) -> io::Result<Result<SpooledMessage, Done>> {
        let mut writer = match self.ctx.mail.begin().await {
            Ok(writer) => writer,
            Err(err) => return Ok(Err(self.no_for(&err))),
        };
        if let Err(done) = self.stream_into(&mut writer).await? {
            // Dropping the writer removes the spool file.
            return Ok(Err(done));
        }
        match writer.finish().await {
            Ok(spooled) => Ok(Ok(spooled)),
            Err(err) => Ok(Err(self.no_for(&MailboxError::from(err)))),
        }
    }

    /// Takes the streamed literal's bytes into `writer` as they arrive (asking for them
    /// first when it is synchronizing). When the spool fails, the rest of the literal is
    /// read and dropped, and `Err(done)` is the answer.
    pub(crate) async fn stream_into(
        &mut self,
        writer: &mut MessageWriter,
    ) -> io::Result<Result<(), Done>> {
        self.conn.accept_stream().await?;
        let idle_timeout = self.ctx.limits.idle_timeout;
        let mut failed = None;
        loop {
            let piece = tokio::time::timeout(idle_timeout, self.conn.read_streamed())
                .await
                .map_err(silent)??;
            if piece.is_empty() {
                break;
            }
            if failed.is_none()
                && let Err(err) = writer.write_all(piece).await
            {
                failed = Some(MailboxError::from(err));
            }
        }
        Ok(match failed {
            Some(err) => Err(self.no_for(&err)),
            None => Ok(()),
        })
    }

    /// Reads and drops what is left of the streamed literal (LITERAL+ bytes already on their
    /// way, or the rest of one whose spooling failed).
    pub(crate) async fn drop_literal(&mut self) -> io::Result<()> {
        self.conn.accept_stream().await?;
        let idle_timeout = self.ctx.limits.idle_timeout;
        loop {
            let piece = tokio::time::timeout(idle_timeout, self.conn.read_streamed())
                .await
                .map_err(silent)??;
            if piece.is_empty() {
                return Ok(());
            }
        }
    }

    /// The rest of the command line after a streamed literal, with its line end.
    pub(crate) async fn read_rest(&mut self) -> io::Result<Result<Vec<u8>, Done>> {
        let idle_timeout = self.ctx.limits.idle_timeout;
        let rest = tokio::time::timeout(idle_timeout, self.conn.read_frame())
            .await
            .map_err(silent)??;
        match rest {
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client left in APPEND",
            )),
            Some(Frame::Rest(line)) => Ok(Ok(line)),
            Some(_) => Ok(Err(Done::bad("Command line too long"))),
        }
    }
}
