//! The tus 1.0 front door: one handler per request kind (one file each), called by
//! `http::handle` for its routes. Each parses tus headers, calls the upload core
//! (`upload::Uploads`) and writes the tus answer; the pieces they share are here (the body as
//! the core reads it, an upload's URL and expiry header, a hook's shaping of the answer).

use http::{HeaderMap, HeaderValue, header};
use hyper::body::Incoming;

use crate::app::App;
use crate::domain::upload::{Upload, UploadId};
use crate::http::body::{Body, BodyReader};
use crate::http::error::Error;
use crate::http::headers as h;
use crate::upload::{ByteSource, Shaped};

pub mod checksum;
pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod get;
pub(crate) mod head;
pub(crate) mod options;
pub(crate) mod patch;

/// Whether a body not declared as upload data is empty. A body of unknown length (chunked) is
/// read until its first piece to find out.
async fn body_is_empty(app: &App, body: Incoming) -> Result<bool, Error> {
    let mut reader = BodyReader::new(
        body,
        app.config.read_timeout,
        Some(app.uploads.shutdown.child_token()),
    );
    Ok(reader.is_empty().await?)
}

/// The body of a request as the upload core reads it: with the read timeout, and stopped by
/// the core itself when the upload's holder is asked to let go.
fn data(app: &App, body: Incoming) -> Box<dyn ByteSource> {
    Box::new(BodyReader::new(body, app.config.read_timeout, None))
}

/// What a hook set for the answer of a request that went ahead, applied to it.
fn apply(shaped: Shaped, resp: &mut http::Response<Body>) {
    if let Some(s) = shaped.status {
        *resp.status_mut() = s;
    }
    for (k, v) in shaped.headers {
        if let Some(k) = k {
            resp.headers_mut().insert(k, v);
        }
    }
    if let Some(body) = shaped.body {
        *resp.body_mut() = crate::http::body::full(body);
    }
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

/// `path` on this server: absolute (https with `--tls-cert`, else http, and the request's
/// host; behind a proxy, its forwarding headers) when the request names a valid host, else `path` alone.
pub(crate) fn absolute_url(app: &App, req: &HeaderMap, uri: &http::Uri, path: &str) -> String {
    // What this listener speaks (not the client's `:scheme`, which an h2c client could set to
    // anything); behind a proxy, the proxy's headers say.
    let mut scheme = if app.config.tls.is_some() {
        "https"
    } else {
        "http"
    }
    .to_owned();
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
