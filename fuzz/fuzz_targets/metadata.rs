//! `Upload-Metadata`: any text either parses into keys and values that keep the raw header, or
//! is refused; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tuskd::domain::upload::Metadata;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = Metadata::parse(s) {
        assert_eq!(m.raw(), s);
        for (k, _) in m.pairs() {
            assert!(!k.is_empty() && !k.contains([' ', ',']), "{s:?}");
        }
    }
});
