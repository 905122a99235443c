//! Orders a folder keeps between SORT commands, as Dovecot keeps sort IDs in its index: per
//! sort key, each message's rank in the folder ordered by that key. A SORT whose every
//! matching message has a rank orders them by integers instead of reading and comparing
//! each message's cached values again. The ranks are made and read by the IMAP side, which
//! owns the comparison; the folder only keeps them (shared by every session, dropped with
//! the folder) and forgets them when a value they were made from may have changed.

/// A key whose order a folder can keep ([`crate::Folder::sort_ranks`]): the SORT keys read
/// from the message's header (its cached [`crate::CacheKey::SortValues`]). ARRIVAL and SIZE
/// are in the snapshot already and need no ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RankKey {
    Date,
    Subject,
    From,
    To,
    Cc,
    DisplayFrom,
    DisplayTo,
}

/// The order of a folder's messages by one key: per message, by UID, a rank; a lower rank
/// sorts first and equal values have equal ranks. Made from the messages of one moment:
/// a message that came later has none (the next SORT that meets it makes new ranks), and an
/// expunged message keeps its rank here without harm (no search matches it). 8 bytes per
/// message (UID and rank).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SortRanks {
    uid_validity: u32,
    /// Ascending.
    uids: Vec<u32>,
    /// `ranks[i]` is the rank of `uids[i]`.
    ranks: Vec<u32>,
}

impl SortRanks {
    /// Ranks from `(uid, rank)` pairs in any order (a UID given twice keeps one of its
    /// ranks), for the folder's messages under `uid_validity`.
    pub fn new(uid_validity: u32, mut ranked: Vec<(u32, u32)>) -> SortRanks {
        ranked.sort_unstable_by_key(|&(uid, _)| uid);
        ranked.dedup_by_key(|&mut (uid, _)| uid);
        let (uids, ranks) = ranked.into_iter().unzip();
        SortRanks {
            uid_validity,
            uids,
            ranks,
        }
    }

    /// The rank of each of `uids` (ascending), in one walk; `None` when one of them has no
    /// rank (it came after these ranks were made) or the folder's UIDVALIDITY is no longer
    /// theirs.
    pub fn ranks_of(
        &self,
        uid_validity: u32,
        uids: impl IntoIterator<Item = u32>,
    ) -> Option<Vec<u32>> {
        if uid_validity != self.uid_validity {
            return None;
        }
        let uids = uids.into_iter();
        let mut ranks = Vec::with_capacity(uids.size_hint().0);
        let mut from = 0;
        for uid in uids {
            // Usually the next entry or a few on (the expunged): a gallop, not a search of
            // the whole rest, keeps a walk over the whole folder linear.
            let rest = self.uids.get(from..)?;
            let mut step = 1;
            while rest.get(step - 1).is_some_and(|&known| known < uid) {
                step *= 2;
            }
            let window = rest.get(step / 2..step.min(rest.len()))?;
            let found = window.binary_search(&uid).ok()?;
            let index = from + step / 2 + found;
            ranks.push(*self.ranks.get(index)?);
            from = index + 1;
        }
        Some(ranks)
    }

    /// How many messages have a rank.
    pub fn len(&self) -> usize {
        self.uids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.uids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_of_ascending_uids_in_one_walk() {
        let ranks = SortRanks::new(7, vec![(5, 2), (1, 0), (3, 9), (9, 1), (3, 4), (12, 3)]);
        assert_eq!(ranks.len(), 5);
        assert_eq!(ranks.ranks_of(7, [1, 3, 5, 9, 12]).unwrap().len(), 5);
        assert_eq!(ranks.ranks_of(7, [1, 5, 12]), Some(vec![0, 2, 3]));
        assert_eq!(ranks.ranks_of(7, [9]), Some(vec![1]));
        assert_eq!(ranks.ranks_of(7, []), Some(vec![]));
        // A UID without a rank, before, between or after the known ones.
        assert_eq!(ranks.ranks_of(7, [0, 5]), None);
        assert_eq!(ranks.ranks_of(7, [1, 4, 5]), None);
        assert_eq!(ranks.ranks_of(7, [12, 13]), None);
        // Not ascending: the walk does not go back.
        assert_eq!(ranks.ranks_of(7, [5, 1]), None);
        // Another UIDVALIDITY: the same UIDs are other messages.
        assert_eq!(ranks.ranks_of(8, [1]), None);
    }

    #[test]
    fn a_long_walk_with_gaps() {
        let ranked: Vec<(u32, u32)> = (1..=10_000).map(|uid| (uid * 3, 10_000 - uid)).collect();
        let ranks = SortRanks::new(1, ranked);
        let every_seventh: Vec<u32> = (1..=10_000).step_by(7).map(|uid| uid * 3).collect();
        let expected: Vec<u32> = (1..=10_000).step_by(7).map(|uid| 10_000 - uid).collect();
        assert_eq!(ranks.ranks_of(1, every_seventh), Some(expected));
        assert_eq!(ranks.ranks_of(1, [3, 30_000, 30_003]), None);
    }
}
