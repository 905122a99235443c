//! `mailstead.index`: a per-folder cache of what a sync learnt, so opening a large folder
//! needs no directory scan. Binary, versioned, checksummed; any doubt and it is ignored (the
//! folder is rebuilt from `dovecot-uidlist` and a scan).
//!
//! Snapshot layout (little endian): magic, version u32, generation u64, then the fields in
//! `IndexData` order, then a CRC-32 of everything before it.
//!
//! Changes after the snapshot go to `mailstead.index.log` instead of a rewrite of the whole
//! snapshot: log magic, version u32, the generation of the snapshot it follows, then
//! records, each a length u32, a CRC-32 of its payload and the payload: the header fields
//! as they are after the change, the messages added or changed, the messages expunged and
//! new cached values (`IndexData` again, its lists holding only what changed). A log of
//! another generation (the snapshot was rewritten and the log not yet truncated) is
//! ignored, and so is a record that is cut short or damaged, with everything after it.

use std::sync::Arc;

use super::CacheKey;
use super::SystemFlags;
use super::folder::{Entry, Stamp, UidlistSeen};

const MAGIC: &[u8; 8] = b"MSTIDX\r\n";
const LOG_MAGIC: &[u8; 8] = b"MSTLOG\r\n";
/// 2: CRC-32 (crc32fast, many bytes at a time) replaced FNV-1a, which ran a byte at a time.
/// 3: the generation and its change log; a size not known yet (`u64::MAX`).
/// 4: cached values for SORT and THREAD (`CacheKey::SortValues`).
const VERSION: u32 = 4;
/// Stands for a size not counted yet.
const UNKNOWN_SIZE: u64 = u64::MAX;
/// Bytes before the first record of the log.
pub(crate) const LOG_HEADER_LEN: usize = LOG_MAGIC.len() + 4 + 8;

/// A snapshot's contents, or one change record's (its lists holding only what changed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IndexData {
    pub(crate) uid_validity: u32,
    pub(crate) next_uid: u32,
    pub(crate) highest_modseq: u64,
    pub(crate) first_recent: u32,
    pub(crate) guid: String,
    pub(crate) stamp: Stamp,
    /// `dovecot-uidlist` as the folder last read or wrote it.
    pub(crate) uidlist: Option<UidlistSeen>,
    pub(crate) keywords: Vec<String>,
    pub(crate) messages: Vec<Entry>,
    pub(crate) vanished: Vec<(u64, u32)>,
    pub(crate) cache: Vec<(u32, CacheKey, Arc<[u8]>)>,
}

fn key_byte(key: CacheKey) -> u8 {
    match key {
        CacheKey::Envelope => 0,
        CacheKey::BodyStructure => 1,
        CacheKey::Body => 2,
        CacheKey::SearchHeaders => 3,
        CacheKey::Preview => 4,
        CacheKey::SortValues => 5,
    }
}

fn key_from(byte: u8) -> Option<CacheKey> {
    match byte {
        0 => Some(CacheKey::Envelope),
        1 => Some(CacheKey::BodyStructure),
        2 => Some(CacheKey::Body),
        3 => Some(CacheKey::SearchHeaders),
        4 => Some(CacheKey::Preview),
        5 => Some(CacheKey::SortValues),
        _ => None,
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i128(&mut self, v: i128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.0
            .extend_from_slice(v.get(..u32::MAX as usize).unwrap_or(v));
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i128(&mut self) -> Option<i128> {
        Some(i128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    /// A count that cannot claim more items than bytes left (so garbage allocates nothing).
    fn count(&mut self, min_item: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.saturating_mul(min_item) <= self.0.len()).then_some(n)
    }
}

/// The snapshot: everything in `data`, for a log of `generation` to follow.
pub(crate) fn encode(data: &IndexData, generation: u64) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(128 + data.messages.len() * 96));
    w.0.extend_from_slice(MAGIC);
    w.u32(VERSION);
    w.u64(generation);
    encode_fields(&mut w, data);
    let sum = crc32fast::hash(&w.0);
    w.u32(sum);
    w.0
}

/// The start of a log that follows the snapshot of `generation`.
pub(crate) fn log_header(generation: u64) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(LOG_HEADER_LEN));
    w.0.extend_from_slice(LOG_MAGIC);
    w.u32(VERSION);
    w.u64(generation);
    w.0
}

/// One log record: `change` with its length and checksum.
pub(crate) fn encode_change(change: &IndexData) -> Vec<u8> {
    let mut payload = Writer(Vec::with_capacity(128 + change.messages.len() * 96));
    encode_fields(&mut payload, change);
    let mut w = Writer(Vec::with_capacity(payload.0.len() + 8));
    w.u32(u32::try_from(payload.0.len()).unwrap_or(u32::MAX));
    w.u32(crc32fast::hash(&payload.0));
    w.0.extend_from_slice(&payload.0);
    w.0
}

