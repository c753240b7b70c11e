//! `UploadError`: every way an operation of the upload core can fail, in the core's terms. Each
//! front door maps it to its protocol's answer in one exhaustive match (tus: `http::error`).

use http::{HeaderMap, StatusCode};

use crate::domain::quota::QuotaExceeded;
use crate::domain::upload::UploadId;
use crate::hooks::HookError;
use crate::meta::MetaError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("upload not found")]
    NotFound,
    #[error("upload has expired")]
    Expired,
    #[error("upload is in use by another request")]
    Locked,
    #[error("a final upload cannot be modified")]
    ModifyFinal,
    #[error("the upload is not finished")]
    NotFinished,
    #[error("offset {given} does not match the upload's offset {current}")]
    MismatchedOffset { given: u64, current: u64 },
    #[error("the length of an upload may not change once it is set")]
    LengthChange,
    #[error("invalid length: {0}")]
    InvalidLength(&'static str),
    #[error("upload is larger than the maximum size")]
    MaxSizeExceeded,
    #[error("the data goes beyond the upload's length")]
    SizeExceeded,
    #[error("invalid concatenation: {0}")]
    InvalidConcat(String),
    #[error(transparent)]
    Checksum(#[from] ChecksumError),
    #[error("interrupted by another request for this upload")]
    Interrupted,
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("timeout while reading the data")]
    ReadTimeout,
    #[error("connection lost while reading the data")]
    ConnectionLost,
    /// A hook refused the request (pre-create, pre-terminate) or stopped the upload
    /// (post-receive).
    #[error("refused by the {} hook", .0.hook)]
    Rejected(Box<Rejection>),
    #[error("the {} hook failed: {}", .0.hook(), .0)]
    HookFailed(#[source] HookError),
    #[error("storage: {0}")]
    Storage(StorageError),
    /// No room: below the free-space reserve, or the disk, the object store or the metadata
    /// store said it is full. `offset` is what an append kept, when there was one.
    #[error("{reason}")]
    Full {
        reason: FullReason,
        offset: Option<u64>,
    },
    /// The owner would pass a quota: nothing was created.
    #[error("quota exceeded: {0}")]
    OverQuota(QuotaExceeded),
    /// The caller may not upload this kind of media (a token's `media_kinds`).
    #[error("uploads of type {0:?} are not allowed for this caller")]
    KindNotAllowed(String),
    #[error("metadata store: {0}")]
    Meta(MetaError),
    /// A state the core's own rules exclude (an offset changed under its lock).
    #[error("{0}")]
    Inconsistent(String),
}

impl From<MetaError> for UploadError {
    fn from(e: MetaError) -> UploadError {
        match e {
            MetaError::OverQuota(q) => UploadError::OverQuota(q),
            MetaError::Full(detail) => {
                tracing::warn!("the metadata store is full: {detail}");
                UploadError::full(FullReason::Metadata)
            }
            e => UploadError::Meta(e),
        }
    }
}

impl From<StorageError> for UploadError {
    fn from(e: StorageError) -> UploadError {
        match e {
            StorageError::Full => UploadError::full(FullReason::Storage),
            // Its bytes are gone (a deletion a crash cut short): as good as gone.
            StorageError::Missing(_) => UploadError::NotFound,
            e => UploadError::Storage(e),
        }
    }
}

/// Why there is no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FullReason {
    /// Refused before the disk filled: free space is below `--min-free-space`.
    #[error("free space is below the server's reserve")]
    Reserve,
    /// The disk or the object store refused the bytes.
    #[error("the storage is full")]
    Storage,
    /// The metadata store could not record the change.
    #[error("the metadata store is full")]
    Metadata,
}

impl FullReason {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            FullReason::Reserve => "reserve",
            FullReason::Storage => "storage",
            FullReason::Metadata => "metadata",
        }
    }
}

/// Why a chunk's checksum (or digest) was not accepted. The chunk is discarded in every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumError {
    #[error("checksum mismatch: the chunk was discarded")]
    Mismatch,
    /// The checksum could not be read (malformed, or announced and missing).
    #[error("invalid checksum: {0}")]
    Invalid(&'static str),
    #[error("unsupported checksum algorithm {0:?}")]
    Unsupported(String),
}

/// A hook's refusal: what it set for the response; unset parts are the door's defaults.
#[derive(Debug)]
pub struct Rejection {
    pub hook: &'static str,
    pub status: Option<StatusCode>,
    pub headers: HeaderMap,
    pub body: String,
}

impl UploadError {
    pub fn full(reason: FullReason) -> UploadError {
        UploadError::Full {
            reason,
            offset: None,
        }
    }

    /// Whether this is a lack of room.
    pub fn is_full(&self) -> bool {
        matches!(self, UploadError::Full { .. })
    }
    /// A hook's refusal (pre-create, pre-terminate) or stop (post-receive), with the status,
    /// headers and body it set for the response.
    pub fn rejected(
        hook: &'static str,
        (status, headers, body): (Option<StatusCode>, HeaderMap, String),
    ) -> UploadError {
        UploadError::Rejected(Box::new(Rejection {
            hook,
            status,
            headers,
            body,
        }))
    }

    /// An offset that moved under the upload's lock, or a change the store refused.
    pub(crate) fn changed_under_lock(id: &UploadId, what: &str) -> UploadError {
        UploadError::Inconsistent(format!("{what} of {id} changed under its lock"))
    }
}
