//! The one rule for a message's stored form and its two sizes, used by every path that writes
//! or measures a message: delivery (streamed, [`LineEndings`]), APPEND ([`to_stored`]) and a
//! file found without `W=` in its name ([`Sizes::of_stored`]).
//!
//! Stored form: every CRLF becomes LF, as Dovecot stores with `mail_save_crlf = no`; a CR
//! not followed by LF and a bare LF are kept as they are.
//! `S=` (physical size) is the stored length. `W=` (virtual size) is the length of
//! [`to_wire`] of the stored bytes, which is what IMAP `BODY[]` and `RFC822.SIZE` give:
//! every LF not already after a CR counts two bytes. `a\r\r\n` is stored `a\r\n` and is
//! three bytes on every path.

/// The physical and virtual size of stored bytes, counted as they pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sizes {
    /// `S=`: bytes on disk.
    pub(crate) size: u64,
    /// `W=`: bytes with CRLF line endings.
    pub(crate) vsize: u64,
    /// The last stored byte: an LF after a CR is already a CRLF.
    last: Option<u8>,
}

impl Sizes {
    /// Sizes already known (from a file name, or a sum).
    pub(crate) fn known(size: u64, vsize: u64) -> Sizes {
        Sizes {
            size,
            vsize,
            last: None,
        }
    }

    /// The sizes of a whole stored message.
    pub(crate) fn of_stored(stored: &[u8]) -> Sizes {
        let mut sizes = Sizes::default();
        sizes.add(stored);
        sizes
    }

    /// Counts more stored bytes, following those counted before.
    pub(crate) fn add(&mut self, stored: &[u8]) {
        for &byte in stored {
            self.push(byte);
        }
    }

    fn push(&mut self, byte: u8) {
        self.size += 1;
        self.vsize += 1;
        if byte == b'\n' && self.last != Some(b'\r') {
            self.vsize += 1;
        }
        self.last = Some(byte);
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
        out.reserve(input.len());
        let mut rest = input;
        if self.pending_cr {
            self.pending_cr = false;
            if rest.first() != Some(&b'\n') {
                self.push(b'\r', out);
            }
        }
        while let Some((&byte, tail)) = rest.split_first() {
            rest = tail;
            if byte == b'\r' {
                match rest.first() {
                    Some(b'\n') => {}
                    Some(_) => self.push(b'\r', out),
                    None => self.pending_cr = true,
                }
                continue;
            }
            self.push(byte, out);
        }
    }

    /// The bytes held back at the end of the message (a trailing bare CR).
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            self.push(b'\r', out);
        }
    }

    pub(crate) fn sizes(&self) -> Sizes {
        self.sizes
    }

    fn push(&mut self, byte: u8, out: &mut Vec<u8>) {
        out.push(byte);
        self.sizes.push(byte);
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

/// Stored bytes as they go on the wire: an LF not after a CR gets one. Its length is `W=`.
pub(crate) fn to_wire(prefix: &[u8], stored: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(prefix.len() + stored.len() + stored.len() / 30);
    wire.extend_from_slice(prefix);
    let mut previous = None;
    for &byte in stored {
        if byte == b'\n' && previous != Some(b'\r') {
            wire.push(b'\r');
        }
        wire.push(byte);
        previous = Some(byte);
    }
    wire
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
            let fetched = to_wire(b"", &stored);
            assert_eq!(sizes.size, stored.len() as u64, "{wire:?}");
            assert_eq!(sizes.vsize, fetched.len() as u64, "{wire:?}");
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
        assert_eq!(to_stored(b"a\r\r\n").1.vsize, 3);
    }

    #[test]
    fn wire_form_keeps_crlf_and_adds_prefix() {
        assert_eq!(
            to_wire(b"P: 1\r\n", b"a\nb\r\nc\r"),
            b"P: 1\r\na\r\nb\r\nc\r"
        );
    }
}
