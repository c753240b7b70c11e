//! `GET /media/{id}` with `Accept: text/event-stream`: the status document pushed as
//! Server-Sent Events. A `status` event at once, then one per change (status, progress,
//! playability, outputs), and the stream closes after a final one (READY, REJECTED, FAILED);
//! an upload that goes away (terminated, expired) ends it with a `gone` event. Changes are read
//! from the metadata store every `POLL`, so a stream on any node sees every node's workers. A
//! comment every `KEEPALIVE` keeps proxies from closing a quiet stream; shutdown and `MAX_AGE`
//! close it (EventSource reconnects by itself, and gets the current document at once).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::Value;

use crate::app::App;
use crate::domain::access::Caller;
use crate::domain::upload::UploadId;
use crate::http::body::Body;
use crate::http::error::Error;

const POLL: Duration = Duration::from_millis(500);
const KEEPALIVE: Duration = Duration::from_secs(15);
const MAX_AGE: Duration = Duration::from_secs(3600);
const FINAL: [&str; 3] = ["READY", "REJECTED", "FAILED"];

/// Whether the request asks for the event stream.
pub(crate) fn wanted(req: &HeaderMap) -> bool {
    req.get_all(header::ACCEPT).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',').any(|t| {
                t.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
            })
        })
    })
}

struct Follow {
    app: App,
    caller: Caller,
    id: UploadId,
    base: String,
    /// The document to send first.
    first: Option<Value>,
    last: String,
    seq: u64,
    done: bool,
    started: Instant,
    sent: Instant,
}

fn event(seq: u64, kind: &str, data: &str) -> Frame<Bytes> {
    Frame::data(Bytes::from(format!(
        "id: {seq}\nevent: {kind}\ndata: {data}\n\n"
    )))
}

impl Follow {
    /// The frame for `doc` if it changed.
    fn changed(&mut self, doc: &Value) -> Option<Frame<Bytes>> {
        let text = doc.to_string();
        if text == self.last {
            return None;
        }
        self.seq += 1;
        self.done = doc["status"].as_str().is_some_and(|s| FINAL.contains(&s));
        let frame = event(self.seq, "status", &text);
        self.last = text;
        self.sent = Instant::now();
        Some(frame)
    }

    /// The next frame, or None when the stream ends.
    async fn next(&mut self) -> Option<Frame<Bytes>> {
        if let Some(doc) = self.first.take() {
            return self.changed(&doc);
        }
        let shutdown = self.app.uploads.shutdown.clone();
        while !self.done && self.started.elapsed() < MAX_AGE {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.cancelled() => return None,
            }
            match super::media::document(&self.app, &self.caller, &self.id, &self.base).await {
                Ok(doc) => {
                    if let Some(frame) = self.changed(&doc) {
                        return Some(frame);
                    }
                }
                Err(Error::MediaNotFound) => {
                    self.done = true;
                    self.seq += 1;
                    return Some(event(self.seq, "gone", "{}"));
                }
                // The store's trouble passes or the stream's age ends it.
                Err(e) => tracing::debug!(id = %self.id, "media status stream: {e}"),
            }
            if self.sent.elapsed() >= KEEPALIVE {
                self.sent = Instant::now();
                return Some(Frame::data(Bytes::from_static(b": keepalive\n\n")));
            }
        }
        None
    }
}

/// The event stream of `id`'s status, starting with `doc`.
pub(crate) fn stream(
    app: App,
    caller: Caller,
    id: UploadId,
    base: String,
    doc: Value,
) -> Response<Body> {
    let follow = Follow {
        app,
        caller,
        id,
        base,
        first: Some(doc),
        last: String::new(),
        seq: 0,
        done: false,
        started: Instant::now(),
        sent: Instant::now(),
    };
    let frames = futures_util::stream::unfold(follow, |mut f| async move {
        let frame = f.next().await?;
        Some((Ok::<_, std::io::Error>(frame), f))
    });
    let mut res = Response::new(StreamBody::new(frames).boxed_unsync());
    *res.status_mut() = StatusCode::OK;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies that buffer responses (nginx) pass this one through as it comes.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

#[cfg(test)]
mod tests {
    use super::wanted;

    #[test]
    fn the_stream_is_asked_for_by_accept() {
        let ask = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::ACCEPT, v.parse().unwrap());
            wanted(&h)
        };
        assert!(ask("text/event-stream"));
        assert!(ask("application/json, Text/Event-Stream;q=0.9"));
        assert!(!ask("application/json"));
        assert!(!ask("*/*"));
        assert!(!wanted(&http::HeaderMap::new()));
    }
}
