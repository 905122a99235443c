//! SORT and UID SORT (RFC 5256) with SORT=DISPLAY's keys (RFC 5957) and ESORT's RETURN
//! options (RFC 5267 3, PARTIAL of 4.4). The messages are those SEARCH would match (the one
//! matcher, `Session::search_matches`); what is compared comes from the folder's cache
//! (`CacheKey::SortValues`), or from the file once, then cached. THREAD loads its messages
//! the same way ([`Session::load_sortable`]). A sort reads each key's values of every message
//! once into a column (numbers, or the strings' bytes one after another) and orders message
//! indices, so a large folder costs no allocation per message. `RETURN (UPDATE)` keeps the
//! sorted result updated (CONTEXT=SORT, RFC 5267 4.3) as the same context a SEARCH keeps
//! (`search_context.rs`), placing a joining message with [`message_order`].

use std::cmp::Ordering;
use std::io;
use std::sync::Arc;

use mailstead_store::{CacheKey, Folder};
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
/// what [`sort_order`] gives a whole result, for placing a message into a sorted context.
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

/// The indices of `messages` (given in sequence order) ordered by `keys`; messages equal on
/// every key keep their sequence order (RFC 5256 3). Every SORT answer comes from here.
pub(crate) fn sort_order(messages: &[Loaded], keys: &[SortCriterion]) -> Vec<usize> {
    let columns: Vec<(Column, bool)> = keys
        .iter()
        .map(|criterion| (Column::of(messages, criterion.key), criterion.reverse))
        .collect();
    let mut order: Vec<usize> = (0..messages.len()).collect();
    // The index breaks ties, so an unstable sort gives the one stable answer.
    order.sort_unstable_by(|&a, &b| {
        for (column, reverse) in &columns {
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
        let mut cached = if headers {
            let uids: Vec<u32> = found.iter().map(|&(_, uid, _)| uid).collect();
            folder.cached_each(&uids, CacheKey::SortValues)
        } else {
            Vec::new()
        }
        .into_iter();
        let mut loaded = Vec::with_capacity(found.len());
        let mut unparsed = Unparsed::default();
        // `found` ascends by UID as the snapshot does: one walk finds every message's entry.
        let mut metas = snapshot.messages.iter().peekable();
        for (sequence, uid, modseq) in found {
            let encoded = cached
                .next()
                .flatten()
                .filter(|bytes| SortValues::is_encoded(bytes));
            while metas.next_if(|meta| meta.uid < uid).is_some() {}
            let Some(meta) = metas.next_if(|meta| meta.uid == uid) else {
                continue;
            };
            if headers && encoded.is_none() {
                match folder.read(uid).await {
                    Ok(Some(bytes)) => {
                        unparsed.bytes += bytes.len();
                        unparsed.files.push((loaded.len(), uid, bytes));
                    }
                    Ok(None) => continue,
                    Err(err) => {
                        error!(uid, cause = %err, "cannot read message for SORT/THREAD");
                        return Ok(Err(self.no_for(&err)));
                    }
                }
            }
            loaded.push(Loaded {
                sequence,
                uid,
                modseq,
                arrival: meta.internal_date,
                size: meta.rfc822_size.unwrap_or(0),
                encoded,
            });
            if unparsed.is_full() {
                let work = std::mem::take(&mut unparsed);
                let folder = Arc::clone(&folder);
                for (index, encoded) in self.ctx.cpu.run(move || work.parse(&folder)).await? {
                    if let Some(message) = loaded.get_mut(index) {
                        message.encoded = Some(encoded);
                    }
                }
            }
        }
        if !unparsed.files.is_empty() {
            let folder = Arc::clone(&folder);
            for (index, encoded) in self.ctx.cpu.run(move || unparsed.parse(&folder)).await? {
                if let Some(message) = loaded.get_mut(index) {
                    message.encoded = Some(encoded);
                }
            }
        }
        Ok(Ok(loaded))
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
        let loaded = match self
            .load_sortable(found, sizes, reads_header(&sort.keys))
            .await?
        {
            Ok(loaded) => loaded,
            Err(done) => return Ok(done),
        };
        let (keys, uid) = (sort.keys.clone(), sort.uid);
        let (numbers, sorted_uids, highest_modseq) = self
            .ctx
            .cpu
            .run(move || {
                let highest_modseq = loaded.iter().map(|m| m.modseq).max();
                let sorted: Vec<&Loaded> = sort_order(&loaded, &keys)
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
