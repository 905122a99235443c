//! APPEND (RFC 3501 6.3.11, with UIDPLUS's APPENDUID and LITERAL+). A message up to
//! `framing::STREAM_LITERAL_ABOVE` arrives with its command; a larger one is streamed into the
//! store's spool as it arrives and then linked into the folder, so the server never holds it
//! in memory whatever `[imap] max_append_size` allows.

use std::io;

use mailstead_store::{MailboxError, SpooledMessage};
use time::OffsetDateTime;

use crate::cmd::mailbox::store_name;
use crate::cmd::split_flags;
use crate::command::{AppendMessage, Flag};
use crate::framing::Frame;
use crate::session::{Done, Session};

impl Session {
    pub(crate) async fn append(
        &mut self,
        mailbox: &str,
        flags: &[Flag],
        date: Option<OffsetDateTime>,
        message: AppendMessage,
        utf8: bool,
    ) -> io::Result<Done> {
        let Some(mail) = self.mail().cloned() else {
            return Ok(Done::bad("Please log in first."));
        };
        let (system, keywords) = match split_flags(flags) {
            Ok(split) => split,
            Err(message) => return Ok(Done::bad(message)),
        };
        if matches!(&message, AppendMessage::Inline(bytes) if bytes.is_empty()) {
            return Ok(Done::no("Can't save a zero byte message."));
        }
        let name = match store_name(&mail, mailbox) {
            Ok(name) => name,
            Err(refused) => return Ok(refused),
        };
        let folder = match mail.open(&name).await {
            Ok(folder) => folder,
            Err(MailboxError::NotFound(_)) => {
                return Ok(Done::no("[TRYCREATE] Mailbox doesn't exist."));
            }
            Err(err) => return Ok(self.no_for(&err)),
        };
        let date = date.map(OffsetDateTime::unix_timestamp);
        let appended = match message {
            AppendMessage::Inline(bytes) => folder.append(&bytes, system, &keywords, date).await,
            AppendMessage::Streamed { .. } => match self.spool_streamed(utf8).await? {
                Ok(spooled) => {
                    folder
                        .append_spooled(&spooled, system, &keywords, date)
                        .await
                }
                Err(done) => return Ok(done),
            },
        };
        match appended {
            Ok(uid) => {
                let uid_validity = folder.snapshot().uid_validity;
                Ok(Done::ok(format!(
                    "[APPENDUID {uid_validity} {uid}] Append completed."
                )))
            }
            Err(err) => Ok(self.no_for(&err)),
        }
    }

    /// Takes the streamed literal into a spool file, then the rest of the command line.
    /// `Err(done)` answers the command without storing anything; a literal not taken whole
    /// is dropped by the framer (the session refuses what is left of it).
    /// `utf8`: the literal was `UTF8 (~{n}`, so `)` closes the line.
    async fn spool_streamed(&mut self, utf8: bool) -> io::Result<Result<SpooledMessage, Done>> {
        let mut writer = match self.ctx.mail.begin().await {
            Ok(writer) => writer,
            Err(err) => return Ok(Err(self.no_for(&err))),
        };
        self.conn.accept_stream().await?;
        let idle_timeout = self.ctx.limits.idle_timeout;
        let silent = |_elapsed| io::Error::new(io::ErrorKind::TimedOut, "client silent in APPEND");
        loop {
            let piece = tokio::time::timeout(idle_timeout, self.conn.read_streamed())
                .await
                .map_err(silent)??;
            if piece.is_empty() {
                break;
            }
            if let Err(err) = writer.write_all(piece).await {
                // Dropping the writer removes the spool file.
                return Ok(Err(self.no_for(&MailboxError::from(err))));
            }
        }
        let rest = tokio::time::timeout(idle_timeout, self.conn.read_frame())
            .await
            .map_err(silent)??;
        match rest {
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "client left in APPEND",
                ));
            }
            Some(Frame::Rest(line))
                if matches!(
                    line.strip_prefix(if utf8 { &b")"[..] } else { b"" }),
                    Some(b"\r\n" | b"\n")
                ) => {}
            Some(Frame::Rest(_)) => return Ok(Err(Done::bad("Unexpected extra arguments"))),
            Some(_) => return Ok(Err(Done::bad("Command line too long"))),
        }
        match writer.finish().await {
            Ok(spooled) => Ok(Ok(spooled)),
            Err(err) => Ok(Err(self.no_for(&MailboxError::from(err)))),
        }
    }
}
