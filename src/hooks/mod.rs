//! Hooks: tusd v2-compatible events sent to executable scripts (`script`) or a webhook
//! (`webhook`), with tusd's JSON request and response, so hook scripts and receivers written
//! for tusd work unchanged.
//!
//! pre-* hooks are awaited by the request that causes them and may reject it, change the new
//! upload's id or metadata (validated like a client's), or shape the response. A hook that
//! fails, times out or answers something that is not a hook response is logged and turns into a
//! 500 for pre-* events; it never changes an upload.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use crate::domain::event::OutboxEvent;
use crate::domain::upload::{Concat, Upload, UploadId};

pub mod dispatch;
pub mod script;
pub mod webhook;

/// Largest hook answer read (stdout of a script, body of a webhook response).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum HookType {
    #[serde(rename = "pre-create")]
    PreCreate,
    #[serde(rename = "post-create")]
    PostCreate,
    #[serde(rename = "post-receive")]
    PostReceive,
    #[serde(rename = "pre-finish")]
    PreFinish,
    #[serde(rename = "post-finish")]
    PostFinish,
    #[serde(rename = "pre-terminate")]
    PreTerminate,
    #[serde(rename = "post-terminate")]
    PostTerminate,
    /// The media pipeline published an upload's outputs.
    #[serde(rename = "media-ready")]
    MediaReady,
    /// The media pipeline refused an upload (its type, its size).
    #[serde(rename = "media-rejected")]
    MediaRejected,
    /// The media pipeline could not process an upload.
    #[serde(rename = "media-failed")]
    MediaFailed,
}

impl HookType {
    pub const ALL: [HookType; 10] = [
        HookType::PreCreate,
        HookType::PostCreate,
        HookType::PostReceive,
        HookType::PreFinish,
        HookType::PostFinish,
        HookType::PreTerminate,
        HookType::PostTerminate,
        HookType::MediaReady,
        HookType::MediaRejected,
        HookType::MediaFailed,
    ];