fn encode_fields(w: &mut Writer, data: &IndexData) {
    w.u32(data.uid_validity);
    w.u32(data.next_uid);
    w.u64(data.highest_modseq);
    w.u32(data.first_recent);
    w.bytes(data.guid.as_bytes());
    w.i128(data.stamp.new);
    w.i128(data.stamp.cur);
    w.i128(data.stamp.uidlist);
    w.u64(data.stamp.uidlist_len);
    match &data.uidlist {
        None => w.u8(0),
        Some(seen) => {
            w.u8(1);
            w.u64(seen.lines as u64);
            w.u64(seen.stale as u64);
            w.u8(u8::from(seen.ends_in_newline));
        }
    }
    w.u32(data.keywords.len() as u32);
    for keyword in &data.keywords {
        w.bytes(keyword.as_bytes());
    }
    w.u32(data.messages.len() as u32);
    for m in &data.messages {
        w.u32(m.uid);
        w.bytes(m.name.as_bytes());
        w.u8(u8::from(m.in_new));
        w.u8(m.flags.bits());
        w.u32(m.keywords);
        w.u64(m.modseq);
        w.u64(m.size.unwrap_or(UNKNOWN_SIZE));
        w.u64(m.physical);
        w.u64(m.internal_date as u64);
    }
    w.u32(data.vanished.len() as u32);
    for &(modseq, uid) in &data.vanished {
        w.u64(modseq);
        w.u32(uid);
    }
    w.u32(data.cache.len() as u32);
    for (uid, key, value) in &data.cache {
        w.u32(*uid);
        w.u8(key_byte(*key));
        w.bytes(value);
    }
}

/// The snapshot and its generation; `None` for anything but a complete, intact index of
/// this version.
pub(crate) fn decode(bytes: &[u8]) -> Option<(IndexData, u64)> {
    let body_len = bytes.len().checked_sub(4)?;
    let (body, sum) = bytes.split_at(body_len);
    if u32::from_le_bytes(sum.try_into().ok()?) != crc32fast::hash(body) {
        return None;
    }
    let mut r = Reader(body);
    if r.take(MAGIC.len())? != MAGIC || r.u32()? != VERSION {
        return None;
    }
    let generation = r.u64()?;
    let data = decode_fields(&mut r)?;
    r.0.is_empty().then_some((data, generation))
}

/// Applies the records of `log` that follow the snapshot of `generation` to `data`, up to
/// the first one cut short or damaged. Returns the length of the log that was intact (0
/// when the log belongs to another generation).
pub(crate) fn replay(data: &mut IndexData, generation: u64, log: &[u8]) -> usize {
    let mut r = Reader(log);
    let header_ok = r.take(LOG_MAGIC.len()) == Some(LOG_MAGIC.as_slice())
        && r.u32() == Some(VERSION)
        && r.u64() == Some(generation);
    if !header_ok {
        return 0;
    }
    loop {
        let intact = log.len() - r.0.len();
        let Some(change) = next_change(&mut r) else {
            return intact;
        };
        apply(data, change);
    }
}

fn next_change(r: &mut Reader<'_>) -> Option<IndexData> {
    let len = r.u32()? as usize;
    let sum = r.u32()?;
    let payload = r.take(len)?;
    if crc32fast::hash(payload) != sum {
        return None;
    }
    let mut fields = Reader(payload);
    let change = decode_fields(&mut fields)?;
    fields.0.is_empty().then_some(change)
}

/// One change record applied to a snapshot's contents.
fn apply(data: &mut IndexData, change: IndexData) {
    data.uid_validity = change.uid_validity;
    data.next_uid = change.next_uid;
    data.highest_modseq = change.highest_modseq;
    data.first_recent = change.first_recent;
    data.guid = change.guid;
    data.stamp = change.stamp;
    data.uidlist = change.uidlist;
    data.keywords = change.keywords;
    let mut added = false;
    for entry in change.messages {
        match data.messages.binary_search_by_key(&entry.uid, |e| e.uid) {
            Ok(at) => {
                if let Some(slot) = data.messages.get_mut(at) {
                    *slot = entry;
                }
            }
            Err(at) => {
                added |= at < data.messages.len();
                data.messages.push(entry);
            }
        }
    }
    if added {
        data.messages.sort_by_key(|e| e.uid);
    }
    if !change.vanished.is_empty() {
        let gone: std::collections::HashSet<u32> =
            change.vanished.iter().map(|&(_, uid)| uid).collect();
        data.messages.retain(|e| !gone.contains(&e.uid));
        data.cache.retain(|(uid, _, _)| !gone.contains(uid));
        data.vanished.extend(change.vanished);
    }
    data.cache.extend(change.cache);
}

