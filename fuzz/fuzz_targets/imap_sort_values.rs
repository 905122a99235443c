//! Feeds arbitrary bytes as a stored message to what SORT and THREAD read of it (the base
//! subject, the first addresses, the dates, the message IDs): nothing may panic, and the
//! cached form must read back as what was written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailstead_imap::message::Message;
use mailstead_imap::message::sort_values::SortValues;
use mailstead_imap::message::subject::base_subject;

fuzz_target!(|data: &[u8]| {
    let values = SortValues::of(&Message::parse(data));
    assert_eq!(SortValues::decode(&values.encode()), Some(values));
    let _ = base_subject(&String::from_utf8_lossy(data));
});
