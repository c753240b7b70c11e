//! CORS for browser clients (tus-js-client, Uppy): applies the policy from configuration
//! (`config::Cors`: which origins may call) to preflight answers and to the headers a script
//! may read from responses.

use http::{HeaderMap, HeaderValue, Method, header};

use crate::config::Cors;

const ALLOW_METHODS: &str = "POST, HEAD, PATCH, OPTIONS, GET, DELETE";
const ALLOW_HEADERS: &str = "Authorization, Origin, X-Requested-With, X-Request-ID, \
    X-HTTP-Method-Override, Content-Type, Upload-Length, Upload-Offset, Tus-Resumable, \
    Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum, Upload-Complete, \
    Upload-Draft-Interop-Version, Range";
const EXPOSE_HEADERS: &str = "Upload-Offset, Location, Upload-Length, Tus-Version, \
    Tus-Resumable, Tus-Max-Size, Tus-Extension, Tus-Checksum-Algorithm, Upload-Metadata, \
    Upload-Defer-Length, Upload-Concat, Upload-Expires, Upload-Complete, \
    Upload-Draft-Interop-Version, Content-Range, Content-Disposition, X-Request-Id, \
    WWW-Authenticate, Retry-After";
const MAX_AGE: &str = "86400";

/// Adds the CORS headers of `cors` for a request carrying an allowed `Origin`.
pub fn decorate(
    cors: &Cors,
    origin: &HeaderValue,
    method: &Method,
    preflight: bool,
    out: &mut HeaderMap,
) {
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    out.append(header::VARY, HeaderValue::from_static("Origin"));
    if cors.allow_credentials {
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if preflight && *method == Method::OPTIONS {
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        out.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE),
        );
    } else {
        out.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
}

/// Whether an OPTIONS request is a CORS preflight rather than tus discovery.
pub fn is_preflight(h: &HeaderMap) -> bool {
    h.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_and_actual_headers() {
        let c = Cors {
            allow_origin: None,
            allow_credentials: false,
        };
        let origin = HeaderValue::from_static("https://a.example");
        let mut h = HeaderMap::new();
        decorate(&c, &origin, &Method::OPTIONS, true, &mut h);
        assert!(
            h[header::ACCESS_CONTROL_ALLOW_METHODS]
                .to_str()
                .unwrap()
                .contains("PATCH")
        );
        assert!(
            h[header::ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap()
                .contains("Upload-Offset")
        );
        let mut h = HeaderMap::new();
        decorate(&c, &origin, &Method::PATCH, false, &mut h);
        let expose = h[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap();
        for needed in [
            "Location",
            "Upload-Offset",
            "Upload-Length",
            "Tus-Resumable",
        ] {
            assert!(expose.contains(needed), "{needed}");
        }
        assert_eq!(h[header::VARY], "Origin");
    }
}
