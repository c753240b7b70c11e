//! Appending at a client's offset: the upload's lock (a stalled holder is asked to let go),
//! the offset check, a deferred length declared with the data, then the data itself.

use http::request::Parts;

use super::{Data, Shaped, UploadError, Uploads};
use crate::domain::access::Caller;
use crate::domain::upload::{Upload, UploadId};
use crate::hooks::HookType;

impl Uploads {
    /// Appends `data` to upload `id` at `offset`, declaring its `length` first if the client
    /// sends one. Returns the upload as it now is and what a pre-finish hook set for the answer.
    pub async fn append_at(
        &self,
        req: &Parts,
        caller: &Caller,
        id: &UploadId,
        offset: u64,
        length: Option<u64>,
        Data { source, verifier }: Data,
    ) -> Result<(Upload, Shaped), UploadError> {
        let guard = self.locks.acquire(id).await.ok_or(UploadError::Locked)?;
        let mut upload = self.load(caller, id).await?;
        if upload.is_final() {
            return Err(UploadError::ModifyFinal);
        }
        if offset != upload.offset {
            return Err(UploadError::MismatchedOffset {
                given: offset,
                current: upload.offset,
            });
        }
        let shaped = match length {
            // P9/D2: a length equal to the bytes already stored finishes the upload; data
            // with bytes in it is then too much (append says so).
            Some(length)
                if self
                    .declare_length(req, caller, &mut upload, length)
                    .await? =>
            {
                let shaped = self.complete(req, &upload).await?;
                self.append(req, &mut upload, source, verifier, &guard)
                    .await?;
                shaped
            }
            _ => {
                self.append(req, &mut upload, source, verifier, &guard)
                    .await?
            }
        };
        Ok((upload, shaped))
    }

    /// P9/D2: a deferred length is set once; after that it may only be repeated. Returns
    /// whether setting it finished the upload.
    async fn declare_length(
        &self,
        req: &Parts,
        caller: &Caller,
        upload: &mut Upload,
        length: u64,
    ) -> Result<bool, UploadError> {
        match upload.length {
            Some(known) if known == length => Ok(false),
            Some(_) => Err(UploadError::LengthChange),
            None => {
                if length < upload.offset {
                    return Err(UploadError::InvalidLength(
                        "smaller than what was already uploaded",
                    ));
                }
                self.check_size(caller, Some(length))?;
                let finished = Upload {
                    length: Some(length),
                    ..upload.clone()
                };
                let kinds: &[HookType] = match finished.is_complete() {
                    true => &[HookType::PostFinish],
                    false => &[],
                };
                let posted = self.post(kinds, req, &finished);
                let effects = self.effects(posted, &finished);
                if !self
                    .meta
                    .set_length(&upload.id, length, &effects, &self.limits.quota)
                    .await?
                {
                    return Err(UploadError::changed_under_lock(&upload.id, "the length"));
                }
                upload.length = Some(length);
                Ok(upload.is_complete())
            }
        }
    }
}
