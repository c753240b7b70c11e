//! DELETE (termination): the core stops any running PATCH on the upload, asks the
//! pre-terminate hook, forgets the upload and frees its storage and derived media files.

use http::request::Parts;
use http::{Response, StatusCode};

use crate::app::App;
use crate::domain::access::Caller;
use crate::domain::upload::UploadId;
use crate::http::body::{Body, empty};
use crate::http::error::Error;

pub(crate) async fn handle(
    app: &App,
    caller: &Caller,
    req: &Parts,
    id: &UploadId,
) -> Result<Response<Body>, Error> {
    app.uploads.terminate(req, caller, id).await?;
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}
