//! COMPRESS=DEFLATE (RFC 4978): raw deflate (RFC 1951) both ways, through flate2's pure-Rust
//! backend (miniz_oxide).
//!
//! Responses are compressed a burst at a time and each burst ends with a sync flush, so the
//! client can read every response as soon as it arrives. The compressor (about 300 KiB with
//! miniz_oxide) exists only while responses are being written: it is dropped whenever the
//! session waits for the client, and the next burst starts a fresh one. After a sync flush
//! the stream sits at a byte boundary, and a fresh compressor refers to nothing before it, so
//! the client's decompressor reads on as if one compressor had written everything. The
//! decompressor must keep the client's last 32 KiB (the client may refer back to them), so a
//! compressed idle connection holds about 49 KiB more than a plain one (bench/compress.sh).
//!
//! Input is decompressed into the framer's own buffer, never more than a plain read would
//! put there, so a small compressed command that inflates to gigabytes meets the same line
//! and literal limits as plain input (a zip bomb is one more long line).

use std::io;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::AsyncReadExt;

use crate::connection::Io;

/// Dovecot's default level (`imap_compress_deflate_level`).
const LEVEL: u32 = 6;
/// The smallest read of compressed input, as the framer reads between commands.
const MIN_READ: usize = 256;

pub(crate) struct Deflate {
    inflate: Decompress,
    /// Compressed bytes read from the client and not yet decompressed.
    input: Vec<u8>,
    /// The client ended its deflate stream: nothing more can come.
    ended: bool,
    /// Present while a burst of responses is written (see the module comment).
    deflate: Option<Compress>,
    /// The compressed form of the burst being written.
    compressed: Vec<u8>,
}

impl Default for Deflate {
    fn default() -> Deflate {
        Deflate {
            inflate: Decompress::new(false),
            input: Vec::new(),
            ended: false,
            deflate: None,
            compressed: Vec::new(),
        }
    }
}

fn invalid(err: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("deflate: {err}"))
}

impl Deflate {
    /// `data` compressed and sync-flushed: everything in it can be decompressed by the client
    /// from what is returned.
    pub(crate) fn compress(&mut self, data: &[u8]) -> io::Result<&[u8]> {
        let compressor = self
            .deflate
            .get_or_insert_with(|| Compress::new(Compression::new(LEVEL), false));
        self.compressed.clear();
        let mut consumed = 0;
        loop {
            let remaining = data.get(consumed..).unwrap_or_default();
            self.compressed.reserve(remaining.len() + 1024);
            let before = compressor.total_in();
            compressor
                .compress_vec(remaining, &mut self.compressed, FlushCompress::Sync)
                .map_err(invalid)?;
            consumed += usize::try_from(compressor.total_in() - before).map_err(invalid)?;
            // The flush is complete when the compressor stopped with room left over (zlib's
            // rule for Z_SYNC_FLUSH).
            if consumed >= data.len() && self.compressed.len() < self.compressed.capacity() {
                return Ok(&self.compressed);
            }
        }
    }

    /// The session waits for the client: the compressor and the buffers go (see the module
    /// comment); only the decompressor's window stays.
    pub(crate) fn rest(&mut self) {
        self.deflate = None;
        self.compressed = Vec::new();
        if self.input.is_empty() && self.input.capacity() > MIN_READ {
            self.input = Vec::new();
        }
    }

    /// Decompresses what was read into the spare capacity of `buf` (never growing it); the
    /// number of bytes added.
    pub(crate) fn decompress_into(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        let before_out = buf.len();
        let before_in = self.inflate.total_in();
        let status = self
            .inflate
            .decompress_vec(&self.input, buf, FlushDecompress::None)
            .map_err(invalid)?;
        let consumed = usize::try_from(self.inflate.total_in() - before_in).map_err(invalid)?;
        self.input.drain(..consumed.min(self.input.len()));
        if status == Status::StreamEnd {
            self.ended = true;
        }
        Ok(buf.len() - before_out)
    }

    /// Whether the client ended its deflate stream.
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Reads compressed bytes from the client, at most `room`; false at end of stream.
    pub(crate) async fn read_from(
        &mut self,
        stream: &mut Box<dyn Io>,
        room: usize,
    ) -> io::Result<bool> {
        self.input.reserve_exact(room.max(MIN_READ));
        let n = stream.read_buf(&mut self.input).await?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate_all(compressed: &[u8]) -> Vec<u8> {
        let mut inflate = Decompress::new(false);
        let mut out = Vec::with_capacity(1 << 20);
        inflate
            .decompress_vec(compressed, &mut out, FlushDecompress::Sync)
            .expect("valid deflate");
        out
    }

    /// Bursts written by fresh compressors read as one stream on the client's side.
    #[test]
    fn bursts_from_fresh_compressors_form_one_stream() {
        let mut deflate = Deflate::default();
        let mut wire = Vec::new();
        let first = b"* 1 FETCH (BODY[] {5}\r\nhello)\r\n".repeat(100);
        wire.extend_from_slice(deflate.compress(&first).expect("compress"));
        deflate.rest();
        let second = b"a OK Fetch completed.\r\n";
        wire.extend_from_slice(deflate.compress(second).expect("compress"));
        // The same compressor again, within one burst.
        wire.extend_from_slice(deflate.compress(second).expect("compress"));
        let mut expected = first.clone();
        expected.extend_from_slice(second);
        expected.extend_from_slice(second);
        assert_eq!(inflate_all(&wire), expected);
        assert!(wire.len() < first.len() / 4, "{} bytes", wire.len());
    }

    /// A few bytes that inflate to a lot come out no faster than the buffer takes them.
    #[test]
    fn decompression_fills_only_the_room_given() {
        let mut compress = Compress::new(Compression::best(), false);
        let mut bomb = Vec::with_capacity(1 << 16);
        compress
            .compress_vec(&vec![b'a'; 10 << 20], &mut bomb, FlushCompress::Sync)
            .expect("compress");
        assert!(bomb.len() < 64 * 1024);
        let mut deflate = Deflate {
            input: bomb,
            ..Deflate::default()
        };
        let mut buf = Vec::with_capacity(256);
        let produced = deflate.decompress_into(&mut buf).expect("inflate");
        assert_eq!(produced, buf.len());
        assert!(buf.len() <= 256 && !buf.is_empty());
        assert_eq!(buf.capacity(), 256);
    }

    #[test]
    fn garbage_is_an_error() {
        let mut deflate = Deflate {
            input: vec![0xff; 64],
            ..Deflate::default()
        };
        let mut buf = Vec::with_capacity(256);
        assert!(deflate.decompress_into(&mut buf).is_err());
    }
}
