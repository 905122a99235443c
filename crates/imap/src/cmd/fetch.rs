//! FETCH and UID FETCH, with CONDSTORE's CHANGEDSINCE and QRESYNC's VANISHED.

use std::borrow::Cow;
use std::io;
use std::sync::Arc;

use tokio::io::AsyncReadExt;

use mailstead_store::form;
use mailstead_store::{CacheKey, FlagOperation, MessageMeta, Snapshot, SystemFlags};
use tracing::error;

use crate::cmd::{internal_date, uid_set_string, write_flags};
use crate::command::{FetchAttribute, FetchCommand, Partial, Section, SectionText};
use crate::message::{Message, stream};
use crate::session::{Done, Session};
use crate::wire;

/// An item answered with the whole message, or a partial of it, in CRLF form: from memory when
/// the message is held anyway, else streamed from the file a buffer at a time.
#[derive(Clone, Copy, Debug)]
struct Streamed {
    from: stream::From,
    partial: Option<Partial>,
    /// BINARY: a NUL makes it a `~{n}` literal.
    binary: bool,
}

/// A FETCH response line in pieces: bytes, and the streamed items between them.
enum Piece {
    Bytes(Vec<u8>),
    Stream(Streamed),
}

/// A message up to this size is read whole, once, and its streamed items are answered from
/// memory; a larger one is streamed, so a FETCH holds at most this much of a message it does
/// not parse.
const SMALL_ENOUGH_TO_HOLD: u64 = 256 * 1024;

/// The bytes a FETCH item reads from a message, loaded at most once per message.
enum Content {
    NotLoaded,
    Raw(Vec<u8>),
    Parsed(Box<Message>),
}

impl Content {
    fn is_loaded(&self) -> bool {
        !matches!(self, Content::NotLoaded)
    }
}

impl FetchAttribute {
    /// Whether the item sets `\Seen` (RFC 3501 6.4.5).
    fn sets_seen(&self) -> bool {
        match self {
            FetchAttribute::Rfc822 | FetchAttribute::Rfc822Text => true,
            FetchAttribute::BodySection { peek, .. } | FetchAttribute::Binary { peek, .. } => !peek,
            _ => false,
        }
    }

    /// The whole message or a partial of it, which is streamed.
    fn streamed(&self) -> Option<Streamed> {
        match self {
            FetchAttribute::Rfc822 => Some(Streamed {
                from: stream::From::Message,
                partial: None,
                binary: false,
            }),
            FetchAttribute::BodySection {
                section, partial, ..
            } if section.part.is_empty()
                && matches!(section.text, None | Some(SectionText::Text)) =>
            {
                Some(Streamed {
                    from: if section.text.is_none() {
                        stream::From::Message
                    } else {
                        stream::From::Body
                    },
                    partial: *partial,
                    binary: false,
                })
            }
            FetchAttribute::Binary { part, partial, .. } if part.is_empty() => Some(Streamed {
                from: stream::From::Message,
                partial: *partial,
                binary: true,
            }),
            _ => None,
        }
    }

    /// Whether the item needs the message parsed, hence read whole, whatever its size
    /// (unless the folder's cache has it). Streamed items do not: they open the file once.
    fn parses_file(&self) -> bool {
        self.streamed().is_none() && self.needs_parse()
    }

    /// Whether the item needs the MIME structure (not just the index).
    fn needs_parse(&self) -> bool {
        !matches!(
            self,
            FetchAttribute::Flags
                | FetchAttribute::InternalDate
                | FetchAttribute::Rfc822Size
                | FetchAttribute::Uid
                | FetchAttribute::ModSeq
                | FetchAttribute::SaveDate
                | FetchAttribute::EmailId
                | FetchAttribute::ThreadId
        )
    }
}

fn cache_key(attribute: &FetchAttribute) -> Option<CacheKey> {
    match attribute {
        FetchAttribute::Envelope => Some(CacheKey::Envelope),
        FetchAttribute::BodyStructure => Some(CacheKey::BodyStructure),
        FetchAttribute::Body => Some(CacheKey::Body),
        FetchAttribute::Preview { .. } => Some(CacheKey::Preview),
        _ => None,
    }
}

