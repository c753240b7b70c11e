//! The access log: one line per request (target `tuskd::access`) with the method, the route's
//! kind, the HTTP version, the status, bytes in (body bytes read) and out (the response's length), the time to
//! the response, the upload id and a request id. `X-Request-Id` is taken from the request when
//! it is a sane token, else made, and returned on the response. Nothing else of the request is
//! logged: no credential, no header value, no metadata.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, HeaderValue};

use super::route::Route;

pub const REQUEST_ID: &str = "x-request-id";

tokio::task_local! {
    /// Body bytes read by the request being handled.
    static BYTES_IN: Arc<AtomicU64>;
}

/// Runs `f` counting the body bytes it reads; returns its output and the count.
pub async fn counting<F: Future>(f: F) -> (F::Output, u64) {
    let counter = Arc::new(AtomicU64::new(0));
    let out = BYTES_IN.scope(counter.clone(), f).await;
    (out, counter.load(Ordering::Relaxed))
}

/// Counts `n` body bytes for the request being handled (none outside a request).
pub fn read(n: usize) {
    let _ = BYTES_IN.try_with(|c| c.fetch_add(n as u64, Ordering::Relaxed));
}

/// The request's id: its `X-Request-Id` if that is 1 to 128 visible ASCII characters, else a
/// new random one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(crate::domain::upload::UploadId::random().as_str())
                .expect("ids are header-safe")
        })
}

/// What a route is, for the log (bounded: no ids), and the upload it names.
pub fn describe(route: &Route) -> (&'static str, Option<&str>) {
    match route {
        Route::Options => ("options", None),
        Route::Create => ("create", None),
        Route::Head(id) => ("head", Some(id.as_str())),
        Route::Patch(id) => ("patch", Some(id.as_str())),
        Route::Delete(id) => ("delete", Some(id.as_str())),
        Route::Get(id) => ("download", Some(id.as_str())),
        Route::MediaStatus(id) => ("media-status", Some(id.as_str())),
        Route::MediaFile(id, _) => ("media-file", Some(id.as_str())),
        Route::Health => ("healthz", None),
        Route::Ready => ("readyz", None),
        Route::Metrics => ("metrics", None),
        Route::List => ("list", None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_when_sane_and_made_otherwise() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        assert_ne!(request_id(&h), "has space");
        h.insert(REQUEST_ID, HeaderValue::from_str(&"x".repeat(200)).unwrap());
        assert_eq!(request_id(&h).len(), 32);
        assert_eq!(request_id(&HeaderMap::new()).len(), 32);
    }

    #[tokio::test]
    async fn bytes_read_are_counted_per_request() {
        let ((), n) = counting(async {
            read(10);
            read(5);
        })
        .await;
        assert_eq!(n, 15);
        read(3); // outside a request: nowhere to count, no panic
    }
}
