//! SORT and UID SORT (RFC 5256) with SORT=DISPLAY's keys (RFC 5957) and ESORT's RETURN
//! options (RFC 5267 3, PARTIAL of 4.4). The messages are those SEARCH would match (the one
//! matcher, `Session::search_matches`); what is compared comes from the folder's cache
//! (`CacheKey::SortValues`), or from the file once, then cached. THREAD loads its messages
//! the same way ([`Session::load_sortable`]). A sort reads each key's values of every message
//! once into a column (numbers, or the strings' bytes one after another) and orders message
//! indices, so a large folder costs no allocation per message.
//!
//! Between commands the folder keeps, per header key (not ARRIVAL or SIZE, which the index
//! holds), each message's rank by that key ([`mailstead_store::SortRanks`], made by
//! [`rank_by`] with the columns' comparison: equal values, equal ranks), as Dovecot keeps sort
//! IDs. A sort whose every match has a rank orders integers and reads no cached value; one
//! that meets a message without a rank (delivered since) reads the values, and when it
//! reads at least half the folder anyway it makes new ranks of every cached message first.
//! Expunged messages keep their ranks unused until then. Memory: 8 bytes a message for each
//! key sorted by. `RETURN (UPDATE)` keeps the
//! sorted result updated (CONTEXT=SORT, RFC 5267 4.3) as the same context a SEARCH keeps
//! (`search_context.rs`), placing a joining message with [`message_order`].

use std::cmp::Ordering;
use std::io;
use std::sync::Arc;

use mailstead_store::{CacheKey, Folder, RankKey, SortRanks};
use tracing::error;

use super::search::uses_modseq;
use crate::command::{SearchReturn, SortCommand, SortCriterion, SortKey};
use crate::message::Message;
use crate::message::sort_values::{CachedFields, Field, SortValues, Wanted};
use crate::session::{Done, Session};
use crate::wire;

/// One matching message with everything a thread algorithm reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sortable {
    pub(crate) sequence: u32,
    pub(crate) uid: u32,
    /// INTERNALDATE, Unix seconds.
    pub(crate) arrival: i64,
    pub(crate) values: SortValues,
}

impl Sortable {
    /// RFC 5256: the Date: header, or INTERNALDATE when it has none that can be read.
    pub(crate) fn sent(&self) -> i64 {
        self.values.sent.unwrap_or(self.arrival)
    }
}

/// One matching message as SORT and THREAD load it: what the index says and, when a header
/// value is wanted, the cached form of its [`SortValues`] (`None`: a damaged cache entry,
/// which sorts as a message without those header fields).
#[derive(Debug, Clone, Default)]
pub(crate) struct Loaded {
    pub(crate) sequence: u32,
    pub(crate) uid: u32,
    pub(crate) modseq: u64,
    /// INTERNALDATE, Unix seconds.
    pub(crate) arrival: i64,
    /// RFC822.SIZE (0 unless the sort asked for sizes).
    pub(crate) size: u64,
    pub(crate) encoded: Option<Arc<[u8]>>,
}

impl Loaded {
    fn fields(&self) -> Option<CachedFields<'_>> {
        self.encoded.as_deref().and_then(CachedFields::parse)
    }
}

/// What one sort key compares, for each loaded message (by its index).
enum Column {
    Numbers(Vec<i64>),
    /// The folder's kept ranks by the key ([`rank_by`]): compared as the values they stand
    /// for.
    Ranks(Vec<u32>),
    /// The case-mapped strings one after another; message `i`'s is
    /// `bytes[bounds[i]..bounds[i + 1]]`.
    Texts {
        bytes: Vec<u8>,
        bounds: Vec<usize>,
    },
}

impl Column {
    fn of(messages: &[Loaded], key: SortKey) -> Column {
        let Some(field) = text_field(key) else {
            return Column::Numbers(
                messages
                    .iter()
                    .map(|m| number_key(m, m.fields(), key))
                    .collect(),
            );
        };
        let mut bytes = Vec::new();
        let mut bounds = Vec::with_capacity(messages.len() + 1);
        bounds.push(0);
        for message in messages {
            bytes.extend_from_slice(text_key(message.fields(), field));
            bounds.push(bytes.len());
        }
        Column::Texts { bytes, bounds }
    }

