//! Addresses arrive from SMTP, LMTP and logins: parsing must never panic, and whatever parses
//! must print back to something that parses to the same address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailstead_directory::address::{Address, AliasAddress};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(address) = Address::parse(text) {
        let again = Address::parse(&address.to_string()).expect("a normalised address parses");
        assert_eq!(address, again);
        let _ = address.split_extension("+-");
    }
    let _ = AliasAddress::parse(text);
});
