//! Termination: stops any running append on the upload, asks the pre-terminate hook, forgets
//! the upload (and its media record), frees its storage and its derived media files.

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
        // Forget first: if storage deletion then fails, the id already answers 404 and the
        // bytes are an orphan, never a half-present upload.
        let posted = self.post(&[HookType::PostTerminate], req, &upload);
        self.meta.remove(id, &posted).await?;
        self.storage.delete(id).await?;
        // Its derived media files go with it (any version).
        self.storage.delete_media(&MediaKey::of_upload(id)).await?;
        self.release(id).await?;
        tracing::info!(%id, "upload terminated");
        self.partial_changed(&upload);
        Ok(())
    }
}
