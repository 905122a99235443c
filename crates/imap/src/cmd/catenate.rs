//! CATENATE (RFC 4469) with URL-PARTIAL (RFC 5550): an APPEND message made of literal text
//! and parts of messages already in the account, named by relative IMAP URLs (RFC 5092):
//! `/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.MIME/;PARTIAL=0.1024`. Only URLs to this
//! account's own folders are taken (a relative URL starting with `/`); anything else is
//! `[BADURL]`. The whole message is bounded by APPENDLIMIT (`[TOOBIG]`) and built in the
//! store's spool, never in memory: a TEXT literal over 64 KiB is streamed there as it
//! arrives, as a large APPEND literal is.

use std::io;

use mailstead_store::{Account, MailboxError, SpooledMessage, form};

use crate::cmd::mailbox::store_name;
use crate::command::{CatenatePart, Partial};
use crate::message::Message;
use crate::parser::{CatenateNext, CatenateRest, parse_catenate_rest, parse_section};
use crate::session::{Done, Session};

/// What a URL names: a message, maybe one section of it, maybe a range of that.
#[derive(Debug, PartialEq, Eq)]
struct ImapUrl {
    /// As the client names it (modified UTF-7).
    mailbox: String,
    uid_validity: Option<u32>,
    uid: u32,
    section: Option<String>,
    partial: Option<Partial>,
}

/// A CATENATE's message, and where its command line stands.
pub(crate) struct Catenated {
    /// The message in the spool, or the answer to the command.
    pub message: Result<SpooledMessage, Done>,
    /// After a streamed TEXT part: the command line after the CATENATE's `)` (the end of the
    /// command, or the next message of a MULTIAPPEND), or `None` when the command ended
    /// without it (a refused synchronizing literal is never sent; an unparsable line).
    pub rest: Option<Vec<u8>>,
}

impl Session {
    /// Builds a CATENATE's message in the spool, part by part, within APPENDLIMIT (or, when
    /// the command is `refused` already, only reads what it still sends). A
    /// [`CatenatePart::Streamed`] TEXT literal is taken as it arrives, as a streamed APPEND
    /// literal is, then the parts the rest of the line names, up to the `)`. After a refusal
    /// the parts still on their way are read and dropped (a synchronizing literal is never
    /// asked for), so the command ends where the client ends it.
    pub(crate) async fn catenate(
        &mut self,
        mail: &Account,
        mut parts: Vec<CatenatePart>,
        mut refused: Option<Done>,
    ) -> io::Result<Catenated> {
        let limit = self.ctx.limits.max_literal as u64;
        let mut writer = None;
        if refused.is_none() {
            match self.ctx.mail.begin().await {
                Ok(opened) => writer = Some(opened),
                Err(err) => refused = Some(self.no_for(&err)),
            }
        }
        let mut written: u64 = 0;
        let mut count = 0;
        let mut rest = None;
        loop {
            count += parts.len();
            let mut streamed = None;
            for part in parts {
                let bytes = match part {
                    CatenatePart::Streamed {
                        size,
                        synchronizing,
                    } => {
                        streamed = Some((size, synchronizing));
                        continue;
                    }
                    _ if refused.is_some() => continue,
                    CatenatePart::Text(bytes) => bytes,
                    CatenatePart::Url(url) => match self.url_bytes(mail, &url).await? {
                        Ok(bytes) => bytes,
                        Err(reason) => {
                            refused = Some(Done::no(format!(
                                "[BADURL {}] {reason}",
                                printable_url(&url)
                            )));
                            continue;
                        }
                    },
                };
                written = written.saturating_add(bytes.len() as u64);
                if written > limit {
                    refused = Some(Done::no("[TOOBIG] Message too large."));
                } else if let Some(writer) = writer.as_mut()
                    && let Err(err) = writer.write_all(&bytes).await
                {
                    refused = Some(self.no_for(&MailboxError::from(err)));
                }
            }
            let Some((size, synchronizing)) = streamed else {
                break;
            };
            written = written.saturating_add(size);
            if refused.is_none() && written > limit {
                refused = Some(Done::no("[TOOBIG] Message too large."));
            }
            match (refused.is_some(), writer.as_mut()) {
                (false, Some(writer)) => {
                    if let Err(done) = self.stream_into(writer).await? {
                        refused = Some(done);
                    }
                }
                _ if synchronizing => {
                    // Never asked for: the client ends the command on our answer.
                    self.conn.refuse_stream();
                    return Ok(Catenated {
                        message: Err(
                            refused.unwrap_or_else(|| Done::no("Message could not be saved."))
                        ),
                        rest: None,
                    });
                }
                _ => self.drop_literal().await?,
            }
            let line = match self.read_rest().await? {
                Ok(line) => line,
                Err(done) => {
                    return Ok(Catenated {
                        message: Err(refused.unwrap_or(done)),
                        rest: None,
                    });
                }
            };
            match parse_catenate_rest(&line, count) {
                Ok(CatenateRest { urls, next }) => {
                    parts = urls.into_iter().map(CatenatePart::Url).collect();
                    match next {
                        CatenateNext::Text {
                            size,
                            synchronizing,
                        } => {
                            self.conn.stream_next(size, synchronizing);
                            parts.push(CatenatePart::Streamed {
                                size,
                                synchronizing,
                            });
                        }
                        CatenateNext::End(after) => rest = Some(after),
                    }
                }
                Err(message) => {
                    let refusal = refused.unwrap_or_else(|| Done::bad(message));
                    self.refuse_literal_on(&line)?;
                    return Ok(Catenated {
                        message: Err(refusal),
                        rest: None,
                    });
                }
            }
        }
        let message = match (refused, writer) {
            (Some(done), _) => Err(done),
            (None, _) if written == 0 => Err(Done::no("Can't save a zero byte message.")),
            (None, Some(writer)) => writer
                .finish()
                .await
                .map_err(|err| self.no_for(&MailboxError::from(err))),
            (None, None) => Err(Done::no("Message could not be saved.")),
        };
        Ok(Catenated { message, rest })
    }

