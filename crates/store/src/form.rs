//! The one rule for a message's stored form, its wire form and its two sizes, used by every
//! path that writes, measures or serves a message: delivery (streamed, [`LineEndings`]),
//! APPEND ([`to_stored`]), a file found without `W=` in its name ([`Sizes::of_stored`]),
//! and IMAP, which serves the stored bytes through [`WireForm`] and [`to_wire`].
//!
//! Stored form: every CRLF becomes LF, as Dovecot stores with `mail_save_crlf = no`; a CR
//! not followed by LF and a bare LF are kept as they are.
//! Wire form: every LF not already after a CR gets one, nothing else changes.
//! `S=` (physical size) is the stored length. `W=` (virtual size) is the length of the wire
//! form of the stored bytes, which is what IMAP `BODY[]` and `RFC822.SIZE` give.
//! `a\r\r\n` is stored `a\r\n` and is three bytes on every path.

use std::borrow::Cow;

/// The physical and virtual size of stored bytes, counted as they pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sizes {
    /// `S=`: bytes on disk.
    pub(crate) size: u64,
    /// `W=`: the wire form, counted across pieces.
    wire: WireForm,
}

impl Sizes {
    /// Sizes already known (from a file name, or a sum).
    pub(crate) fn known(size: u64, vsize: u64) -> Sizes {
        Sizes {
            size,
            wire: WireForm {
                len: vsize,
                after_cr: false,
            },
        }
    }

    /// The sizes of a whole stored message.
    pub(crate) fn of_stored(stored: &[u8]) -> Sizes {
        let mut sizes = Sizes::default();
        sizes.add(stored);
        sizes
    }

    /// `W=`: bytes with CRLF line endings.
    pub(crate) fn vsize(&self) -> u64 {
        self.wire.len()
    }

    /// Counts more stored bytes, following those counted before.
    pub(crate) fn add(&mut self, stored: &[u8]) {
        self.size += stored.len() as u64;
        self.wire.count(stored);
    }
}

/// Turns wire bytes (CRLF) into the stored form across chunk boundaries, counting the sizes.
#[derive(Debug, Default)]
pub(crate) struct LineEndings {
    /// The previous chunk ended in CR; whether it is a line ending depends on the next byte.
    pending_cr: bool,
    sizes: Sizes,
}

impl LineEndings {
    pub(crate) fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + 1);
        let start = out.len();
        let mut rest = input;
        if self.pending_cr {
            self.pending_cr = false;
            if rest.first() != Some(&b'\n') {
                out.push(b'\r');
            }
        }
        while let Some(lf) = find_lf(rest, 0) {
            let line = rest.get(..lf).unwrap_or_default();
            // The CR of a CRLF is dropped; the LF stays.
            out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
            out.push(b'\n');
            rest = rest.get(lf + 1..).unwrap_or_default();
        }
        if let Some(held) = rest.strip_suffix(b"\r") {
            out.extend_from_slice(held);
            self.pending_cr = true;
        } else {
            out.extend_from_slice(rest);
        }
        self.sizes.add(out.get(start..).unwrap_or_default());
    }

    /// The bytes held back at the end of the message (a trailing bare CR).
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            out.push(b'\r');
            self.sizes.add(b"\r");
        }
    }

    pub(crate) fn sizes(&self) -> Sizes {
        self.sizes
    }
}

/// A whole message in its stored form, with its sizes.
pub(crate) fn to_stored(wire: &[u8]) -> (Vec<u8>, Sizes) {
    let mut endings = LineEndings::default();
    let mut stored = Vec::with_capacity(wire.len());
    endings.convert(wire, &mut stored);
    endings.finish(&mut stored);
    (stored, endings.sizes())
}

/// Stored bytes becoming their wire form, piece after piece: the length so far (`W=`,
/// `RFC822.SIZE`, a literal's length) and the conversion are the same walk, so they cannot
/// disagree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireForm {
    /// Bytes of the wire form so far.
    len: u64,
    /// The last byte so far was a CR: an LF first in the next piece ends that line as is.
    after_cr: bool,
}

