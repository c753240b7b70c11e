//! Object storage (S3 and S3-compatible stores, GCS, Azure, in-memory) through object_store's
//! multipart API.
//!
//! Objects under the store's prefix, for upload `<id>`:
//! - `<id>`: the finished upload. Uploads of at least one part are a multipart upload to this
//!   key, completed by `finish`; smaller ones are put whole by the last commit.
//! - `media/<key>`: derived media files (`media.rs`); no upload id contains a `/`.
//! - `<id>.tail-<k>`: the bytes from `k * part_size` on that did not fill a part when a PATCH
//!   was committed. The next PATCH reads it back and sends it as the start of part `k`.
//!
//! Every part but the last has the upload's part size, so the recorded offset alone says where
//! things are: `offset / part_size` full parts, then `offset % part_size` bytes in that tail.
//! Parts are recorded in the metadata store as soon as the backend acknowledges them; a part or
//! tail past the recorded offset is a leftover of a crash or a rolled-back chunk, and is
//! overwritten when the upload gets there again. A new tail is written under a new key before
//! the old one is deleted, and the old one only once the offset past it is recorded.
//!
//! Memory: an append holds one part buffer, reserved from a global budget (`max_buffered`)
//! before it starts, so many concurrent uploads wait for buffer space instead of exhausting
//! memory.

use std::future::Future;
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Append, ByteStream, Storage, StorageError};
use crate::domain::upload::UploadId;

mod append;

mod media;
pub mod open;

pub use crate::domain::parts::{ObjectState, PartLog};
use append::ObjectAppend;

/// The smallest part most stores accept (all but the last part of an S3 multipart upload).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// The largest part S3 accepts.
pub const MAX_PART_SIZE: u64 = 5 << 30;
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;

/// Both halves of an object_store backend.
pub trait Backend: ObjectStore + MultipartStore {}
impl<T: ObjectStore + MultipartStore> Backend for T {}

pub struct ObjectStorage {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStorage").finish_non_exhaustive()
    }
}

struct Shared {
    store: Arc<dyn Backend>,
    prefix: Path,
    part_size: u64,
    log: Arc<dyn PartLog>,
    /// Part buffer budget, in KiB, and its size.
    buffers: Arc<Semaphore>,
    budget: u32,
    /// For hooks: the kind of store (tusd's names: s3store, gcsstore, azurestore, memorystore)
    /// and its bucket or container.
    label: (String, String),
    /// The longest one store call may take, retries included.
    timeout: Duration,
}

impl Shared {
    /// A store call under the store timeout: one that takes longer means the store is not
    /// available now, and the request says so (503) instead of waiting out every retry.
    async fn call<T>(
        &self,
        call: impl Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(object_store::Error::Generic {
                store: "tuskd",
                source: Box::new(TimedOut(self.timeout)),
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no answer from the store within {0:?}")]
struct TimedOut(Duration);

/// Words in a store's answer that mean it has no room: HTTP 507 (MinIO's `XMinioStorageFull`,
/// WebDAV-style gateways), a bucket quota (MinIO's, Ceph RGW's S3 `QuotaExceeded`).
/// object_store keeps the status and body of a failed request only in its error's text.
const FULL_SIGNS: [&str; 4] = [
    "507 Insufficient Storage",
    "XMinioStorageFull",
    "XMinioAdminBucketQuotaExceeded",
    "<Code>QuotaExceeded</Code>",
];

/// A store error as storage reports it: full when the store says it has no room (507), unavailable
/// when it could not be reached or did not answer in time (clients should come back later), a
/// failure otherwise.
pub(crate) fn remote(e: object_store::Error) -> StorageError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        let text = c.to_string();
        if FULL_SIGNS.iter().any(|s| text.contains(s)) {
            tracing::warn!("the object store is full: {e}");
            return StorageError::Full;
        }
        let unreachable = c.is::<TimedOut>()
            || c.downcast_ref::<object_store::client::HttpError>()
                .is_some_and(|h| {
                    matches!(
                        h.kind(),
                        object_store::client::HttpErrorKind::Connect
                            | object_store::client::HttpErrorKind::Timeout
                    )
                });
        if unreachable {
            return StorageError::Unavailable(e.to_string());
        }
        cause = c.source();
    }
    StorageError::Remote(Box::new(e))
}

fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

impl ObjectStorage {
    /// `part_size` applies to uploads created from now on; `max_buffered` bounds the part
    /// buffers of all running appends together and must hold at least one part.
    pub fn new(
        store: Arc<dyn Backend>,
        prefix: Path,
        part_size: u64,
        max_buffered: u64,
        log: Arc<dyn PartLog>,
        timeout: Duration,
    ) -> ObjectStorage {
        let budget = kib(max_buffered.max(part_size));
        ObjectStorage {
            shared: Arc::new(Shared {
                store,
                prefix,
                part_size,
                log,
                buffers: Arc::new(Semaphore::new(budget as usize)),
                budget,
                label: ("memorystore".into(), String::new()),
                timeout,
            }),
        }
    }
}

impl ObjectStorage {
    /// Names the store in hook payloads.
    pub fn labelled(mut self, kind: &str, bucket: &str) -> ObjectStorage {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.label = (kind.to_owned(), bucket.to_owned());
        }
        self
    }
}

impl Shared {
    fn data(&self, id: &UploadId) -> Path {
        self.prefix.clone().join(id.as_str())
    }

