//! Reading a finished upload's bytes (downloads).

use std::ops::Range;

use super::{UploadError, Uploads};
use crate::domain::access::Caller;
use crate::domain::upload::{Upload, UploadId};
use crate::storage::ByteStream;

impl Uploads {
    /// A finished upload, ready to be read: its record and its length. `NotFinished` while it
    /// is being uploaded (or, for a final upload, while its partial uploads are).
    pub async fn finished(
        &self,
        caller: &Caller,
        id: &UploadId,
    ) -> Result<(Upload, u64), UploadError> {
        let upload = self.load(caller, id).await?;
        let length = match upload.length {
            Some(len) if upload.is_complete() => len,
            _ => return Err(UploadError::NotFinished),
        };
        Ok((upload, length))
    }

    /// The bytes of `span` of finished upload `id`, `length` bytes long.
    pub async fn read(
        &self,
        id: &UploadId,
        length: u64,
        span: Range<u64>,
    ) -> Result<ByteStream, UploadError> {
        // Storage may not have heard of the completion if a crash came right after it.
        self.storage.finish(id, length).await?;
        Ok(self.storage.read(id, span).await?)
    }
}
