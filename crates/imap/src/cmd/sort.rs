//! SORT and UID SORT (RFC 5256) with SORT=DISPLAY's keys (RFC 5957) and ESORT's RETURN
//! options (RFC 5267 3, PARTIAL of 4.4). The messages are those SEARCH would match (the one
//! matcher, `Session::search_matches`); what is compared comes from the folder's cache
//! (`CacheKey::SortValues`), or from the file once, then cached. THREAD loads its messages
//! the same way ([`Session::sortables`]). `RETURN (UPDATE)` keeps the sorted result updated
//! (CONTEXT=SORT, RFC 5267 4.3) as the same context a SEARCH keeps (`search_context.rs`).

use std::cmp::Ordering;
use std::io;
use std::sync::Arc;

use mailstead_store::{CacheKey, Folder};
use tracing::error;

use super::search::uses_modseq;
use crate::command::{SearchReturn, SortCommand, SortCriterion, SortKey};
use crate::message::Message;
use crate::message::sort_values::{SortValues, Wanted};
use crate::session::{Done, Session};
use crate::wire;

/// One matching message with everything a sort key or a thread algorithm reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sortable {
    pub(crate) sequence: u32,
    pub(crate) uid: u32,
    pub(crate) modseq: u64,
    /// INTERNALDATE, Unix seconds.
    pub(crate) arrival: i64,
    /// RFC822.SIZE (0 unless the sort asked for sizes).
    pub(crate) size: u64,
    pub(crate) values: SortValues,
}

impl Sortable {
    /// RFC 5256: the Date: header, or INTERNALDATE when it has none that can be read.
    pub(crate) fn sent(&self) -> i64 {
        self.values.sent.unwrap_or(self.arrival)
    }
}

/// Orders `messages` by `keys`; messages equal on every key are in mailbox order (RFC 5256 3).
pub(crate) fn sort_messages(messages: &mut [Sortable], keys: &[SortCriterion]) {
    messages.sort_by(|a, b| sort_order(a, b, keys));
}

/// The one order every SORT answer and every sorted context's update follow: the keys in
/// turn, then the UID (mailbox order), so no two messages are equal.
pub(crate) fn sort_order(a: &Sortable, b: &Sortable, keys: &[SortCriterion]) -> Ordering {
    compare(a, b, keys).then(a.uid.cmp(&b.uid))
}

