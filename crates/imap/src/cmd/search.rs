//! SEARCH and UID SEARCH: every RFC 3501 key, CONDSTORE's MODSEQ, ESEARCH's RETURN options.

use std::io;
use std::sync::Arc;

use mailstead_store::{CacheKey, Folder, MessageMeta, Snapshot, SystemFlags};
use time::{Date, OffsetDateTime};
use tracing::error;

use crate::cmd::uid_set_string;
use crate::command::{SearchCommand, SearchKey, SearchReturn};
use crate::cpu::CpuPool;
use crate::message::Message;
use crate::message::search_cache::SearchValues;
use crate::session::{Done, Session, Status};
use crate::uids::UidList;
use crate::wire;

/// What a key is evaluated against.
struct Candidate<'a> {
    sequence: u32,
    meta: &'a MessageMeta,
    recent: bool,
    snapshot: &'a Snapshot,
    contents: Option<&'a Contents>,
    /// The largest sequence number and UID, for `*`.
    last_sequence: u32,
    last_uid: u32,
    /// Unix time when the search started, for WITHIN's OLDER and YOUNGER.
    now: i64,
}

/// The header fields kept in the folder's cache for SEARCH (`CacheKey::SearchHeaders`).
const CACHED_FIELDS: [&str; 10] = [
    "From",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Date",
    "Sender",
    "Reply-To",
    "Message-ID",
    "In-Reply-To",
];

/// What of a message a search has to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    /// Flags, sizes, dates, UIDs: the index answers.
    Nothing,
    /// Only fields in [`CACHED_FIELDS`].
    CachedHeaders,
    /// The body, or another header field.
    Message,
}

fn need(key: &SearchKey) -> Need {
    match key {
        SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Subject(_)
        | SearchKey::To(_) => Need::CachedHeaders,
        SearchKey::Header(field, _) => {
            if CACHED_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(field)) {
                Need::CachedHeaders
            } else {
                Need::Message
            }
        }
        SearchKey::Body(_) | SearchKey::Text(_) => Need::Message,
        SearchKey::Not(inner) => need(inner),
        SearchKey::Or(a, b) => need(a).max(need(b)),
        SearchKey::And(keys) => keys.iter().map(need).max().unwrap_or(Need::Nothing),
        _ => Need::Nothing,
    }
}

/// What a candidate's header and body keys are matched against.
enum Contents {
    /// The file, or raw header fields an older version cached.
    Message(Box<Message>),
    /// The decoded values from the folder's cache.
    Cached(SearchValues),
}

impl Contents {
    fn header_contains(&self, field: &str, needle: &str) -> bool {
        match self {
            Contents::Message(message) => message.header_contains(field, needle),
            Contents::Cached(values) => values.header_contains(field, needle),
        }
    }

    fn sent_date(&self) -> Option<Date> {
        match self {
            Contents::Message(message) => message.sent_date(),
            Contents::Cached(values) => values.sent_date(),
        }
    }

    /// The whole message (BODY, TEXT, other header fields): a search that needs it reads the
    /// file, never the cache.
    fn message(&self) -> Option<&Message> {
        match self {
            Contents::Message(message) => Some(message),
            Contents::Cached(_) => None,
        }
    }
}

/// Whether a key compares sizes, which every message must then have counted.
fn uses_size(key: &SearchKey) -> bool {
    match key {
        SearchKey::Larger(_) | SearchKey::Smaller(_) => true,
        SearchKey::Not(inner) => uses_size(inner),
        SearchKey::Or(a, b) => uses_size(a) || uses_size(b),
        SearchKey::And(keys) => keys.iter().any(uses_size),
        _ => false,
    }
}

pub(crate) fn uses_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(inner) => uses_modseq(inner),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::And(keys) => keys.iter().any(uses_modseq),
        _ => false,
    }
}

