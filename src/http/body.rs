//! Bodies: the response body type, and reading a request body frame by frame with a read
//! timeout and a cancel signal, so that a stalled or interrupted client never holds a task
//! forever and never makes the server buffer more than one frame.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use http::{HeaderValue, Response, StatusCode, header};

use crate::upload::Read;

/// The body of every response tuskd sends.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Reads a request body with a read timeout and, if given, a cancel token: the upload core's
/// `ByteSource` (`next` is cancel-safe: the caller may drop it inside a `select!` without
/// losing data or resetting the timeout).
pub struct BodyReader {
    body: Option<Incoming>,
    timeout: Duration,
    /// When the last bytes arrived; the body times out `timeout` after that.
    last_data: Instant,
    /// Armed for the earliest moment the body could time out and moved on only when it fires,
    /// so a busy body costs a clock read per frame rather than a timer.
    timer: Pin<Box<Sleep>>,
    /// None when the caller stops the reading itself (the core, through the upload's lock).
    cancel: Option<CancellationToken>,
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("timeout", &self.timeout)
            .field("last_data", &self.last_data)
            .finish_non_exhaustive()
    }
}

impl BodyReader {
    pub fn new(body: Incoming, timeout: Duration, cancel: Option<CancellationToken>) -> Self {
        let now = Instant::now();
        BodyReader {
            body: Some(body),
            timeout,
            last_data: now,
            timer: Box::pin(tokio::time::sleep_until(now + timeout)),
            cancel,
        }
    }
}

/// Resolves when `token` is cancelled; never without one.
async fn cancelled(token: Option<&CancellationToken>) {
    match token {
        Some(t) => t.cancelled().await,
        None => std::future::pending().await,
    }
}

#[async_trait::async_trait]
impl crate::upload::ByteSource for BodyReader {
    fn exact_len(&self) -> Option<u64> {
        self.body
            .as_ref()
            .and_then(|b| http_body::Body::size_hint(b).exact())
    }

    fn is_end(&self) -> bool {
        self.body
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    async fn next(&mut self) -> Read {
        loop {
            let Some(body) = self.body.as_mut() else {
                return Read::End(None);
            };
            let frame = tokio::select! {
                biased;
                () = cancelled(self.cancel.as_ref()) => return Read::Cancelled,
                () = self.timer.as_mut() => {
                    let due = self.last_data + self.timeout;
                    if Instant::now() < due {
                        self.timer.as_mut().reset(due);
                        continue;
                    }
                    None
                }
                r = body.frame() => Some(r),
            };
            let read = match frame {
                None => Read::TimedOut,
                Some(None) => Read::End(None),
                Some(Some(Err(_))) => Read::Lost,
                Some(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => {
                        self.last_data = Instant::now();
                        super::access::read(data.len());
                        return Read::Data(data);
                    }
                    Err(frame) => Read::End(frame.into_trailers().ok()),
                },
            };
            self.body = None;
            return read;
        }
    }
}

/// A JSON answer that no cache keeps (status documents, listings, probes).
pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = status;
    let hs = resp.headers_mut();
    hs.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    hs.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
