//! What a session keeps of its searches while a folder is selected: the saved result `$`
//! (RFC 5182 SEARCHRES) and the searches whose results it keeps up to date (RFC 5267
//! CONTEXT=SEARCH: `RETURN (UPDATE)`, ADDTO and REMOVEFROM, CANCELUPDATE). Both live in
//! [`Selected`], so SELECT, EXAMINE, CLOSE and UNSELECT end them.
//!
//! An update context holds the UIDs of its matches. After each command (and in IDLE) the
//! refresh that reports EXISTS, EXPUNGE and FETCH FLAGS also looks at the messages that
//! arrived or changed since the context last looked, matches only those against the
//! criteria, and reports the difference: REMOVEFROM for expunged matches before the
//! EXPUNGE/VANISHED that ends their sequence numbers, ADDTO after the EXISTS that gives them
//! theirs (RFC 5267 4.3.3, 4.3.4). Criteria whose answer depends on more than the message
//! (sequence numbers, `*`, WITHIN's clock) are matched again over the whole view instead.
//!
//! The results are kept in mailbox order and updates carry position 0, as RFC 5267 allows
//! for SEARCH. CONTEXT=SORT would keep them in its sort order and carry positions: the
//! context would hold the ordering and compute an added message's position from it.

use std::io;

use mailstead_store::Snapshot;
use tracing::debug;

use crate::cmd::uid_set_string;
use crate::command::{SearchKey, SeqNumber, SeqRange, SequenceSet};
use crate::session::{Done, Session};
use crate::uids::UidList;
use crate::wire;

/// Searches one session may keep updated at once; one more is answered, without updates, with
/// `NO [NOUPDATE]`. Each costs a match of its criteria against every changed message.
pub(crate) const MAX_UPDATE_CONTEXTS: usize = 8;

/// The selected folder's searches, as this session knows them.
#[derive(Default)]
pub(crate) struct SearchState {
    /// `$`: the UIDs the last `SEARCH RETURN (SAVE)` kept. Expunged ones leave when the client
    /// is told of the expunge.
    pub(crate) saved: UidList,
    updates: Vec<UpdateContext>,
}

/// A `SEARCH RETURN (UPDATE)` whose result changes are reported.
struct UpdateContext {
    /// The searching command's tag, which the updates carry.
    tag: String,
    /// UID SEARCH: updates carry UIDs, else sequence numbers.
    uid: bool,
    /// With `$` already replaced by the messages it meant when the search ran.
    criteria: SearchKey,
    /// The UIDs matching, ascending.
    results: Vec<u32>,
    /// Flag changes up to this modseq have been matched.
    known_modseq: u64,
    /// Messages from this UID on have not been matched.
    uid_next: u32,
    /// The view's expunge serial when last matched: sequence numbers move when it does.
    known_expunges: u64,
    /// The criteria depend on the view (sequence numbers, `*`) or the clock (WITHIN).
    whole_view: bool,
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

    /// Keeps a search updated from now on; `Err` when [`MAX_UPDATE_CONTEXTS`] already are.
    /// `seen` is the modseq, UIDNEXT and expunge serial the results were matched at.
    pub(crate) fn start_updates(
        &mut self,
        tag: &str,
        uid: bool,
        criteria: SearchKey,
        results: Vec<u32>,
        seen: (u64, u32, u64),
    ) -> Result<(), ()> {
        if self.updates.len() >= MAX_UPDATE_CONTEXTS {
            return Err(());
        }
        self.updates.push(UpdateContext {
            tag: tag.to_owned(),
            uid,
            whole_view: depends_on_view(&criteria),
            criteria,
            results,
            known_modseq: seen.0,
            uid_next: seen.1,
            known_expunges: seen.2,
        });
        Ok(())
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

/// `* ESEARCH (TAG "t") [UID] [REMOVEFROM (0 set)] [ADDTO (0 set)]`, or nothing when neither
/// has numbers.
fn update_line(tag: &str, uid: bool, removed: &[u32], added: &[u32]) -> Vec<u8> {
    let mut line = Vec::new();
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
        line.extend_from_slice(format!(" REMOVEFROM (0 {})", uid_set_string(removed)).as_bytes());
    }
    if !added.is_empty() {
        line.extend_from_slice(format!(" ADDTO (0 {})", uid_set_string(added)).as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    line
}

impl Session {
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
    /// the view), numbered as the client knows them until the EXPUNGE.
    pub(crate) fn removals_before_expunge(&mut self, gone: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        let Some(selected) = self.selected.as_mut() else {
            return out;
        };
        if gone.is_empty() {
            return out;
        }
        for context in &mut selected.search.updates {
            let removed: Vec<u32> = context
                .results
                .iter()
                .copied()
                .filter(|uid| gone.binary_search(uid).is_ok())
                .collect();
            if removed.is_empty() {
                continue;
            }
            context.results = difference(&context.results, &removed);
            let numbers = numbered(&selected.uids, &removed, context.uid);
            out.extend_from_slice(&update_line(&context.tag, context.uid, &numbers, &[]));
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
        let view_uid_next = selected.uid_next;
        let view_expunges = selected.known_expunges;
        let mut out = Vec::new();
        for context in &mut contexts {
            let changed = snapshot.highest_modseq > context.known_modseq
                || view_uid_next > context.uid_next
                || (context.whole_view && view_expunges != context.known_expunges);
            let timed = context.whole_view && has_within(&context.criteria);
            if !changed && !timed {
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
                        meta.modseq > context.known_modseq || meta.uid >= context.uid_next
                    })
                    .map(|meta| meta.uid)
                    .filter(|uid| selected.uids.position(*uid).is_some())
                    .collect()
            });
            if only.as_ref().is_some_and(Vec::is_empty) {
                context.known_modseq = snapshot.highest_modseq;
                context.uid_next = view_uid_next;
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
            let new_results: Vec<u32> = match &only {
                None => matching,
                Some(looked_at) => {
                    let mut kept = difference(&context.results, looked_at);
                    kept.extend(matching);
                    kept.sort_unstable();
                    kept
                }
            };
            let removed = difference(&context.results, &new_results);
            let added = difference(&new_results, &context.results);
            context.results = new_results;
            context.known_modseq = snapshot.highest_modseq;
            context.uid_next = view_uid_next;
            context.known_expunges = view_expunges;
            if let Some(selected) = self.selected.as_ref() {
                let removed = numbered(&selected.uids, &removed, context.uid);
                let added = numbered(&selected.uids, &added, context.uid);
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

    #[test]
    fn update_lines_remove_before_they_add() {
        assert_eq!(update_line("A1", true, &[], &[]), b"");
        assert_eq!(
            String::from_utf8(update_line("A1", true, &[7], &[9, 10, 11])).unwrap(),
            "* ESEARCH (TAG \"A1\") UID REMOVEFROM (0 7) ADDTO (0 9:11)\r\n"
        );
        assert_eq!(
            String::from_utf8(update_line("B2", false, &[], &[3])).unwrap(),
            "* ESEARCH (TAG \"B2\") ADDTO (0 3)\r\n"
        );
    }
}