    /// The bytes a URL names (CRLF form), or why it names nothing.
    async fn url_bytes(
        &mut self,
        mail: &Account,
        url: &str,
    ) -> io::Result<Result<Vec<u8>, &'static str>> {
        let Some(parsed) = parse_url(url) else {
            return Ok(Err("Only URLs to a message of this account are taken."));
        };
        let Ok(name) = store_name(mail, &parsed.mailbox) else {
            return Ok(Err("No such mailbox."));
        };
        let folder = match mail.open(&name).await {
            Ok(folder) => folder,
            Err(MailboxError::NotFound(_)) => return Ok(Err("No such mailbox.")),
            Err(_) => return Ok(Err("The mailbox cannot be read.")),
        };
        let Ok(snapshot) = folder.sync().await else {
            return Ok(Err("The mailbox cannot be read."));
        };
        if parsed
            .uid_validity
            .is_some_and(|validity| validity != snapshot.uid_validity)
        {
            return Ok(Err("UIDVALIDITY does not match."));
        }
        let stored = match folder.read(parsed.uid).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return Ok(Err("No such message.")),
            Err(_) => return Ok(Err("The message cannot be read.")),
        };
        let section = match parsed.section.as_deref() {
            Some(text) => match parse_section(text) {
                Some(section) => Some(section),
                None => return Ok(Err("Invalid section.")),
            },
            None => None,
        };
        let partial = parsed.partial;
        // Parsing MIME is CPU work: off the I/O threads.
        self.ctx
            .cpu
            .run(move || {
                let whole = match section {
                    Some(section) => Message::parse(&stored).section(&section),
                    None => Some(form::to_wire(&stored).into_owned()),
                };
                let Some(whole) = whole else {
                    return Err("No such section.");
                };
                Ok(match partial {
                    None => whole,
                    Some(Partial { offset, count }) => {
                        let start = (offset as usize).min(whole.len());
                        let end = start.saturating_add(count as usize).min(whole.len());
                        whole.get(start..end).unwrap_or_default().to_vec()
                    }
                })
            })
            .await
    }
}

