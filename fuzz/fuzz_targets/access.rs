//! What a caller hands the gate besides a token: a listing cursor, a signed media URL's
//! segment, an owner. Each is refused or round-trips, and none panics.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use tuskd::auth::signed::Signer;
use tuskd::domain::access::Owner;
use tuskd::domain::listing::Cursor;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(c) = Cursor::decode(text) {
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
    }
    if let Some(o) = Owner::parse(text) {
        assert!(!o.as_str().chars().any(char::is_control));
    }
    let signer = Signer::new(
        vec![b"fuzz-key-0123456789abcdef0123456789".to_vec()],
        Duration::from_secs(60),
    )
    .expect("a valid key");
    let now = SystemTime::now();
    let (id, segment) = text.split_once('/').unwrap_or(("upload", text));
    // No input forges a MAC; none panics the check; what the key signs verifies.
    assert!(signer.verify(id, segment, now).is_err() || segment.starts_with('~'));
    assert!(signer.verify(id, &signer.sign(id, now), now).is_ok());
});