    fn tail(&self, id: &UploadId, k: u64) -> Path {
        self.prefix.clone().join(format!("{id}.tail-{k}"))
    }

    /// Reserves one part buffer of `part_size` bytes from the global budget.
    async fn reserve(&self, part_size: u64) -> Result<OwnedSemaphorePermit, StorageError> {
        // An upload created with a larger part size than today's budget still gets to run.
        let want = kib(part_size).min(self.budget);
        self.buffers
            .clone()
            .acquire_many_owned(want)
            .await
            .map_err(|_| StorageError::Backend("part buffer budget closed".into()))
    }

    /// Deletes objects, treating ones already gone as deleted.
    async fn delete_quietly(&self, path: &Path) -> Result<(), StorageError> {
        match self.call(self.store.delete(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote(e)),
        }
    }

    async fn delete_tails(&self, id: &UploadId, tails: &[u64]) -> Result<(), StorageError> {
        for &k in tails {
            self.delete_quietly(&self.tail(id, k)).await?;
        }
        Ok(())
    }

    async fn abort_quietly(&self, id: &UploadId, multipart: &str) -> Result<(), StorageError> {
        match self
            .call(
                self.store
                    .abort_multipart(&self.data(id), &multipart.to_owned()),
            )
            .await
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote(e)),
        }
    }

    /// Size of an object, `None` if there is none.
    async fn size(&self, path: &Path) -> Result<Option<u64>, StorageError> {
        match self.call(self.store.head(path)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote(e)),
        }
    }

    /// Stores the last `rest` bytes after `full` whole parts from their tail (as the object
    /// itself, or as its last part), when the tail holds all of them.
    async fn last_from_tail(
        &self,
        id: &UploadId,
        state: &mut ObjectState,
        data: &Path,
        full: u64,
        rest: u64,
    ) -> Result<(), StorageError> {
        let tail = self.tail(id, full);
        if self.size(&tail).await?.is_some_and(|n| n >= rest) {
            let last = self
                .call(self.store.get_range(&tail, 0..rest))
                .await
                .map_err(remote)?;
            if full == 0 {
                self.call(self.store.put(data, last.into()))
                    .await
                    .map_err(remote)?;
            } else {
                let multipart = state.multipart.clone().ok_or_else(|| {
                    StorageError::Backend(format!("upload {id} has parts but no multipart"))
                })?;
                let part = self
                    .call(
                        self.store
                            .put_part(data, &multipart, full as usize, last.into()),
                    )
                    .await
                    .map_err(remote)?;
                self.log.add_part(id, full, &part.content_id).await?;
                state.parts.insert(full, part.content_id);
            }
        }
        Ok(())
    }

    /// Completes the multipart upload of an object of `length` bytes from its recorded parts.
    async fn complete(
        &self,
        id: &UploadId,
        state: &ObjectState,
        data: &Path,
        length: u64,
    ) -> Result<(), StorageError> {
        let multipart = state.multipart.as_deref().ok_or_else(|| {
            StorageError::Backend(format!("upload {id} has no multipart upload to complete"))
        })?;
        let parts = (0..length.div_ceil(state.part_size))
            .map(|i| match state.parts.get(&i) {
                Some(c) => Ok(PartId {
                    content_id: c.clone(),
                }),
                None => Err(StorageError::Backend(format!(
                    "part {i} of upload {id} was never recorded"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        match self
            .call(
                self.store
                    .complete_multipart(data, &multipart.to_owned(), parts),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Completed before a crash that came before the bookkeeping was dropped.
            Err(object_store::Error::NotFound { .. }) if self.size(data).await? == Some(length) => {
                Ok(())
            }
            Err(e) => Err(remote(e)),
        }
    }
}

#[async_trait]
impl Storage for ObjectStorage {
    async fn create(&self, id: &UploadId) -> Result<(), StorageError> {
        Ok(self.shared.log.begin(id, self.shared.part_size).await?)
    }

    async fn appender(
        &self,
        id: &UploadId,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Box<dyn Append>, StorageError> {
        let state = self
            .shared
            .log
            .state(id)
            .await?
            .ok_or_else(|| StorageError::Missing(id.clone()))?;
        let permit = self.shared.reserve(state.part_size).await?;
        let append = ObjectAppend::open(
            self.shared.clone(),
            id.clone(),
            state,
            offset,
            length,
            permit,
        )
        .await?;
        Ok(Box::new(append))
    }

    async fn finish(&self, id: &UploadId, length: u64) -> Result<(), StorageError> {
        let s = &self.shared;
        let Some(mut state) = s.log.state(id).await? else {
            return Ok(());
        };
        let data = s.data(id);
        let (full, rest) = (length / state.part_size, length % state.part_size);
        // The last bytes are normally sent by the commit that reached the length. When the
        // length became known only after they were stored (a deferred length), they are still
        // in the tail: a tail holding all of them can only be that.
        if rest > 0 && state.tails.contains(&full) {
            s.last_from_tail(id, &mut state, &data, full, rest).await?;
        }
        if full > 0 {
            s.complete(id, &state, &data, length).await?;
        } else {
            // Smaller than a part: put whole, by the last commit or just above.
            if length == 0 {
                s.call(s.store.put(&data, PutPayload::default()))
                    .await
                    .map_err(remote)?;
            }
            if let Some(m) = &state.multipart {
                // Parts from a rolled-back chunk of a deferred-length upload.
                s.abort_quietly(id, m).await?;
            }
        }
        let tails: Vec<u64> = state.tails.iter().copied().collect();
        s.delete_tails(id, &tails).await?;
        s.log.forget(id).await?;
        tracing::debug!(%id, length, "object finished");
        Ok(())
    }

    async fn unfinished(&self) -> Result<Vec<UploadId>, StorageError> {
        Ok(self.shared.log.all().await?)
    }

    async fn concat(&self, id: &UploadId, parts: &[(UploadId, u64)]) -> Result<(), StorageError> {
        self.create(id).await?;
        let total: u64 = parts.iter().map(|(_, len)| len).sum();
        let mut append = self.appender(id, 0, Some(total)).await?;
        for (part, len) in parts {
            if *len == 0 {
                continue;
            }
            // A crash may have come between the partial's completion and its finish.
            self.finish(part, *len).await?;
            let mut stream = self.read(part, 0..*len).await?;
            while let Some(chunk) = stream.try_next().await? {
                append.write(chunk).await?;
            }
        }
        let stored = append.commit().await?;
        if stored != total {
            return Err(StorageError::Backend(format!(
                "concatenation of {id} stored {stored} of {total} bytes"
            )));
        }
        Ok(())
    }

    fn location(&self, id: &UploadId) -> std::collections::BTreeMap<String, String> {
        let mut at = std::collections::BTreeMap::from([
            ("Type".to_owned(), self.shared.label.0.clone()),
            ("Key".to_owned(), self.shared.data(id).to_string()),
        ]);
        if !self.shared.label.1.is_empty() {
            at.insert("Bucket".to_owned(), self.shared.label.1.clone());
        }
        at
    }

    async fn read(&self, id: &UploadId, range: Range<u64>) -> Result<ByteStream, StorageError> {
        if range.is_empty() {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..Default::default()
        };
        let got = match self
            .shared
            .call(self.shared.store.get_opts(&self.shared.data(id), options))
            .await
        {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StorageError::Missing(id.clone()));
            }
            Err(e) => return Err(remote(e)),
        };
        Ok(Box::pin(
            got.into_stream().map(|r| r.map_err(io::Error::other)),
        ))
    }

    async fn delete(&self, id: &UploadId) -> Result<(), StorageError> {
        let s = &self.shared;
        if let Some(state) = s.log.state(id).await? {
            if let Some(m) = &state.multipart {
                s.abort_quietly(id, m).await?;
            }
            let tails: Vec<u64> = state.tails.iter().copied().collect();
            s.delete_tails(id, &tails).await?;
        }
        s.delete_quietly(&s.data(id)).await?;
        Ok(s.log.forget(id).await?)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        // A HEAD of a marker object; the first time (or once the bucket was emptied) it is
        // written, which a missing bucket refuses (a HEAD alone would take its 404 for "no
        // such object").
        let s = &self.shared;
        let probe = s.prefix.clone().join(".tuskd-ping");
        match s.call(s.store.head(&probe)).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => s
                .call(s.store.put(&probe, PutPayload::from_static(b"tuskd")))
                .await
                .map(|_| ())
                .map_err(remote),
            Err(e) => Err(remote(e)),
        }
    }

    async fn quarantine(&self, id: &UploadId) -> Result<String, StorageError> {
        let to = self.shared.quarantine(id).await?;
        self.delete(id).await?;
        Ok(to)
    }

    async fn put_media(
        &self,
        key: &super::MediaKey,
        file: &std::path::Path,
    ) -> Result<u64, StorageError> {
        self.shared.put_media(key, file).await
    }

    async fn media_size(&self, key: &super::MediaKey) -> Result<Option<u64>, StorageError> {
        self.shared.media_size(key).await
    }

    async fn read_media(
        &self,
        key: &super::MediaKey,
        range: Range<u64>,
    ) -> Result<ByteStream, StorageError> {
        self.shared.read_media(key, range).await
    }

    async fn delete_media(&self, prefix: &super::MediaKey) -> Result<(), StorageError> {
        self.shared.delete_media(prefix).await
    }
}

#[cfg(test)]
mod tests;
