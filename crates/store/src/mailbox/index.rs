//! `mailstead.index`: a per-folder cache of what a sync learnt, so opening a large folder
//! needs no directory scan. Binary, versioned, checksummed; any doubt and it is ignored (the
//! folder is rebuilt from `dovecot-uidlist` and a scan).
//!
//! Layout (little endian): magic, version u32, then the fields in `IndexData` order, then
//! a CRC-32 of everything before it.

use std::sync::Arc;

use super::CacheKey;
use super::SystemFlags;
use super::folder::{Entry, Stamp};

const MAGIC: &[u8; 8] = b"MSTIDX\r\n";
/// 2: CRC-32 (crc32fast, many bytes at a time) replaced FNV-1a, which ran a byte at a time.
const VERSION: u32 = 2;

#[derive(Debug, Default)]
pub(crate) struct IndexData {
    pub(crate) uid_validity: u32,
    pub(crate) next_uid: u32,
    pub(crate) highest_modseq: u64,
    pub(crate) first_recent: u32,
    pub(crate) guid: String,
    pub(crate) stamp: Stamp,
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
    }
}

fn key_from(byte: u8) -> Option<CacheKey> {
    match byte {
        0 => Some(CacheKey::Envelope),
        1 => Some(CacheKey::BodyStructure),
        2 => Some(CacheKey::Body),
        3 => Some(CacheKey::SearchHeaders),
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

pub(crate) fn encode(data: &IndexData) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(128 + data.messages.len() * 96));
    w.0.extend_from_slice(MAGIC);
    w.u32(VERSION);
    w.u32(data.uid_validity);
    w.u32(data.next_uid);
    w.u64(data.highest_modseq);
    w.u32(data.first_recent);
    w.bytes(data.guid.as_bytes());
    w.i128(data.stamp.new);
    w.i128(data.stamp.cur);
    w.i128(data.stamp.uidlist);
    w.u64(data.stamp.uidlist_len);
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
        w.u64(m.size);
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
    let sum = crc32fast::hash(&w.0);
    w.u32(sum);
    w.0
}

/// `None` for anything but a complete, intact index of this version.
pub(crate) fn decode(bytes: &[u8]) -> Option<IndexData> {
    let body_len = bytes.len().checked_sub(4)?;
    let (body, sum) = bytes.split_at(body_len);
    if u32::from_le_bytes(sum.try_into().ok()?) != crc32fast::hash(body) {
        return None;
    }
    let mut r = Reader(body);
    if r.take(MAGIC.len())? != MAGIC || r.u32()? != VERSION {
        return None;
    }
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
        data.messages.push(Entry {
            uid,
            name,
            in_new,
            flags,
            keywords: r.u32()?,
            modseq: r.u64()?,
            size: r.u64()?,
            physical: r.u64()?,
            internal_date: r.u64()? as i64,
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
    r.0.is_empty().then_some(data)
}

#[cfg(test)]
mod tests {
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
            keywords: vec!["$Work".to_owned(), String::new()],
            messages: vec![
                Entry {
                    uid: 1,
                    name: "1.M1P1.h,S=3,W=4:2,S".to_owned(),
                    in_new: false,
                    flags: SystemFlags::SEEN,
                    keywords: 1,
                    modseq: 2,
                    size: 4,
                    physical: 3,
                    internal_date: -5,
                },
                Entry {
                    uid: 3,
                    name: "x".to_owned(),
                    in_new: true,
                    flags: SystemFlags::empty(),
                    keywords: 0,
                    modseq: 9,
                    size: 1,
                    physical: 1,
                    internal_date: 1_700_000_000,
                },
            ],
            vanished: vec![(5, 2)],
            cache: vec![(1, CacheKey::Envelope, Arc::from(&b"env"[..]))],
        }
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&sample());
        let back = decode(&bytes).expect("decode");
        assert_eq!(encode(&back), bytes);
        assert_eq!(back.messages, sample().messages);
        assert_eq!(back.stamp, sample().stamp);
    }

    #[test]
    fn damage_is_detected_without_panic() {
        let bytes = encode(&sample());
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
}
