//! tusd v2's wire format: the event types, the request a hook receives (built from an upload
//! and the request that changed it, and stored as an outbox payload for post-* events), and
//! the answer it gives, validated before anything acts on it.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use crate::domain::event::OutboxEvent;
use crate::domain::upload::{Concat, Upload, UploadId};

/// Largest hook answer read (stdout of a script, body of a webhook response).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum HookType {
    #[serde(rename = "pre-create")]
    PreCreate,
    /// Asked for every request when `--auth hook`: may the caller do this, and who is it.
    /// Sent only then, whatever `--hooks-enabled-events` says.
    #[serde(rename = "pre-access")]
    PreAccess,
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
    /// A video became playable: its first rungs are published, the rest is on its way.
    #[serde(rename = "media-playable")]
    MediaPlayable,
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
    pub const ALL: [HookType; 11] = [
        HookType::PreCreate,
        HookType::PostCreate,
        HookType::PostReceive,
        HookType::PreFinish,
        HookType::PostFinish,
        HookType::PreTerminate,
        HookType::PostTerminate,
        HookType::MediaPlayable,
        HookType::MediaReady,
        HookType::MediaRejected,
        HookType::MediaFailed,
    ];

    /// The event's name, which is also the name of its script.
    pub fn name(self) -> &'static str {
        match self {
            HookType::PreCreate => "pre-create",
            HookType::PreAccess => "pre-access",
            HookType::PostCreate => "post-create",
            HookType::PostReceive => "post-receive",
            HookType::PreFinish => "pre-finish",
            HookType::PostFinish => "post-finish",
            HookType::PreTerminate => "pre-terminate",
            HookType::PostTerminate => "post-terminate",
            HookType::MediaPlayable => "media-playable",
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
    /// tuskd's: who owns the upload (absent while authentication is off).
    #[serde(rename = "Owner", skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
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
            owner: upload.owner.as_ref().map(|o| o.to_string()),
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
pub(super) fn canonical(name: &str) -> String {
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