    /// The event's name, which is also the name of its script.
    pub fn name(self) -> &'static str {
        match self {
            HookType::PreCreate => "pre-create",
            HookType::PostCreate => "post-create",
            HookType::PostReceive => "post-receive",
            HookType::PreFinish => "pre-finish",
            HookType::PostFinish => "post-finish",
            HookType::PreTerminate => "pre-terminate",
            HookType::PostTerminate => "post-terminate",
            HookType::MediaReady => "media-ready",
            HookType::MediaRejected => "media-rejected",
            HookType::MediaFailed => "media-failed",
        }
    }

    pub fn parse(s: &str) -> Option<HookType> {
        HookType::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// What a hook receives: tusd v2's `HookRequest`.
#[derive(Debug, Clone, Serialize)]
pub struct HookRequest {
    #[serde(rename = "Type")]
    pub kind: HookType,
    #[serde(rename = "Event")]
    pub event: HookEvent,
}

impl HookRequest {
    /// This post-* event as the outbox keeps it, for upload `upload`: a stable id (sent with
    /// every attempt, so receivers can drop duplicates) and the payload as it is sent. The one
    /// place stored hook payloads are made. post-finish and post-terminate are held until the
    /// request's remaining work is done (see `MetaStore::release_events`).
    pub fn to_outbox(&self, upload: &UploadId) -> Option<OutboxEvent> {
        Some(OutboxEvent {
            id: UploadId::random().to_string(),
            kind: self.kind.name().to_owned(),
            upload: upload.clone(),
            payload: serde_json::to_string(self).ok()?,
            held: matches!(self.kind, HookType::PostFinish | HookType::PostTerminate),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HookEvent {
    #[serde(rename = "Upload")]
    pub upload: FileInfo,
    #[serde(rename = "HTTPRequest")]
    pub http_request: HttpRequestInfo,
    /// media-* events: the media record, as `GET /media/{id}` shows it.
    #[serde(rename = "Media", skip_serializing_if = "Option::is_none")]
    pub media: Option<serde_json::Value>,
}

/// tusd's `FileInfo`.
#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Size")]
    pub size: i64,
    #[serde(rename = "SizeIsDeferred")]
    pub size_is_deferred: bool,
    #[serde(rename = "Offset")]
    pub offset: i64,
    #[serde(rename = "MetaData")]
    pub metadata: BTreeMap<String, String>,
    #[serde(rename = "IsPartial")]
    pub is_partial: bool,
    #[serde(rename = "IsFinal")]
    pub is_final: bool,
    #[serde(rename = "PartialUploads")]
    pub partial_uploads: Option<Vec<String>>,
    #[serde(rename = "Storage")]
    pub storage: BTreeMap<String, String>,
}

impl FileInfo {
    pub fn of(upload: &Upload, storage: BTreeMap<String, String>) -> FileInfo {
        FileInfo {
            id: upload.id.to_string(),
            size: upload.length.map_or(0, |l| l as i64),
            size_is_deferred: upload.length.is_none(),
            offset: upload.offset as i64,
            metadata: upload
                .metadata
                .iter()
                .flat_map(|m| m.pairs())
                .map(|(k, v)| (k.to_owned(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
            is_partial: upload.concat == Concat::Partial,
            is_final: upload.is_final(),
            partial_uploads: match &upload.concat {
                Concat::Final(ids) => Some(ids.iter().map(|i| i.to_string()).collect()),
                _ => None,
            },
            storage,
        }
    }
}

/// The client's address, which hook events report; the server puts it on every request.
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub std::net::SocketAddr);

/// The request that caused the event, as tusd describes it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HttpRequestInfo {
    #[serde(rename = "Method")]
    pub method: String,
    #[serde(rename = "URI")]
    pub uri: String,
    #[serde(rename = "RemoteAddr")]
    pub remote_addr: String,
    /// Canonical header names (`Upload-Length`), every value of each.
    #[serde(rename = "Header")]
    pub header: BTreeMap<String, Vec<String>>,
}

impl HttpRequestInfo {
    /// The request as a hook sees it, without the headers named in `redact`.
    pub fn of(
        method: &http::Method,
        uri: &http::Uri,
        headers: &HeaderMap,
        remote: &str,
        redact: &[HeaderName],
    ) -> Self {
        let mut header: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in headers.iter().filter(|(n, _)| !redact.contains(n)) {
            header
                .entry(canonical(name.as_str()))
                .or_default()
                .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
        HttpRequestInfo {
            method: method.to_string(),
            uri: uri.to_string(),
            remote_addr: remote.to_owned(),
            header,
        }
    }
}

/// `upload-length` → `Upload-Length`, as Go's net/http spells header names.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// What a hook answers: tusd v2's `HookResponse`. Every field is optional; unknown fields are
/// ignored, so responses written for newer tusd versions still parse.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HookResponse {
    #[serde(rename = "HTTPResponse")]
    pub http_response: HttpResponse,
    #[serde(rename = "RejectUpload")]
    pub reject_upload: bool,
    #[serde(rename = "RejectTermination")]
    pub reject_termination: bool,
    #[serde(rename = "ChangeFileInfo")]
    pub change_file_info: FileInfoChanges,
    #[serde(rename = "StopUpload")]
    pub stop_upload: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HttpResponse {
    /// 0: not set.
    #[serde(rename = "StatusCode")]
    pub status_code: u16,
    #[serde(rename = "Body")]
    pub body: String,
    #[serde(rename = "Header")]
    pub header: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FileInfoChanges {
    /// Empty: unchanged.
    #[serde(rename = "ID")]
    pub id: String,
    /// Absent: unchanged; present: replaces all metadata.
    #[serde(rename = "MetaData")]
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{0} hook timed out after {1:?}")]
    TimedOut(&'static str, Duration),
    #[error("{0} hook failed: {1}")]
    Failed(&'static str, String),
    #[error("{0} hook answered something that is not a hook response: {1}")]
    Garbage(&'static str, String),
}

impl HookError {
    /// The event whose hook failed.
    pub fn hook(&self) -> &'static str {
        match self {
            HookError::TimedOut(h, _) | HookError::Failed(h, _) | HookError::Garbage(h, _) => h,
        }
    }
}

impl HttpResponse {
    /// The status, headers and body a hook set, checked: a status outside 100-599 or a header
    /// that is not valid HTTP is the hook's error, never a broken response. Headers that frame
    /// the message (length, encoding, connection) stay tuskd's.
    pub fn validated(
        &self,
        hook: &'static str,
    ) -> Result<(Option<StatusCode>, HeaderMap, String), HookError> {
        let garbage = |what: String| HookError::Garbage(hook, what);
        let status = match self.status_code {
            0 => None,
            n => Some(
                StatusCode::from_u16(n)
                    .ok()
                    .filter(|s| (100..600).contains(&s.as_u16()))
                    .ok_or_else(|| garbage(format!("status code {n}")))?,
            ),
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &self.header {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| garbage(format!("header name {k:?}")))?;
            let value =
                HeaderValue::from_str(v).map_err(|_| garbage(format!("header value {v:?}")))?;
            if [
                http::header::CONTENT_LENGTH,
                http::header::TRANSFER_ENCODING,
                http::header::CONNECTION,
            ]
            .contains(&name)
            {
                continue;
            }
            headers.insert(name, value);
        }
        Ok((status, headers, self.body.clone()))
    }
}

/// Where hooks go.
#[derive(Debug, Clone)]
pub enum Target {
    /// Executables named after the events in this directory.
    Scripts(std::path::PathBuf),
    /// A webhook URL, with extra headers (e.g. authorization).
    Http {
        url: String,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
}

/// Validated hook settings.
#[derive(Debug, Clone)]
pub struct HookConfig {
    pub target: Target,
    pub enabled: HashSet<HookType>,
    pub timeout: Duration,
    /// Least time between two post-receive events of one request.
    pub progress_interval: Duration,
    /// Delivery attempts of a post-* event before it becomes a dead letter.
    pub max_attempts: u32,
    /// Request headers removed from post-* events before they are stored (credentials).
    pub redact: Vec<HeaderName>,
}

/// Credentials that never reach the outbox, whatever is configured: post-* events are stored
/// on disk and kept as dead letters. pre-* hooks, which run in memory, still see them (a
/// pre-create hook that checks a token needs it), as in tusd.
pub const ALWAYS_REDACTED: [HeaderName; 3] = [
    http::header::AUTHORIZATION,
    http::header::COOKIE,
    http::header::PROXY_AUTHORIZATION,
];

impl HookConfig {
    /// Every event, tusd's timeout, 1 s progress, 12 attempts.
    pub fn new(target: Target) -> HookConfig {
        HookConfig {
            target,
            enabled: HookType::ALL.into_iter().collect(),
            timeout: Duration::from_secs(30),
            progress_interval: Duration::from_secs(1),
            max_attempts: 12,
            redact: ALWAYS_REDACTED.to_vec(),
        }
    }
}

/// The hook system: sends events to the configured target. Clones share the dispatcher's
/// wake-up signal.
#[derive(Clone)]
pub struct Hooks {
    config: Option<HookConfig>,
    http: Option<webhook::Webhook>,
    /// Wakes the dispatcher when events were written.
    ready: std::sync::Arc<tokio::sync::Notify>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Hooks {
    pub fn new(
        config: Option<HookConfig>,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Hooks {
        let http = match &config {
            Some(HookConfig {
                target: Target::Http { url, headers },
                timeout,
                ..
            }) => Some(webhook::Webhook::new(
                url.clone(),
                headers.clone(),
                *timeout,
            )),
            _ => None,
        };
        Hooks {
            config,
            http,
            ready: std::sync::Arc::new(tokio::sync::Notify::new()),
            metrics,
        }
    }

    pub fn config(&self) -> Option<&HookConfig> {
        self.config.as_ref()
    }

    /// Tells the dispatcher that events may be due.
    pub fn wake(&self) {
        self.ready.notify_one();
    }

    pub async fn woken(&self) {
        self.ready.notified().await
    }

    pub fn none() -> Hooks {
        Hooks::new(None, Default::default())
    }

    pub fn is_enabled(&self, kind: HookType) -> bool {
        self.config
            .as_ref()
            .is_some_and(|c| c.enabled.contains(&kind))
    }

    /// Sends the event and waits for the answer. An event that is not enabled answers the
    /// empty response (carry on) without being sent.
    pub async fn invoke(&self, request: &HookRequest) -> Result<HookResponse, HookError> {
        if !self.is_enabled(request.kind) {
            return Ok(HookResponse::default());
        }
        let name = request.kind.name();
        let payload = serde_json::to_vec(request)
            .map_err(|e| HookError::Failed(name, format!("cannot encode the event: {e}")))?;
        self.send(request.kind, &payload, None).await
    }

    /// Sends an encoded event (from the outbox), with its id for de-duplication: the
    /// `Tuskd-Event-Id` header of a webhook, `TUSKD_EVENT_ID` for a script.
    pub async fn send(
        &self,
        kind: HookType,
        payload: &[u8],
        event_id: Option<&str>,
    ) -> Result<HookResponse, HookError> {
        let Some(config) = self.config.as_ref() else {
            return Ok(HookResponse::default());
        };
        let name = kind.name();
        let label = crate::metrics::EventLabels {
            event: name.to_owned(),
        };
        self.metrics.hook_invocations.get_or_create(&label).inc();
        let answer = match (&config.target, &self.http) {
            (Target::Scripts(dir), _) => {
                script::run(dir, name, payload, event_id, config.timeout).await
            }
            (Target::Http { .. }, Some(http)) => http.post(name, payload, event_id).await,
            (Target::Http { .. }, None) => unreachable!("webhook client built with the config"),
        };
        let parsed = answer.and_then(|a| parse_response(name, &a));
        if parsed.is_err() {
            self.metrics.hook_failures.get_or_create(&label).inc();
        }
        parsed
    }
}

/// An empty answer means "carry on", as in tusd.
pub fn parse_response(hook: &'static str, answer: &[u8]) -> Result<HookResponse, HookError> {
    if answer.iter().all(u8::is_ascii_whitespace) {
        return Ok(HookResponse::default());
    }
    serde_json::from_slice(answer).map_err(|e| {
        let shown: String = String::from_utf8_lossy(answer).chars().take(200).collect();
        HookError::Garbage(hook, format!("{e}: {shown:?}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonical_like_go() {
        assert_eq!(canonical("upload-length"), "Upload-Length");
        assert_eq!(
            canonical("x-http-method-override"),
            "X-Http-Method-Override"
        );
        assert_eq!(canonical("authorization"), "Authorization");
    }

    #[test]
    fn responses_parse_like_tusd() {
        let r = parse_response(
            "pre-create",
            br#"{"RejectUpload": true, "HTTPResponse": {"StatusCode": 403, "Body": "no",
                "Header": {"X-Reason": "token"}}, "Future": 1}"#,
        )
        .unwrap();
        assert!(r.reject_upload);
        assert_eq!(r.http_response.status_code, 403);
        let (status, headers, body) = r.http_response.validated("pre-create").unwrap();
        assert_eq!(status, Some(StatusCode::FORBIDDEN));
        assert_eq!(headers["x-reason"], "token");
        assert_eq!(body, "no");
        assert!(!parse_response("x", b"  \n").unwrap().reject_upload);
        assert!(matches!(
            parse_response("pre-create", b"OK, go ahead"),
            Err(HookError::Garbage(..))
        ));
        let bad = HttpResponse {
            status_code: 1000,
            ..Default::default()
        };
        assert!(bad.validated("pre-create").is_err());
    }
}
