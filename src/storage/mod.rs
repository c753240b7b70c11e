//! Storage: where upload bytes live. No HTTP types here.
//!
//! Contract for every backend (checked by `suite`):
//! - `create` makes an empty upload; `appender(id, offset, length)` opens it for appending at
//!   `offset` (the offset the metadata store holds), ignoring anything stored past `offset` that
//!   was never committed (a crash's leftovers). `length` is the upload's length if known.
//! - An `Append` streams with constant memory: `write` may buffer a bounded amount, `commit`
//!   makes everything written so far durable and returns the stored length, `rollback` throws
//!   away everything since the last commit. Bytes written but never committed are not promised
//!   to anyone; the caller records each length `commit` returns before it calls `commit` again.
//!   A `write` or `commit` that fails with `Full` keeps what storage took before it filled: the
//!   next `commit` makes that durable and returns its length. `truncate` cuts back to a length
//!   the caller could record, when it could not record a later one.
//! - `finish(id, length)` is called once the upload's final offset is recorded: the backend may
//!   assemble the finished object and drop its bookkeeping. It is idempotent, and may come again
//!   after a crash; `unfinished` names the uploads whose `finish` may still be due.
//! - `concat` builds an upload from finished ones, in order, with bounded memory; the caller
//!   records the length and then calls `finish`.
//! - `read` streams a byte range of a finished upload; `delete` removes everything stored for it
//!   and succeeds if there was nothing.
//! - Derived media files live apart from uploads, under keys (`MediaKey`) that no upload id
//!   can name: `put_media` stores a finished local file, `media_size` / `read_media` serve it,
//!   `delete_media` removes everything under a key prefix. `local_path` names the finished
//!   upload's file when the backend keeps one on this machine (decoders read it in place).

use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

use crate::domain::upload::UploadId;

pub mod local;
mod local_append;
mod local_media;
pub mod metered;
pub mod object;
#[cfg(test)]
mod suite;

pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no space left on the storage device")]
    Full,
    #[error("no stored data for upload {0}")]
    Missing(UploadId),
    #[error("{0}")]
    Io(io::Error),
    /// A rule of the object store's bookkeeping does not hold (a part without its multipart
    /// upload, …). Logged, never sent to clients.
    #[error("{0}")]
    Backend(String),
    /// The object store failed; its error is the source. Logged, never sent to clients.
    #[error("{0}")]
    Remote(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store could not be reached or did not answer within the store timeout.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The object store's bookkeeping in the metadata store failed.
    #[error(transparent)]
    Parts(#[from] crate::domain::parts::PartsError),
}

impl From<io::Error> for StorageError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded {
            StorageError::Full
        } else {
            StorageError::Io(e)
        }
    }
}

