//! The UIDs of a session's view, in sequence-number order (ascending), kept as runs of
//! consecutive UIDs: a folder that never lost a message in the middle is one run, so a session
//! holds a few bytes for it rather than four per message, however large the folder.

/// The consecutive UIDs `first..first + count`, of which the first has sequence number
/// `position + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    first: u32,
    count: u32,
    position: u32,
}

impl Run {
    fn last(self) -> u32 {
        self.first + (self.count - 1)
    }
}

/// Ascending UIDs, the position of each being its sequence number - 1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct UidList {
    runs: Vec<Run>,
}

impl UidList {
    pub(crate) fn len(&self) -> usize {
        self.runs
            .last()
            .map_or(0, |run| run.position as usize + run.count as usize)
    }

    /// The largest UID.
    pub(crate) fn last(&self) -> Option<u32> {
        self.runs.last().map(|run| run.last())
    }

    /// The UID at `position` (sequence number - 1).
    pub(crate) fn get(&self, position: usize) -> Option<u32> {
        let position = u32::try_from(position).ok()?;
        let index = self
            .runs
            .partition_point(|run| run.position <= position)
            .checked_sub(1)?;
        let run = self.runs.get(index)?;
        let offset = position - run.position;
        (offset < run.count).then(|| run.first + offset)
    }

    /// How many UIDs are smaller than `uid`: the position `uid` has, or would have.
    pub(crate) fn count_below(&self, uid: u32) -> usize {
        let before = self.runs.partition_point(|run| run.first < uid);
        match before.checked_sub(1).and_then(|index| self.runs.get(index)) {
            None => 0,
            Some(run) => run.position as usize + run.count.min(uid - run.first) as usize,
        }
    }

    /// How many UIDs are at most `uid`.
    pub(crate) fn count_up_to(&self, uid: u32) -> usize {
        match uid.checked_add(1) {
            Some(next) => self.count_below(next),
            None => self.len(),
        }
    }

    /// The position of `uid`, if it is in the list.
    pub(crate) fn position(&self, uid: u32) -> Option<usize> {
        let position = self.count_below(uid);
        (self.get(position) == Some(uid)).then_some(position)
    }

    /// Adds `uid`, which must be larger than every UID in the list (new messages are).
    pub(crate) fn push(&mut self, uid: u32) {
        if self.last().is_some_and(|last| uid <= last) {
            debug_assert!(false, "UID {uid} pushed out of order");
            return;
        }
        let position = u32::try_from(self.len()).unwrap_or(u32::MAX);
        match self.runs.last_mut() {
            Some(run) if run.first.checked_add(run.count) == Some(uid) => run.count += 1,
            _ => self.runs.push(Run {
                first: uid,
                count: 1,
                position,
            }),
        }
    }

    /// Every UID, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.runs
            .iter()
            .flat_map(|run| (0..run.count).map(move |offset| run.first + offset))
    }

    /// Removes `uids` (ascending); the UIDs after each removed one move up a position.
    pub(crate) fn remove(&mut self, uids: &[u32]) {
        if uids.is_empty() {
            return;
        }
        *self = self
            .iter()
            .filter(|uid| uids.binary_search(uid).is_err())
            .collect();
        self.runs.shrink_to_fit();
    }
}

impl Extend<u32> for UidList {
    fn extend<I: IntoIterator<Item = u32>>(&mut self, uids: I) {
        for uid in uids {
            self.push(uid);
        }
    }
}

impl FromIterator<u32> for UidList {
    fn from_iter<I: IntoIterator<Item = u32>>(uids: I) -> UidList {
        let mut list = UidList::default();
        list.extend(uids);
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation agrees with a plain vector, for lists with and without gaps.
    #[test]
    fn runs_answer_like_a_vector() {
        let cases: [&[u32]; 5] = [
            &[],
            &[1],
            &[1, 2, 3, 4, 5],
            &[2, 3, 7, 8, 9, 20, 40, 41, u32::MAX - 1, u32::MAX],
            &[5, 7, 9, 11],
        ];
        for uids in cases {
            let list: UidList = uids.iter().copied().collect();
            assert_eq!(list.len(), uids.len());
            assert_eq!(list.last(), uids.last().copied());
            assert_eq!(list.iter().collect::<Vec<_>>(), uids);
            for position in 0..=uids.len() + 1 {
                assert_eq!(list.get(position), uids.get(position).copied(), "{uids:?}");
            }
            for uid in [0, 1, 2, 3, 6, 7, 10, 21, 41, 42, u32::MAX - 1, u32::MAX] {
                let below = uids.partition_point(|&u| u < uid);
                assert_eq!(list.count_below(uid), below, "{uids:?} below {uid}");
                let up_to = uids.partition_point(|&u| u <= uid);
                assert_eq!(list.count_up_to(uid), up_to, "{uids:?} up to {uid}");
                assert_eq!(list.position(uid), uids.binary_search(&uid).ok());
            }
        }
    }

    #[test]
    fn removing_splits_runs_and_moves_positions_up() {
        let mut list: UidList = (1..=10).collect();
        assert_eq!(list.runs.len(), 1, "consecutive UIDs are one run");
        list.remove(&[1, 5, 6, 10]);
        assert_eq!(list.iter().collect::<Vec<_>>(), [2, 3, 4, 7, 8, 9]);
        assert_eq!(list.runs.len(), 2);
        assert_eq!(list.get(3), Some(7));
        assert_eq!(list.position(9), Some(5));
        list.extend([11, 12, 14]);
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            [2, 3, 4, 7, 8, 9, 11, 12, 14]
        );
        assert_eq!(list.get(8), Some(14));
        list.remove(&list.iter().collect::<Vec<_>>());
        assert_eq!(list.len(), 0);
        assert_eq!(list.get(0), None);
    }

    #[test]
    fn a_folder_without_gaps_is_one_run_whatever_its_size() {
        let list: UidList = (1..=100_000).collect();
        assert_eq!(list.runs.len(), 1);
        assert_eq!(list.get(99_999), Some(100_000));
    }
}