/// `1.2.HEADER.FIELDS (From To)` as it is echoed in the response.
fn section_label(section: &Section) -> String {
    let mut label: Vec<String> = section.part.iter().map(u32::to_string).collect();
    match &section.text {
        None => {}
        Some(SectionText::Header) => label.push("HEADER".into()),
        Some(SectionText::Text) => label.push("TEXT".into()),
        Some(SectionText::Mime) => label.push("MIME".into()),
        Some(SectionText::HeaderFields { not, fields }) => {
            let mut quoted = Vec::new();
            for field in fields {
                wire::astring(&mut quoted, field.as_bytes());
                quoted.push(b' ');
            }
            quoted.pop();
            label.push(format!(
                "HEADER.FIELDS{} ({})",
                if *not { ".NOT" } else { "" },
                String::from_utf8_lossy(&quoted)
            ));
        }
    }
    label.join(".")
}

fn apply_partial(bytes: &[u8], partial: Option<Partial>) -> &[u8] {
    match partial {
        None => bytes,
        Some(Partial { offset, count }) => {
            let start = (offset as usize).min(bytes.len());
            let end = start.saturating_add(count as usize).min(bytes.len());
            bytes.get(start..end).unwrap_or_default()
        }
    }
}

fn partial_suffix(partial: Option<Partial>) -> String {
    partial.map_or_else(String::new, |p| format!("<{}>", p.offset))
}

impl Session {
    pub(crate) async fn fetch(&mut self, fetch: FetchCommand) -> io::Result<Done> {
        let Some(selected) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected."));
        };
        if fetch.vanished && (!fetch.uid || fetch.changed_since.is_none() || !self.qresync) {
            return Ok(Done::bad(
                "VANISHED needs UID FETCH with CHANGEDSINCE and QRESYNC enabled.",
            ));
        }
        let positions = match selected.resolve(&fetch.set, fetch.uid) {
            Ok(positions) => positions,
            Err(message) => return Ok(Done::bad(message)),
        };
        let mut attributes = fetch.attributes.clone();
        if fetch.uid && !attributes.contains(&FetchAttribute::Uid) {
            attributes.insert(0, FetchAttribute::Uid);
        }
        if fetch.changed_since.is_some() && !attributes.contains(&FetchAttribute::ModSeq) {
            attributes.push(FetchAttribute::ModSeq);
        }
        if attributes.contains(&FetchAttribute::ModSeq) {
            self.enable_condstore().await?;
        }
        let attributes: Arc<[FetchAttribute]> = Arc::from(attributes);
        // Without the ACL's `s` right a read leaves `\Seen` as it is (RFC 4314 section 4).
        let may_set_seen = self.may_set_seen().await;
        let Some(selected) = self.selected.as_mut() else {
            return Ok(Done::bad("No mailbox selected."));
        };
        let folder = Arc::clone(&selected.folder);
        let targets: Vec<(usize, u32)> = positions
            .iter()
            .filter_map(|&position| selected.uids.get(position).map(|uid| (position, uid)))
            .collect();

