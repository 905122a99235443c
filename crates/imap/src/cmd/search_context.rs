//! What a session keeps of its searches while a folder is selected: the saved result `$`
//! (RFC 5182 SEARCHRES) and the searches and sorts whose results it keeps up to date (RFC 5267
//! CONTEXT=SEARCH and CONTEXT=SORT: `RETURN (UPDATE)`, ADDTO and REMOVEFROM, CANCELUPDATE).
//! Both live in [`Selected`], so SELECT, EXAMINE, CLOSE and UNSELECT end them.
//!
//! An update context holds the UIDs of its matches. After each command (and in IDLE) the
//! refresh that reports EXISTS, EXPUNGE and FETCH FLAGS also looks at the messages that
//! arrived or changed since the context last looked, matches only those against the
//! criteria, and reports the difference: REMOVEFROM for expunged matches before the
//! EXPUNGE/VANISHED that ends their sequence numbers, ADDTO after the EXISTS that gives them
//! theirs (RFC 5267 4.3.3, 4.3.4). Criteria whose answer depends on more than the message
//! (sequence numbers, `*`, WITHIN's clock) are matched again over the whole view instead.
//!
//! A SEARCH's results are kept in mailbox order and its updates carry position 0, as RFC 5267
//! allows for SEARCH. A SORT's context is the same context with the sort keys: its results are
//! kept in the sort order, and each update pair carries the position where its run of
//! messages leaves or goes, as the list is when the client applies that pair. Where an added
//! message goes is found by binary search over the kept order ([`Placement`]), comparing the
//! values SORT compares (`Session::load_sortable`: the folder's cache, or the file once), so a
//! message joining costs about log2(n) values read, not a new sort. What a sort compares never
//! changes while a message keeps its UID (the message, its INTERNALDATE and RFC822.SIZE are
//! immutable): a flag change never moves a message in a sorted context, it only makes it join
//! (at its sorted place) or leave. While expunges are not yet told (during FETCH, STORE,
//! SEARCH, SORT and THREAD by sequence number), a sorted context's results may hold messages that can
//! no longer be read to compare: its update waits for the refresh that tells the expunges.
//!
//! Memory: a context holds 4 bytes per matching message (its UIDs), its criteria and, for a
//! sort, its keys. Placing added messages holds, for the time of the update, their sort values
//! and those of the results' messages compared with: at most min(n, added × (log2 n + 1)).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::io;

use mailstead_store::Snapshot;
use tracing::debug;

use crate::cmd::sort::{Loaded, message_order, ordered_set_string, reads_header};
use crate::cmd::uid_set_string;
use crate::command::{SearchKey, SeqNumber, SeqRange, SequenceSet, SortCriterion, SortKey};
use crate::session::{Done, Selected, Session};
use crate::uids::UidList;
use crate::wire;

/// Searches and sorts one session may keep updated at once, together; one more is answered,
/// without updates, with `NO [NOUPDATE]`. Each costs a match of its criteria against every
/// changed message (and a sort, placing the ones that join).
pub(crate) const MAX_UPDATE_CONTEXTS: usize = 8;

/// The selected folder's searches, as this session knows them.
#[derive(Default)]
pub(crate) struct SearchState {
    /// `$`: the UIDs the last `SEARCH RETURN (SAVE)` kept. Expunged ones leave when the client
    /// is told of the expunge.
    pub(crate) saved: UidList,
    updates: Vec<UpdateContext>,
}

/// Where the view stood when a search matched: the changes after it are its context's to
/// look at.
#[derive(Clone, Copy)]
pub(crate) struct Marks {
    /// Flag changes up to this modseq are in the results.
    modseq: u64,
    /// Messages from this UID on are not.
    uid_next: u32,
    /// The view's expunge serial.
    expunges: u64,
}

impl Selected {
    /// Where the view stands now, for a context about to be matched.
    pub(crate) fn search_marks(&self) -> Marks {
        Marks {
            modseq: self.folder.snapshot().highest_modseq,
            uid_next: self.uid_next,
            expunges: self.known_expunges,
        }
    }
}