/// The number behind an EMAILID this server gave (`mailstead_store::email_id`), compared
/// exactly: ids are case-sensitive.
fn email_id_number(id: &str) -> Option<u64> {
    let hex = id.strip_prefix('M')?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// SAVEDATE as a date, in UTC as INTERNALDATE is.
fn saved_day(meta: &MessageMeta) -> Option<Date> {
    OffsetDateTime::from_unix_timestamp(meta.save_date)
        .ok()
        .map(OffsetDateTime::date)
}

/// INTERNALDATE as a date, in UTC as it is kept.
fn internal_day(meta: &MessageMeta) -> Option<Date> {
    OffsetDateTime::from_unix_timestamp(meta.internal_date)
        .ok()
        .map(OffsetDateTime::date)
}

fn has_keyword(candidate: &Candidate<'_>, name: &str) -> bool {
    candidate
        .snapshot
        .keywords
        .iter()
        .position(|keyword| keyword.eq_ignore_ascii_case(name))
        .is_some_and(|index| index < 32 && candidate.meta.keywords & (1 << index) != 0)
}

fn matches(key: &SearchKey, c: &Candidate<'_>) -> bool {
    let flag = |flag: SystemFlags| c.meta.flags.contains(flag);
    let header = |field: &str, needle: &str| {
        c.contents
            .is_some_and(|contents| contents.header_contains(field, needle))
    };
    let sent = |compare: &dyn Fn(Date) -> bool| {
        c.contents
            .and_then(Contents::sent_date)
            .is_some_and(compare)
    };
    let message = || c.contents.and_then(Contents::message);
    let internal = |compare: &dyn Fn(Date) -> bool| internal_day(c.meta).is_some_and(compare);
    match key {
        SearchKey::All => true,
        SearchKey::Answered => flag(SystemFlags::ANSWERED),
        SearchKey::Unanswered => !flag(SystemFlags::ANSWERED),
        SearchKey::Deleted => flag(SystemFlags::DELETED),
        SearchKey::Undeleted => !flag(SystemFlags::DELETED),
        SearchKey::Draft => flag(SystemFlags::DRAFT),
        SearchKey::Undraft => !flag(SystemFlags::DRAFT),
        SearchKey::Flagged => flag(SystemFlags::FLAGGED),
        SearchKey::Unflagged => !flag(SystemFlags::FLAGGED),
        SearchKey::Seen => flag(SystemFlags::SEEN),
        SearchKey::Unseen => !flag(SystemFlags::SEEN),
        SearchKey::Recent => c.recent,
        SearchKey::New => c.recent && !flag(SystemFlags::SEEN),
        SearchKey::Old => !c.recent,
        SearchKey::Keyword(name) => has_keyword(c, name),
        SearchKey::Unkeyword(name) => !has_keyword(c, name),
        SearchKey::Larger(size) => c.meta.rfc822_size.is_some_and(|known| known > *size),
        SearchKey::Smaller(size) => c.meta.rfc822_size.is_some_and(|known| known < *size),
        SearchKey::Before(date) => internal(&|day| day < *date),
        SearchKey::On(date) => internal(&|day| day == *date),
        SearchKey::Since(date) => internal(&|day| day >= *date),
        SearchKey::SentBefore(date) => sent(&|day| day < *date),
        SearchKey::SentOn(date) => sent(&|day| day == *date),
        SearchKey::SentSince(date) => sent(&|day| day >= *date),
        SearchKey::Bcc(needle) => header("Bcc", needle),
        SearchKey::Cc(needle) => header("Cc", needle),
        SearchKey::From(needle) => header("From", needle),
        SearchKey::To(needle) => header("To", needle),
        SearchKey::Subject(needle) => header("Subject", needle),
        SearchKey::Header(field, needle) => header(field, needle),
        SearchKey::Body(needle) => message().is_some_and(|m| m.body_contains(needle)),
        SearchKey::Text(needle) => message().is_some_and(|m| m.text_contains(needle)),
        SearchKey::Uid(set) => set.contains(c.meta.uid, c.last_uid),
        SearchKey::Sequence(set) => set.contains(c.sequence, c.last_sequence),
        SearchKey::ModSeq(modseq) => c.meta.modseq >= *modseq,
        // RFC 8514: every folder keeps save dates.
        SearchKey::SaveDateSupported => true,
        SearchKey::SavedBefore(date) => saved_day(c.meta).is_some_and(|day| day < *date),
        SearchKey::SavedOn(date) => saved_day(c.meta).is_some_and(|day| day == *date),
        SearchKey::SavedSince(date) => saved_day(c.meta).is_some_and(|day| day >= *date),
        SearchKey::EmailId(id) => email_id_number(id) == Some(c.meta.email_id),
        // THREADID is NIL for every message: no message has one.
        SearchKey::ThreadId(_) => false,
        SearchKey::Older(seconds) => {
            c.now.saturating_sub(c.meta.internal_date) > i64::from(*seconds)
        }
        SearchKey::Younger(seconds) => {
            c.now.saturating_sub(c.meta.internal_date) <= i64::from(*seconds)
        }
        SearchKey::Not(inner) => !matches(inner, c),
        SearchKey::Or(a, b) => matches(a, c) || matches(b, c),
        SearchKey::And(keys) => keys.iter().all(|key| matches(key, c)),
    }
}

/// What the whole search shares: `*` for sequence sets, and what of a message it reads.
#[derive(Clone, Copy)]
struct Scope {
    last_sequence: u32,
    last_uid: u32,
    need: Need,
    now: i64,
}

/// Where a candidate's contents come from.
enum Source {
    /// Flags, sizes, dates: the snapshot answers.
    Index,
    CachedHeaders(Arc<[u8]>),
    File(Vec<u8>),
}

/// Messages read and waiting to be matched together off the I/O threads: enough of them that
/// handing work over costs little, few enough bytes that a search holds little in memory.
#[derive(Default)]
struct Batch {
    /// Sequence number, UID, `\Recent`, contents.
    messages: Vec<(u32, u32, bool, Source)>,
    bytes: usize,
}

impl Batch {
    const MAX_MESSAGES: usize = 256;
    const MAX_BYTES: usize = 4 * 1024 * 1024;

    fn push(&mut self, sequence: u32, uid: u32, recent: bool, source: Source) {
        self.bytes += match &source {
            Source::Index => 0,
            Source::CachedHeaders(headers) => headers.len(),
            Source::File(bytes) => bytes.len(),
        };
        self.messages.push((sequence, uid, recent, source));
    }

    fn is_full(&self) -> bool {
        self.messages.len() >= Batch::MAX_MESSAGES || self.bytes >= Batch::MAX_BYTES
    }
}

/// Matches a batch (on a blocking thread): the sequence number, UID and modseq of each match.
fn evaluate_batch(
    batch: Batch,
    criteria: &SearchKey,
    snapshot: &Snapshot,
    folder: &Folder,
    scope: Scope,
) -> Vec<(u32, u32, u64)> {
    let mut found = Vec::new();
    // The batch ascends by UID, as the snapshot does: most entries are the one after the last.
    let mut next = 0;
    for (sequence, uid, recent, source) in batch.messages {
        let index = match snapshot.messages.get(next) {
            Some(meta) if meta.uid == uid => Some(next),
            _ => snapshot.position(uid),
        };
        let Some((index, meta)) = index.and_then(|i| Some((i, snapshot.messages.get(i)?))) else {
            continue;
        };
        next = index + 1;
        let contents = match source {
            Source::Index => None,
            Source::CachedHeaders(cached) => Some(match SearchValues::decode(&cached) {
                Some(values) => Contents::Cached(values),
                None => Contents::Message(Box::new(Message::parse(&cached))),
            }),
            Source::File(bytes) => {
                let message = Message::parse(&bytes);
                if scope.need >= Need::CachedHeaders {
                    let values = SearchValues::of(&message, &CACHED_FIELDS);
                    folder.cache(uid, CacheKey::SearchHeaders, Arc::from(values.encode()));
                }
                Some(Contents::Message(Box::new(message)))
            }
        };
        let candidate = Candidate {
            sequence,
            meta,
            recent,
            snapshot,
            contents: contents.as_ref(),
            last_sequence: scope.last_sequence,
            last_uid: scope.last_uid,
            now: scope.now,
        };
        if matches(criteria, &candidate) {
            found.push((sequence, uid, meta.modseq));
        }
    }
    found
}

/// Search keys in `key`, counting every level.
fn weight(key: &SearchKey) -> usize {
    match key {
        SearchKey::Not(inner) => 1 + weight(inner),
        SearchKey::Or(a, b) => 1 + weight(a) + weight(b),
        SearchKey::And(keys) => 1 + keys.iter().map(weight).sum::<usize>(),
        _ => 1,
    }
}

/// Keys a search may have and still be matched on the I/O thread when the index answers it.
const INLINE_WEIGHT: usize = 8;

/// Runs [`evaluate_batch`] in the CPU pool, unless it is so cheap that handing it over would
/// cost more: a few keys the index answers (flags, UIDs, sizes, dates: no message parsed)
/// over a batch of at most [`Batch::MAX_MESSAGES`] messages is matched in place.
async fn evaluate(
    cpu: &CpuPool,
    batch: Batch,
    criteria: &Arc<SearchKey>,
    snapshot: &Arc<Snapshot>,
    folder: &Arc<Folder>,
    scope: Scope,
) -> io::Result<Vec<(u32, u32, u64)>> {
    if scope.need == Need::Nothing && weight(criteria) <= INLINE_WEIGHT {
        return Ok(evaluate_batch(batch, criteria, snapshot, folder, scope));
    }
    let criteria = Arc::clone(criteria);
    let snapshot = Arc::clone(snapshot);
    let folder = Arc::clone(folder);
    cpu.run(move || evaluate_batch(batch, &criteria, &snapshot, &folder, scope))
        .await
}

/// What `SAVE` keeps for `$` (RFC 5182 2.4): every match, unless only MIN, MAX or PARTIAL
/// were asked for, which keep the messages they return.
fn saved_result(
    found: &[(u32, u32, u64)],
    wants: &dyn Fn(SearchReturn) -> bool,
    partial: Option<std::ops::Range<usize>>,
) -> UidList {
    let only_some = !wants(SearchReturn::All)
        && !wants(SearchReturn::Count)
        && (wants(SearchReturn::Min) || wants(SearchReturn::Max) || partial.is_some());
    if !only_some {
        return found.iter().map(|(_, uid, _)| *uid).collect();
    }
    let mut uids: Vec<u32> = partial
        .and_then(|range| found.get(range))
        .unwrap_or_default()
        .iter()
        .chain(found.first().filter(|_| wants(SearchReturn::Min)))
        .chain(found.last().filter(|_| wants(SearchReturn::Max)))
        .map(|(_, uid, _)| *uid)
        .collect();
    uids.sort_unstable();
    uids.dedup();
    uids.into_iter().collect()
}

/// The answer to a charset SEARCH, SORT and THREAD cannot decode, `None` for one they can.
pub(crate) fn unsupported_charset(charset: Option<&str>) -> Option<Done> {
    charset
        .filter(|charset| crate::parser::search_charset(charset).is_none())
        .map(|_| Done::no("[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset."))
}

impl Session {
    pub(crate) async fn search(&mut self, tag: &str, search: SearchCommand) -> io::Result<Done> {
        if search.charset.is_some() && self.utf8_accept {
            return Ok(Done::bad("CHARSET isn't allowed after ENABLE UTF8=ACCEPT."));
        }
        let options = search.return_options.clone().unwrap_or_default();
        let save = options.contains(&SearchReturn::Save);
        let update = options.contains(&SearchReturn::Update);
        if update && let Some(refused) = self.refuse_tag_reuse(tag) {
            return Ok(refused);
        }
        let done = self.search_and_answer(tag, search).await?;
        // RFC 5182 2.1: a SAVE that failed leaves `$` empty (a BAD leaves it as it was).
        if save
            && done.status == Status::No
            && let Some(selected) = self.selected.as_mut()
        {
            selected.search.saved = UidList::default();
        }
        Ok(done)
    }

    async fn search_and_answer(&mut self, tag: &str, search: SearchCommand) -> io::Result<Done> {
        if let Some(refused) = unsupported_charset(search.charset.as_deref()) {
            return Ok(refused);
        }
        let modseq_key = uses_modseq(&search.criteria);
        let uid_search = search.uid;
        // IMAP4rev2 answers every SEARCH with ESEARCH: no RETURN is RETURN (ALL).
        let return_options = search
            .return_options
            .or_else(|| self.imap4rev2.then(Vec::new));
        let Some(selected) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected."));
        };
        // `$` is read once, when the search starts: an update context keeps the messages it
        // meant then, and a SAVE below replaces it only after matching.
        let criteria = selected.search.with_saved_result(search.criteria);
        // Changes after these are the update context's to look at.
        let marks = selected.search_marks();
        let context_criteria = return_options
            .as_ref()
            .is_some_and(|options| options.contains(&SearchReturn::Update))
            .then(|| criteria.clone());
        let found = match self.search_matches(criteria).await? {
            Ok(found) => found,
            Err(done) => return Ok(done),
        };
        let numbers: Vec<u32> = found
            .iter()
            .map(|(sequence, uid, _)| if uid_search { *uid } else { *sequence })
            .collect();
        let highest_modseq = found.iter().map(|(_, _, modseq)| *modseq).max();
        let mut line = Vec::new();
        match &return_options {
            None => {
                line.extend_from_slice(b"* SEARCH");
                for number in &numbers {
                    line.extend_from_slice(format!(" {number}").as_bytes());
                }
                if modseq_key && let Some(modseq) = highest_modseq {
                    line.extend_from_slice(format!(" (MODSEQ {modseq})").as_bytes());
                }
                line.extend_from_slice(b"\r\n");
            }
            Some(options) => {
                let partial = options.iter().find_map(|option| match option {
                    SearchReturn::Partial(low, high) => Some((*low, *high)),
                    _ => None,
                });
                let returns_results = partial.is_some()
                    || options.iter().any(|option| {
                        matches!(
                            option,
                            SearchReturn::Min
                                | SearchReturn::Max
                                | SearchReturn::All
                                | SearchReturn::Count
                        )
                    });
                let save = options.contains(&SearchReturn::Save);
                // Only `RETURN ()` means ALL (RFC 4731 3.1): `RETURN (UPDATE)` answers an empty
                // ESEARCH, as Dovecot does, and SAVE alone nothing at all (RFC 5182 1).
                let all = options.is_empty();
                let wants = |option: SearchReturn| {
                    all && option == SearchReturn::All || options.contains(&option)
                };
                // Positions `low..=high` (1-based) of the results, in mailbox order.
                let partial_range = partial.map(|(low, high)| {
                    let start = (low as usize - 1).min(found.len());
                    let end = (high as usize).min(found.len());
                    start..end
                });
                if save && let Some(selected) = self.selected.as_mut() {
                    selected.search.saved = saved_result(&found, &wants, partial_range.clone());
                }
                if let Some(context) = context_criteria {
                    let uids = found.iter().map(|(_, uid, _)| *uid).collect();
                    line.extend(self.start_updates(tag, uid_search, context, None, uids, marks));
                }
                if !save || returns_results {
                    line.extend_from_slice(b"* ESEARCH (TAG ");
                    wire::string(&mut line, tag.as_bytes());
                    line.push(b')');
                    if uid_search {
                        line.extend_from_slice(b" UID");
                    }
                    if let (true, Some(min)) = (wants(SearchReturn::Min), numbers.iter().min()) {
                        line.extend_from_slice(format!(" MIN {min}").as_bytes());
                    }
                    if let (true, Some(max)) = (wants(SearchReturn::Max), numbers.iter().max()) {
                        line.extend_from_slice(format!(" MAX {max}").as_bytes());
                    }
                    if wants(SearchReturn::Count) {
                        line.extend_from_slice(format!(" COUNT {}", numbers.len()).as_bytes());
                    }
                    if wants(SearchReturn::All) && !numbers.is_empty() {
                        line.extend_from_slice(
                            format!(" ALL {}", uid_set_string(&numbers)).as_bytes(),
                        );
                    }
                    if let (Some((low, high)), Some(range)) = (partial, partial_range.clone()) {
                        let part = numbers.get(range).unwrap_or_default();
                        let set = if part.is_empty() {
                            "NIL".to_owned()
                        } else {
                            uid_set_string(part)
                        };
                        line.extend_from_slice(format!(" PARTIAL ({low}:{high} {set})").as_bytes());
                    }
                    // RFC 7162 3.1.5: the highest modseq of the messages returned, so MIN or
                    // MAX alone give their own message's.
                    let returned_modseq = if wants(SearchReturn::All) || wants(SearchReturn::Count)
                    {
                        highest_modseq
                    } else {
                        let min = found.first().filter(|_| wants(SearchReturn::Min));
                        let max = found.last().filter(|_| wants(SearchReturn::Max));
                        let part = partial_range
                            .and_then(|range| found.get(range))
                            .unwrap_or_default();
                        min.into_iter()
                            .chain(max)
                            .chain(part)
                            .map(|(_, _, modseq)| *modseq)
                            .max()
                    };
                    if modseq_key && let Some(modseq) = returned_modseq {
                        line.extend_from_slice(format!(" MODSEQ {modseq}").as_bytes());
                    }
                    line.extend_from_slice(b"\r\n");
                }
            }
        }
        self.conn.write(&line).await?;
        Ok(Done::ok("Search completed."))
    }

    /// The messages of the selected folder that match `criteria`, in sequence order: sequence
    /// number, UID and modseq of each (SEARCH, SORT and THREAD share this). `Err` is the
    /// command's answer when there is no match to give.
    pub(crate) async fn search_matches(
        &mut self,
        criteria: SearchKey,
    ) -> io::Result<Result<Vec<(u32, u32, u64)>, Done>> {
        self.search_matches_among(criteria, None).await
    }

    /// [`Session::search_matches`] among the messages with the UIDs `only` (ascending) when
    /// given: the ones whose flags changed or that arrived, for a search's updates.
    pub(crate) async fn search_matches_among(
        &mut self,
        criteria: SearchKey,
        only: Option<&[u32]>,
    ) -> io::Result<Result<Vec<(u32, u32, u64)>, Done>> {
        if uses_modseq(&criteria) {
            self.enable_condstore().await?;
        }
        let Some(selected) = self.selected.as_ref() else {
            return Ok(Err(Done::bad("No mailbox selected.")));
        };
        let folder = Arc::clone(&selected.folder);
        let snapshot = if uses_size(&criteria) {
            match folder.sized_snapshot().await {
                Ok(snapshot) => snapshot,
                Err(err) => return Ok(Err(self.no_for(&err))),
            }
        } else {
            folder.snapshot()
        };
        let snapshot = self.seen_view(snapshot);
        let need = need(&criteria);
        let scope = Scope {
            last_sequence: u32::try_from(selected.uids.len()).unwrap_or(u32::MAX),
            last_uid: selected.uids.last().unwrap_or(0),
            need,
            now: OffsetDateTime::now_utc().unix_timestamp(),
        };
        let sequence = |index: usize| u32::try_from(index + 1).unwrap_or(u32::MAX);
        let candidates: Vec<(u32, u32, bool)> = match only {
            None => selected
                .uids
                .iter()
                .enumerate()
                .map(|(index, uid)| (sequence(index), uid, selected.is_recent(uid)))
                .collect(),
            Some(uids) => uids
                .iter()
                .filter_map(|&uid| {
                    let index = selected.uids.position(uid)?;
                    Some((sequence(index), uid, selected.is_recent(uid)))
                })
                .collect(),
        };
        let criteria = Arc::new(selected.search.with_saved_result(criteria));
        let mut found: Vec<(u32, u32, u64)> = Vec::new();
        let mut batch = Batch::default();
        for (sequence, uid, recent) in candidates {
            let source = match need {
                Need::Nothing => Source::Index,
                Need::CachedHeaders | Need::Message => {
                    let cached = match need {
                        Need::CachedHeaders => folder.cached(uid, CacheKey::SearchHeaders),
                        _ => None,
                    };
                    match cached {
                        Some(headers) => Source::CachedHeaders(headers),
                        None => match folder.read(uid).await {
                            Ok(Some(bytes)) => Source::File(bytes),
                            Ok(None) => continue,
                            Err(err) => {
                                error!(uid, cause = %err, "cannot read message for SEARCH");
                                return Ok(Err(self.no_for(&err)));
                            }
                        },
                    }
                }
            };
            batch.push(sequence, uid, recent, source);
            if batch.is_full() {
                let work = std::mem::take(&mut batch);
                found.extend(
                    evaluate(&self.ctx.cpu, work, &criteria, &snapshot, &folder, scope).await?,
                );
            }
        }
        if !batch.messages.is_empty() {
            found.extend(
                evaluate(&self.ctx.cpu, batch, &criteria, &snapshot, &folder, scope).await?,
            );
        }
        Ok(Ok(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_counts_every_level() {
        let key = SearchKey::Not(Box::new(SearchKey::Or(
            Box::new(SearchKey::Seen),
            Box::new(SearchKey::And(vec![SearchKey::Deleted, SearchKey::Draft])),
        )));
        assert_eq!(weight(&key), 6);
        assert_eq!(weight(&SearchKey::Seen), 1);
    }
}
