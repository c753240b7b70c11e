//! The router: any method and path either names a route with a well-formed id (and, under the
//! media path, a file key that cannot climb out of its directory) or is refused.
#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use tuskd::http::route::{Paths, Route, route};

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
    for (base, media) in [("/files/", Some("/media/")), ("/", None)] {
        let paths = Paths {
            base,
            media,
            list: "/uploads",
        };
        match route(method, path, paths) {
            Ok(Route::Head(id) | Route::Patch(id) | Route::Delete(id) | Route::Get(id)) => {
                assert!(path.starts_with(base));
                assert!(
                    id.as_str()
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                );
            }
            Ok(Route::MediaStatus(_)) => assert!(path.starts_with("/media/")),
            Ok(Route::MediaFile(_, file)) => {
                assert!(path.starts_with("/media/"));
                // The file part is checked as a key before storage sees it.
                if let Some(k) = tuskd::storage::MediaKey::parse(&file) {
                    assert!(
                        !k.as_str()
                            .split('/')
                            .any(|s| s == ".." || s.starts_with('.'))
                    );
                }
            }
            Ok(Route::Health) => assert_eq!(path, "/healthz"),
            Ok(Route::Ready) => assert_eq!(path, "/readyz"),
            Ok(Route::Metrics) => assert_eq!(path, "/metrics"),
            Ok(Route::List) => assert!(path == "/uploads" || path == "/uploads/"),
            Ok(Route::Create | Route::Options) | Err(_) => {}
        }
    }
});
