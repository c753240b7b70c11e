//! Bodies: the response body type, and reading a request body frame by frame with a read
//! timeout and a cancel signal, so that a stalled or interrupted client never holds a task
//! forever and never makes the server buffer more than one frame.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use tokio_util::sync::CancellationToken;

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

/// One step of reading a request body.
#[derive(Debug)]
pub enum Read {
    Data(Bytes),
    /// The body ended; trailers, if the client sent any.
    End(Option<http::HeaderMap>),
    /// No byte arrived within the read timeout.
    TimedOut,
    /// The connection failed or the client aborted mid-body.
    Lost,
    /// Someone with the right asked this reader to stop (a newer request, or shutdown).
    Cancelled,
}

/// Reads a request body with a read timeout and a cancel token. `next` is cancel-safe: the
/// caller may drop it inside a `select!` without losing data or resetting the timeout.
pub struct BodyReader {
    body: Option<Incoming>,
    timeout: Duration,
    /// When the body times out unless more bytes arrive.
    deadline: tokio::time::Instant,
    cancel: CancellationToken,
}

impl BodyReader {
    pub fn new(body: Incoming, timeout: Duration, cancel: CancellationToken) -> Self {
        BodyReader {
            body: Some(body),
            timeout,
            deadline: tokio::time::Instant::now() + timeout,
            cancel,
        }
    }

    /// The next piece of the body. After `End`, `Lost` or `TimedOut` it keeps returning `End(None)`.
    pub async fn next(&mut self) -> Read {
        loop {
            let Some(body) = self.body.as_mut() else {
                return Read::End(None);
            };
            let frame = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Read::Cancelled,
                r = tokio::time::timeout_at(self.deadline, body.frame()) => r,
            };
            let read = match frame {
                Err(_) => Read::TimedOut,
                Ok(None) => Read::End(None),
                Ok(Some(Err(_))) => Read::Lost,
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => {
                        self.deadline = tokio::time::Instant::now() + self.timeout;
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
