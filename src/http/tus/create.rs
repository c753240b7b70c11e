//! POST: creation, creation-with-upload and creation-defer-length; final uploads of the
//! concatenation extension are made by the core's `create_final`.

use http::request::Parts;
use http::{HeaderMap, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use super::{body_is_empty, checksum, data, put_expires, upload_url};
use crate::app::App;
use crate::domain::access::Caller;
use crate::domain::upload::{Concat, Metadata, Upload, UploadId};
use crate::http::body::{Body, empty};
use crate::http::error::Error;
use crate::http::headers as h;
use crate::upload::checksum::Verifier;
use crate::upload::{Created, Data, NewUpload, Shaped};

pub(crate) async fn handle(
    app: &App,
    caller: &Caller,
    req: Request<Incoming>,
) -> Result<Response<Body>, Error> {
    let (parts, body) = req.into_parts();
    let hs = &parts.headers;
    let metadata = h::metadata(hs)?;
    let concat = h::concat(hs, &app.config.base_path)?;
    let has_data = h::is_offset_octet_stream(hs)?;
    let body_len = http_body::Body::size_hint(&body).exact();
    // The upload data, if the body carries some (creation-with-upload).
    let body = if has_data {
        Some(body)
    } else if body_is_empty(app, body).await? {
        None
    } else {
        // A body that is not declared as upload data is not ours to guess at.
        return Err(Error::InvalidContentType);
    };

    let (concat, concat_raw) = match concat {
        Some((Concat::Final(partials), raw)) => {
            if body.is_some() {
                return Err(Error::ModifyFinal);
            }
            return final_upload(app, caller, &parts, partials, raw, metadata).await;
        }
        Some((c, raw)) => (c, Some(raw)),
        None => (Concat::None, None),
    };
    let length = h::creation_length(hs)?;
    app.uploads.check_size(caller, length)?;
    let verifier =
        checksum::source(hs)?.map(|s| Box::new(checksum::Verifier::new(s)) as Box<dyn Verifier>);
    if let (Some(len), Some(body_len)) = (length, body_len)
        && body.is_some()
        && body_len > len
    {
        return Err(Error::SizeExceeded);
    }
    let new = NewUpload {
        length,
        metadata,
        concat,
        concat_raw,
    };
    let data = body.map(|b| Data {
        source: data(app, b),
        verifier,
    });
    create(app, caller, &parts, new, data).await
}

/// A final upload of the concatenation extension (X6: its length is the sum of its
/// partials'; the client must not send one).
async fn final_upload(
    app: &App,
    caller: &Caller,
    parts: &Parts,
    partials: Vec<UploadId>,
    raw: String,
    metadata: Option<Metadata>,
) -> Result<Response<Body>, Error> {
    let hs = &parts.headers;
    if hs.contains_key(h::UPLOAD_LENGTH) || hs.contains_key(h::UPLOAD_DEFER_LENGTH) {
        return Err(Error::InvalidUploadLength(
            "a final upload takes the length of its partial uploads; send none",
        ));
    }
    let (upload, extra) = app
        .uploads
        .create_final(parts, caller, partials, raw, metadata)
        .await?;
    Ok(created(app, parts, &upload, extra))
}

/// Creates the upload and takes the data that came with the request, if any.
async fn create(
    app: &App,
    caller: &Caller,
    parts: &Parts,
    new: NewUpload,
    data: Option<Data>,
) -> Result<Response<Body>, Error> {
    let Created {
        mut upload,
        headers: mut extra,
        guard,
    } = app.uploads.create(parts, caller, new).await?;
    let finished = if upload.is_complete() {
        app.uploads.complete(parts, &upload).await
    } else if let Some(Data { source, verifier }) = data {
        app.uploads
            .append(parts, &mut upload, source, verifier, &guard)
            .await
    } else {
        Ok(Shaped::default())
    };
    // The upload exists whatever went wrong with its data (a checksum mismatch, a timeout, too
    // much): the error answer says where it is and what it holds, so the client can resume it
    // instead of starting over (as tusd does with Location).
    let finished = finished.map_err(|e| {
        let mut hs = HeaderMap::new();
        hs.insert(
            header::LOCATION,
            upload_url(app, &parts.headers, &parts.uri, &upload.id),
        );
        hs.insert(h::UPLOAD_OFFSET, h::number(upload.offset));
        put_expires(&upload, &mut hs);
        Error::from(e).with_headers(hs)
    })?;
    // A pre-finish hook's headers reach the client; the status stays 201 for tus clients.
    extra.extend(finished.headers);
    Ok(created(app, parts, &upload, extra))
}

/// C7/CW3/C9: 201 with Location, Upload-Offset and Upload-Expires, and headers hooks set.
fn created(app: &App, req: &Parts, upload: &Upload, extra: HeaderMap) -> Response<Body> {
    let mut resp = Response::new(empty());
    resp.headers_mut().extend(extra);
    *resp.status_mut() = StatusCode::CREATED;
    let hs = resp.headers_mut();
    hs.insert(
        header::LOCATION,
        upload_url(app, &req.headers, &req.uri, &upload.id),
    );
    hs.insert(h::UPLOAD_OFFSET, h::number(upload.offset));
    put_expires(upload, hs);
    resp
}
