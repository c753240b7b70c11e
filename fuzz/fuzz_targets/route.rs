//! The router: any method and path either names a route with a well-formed id or is refused.
#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use tuskd::http::route::{Route, route};

const METHODS: [Method; 8] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::PUT,
    Method::TRACE,
];

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let Ok(path) = std::str::from_utf8(rest) else {
        return;
    };
    let method = &METHODS[m as usize % METHODS.len()];
    for base in ["/files/", "/"] {
        match route(method, path, base) {
            Ok(Route::Head(id) | Route::Patch(id) | Route::Delete(id) | Route::Get(id)) => {
                assert!(path.starts_with(base));
                assert!(
                    id.as_str()
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                );
            }
            Ok(Route::Create | Route::Options) | Err(_) => {}
        }
    }
});
