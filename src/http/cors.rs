//! CORS for browser clients (tus-js-client, Uppy): which origins may call, preflight answers,
//! and the headers a script may read from responses.

use http::{HeaderMap, HeaderValue, Method, header};
use regex::Regex;

const ALLOW_METHODS: &str = "POST, HEAD, PATCH, OPTIONS, GET, DELETE";
const ALLOW_HEADERS: &str = "Authorization, Origin, X-Requested-With, X-Request-ID, \
    X-HTTP-Method-Override, Content-Type, Upload-Length, Upload-Offset, Tus-Resumable, \
    Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum, Upload-Complete, \
    Upload-Draft-Interop-Version, Range";
const EXPOSE_HEADERS: &str = "Upload-Offset, Location, Upload-Length, Tus-Version, \
    Tus-Resumable, Tus-Max-Size, Tus-Extension, Tus-Checksum-Algorithm, Upload-Metadata, \
    Upload-Defer-Length, Upload-Concat, Upload-Expires, Upload-Complete, \
    Upload-Draft-Interop-Version, Content-Range, Content-Disposition, X-Request-Id";
const MAX_AGE: &str = "86400";

/// The CORS policy, from configuration.
#[derive(Clone, Debug)]
pub struct Cors {
    /// `None` allows every origin (echoing it back); otherwise an anchored pattern.
    pub allow_origin: Option<Regex>,
    pub allow_credentials: bool,
}

impl Cors {
    /// Whether a request from `origin` may proceed.
    pub fn allows(&self, origin: &str) -> bool {
        self.allow_origin
            .as_ref()
            .is_none_or(|re| re.is_match(origin))
    }

    /// Adds the CORS headers for a request carrying an allowed `Origin`.
    pub fn decorate(
        &self,
        origin: &HeaderValue,
        method: &Method,
        preflight: bool,
        out: &mut HeaderMap,
    ) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        out.append(header::VARY, HeaderValue::from_static("Origin"));
        if self.allow_credentials {
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
}

/// Whether an OPTIONS request is a CORS preflight rather than tus discovery.
pub fn is_preflight(h: &HeaderMap) -> bool {
    h.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_origin_by_default() {
        let c = Cors {
            allow_origin: None,
            allow_credentials: false,
        };
        assert!(c.allows("https://anything.example"));
    }

    #[test]
    fn pattern_is_anchored_by_config() {
        let c = Cors {
            allow_origin: Some(Regex::new("^(?:https://app\\.example)$").unwrap()),
            allow_credentials: true,
        };
        assert!(c.allows("https://app.example"));
        assert!(!c.allows("https://app.example.evil.test"));
    }

    #[test]
    fn preflight_and_actual_headers() {
        let c = Cors {
            allow_origin: None,
            allow_credentials: false,
        };
        let origin = HeaderValue::from_static("https://a.example");
        let mut h = HeaderMap::new();
        c.decorate(&origin, &Method::OPTIONS, true, &mut h);
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
        c.decorate(&origin, &Method::PATCH, false, &mut h);
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