fn decode_fields(r: &mut Reader<'_>) -> Option<IndexData> {
    let mut data = IndexData {
        uid_validity: r.u32()?,
        next_uid: r.u32()?,
        highest_modseq: r.u64()?,
        first_recent: r.u32()?,
        guid: r.string()?,
        stamp: Stamp {
            new: r.i128()?,
            cur: r.i128()?,
            uidlist: r.i128()?,
            uidlist_len: r.u64()?,
        },
        ..IndexData::default()
    };
    data.uidlist = match r.u8()? {
        0 => None,
        1 => Some(UidlistSeen {
            lines: usize::try_from(r.u64()?).ok()?,
            stale: usize::try_from(r.u64()?).ok()?,
            ends_in_newline: r.u8()? != 0,
        }),
        _ => return None,
    };
    for _ in 0..r.count(4)? {
        data.keywords.push(r.string()?);
    }
    if data.keywords.len() > super::MAX_KEYWORDS {
        return None;
    }
    let count = r.count(46)?;
    data.messages.reserve(count);
    for _ in 0..count {
        let uid = r.u32()?;
        let name = r.string()?;
        let in_new = r.u8()? != 0;
        let flags = SystemFlags::from_bits(r.u8()?);
        let keywords = r.u32()?;
        let modseq = r.u64()?;
        let size = Some(r.u64()?).filter(|&size| size != UNKNOWN_SIZE);
        let physical = r.u64()?;
        let internal_date = r.u64()? as i64;
        let (save_date, email_id) = super::folder::name_ids(&name, internal_date);
        data.messages.push(Entry {
            uid,
            name,
            in_new,
            flags,
            keywords,
            modseq,
            size,
            physical,
            internal_date,
            save_date,
            email_id,
        });
    }
    // Ascending UIDs are what every lookup relies on.
    if data.messages.windows(2).any(|w| w[0].uid >= w[1].uid) {
        return None;
    }
    for _ in 0..r.count(12)? {
        data.vanished.push((r.u64()?, r.u32()?));
    }
    for _ in 0..r.count(9)? {
        let uid = r.u32()?;
        let key = key_from(r.u8()?)?;
        data.cache.push((uid, key, Arc::from(r.bytes()?)));
    }
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::super::folder::name_ids;
    use super::*;

    fn sample() -> IndexData {
        IndexData {
            uid_validity: 7,
            next_uid: 4,
            highest_modseq: 9,
            first_recent: 3,
            guid: "abc".to_owned(),
            stamp: Stamp {
                new: 1,
                cur: -2,
                uidlist: 3,
                uidlist_len: 4,
            },
            uidlist: Some(UidlistSeen {
                lines: 8,
                stale: 1,
                ends_in_newline: true,
            }),
            keywords: vec!["$Work".to_owned(), String::new()],
            messages: vec![
                Entry {
                    uid: 1,
                    name: "1.M1P1.h,S=3,W=4:2,S".to_owned(),
                    in_new: false,
                    flags: SystemFlags::SEEN,
                    keywords: 1,
                    modseq: 2,
                    size: Some(4),
                    physical: 3,
                    internal_date: -5,
                    save_date: 1,
                    email_id: name_ids("1.M1P1.h,S=3,W=4:2,S", -5).1,
                },
                Entry {
                    uid: 3,
                    name: "x".to_owned(),
                    in_new: true,
                    flags: SystemFlags::empty(),
                    keywords: 0,
                    modseq: 9,
                    size: None,
                    physical: 1,
                    internal_date: 1_700_000_000,
                    // A name without a time: the internal date stands in.
                    save_date: 1_700_000_000,
                    email_id: name_ids("x", 0).1,
                },
            ],
            vanished: vec![(5, 2)],
            cache: vec![(1, CacheKey::Envelope, Arc::from(&b"env"[..]))],
        }
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&sample(), 42);
        let (back, generation) = decode(&bytes).expect("decode");
        assert_eq!(generation, 42);
        assert_eq!(encode(&back, 42), bytes);
        assert_eq!(back, sample());
    }

    #[test]
    fn damage_is_detected_without_panic() {
        let bytes = encode(&sample(), 1);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_none(), "truncated to {len}");
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x55;
            assert!(decode(&damaged).is_none(), "byte {i} flipped");
        }
        assert!(decode(b"garbage garbage garbage").is_none());
    }

    fn entry(uid: u32, flags: SystemFlags, modseq: u64) -> Entry {
        Entry {
            uid,
            name: format!("{uid}.M1P1.h:2,"),
            in_new: false,
            flags,
            keywords: 0,
            modseq,
            size: None,
            physical: 10,
            internal_date: 1_700_000_000,
            save_date: i64::from(uid),
            email_id: name_ids(&format!("{uid}.M1P1.h:2,"), 0).1,
        }
    }

    /// Three changes as a folder makes them: a flag change and a counted size, an append
    /// with a cached envelope, an expunge. Returns the states after each and the records.
    fn history() -> (Vec<IndexData>, Vec<Vec<u8>>) {
        let mut state = sample();
        let mut states = vec![state.clone()];
        let mut records = Vec::new();
        let mut change = |state: &IndexData, mut record: IndexData| {
            record.uid_validity = state.uid_validity;
            record.guid.clone_from(&state.guid);
            record.keywords.clone_from(&state.keywords);
            record.highest_modseq = state.highest_modseq;
            record.next_uid = state.next_uid;
            record.first_recent = state.first_recent;
            record.stamp = state.stamp;
            record.uidlist = state.uidlist;
            records.push(encode_change(&record));
        };
        // 1: message 1 flagged, message 3's size counted, a new keyword.
        state.highest_modseq = 10;
        state.keywords.push("$Later".to_owned());
        state.messages[0].flags = SystemFlags::FLAGGED;
        state.messages[0].modseq = 10;
        state.messages[1].size = Some(77);
        change(
            &state,
            IndexData {
                messages: state.messages.clone(),
                ..IndexData::default()
            },
        );
        states.push(state.clone());
        // 2: message 4 appended, message 1's envelope cached.
        state.highest_modseq = 11;
        state.next_uid = 5;
        state.messages.push(entry(4, SystemFlags::empty(), 11));
        let envelope: Arc<[u8]> = Arc::from(&b"(NIL)"[..]);
        state
            .cache
            .push((1, CacheKey::BodyStructure, Arc::clone(&envelope)));
        change(
            &state,
            IndexData {
                messages: vec![entry(4, SystemFlags::empty(), 11)],
                cache: vec![(1, CacheKey::BodyStructure, envelope)],
                ..IndexData::default()
            },
        );
        states.push(state.clone());
        // 3: message 1 expunged (its cached values go with it); the stamp moves.
        state.highest_modseq = 12;
        state.stamp.cur = 99;
        state.messages.remove(0);
        state.cache.retain(|(uid, _, _)| *uid != 1);
        state.vanished.push((12, 1));
        change(
            &state,
            IndexData {
                vanished: vec![(12, 1)],
                ..IndexData::default()
            },
        );
        states.push(state);
        (states, records)
    }

    #[test]
    fn replaying_the_log_equals_a_fresh_snapshot() {
        let (states, records) = history();
        let mut log = log_header(7);
        for (done, record) in records.iter().enumerate() {
            log.extend_from_slice(record);
            let mut replayed = sample();
            assert_eq!(replay(&mut replayed, 7, &log), log.len());
            let expected = &states[done + 1];
            assert_eq!(&replayed, expected, "after {} records", done + 1);
            // And it writes the same snapshot as the state that made the changes.
            assert_eq!(encode(&replayed, 8), encode(expected, 8));
        }
    }

    #[test]
    fn a_torn_or_damaged_record_is_ignored_with_everything_after_it() {
        let (states, records) = history();
        let mut log = log_header(7);
        let mut ends = vec![log.len()];
        for record in &records {
            log.extend_from_slice(record);
            ends.push(log.len());
        }
        // Cut anywhere: the state is that of the last whole record.
        for len in 0..log.len() {
            let mut replayed = sample();
            let intact = replay(&mut replayed, 7, &log[..len]);
            let whole = ends.iter().rposition(|&end| end <= len);
            match whole {
                Some(whole) => {
                    assert_eq!(intact, ends[whole], "cut at {len}");
                    assert_eq!(replayed, states[whole], "cut at {len}");
                }
                None => {
                    assert_eq!(intact, 0, "cut at {len}");
                    assert_eq!(replayed, sample(), "cut at {len}");
                }
            }
        }
        // A byte flipped in the second record: only the first applies.
        let mut damaged = log.clone();
        damaged[ends[1] + 12] ^= 0x55;
        let mut replayed = sample();
        assert_eq!(replay(&mut replayed, 7, &damaged), ends[1]);
        assert_eq!(replayed, states[1]);
    }

    #[test]
    fn a_log_of_another_generation_is_ignored() {
        // The snapshot was rewritten (generation 8) and the crash came before the log was
        // emptied: its records, already in the snapshot, must not apply again.
        let (states, records) = history();
        let mut log = log_header(7);
        for record in &records {
            log.extend_from_slice(record);
        }
        let snapshot = encode(&states[3], 8);
        let (mut data, generation) = decode(&snapshot).expect("decode");
        assert_eq!(replay(&mut data, generation, &log), 0);
        assert_eq!(data, states[3]);
        assert_eq!(replay(&mut data, generation, b"MSTLOG"), 0);
    }
}