    fn compare(&self, a: usize, b: usize) -> Ordering {
        match self {
            Column::Numbers(numbers) => numbers.get(a).cmp(&numbers.get(b)),
            Column::Ranks(ranks) => ranks.get(a).cmp(&ranks.get(b)),
            Column::Texts { bytes, bounds } => {
                let text = |i: usize| {
                    let (Some(&start), Some(&end)) = (bounds.get(i), bounds.get(i + 1)) else {
                        return &[][..];
                    };
                    bytes.get(start..end).unwrap_or_default()
                };
                text(a).cmp(text(b))
            }
        }
    }
}

/// The order a folder keeps for `key` between commands; `None` for the keys the index
/// answers (ARRIVAL, SIZE), which cost no more to read than a rank.
fn rank_key(key: SortKey) -> Option<RankKey> {
    match key {
        SortKey::Arrival | SortKey::Size => None,
        SortKey::Date => Some(RankKey::Date),
        SortKey::Subject => Some(RankKey::Subject),
        SortKey::From => Some(RankKey::From),
        SortKey::To => Some(RankKey::To),
        SortKey::Cc => Some(RankKey::Cc),
        SortKey::DisplayFrom => Some(RankKey::DisplayFrom),
        SortKey::DisplayTo => Some(RankKey::DisplayTo),
    }
}

/// The header field a key compares as text; `None` for the keys compared as numbers.
fn text_field(key: SortKey) -> Option<Field> {
    match key {
        SortKey::Arrival | SortKey::Size | SortKey::Date => None,
        SortKey::Subject => Some(Field::Subject),
        SortKey::From => Some(Field::From),
        SortKey::To => Some(Field::To),
        SortKey::Cc => Some(Field::Cc),
        SortKey::DisplayFrom => Some(Field::DisplayFrom),
        SortKey::DisplayTo => Some(Field::DisplayTo),
    }
}

/// What a key compares of a message's header `field` (empty when it has none).
fn text_key(fields: Option<CachedFields<'_>>, field: Field) -> &[u8] {
    fields.and_then(|f| f.get(field)).unwrap_or_default()
}

/// What a key [`text_field`] has no field for compares of a message.
fn number_key(message: &Loaded, fields: Option<CachedFields<'_>>, key: SortKey) -> i64 {
    match key {
        SortKey::Size => i64::try_from(message.size).unwrap_or(i64::MAX),
        // RFC 5256: the Date: header, or INTERNALDATE when it has none that can be read.
        SortKey::Date => fields
            .and_then(|f| f.sent())
            .flatten()
            .unwrap_or(message.arrival),
        // Arrival; the text keys never come here ([`text_field`] names their fields).
        SortKey::Arrival
        | SortKey::Subject
        | SortKey::From
        | SortKey::To
        | SortKey::Cc
        | SortKey::DisplayFrom
        | SortKey::DisplayTo => message.arrival,
    }
}