#[async_trait]
pub trait Storage: std::fmt::Debug + Send + Sync + 'static {
    async fn create(&self, id: &UploadId) -> Result<(), StorageError>;

    async fn appender(
        &self,
        id: &UploadId,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Box<dyn Append>, StorageError>;

    /// The upload is complete at `length` and its offset recorded.
    async fn finish(&self, _id: &UploadId, _length: u64) -> Result<(), StorageError> {
        Ok(())
    }

    /// Uploads whose `finish` may not have run (a crash came between), or that may have been
    /// forgotten by the metadata store before their storage was deleted.
    async fn unfinished(&self) -> Result<Vec<UploadId>, StorageError> {
        Ok(Vec::new())
    }

    /// Makes `id` the concatenation of `parts` (each with its length), in order.
    async fn concat(&self, id: &UploadId, parts: &[(UploadId, u64)]) -> Result<(), StorageError>;

    /// Where the finished upload lives, for hooks (tusd's `Storage`: `Type`, `Path` or
    /// `Bucket` and `Key`).
    fn location(&self, _id: &UploadId) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    async fn read(&self, id: &UploadId, range: Range<u64>) -> Result<ByteStream, StorageError>;

    async fn delete(&self, id: &UploadId) -> Result<(), StorageError>;

    /// A small request that proves the store answers (readiness).
    async fn ping(&self) -> Result<(), StorageError>;

    /// Moves a finished upload's bytes under the store's `quarantine/` prefix, out of reach of
    /// downloads, for an operator to look at; the upload is then gone as after `delete`.
    /// Returns where they are.
    async fn quarantine(&self, id: &UploadId) -> Result<String, StorageError>;

    /// The finished upload's file, if this backend keeps it on local disk.
    fn local_path(&self, _id: &UploadId) -> Option<PathBuf> {
        None
    }

    /// Stores the local file `file` (which may be moved away) as `key`. Returns its size.
    async fn put_media(&self, key: &MediaKey, file: &Path) -> Result<u64, StorageError>;

    /// The size of a derived file, None if there is none.
    async fn media_size(&self, key: &MediaKey) -> Result<Option<u64>, StorageError>;

    /// Streams a byte range of a derived file.
    async fn read_media(
        &self,
        key: &MediaKey,
        range: Range<u64>,
    ) -> Result<ByteStream, StorageError>;

    /// Deletes every derived file under `prefix` (a key or a directory of keys).
    async fn delete_media(&self, prefix: &MediaKey) -> Result<(), StorageError>;
}

/// Where a derived file lives, relative to the media prefix: `/`-separated segments of
/// letters, digits, `-`, `_` and `.`, none empty or starting with a dot, so a key can never
/// climb out of its directory or name a hidden file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaKey(String);

impl MediaKey {
    /// The key under which every derived file of upload `id` lives.
    pub fn of_upload(id: &UploadId) -> MediaKey {
        MediaKey::parse(id.as_str()).expect("upload ids are valid media keys")
    }

    pub fn parse(s: &str) -> Option<MediaKey> {
        let ok = !s.is_empty()
            && s.len() <= 512
            && s.split('/').all(|seg| {
                !seg.is_empty()
                    && !seg.starts_with('.')
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            });
        ok.then(|| MediaKey(s.to_owned()))
    }

    /// `self/segment`, if `segment` is a valid key on its own.
    pub fn join(&self, rest: &str) -> Option<MediaKey> {
        MediaKey::parse(&format!("{}/{rest}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An open append to one upload. Dropping it without `commit` loses the uncommitted bytes.
#[async_trait]
pub trait Append: std::fmt::Debug + Send {
    async fn write(&mut self, data: Bytes) -> Result<(), StorageError>;

    /// Makes everything written so far durable; returns the upload's stored length.
    async fn commit(&mut self) -> Result<u64, StorageError>;

    /// Makes durable what is cheap to make durable while more is coming (an object store's
    /// whole parts, not its tail) and returns the durable length, which the caller records as
    /// it would a commit's. By default, a commit.
    async fn checkpoint(&mut self) -> Result<u64, StorageError> {
        self.commit().await
    }

    /// Discards everything written since the last commit.
    async fn rollback(self: Box<Self>) -> Result<(), StorageError>;

    /// Cuts the stored upload back to `len`, at least the length of a commit the caller
    /// recorded: it could not record a later one, and what lies past it frees its space now
    /// (a full disk). By default nothing: the next `appender` ignores what lies past the
    /// recorded offset.
    async fn truncate(&mut self, _len: u64) -> Result<(), StorageError> {
        Ok(())
    }
}

#[cfg(test)]
mod key_tests {
    use super::MediaKey;

    #[test]
    fn keys_cannot_climb_or_hide() {
        for ok in ["a", "abc/v1/master.m3u8", "x_y/r-1/seg00001.ts"] {
            assert!(MediaKey::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/../b", "a/.git", "a\\b", "a b", "é",
        ] {
            assert!(MediaKey::parse(bad).is_none(), "{bad}");
        }
    }
}
