//! Every tus header parser on hostile values: none may panic, and what one accepts keeps its
//! promise. Input: header values separated by newlines, in a fixed order of names.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tuskd::http::headers as h;
use tuskd::domain::upload::MAX_LENGTH;

const NAMES: [&str; 9] = [
    "upload-length",
    "upload-offset",
    "upload-defer-length",
    "upload-checksum",
    "x-http-method-override",
    "content-type",
    "trailer",
    "tus-resumable",
    "upload-length",
];

fuzz_target!(|data: &[u8]| {
    let mut map = HeaderMap::new();
    for (name, value) in NAMES.iter().zip(data.split(|&b| b == b'\n')) {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            map.append(HeaderName::from_static(name), v);
        }
    }
    if let Ok(Some(n)) = h::upload_length(&map) {
        assert!(n <= MAX_LENGTH);
    }
    if let Ok(n) = h::upload_offset(&map) {
        assert!(n <= MAX_LENGTH);
    }
    let _ = h::creation_length(&map);
    let _ = h::check_tus_resumable(&map);
    let _ = h::is_offset_octet_stream(&map);
    let _ = h::method_override(&map);
    let _ = tuskd::http::tus::checksum::source(&map);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(n) = h::parse_u64(s) {
            assert!(n <= MAX_LENGTH && s.bytes().all(|b| b.is_ascii_digit()));
        }
        let _ = tuskd::http::tus::checksum::Expected::parse(s);
    }
});