/// A `SEARCH` or `SORT` with `RETURN (UPDATE)` whose result changes are reported.
struct UpdateContext {
    /// The searching command's tag, which the updates carry.
    tag: String,
    /// UID SEARCH/SORT: updates carry UIDs, else sequence numbers.
    uid: bool,
    /// With `$` already replaced by the messages it meant when the search ran.
    criteria: SearchKey,
    /// A SORT's keys: the results are kept in their order and updates carry positions.
    /// `None` for a SEARCH: mailbox order, position 0.
    order: Option<Box<[SortCriterion]>>,
    /// The UIDs matching, as the client holds them: ascending for a search, in the sort
    /// order for a sort.
    results: Vec<u32>,
    /// What has been matched.
    marks: Marks,
    /// The criteria depend on the view (sequence numbers, `*`) or the clock (WITHIN).
    whole_view: bool,
}

/// One pair of an ADDTO or REMOVEFROM: a context position (1-based, 0 for mailbox order) and
/// the messages there, in the order they sit.
#[derive(Debug, PartialEq, Eq)]
struct Pair {
    position: u32,
    uids: Vec<u32>,
}

fn position(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

impl UpdateContext {
    /// Takes `leaving` (ascending UIDs) out of the results: the REMOVEFROM pairs that say so.
    /// In a sort, each run of neighbours leaving is one pair, at the position its first
    /// message has once the pairs before it were applied.
    fn remove(&mut self, leaving: &[u32]) -> Vec<Pair> {
        if leaving.is_empty() {
            return Vec::new();
        }
        if self.order.is_none() {
            let gone: Vec<u32> = self
                .results
                .iter()
                .copied()
                .filter(|uid| leaving.binary_search(uid).is_ok())
                .collect();
            self.results = difference(&self.results, &gone);
            return vec![Pair {
                position: 0,
                uids: gone,
            }];
        }
        let mut pairs: Vec<Pair> = Vec::new();
        let mut kept = Vec::with_capacity(self.results.len());
        let mut taken = 0;
        let mut last_taken = None;
        for (index, &uid) in self.results.iter().enumerate() {
            if leaving.binary_search(&uid).is_err() {
                kept.push(uid);
                continue;
            }
            match pairs.last_mut() {
                Some(pair) if last_taken.is_some_and(|last| last + 1 == index) => {
                    pair.uids.push(uid);
                }
                _ => pairs.push(Pair {
                    position: position(index - taken + 1),
                    uids: vec![uid],
                }),
            }
            taken += 1;
            last_taken = Some(index);
        }
        self.results = kept;
        pairs
    }

    /// Puts a search's `joining` (ascending UIDs) into its results: one pair at position 0.
    fn insert_in_mailbox_order(&mut self, joining: &[u32]) -> Vec<Pair> {
        if joining.is_empty() {
            return Vec::new();
        }
        self.results.extend_from_slice(joining);
        self.results.sort_unstable();
        vec![Pair {
            position: 0,
            uids: joining.to_vec(),
        }]
    }
}

/// Puts `joining` (in sort order, each with how many of `order`'s messages go before it)
/// into `order`: the ADDTO pairs, one per run of neighbours, each at the position its first
/// message takes once the pairs before it were applied.
fn insert_in_sort_order(order: &mut Vec<u32>, joining: &[(u32, usize)]) -> Vec<Pair> {
    let mut merged = Vec::with_capacity(order.len() + joining.len());
    let mut pairs: Vec<Pair> = Vec::new();
    let mut copied = 0;
    let mut previous = None;
    for (inserted, &(uid, before)) in joining.iter().enumerate() {
        let before = before.clamp(copied, order.len());
        merged.extend_from_slice(order.get(copied..before).unwrap_or_default());
        copied = before;
        match pairs.last_mut() {
            Some(pair) if previous == Some(before) => pair.uids.push(uid),
            _ => pairs.push(Pair {
                position: position(before + inserted + 1),
                uids: vec![uid],
            }),
        }
        merged.push(uid);
        previous = Some(before);
    }
    merged.extend_from_slice(order.get(copied..).unwrap_or_default());
    *order = merged;
    pairs
}

/// Finds where messages joining a sorted context go: a binary search per message over the
/// results, all advanced together a step at a time. Each step compares with the messages
/// whose sort values are known and names those it needs next, which the session loads
/// (in one batch) before the next step; a place is found in at most log2(n) + 1 steps.
struct Placement {
    keys: Box<[SortCriterion]>,
    /// The results in sort order, without the messages leaving.
    order: Vec<u32>,
    /// The messages joining, in sort order.
    joining: Vec<Loaded>,
    /// Per joining message: the part of `order` its place is still looked for in.
    bounds: Vec<(usize, usize)>,
    /// Sort values of `order`'s messages compared with so far, by UID.
    known: HashMap<u32, Loaded>,
}

impl Placement {
    fn new(keys: Box<[SortCriterion]>, order: Vec<u32>, mut joining: Vec<Loaded>) -> Placement {
        joining.sort_by(|a, b| message_order(a, b, &keys));
        Placement {
            bounds: vec![(0, order.len()); joining.len()],
            keys,
            order,
            joining,
            known: HashMap::new(),
        }
    }

    /// Narrows every search as far as the known values allow: the UIDs (ascending) whose
    /// values the next step needs, none once every place is found.
    fn advance(&mut self) -> Vec<u32> {
        let mut needed = Vec::new();
        for (message, (low, high)) in self.joining.iter().zip(self.bounds.iter_mut()) {
            while *low < *high {
                let middle = *low + (*high - *low) / 2;
                let Some(&uid) = self.order.get(middle) else {
                    break;
                };
                let Some(probe) = self.known.get(&uid) else {
                    needed.push(uid);
                    break;
                };
                if message_order(probe, message, &self.keys) == Ordering::Less {
                    *low = middle + 1;
                } else {
                    *high = middle;
                }
            }
        }
        needed.sort_unstable();
        needed.dedup();
        needed
    }

    /// The joining UIDs in sort order, each with how many of `order`'s messages go before it.
    fn places(&self) -> Vec<(u32, usize)> {
        self.joining
            .iter()
            .zip(&self.bounds)
            .map(|(message, &(low, _))| (message.uid, low))
            .collect()
    }
}

impl SearchState {
    /// Nothing saved and nothing updated: expunges need no look.
    pub(crate) fn is_empty(&self) -> bool {
        self.saved.len() == 0 && self.updates.is_empty()
    }

    /// Whether a search with this tag is being updated.
    pub(crate) fn updating(&self, tag: &str) -> bool {
        self.updates.iter().any(|context| context.tag == tag)
    }

    /// `criteria` with every `$` (bare or after UID) replaced by the saved messages' UIDs.
    pub(crate) fn with_saved_result(&self, criteria: SearchKey) -> SearchKey {
        match criteria {
            SearchKey::Sequence(set) | SearchKey::Uid(set) if set.is_saved_result() => {
                SearchKey::Uid(uid_sequence_set(&self.saved))
            }
            SearchKey::Not(inner) => SearchKey::Not(Box::new(self.with_saved_result(*inner))),
            SearchKey::Or(a, b) => SearchKey::Or(
                Box::new(self.with_saved_result(*a)),
                Box::new(self.with_saved_result(*b)),
            ),
            SearchKey::And(keys) => SearchKey::And(
                keys.into_iter()
                    .map(|key| self.with_saved_result(key))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// The UIDs as a set (their runs as ranges).
fn uid_sequence_set(uids: &UidList) -> SequenceSet {
    SequenceSet::new(uids.iter().map(|uid| SeqRange {
        start: SeqNumber::Value(uid),
        end: SeqNumber::Value(uid),
    }))
}

/// Whether a message's match can change without the message changing: sequence numbers move
/// with expunges, `*` with arrivals, and WITHIN with the clock.
fn depends_on_view(key: &SearchKey) -> bool {
    match key {
        SearchKey::Sequence(_) | SearchKey::Older(_) | SearchKey::Younger(_) => true,
        SearchKey::Uid(set) => set
            .ranges()
            .iter()
            .any(|range| range.start == SeqNumber::Largest || range.end == SeqNumber::Largest),
        SearchKey::Not(inner) => depends_on_view(inner),
        SearchKey::Or(a, b) => depends_on_view(a) || depends_on_view(b),
        SearchKey::And(keys) => keys.iter().any(depends_on_view),
        _ => false,
    }
}

/// Both ascending: the elements of `a` not in `b`.
fn difference(a: &[u32], b: &[u32]) -> Vec<u32> {
    a.iter()
        .copied()
        .filter(|uid| b.binary_search(uid).is_err())
        .collect()
}

/// `* ESEARCH (TAG "t") [UID] [REMOVEFROM (p set ...)] [ADDTO (p set ...)]` with the pairs'
/// messages as the client numbers them, or nothing when no pair has any.
fn update_line(tag: &str, uid: bool, removed: &[Pair], added: &[Pair]) -> Vec<u8> {
    let mut line = Vec::new();
    let removed = pairs_text(removed);
    let added = pairs_text(added);
    if removed.is_empty() && added.is_empty() {
        return line;
    }
    line.extend_from_slice(b"* ESEARCH (TAG ");
    wire::string(&mut line, tag.as_bytes());
    line.push(b')');
    if uid {
        line.extend_from_slice(b" UID");
    }
    if !removed.is_empty() {
        line.extend_from_slice(format!(" REMOVEFROM ({removed})").as_bytes());
    }
    if !added.is_empty() {
        line.extend_from_slice(format!(" ADDTO ({added})").as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// `p set p set`: a position-0 set in mailbox order, the others in the order given.
fn pairs_text(pairs: &[Pair]) -> String {
    let mut text = String::new();
    for pair in pairs.iter().filter(|pair| !pair.uids.is_empty()) {
        if !text.is_empty() {
            text.push(' ');
        }
        let set = if pair.position == 0 {
            uid_set_string(&pair.uids)
        } else {
            let mut set = Vec::new();
            ordered_set_string(&mut set, &pair.uids);
            String::from_utf8_lossy(&set).into_owned()
        };
        text.push_str(&format!("{} {set}", pair.position));
    }
    text
}

/// The pairs with their messages as the client names them: UIDs, or sequence numbers in
/// `view`.
fn numbered_pairs(view: &UidList, pairs: Vec<Pair>, uid: bool) -> Vec<Pair> {
    pairs
        .into_iter()
        .map(|pair| Pair {
            position: pair.position,
            uids: numbered(view, &pair.uids, uid),
        })
        .collect()
}

impl Session {
    /// RFC 5267 4.3: a tag in use by an updated search or sort cannot start another (BAD).
    pub(crate) fn refuse_tag_reuse(&self, tag: &str) -> Option<Done> {
        self.selected
            .as_ref()
            .is_some_and(|selected| selected.search.updating(tag))
            .then(|| Done::bad("Tag reuse: a search with this tag is updating."))
    }

    /// Keeps a search (`order: None`) or a sort updated from now on, its `results` matched
    /// at `marks`. Beyond [`MAX_UPDATE_CONTEXTS`] it is not: the `* NO [NOUPDATE]` line to
    /// send (RFC 5267 4.3.1; the command's other return options are answered all the same).
    pub(crate) fn start_updates(
        &mut self,
        tag: &str,
        uid: bool,
        criteria: SearchKey,
        order: Option<Box<[SortCriterion]>>,
        results: Vec<u32>,
        marks: Marks,
    ) -> Vec<u8> {
        let mut line = Vec::new();
        let Some(selected) = self.selected.as_mut() else {
            return line;
        };
        let updates = &mut selected.search.updates;
        if updates.len() >= MAX_UPDATE_CONTEXTS {
            line.extend_from_slice(b"* NO [NOUPDATE ");
            wire::string(&mut line, tag.as_bytes());
            line.extend_from_slice(
                format!("] At most {MAX_UPDATE_CONTEXTS} searches can be updated at once.\r\n")
                    .as_bytes(),
            );
            return line;
        }
        updates.push(UpdateContext {
            tag: tag.to_owned(),
            uid,
            whole_view: depends_on_view(&criteria),
            criteria,
            order,
            results,
            marks,
        });
        line
    }

    /// CANCELUPDATE: every tag must name an updating search; then none of them is updated.
    pub(crate) fn cancel_update(&mut self, tags: &[String]) -> Done {
        let Some(selected) = self.selected.as_mut() else {
            return Done::bad("No mailbox selected.");
        };
        if !tags.iter().all(|tag| selected.search.updating(tag)) {
            return Done::bad("No search with that tag is being updated.");
        }
        selected
            .search
            .updates
            .retain(|context| !tags.contains(&context.tag));
        Done::ok("Updates cancelled.")
    }

    /// Before expunges are reported: REMOVEFROM for the matches among `gone` (UIDs still in
    /// the view, ascending), numbered as the client knows them until the EXPUNGE.
    pub(crate) fn removals_before_expunge(&mut self, gone: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        let Some(selected) = self.selected.as_mut() else {
            return out;
        };
        if gone.is_empty() {
            return out;
        }
        for context in &mut selected.search.updates {
            let removed = context.remove(gone);
            let removed = numbered_pairs(&selected.uids, removed, context.uid);
            out.extend_from_slice(&update_line(&context.tag, context.uid, &removed, &[]));
        }
        selected.search.saved.remove(gone);
        out
    }

    /// After EXISTS and flag changes are reported: matches the messages that arrived or
    /// changed since each context last looked and reports what joined or left its results.
    pub(crate) async fn update_contexts(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        let Some(selected) = self.selected.as_mut() else {
            return Ok(());
        };
        if selected.search.updates.is_empty() {
            return Ok(());
        }
        let mut contexts = std::mem::take(&mut selected.search.updates);
        let now = Marks {
            modseq: snapshot.highest_modseq,
            uid_next: selected.uid_next,
            expunges: selected.known_expunges,
        };
        // The view still holds messages expunged from the folder: a sort cannot compare them.
        let untold_expunges = snapshot.expunge_serial != now.expunges;
        let mut out = Vec::new();
        for context in &mut contexts {
            let changed = now.modseq > context.marks.modseq
                || now.uid_next > context.marks.uid_next
                || (context.whole_view && now.expunges != context.marks.expunges);
            let timed = context.whole_view && has_within(&context.criteria);
            if (!changed && !timed) || (context.order.is_some() && untold_expunges) {
                continue;
            }
            let Some(selected) = self.selected.as_ref() else {
                break;
            };
            // Messages of the view (arrivals announced by now) that changed or arrived.
            let only: Option<Vec<u32>> = (!context.whole_view).then(|| {
                snapshot
                    .messages
                    .iter()
                    .filter(|meta| {
                        meta.modseq > context.marks.modseq || meta.uid >= context.marks.uid_next
                    })
                    .map(|meta| meta.uid)
                    .filter(|uid| selected.uids.position(*uid).is_some())
                    .collect()
            });
            if only.as_ref().is_some_and(Vec::is_empty) {
                context.marks = Marks {
                    expunges: context.marks.expunges,
                    ..now
                };
                continue;
            }
            let found = match self
                .search_matches_among(context.criteria.clone(), only.as_deref())
                .await?
            {
                Ok(found) => found,
                Err(done) => {
                    // Kept as it was; the next refresh tries again.
                    debug!(tag = %context.tag, answer = %done.text, "search update failed");
                    continue;
                }
            };
            let matching: Vec<u32> = found.iter().map(|(_, uid, _)| *uid).collect();
            // The results among the messages looked at: the ones that may leave.
            let mut looked_at_results: Vec<u32> = match &only {
                None => context.results.clone(),
                Some(looked_at) => context
                    .results
                    .iter()
                    .copied()
                    .filter(|uid| looked_at.binary_search(uid).is_ok())
                    .collect(),
            };
            looked_at_results.sort_unstable();
            let leaving = difference(&looked_at_results, &matching);
            let joining = difference(&matching, &looked_at_results);
            let (removed, added) = match context.order.clone() {
                None => (
                    context.remove(&leaving),
                    context.insert_in_mailbox_order(&joining),
                ),
                Some(keys) => {
                    let mut order = context.results.clone();
                    order.retain(|uid| leaving.binary_search(uid).is_err());
                    let Some(places) = self.place(keys, order, &joining).await? else {
                        // Kept as it was; the next refresh tries again.
                        continue;
                    };
                    let removed = context.remove(&leaving);
                    let added = insert_in_sort_order(&mut context.results, &places);
                    (removed, added)
                }
            };
            context.marks = now;
            if let Some(selected) = self.selected.as_ref() {
                let removed = numbered_pairs(&selected.uids, removed, context.uid);
                let added = numbered_pairs(&selected.uids, added, context.uid);
                out.extend_from_slice(&update_line(&context.tag, context.uid, &removed, &added));
            }
        }
        if let Some(selected) = self.selected.as_mut() {
            selected.search.updates = contexts;
        }
        if !out.is_empty() {
            self.conn.write(&out).await?;
        }
        Ok(())
    }

    /// Where `joining` (ascending UIDs) go in `order`, a sorted context's results by `keys`:
    /// the joining UIDs in sort order, each with how many of `order`'s messages go before it.
    /// `None` when a message cannot be read now (expunged meanwhile).
    async fn place(
        &mut self,
        keys: Box<[SortCriterion]>,
        order: Vec<u32>,
        joining: &[u32],
    ) -> io::Result<Option<Vec<(u32, usize)>>> {
        if joining.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let Some(joining) = self.sort_values(joining, &keys).await? else {
            return Ok(None);
        };
        let mut placement = self
            .ctx
            .cpu
            .run(move || Placement::new(keys, order, joining))
            .await?;
        loop {
            let (moved, needed) = self
                .ctx
                .cpu
                .run(move || {
                    let needed = placement.advance();
                    (placement, needed)
                })
                .await?;
            placement = moved;
            if needed.is_empty() {
                return Ok(Some(placement.places()));
            }
            let Some(values) = self.sort_values(&needed, &placement.keys).await? else {
                return Ok(None);
            };
            placement
                .known
                .extend(values.into_iter().map(|values| (values.uid, values)));
        }
    }

    /// What a sort by `keys` compares of each message `uids` names; `None` unless every one
    /// could be read.
    async fn sort_values(
        &mut self,
        uids: &[u32],
        keys: &[SortCriterion],
    ) -> io::Result<Option<Vec<Loaded>>> {
        let found = uids.iter().map(|&uid| (0, uid, 0)).collect();
        let sizes = keys.iter().any(|c| c.key == SortKey::Size);
        Ok(
            match self.load_sortable(found, sizes, reads_header(keys)).await? {
                Ok(values) if values.len() == uids.len() => Some(values),
                Ok(_) => None,
                Err(done) => {
                    debug!(answer = %done.text, "sort values for an update could not be read");
                    None
                }
            },
        )
    }
}

/// `uids` as the client names them: themselves, or their sequence numbers in `view`.
fn numbered(view: &UidList, uids: &[u32], uid: bool) -> Vec<u32> {
    if uid {
        return uids.to_vec();
    }
    uids.iter()
        .filter_map(|uid| view.position(*uid))
        .filter_map(|index| u32::try_from(index + 1).ok())
        .collect()
}

fn has_within(key: &SearchKey) -> bool {
    match key {
        SearchKey::Older(_) | SearchKey::Younger(_) => true,
        SearchKey::Not(inner) => has_within(inner),
        SearchKey::Or(a, b) => has_within(a) || has_within(b),
        SearchKey::And(keys) => keys.iter().any(has_within),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid_set(ranges: &[(u32, u32)]) -> SequenceSet {
        SequenceSet::new(ranges.iter().map(|&(a, b)| SeqRange {
            start: SeqNumber::Value(a),
            end: SeqNumber::Value(b),
        }))
    }

    #[test]
    fn dollar_becomes_the_saved_uids_at_every_depth() {
        let state = SearchState {
            saved: [3, 4, 5, 9].into_iter().collect(),
            ..SearchState::default()
        };
        let criteria = SearchKey::And(vec![
            SearchKey::Sequence(SequenceSet::saved_result()),
            SearchKey::Not(Box::new(SearchKey::Or(
                Box::new(SearchKey::Uid(SequenceSet::saved_result())),
                Box::new(SearchKey::Seen),
            ))),
        ]);
        let saved = SearchKey::Uid(uid_set(&[(3, 5), (9, 9)]));
        assert_eq!(
            state.with_saved_result(criteria),
            SearchKey::And(vec![
                saved.clone(),
                SearchKey::Not(Box::new(SearchKey::Or(
                    Box::new(saved),
                    Box::new(SearchKey::Seen)
                ))),
            ])
        );
        // Before any SAVE, `$` is empty.
        let empty = SearchState::default()
            .with_saved_result(SearchKey::Sequence(SequenceSet::saved_result()));
        assert_eq!(empty, SearchKey::Uid(uid_set(&[])));
    }

    #[test]
    fn view_dependent_criteria_are_matched_again_whole() {
        assert!(depends_on_view(&SearchKey::Sequence(uid_set(&[(1, 2)]))));
        assert!(depends_on_view(&SearchKey::Not(Box::new(
            SearchKey::Younger(60)
        ))));
        let star = SequenceSet::new([SeqRange {
            start: SeqNumber::Value(5),
            end: SeqNumber::Largest,
        }]);
        assert!(depends_on_view(&SearchKey::Uid(star)));
        assert!(!depends_on_view(&SearchKey::Uid(uid_set(&[(5, 9)]))));
        assert!(!depends_on_view(&SearchKey::And(vec![
            SearchKey::Seen,
            SearchKey::Subject("x".into())
        ])));
    }

    fn pair(position: u32, uids: &[u32]) -> Pair {
        Pair {
            position,
            uids: uids.to_vec(),
        }
    }

    #[test]
    fn update_lines_remove_before_they_add() {
        assert_eq!(update_line("A1", true, &[], &[]), b"");
        assert_eq!(update_line("A1", true, &[pair(0, &[])], &[]), b"");
        assert_eq!(
            String::from_utf8(update_line(
                "A1",
                true,
                &[pair(0, &[7])],
                &[pair(0, &[9, 10, 11])]
            ))
            .unwrap(),
            "* ESEARCH (TAG \"A1\") UID REMOVEFROM (0 7) ADDTO (0 9:11)\r\n"
        );
        assert_eq!(
            String::from_utf8(update_line("B2", false, &[], &[pair(0, &[3])])).unwrap(),
            "* ESEARCH (TAG \"B2\") ADDTO (0 3)\r\n"
        );
        // A sort's pairs keep their order, ranges only where numbers ascend.
        assert_eq!(
            String::from_utf8(update_line(
                "S1",
                true,
                &[pair(2, &[4, 3]), pair(3, &[1])],
                &[pair(1, &[9, 10])]
            ))
            .unwrap(),
            "* ESEARCH (TAG \"S1\") UID REMOVEFROM (2 4,3 3 1) ADDTO (1 9:10)\r\n"
        );
    }

    fn sorted_context(results: &[u32]) -> UpdateContext {
        UpdateContext {
            tag: "S1".into(),
            uid: true,
            criteria: SearchKey::All,
            order: Some(Box::new([SortCriterion {
                reverse: true,
                key: SortKey::Subject,
            }])),
            results: results.to_vec(),
            marks: Marks {
                modseq: 0,
                uid_next: 1,
                expunges: 0,
            },
            whole_view: false,
        }
    }

    #[test]
    fn removals_from_a_sort_give_each_runs_position_after_the_runs_before() {
        let mut context = sorted_context(&[5, 4, 3, 2, 1]);
        assert_eq!(
            context.remove(&[1, 3, 4]),
            vec![pair(2, &[4, 3]), pair(3, &[1])]
        );
        assert_eq!(context.results, [5, 2]);
        assert_eq!(context.remove(&[7]), vec![]);
        // A search's leave in one pair at position 0.
        let mut search = UpdateContext {
            order: None,
            ..sorted_context(&[1, 2, 3, 4])
        };
        assert_eq!(search.remove(&[2, 4]), vec![pair(0, &[2, 4])]);
        assert_eq!(
            search.insert_in_mailbox_order(&[3, 5]),
            vec![pair(0, &[3, 5])]
        );
    }

    #[test]
    fn insertions_into_a_sort_rfc5267_example_and_runs() {
        // RFC 5267 4.3.3: 2734:2735, then 2731:2733 go first: ADDTO (1 2731:2733).
        let mut order = vec![2734, 2735];
        let pairs = insert_in_sort_order(&mut order, &[(2731, 0), (2732, 0), (2733, 0)]);
        assert_eq!(pairs_text(&pairs), "1 2731:2733");
        assert_eq!(order, (2731..=2735).collect::<Vec<_>>());
        // Each pair's position counts the pairs inserted before it.
        let mut order = vec![10, 20, 30];
        let pairs = insert_in_sort_order(&mut order, &[(5, 0), (25, 2), (26, 2), (40, 3)]);
        assert_eq!(pairs_text(&pairs), "1 5 4 25:26 7 40");
        assert_eq!(order, [5, 10, 20, 25, 26, 30, 40]);
        let mut empty = Vec::new();
        assert_eq!(
            pairs_text(&insert_in_sort_order(&mut empty, &[(3, 0), (1, 0)])),
            "1 3,1"
        );
    }

    #[test]
    fn placement_needs_about_log2_n_steps_and_values() {
        let keys: Box<[SortCriterion]> = Box::new([SortCriterion {
            reverse: false,
            key: SortKey::Arrival,
        }]);
        let message = |uid: u32, arrival: i64| Loaded {
            uid,
            arrival,
            ..Loaded::default()
        };
        // 100,000 results by arrival (UID × 10); four join, one equal to UID 10 (after it).
        let order: Vec<u32> = (1..=100_000).collect();
        let joining = vec![
            message(100_003, 10_000_000),
            message(100_001, 5),
            message(100_002, 105),
            message(100_004, 100),
        ];
        let mut placement = Placement::new(keys, order, joining);
        let (mut steps, mut loaded) = (0, 0);
        loop {
            let needed = placement.advance();
            if needed.is_empty() {
                break;
            }
            steps += 1;
            loaded += needed.len();
            for uid in needed {
                placement
                    .known
                    .insert(uid, message(uid, i64::from(uid) * 10));
            }
        }
        assert_eq!(
            placement.places(),
            vec![
                (100_001, 0),
                (100_004, 10),
                (100_002, 10),
                (100_003, 100_000)
            ]
        );
        // log2(100,000) + 1 = 17.6: the searches share their first probes.
        assert!(steps <= 18, "{steps} steps");
        assert!(loaded <= 4 * 18, "{loaded} values");
    }
}
