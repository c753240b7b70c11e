//! Local-disk storage: one file per upload under `<data-dir>/uploads/<first two id chars>/`;
//! appends in `local_append` (a queue of batches for a writer on the blocking pool), derived
//! media files in `local_media`.
//!
//! Measured alternatives for appends (tuskd-bench, 1 GiB in one PATCH on 2 cores): a
//! `spawn_blocking` per batch awaited by the request left the writer idle between wake-ups
//! (0.32 of the sink's throughput against 0.52 with a queue); copying frames into recycled
//! buffers cost about 40% more CPU per byte.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::local_append::LocalAppend;
use super::local_media::LocalMedia;
use super::{Append, ByteStream, MediaKey, Storage, StorageError};
use crate::domain::upload::UploadId;

pub use super::local_append::WRITE_BATCH;
const READ_BUFFER: usize = 64 * 1024;

pub struct LocalStorage {
    root: PathBuf,
    quarantine: PathBuf,
    fsync: bool,
    media: LocalMedia,
}

impl std::fmt::Debug for LocalStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStorage")
            .field("root", &self.root)
            .field("fsync", &self.fsync)
            .finish_non_exhaustive()
    }
}

impl LocalStorage {
    pub fn open(dir: &Path, fsync: bool) -> io::Result<LocalStorage> {
        let root = dir.join("uploads");
        std::fs::create_dir_all(&root)?;
        let media = LocalMedia::new(dir.join("media"), fsync);
        Ok(LocalStorage {
            root,
            quarantine: dir.join("quarantine"),
            fsync,
            media,
        })
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

/// Creates an upload's file, and its shard directory if needed. `exclusive` refuses a file that
/// already exists; otherwise an existing one is emptied.
fn new_file(path: &Path, exclusive: bool) -> io::Result<File> {
    std::fs::create_dir_all(path.parent().expect("upload paths have a parent"))?;
    let mut options = OpenOptions::new();
    options.write(true);
    if exclusive {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    options.open(path)
}

/// Makes a new file durable: its contents and its entry in the directory.
fn persist_new(file: &File, path: &Path) -> io::Result<()> {
    file.sync_all()?;
    File::open(path.parent().expect("upload paths have a parent"))?.sync_all()
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
            let f = new_file(&path, true)?;
            if fsync {
                persist_new(&f, &path)?;
            }
            Ok(())
        })
        .await
    }

    async fn appender(
        &self,
        id: &UploadId,
        offset: u64,
        _length: Option<u64>,
    ) -> Result<Box<dyn Append>, StorageError> {
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
        Ok(Box::new(LocalAppend::start(file, offset, self.fsync)))
    }

    async fn concat(&self, id: &UploadId, parts: &[(UploadId, u64)]) -> Result<(), StorageError> {
        let target = self.path(id);
        let sources: Vec<(PathBuf, u64)> =
            parts.iter().map(|(p, len)| (self.path(p), *len)).collect();
        let fsync = self.fsync;
        blocking(move || {
            let mut out = new_file(&target, false)?;
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
                persist_new(&out, &target)?;
            }
            Ok(())
        })
        .await
    }

    fn location(&self, id: &UploadId) -> std::collections::BTreeMap<String, String> {
        [
            ("Type".to_owned(), "filestore".to_owned()),
            ("Path".to_owned(), self.path(id).display().to_string()),
        ]
        .into()
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

    async fn ping(&self) -> Result<(), StorageError> {
        let root = self.root.clone();
        blocking(move || {
            if std::fs::metadata(&root)?.is_dir() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "{} is not a directory",
                    root.display()
                )))
            }
        })
        .await
    }

    async fn quarantine(&self, id: &UploadId) -> Result<String, StorageError> {
        let (from, to) = (self.path(id), self.quarantine.join(id.as_str()));
        let missing = id.clone();
        blocking(move || {
            std::fs::create_dir_all(to.parent().expect("quarantine paths have a parent"))?;
            std::fs::rename(&from, &to)?;
            Ok(to.display().to_string())
        })
        .await
        .map_err(|e| match e {
            StorageError::Io(e) if e.kind() == io::ErrorKind::NotFound => {
                StorageError::Missing(missing)
            }
            e => e,
        })
    }

    fn local_path(&self, id: &UploadId) -> Option<PathBuf> {
        Some(self.path(id))
    }

    async fn put_media(&self, key: &MediaKey, file: &Path) -> Result<u64, StorageError> {
        self.media.put(key, file).await
    }

    async fn media_size(&self, key: &MediaKey) -> Result<Option<u64>, StorageError> {
        self.media.size(key).await
    }

    async fn read_media(
        &self,
        key: &MediaKey,
        range: Range<u64>,
    ) -> Result<ByteStream, StorageError> {
        self.media.read(key, range).await
    }

    async fn delete_media(&self, prefix: &MediaKey) -> Result<(), StorageError> {
        self.media.delete(prefix).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn local_storage_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let open = || Box::new(LocalStorage::open(dir.path(), true).unwrap()) as Box<dyn Storage>;
        super::super::suite::run(&open, 100_000).await;
    }

    #[tokio::test]
    async fn uncommitted_tail_of_a_crash_is_dropped_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::open(dir.path(), false).unwrap();
        let id = UploadId::random();
        s.create(&id).await.unwrap();
        // A crash leaves bytes past the recorded offset.
        std::fs::write(s.path(&id), b"hello, garbage").unwrap();
        let mut a = s.appender(&id, 5, None).await.unwrap();
        a.write(Bytes::from_static(b" world")).await.unwrap();
        assert_eq!(a.commit().await.unwrap(), 11);
        assert_eq!(std::fs::read(s.path(&id)).unwrap(), b"hello world");
    }
}
