//! Feeds arbitrary bytes through the IMAP command framer, in chunks whose sizes also come from
//! the input, and every framed command through the parser: neither may panic, hang or hold
//! more than the framing limits allow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailstead_imap::framing::{CommandFramer, Frame, FramingLimits};
use mailstead_imap::parser::parse_command;

fuzz_target!(|data: &[u8]| {
    // Small limits so that the too-long and too-big paths are reached often.
    let limits = FramingLimits {
        max_line: 256,
        max_literal: 1024,
        max_command: 2048,
        max_discard: 4096,
    };
    let mut framer = CommandFramer::new(limits);
    // First byte: chunk size, so splits at every position get exercised.
    let (chunk, data) = match data.split_first() {
        Some((&first, rest)) => (usize::from(first % 64) + 1, rest),
        None => return,
    };
    for piece in data.chunks(chunk) {
        framer.push(piece);
        while let Some(frame) = framer.next_frame() {
            match frame {
                Frame::Command(command) => {
                    assert!(command.len() <= limits.max_command);
                    assert!(command.ends_with(b"\r\n"));
                    let _ = parse_command(&command);
                }
                Frame::Continue | Frame::Reject { .. } => {}
                Frame::Fatal { .. } => return,
            }
        }
        // Unframed bytes stay bounded: a line, a literal, and what one push added.
        assert!(framer.buffered() <= limits.max_command + limits.max_line + chunk);
    }
    // The parser alone, on the raw input.
    let _ = parse_command(data);
});
