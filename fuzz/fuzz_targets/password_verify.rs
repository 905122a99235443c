//! The password comes from the network and the stored value from a database someone else may
//! have filled: verification must never panic on either.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (stored, password) = data.split_at(split);
    let Ok(stored) = std::str::from_utf8(stored) else {
        return;
    };
    let _ = mailstead_password::scheme_name(stored);
    let _ = mailstead_password::verify(stored, password);
});
