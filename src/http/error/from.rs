//! What the lower layers' errors mean at the edge: the core's `UploadError` (one exhaustive
//! match), checksums, storage and the metadata store; `chain` writes an error with its causes
//! for the log.

use super::Error;
use crate::meta::MetaError;
use crate::storage::StorageError;
use crate::upload::{ChecksumError, FullReason, UploadError};

impl From<UploadError> for Error {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::NotFound => Error::NotFound,
            UploadError::Expired => Error::Expired,
            UploadError::Locked => Error::Locked,
            UploadError::ModifyFinal => Error::ModifyFinal,
            UploadError::NotFinished => Error::NotFinished("the upload"),
            UploadError::MismatchedOffset { given, current } => {
                Error::MismatchedOffset { given, current }
            }
            UploadError::LengthChange => Error::LengthChange,
            UploadError::InvalidLength(why) => Error::InvalidUploadLength(why),
            UploadError::MaxSizeExceeded => Error::MaxSizeExceeded,
            UploadError::SizeExceeded => Error::SizeExceeded,
            UploadError::InvalidConcat(why) => Error::InvalidConcat(why),
            UploadError::Checksum(e) => e.into(),
            UploadError::Interrupted => Error::Interrupted,
            UploadError::ShuttingDown => Error::ShuttingDown,
            UploadError::ReadTimeout => Error::ReadTimeout,
            UploadError::ConnectionLost => Error::ConnectionLost,
            UploadError::Rejected(r) => Error::Rejected(r),
            UploadError::HookFailed(e) => Error::HookFailed(e),
            UploadError::Storage(e) => e.into(),
            UploadError::Full { reason, offset } => Error::StorageFull {
                reason: reason.as_str(),
                offset,
            },
            UploadError::Meta(e) => e.into(),
            UploadError::OverQuota(q) => Error::OverQuota(q),
            UploadError::KindNotAllowed(t) => Error::KindNotAllowed(t),
            UploadError::Inconsistent(detail) => Error::Internal(detail),
        }
    }
}

impl From<ChecksumError> for Error {
    fn from(e: ChecksumError) -> Self {
        match e {
            ChecksumError::Mismatch => Error::ChecksumMismatch,
            ChecksumError::Invalid(why) => Error::InvalidChecksum(why),
            ChecksumError::Unsupported(name) => Error::UnsupportedChecksum(name),
        }
    }
}

/// An error and its sources, for the log: `outer: cause: root cause` (a cause whose words
/// the text already ends with is not repeated).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let words = c.to_string();
        if !text.ends_with(&words) {
            text.push_str(": ");
            text.push_str(&words);
        }
        cause = c.source();
    }
    text
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Full => Error::StorageFull {
                reason: FullReason::Storage.as_str(),
                offset: None,
            },
            StorageError::Unavailable(detail) => Error::StoreUnavailable(detail),
            other => Error::Internal(format!("storage: {}", chain(&other))),
        }
    }
}

impl From<MetaError> for Error {
    fn from(e: MetaError) -> Self {
        match e {
            MetaError::Full(_) => UploadError::from(e).into(),
            e => Error::Internal(format!("metadata store: {}", chain(&e))),
        }
    }
}
