//! Derived media files on local disk: `<data dir>/media/<key>`, beside the uploads directory
//! (so no upload id can name one). A file is moved into place (copied first when it is on
//! another file system) and appears whole or not at all.

use std::io::{self, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{ByteStream, MediaKey, StorageError};

const READ_BUFFER: usize = 64 * 1024;

pub(super) struct LocalMedia {
    root: PathBuf,
    fsync: bool,
}

impl LocalMedia {
    pub(super) fn new(root: PathBuf, fsync: bool) -> LocalMedia {
        LocalMedia { root, fsync }
    }

    fn path(&self, key: &MediaKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    pub(super) async fn put(&self, key: &MediaKey, file: &Path) -> Result<u64, StorageError> {
        let (dest, file, fsync) = (self.path(key), file.to_owned(), self.fsync);
        let run = move || -> io::Result<u64> {
            let dir = dest.parent().expect("media keys have a parent");
            std::fs::create_dir_all(dir)?;
            if std::fs::rename(&file, &dest).is_err() {
                let tmp = dest.with_extension("partial");
                std::fs::copy(&file, &tmp)?;
                if fsync {
                    std::fs::File::open(&tmp)?.sync_all()?;
                }
                std::fs::rename(&tmp, &dest)?;
            } else if fsync {
                std::fs::File::open(&dest)?.sync_all()?;
            }
            if fsync {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(std::fs::metadata(&dest)?.len())
        };
        match tokio::task::spawn_blocking(run).await {
            Ok(r) => Ok(r?),
            Err(e) => Err(StorageError::Io(io::Error::other(e))),
        }
    }

    pub(super) async fn size(&self, key: &MediaKey) -> Result<Option<u64>, StorageError> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn read(
        &self,
        key: &MediaKey,
        range: Range<u64>,
    ) -> Result<ByteStream, StorageError> {
        let mut file = tokio::fs::File::open(self.path(key)).await?;
        file.seek(SeekFrom::Start(range.start)).await?;
        let reader = file.take(range.end.saturating_sub(range.start));
        Ok(Box::pin(ReaderStream::with_capacity(reader, READ_BUFFER)))
    }

    pub(super) async fn delete(&self, prefix: &MediaKey) -> Result<(), StorageError> {
        let path = self.path(prefix);
        let r = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_dir() => tokio::fs::remove_dir_all(&path).await,
            Ok(_) => tokio::fs::remove_file(&path).await,
            Err(e) => Err(e),
        };
        match r {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
