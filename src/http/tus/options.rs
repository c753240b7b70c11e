//! OPTIONS: server discovery (and, with the CORS headers added on the way out, preflights).
//! Answers 200 rather than 204, as tusd does, because some browsers reject a 204 preflight.

use http::{HeaderValue, Response, StatusCode};

use super::checksum;
use crate::app::App;
use crate::http::body::{Body, empty};
use crate::http::headers as h;

pub(crate) fn handle(app: &App) -> Response<Body> {
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::OK;
    let hs = resp.headers_mut();
    hs.insert(h::TUS_VERSION, HeaderValue::from_static(h::VERSION));
    hs.insert(h::TUS_EXTENSION, HeaderValue::from_static(extensions(app)));
    hs.insert(
        h::TUS_CHECKSUM_ALGORITHM,
        HeaderValue::from_static(checksum::ALGORITHMS),
    );
    if let Some(max) = app.config.max_size {
        hs.insert(h::TUS_MAX_SIZE, h::number(max));
    }
    resp
}

/// The extensions every storage backend supports; `expiration` only when uploads expire.
fn extensions(app: &App) -> &'static str {
    const ALWAYS: &str = "creation,creation-with-upload,creation-defer-length,termination,\
        checksum,checksum-trailer,concatenation,concatenation-unfinished";
    const WITH_EXPIRY: &str = "creation,creation-with-upload,creation-defer-length,termination,\
        checksum,checksum-trailer,concatenation,concatenation-unfinished,expiration";
    if app.config.expire_after.is_some() {
        WITH_EXPIRY
    } else {
        ALWAYS
    }
}
