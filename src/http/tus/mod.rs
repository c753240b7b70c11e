//! The tus protocol: one handler per request kind (one file each), called by `http::handle`
//! for its routes, and the pieces every handler shares: loading an upload, completing it, its
//! headers, its URL and expiry.

use std::time::SystemTime;

use http::request::Parts;
use http::{HeaderMap, HeaderValue, header};
use hyper::body::Incoming;

use crate::app::App;
use crate::domain::upload::{Upload, UploadId};
use crate::http::body::{BodyReader, Read};
use crate::http::error::Error;
use crate::http::headers as h;

pub mod checksum;
pub(crate) mod concat;
pub(crate) mod create;
pub(crate) mod delete;
mod events;
pub(crate) mod get;
pub(crate) mod head;
mod ingest;
pub(crate) mod options;
pub(crate) mod patch;

/// Loads an upload a client names: 404 if unknown, 410 if it expired.
async fn load(app: &App, id: &UploadId) -> Result<Upload, Error> {
    let upload = app.meta.get(id).await?.ok_or(Error::NotFound)?;
    if upload.is_expired_at(app.config.clock.now()) {
        return Err(Error::Expired);
    }
    Ok(upload)
}

/// Everything that follows an upload's completion, once its final offset (or a length equal to
/// its offset) is recorded: storage assembles the finished object, then the pre-finish hook
/// may shape the response. The one place every way of completing an upload (PATCH, creation
/// with or without data, concatenation) goes through.
async fn completed(app: &App, req: &Parts, upload: &Upload) -> Result<events::Shaped, Error> {
    debug_assert!(upload.is_complete());
    app.storage.finish(&upload.id, upload.offset).await?;
    tracing::info!(id = %upload.id, length = upload.offset, "upload finished");
    app.metrics.uploads_finished.inc();
    let shaped = events::pre_finish(app, req, upload).await;
    // The upload is finished whatever the pre-finish hook did: post-finish goes out.
    events::release(app, &upload.id).await?;
    concat::partial_changed(app, upload);
    shaped
}

/// Whether a body not declared as upload data is empty. A body of unknown length (chunked) is
/// read to its end to find out.
async fn body_is_empty(app: &App, body: Incoming) -> Result<bool, Error> {
    if http_body::Body::is_end_stream(&body) || http_body::Body::size_hint(&body).exact() == Some(0)
    {
        return Ok(true);
    }
    if http_body::Body::size_hint(&body).lower() > 0 {
        return Ok(false);
    }
    let mut reader = BodyReader::new(body, app.config.read_timeout, app.shutdown.child_token());
    match reader.next().await {
        Read::End(_) => Ok(true),
        Read::Data(_) => Ok(false),
        Read::TimedOut => Err(Error::ReadTimeout),
        Read::Lost => Err(Error::ConnectionLost),
        Read::Cancelled => Err(Error::ShuttingDown),
    }
}

/// When an unfinished upload touched now would expire.
fn expiry(app: &App, upload_complete: bool) -> Option<SystemTime> {
    if upload_complete {
        return None;
    }
    app.config.expire_after.map(|d| app.config.clock.now() + d)
}

/// Upload-Expires, if the upload is going to expire.
fn put_expires(upload: &Upload, out: &mut HeaderMap) {
    if let Some(t) = upload.expires_at.filter(|_| !upload.is_complete()) {
        out.insert(h::UPLOAD_EXPIRES, h::http_date(t));
    }
}

/// The URL of an upload: absolute when the request names a valid host, else relative.
fn upload_url(app: &App, req: &HeaderMap, uri: &http::Uri, id: &UploadId) -> HeaderValue {
    let url = absolute_url(app, req, uri, &format!("{}{}", app.config.base_path, id));
    HeaderValue::from_str(&url).expect("an URL of validated parts is a valid header")
}

/// `path` on this server: absolute (scheme and host, from the request or, behind a proxy, its
/// forwarding headers) when the request names a valid host, else `path` alone.
pub(crate) fn absolute_url(app: &App, req: &HeaderMap, uri: &http::Uri, path: &str) -> String {
    let mut scheme = uri.scheme_str().unwrap_or("http").to_owned();
    let mut host = req
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()));
    if app.config.behind_proxy {
        let first = |name: &str| {
            req.get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(|v| v.trim().to_owned())
        };
        if let Some(h) = first("x-forwarded-host") {
            host = Some(h);
        }
        if let Some(p) = first("x-forwarded-proto") {
            scheme = p;
        }
        if let Some(fwd) = first("forwarded") {
            for pair in fwd.split(';') {
                if let Some((k, v)) = pair.trim().split_once('=') {
                    let v = v.trim_matches('"');
                    match k.trim().to_ascii_lowercase().as_str() {
                        "host" => host = Some(v.to_owned()),
                        "proto" => scheme = v.to_ascii_lowercase(),
                        _ => {}
                    }
                }
            }
        }
    }
    let valid_host = host.filter(|h| {
        h.parse::<http::uri::Authority>()
            .is_ok_and(|a| !a.as_str().contains('@'))
    });
    match valid_host {
        Some(host) if scheme == "http" || scheme == "https" => format!("{scheme}://{host}{path}"),
        _ => path.to_owned(),
    }
}
