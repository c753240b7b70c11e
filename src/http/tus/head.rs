//! HEAD: where an upload stands. Never waits behind a running PATCH: it reads the last offset
//! the writer committed.

use http::{HeaderValue, Response, StatusCode, header};

use super::put_expires;
use crate::app::App;
use crate::domain::access::Caller;
use crate::domain::upload::UploadId;
use crate::http::body::{Body, empty};
use crate::http::error::Error;
use crate::http::headers as h;

pub(crate) async fn handle(
    app: &App,
    caller: &Caller,
    id: &UploadId,
) -> Result<Response<Body>, Error> {
    let upload = app.uploads.load(caller, id).await?;
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::OK;
    let hs = resp.headers_mut();
    hs.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if upload.is_final() && !upload.is_complete() {
        // X7/X9: a final upload still waiting for its partials has no offset to show yet, and
        // a length once every partial's is known.
        if let Some(len) = app.uploads.pending_length(&upload).await? {
            hs.insert(h::UPLOAD_LENGTH, h::number(len));
        }
    } else {
        hs.insert(h::UPLOAD_OFFSET, h::number(upload.offset));
        match upload.length {
            Some(len) => hs.insert(h::UPLOAD_LENGTH, h::number(len)),
            None => hs.insert(h::UPLOAD_DEFER_LENGTH, HeaderValue::from_static("1")),
        };
    }
    if let Some(v) = upload
        .metadata
        .as_ref()
        .filter(|m| !m.is_empty())
        .and_then(|m| h::echo(m.raw()))
    {
        hs.insert(h::UPLOAD_METADATA, v);
    }
    if let Some(v) = upload.concat_raw.as_deref().and_then(h::echo) {
        hs.insert(h::UPLOAD_CONCAT, v);
    }
    put_expires(&upload, hs);
    Ok(resp)
}
