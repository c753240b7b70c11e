//! The media status as `tuskd upload --wait` reads it: pushed, as the Server-Sent Events the
//! status URL answers with `Accept: text/event-stream` (every change, none missed between
//! polls: a video PLAYABLE for a moment is still seen so), or one JSON document from a server
//! that answers with JSON. A 404 is [`Failure::Gone`], a 401 [`Failure::Refused`]; what else
//! went wrong, [`Failure::Retry`].

use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use super::tus::{Client, Failure, answer, connection};

/// The longest event the stream may send: a status document is a few KiB.
const MAX_EVENT: usize = 1 << 20;

/// What the status URL answered.
pub(super) enum Status {
    /// One document.
    Document(Value),
    /// A stream of them.
    Stream(Events),
}

/// The status documents of an event stream, as they come.
pub(super) struct Events {
    resp: reqwest::Response,
    buf: Vec<u8>,
    data: String,
}

impl Events {
    /// The next document, or None when the stream ends (or breaks, or sends what is not a
    /// stream of events).
    pub(super) async fn next(&mut self) -> Option<Value> {
        loop {
            while let Some(at) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=at).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\r', '\n']);
                if line.is_empty() {
                    // An event ends; one that is not a JSON document (a comment) is skipped.
                    let data = std::mem::take(&mut self.data);
                    if let Ok(doc) = serde_json::from_str::<Value>(&data) {
                        return Some(doc);
                    }
                } else if let Some(d) = line.strip_prefix("data:") {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
                if self.data.len() > MAX_EVENT {
                    return None;
                }
            }
            if self.buf.len() > MAX_EVENT {
                return None;
            }
            match self.resp.chunk().await {
                Ok(Some(bytes)) => self.buf.extend_from_slice(&bytes),
                _ => return None,
            }
        }
    }
}

impl Client {
    /// The media status at `url`, asked for as a stream of events.
    pub(super) async fn status(&self, url: &Url) -> Result<Status, Failure> {
        let resp = self
            .request(reqwest::Method::GET, url)
            .header(
                reqwest::header::ACCEPT,
                "text/event-stream, application/json",
            )
            .send()
            .await
            .map_err(connection)?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(answer(resp, "asking for the media status", self.has_credentials()).await);
        }
        let streamed = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if status.is_success() && streamed {
            return Ok(Status::Stream(Events {
                resp,
                buf: Vec::new(),
                data: String::new(),
            }));
        }
        let body = tokio::time::timeout(std::time::Duration::from_secs(30), resp.bytes())
            .await
            .map_err(|_| Failure::Retry(format!("{url}: no answer in 30 s")))?
            .map_err(|e| Failure::Retry(e.to_string()))?;
        match status.as_u16() {
            200..=299 => serde_json::from_slice(&body)
                .map(Status::Document)
                .map_err(|e| Failure::Retry(format!("{url}: not JSON: {e}"))),
            404 => Err(Failure::Gone),
            _ => Err(Failure::Retry(format!(
                "{url}: the server answered {status}"
            ))),
        }
    }
}
