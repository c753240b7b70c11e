//! PATCH: append the body at the client's offset. Takes the upload's lock (asking a stalled
//! holder to let go), checks the offset, settles a deferred length, then streams.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::checksum;
use http::request::Parts;

use super::{completed, events, ingest::ingest, load, put_expires};
use crate::app::App;
use crate::domain::upload::{Upload, UploadId};
use crate::hooks::HookType;
use crate::http::body::{Body, empty};
use crate::http::error::Error;
use crate::http::headers as h;

pub async fn handle(
    app: &App,
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
    let checksum = checksum::source(hs)?;

    let guard = app.locks.acquire(&id).await.ok_or(Error::Locked)?;
    let mut upload = load(app, &id).await?;
    if upload.is_final() {
        return Err(Error::ModifyFinal);
    }
    if offset != upload.offset {
        return Err(Error::MismatchedOffset {
            given: offset,
            current: upload.offset,
        });
    }
    let shaped = match declared_length {
        // P9/D2: a length equal to the bytes already stored finishes the upload; a body
        // with bytes in it is then too much (ingest says so).
        Some(length) if settle_length(app, &parts, &mut upload, length).await? => {
            let shaped = completed(app, &parts, &upload).await?;
            ingest(app, &parts, &mut upload, body, checksum, &guard).await?;
            shaped
        }
        _ => ingest(app, &parts, &mut upload, body, checksum, &guard).await?,
    };

    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp.headers_mut()
        .insert(h::UPLOAD_OFFSET, h::number(upload.offset));
    put_expires(&upload, resp.headers_mut());
    shaped.apply(&mut resp);
    Ok(resp)
}

/// P9/D2: a deferred length is set once, by a PATCH; after that it may only be repeated.
/// Returns whether setting it finished the upload.
async fn settle_length(
    app: &App,
    req: &Parts,
    upload: &mut Upload,
    length: u64,
) -> Result<bool, Error> {
    match upload.length {
        Some(known) if known == length => Ok(false),
        Some(_) => Err(Error::LengthChange),
        None => {
            if length < upload.offset {
                return Err(Error::InvalidUploadLength(
                    "smaller than what was already uploaded",
                ));
            }
            if app.config.max_size.is_some_and(|max| length > max) {
                return Err(Error::MaxSizeExceeded);
            }
            let finished = Upload {
                length: Some(length),
                ..upload.clone()
            };
            let kinds: &[HookType] = match finished.is_complete() {
                true => &[HookType::PostFinish],
                false => &[],
            };
            let posted = events::post(app, kinds, req, &finished);
            if !app.meta.set_length(&upload.id, length, &posted).await? {
                return Err(Error::Internal(format!(
                    "could not set the length of {}",
                    upload.id
                )));
            }
            upload.length = Some(length);
            Ok(upload.is_complete())
        }
    }
}
