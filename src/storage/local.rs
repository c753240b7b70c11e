//! Local-disk storage: one file per upload under `<data-dir>/uploads/<first two id chars>/`.
//!
//! Appends gather bytes in one bounded buffer and write it from the blocking pool, so memory per
//! active upload is `WRITE_BUFFER` whatever the body size. With `fsync` on, `commit` flushes the
//! file to disk before returning.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::{Append, ByteStream, Storage, StorageError};
use crate::upload::UploadId;

/// Bytes gathered before one write to the file.
pub const WRITE_BUFFER: usize = 256 * 1024;
const READ_BUFFER: usize = 64 * 1024;

pub struct LocalStorage {
    root: PathBuf,
    fsync: bool,
}

impl LocalStorage {
    pub fn open(dir: &Path, fsync: bool) -> io::Result<LocalStorage> {
        let root = dir.join("uploads");
        std::fs::create_dir_all(&root)?;
        Ok(LocalStorage { root, fsync })
    }

    fn path(&self, id: &UploadId) -> PathBuf {
        let s = id.as_str();
        let shard = &s[..s.len().min(2)];
        self.root.join(shard).join(s)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(StorageError::from),
        Err(e) => Err(StorageError::Io(io::Error::other(e))),
    }
}

fn missing(id: &UploadId) -> impl FnOnce(StorageError) -> StorageError + '_ {
    move |e| match e {
        StorageError::Io(io) if io.kind() == io::ErrorKind::NotFound => {
            StorageError::Missing(id.clone())
        }
        e => e,
    }
}

#[async_trait]
impl Storage for LocalStorage {
    async fn create(&self, id: &UploadId) -> Result<(), StorageError> {
        let path = self.path(id);
        let fsync = self.fsync;
        blocking(move || {
            let dir = path.parent().expect("upload paths have a parent");
            std::fs::create_dir_all(dir)?;
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            if fsync {
                f.sync_all()?;
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
    }

    async fn appender(&self, id: &UploadId, offset: u64) -> Result<Box<dyn Append>, StorageError> {
        let path = self.path(id);
        let file = blocking(move || {
            let mut f = OpenOptions::new().write(true).open(&path)?;
            // Anything past the acknowledged offset was never promised: drop it.
            f.set_len(offset)?;
            f.seek(SeekFrom::Start(offset))?;
            Ok(f)
        })
        .await
        .map_err(missing(id))?;
        Ok(Box::new(LocalAppend {
            file: Some(file),
            buf: BytesMut::with_capacity(WRITE_BUFFER),
            written: offset,
            committed: offset,
            fsync: self.fsync,
        }))
    }

    async fn concat(&self, id: &UploadId, parts: &[(UploadId, u64)]) -> Result<(), StorageError> {
        let target = self.path(id);
        let sources: Vec<(PathBuf, u64)> =
            parts.iter().map(|(p, len)| (self.path(p), *len)).collect();
        let fsync = self.fsync;
        blocking(move || {
            std::fs::create_dir_all(target.parent().expect("upload paths have a parent"))?;
            let mut out = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&target)?;
            for (src, len) in sources {
                // io::copy uses copy_file_range where it can: no bytes pass through user space.
                let copied = io::copy(&mut File::open(&src)?.take(len), &mut out)?;
                if copied != len {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "partial upload is shorter than recorded",
                    ));
                }
            }
            if fsync {
                out.sync_all()?;
            }
            Ok(())
        })
        .await
    }

    async fn read(&self, id: &UploadId, range: Range<u64>) -> Result<ByteStream, StorageError> {
        let mut file = tokio::fs::File::open(self.path(id))
            .await
            .map_err(|e| missing(id)(e.into()))?;
        use tokio::io::AsyncSeekExt;
        file.seek(SeekFrom::Start(range.start)).await?;
        let reader = file.take(range.end.saturating_sub(range.start));
        Ok(Box::pin(ReaderStream::with_capacity(reader, READ_BUFFER)))
    }

    async fn delete(&self, id: &UploadId) -> Result<(), StorageError> {
        let path = self.path(id);
        blocking(move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
    }
}

struct LocalAppend {
    /// Taken while a write runs on the blocking pool.
    file: Option<File>,
    buf: BytesMut,
    written: u64,
    committed: u64,
    fsync: bool,
}

impl LocalAppend {
    async fn flush(&mut self, sync: bool) -> Result<(), StorageError> {
        let mut file = self.file.take().ok_or_else(|| {
            StorageError::Io(io::Error::other("append used after a failed write"))
        })?;
        let buf = std::mem::take(&mut self.buf);
        let (file, mut buf) = blocking(move || {
            file.write_all(&buf)?;
            if sync {
                file.sync_data()?;
            }
            Ok((file, buf))
        })
        .await?;
        buf.clear();
        self.buf = buf;
        self.file = Some(file);
        Ok(())
    }
}

#[async_trait]
impl Append for LocalAppend {
    async fn write(&mut self, data: Bytes) -> Result<(), StorageError> {
        self.written += data.len() as u64;
        self.buf.extend_from_slice(&data);
        if self.buf.len() >= WRITE_BUFFER {
            self.flush(false).await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<u64, StorageError> {
        if !self.buf.is_empty() || self.fsync {
            self.flush(self.fsync).await?;
        }
        self.committed = self.written;
        Ok(self.committed)
    }

    async fn rollback(mut self: Box<Self>) -> Result<(), StorageError> {
        self.buf.clear();
        let committed = self.committed;
        if let Some(file) = self.file.take() {
            blocking(move || file.set_len(committed)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_storage_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::open(dir.path(), true).unwrap();
        super::super::suite::run(&s).await;
    }

    #[tokio::test]
    async fn uncommitted_tail_of_a_crash_is_dropped_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::open(dir.path(), false).unwrap();
        let id = UploadId::random();
        s.create(&id).await.unwrap();
        // A crash leaves bytes past the recorded offset.
        std::fs::write(s.path(&id), b"hello, garbage").unwrap();
        let mut a = s.appender(&id, 5).await.unwrap();
        a.write(Bytes::from_static(b" world")).await.unwrap();
        assert_eq!(a.commit().await.unwrap(), 11);
        assert_eq!(std::fs::read(s.path(&id)).unwrap(), b"hello world");
    }
}
