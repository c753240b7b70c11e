//! The protocol error: every way a request can fail, its status, its `ERR_*` code, and the one
//! place where an error becomes a response.
//!
//! Bodies are short text in tusd's form, `ERR_CODE: message`. Details of server-side failures go
//! to the log only; the client sees a generic message.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::auth::AuthError;
use crate::auth::signed::SignatureError;
use crate::domain::quota::QuotaExceeded;
use crate::domain::upload::MetadataError;
use crate::hooks::HookError;
use crate::http::body::{Body, full};
use crate::upload::Rejection;

mod from;

/// When a client should come back after a 503 (a store that is down, a shutdown).
const RETRY_AFTER_SECS: &str = "5";

/// 460 is tus's own status for a checksum mismatch.
pub const CHECKSUM_MISMATCH: u16 = 460;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("missing, invalid or unsupported Tus-Resumable header")]
    UnsupportedVersion,
    #[error("header {0} appears more than once")]
    DuplicateHeader(&'static str),
    #[error("header {0} is not valid text")]
    UnreadableHeader(&'static str),
    #[error("missing or invalid Upload-Length header: {0}")]
    InvalidUploadLength(&'static str),
    #[error("Upload-Defer-Length must be 1")]
    InvalidDeferLength,
    #[error("send either Upload-Length or Upload-Defer-Length, not both")]
    AmbiguousLength,
    #[error("Upload-Length may not change once it is set")]
    LengthChange,
    #[error("missing or invalid Upload-Offset header: {0}")]
    InvalidOffset(&'static str),
    #[error("{0}")]
    InvalidMetadata(#[from] MetadataError),
    #[error("invalid Upload-Concat header: {0}")]
    InvalidConcat(String),
    #[error("invalid Upload-Checksum header: {0}")]
    InvalidChecksum(&'static str),
    #[error("unsupported checksum algorithm {0:?}")]
    UnsupportedChecksum(String),
    #[error("checksum mismatch: the chunk was discarded")]
    ChecksumMismatch,
    #[error("Content-Type must be application/offset+octet-stream")]
    InvalidContentType,
    #[error("upload is larger than the maximum size")]
    MaxSizeExceeded,
    #[error("request body goes beyond the upload's length")]
    SizeExceeded,
    #[error("Upload-Offset {given} does not match the upload's offset {current}")]
    MismatchedOffset { given: u64, current: u64 },
    #[error("upload not found")]
    NotFound,
    #[error("upload has expired")]
    Expired,
    #[error("upload is in use by another request; try again")]
    Locked,
    #[error("a final upload cannot be modified")]
    ModifyFinal,
    #[error("{0} is not finished")]
    NotFinished(&'static str),
    #[error("upload has been interrupted by another request for this upload")]
    Interrupted,
    #[error("request has been interrupted because the server is shutting down")]
    ShuttingDown,
    #[error("timeout while reading the request body")]
    ReadTimeout,
    #[error("connection lost while reading the request body")]
    ConnectionLost,
    #[error("no such resource")]
    RouteNotFound,
    #[error("no such media file")]
    MediaNotFound,
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("origin not allowed")]
    OriginNotAllowed,
    #[error("requested range not satisfiable")]
    RangeNotSatisfiable { length: u64 },
    /// No room for the data (507). `offset`: what a PATCH kept, sent as `Upload-Offset` so the
    /// client resumes from there once space returns; `reason` is the metrics label.
    #[error("server storage is full; try again later")]
    StorageFull {
        reason: &'static str,
        offset: Option<u64>,
    },
    /// The store did not answer in time; the detail is for the log.
    #[error("the storage is not available right now; try again later")]
    StoreUnavailable(String),
    #[error("{}", rejection_text(.0.hook))]
    Rejected(Box<Rejection>),
    #[error("the {} hook failed", .0.hook())]
    HookFailed(HookError),
    #[error("{0}")]
    Auth(Box<AuthError>),
    #[error("{0}")]
    OverQuota(QuotaExceeded),
    #[error("{0}")]
    Signature(SignatureError),
    #[error("uploads of type {0:?} are not allowed with these credentials")]
    KindNotAllowed(String),
    #[error("listing needs authentication (--auth jwt or hook)")]
    ListingOff,
    #[error("invalid listing query: {0}")]
    InvalidQuery(&'static str),
    #[error("internal server error")]
    Internal(String),
    /// An error whose answer carries more headers (where an upload created before the error
    /// is, and what it holds).
    #[error("{0}")]
    WithHeaders(Box<Error>, HeaderMap),
}

/// The challenge of a 401 (RFC 6750), and what a pre-access hook set for its refusal.
fn challenge(e: AuthError, h: &mut HeaderMap) {
    let www = |v: String| HeaderValue::from_str(&v).ok();
    match e {
        AuthError::Missing => {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
        }
        AuthError::Invalid(why) => {
            let why: String = why.chars().filter(|c| *c != '"' && *c != '\\').collect();
            let v = format!("{REALM}, error=\"invalid_token\", error_description=\"{why}\"");
            if let Some(v) = www(v) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        AuthError::Denied {
            status, headers, ..
        } => {
            for (k, v) in headers {
                if let Some(k) = k {
                    h.insert(k, v);
                }
            }
            if status == StatusCode::UNAUTHORIZED && !h.contains_key(header::WWW_AUTHENTICATE) {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
            }
        }
        AuthError::Unavailable(_) => {
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        AuthError::Forbidden(_) => {}
    }
}

/// The challenge every 401 carries.
const REALM: &str = "Bearer realm=\"tuskd\"";

fn rejection_text(hook: &str) -> &'static str {
    match hook {
        "pre-terminate" => "termination rejected by server",
        "post-receive" => "upload has been stopped by server",
        _ => "upload rejected by server",
    }
}

impl Error {
    /// This error, answered with `headers` as well.
    pub fn with_headers(self, headers: HeaderMap) -> Error {
        Error::WithHeaders(Box::new(self), headers)
    }

    pub fn status(&self) -> StatusCode {
        use Error::*;
        match self {
            WithHeaders(e, _) => e.status(),
            UnsupportedVersion => StatusCode::PRECONDITION_FAILED,
            DuplicateHeader(_)
            | UnreadableHeader(_)
            | InvalidUploadLength(_)
            | InvalidDeferLength
            | AmbiguousLength
            | LengthChange
            | InvalidOffset(_)
            | InvalidMetadata(_)
            | InvalidConcat(_)
            | InvalidChecksum(_)
            | UnsupportedChecksum(_)
            | NotFinished(_)
            | Interrupted => StatusCode::BAD_REQUEST,
            ChecksumMismatch => {
                StatusCode::from_u16(CHECKSUM_MISMATCH).expect("460 is a valid status code")
            }
            InvalidContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            MaxSizeExceeded | SizeExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            MismatchedOffset { .. } => StatusCode::CONFLICT,
            NotFound | RouteNotFound | MediaNotFound => StatusCode::NOT_FOUND,
            Expired => StatusCode::GONE,
            Locked => StatusCode::LOCKED,
            ModifyFinal | OriginNotAllowed => StatusCode::FORBIDDEN,
            ShuttingDown | StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            // 5xx so that clients retry: tus clients do not retry most 4xx.
            ReadTimeout | ConnectionLost | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            StorageFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
            Rejected(r) => r.status.unwrap_or(StatusCode::BAD_REQUEST),
            HookFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Auth(e) => match &**e {
                AuthError::Missing | AuthError::Invalid(_) => StatusCode::UNAUTHORIZED,
                AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
                AuthError::Denied { status, .. } => *status,
                AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            OverQuota(QuotaExceeded::Bytes { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            OverQuota(_) => StatusCode::TOO_MANY_REQUESTS,
            KindNotAllowed(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Signature(_) => StatusCode::FORBIDDEN,
            ListingOff => StatusCode::NOT_FOUND,
            InvalidQuery(_) => StatusCode::BAD_REQUEST,
        }
    }

    pub fn code(&self) -> &'static str {
        use Error::*;
        match self {
            WithHeaders(e, _) => e.code(),
            UnsupportedVersion => "ERR_UNSUPPORTED_VERSION",
            DuplicateHeader(_) => "ERR_DUPLICATE_HEADER",
            UnreadableHeader(_) => "ERR_INVALID_HEADER",
            InvalidUploadLength(_) | LengthChange => "ERR_INVALID_UPLOAD_LENGTH",
            InvalidDeferLength => "ERR_INVALID_UPLOAD_LENGTH_DEFER",
            AmbiguousLength => "ERR_AMBIGUOUS_UPLOAD_LENGTH",
            InvalidOffset(_) => "ERR_INVALID_OFFSET",
            InvalidMetadata(_) => "ERR_INVALID_METADATA",
            InvalidConcat(_) => "ERR_INVALID_CONCAT",
            InvalidChecksum(_) => "ERR_INVALID_CHECKSUM",
            UnsupportedChecksum(_) => "ERR_UNSUPPORTED_CHECKSUM_ALGORITHM",
            ChecksumMismatch => "ERR_CHECKSUM_MISMATCH",
            InvalidContentType => "ERR_INVALID_CONTENT_TYPE",
            MaxSizeExceeded => "ERR_MAX_SIZE_EXCEEDED",
            SizeExceeded => "ERR_UPLOAD_SIZE_EXCEEDED",
            MismatchedOffset { .. } => "ERR_MISMATCHED_OFFSET",
            NotFound => "ERR_UPLOAD_NOT_FOUND",
            Expired => "ERR_UPLOAD_EXPIRED",
            Locked => "ERR_UPLOAD_LOCKED",
            ModifyFinal => "ERR_MODIFY_FINAL",
            NotFinished(_) => "ERR_UPLOAD_NOT_FINISHED",
            Interrupted => "ERR_UPLOAD_INTERRUPTED",
            ShuttingDown => "ERR_SERVER_SHUTDOWN",
            ReadTimeout => "ERR_READ_TIMEOUT",
            ConnectionLost => "ERR_CONNECTION_RESET",
            RouteNotFound => "ERR_NOT_FOUND",
            MediaNotFound => "ERR_MEDIA_NOT_FOUND",
            MethodNotAllowed(_) => "ERR_METHOD_NOT_ALLOWED",
            OriginNotAllowed => "ERR_ORIGIN_NOT_ALLOWED",
            RangeNotSatisfiable { .. } => "ERR_RANGE_NOT_SATISFIABLE",
            StorageFull { .. } => "ERR_STORAGE_FULL",
            StoreUnavailable(_) => "ERR_STORE_UNAVAILABLE",
            Rejected(r) if r.hook == "pre-terminate" => "ERR_UPLOAD_TERMINATION_REJECTED",
            Rejected(r) if r.hook == "post-receive" => "ERR_UPLOAD_STOPPED",
            Rejected(_) => "ERR_UPLOAD_REJECTED",
            HookFailed(_) => "ERR_HOOK_FAILED",
            Internal(_) => "ERR_INTERNAL_SERVER_ERROR",
            Auth(e) => match &**e {
                AuthError::Missing => "ERR_UNAUTHORIZED",
                AuthError::Invalid(_) => "ERR_INVALID_TOKEN",
                AuthError::Forbidden(_) => "ERR_FORBIDDEN",
                AuthError::Denied { .. } => "ERR_ACCESS_DENIED",
                AuthError::Unavailable(_) => "ERR_AUTH_UNAVAILABLE",
            },
            OverQuota(QuotaExceeded::Bytes { .. }) => "ERR_QUOTA_BYTES",
            OverQuota(QuotaExceeded::Unfinished { .. }) => "ERR_QUOTA_UNFINISHED",
            OverQuota(QuotaExceeded::Rate { .. }) => "ERR_RATE_LIMITED",
            KindNotAllowed(_) => "ERR_MEDIA_KIND_NOT_ALLOWED",
            Signature(SignatureError::Expired) => "ERR_SIGNATURE_EXPIRED",
            Signature(SignatureError::Invalid) => "ERR_SIGNATURE_INVALID",
            ListingOff => "ERR_NOT_FOUND",
            InvalidQuery(_) => "ERR_INVALID_QUERY",
        }
    }

    /// What the log says of an error: server-side details go there, never to the client.
    fn log(&self, status: StatusCode) {
        if let Error::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        } else if let Error::StoreUnavailable(detail) = self {
            tracing::warn!(code = self.code(), %detail, "store unavailable");
        } else if let Error::HookFailed(e) = self {
            // What the hook printed may hold secrets: the log gets it, the client does not.
            tracing::error!("{e}");
        } else if status.is_server_error() {
            tracing::warn!(code = self.code(), "{self}");
        } else {
            tracing::debug!(code = self.code(), %status, "{self}");
        }
    }

    /// The one place where an error becomes a response.
    pub fn into_response(self) -> Response<Body> {
        if let Error::WithHeaders(e, headers) = self {
            let mut resp = e.into_response();
            resp.headers_mut().extend(headers);
            return resp;
        }
        let status = self.status();
        self.log(status);
        let text = match &self {
            Error::Rejected(r) if !r.body.is_empty() => r.body.clone(),
            _ => format!("{}: {}\n", self.code(), self),
        };
        let mut resp = Response::new(full(text));
        *resp.status_mut() = status;
        if status.as_u16() == CHECKSUM_MISMATCH {
            resp.extensions_mut()
                .insert(hyper::ext::ReasonPhrase::from_static(b"Checksum Mismatch"));
        }
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        match self {
            Error::Auth(e) => challenge(*e, h),
            Error::OverQuota(q) => {
                let secs = match q {
                    QuotaExceeded::Rate { retry_after, .. } => retry_after.as_secs().max(1),
                    _ => 60,
                };
                h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Error::StoreUnavailable(_) | Error::ShuttingDown => {
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECS),
                );
            }
            Error::UnsupportedVersion => {
                h.insert(
                    "tus-version",
                    HeaderValue::from_static(crate::http::headers::VERSION),
                );
            }
            Error::MethodNotAllowed(allow) => {
                h.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Error::Rejected(r) => {
                for (k, v) in r.headers {
                    if let Some(k) = k {
                        h.insert(k, v);
                    }
                }
            }
            // The current offset, so the client can resume without a HEAD (tusd, the IETF
            // draft).
            Error::MismatchedOffset { current, .. }
            | Error::StorageFull {
                offset: Some(current),
                ..
            } => {
                h.insert(
                    "upload-offset",
                    HeaderValue::from_str(&current.to_string()).expect("digits"),
                );
            }
            Error::RangeNotSatisfiable { length } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{length}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_never_reach_the_client() {
        let resp = Error::Internal("disk /secret/path exploded".into()).into_response();
        assert_eq!(resp.status(), 500);
        let body = format!("{:?}", resp.body());
        assert!(!body.contains("secret"));
    }

    #[test]
    fn checksum_mismatch_is_460() {
        assert_eq!(Error::ChecksumMismatch.status().as_u16(), 460);
    }

    #[test]
    fn unsupported_version_names_the_supported_one() {
        let resp = Error::UnsupportedVersion.into_response();
        assert_eq!(resp.status(), 412);
        assert_eq!(resp.headers()["tus-version"], "1.0.0");
    }
}
