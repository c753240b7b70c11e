//! What object storage remembers about an upload in progress. It lives in the metadata store
//! (see `meta::sqlite_parts`) so that any process can resume the upload after a restart.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use crate::storage::StorageError;
use crate::upload::UploadId;

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
pub trait PartLog: Send + Sync + 'static {
    /// Starts the bookkeeping of a new upload.
    async fn begin(&self, id: &UploadId, part_size: u64) -> Result<(), StorageError>;

    /// The bookkeeping of an upload; `None` once it is finished or deleted (or never was).
    async fn state(&self, id: &UploadId) -> Result<Option<ObjectState>, StorageError>;

    async fn set_multipart(&self, id: &UploadId, multipart: &str) -> Result<(), StorageError>;

    /// Records part `idx`, replacing any earlier record of the same index.
    async fn add_part(&self, id: &UploadId, idx: u64, content_id: &str)
    -> Result<(), StorageError>;

    /// Records that tail `idx` may exist; called before the tail is written.
    async fn add_tail(&self, id: &UploadId, idx: u64) -> Result<(), StorageError>;

    /// Forgets tails whose objects were deleted.
    async fn remove_tails(&self, id: &UploadId, idxs: &[u64]) -> Result<(), StorageError>;

    /// Drops all bookkeeping of an upload.
    async fn forget(&self, id: &UploadId) -> Result<(), StorageError>;

    /// Every upload with bookkeeping.
    async fn all(&self) -> Result<Vec<UploadId>, StorageError>;
}