/// An RFC 5092 relative URL naming a message of this account:
/// `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`. Absolute URLs
/// (`imap://...`), URLAUTH and anything else give `None`.
fn parse_url(url: &str) -> Option<ImapUrl> {
    let rest = url.strip_prefix('/')?;
    let mut segments = rest.split("/;");
    let mailbox_part = segments.next()?;
    let (mailbox, uid_validity) = match mailbox_part.split_once(";UIDVALIDITY=") {
        Some((mailbox, validity)) => (mailbox, Some(number(validity)?)),
        None => (mailbox_part, None),
    };
    let mailbox = String::from_utf8(percent_decode(mailbox)?).ok()?;
    if mailbox.is_empty() || mailbox.contains(';') {
        return None;
    }
    let uid = number(segments.next()?.strip_prefix("UID=")?)?;
    let mut url = ImapUrl {
        mailbox: crate::utf7::encode(&mailbox),
        uid_validity,
        uid,
        section: None,
        partial: None,
    };
    for segment in segments {
        if let Some(section) = segment.strip_prefix("SECTION=")
            && url.section.is_none()
            && url.partial.is_none()
        {
            url.section = Some(String::from_utf8(percent_decode(section)?).ok()?);
        } else if let Some(range) = segment.strip_prefix("PARTIAL=")
            && url.partial.is_none()
        {
            // RFC 5550: `offset[.length]`; without a length, to the end.
            let (offset, count) = match range.split_once('.') {
                Some((offset, length)) => (number_or_zero(offset)?, number(length)?),
                None => (number_or_zero(range)?, u32::MAX),
            };
            url.partial = Some(Partial { offset, count });
        } else {
            return None;
        }
    }
    Some(url)
}

/// A non-zero number.
fn number(text: &str) -> Option<u32> {
    number_or_zero(text).filter(|&n| n > 0)
}

fn number_or_zero(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `%XX` escapes undone (RFC 3986); a broken escape gives `None`. Written here because it is
/// the one place URLs are read and the rule is four lines.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    Some(out)
}

/// The URL as it can stand in a response code: printable ASCII without `]`, at most 200
/// characters.
fn printable_url(url: &str) -> String {
    url.chars()
        .filter(|c| c.is_ascii_graphic() && *c != ']')
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls_to_this_account() {
        assert_eq!(
            parse_url("/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.MIME/;PARTIAL=0.1024"),
            Some(ImapUrl {
                mailbox: "INBOX".into(),
                uid_validity: Some(385_759_045),
                uid: 20,
                section: Some("1.MIME".into()),
                partial: Some(Partial {
                    offset: 0,
                    count: 1024
                }),
            })
        );
        let url = parse_url("/Entw%C3%BCrfe/2026/;UID=3/;PARTIAL=10").expect("url");
        assert_eq!(url.mailbox, "Entw&APw-rfe/2026");
        assert_eq!(
            url.partial,
            Some(Partial {
                offset: 10,
                count: u32::MAX
            })
        );
        let url = parse_url("/INBOX/;UID=3/;SECTION=HEADER.FIELDS%20(SUBJECT)").expect("url");
        assert_eq!(url.section.as_deref(), Some("HEADER.FIELDS (SUBJECT)"));
        for bad in [
            "imap://alice@example.com/INBOX/;UID=1",
            "INBOX/;UID=1",
            "/INBOX",
            "/INBOX/;UID=0",
            "/INBOX/;UID=x",
            "/INBOX/;UID=1/;URLAUTH=anonymous",
            "/INBOX/;UID=1/;PARTIAL=1.0",
            "/IN%ZZBOX/;UID=1",
            "/INBOX;UIDVALIDITY=/;UID=1",
            "/INBOX/;UID=1/;PARTIAL=1/;SECTION=1",
        ] {
            assert_eq!(parse_url(bad), None, "{bad}");
        }
    }
}
