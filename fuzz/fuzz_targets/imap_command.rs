//! Feeds arbitrary bytes through the IMAP command framer, in chunks whose sizes also come from
//! the input, and every framed command through the parser: neither may panic, hang or hold
//! more than the framing limits allow. APPEND, MULTIAPPEND and REPLACE literals are streamed
//! (taken or refused), the messages announced after a streamed one too. What the parser accepts keeps the rules the session
//! relies on: `$` is a set of its own, and search return options ask for one PARTIAL or ALL at
//! most, with ranges from 1 and low before high.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailstead_imap::command::{Command, SearchKey, SearchReturn, SequenceSet};
use mailstead_imap::framing::{CommandFramer, Frame, FramingLimits};
use mailstead_imap::parser::{parse_append_head, parse_append_rest, parse_command};
use mailstead_store::acl::{Identifier, Rights, parse_acl_file};

fn check_set(set: &SequenceSet) {
    assert!(!set.is_saved_result() || set.ranges().is_empty());
}

fn check_key(key: &SearchKey) {
    match key {
        SearchKey::Sequence(set) | SearchKey::Uid(set) => check_set(set),
        SearchKey::Not(inner) => check_key(inner),
        SearchKey::Or(a, b) => {
            check_key(a);
            check_key(b);
        }
        SearchKey::And(keys) => keys.iter().for_each(check_key),
        _ => {}
    }
}

fn check(command: &Command) {
    match command {
        // What SETACL would write into a `dovecot-acl` file reads back the same.
        Command::SetAcl {
            identifier, rights, ..
        } => {
            let id = identifier.strip_prefix('-').unwrap_or(identifier);
            if let Some(parsed) = Identifier::parse_imap(id) {
                let line = format!("{parsed} l\n");
                let entries = parse_acl_file(&line).expect("an identifier SETACL takes reads back");
                assert_eq!(entries[0].identifier, parsed);
            }
            let letters = rights.strip_prefix(['+', '-']).unwrap_or(rights);
            if let Ok(parsed) = Rights::parse_imap(letters) {
                assert_eq!(Rights::parse_imap(&parsed.to_imap()), Ok(parsed));
            }
        }
        Command::Search(search) => {
            check_key(&search.criteria);
            let options = search.return_options.as_deref().unwrap_or_default();
            let ranges = options
                .iter()
                .filter(|option| matches!(option, SearchReturn::All | SearchReturn::Partial(..)))
                .count();
            assert!(ranges <= 1);
            for option in options {
                if let SearchReturn::Partial(low, high) = option {
                    assert!(1 <= *low && low <= high);
                }
            }
        }
        Command::Fetch(fetch) => check_set(&fetch.set),
        Command::Store(store) => check_set(&store.set),
        Command::Copy { set, .. } | Command::Move { set, .. } | Command::UidExpunge(set) => {
            check_set(set)
        }
        Command::CancelUpdate(tags) => assert!(!tags.is_empty()),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    // Small limits so that the too-long and too-big paths are reached often; literals just
    // large enough to be streamed when they are APPEND's.
    let limits = FramingLimits {
        max_line: 256,
        max_literal: 70_000,
        max_command: 71_000,
        max_discard: 80_000,
    };
    let mut framer = CommandFramer::new(limits);
    // First byte: chunk size, so splits at every position get exercised.
    // Its top bit: whether a streamed literal is refused rather than taken.
    let (chunk, refuse, data) = match data.split_first() {
        Some((&first, rest)) => (usize::from(first % 64) + 1, first >= 128, rest),
        None => return,
    };
    for piece in data.chunks(chunk) {
        framer.push(piece);
        let _ = framer.take_streamed();
        // While a literal streams, the session takes its bytes instead of frames.
        while framer.stream_remaining().is_none() {
            let Some(frame) = framer.next_frame() else {
                break;
            };
            match frame {
                Frame::Command(command) => {
                    assert!(command.len() <= limits.max_command);
                    assert!(command.ends_with(b"\r\n"));
                    if let Ok(tagged) = parse_command(&command) {
                        check(&tagged.command);
                    }
                }
                Frame::Stream { head, .. } => {
                    let _ = parse_append_head(&head);
                    if refuse {
                        framer.refuse_stream();
                    } else {
                        framer.accept_stream();
                        let _ = framer.take_streamed();
                    }
                }
                // MULTIAPPEND: the line after a streamed literal may announce the next one,
                // which streams the same way.
                Frame::Rest(line) => {
                    if let Ok(Some(next)) = parse_append_rest(&line, line.first() == Some(&b')'))
                        && next.size <= limits.max_literal as u64
                    {
                        framer.stream_next(next.size, next.synchronizing);
                        if refuse {
                            framer.refuse_stream();
                        } else {
                            framer.accept_stream();
                            let _ = framer.take_streamed();
                        }
                    }
                }
                Frame::Continue | Frame::Reject { .. } => {}
                Frame::Fatal { .. } => return,
            }
        }
        // Unframed bytes stay bounded: a line, a literal, and what one push added.
        assert!(framer.buffered() <= limits.max_command + limits.max_line + chunk);
    }
    // The parsers alone, on the raw input.
    if let Ok(tagged) = parse_command(data) {
        check(&tagged.command);
    }
    let _ = parse_append_head(data);
    let _ = parse_append_rest(data, data.first() == Some(&b')'));
});