        // Reading a body marks it seen: one store for all, before the responses, so they
        // carry the new flags.
        // Sorted UIDs, looked up by binary search: no hashing per message.
        let mut seen_now: Vec<u32> = Vec::new();
        if !selected.read_only && may_set_seen && attributes.iter().any(FetchAttribute::sets_seen) {
            let snapshot = self.seen_view(folder.snapshot());
            let unseen: Vec<u32> = targets
                .iter()
                .filter(|(_, uid)| {
                    snapshot.position(*uid).is_some_and(|i| {
                        snapshot
                            .messages
                            .get(i)
                            .is_some_and(|meta| !meta.flags.contains(SystemFlags::SEEN))
                    })
                })
                .map(|(_, uid)| *uid)
                .collect();
            if !unseen.is_empty() {
                match self
                    .store_flags(
                        &folder,
                        &unseen,
                        FlagOperation::Add,
                        SystemFlags::SEEN,
                        &[],
                        None,
                    )
                    .await
                {
                    Ok(result) => {
                        seen_now = result.updated;
                        seen_now.sort_unstable();
                    }
                    Err(err) => return Ok(self.no_for(&err)),
                }
            }
        }
        let snapshot = self.seen_view(folder.snapshot());
        let Some(selected) = self.selected.as_mut() else {
            return Ok(Done::bad("No mailbox selected."));
        };
        if !seen_now.is_empty() {
            for uid in &seen_now {
                if let Some(meta) = snapshot
                    .position(*uid)
                    .and_then(|i| snapshot.messages.get(i))
                {
                    selected.own_changes.insert(*uid, meta.modseq);
                }
            }
        }
        if fetch.vanished
            && let Some(since) = fetch.changed_since
        {
            let largest = selected
                .uids
                .last()
                .unwrap_or(0)
                .max(snapshot.uid_next.saturating_sub(1));
            let vanished: Vec<u32> = folder
                .vanished_since(since)
                .into_iter()
                .filter(|uid| fetch.set.contains(*uid, largest))
                .collect();
            if !vanished.is_empty() {
                let line = format!("* VANISHED (EARLIER) {}\r\n", uid_set_string(&vanished));
                self.conn.write(line.as_bytes()).await?;
            }
        }
        // `\Recent` of each target, from the session's sorted list, before the loop borrows
        // the session for writing.
        let targets: Vec<(usize, u32, bool)> = targets
            .into_iter()
            .map(|(position, uid)| {
                let recent = self
                    .selected
                    .as_ref()
                    .is_some_and(|selected| selected.is_recent(uid));
                (position, uid, recent)
            })
            .collect();
        for (position, uid, recent) in targets {
            let Some(mut meta) = snapshot
                .position(uid)
                .and_then(|i| snapshot.messages.get(i))
                .copied()
            else {
                // Expunged by another session; it is reported at the next refresh.
                continue;
            };
            if meta.rfc822_size.is_none() && attributes.contains(&FetchAttribute::Rfc822Size) {
                match folder.rfc822_size(uid).await {
                    Ok(Some(size)) => meta.rfc822_size = Some(size),
                    Ok(None) => continue,
                    Err(err) => {
                        error!(uid, cause = %err, "cannot count a message's size");
                        return Ok(self.no_for(&err));
                    }
                }
            }
            if fetch
                .changed_since
                .is_some_and(|since| meta.modseq <= since)
            {
                continue;
            }
            let plan = ReadPlan::of(&attributes, |key| folder.cached(uid, key).is_some());
            let mut content = Content::NotLoaded;
            let mut file = None;
            match plan {
                ReadPlan::Nothing => {}
                ReadPlan::Whole => match folder.read(uid).await {
                    Ok(Some(bytes)) => content = Content::Raw(bytes),
                    Ok(None) => continue,
                    Err(err) => {
                        error!(uid, cause = %err, "cannot read message");
                        return Ok(self.no_for(&err));
                    }
                },
                ReadPlan::Open => match folder.open_message(uid).await {
                    Ok(Some(opened)) => file = Some(opened),
                    Ok(None) => continue,
                    Err(err) => {
                        error!(uid, cause = %err, "cannot open message");
                        return Ok(self.no_for(&err));
                    }
                },
            }
            let item = Item {
                position,
                meta,
                recent,
                seen_now: seen_now.binary_search(&uid).is_ok(),
            };
            // Whatever is read from the file is read, parsed and cut off the I/O threads.
            let (line, file) = if plan == ReadPlan::Nothing {
                (
                    Ok(fetch_line(&item, &attributes, &snapshot, &folder, content)),
                    None,
                )
            } else {
                let attributes = Arc::clone(&attributes);
                let snapshot = Arc::clone(&snapshot);
                let folder = Arc::clone(&folder);
                self.ctx
                    .cpu
                    .run(move || {
                        let mut content = content;
                        let file = match file {
                            Some(file) => match hold_if_small(file, &mut content) {
                                Ok(file) => file,
                                Err(err) => return (Err(err), None),
                            },
                            None => None,
                        };
                        let line = fetch_line(&item, &attributes, &snapshot, &folder, content);
                        (Ok(line), file)
                    })
                    .await?
            };
            let pieces = match line {
                Ok(Ok(pieces)) => pieces,
                Ok(Err(done)) => return Ok(done),
                Err(err) => {
                    error!(uid, cause = %err, "cannot read message");
                    return Ok(Done::no(
                        "[SERVERBUG] Internal error occurred. Refer to server log for more information.",
                    ));
                }
            };
            for piece in pieces {
                match piece {
                    Piece::Bytes(bytes) => self.conn.write(&bytes).await?,
                    Piece::Stream(streamed) => {
                        if let Err(err) = self.stream_message(file.as_ref(), streamed).await {
                            // The response is half written: the connection cannot go on.
                            error!(uid, cause = %err, "cannot stream message");
                            return Err(io::Error::other(err.to_string()));
                        }
                    }
                }
            }
        }
        Ok(Done::ok("Fetch completed."))
    }
}