impl WireForm {
    /// Starts with the byte before the first piece a CR (`true`): for a piece cut from the
    /// middle of a message whose first LF, if first, must not get a second CR.
    pub fn after_cr(after_cr: bool) -> WireForm {
        WireForm { len: 0, after_cr }
    }

    /// The wire length of the pieces so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been counted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Counts the next piece without converting it.
    pub fn count(&mut self, stored: &[u8]) {
        self.walk(stored, |_| {});
    }

    /// Appends the wire form of the next piece to `out`.
    pub fn convert(&mut self, stored: &[u8], out: &mut Vec<u8>) {
        self.convert_noting(stored, out, |_| {});
    }

    /// [`WireForm::convert`], calling `added` with the position in `out` of each CR it adds.
    pub fn convert_noting(
        &mut self,
        stored: &[u8],
        out: &mut Vec<u8>,
        mut added: impl FnMut(usize),
    ) {
        out.reserve(stored.len() + stored.len() / 32 + 2);
        let mut copied = 0;
        self.walk(stored, |lf| {
            out.extend_from_slice(stored.get(copied..lf).unwrap_or_default());
            added(out.len());
            out.push(b'\r');
            copied = lf;
        });
        out.extend_from_slice(stored.get(copied..).unwrap_or_default());
    }

    /// The rule itself: calls `bare_lf` with the index in `stored` of each LF that gets a CR,
    /// in order, and counts the piece.
    fn walk(&mut self, stored: &[u8], mut bare_lf: impl FnMut(usize)) {
        let mut from = 0;
        while let Some(lf) = find_lf(stored, from) {
            let after_cr = match lf.checked_sub(1) {
                Some(before) => stored.get(before) == Some(&b'\r'),
                None => self.after_cr,
            };
            if !after_cr {
                bare_lf(lf);
                self.len += 1;
            }
            from = lf + 1;
        }
        self.len += stored.len() as u64;
        if let Some(&last) = stored.last() {
            self.after_cr = last == b'\r';
        }
    }
}

/// A whole stored message in its wire form; borrowed when it has no LF to add.
pub fn to_wire(stored: &[u8]) -> Cow<'_, [u8]> {
    let mut counted = WireForm::default();
    counted.count(stored);
    if counted.len() == stored.len() as u64 {
        return Cow::Borrowed(stored);
    }
    let mut wire = Vec::with_capacity(usize::try_from(counted.len()).unwrap_or(stored.len()));
    WireForm::default().convert(stored, &mut wire);
    Cow::Owned(wire)
}

/// The wire length of a whole stored message: `W=`, `RFC822.SIZE`.
pub fn wire_len(stored: &[u8]) -> u64 {
    let mut counted = WireForm::default();
    counted.count(stored);
    counted.len()
}

