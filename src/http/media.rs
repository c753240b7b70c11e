//! The media routes under `--media-path`: `GET /media/{id}` answers the status document (JSON,
//! or Server-Sent Events: `media_events`),
//! `GET /media/{id}/{version}/{file}` serves a derived file with its type, byte ranges and, since
//! a version's files never change, `Cache-Control: immutable`. CORS is the edge's, as for tus.

use futures_util::TryStreamExt;
use http::{HeaderMap, HeaderValue, Method, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use crate::app::App;
use crate::domain::access::Caller;
use crate::domain::upload::UploadId;
use crate::http::body::{Body, full, json_response};
use crate::http::error::Error;
use crate::media::status;
use crate::storage::MediaKey;

/// The status document of `id`, or (`Accept: text/event-stream`) a stream of it
/// (`media_events`).
pub(crate) async fn status(
    app: &App,
    caller: &Caller,
    req: &HeaderMap,
    uri: &http::Uri,
    id: &UploadId,
) -> Result<Response<Body>, Error> {
    let path = &app.config.media.as_ref().ok_or(Error::RouteNotFound)?.path;
    let base = crate::http::tus::absolute_url(app, req, uri, path);
    let doc = document(app, caller, id, &base).await?;
    if super::media_events::wanted(req) {
        return Ok(super::media_events::stream(
            app.clone(),
            caller.clone(),
            id.clone(),
            base,
            doc,
        ));
    }
    Ok(json_response(http::StatusCode::OK, doc))
}

/// The status document of `id` as `caller` may see it, with file URLs under `base`.
pub(crate) async fn document(
    app: &App,
    caller: &Caller,
    id: &UploadId,
    base: &str,
) -> Result<serde_json::Value, Error> {
    let meta = &app.uploads.meta;
    let (record, upload, tasks) = tokio::try_join!(meta.media(id), meta.get(id), meta.tasks(id))?;
    // Another owner's media is media that does not exist.
    let owner = record
        .as_ref()
        .and_then(|r| r.owner.as_ref())
        .or(upload.as_ref().and_then(|u| u.owner.as_ref()));
    if !caller.may_see(owner) {
        return Err(Error::MediaNotFound);
    }
    if record.is_none() && upload.as_ref().is_none_or(|u| u.is_complete()) {
        // Unknown, or finished without media (a partial upload of a concatenation).
        return Err(Error::MediaNotFound);
    }
    let signature = app
        .signer
        .as_ref()
        .map(|s| s.sign(id.as_str(), app.uploads.clock.now()));
    Ok(status::document(
        id.as_str(),
        record.as_ref(),
        &tasks,
        upload.as_ref(),
        base,
        signature.as_deref(),
    ))
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next().unwrap_or_default() {
        "m3u8" => crate::media::hls::MIME,
        "ts" => "video/mp2t",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "mp4" | "m4s" => "video/mp4",
        "m4a" => "audio/mp4",
        "vtt" => "text/vtt; charset=utf-8",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// A derived file: `rest` is what follows `{id}/` in the URL, a signature first if the URL is
/// signed (`~{expiry}.{mac}/`), which is then the only credential checked.
pub(crate) async fn file(
    app: &App,
    caller: &Caller,
    method: &Method,
    req: &HeaderMap,
    id: &UploadId,
    rest: &str,
) -> Result<Response<Body>, Error> {
    let (rest, signed_until) = match rest.split_once('/') {
        Some((sig, file)) if sig.starts_with('~') => {
            let signer = app.signer.as_ref().ok_or(Error::MediaNotFound)?;
            let until = signer
                .verify(id.as_str(), sig, app.uploads.clock.now())
                .map_err(Error::Signature)?;
            (file, Some(until))
        }
        _ => (rest, None),
    };
    let public = app.config.access.media_access == crate::config::MediaAccess::Public;
    if signed_until.is_none() && !public && !caller.sees_all {
        let record = app.uploads.meta.media(id).await?;
        if !caller.may_see(record.as_ref().and_then(|r| r.owner.as_ref())) {
            return Err(Error::MediaNotFound);
        }
    }
    let key = MediaKey::parse(id.as_str())
        .and_then(|k| k.join(rest))
        .ok_or(Error::MediaNotFound)?;
    let size = app
        .uploads
        .storage
        .media_size(&key)
        .await?
        .ok_or(Error::MediaNotFound)?;
    let range = crate::http::tus::get::requested_range(req, size)?;
    let span = range.clone().unwrap_or(0..size);
    let body: Body = if *method == Method::HEAD {
        full(String::new())
    } else {
        let stream = app.uploads.storage.read_media(&key, span.clone()).await?;
        StreamBody::new(stream.map_ok(Frame::data)).boxed_unsync()
    };
    let mut resp = Response::new(body);
    let hs = resp.headers_mut();
    hs.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(rest)),
    );
    // A version's files are written once and never change: caches may keep them for ever,
    // shared caches only when no credential was needed to read them, and a signed URL's only
    // until it expires.
    let cache = match signed_until {
        Some(until) => {
            let left = until
                .duration_since(app.uploads.clock.now())
                .map_or(0, |d| d.as_secs());
            HeaderValue::from_str(&format!("public, max-age={left}, immutable")).expect("digits")
        }
        None if public => HeaderValue::from_static("public, max-age=31536000, immutable"),
        None => HeaderValue::from_static("private, max-age=31536000, immutable"),
    };
    hs.insert(header::CACHE_CONTROL, cache);
    crate::http::tus::get::ranged(&mut resp, &span, size, range.is_some());
    Ok(resp)
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_types() {
        assert_eq!(
            super::content_type("r0/index.m3u8"),
            "application/vnd.apple.mpegurl"
        );
        assert_eq!(super::content_type("r0/seg00001.ts"), "video/mp2t");
        assert_eq!(super::content_type("poster.jpg"), "image/jpeg");
        assert_eq!(super::content_type("x.bin"), "application/octet-stream");
    }
}