/// The order of two messages by `keys`, then by UID (mailbox order, so no two are equal):
/// what [`order_by`] gives a whole result, for placing a message into a sorted context.
pub(crate) fn message_order(a: &Loaded, b: &Loaded, keys: &[SortCriterion]) -> Ordering {
    let (fields_a, fields_b) = (a.fields(), b.fields());
    for criterion in keys {
        let order = match text_field(criterion.key) {
            Some(field) => text_key(fields_a, field).cmp(text_key(fields_b, field)),
            None => {
                number_key(a, fields_a, criterion.key).cmp(&number_key(b, fields_b, criterion.key))
            }
        };
        let order = if criterion.reverse {
            order.reverse()
        } else {
            order
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.uid.cmp(&b.uid)
}

/// Each message's rank by `key` alone: its place among the distinct values, equal values
/// equal ranks. The comparison is [`order_by`]'s ([`Column::compare`]), so ordering by
/// ranks gives the answer ordering by the values gives.
fn rank_by(messages: &[Loaded], key: SortKey) -> Vec<u32> {
    let column = Column::of(messages, key);
    let mut order: Vec<usize> = (0..messages.len()).collect();
    order.sort_unstable_by(|&a, &b| column.compare(a, b));
    let mut ranks = vec![0; messages.len()];
    let mut rank = 0u32;
    let mut previous = None;
    for index in order {
        if previous.is_some_and(|previous| column.compare(previous, index) != Ordering::Equal) {
            rank = rank.saturating_add(1);
        }
        if let Some(slot) = ranks.get_mut(index) {
            *slot = rank;
        }
        previous = Some(index);
    }
    ranks
}

/// The folder's kept ranks of `loaded` (ascending by UID) for each of `keys`: `None` for
/// a key the index answers, and `None` for all unless every other key's ranks cover every
/// message.
fn kept_ranks(
    folder: &Folder,
    uid_validity: u32,
    loaded: &[Loaded],
    keys: &[SortCriterion],
) -> Option<Vec<Option<Vec<u32>>>> {
    keys.iter()
        .map(|criterion| match rank_key(criterion.key) {
            None => Some(None),
            Some(key) => folder
                .sort_ranks(key)?
                .ranks_of(uid_validity, loaded.iter().map(|m| m.uid))
                .map(Some),
        })
        .collect()
}

/// Makes and keeps in the folder the ranks by each of `keys` that has them, of every
/// message whose sort values are cached: what a SORT of the whole folder by those keys
/// costs, once, for the SORTs after it.
fn make_ranks(folder: &Folder, keys: &[SortCriterion]) {
    let snapshot = folder.snapshot();
    let uids: Vec<u32> = snapshot.messages.iter().map(|meta| meta.uid).collect();
    let messages: Vec<Loaded> = snapshot
        .messages
        .iter()
        .zip(folder.cached_each(&uids, CacheKey::SortValues))
        .filter_map(|(meta, encoded)| {
            let encoded = encoded.filter(|bytes| SortValues::is_encoded(bytes))?;
            Some(Loaded {
                uid: meta.uid,
                arrival: meta.internal_date,
                encoded: Some(encoded),
                ..Loaded::default()
            })
        })
        .collect();
    let mut made = Vec::new();
    for criterion in keys {
        let Some(key) = rank_key(criterion.key) else {
            continue;
        };
        if made.contains(&key) {
            continue;
        }
        made.push(key);
        let ranked = messages
            .iter()
            .map(|message| message.uid)
            .zip(rank_by(&messages, criterion.key))
            .collect();
        folder.keep_sort_ranks(key, SortRanks::new(snapshot.uid_validity, ranked));
    }
}

/// The indices of `loaded` ordered by `keys`, by each key's `ranks` where given ([`Session::sort_inputs`]) and
/// by the values otherwise.
fn order_of(loaded: &[Loaded], keys: &[SortCriterion], ranks: Vec<Option<Vec<u32>>>) -> Vec<usize> {
    let mut ranks = ranks.into_iter();
    let columns: Vec<(Column, bool)> = keys
        .iter()
        .map(|criterion| {
            let column = match ranks.next().flatten() {
                Some(ranks) => Column::Ranks(ranks),
                None => Column::of(loaded, criterion.key),
            };
            (column, criterion.reverse)
        })
        .collect();
    order_by(&columns, loaded.len())
}

/// The indices `0..count` ordered by `columns` (each with whether it is reversed), then by
/// index. Every SORT answer comes from here.
fn order_by(columns: &[(Column, bool)], count: usize) -> Vec<usize> {
    if let [(Column::Ranks(ranks), reverse)] = columns
        && ranks.len() == count
    {
        // One ranked key: rank and index as one integer, sorted as integers.
        let mut packed: Vec<u64> = ranks
            .iter()
            .zip(0u64..)
            .map(|(&rank, index)| {
                let rank = if *reverse { u32::MAX - rank } else { rank };
                u64::from(rank) << 32 | index
            })
            .collect();
        packed.sort_unstable();
        return packed
            .into_iter()
            .map(|key| (key & u64::from(u32::MAX)) as usize)
            .collect();
    }
    let mut order: Vec<usize> = (0..count).collect();
    // The index breaks ties, so an unstable sort gives the one stable answer.
    order.sort_unstable_by(|&a, &b| {
        for (column, reverse) in columns {
            let order = column.compare(a, b);
            let order = if *reverse { order.reverse() } else { order };
            if order != Ordering::Equal {
                return order;
            }
        }
        a.cmp(&b)
    });
    order
}

/// Whether any key reads the message's header (the others are in the index).
pub(crate) fn reads_header(keys: &[SortCriterion]) -> bool {
    keys.iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size))
}

/// Message files read for their sort values and waiting to be parsed together off the I/O
/// threads: enough to make the trip worth it, little enough that the bytes held at once
/// stay bounded. Each with its index among the loaded messages and its UID.
#[derive(Default)]
struct Unparsed {
    files: Vec<(usize, u32, Vec<u8>)>,
    bytes: usize,
}

impl Unparsed {
    const MAX_MESSAGES: usize = 4096;
    const MAX_BYTES: usize = 4 * 1024 * 1024;

