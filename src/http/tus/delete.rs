//! DELETE (termination): stops any running PATCH on the upload, asks the pre-terminate hook,
//! forgets the upload (and its media record), frees its storage and its derived media files.

use http::{Response, StatusCode};

use http::request::Parts;

use super::{events, load};
use crate::app::App;
use crate::domain::upload::UploadId;
use crate::hooks::HookType;
use crate::http::body::{Body, empty};
use crate::http::error::Error;

pub async fn handle(app: &App, req: &Parts, id: &UploadId) -> Result<Response<Body>, Error> {
    let _guard = app.locks.acquire(id).await.ok_or(Error::Locked)?;
    let upload = load(app, id).await?;
    events::pre_terminate(app, req, &upload).await?;
    // Forget first: if storage deletion then fails, the id already answers 404 and the bytes
    // are an orphan, never a half-present upload.
    let posted = events::post(app, &[HookType::PostTerminate], req, &upload);
    app.meta.remove(id, &posted).await?;
    app.storage.delete(id).await?;
    // Its derived media files go with it (any version).
    app.storage
        .delete_media(&crate::media::job::key(id, None))
        .await?;
    events::release(app, id).await?;
    tracing::info!(%id, "upload terminated");
    super::concat::partial_changed(app, &upload);
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}
