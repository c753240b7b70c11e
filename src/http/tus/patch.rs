//! PATCH: append the body at the client's offset (the core takes the upload's lock, checks the
//! offset, settles a deferred length, then streams).

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::{apply, checksum, data, put_expires};
use crate::app::App;
use crate::domain::access::Caller;
use crate::domain::upload::UploadId;
use crate::http::body::{Body, empty};
use crate::http::error::Error;
use crate::http::headers as h;
use crate::upload::Data;
use crate::upload::checksum::Verifier;

pub(crate) async fn handle(
    app: &App,
    caller: &Caller,
    req: Request<Incoming>,
    id: UploadId,
) -> Result<Response<Body>, Error> {
    let (parts, body) = req.into_parts();
    let hs = &parts.headers;
    if !h::is_offset_octet_stream(hs)? {
        return Err(Error::InvalidContentType);
    }
    let offset = h::upload_offset(hs)?;
    let declared_length = h::upload_length(hs)?;
    let verifier =
        checksum::source(hs)?.map(|s| Box::new(checksum::Verifier::new(s)) as Box<dyn Verifier>);
    let data = Data {
        source: data(app, body),
        verifier,
    };
    let (upload, shaped) = app
        .uploads
        .append_at(&parts, caller, &id, offset, declared_length, data)
        .await?;

    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp.headers_mut()
        .insert(h::UPLOAD_OFFSET, h::number(upload.offset));
    put_expires(&upload, resp.headers_mut());
    apply(shaped, &mut resp);
    Ok(resp)
}