    fn is_full(&self) -> bool {
        self.files.len() >= Unparsed::MAX_MESSAGES || self.bytes >= Unparsed::MAX_BYTES
    }

    /// Parses the files (on a blocking thread) and caches their sort values.
    fn parse(self, folder: &Folder) -> Vec<(usize, Arc<[u8]>)> {
        self.files
            .into_iter()
            .map(|(index, uid, bytes)| {
                let encoded: Arc<[u8]> =
                    Arc::from(SortValues::of(&Message::parse(&bytes)).encode());
                folder.cache(uid, CacheKey::SortValues, Arc::clone(&encoded));
                (index, encoded)
            })
            .collect()
    }
}

/// `1:3,7,5`: the numbers in the order given, ascending runs of consecutive numbers joined
/// (ESORT's ALL and PARTIAL, and a sorted context's updates, keep the sort order).
pub(crate) fn ordered_set_string(out: &mut Vec<u8>, numbers: &[u32]) {
    let mut iter = numbers.iter().copied().peekable();
    let mut first = true;
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&end.wrapping_add(1)) && end != u32::MAX {
            end += 1;
            iter.next();
        }
        if !first {
            out.push(b',');
        }
        first = false;
        wire::number(out, start);
        if start != end {
            out.push(b':');
            wire::number(out, end);
        }
    }
}

impl Session {
    /// The matching messages `found` (sequence, UID, modseq, in sequence order) with their
    /// dates, sizes (`sizes`) and, when `headers`, their cached sort values (read from the
    /// file once, then cached). `Err` is the command's answer when they cannot be read.
    pub(crate) async fn load_sortable(
        &mut self,
        found: Vec<(u32, u32, u64)>,
        sizes: bool,
        headers: bool,
    ) -> io::Result<Result<Vec<Loaded>, Done>> {
        let loaded = match self.load_indexed(found, sizes).await? {
            Ok(loaded) => loaded,
            Err(done) => return Ok(Err(done)),
        };
        if headers {
            self.load_sort_values(loaded).await
        } else {
            Ok(Ok(loaded))
        }
    }

    /// [`Session::load_sortable`] without the sort values: what the index says.
    async fn load_indexed(
        &mut self,
        found: Vec<(u32, u32, u64)>,
        sizes: bool,
    ) -> io::Result<Result<Vec<Loaded>, Done>> {
        let Some(selected) = self.selected.as_ref() else {
            return Ok(Err(Done::bad("No mailbox selected.")));
        };
        let folder = Arc::clone(&selected.folder);
        let snapshot = if sizes {
            match folder.sized_snapshot().await {
                Ok(snapshot) => snapshot,
                Err(err) => return Ok(Err(self.no_for(&err))),
            }
        } else {
            folder.snapshot()
        };
        let mut loaded = Vec::with_capacity(found.len());
        // `found` ascends by UID as the snapshot does: one walk finds every message's entry.
        let mut metas = snapshot.messages.iter().peekable();
        for (sequence, uid, modseq) in found {
            while metas.next_if(|meta| meta.uid < uid).is_some() {}
            let Some(meta) = metas.next_if(|meta| meta.uid == uid) else {
                continue;
            };
            loaded.push(Loaded {
                sequence,
                uid,
                modseq,
                arrival: meta.internal_date,
                size: meta.rfc822_size.unwrap_or(0),
                encoded: None,
            });
        }
        Ok(Ok(loaded))
    }

