//! Derived media files in an object store: `<prefix>/media/<key>`. Small files are put in one
//! request under the store timeout; larger ones go up as a multipart upload through
//! object_store's `BufWriter`, a part at a time.

use std::io;
use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::AsyncWriteExt;

use super::{Shared, remote};
use crate::storage::{ByteStream, MediaKey, StorageError};

/// Files up to this size are put whole.
const SINGLE_PUT: u64 = 8 << 20;

impl Shared {
    fn media(&self, key: &MediaKey) -> Path {
        let mut p = self.prefix.clone().join("media");
        for seg in key.as_str().split('/') {
            p = p.join(seg);
        }
        p
    }

    /// Copies a finished upload's object to `<prefix>/quarantine/<id>`.
    pub(super) async fn quarantine(
        &self,
        id: &crate::domain::upload::UploadId,
    ) -> Result<String, StorageError> {
        let to = self.prefix.clone().join("quarantine").join(id.as_str());
        match self.call(self.store.copy(&self.data(id), &to)).await {
            Ok(()) => Ok(to.to_string()),
            Err(object_store::Error::NotFound { .. }) => Err(StorageError::Missing(id.clone())),
            Err(e) => Err(remote(e)),
        }
    }

    pub(super) async fn put_media(
        &self,
        key: &MediaKey,
        file: &FsPath,
    ) -> Result<u64, StorageError> {
        let path = self.media(key);
        let size = tokio::fs::metadata(file).await?.len();
        if size <= SINGLE_PUT {
            let bytes = tokio::fs::read(file).await?;
            self.call(self.store.put(&path, PutPayload::from(bytes)))
                .await
                .map_err(remote)?;
            return Ok(size);
        }
        let store: Arc<dyn ObjectStore> = self.store.clone();
        let mut writer =
            object_store::buffered::BufWriter::with_capacity(store, path, self.part_size as usize);
        let mut reader = tokio::fs::File::open(file).await?;
        let copied = tokio::io::copy(&mut reader, &mut writer).await;
        match copied {
            Ok(_) => writer.shutdown().await.map_err(store_io)?,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(store_io(e));
            }
        }
        Ok(size)
    }

    pub(super) async fn media_size(&self, key: &MediaKey) -> Result<Option<u64>, StorageError> {
        self.size(&self.media(key)).await
    }

    pub(super) async fn read_media(
        &self,
        key: &MediaKey,
        range: Range<u64>,
    ) -> Result<ByteStream, StorageError> {
        if range.is_empty() {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..Default::default()
        };
        let got = self
            .call(self.store.get_opts(&self.media(key), options))
            .await
            .map_err(remote)?;
        Ok(Box::pin(
            got.into_stream().map(|r| r.map_err(io::Error::other)),
        ))
    }

    pub(super) async fn delete_media(&self, prefix: &MediaKey) -> Result<(), StorageError> {
        let dir = self.media(prefix);
        // The key itself (a file), then everything below it (a directory).
        self.delete_quietly(&dir).await?;
        let listed = self.store.list(Some(&dir)).map_ok(|m| m.location).boxed();
        let mut deleted = self.store.delete_stream(listed);
        loop {
            let next = tokio::time::timeout(self.timeout, deleted.next())
                .await
                .map_err(|_| StorageError::Unavailable("deleting media files timed out".into()))?;
            let Some(r) = next else { break };
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(remote(e)),
            }
        }
        Ok(())
    }
}

fn store_io(e: io::Error) -> StorageError {
    match e.into_inner() {
        Some(inner) => match inner.downcast::<object_store::Error>() {
            Ok(e) => remote(*e),
            Err(other) => StorageError::Remote(other),
        },
        None => StorageError::Backend("object store write failed".into()),
    }
}
