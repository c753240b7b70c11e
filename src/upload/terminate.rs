//! Termination: stops any running append on the upload, asks the pre-terminate hook, frees its
//! storage and its derived media files, then forgets the upload (and its media record).
//!
//! Data goes first: on a full disk the space comes back before anything needs writing (the
//! metadata store records the removal in the room just freed). A crash in between leaves a
//! record whose bytes are gone, which reads as a missing upload (404) and goes for good when
//! the client's DELETE is repeated or the upload expires; never bytes that no record names.

use http::request::Parts;

use super::{UploadError, Uploads};
use crate::domain::access::Caller;
use crate::domain::upload::UploadId;
use crate::hooks::HookType;
use crate::storage::MediaKey;

impl Uploads {
    pub async fn terminate(
        &self,
        req: &Parts,
        caller: &Caller,
        id: &UploadId,
    ) -> Result<(), UploadError> {
        let _guard = self.locks.acquire(id).await.ok_or(UploadError::Locked)?;
        let upload = self.load(caller, id).await?;
        self.pre_terminate(req, &upload).await?;
        self.storage.delete(id).await?;
        // Its derived media files go with it (any version).
        self.storage.delete_media(&MediaKey::of_upload(id)).await?;
        let posted = self.post(&[HookType::PostTerminate], req, &upload);
        self.meta.remove(id, &posted).await?;
        self.release(id).await?;
        tracing::info!(%id, "upload terminated");
        self.partial_changed(&upload);
        Ok(())
    }
}
