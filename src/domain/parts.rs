//! What object storage remembers about an upload in progress (`PartLog`). It lives in the
//! metadata store (`meta::sqlite::parts`, `meta::postgres::parts`) so that any process can resume
//! the upload after a restart; storage reads and writes it through this trait only.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use crate::domain::upload::UploadId;

/// The bookkeeping could not be read or written; the metadata store's error is its source.
#[derive(Debug, thiserror::Error)]
#[error("the object store's bookkeeping failed")]
pub struct PartsError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl PartsError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> PartsError {
        PartsError(Box::new(e))
    }
}

/// The bookkeeping of one unfinished upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectState {
    /// Size of every part but the last, fixed when the upload was created.
    pub part_size: u64,
    /// The backend's multipart upload, once the first full part was sent.
    pub multipart: Option<String>,
    /// Parts the backend acknowledged: index → the backend's content id (S3's ETag).
    pub parts: BTreeMap<u64, String>,
    /// Indexes of tail objects that may exist. Tail `k` holds the bytes from `k * part_size` on
    /// that were not yet a full part when a PATCH was committed.
    pub tails: BTreeSet<u64>,
}

#[async_trait]
pub trait PartLog: std::fmt::Debug + Send + Sync + 'static {
    /// Starts the bookkeeping of a new upload.
    async fn begin(&self, id: &UploadId, part_size: u64) -> Result<(), PartsError>;

    /// The bookkeeping of an upload; `None` once it is finished or deleted (or never was).
    async fn state(&self, id: &UploadId) -> Result<Option<ObjectState>, PartsError>;

    async fn set_multipart(&self, id: &UploadId, multipart: &str) -> Result<(), PartsError>;

    /// Records part `idx`, replacing any earlier record of the same index.
    async fn add_part(&self, id: &UploadId, idx: u64, content_id: &str) -> Result<(), PartsError>;

    /// Records that tail `idx` may exist; called before the tail is written.
    async fn add_tail(&self, id: &UploadId, idx: u64) -> Result<(), PartsError>;

    /// Forgets tails whose objects were deleted.
    async fn remove_tails(&self, id: &UploadId, idxs: &[u64]) -> Result<(), PartsError>;

    /// Drops all bookkeeping of an upload.
    async fn forget(&self, id: &UploadId) -> Result<(), PartsError>;

    /// Every upload with bookkeeping.
    async fn all(&self) -> Result<Vec<UploadId>, PartsError>;
}