/// What a FETCH reads of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadPlan {
    /// Nothing: flags, sizes, dates, or what the folder's cache holds.
    Nothing,
    /// The file read whole: an item needs the message parsed.
    Whole,
    /// The file opened once: read whole when small enough to hold, else streamed.
    Open,
}

impl ReadPlan {
    fn of(attributes: &[FetchAttribute], cached: impl Fn(CacheKey) -> bool) -> ReadPlan {
        if attributes.iter().any(|attribute| {
            attribute.parses_file() && cache_key(attribute).is_none_or(|key| !cached(key))
        }) {
            ReadPlan::Whole
        } else if attributes
            .iter()
            .any(|attribute| attribute.streamed().is_some())
        {
            ReadPlan::Open
        } else {
            ReadPlan::Nothing
        }
    }
}

/// Reads an opened message whole into `content` when it is small enough to hold (one read
/// for every item); gives the file back when it is to be streamed.
fn hold_if_small(
    mut file: std::fs::File,
    content: &mut Content,
) -> io::Result<Option<std::fs::File>> {
    let len = file.metadata()?.len();
    if len > SMALL_ENOUGH_TO_HOLD {
        return Ok(Some(file));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0) + 1);
    io::Read::read_to_end(&mut file, &mut bytes)?;
    *content = Content::Raw(bytes);
    Ok(None)
}

/// Why streaming a message stopped.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("reading the message file: {0}")]
    Read(#[from] io::Error),
    #[error("the message file ended early")]
    Truncated,
}

impl Session {
    /// Writes the whole message, or its partial, as a literal read from the opened file a
    /// buffer at a time.
    async fn stream_message(
        &mut self,
        file: Option<&std::fs::File>,
        streamed: Streamed,
    ) -> Result<(), StreamError> {
        let Some(file) = file else {
            // Not reached: a streamed piece comes only with the file kept open for it.
            self.conn.write(b"NIL").await?;
            return Ok(());
        };
        // Another handle on the same open file (one offset): each item seeks where it reads.
        let file = file.try_clone()?;
        let (offset, count) = match streamed.partial {
            Some(Partial { offset, count }) => (u64::from(offset), Some(u64::from(count))),
            None => (0, None),
        };
        // The first pass reads up to the end of the answer: off the I/O threads.
        let (span, file) = self
            .ctx
            .cpu
            .run(move || {
                let mut file = file;
                io::Seek::seek(&mut file, io::SeekFrom::Start(0))?;
                let span =
                    stream::scan(io::BufReader::new(&mut file), streamed.from, offset, count)?;
                io::Seek::seek(&mut file, io::SeekFrom::Start(span.stored_start))?;
                Ok::<_, io::Error>((span, file))
            })
            .await??;
        let tilde = if streamed.binary && span.has_nul {
            "~"
        } else {
            ""
        };
        self.conn
            .write(format!("{tilde}{{{}}}\r\n", span.len).as_bytes())
            .await?;
        let mut file = tokio::fs::File::from_std(file);
        let mut writer = stream::CrlfWriter::new(&span, streamed.from == stream::From::Body);
        let mut buffer = vec![0u8; stream::BUFFER];
        let mut out = Vec::with_capacity(stream::BUFFER * 2);
        while !writer.is_done() {
            let read = file.read(&mut buffer).await?;
            if read == 0 {
                return Err(StreamError::Truncated);
            }
            out.clear();
            writer.convert(buffer.get(..read).unwrap_or_default(), &mut out);
            self.conn.write(&out).await?;
        }
        Ok(())
    }
}