    /// `loaded` (ascending by UID) with their sort values: from the folder's cache, or read
    /// from the file once, then cached. A message whose file is gone is left out.
    async fn load_sort_values(
        &mut self,
        loaded: Vec<Loaded>,
    ) -> io::Result<Result<Vec<Loaded>, Done>> {
        let Some(selected) = self.selected.as_ref() else {
            return Ok(Err(Done::bad("No mailbox selected.")));
        };
        let folder = Arc::clone(&selected.folder);
        let uids: Vec<u32> = loaded.iter().map(|message| message.uid).collect();
        let cached = folder.cached_each(&uids, CacheKey::SortValues);
        let mut kept = Vec::with_capacity(loaded.len());
        let mut unparsed = Unparsed::default();
        for (mut message, encoded) in loaded.into_iter().zip(cached) {
            message.encoded = encoded.filter(|bytes| SortValues::is_encoded(bytes));
            if message.encoded.is_none() {
                match folder.read(message.uid).await {
                    Ok(Some(bytes)) => {
                        unparsed.bytes += bytes.len();
                        unparsed.files.push((kept.len(), message.uid, bytes));
                    }
                    Ok(None) => continue,
                    Err(err) => {
                        error!(uid = message.uid, cause = %err, "cannot read message for SORT/THREAD");
                        return Ok(Err(self.no_for(&err)));
                    }
                }
            }
            kept.push(message);
            if unparsed.is_full() {
                let work = std::mem::take(&mut unparsed);
                let folder = Arc::clone(&folder);
                for (index, encoded) in self.ctx.cpu.run(move || work.parse(&folder)).await? {
                    if let Some(message) = kept.get_mut(index) {
                        message.encoded = Some(encoded);
                    }
                }
            }
        }
        if !unparsed.files.is_empty() {
            let folder = Arc::clone(&folder);
            for (index, encoded) in self.ctx.cpu.run(move || unparsed.parse(&folder)).await? {
                if let Some(message) = kept.get_mut(index) {
                    message.encoded = Some(encoded);
                }
            }
        }
        Ok(Ok(kept))
    }

    /// What ordering `loaded` (ascending by UID) by `keys` compares ([`order_of`]): per
    /// key, the folder's kept ranks when they cover every message; otherwise no ranks and
    /// the messages with their values (read now), making new ranks first when the sort
    /// reads at least half the folder anyway. `Err` is the command's answer when the values
    /// cannot be read.
    async fn sort_inputs(
        &mut self,
        loaded: Vec<Loaded>,
        keys: &[SortCriterion],
    ) -> io::Result<Result<(Vec<Loaded>, Vec<Option<Vec<u32>>>), Done>> {
        let Some(selected) = self.selected.as_ref() else {
            return Ok(Err(Done::bad("No mailbox selected.")));
        };
        let folder = Arc::clone(&selected.folder);
        let snapshot = folder.snapshot();
        let (mut loaded, mut ranks) = if reads_header(keys) {
            let ranks = kept_ranks(&folder, snapshot.uid_validity, &loaded, keys);
            (loaded, ranks)
        } else {
            (loaded, Some(vec![None; keys.len()]))
        };
        if ranks.is_none() {
            loaded = match self.load_sort_values(loaded).await? {
                Ok(loaded) => loaded,
                Err(done) => return Ok(Err(done)),
            };
            if loaded.len() * 2 >= snapshot.messages.len() {
                let keys = keys.to_vec();
                let uid_validity = snapshot.uid_validity;
                (loaded, ranks) = self
                    .ctx
                    .cpu
                    .run(move || {
                        make_ranks(&folder, &keys);
                        let ranks = kept_ranks(&folder, uid_validity, &loaded, &keys);
                        (loaded, ranks)
                    })
                    .await?;
            }
        }
        let ranks = ranks.unwrap_or_else(|| vec![None; keys.len()]);
        Ok(Ok((loaded, ranks)))
    }

