//! Creating an upload (not a final one: `concat` makes those): the size limit, the pre-create
//! hook, storage, and the record with its post-create (and, for an empty upload, post-finish)
//! events.

use http::HeaderMap;
use http::request::Parts;

use super::{FullReason, UploadError, Uploads};
use crate::domain::access::Caller;
use crate::domain::upload::{Concat, Metadata, State, Upload, UploadId};
use crate::lock::Guard;

/// What a client asks for when it creates an upload.
#[derive(Debug)]
pub struct NewUpload {
    /// `None`: deferred, declared later.
    pub length: Option<u64>,
    pub metadata: Option<Metadata>,
    /// `Concat::None` or `Concat::Partial`.
    pub concat: Concat,
    /// The concatenation header as the client sent it, echoed back.
    pub concat_raw: Option<String>,
}

/// A new upload, still held by the request that created it.
#[derive(Debug)]
pub struct Created {
    pub upload: Upload,
    /// Headers the pre-create hook set for the answer.
    pub headers: HeaderMap,
    /// The upload's lock, for data that comes with the creation.
    pub guard: Guard,
}

impl Uploads {
    /// Refuses a length beyond the server's maximum or the caller's.
    pub fn check_size(&self, caller: &Caller, length: Option<u64>) -> Result<(), UploadError> {
        let max = match (self.limits.max_size, caller.max_size) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (max, length) {
            (Some(max), Some(len)) if len > max => Err(UploadError::MaxSizeExceeded),
            _ => Ok(()),
        }
    }

    /// Refuses new work when a filesystem that upload data needs (its bytes, the metadata
    /// store's records) has less free than the reserve, or less room than `bytes` (the length
    /// a concatenation copies).
    pub fn check_space(&self, bytes: u64) -> Result<(), UploadError> {
        match self.space.data_room(false) {
            Some((room, r)) if room == 0 || room < bytes => {
                tracing::debug!("new upload refused: {}", r.describe());
                Err(UploadError::full(FullReason::Reserve))
            }
            _ => Ok(()),
        }
    }

    /// Refuses a declared type the caller may not upload (a token's `media_kinds`). The
    /// declared type is the client's word (`Metadata::declared_type`), which the media pipeline
    /// holds the bytes to (a file whose contents are of another type is rejected); one that
    /// declares none may not upload at all when kinds are narrowed.
    pub fn check_kind(
        &self,
        caller: &Caller,
        metadata: Option<&Metadata>,
    ) -> Result<(), UploadError> {
        if caller.media_kinds.is_none() {
            return Ok(());
        }
        let declared = metadata
            .and_then(Metadata::declared_type)
            .unwrap_or_default();
        let kind = match declared.split('/').next().unwrap_or_default() {
            k @ ("video" | "audio" | "image") => k,
            _ if declared.contains('/') => "document",
            _ => "",
        };
        match caller.may_upload_kind(kind) {
            true => Ok(()),
            false => Err(UploadError::KindNotAllowed(declared)),
        }
    }

    /// Creates an upload owned by `caller`. An upload of length 0 is complete at once: the
    /// caller completes it.
    pub async fn create(
        &self,
        req: &Parts,
        caller: &Caller,
        new: NewUpload,
    ) -> Result<Created, UploadError> {
        self.check_size(caller, new.length)?;
        self.check_kind(caller, new.metadata.as_ref())?;
        self.check_space(0)?;
        let mut upload = Upload {
            id: UploadId::random(),
            length: new.length,
            offset: 0,
            metadata: new.metadata,
            concat: new.concat,
            concat_raw: new.concat_raw,
            created_at: self.clock.now(),
            expires_at: self.expiry(new.length == Some(0)),
            state: State::Active,
            owner: caller.owner.clone(),
        };
        let headers = self.pre_create(req, &mut upload).await?;
        // Held from before anything is stored: background repair leaves a half-made upload
        // alone.
        let guard = self
            .locks
            .acquire(&upload.id)
            .await
            .ok_or(UploadError::Locked)?;
        self.storage.create(&upload.id).await?;
        let inserted = self
            .meta
            .insert(
                &upload,
                &self.effects(self.created(req, &upload), &upload),
                &self.limits.quota,
            )
            .await;
        if let Err(e) = inserted {
            // Refused (a quota) or failed: nothing of the upload is left behind. A storage
            // delete that fails leaves an orphan no record names, which no client can reach.
            if let Err(d) = self.storage.delete(&upload.id).await {
                tracing::warn!(id = %upload.id, "storage of an upload never recorded not deleted: {d}");
            }
            return Err(e.into());
        }
        self.hooks.wake();
        tracing::info!(id = %upload.id, length = ?upload.length, "upload created");
        Ok(Created {
            upload,
            headers,
            guard,
        })
    }
}