/// One message of a FETCH, as the response line needs it.
struct Item {
    position: usize,
    meta: MessageMeta,
    recent: bool,
    /// This FETCH set `\Seen`: the flags are sent even if not asked for.
    seen_now: bool,
}

/// `* n FETCH (...)` for one message, in pieces around the streamed items; `Err` is the
/// tagged response that ends the command.
fn fetch_line(
    item: &Item,
    attributes: &[FetchAttribute],
    snapshot: &Snapshot,
    folder: &mailstead_store::Folder,
    mut content: Content,
) -> Result<Vec<Piece>, Done> {
    let mut pieces = Vec::new();
    let mut line = format!("* {} FETCH (", item.position + 1).into_bytes();
    let mut wrote_flags = false;
    for (index, attribute) in attributes.iter().enumerate() {
        if index > 0 {
            line.push(b' ');
        }
        if let Some(streamed) = attribute.streamed() {
            line.extend_from_slice(streamed_label(attribute, streamed).as_bytes());
            if content.is_loaded() {
                write_held(&mut line, streamed, &mut content)?;
            } else {
                pieces.push(Piece::Bytes(std::mem::take(&mut line)));
                pieces.push(Piece::Stream(streamed));
            }
            continue;
        }
        write_item(
            &mut line,
            attribute,
            &item.meta,
            snapshot,
            item.recent,
            folder,
            &mut content,
        )?;
        wrote_flags |= *attribute == FetchAttribute::Flags;
    }
    if item.seen_now && !wrote_flags {
        line.push(b' ');
        write_flags(&mut line, &item.meta, snapshot, item.recent);
    }
    line.extend_from_slice(b")\r\n");
    pieces.push(Piece::Bytes(line));
    Ok(pieces)
}

/// `RFC822 `, `BODY[]<0> `, `BINARY[] `.
fn streamed_label(attribute: &FetchAttribute, streamed: Streamed) -> String {
    let suffix = partial_suffix(streamed.partial);
    match attribute {
        FetchAttribute::Rfc822 => "RFC822 ".to_owned(),
        _ if streamed.binary => format!("BINARY[]{suffix} "),
        _ if streamed.from == stream::From::Body => format!("BODY[TEXT]{suffix} "),
        _ => format!("BODY[]{suffix} "),
    }
}

/// A streamed item answered from the message held in memory: the same bytes the stream
/// sends, cut the same way.
fn write_held(out: &mut Vec<u8>, streamed: Streamed, content: &mut Content) -> Result<(), Done> {
    let missing = || Done::no("[SERVERBUG] Message content unavailable.");
    if streamed.from == stream::From::Body {
        let text = parsed(content)
            .ok_or_else(missing)?
            .section(&Section {
                part: Vec::new(),
                text: Some(SectionText::Text),
            })
            .unwrap_or_default();
        wire::literal(out, apply_partial(&text, streamed.partial));
        return Ok(());
    }
    if let (Content::Raw(stored), None) = (&*content, streamed.partial) {
        // The whole message, converted straight into the response: no copy between.
        if streamed.binary && stored.contains(&0) {
            out.push(b'~');
        }
        out.extend_from_slice(format!("{{{}}}\r\n", form::wire_len(stored)).as_bytes());
        form::WireForm::default().convert(stored, out);
        return Ok(());
    }
    let whole = match content {
        Content::Raw(stored) => form::to_wire(stored),
        Content::Parsed(message) => Cow::Borrowed(message.raw()),
        Content::NotLoaded => return Err(missing()),
    };
    let answer = apply_partial(&whole, streamed.partial);
    if streamed.binary && answer.contains(&0) {
        out.push(b'~');
    }
    wire::literal(out, answer);
    Ok(())
}

fn parsed(content: &mut Content) -> Option<&Message> {
    if let Content::Raw(bytes) = content {
        let message = Message::parse(bytes);
        *content = Content::Parsed(Box::new(message));
    }
    match content {
        Content::Parsed(message) => Some(message),
        _ => None,
    }
}