    /// [`Session::load_sortable`] with the `wanted` sort values decoded, for THREAD.
    pub(crate) async fn sortables(
        &mut self,
        found: Vec<(u32, u32, u64)>,
        wanted: Wanted,
    ) -> io::Result<Result<Vec<Sortable>, Done>> {
        let loaded = match self.load_sortable(found, false, true).await? {
            Ok(loaded) => loaded,
            Err(done) => return Ok(Err(done)),
        };
        let sortables = self
            .ctx
            .cpu
            .run(move || {
                loaded
                    .into_iter()
                    .map(|message| Sortable {
                        sequence: message.sequence,
                        uid: message.uid,
                        arrival: message.arrival,
                        values: message
                            .encoded
                            .as_deref()
                            .and_then(|bytes| SortValues::decode_only(bytes, wanted))
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .await?;
        Ok(Ok(sortables))
    }

    pub(crate) async fn sort(&mut self, tag: &str, sort: SortCommand) -> io::Result<Done> {
        if let Some(refused) = super::search::unsupported_charset(Some(&sort.charset)) {
            return Ok(refused);
        }
        let options = sort.return_options.as_deref().unwrap_or_default();
        let update = options.contains(&SearchReturn::Update);
        if update && let Some(refused) = self.refuse_tag_reuse(tag) {
            return Ok(refused);
        }
        let save = options.contains(&SearchReturn::Save);
        let modseq_key = uses_modseq(&sort.criteria);
        let Some(selected) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected."));
        };
        // As for SEARCH: the context keeps the messages `$` meant now, and the changes after
        // these marks are its to look at.
        let criteria = selected.search.with_saved_result(sort.criteria);
        let marks = selected.search_marks();
        let context_criteria = update.then(|| criteria.clone());
        let found = match self.search_matches(criteria).await? {
            Ok(found) => found,
            Err(done) => {
                // RFC 5182 2.1: a SAVE that failed leaves `$` empty.
                if save
                    && done.status == crate::session::Status::No
                    && let Some(selected) = self.selected.as_mut()
                {
                    selected.search.saved = Default::default();
                }
                return Ok(done);
            }
        };
        if save && let Some(selected) = self.selected.as_mut() {
            // `$` keeps every match (in UID order, as a set), whatever the sort returns.
            selected.search.saved = found.iter().map(|&(_, uid, _)| uid).collect();
        }
        let sizes = sort.keys.iter().any(|c| c.key == SortKey::Size);
        let loaded = match self.load_indexed(found, sizes).await? {
            Ok(loaded) => loaded,
            Err(done) => return Ok(done),
        };
        let (loaded, ranks) = match self.sort_inputs(loaded, &sort.keys).await? {
            Ok(inputs) => inputs,
            Err(done) => return Ok(done),
        };
        let (keys, uid) = (sort.keys.clone(), sort.uid);
        let (numbers, sorted_uids, highest_modseq) = self
            .ctx
            .cpu
            .run(move || {
                let highest_modseq = loaded.iter().map(|m| m.modseq).max();
                let sorted: Vec<&Loaded> = order_of(&loaded, &keys, ranks)
                    .into_iter()
                    .filter_map(|i| loaded.get(i))
                    .collect();
                let numbers: Vec<u32> = sorted
                    .iter()
                    .map(|m| if uid { m.uid } else { m.sequence })
                    .collect();
                // An updated sort keeps the UIDs answered, in the order answered.
                let sorted_uids =
                    update.then(|| sorted.iter().map(|m| m.uid).collect::<Vec<u32>>());
                (numbers, sorted_uids, highest_modseq)
            })
            .await?;
        let mut line = Vec::new();
        if let (Some(criteria), Some(results)) = (context_criteria, sorted_uids) {
            let order = Some(sort.keys.clone().into_boxed_slice());
            line.extend(self.start_updates(tag, sort.uid, criteria, order, results, marks));
        }
        match &sort.return_options {
            None => {
                // " 4294967295" at most; most numbers are shorter.
                line.reserve(8 + numbers.len() * 8);
                line.extend_from_slice(b"* SORT");
                for &number in &numbers {
                    line.push(b' ');
                    wire::number(&mut line, number);
                }
                if modseq_key && let Some(modseq) = highest_modseq {
                    line.extend_from_slice(format!(" (MODSEQ {modseq})").as_bytes());
                }
            }
            // RFC 5182 1: SAVE alone answers nothing but the tagged OK (and an UPDATE beside
            // it no ESEARCH either, as for SEARCH).
            Some(options)
                if options.iter().all(|o| {
                    matches!(
                        o,
                        SearchReturn::Save | SearchReturn::Context | SearchReturn::Update
                    )
                }) && save =>
            {
                if !line.is_empty() {
                    self.conn.write(&line).await?;
                }
                return Ok(Done::ok("Sort completed."));
            }
            Some(options) => {
                let all = options.is_empty();
                line.extend_from_slice(b"* ESEARCH (TAG ");
                wire::string(&mut line, tag.as_bytes());
                line.push(b')');
                if sort.uid {
                    line.extend_from_slice(b" UID");
                }
                let wants = |option: SearchReturn| {
                    all && option == SearchReturn::All || options.contains(&option)
                };
                // RFC 5267 3.2: MIN and MAX are the first and last in the sort order.
                if let (true, Some(first)) = (wants(SearchReturn::Min), numbers.first()) {
                    line.extend_from_slice(format!(" MIN {first}").as_bytes());
                }
                if let (true, Some(last)) = (wants(SearchReturn::Max), numbers.last()) {
                    line.extend_from_slice(format!(" MAX {last}").as_bytes());
                }
                if wants(SearchReturn::Count) {
                    line.extend_from_slice(format!(" COUNT {}", numbers.len()).as_bytes());
                }
                if wants(SearchReturn::All) && !numbers.is_empty() {
                    line.extend_from_slice(b" ALL ");
                    ordered_set_string(&mut line, &numbers);
                }
                for option in options {
                    if let SearchReturn::Partial(first, last) = *option {
                        let start = usize::try_from(first - 1).unwrap_or(usize::MAX);
                        let end = usize::try_from(last).unwrap_or(usize::MAX);
                        let window = numbers
                            .get(start.min(numbers.len())..end.min(numbers.len()))
                            .unwrap_or_default();
                        line.extend_from_slice(format!(" PARTIAL ({first}:{last} ").as_bytes());
                        if window.is_empty() {
                            line.extend_from_slice(b"NIL");
                        } else {
                            ordered_set_string(&mut line, window);
                        }
                        line.push(b')');
                    }
                }
                if modseq_key && let Some(modseq) = highest_modseq {
                    line.extend_from_slice(format!(" MODSEQ {modseq}").as_bytes());
                }
            }
        }
        line.extend_from_slice(b"\r\n");
        self.conn.write(&line).await?;
        Ok(Done::ok("Sort completed."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The indices of `messages` (given in sequence order) ordered by `keys`' values, as a
    /// SORT without kept ranks orders them.
    fn sort_order(messages: &[Loaded], keys: &[SortCriterion]) -> Vec<usize> {
        order_of(messages, keys, Vec::new())
    }

    fn message(sequence: u32, arrival: i64, sent: Option<i64>, subject: &str) -> Loaded {
        let values = SortValues {
            sent,
            subject: subject.to_owned(),
            ..SortValues::default()
        };
        Loaded {
            sequence,
            uid: sequence + 100,
            arrival,
            encoded: Some(Arc::from(values.encode())),
            ..Loaded::default()
        }
    }

    fn order(messages: &[Loaded], keys: &[(bool, SortKey)]) -> Vec<u32> {
        let keys: Vec<SortCriterion> = keys
            .iter()
            .map(|&(reverse, key)| SortCriterion { reverse, key })
            .collect();
        sort_order(messages, &keys)
            .into_iter()
            .map(|i| messages[i].sequence)
            .collect()
    }

    #[test]
    fn keys_in_turn_then_sequence_order() {
        let messages = [
            message(1, 50, Some(30), "B"),
            message(2, 10, None, "A"),
            message(3, 20, Some(30), "B"),
            message(4, 40, Some(5), "A"),
        ];
        // Message 2 has no Date: its INTERNALDATE (10) stands in.
        assert_eq!(order(&messages, &[(false, SortKey::Date)]), [4, 2, 1, 3]);
        assert_eq!(order(&messages, &[(true, SortKey::Date)]), [1, 3, 2, 4]);
        assert_eq!(order(&messages, &[(false, SortKey::Arrival)]), [2, 3, 4, 1]);
        assert_eq!(
            order(
                &messages,
                &[(false, SortKey::Subject), (true, SortKey::Arrival)]
            ),
            [4, 2, 1, 3]
        );
        // Equal on every key: sequence order, REVERSE or not.
        assert_eq!(order(&messages, &[(true, SortKey::Cc)]), [1, 2, 3, 4]);
        assert_eq!(order(&messages, &[(true, SortKey::Subject)]), [1, 3, 2, 4]);
    }

    #[test]
    fn strings_compare_by_code_point_and_a_damaged_entry_has_no_header() {
        let mut messages = vec![
            message(1, 5, Some(9), "\u{e9}T\u{c9}"),
            message(2, 6, Some(8), "Z"),
            message(3, 7, Some(7), "ZZ"),
            message(4, 3, Some(1), ""),
        ];
        // Not the cached form: no Date (INTERNALDATE stands in), an empty subject.
        messages[1].encoded = Some(Arc::from(&b"\0sort-values 1\nx\n"[..]));
        messages[2].encoded = None;
        assert_eq!(order(&messages, &[(false, SortKey::Subject)]), [2, 3, 4, 1]);
        assert_eq!(order(&messages, &[(false, SortKey::Date)]), [4, 2, 3, 1]);
    }

    #[test]
    fn equal_values_have_equal_ranks_in_the_values_order() {
        let messages = [
            message(1, 1, Some(30), "B"),
            message(2, 2, None, "A"),
            message(3, 3, Some(30), "B"),
            message(4, 4, Some(1), ""),
            message(5, 5, Some(2), "C"),
        ];
        assert_eq!(rank_by(&messages, SortKey::Subject), [2, 1, 2, 0, 3]);
        // Message 2 has no Date: its INTERNALDATE (2) ties with message 5's Date.
        assert_eq!(rank_by(&messages, SortKey::Date), [2, 1, 2, 0, 1]);
        assert_eq!(rank_by(&messages, SortKey::Cc), [0; 5]);
        assert_eq!(rank_by(&[], SortKey::Subject), Vec::<u32>::new());
    }

    /// Messages with few distinct values (many ties), some without a Date, from a fixed
    /// pseudo-random sequence.
    fn mixed_messages(count: u32) -> Vec<Loaded> {
        let mut state = 0x2545_f491_u32;
        let mut next = move |n: u32| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state % n
        };
        (1..=count)
            .map(|sequence| {
                let subjects = ["", "A", "AB", "B", "\u{c9}T\u{c9}", "Z"];
                let values = SortValues {
                    sent: (next(4) != 0).then(|| i64::from(next(20))),
                    subject: subjects[next(6) as usize].to_owned(),
                    from: ["ANN", "BOB", "ANN.B"][next(3) as usize].to_owned(),
                    ..SortValues::default()
                };
                Loaded {
                    sequence,
                    uid: sequence * 2,
                    arrival: i64::from(next(20)),
                    size: u64::from(next(3)),
                    encoded: Some(Arc::from(values.encode())),
                    ..Loaded::default()
                }
            })
            .collect()
    }

    #[test]
    fn ordering_by_ranks_answers_as_ordering_by_the_values_and_message_order() {
        let messages = mixed_messages(600);
        let key_sets: [&[(bool, SortKey)]; 6] = [
            &[(false, SortKey::Subject)],
            &[(true, SortKey::Subject)],
            &[(false, SortKey::Date)],
            &[(false, SortKey::From), (true, SortKey::Date)],
            &[(true, SortKey::Subject), (false, SortKey::Arrival)],
            &[
                (false, SortKey::Size),
                (true, SortKey::From),
                (false, SortKey::Subject),
            ],
        ];
        for keys in key_sets {
            let keys: Vec<SortCriterion> = keys
                .iter()
                .map(|&(reverse, key)| SortCriterion { reverse, key })
                .collect();
            let by_values = sort_order(&messages, &keys);
            // As a SORT with kept ranks orders them.
            let ranks = keys
                .iter()
                .map(|c| rank_key(c.key).map(|_| rank_by(&messages, c.key)))
                .collect();
            let by_ranks = order_of(&messages, &keys, ranks);
            assert_eq!(by_ranks, by_values, "{keys:?}");
            // CONTEXT=SORT places a message with message_order: the same order.
            let mut by_message_order: Vec<usize> = (0..messages.len()).collect();
            by_message_order.sort_by(|&a, &b| message_order(&messages[a], &messages[b], &keys));
            assert_eq!(by_message_order, by_values, "{keys:?}");
            // Ties are broken by sequence order (not every message compares equal).
            assert_ne!(
                by_values,
                (0..messages.len()).collect::<Vec<_>>(),
                "{keys:?}"
            );
        }
    }

    #[test]
    fn kept_ranks_answer_only_when_they_cover_every_message() {
        let messages = mixed_messages(50);
        let ranks_of = |messages: &[Loaded]| {
            let ranked = messages
                .iter()
                .map(|m| m.uid)
                .zip(rank_by(messages, SortKey::Subject))
                .collect();
            SortRanks::new(9, ranked)
        };
        let ranks = ranks_of(&messages[..40]);
        let uids = |messages: &[Loaded]| messages.iter().map(|m| m.uid).collect::<Vec<_>>();
        // An expunged message (10) is left out of the walk; the ranks still answer.
        let mut without_one = messages[..40].to_vec();
        without_one.remove(10);
        let kept = ranks.ranks_of(9, uids(&without_one)).expect("all ranked");
        let mut expected = rank_by(&messages[..40], SortKey::Subject);
        expected.remove(10);
        assert_eq!(kept, expected);
        // A message that came after the ranks were made: none, so the values are read.
        assert_eq!(ranks.ranks_of(9, uids(&messages[..41])), None);
    }

    #[test]
    fn ordered_sets_keep_the_order() {
        let set = |numbers: &[u32]| {
            let mut out = Vec::new();
            ordered_set_string(&mut out, numbers);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(set(&[1, 2, 3, 7, 5, 6]), "1:3,7,5:6");
        assert_eq!(set(&[3, 2, 1]), "3,2,1");
        assert_eq!(set(&[u32::MAX, 1]), "4294967295,1");
        assert_eq!(set(&[]), "");
    }
}