fn compare(a: &Sortable, b: &Sortable, keys: &[SortCriterion]) -> Ordering {
    for criterion in keys {
        let (x, y) = (&a.values, &b.values);
        let order = match criterion.key {
            SortKey::Arrival => a.arrival.cmp(&b.arrival),
            SortKey::Cc => x.cc.cmp(&y.cc),
            SortKey::Date => a.sent().cmp(&b.sent()),
            SortKey::From => x.from.cmp(&y.from),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Subject => x.subject.cmp(&y.subject),
            SortKey::To => x.to.cmp(&y.to),
            SortKey::DisplayFrom => x.display_from.cmp(&y.display_from),
            SortKey::DisplayTo => x.display_to.cmp(&y.display_to),
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
    Ordering::Equal
}

/// Whether any key reads the message's header (the others are in the index), and which of
/// the cached strings.
pub(crate) fn wanted(keys: &[SortCriterion]) -> Option<Wanted> {
    let header = keys
        .iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
    header.then(|| Wanted {
        subject: keys.iter().any(|c| c.key == SortKey::Subject),
        addresses: keys.iter().any(|c| {
            matches!(
                c.key,
                SortKey::From
                    | SortKey::To
                    | SortKey::Cc
                    | SortKey::DisplayFrom
                    | SortKey::DisplayTo
            )
        }),
        ids: false,
    })
}

/// A message whose values are still to be decoded or parsed.
enum Pending {
    /// The index answers (no header key).
    Index,
    Cached(Arc<[u8]>),
    File(Vec<u8>),
}

/// What one trip to the CPU pool handles: enough to make the trip worth it, little enough
/// that file contents held at once stay bounded.
#[derive(Default)]
struct Batch {
    messages: Vec<(Sortable, Pending)>,
    bytes: usize,
}

impl Batch {
    const MAX_MESSAGES: usize = 4096;
    const MAX_BYTES: usize = 4 * 1024 * 1024;

    fn is_full(&self) -> bool {
        self.messages.len() >= Batch::MAX_MESSAGES || self.bytes >= Batch::MAX_BYTES
    }
}

/// Decodes (the `wanted` strings) or parses a batch (on a blocking thread), caching what a
/// file gave.
fn finish_batch(batch: Batch, folder: &Folder, wanted: Wanted) -> Vec<Sortable> {
    batch
        .messages
        .into_iter()
        .map(|(mut sortable, pending)| {
            match pending {
                Pending::Index => {}
                // The marker was checked; a damaged entry sorts as a message without headers.
                Pending::Cached(bytes) => {
                    sortable.values = SortValues::decode_only(&bytes, wanted).unwrap_or_default();
                }
                Pending::File(bytes) => {
                    let values = SortValues::of(&Message::parse(&bytes));
                    folder.cache(
                        sortable.uid,
                        CacheKey::SortValues,
                        Arc::from(values.encode()),
                    );
                    sortable.values = values;
                }
            }
            sortable
        })
        .collect()
}

/// `1:3,7,5`: the numbers in the order given, ascending runs of consecutive numbers joined
/// (ESORT's ALL and PARTIAL, and a sorted context's updates, keep the sort order).
pub(crate) fn ordered_set_string(numbers: &[u32]) -> String {
    let mut out = String::new();
    let mut iter = numbers.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&end.wrapping_add(1)) && end != u32::MAX {
            end += 1;
            iter.next();
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
    }
    out
}

impl Session {
    /// The matching messages `found` (sequence, UID, modseq, in sequence order) with their
    /// dates, sizes (`sizes`) and the `headers` values wanted. `Err` is the command's answer
    /// when they cannot be read.
    pub(crate) async fn sortables(
        &mut self,
        found: Vec<(u32, u32, u64)>,
        sizes: bool,
        headers: Option<Wanted>,
    ) -> io::Result<Result<Vec<Sortable>, Done>> {
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
        let wanted = headers.unwrap_or(Wanted::ALL);
        let mut sortables = Vec::with_capacity(found.len());
        let mut batch = Batch::default();
        for (sequence, uid, modseq) in found {
            let Some(meta) = snapshot
                .position(uid)
                .and_then(|i| snapshot.messages.get(i))
            else {
                continue;
            };
            let sortable = Sortable {
                sequence,
                uid,
                modseq,
                arrival: meta.internal_date,
                size: meta.rfc822_size.unwrap_or(0),
                values: SortValues::default(),
            };
            let pending = if headers.is_none() {
                Pending::Index
            } else {
                match folder
                    .cached(uid, CacheKey::SortValues)
                    .filter(|bytes| SortValues::is_encoded(bytes))
                {
                    Some(bytes) => Pending::Cached(bytes),
                    None => match folder.read(uid).await {
                        Ok(Some(bytes)) => {
                            batch.bytes += bytes.len();
                            Pending::File(bytes)
                        }
                        Ok(None) => continue,
                        Err(err) => {
                            error!(uid, cause = %err, "cannot read message for SORT/THREAD");
                            return Ok(Err(self.no_for(&err)));
                        }
                    },
                }
            };
            batch.messages.push((sortable, pending));
            if batch.is_full() {
                let work = std::mem::take(&mut batch);
                let folder = Arc::clone(&folder);
                sortables.extend(
                    self.ctx
                        .cpu
                        .run(move || finish_batch(work, &folder, wanted))
                        .await?,
                );
            }
        }
        if !batch.messages.is_empty() {
            let folder = Arc::clone(&folder);
            sortables.extend(
                self.ctx
                    .cpu
                    .run(move || finish_batch(batch, &folder, wanted))
                    .await?,
            );
        }
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
        let mut sortables = match self.sortables(found, sizes, wanted(&sort.keys)).await? {
            Ok(sortables) => sortables,
            Err(done) => return Ok(done),
        };
        let keys = sort.keys.clone();
        let sorted: Vec<(u32, u32, u64)> = self
            .ctx
            .cpu
            .run(move || {
                sort_messages(&mut sortables, &keys);
                sortables
                    .into_iter()
                    .map(|s| (if sort.uid { s.uid } else { s.sequence }, s.uid, s.modseq))
                    .collect()
            })
            .await?;
        let mut line = Vec::new();
        if let Some(criteria) = context_criteria {
            // The context holds what the client was answered, in the order answered.
            let results = sorted.iter().map(|&(_, uid, _)| uid).collect();
            let order = Some(sort.keys.clone().into_boxed_slice());
            line.extend(self.start_updates(tag, sort.uid, criteria, order, results, marks));
        }
        let numbers: Vec<u32> = sorted.iter().map(|&(number, _, _)| number).collect();
        let highest_modseq = sorted.iter().map(|&(_, _, modseq)| modseq).max();
        match &sort.return_options {
            None => {
                line.extend_from_slice(b"* SORT");
                for number in &numbers {
                    line.extend_from_slice(format!(" {number}").as_bytes());
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
                    line.extend_from_slice(
                        format!(" ALL {}", ordered_set_string(&numbers)).as_bytes(),
                    );
                }
                for option in options {
                    if let SearchReturn::Partial(first, last) = *option {
                        let start = usize::try_from(first - 1).unwrap_or(usize::MAX);
                        let end = usize::try_from(last).unwrap_or(usize::MAX);
                        let window = numbers
                            .get(start.min(numbers.len())..end.min(numbers.len()))
                            .unwrap_or_default();
                        let set = if window.is_empty() {
                            "NIL".to_owned()
                        } else {
                            ordered_set_string(window)
                        };
                        line.extend_from_slice(
                            format!(" PARTIAL ({first}:{last} {set})").as_bytes(),
                        );
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

    fn message(sequence: u32, arrival: i64, sent: Option<i64>, subject: &str) -> Sortable {
        Sortable {
            sequence,
            uid: sequence + 100,
            arrival,
            values: SortValues {
                sent,
                subject: subject.to_owned(),
                ..SortValues::default()
            },
            ..Sortable::default()
        }
    }

    fn order(messages: &[Sortable], keys: &[(bool, SortKey)]) -> Vec<u32> {
        let keys: Vec<SortCriterion> = keys
            .iter()
            .map(|&(reverse, key)| SortCriterion { reverse, key })
            .collect();
        let mut messages = messages.to_vec();
        sort_messages(&mut messages, &keys);
        messages.iter().map(|m| m.sequence).collect()
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
    }

    #[test]
    fn ordered_sets_keep_the_order() {
        assert_eq!(ordered_set_string(&[1, 2, 3, 7, 5, 6]), "1:3,7,5:6");
        assert_eq!(ordered_set_string(&[3, 2, 1]), "3,2,1");
        assert_eq!(ordered_set_string(&[u32::MAX, 1]), "4294967295,1");
        assert_eq!(ordered_set_string(&[]), "");
    }
}