/// `1.2` for BINARY's part path.
fn part_label(part: &[u32]) -> String {
    part.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A part with its transfer encoding undone (BINARY); `Err` ends the FETCH.
fn decoded(content: &mut Content, part: &[u32]) -> Result<Option<Vec<u8>>, Done> {
    let message =
        parsed(content).ok_or_else(|| Done::no("[SERVERBUG] Message content unavailable."))?;
    message
        .binary(part)
        .map_err(|_| Done::no("[UNKNOWN-CTE] Unknown Content-Transfer-Encoding."))
}

/// Writes one item of a FETCH response; `Err` is the tagged response that ends the command.
fn write_item(
    out: &mut Vec<u8>,
    attribute: &FetchAttribute,
    meta: &MessageMeta,
    snapshot: &Snapshot,
    recent: bool,
    folder: &mailstead_store::Folder,
    content: &mut Content,
) -> Result<(), Done> {
    let missing = || Done::no("[SERVERBUG] Message content unavailable.");
    match attribute {
        FetchAttribute::Flags => write_flags(out, meta, snapshot, recent),
        FetchAttribute::Uid => out.extend_from_slice(format!("UID {}", meta.uid).as_bytes()),
        FetchAttribute::ModSeq => {
            out.extend_from_slice(format!("MODSEQ ({})", meta.modseq).as_bytes());
        }
        FetchAttribute::InternalDate => {
            out.extend_from_slice(b"INTERNALDATE ");
            out.extend_from_slice(internal_date(meta.internal_date).as_bytes());
        }
        FetchAttribute::Rfc822Size => {
            // Counted before the item is written when the snapshot did not know it.
            let size = meta.rfc822_size.unwrap_or_default();
            out.extend_from_slice(format!("RFC822.SIZE {size}").as_bytes());
        }
        FetchAttribute::Envelope | FetchAttribute::Body | FetchAttribute::BodyStructure => {
            let (name, key) = match attribute {
                FetchAttribute::Envelope => ("ENVELOPE ", CacheKey::Envelope),
                FetchAttribute::Body => ("BODY ", CacheKey::Body),
                _ => ("BODYSTRUCTURE ", CacheKey::BodyStructure),
            };
            out.extend_from_slice(name.as_bytes());
            if let Some(cached) = folder.cached(meta.uid, key) {
                out.extend_from_slice(&cached);
            } else {
                let message = parsed(content).ok_or_else(missing)?;
                let mut value = Vec::new();
                match key {
                    CacheKey::Envelope => message.envelope(&mut value),
                    CacheKey::Body => message.body_structure(&mut value, false),
                    _ => message.body_structure(&mut value, true),
                }
                out.extend_from_slice(&value);
                folder.cache(meta.uid, key, Arc::from(value));
            }
        }
        // Streamed by `fetch_line`'s caller.
        FetchAttribute::Rfc822 => {}
        FetchAttribute::Rfc822Header | FetchAttribute::Rfc822Text => {
            let (name, text) = if *attribute == FetchAttribute::Rfc822Header {
                ("RFC822.HEADER ", SectionText::Header)
            } else {
                ("RFC822.TEXT ", SectionText::Text)
            };
            let message = parsed(content).ok_or_else(missing)?;
            let section = Section {
                part: Vec::new(),
                text: Some(text),
            };
            out.extend_from_slice(name.as_bytes());
            wire::nstring(out, message.section(&section).as_deref());
        }
        FetchAttribute::BodySection {
            section, partial, ..
        } => {
            out.extend_from_slice(
                format!(
                    "BODY[{}]{} ",
                    section_label(section),
                    partial_suffix(*partial)
                )
                .as_bytes(),
            );
            let message = parsed(content).ok_or_else(missing)?;
            match message.section(section) {
                Some(bytes) => wire::literal(out, apply_partial(&bytes, *partial)),
                None => out.extend_from_slice(b"NIL"),
            }
        }
        FetchAttribute::Binary { part, partial, .. } => {
            let label = part_label(part);
            out.extend_from_slice(
                format!("BINARY[{label}]{} ", partial_suffix(*partial)).as_bytes(),
            );
            match decoded(content, part)? {
                Some(bytes) => {
                    let bytes = apply_partial(&bytes, *partial);
                    if bytes.contains(&0) {
                        out.push(b'~');
                    }
                    wire::literal(out, bytes);
                }
                None => out.extend_from_slice(b"NIL"),
            }
        }
        FetchAttribute::BinarySize { part } => {
            let size = decoded(content, part)?.map_or(0, |bytes| bytes.len());
            out.extend_from_slice(format!("BINARY.SIZE[{}] {size}", part_label(part)).as_bytes());
        }
        FetchAttribute::SaveDate => {
            out.extend_from_slice(b"SAVEDATE ");
            out.extend_from_slice(internal_date(meta.save_date).as_bytes());
        }
        FetchAttribute::EmailId => {
            let id = mailstead_store::email_id(meta.email_id);
            out.extend_from_slice(format!("EMAILID ({id})").as_bytes());
        }
        FetchAttribute::ThreadId => out.extend_from_slice(b"THREADID NIL"),
        // LAZY lets the server answer NIL when the preview is not at hand; it is computed
        // anyway (the CPU pool bounds the work) and kept, so a client never has to ask twice.
        FetchAttribute::Preview { .. } => {
            out.extend_from_slice(b"PREVIEW ");
            if let Some(cached) = folder.cached(meta.uid, CacheKey::Preview) {
                wire::string(out, &cached);
            } else {
                let preview = parsed(content).ok_or_else(missing)?.preview();
                wire::string(out, preview.as_bytes());
                folder.cache(meta.uid, CacheKey::Preview, Arc::from(preview.into_bytes()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_labels_echo_the_request() {
        let section = Section {
            part: vec![1, 2],
            text: Some(SectionText::HeaderFields {
                not: true,
                fields: vec!["From".into(), "X-Spam Flag".into()],
            }),
        };
        assert_eq!(
            section_label(&section),
            "1.2.HEADER.FIELDS.NOT (From \"X-Spam Flag\")"
        );
        assert_eq!(section_label(&Section::default()), "");
    }

    /// BODY[] and its kin open the file once (read whole when small, streamed when not); it
    /// used to be read whole, then opened and read twice more to stream it.
    #[test]
    fn each_message_file_is_read_by_one_plan() {
        let body = |text| FetchAttribute::BodySection {
            peek: true,
            section: Section {
                part: Vec::new(),
                text,
            },
            partial: None,
        };
        let nothing_cached = |_| false;
        for streamed in [
            body(None),
            body(Some(SectionText::Text)),
            FetchAttribute::Rfc822,
            FetchAttribute::Binary {
                peek: true,
                part: Vec::new(),
                partial: Some(Partial {
                    offset: 0,
                    count: 1024,
                }),
            },
        ] {
            let attributes = [FetchAttribute::Uid, FetchAttribute::Rfc822Size, streamed];
            assert_eq!(
                ReadPlan::of(&attributes, nothing_cached),
                ReadPlan::Open,
                "{attributes:?}"
            );
        }
        let with_envelope = [body(None), FetchAttribute::Envelope];
        assert_eq!(
            ReadPlan::of(&with_envelope, nothing_cached),
            ReadPlan::Whole
        );
        assert_eq!(ReadPlan::of(&with_envelope, |_| true), ReadPlan::Open);
        assert_eq!(
            ReadPlan::of(&[body(Some(SectionText::Header))], |_| true),
            ReadPlan::Whole
        );
        assert_eq!(
            ReadPlan::of(&[FetchAttribute::Flags, FetchAttribute::Envelope], |_| true),
            ReadPlan::Nothing
        );
    }

    #[test]
    fn partials_clamp_to_the_data() {
        let data = b"0123456789";
        let p = |offset, count| Some(Partial { offset, count });
        assert_eq!(apply_partial(data, p(2, 3)), b"234");
        assert_eq!(apply_partial(data, p(8, 10)), b"89");
        assert_eq!(apply_partial(data, p(20, 1)), b"");
        assert_eq!(apply_partial(data, None), data);
    }
}
