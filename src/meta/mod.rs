//! The metadata store: the source of truth for every upload's offset, length and metadata.
//!
//! Contract: offsets only move through `advance`, a compare-and-set from the offset the caller
//! saw to the new one, so two writers can never both believe they extended the same bytes.

use std::time::SystemTime;

use async_trait::async_trait;

use crate::upload::{Upload, UploadId};

pub mod sqlite;
mod sqlite_parts;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("an upload with id {0} already exists")]
    Exists(UploadId),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("database task failed: {0}")]
    Task(String),
}

#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    /// Records a new upload. Fails with `Exists` if the id is taken.
    async fn insert(&self, upload: &Upload) -> Result<(), MetaError>;

    async fn get(&self, id: &UploadId) -> Result<Option<Upload>, MetaError>;

    /// Moves the offset from `expected` to `new` and sets the expiry, only if the offset is
    /// still `expected`. Returns whether it did.
    async fn advance(
        &self,
        id: &UploadId,
        expected: u64,
        new: u64,
        expires_at: Option<SystemTime>,
    ) -> Result<bool, MetaError>;

    /// Sets the length of an upload whose length was deferred. Returns whether it did.
    async fn set_length(&self, id: &UploadId, length: u64) -> Result<bool, MetaError>;

    /// Forgets an upload. Returns whether it existed.
    async fn remove(&self, id: &UploadId) -> Result<bool, MetaError>;

    /// Unfinished, active uploads whose expiry is at or before `now`, oldest first.
    async fn due_to_expire(
        &self,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<UploadId>, MetaError>;

    /// Marks an upload expired: it answers 410 from now on. `at` is recorded as its expiry.
    async fn mark_expired(&self, id: &UploadId, at: SystemTime) -> Result<(), MetaError>;

    /// Forgets expired uploads whose expiry is older than `before`. Returns how many.
    async fn purge_expired(&self, before: SystemTime) -> Result<usize, MetaError>;
}
