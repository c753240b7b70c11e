//! `Upload-Concat`: `partial`, or `final;` and upload URLs of this server; anything else is
//! refused. Ids that come out are well-formed and under the base path.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tuskd::http::headers as h;
use tuskd::domain::upload::Concat;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut map = HeaderMap::new();
    map.insert(h::UPLOAD_CONCAT, v);
    for base in ["/files/", "/", "/a/b/"] {
        if let Ok(Some((Concat::Final(ids), raw))) = h::concat(&map, base) {
            assert!(!ids.is_empty());
            // As received, less the whitespace around a header value.
            assert!(raw.as_bytes() == data.trim_ascii());
            for id in ids {
                assert!(
                    id.as_str()
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                );
            }
        }
    }
});