/// The first LF at or after `from`. Eight bytes at a time: serving a message walks its lines,
/// so this is the hot loop of every conversion and of the IMAP parser.
pub fn find_lf(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let haystack = bytes.get(from..)?;
    let mut chunks = haystack.chunks_exact(8);
    let mut offset = from;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b'\n'));
        // The lowest set bit marks the first zero byte, i.e. the first LF.
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored form and sizes of each message, through every path: in one piece (APPEND),
    /// in chunks of every size (delivery), and measured again from the stored bytes (a file
    /// without `W=`). `W=` is always the length of what FETCH BODY[] sends.
    #[test]
    fn one_rule_on_every_path() {
        let cases: [(&[u8], &[u8]); 8] = [
            (b"a\r\r\n", b"a\r\n"),
            (b"bare\rcr\r\n", b"bare\rcr\n"),
            (b"bare\nlf\r\n", b"bare\nlf\n"),
            (b"trailing cr\r", b"trailing cr\r"),
            (b"", b""),
            (b"\r\n\r\n", b"\n\n"),
            (b"\r\r\r\n\n", b"\r\r\n\n"),
            (
                b"Subject: x\r\n\r\nline one\r\nbare\rcr\r\r\nend\r",
                b"Subject: x\n\nline one\nbare\rcr\r\nend\r",
            ),
        ];
        for (wire, expected) in cases {
            let (stored, sizes) = to_stored(wire);
            assert_eq!(stored, expected, "{wire:?}");
            let fetched = to_wire(&stored);
            assert_eq!(sizes.size, stored.len() as u64, "{wire:?}");
            assert_eq!(sizes.vsize(), fetched.len() as u64, "{wire:?}");
            assert_eq!(Sizes::of_stored(&stored), sizes, "{wire:?}");
            for chunk in 1..=wire.len().max(1) {
                let mut endings = LineEndings::default();
                let mut streamed = Vec::new();
                for piece in wire.chunks(chunk) {
                    endings.convert(piece, &mut streamed);
                }
                endings.finish(&mut streamed);
                assert_eq!(streamed, expected, "{wire:?} in chunks of {chunk}");
                assert_eq!(endings.sizes(), sizes, "{wire:?} in chunks of {chunk}");
            }
        }
        assert_eq!(to_stored(b"a\r\r\n").1.vsize(), 3);
    }

    #[test]
    fn wire_form_keeps_crlf_and_borrows_when_nothing_is_added() {
        assert_eq!(&*to_wire(b"a\nb\r\nc\rd\n"), b"a\r\nb\r\nc\rd\r\n");
        assert_eq!(&*to_wire(b"\n\n"), b"\r\n\r\n");
        assert!(matches!(to_wire(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert!(matches!(to_wire(b""), Cow::Borrowed(_)));
    }

    /// A message served a piece at a time (a file read a buffer at a time) is the whole
    /// message converted, wherever the pieces are cut, and each CR added is noted where it is.
    #[test]
    fn wire_form_in_pieces_is_the_whole_converted() {
        let stored: &[u8] = b"A: b\nC: d\r\n\nline\r\r\n\nx\0y\r\nlast\rline\n\r";
        let whole = to_wire(stored).into_owned();
        assert_eq!(wire_len(stored), whole.len() as u64);
        for size in 1..=stored.len() {
            let mut wire = WireForm::default();
            let mut out = Vec::new();
            let mut added = Vec::new();
            for piece in stored.chunks(size) {
                wire.convert_noting(piece, &mut out, |at| added.push(at));
            }
            assert_eq!(out, whole, "pieces of {size}");
            assert_eq!(wire.len(), whole.len() as u64, "pieces of {size}");
            assert_eq!(added.len(), whole.len() - stored.len(), "pieces of {size}");
            for at in added {
                assert_eq!(
                    whole.get(at..at + 2),
                    Some(&b"\r\n"[..]),
                    "pieces of {size}"
                );
            }
        }
        // A piece that starts on the LF of a CRLF cut before it.
        let mut out = Vec::new();
        WireForm::after_cr(true).convert(b"\nz\n", &mut out);
        assert_eq!(out, b"\nz\r\n");
    }

    #[test]
    fn find_lf_finds_the_first_lf_from_a_position() {
        let text: Vec<u8> = (0..300u32)
            .map(|i| {
                if i % 37 == 5 {
                    b'\n'
                } else {
                    (i % 251) as u8 | 0x80
                }
            })
            .collect();
        for from in 0..=text.len() + 1 {
            let expected = text
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
                .map(|i| i + from);
            assert_eq!(find_lf(&text, from), expected, "from {from}");
        }
        assert_eq!(find_lf(b"\x0b\x0a", 0), Some(1));
        assert_eq!(find_lf(b"\x8a\x0b\x09\x0a", 0), Some(3));
    }
}
