//! A `Storage` that counts for the metrics: bytes written (appends, derived files) and read
//! (downloads, media reads), and failed calls by operation. It wraps whichever backend the
//! server uses, so every caller is counted without knowing it.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

use super::{Append, ByteStream, MediaKey, Storage, StorageError};
use crate::domain::upload::UploadId;
use crate::metrics::{Metrics, StoreLabels};

pub struct Metered {
    inner: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
    backend: &'static str,
}

impl std::fmt::Debug for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered")
            .field("inner", &self.inner)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Metered {
    pub fn new(inner: Arc<dyn Storage>, metrics: Arc<Metrics>, backend: &'static str) -> Metered {
        Metered {
            inner,
            metrics,
            backend,
        }
    }

    fn label(&self, operation: &'static str) -> StoreLabels {
        StoreLabels {
            backend: self.backend,
            operation,
        }
    }

    fn count<T>(
        &self,
        operation: &'static str,
        r: Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if let Err(e) = &r
            && !matches!(e, StorageError::Missing(_))
        {
            self.metrics
                .store_errors
                .get_or_create(&self.label(operation))
                .inc();
        }
        r
    }

    fn reading(&self, stream: ByteStream) -> ByteStream {
        let read = self
            .metrics
            .store_bytes_read
            .get_or_create(&self.label("read"))
            .clone();
        Box::pin(stream.inspect(move |chunk| {
            if let Ok(c) = chunk {
                read.inc_by(c.len() as u64);
            }
        }))
    }
}

struct MeteredAppend {
    inner: Box<dyn Append>,
    written: prometheus_client::metrics::counter::Counter,
    errors: prometheus_client::metrics::counter::Counter,
}

impl std::fmt::Debug for MeteredAppend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredAppend")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Append for MeteredAppend {
    async fn write(&mut self, data: Bytes) -> Result<(), StorageError> {
        let n = data.len() as u64;
        let r = self.inner.write(data).await;
        match &r {
            Ok(()) => {
                self.written.inc_by(n);
            }
            Err(_) => {
                self.errors.inc();
            }
        }
        r
    }

    async fn commit(&mut self) -> Result<u64, StorageError> {
        let r = self.inner.commit().await;
        if r.is_err() {
            self.errors.inc();
        }
        r
    }

    async fn checkpoint(&mut self) -> Result<u64, StorageError> {
        let r = self.inner.checkpoint().await;
        if r.is_err() {
            self.errors.inc();
        }
        r
    }

    async fn rollback(self: Box<Self>) -> Result<(), StorageError> {
        self.inner.rollback().await
    }

    async fn truncate(&mut self, len: u64) -> Result<(), StorageError> {
        self.inner.truncate(len).await
    }
}

#[async_trait]
impl Storage for Metered {
    async fn create(&self, id: &UploadId) -> Result<(), StorageError> {
        self.count("create", self.inner.create(id).await)
    }

    async fn appender(
        &self,
        id: &UploadId,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Box<dyn Append>, StorageError> {
        let inner = self.count("append", self.inner.appender(id, offset, length).await)?;
        Ok(Box::new(MeteredAppend {
            inner,
            written: self
                .metrics
                .store_bytes_written
                .get_or_create(&self.label("append"))
                .clone(),
            errors: self
                .metrics
                .store_errors
                .get_or_create(&self.label("append"))
                .clone(),
        }))
    }

    async fn finish(&self, id: &UploadId, length: u64) -> Result<(), StorageError> {
        self.count("finish", self.inner.finish(id, length).await)
    }

    async fn unfinished(&self) -> Result<Vec<UploadId>, StorageError> {
        self.count("list", self.inner.unfinished().await)
    }

    async fn concat(&self, id: &UploadId, parts: &[(UploadId, u64)]) -> Result<(), StorageError> {
        self.count("concat", self.inner.concat(id, parts).await)
    }

    fn location(&self, id: &UploadId) -> BTreeMap<String, String> {
        self.inner.location(id)
    }

    async fn read(&self, id: &UploadId, range: Range<u64>) -> Result<ByteStream, StorageError> {
        let s = self.count("read", self.inner.read(id, range).await)?;
        Ok(self.reading(s))
    }

    async fn delete(&self, id: &UploadId) -> Result<(), StorageError> {
        self.count("delete", self.inner.delete(id).await)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.count("ping", self.inner.ping().await)
    }

    async fn quarantine(&self, id: &UploadId) -> Result<String, StorageError> {
        self.count("quarantine", self.inner.quarantine(id).await)
    }

    fn local_path(&self, id: &UploadId) -> Option<PathBuf> {
        self.inner.local_path(id)
    }

    async fn put_media(&self, key: &MediaKey, file: &Path) -> Result<u64, StorageError> {
        let n = self.count("put_media", self.inner.put_media(key, file).await)?;
        self.metrics
            .store_bytes_written
            .get_or_create(&self.label("put_media"))
            .inc_by(n);
        Ok(n)
    }

    async fn media_size(&self, key: &MediaKey) -> Result<Option<u64>, StorageError> {
        self.count("media_size", self.inner.media_size(key).await)
    }

    async fn read_media(
        &self,
        key: &MediaKey,
        range: Range<u64>,
    ) -> Result<ByteStream, StorageError> {
        let s = self.count("read_media", self.inner.read_media(key, range).await)?;
        Ok(self.reading(s))
    }

    async fn delete_media(&self, prefix: &MediaKey) -> Result<(), StorageError> {
        self.count("delete_media", self.inner.delete_media(prefix).await)
    }
}
