//! Routing: (method, path) → `Route`, before any handler runs. Pure and unit-tested.

use http::Method;

use crate::domain::upload::UploadId;
use crate::http::error::Error;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// OPTIONS on the collection or an upload: discovery and CORS preflights.
    Options,
    /// POST on the collection.
    Create,
    Head(UploadId),
    Patch(UploadId),
    Delete(UploadId),
    /// GET on an upload: download.
    Get(UploadId),
    /// GET under the media path: an upload's media status.
    MediaStatus(UploadId),
    /// GET or HEAD under the media path: a derived file (what follows the id).
    MediaFile(UploadId, String),
    /// GET or HEAD `/healthz`: the process serves.
    Health,
    /// GET or HEAD `/readyz`: the stores answer and the workers live.
    Ready,
    /// GET `/metrics`: Prometheus metrics (when served on this listener).
    Metrics,
    /// GET on the list path: the caller's uploads.
    List,
}

const COLLECTION_METHODS: &str = "OPTIONS, POST";
const UPLOAD_METHODS: &str = "OPTIONS, HEAD, PATCH, DELETE, GET";

const MEDIA_METHODS: &str = "OPTIONS, GET, HEAD";

const PROBE_METHODS: &str = "GET, HEAD";

const LIST_METHODS: &str = "OPTIONS, GET";

/// Where the routes live: `base` and `media` (if media is on) start and end with `/`; `list`
/// starts with `/` and has no trailing one.
#[derive(Debug, Clone, Copy)]
pub struct Paths<'a> {
    pub base: &'a str,
    pub media: Option<&'a str>,
    pub list: &'a str,
}

/// Routes a request.
pub fn route(method: &Method, path: &str, paths: Paths<'_>) -> Result<Route, Error> {
    let (base_path, media_path) = (paths.base, paths.media);
    if path == "/metrics" {
        return match *method {
            Method::GET | Method::HEAD => Ok(Route::Metrics),
            _ => Err(Error::MethodNotAllowed(PROBE_METHODS)),
        };
    }
    if let probe @ ("/healthz" | "/readyz") = path {
        return match *method {
            Method::GET | Method::HEAD if probe == "/healthz" => Ok(Route::Health),
            Method::GET | Method::HEAD => Ok(Route::Ready),
            _ => Err(Error::MethodNotAllowed(PROBE_METHODS)),
        };
    }
    if path == paths.list || path.strip_suffix('/') == Some(paths.list) {
        return match *method {
            Method::GET => Ok(Route::List),
            Method::OPTIONS => Ok(Route::Options),
            _ => Err(Error::MethodNotAllowed(LIST_METHODS)),
        };
    }
    if let Some(rest) = media_path.and_then(|m| path.strip_prefix(m)) {
        return media(method, rest);
    }
    let collection = base_path.trim_end_matches('/');
    if path == base_path || path == collection {
        return match *method {
            Method::OPTIONS => Ok(Route::Options),
            Method::POST => Ok(Route::Create),
            _ => Err(Error::MethodNotAllowed(COLLECTION_METHODS)),
        };
    }
    let Some(rest) = path.strip_prefix(base_path) else {
        return Err(Error::RouteNotFound);
    };
    let Some(id) = UploadId::parse(rest) else {
        // Anything under the base path that is not a well-formed id cannot name an upload.
        return Err(if *method == Method::OPTIONS {
            Error::RouteNotFound
        } else {
            Error::NotFound
        });
    };
    match *method {
        Method::OPTIONS => Ok(Route::Options),
        Method::HEAD => Ok(Route::Head(id)),
        Method::PATCH => Ok(Route::Patch(id)),
        Method::DELETE => Ok(Route::Delete(id)),
        Method::GET => Ok(Route::Get(id)),
        _ => Err(Error::MethodNotAllowed(UPLOAD_METHODS)),
    }
}

/// `{id}` or `{id}/{file...}` under the media path.
fn media(method: &Method, rest: &str) -> Result<Route, Error> {
    let (id, file) = match rest.split_once('/') {
        Some((id, file)) => (id, Some(file)),
        None => (rest, None),
    };
    let id = UploadId::parse(id).ok_or(Error::MediaNotFound)?;
    match (method, file) {
        (&Method::OPTIONS, _) => Ok(Route::Options),
        (&Method::GET, None) => Ok(Route::MediaStatus(id)),
        (&Method::GET | &Method::HEAD, Some(f)) if !f.is_empty() => {
            // A signature's `~` as a client or proxy may have escaped it.
            let f = match f.get(..3) {
                Some(p) if p.eq_ignore_ascii_case("%7e") => format!("~{}", &f[3..]),
                _ => f.to_owned(),
            };
            Ok(Route::MediaFile(id, f))
        }
        (&Method::GET | &Method::HEAD, _) => Err(Error::MediaNotFound),
        _ => Err(Error::MethodNotAllowed(MEDIA_METHODS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn paths(base: &str, media: Option<&'static str>) -> Paths<'static> {
        Paths {
            base: Box::leak(base.to_owned().into_boxed_str()),
            media,
            list: "/uploads",
        }
    }

    fn r(m: Method, p: &str) -> Result<Route, Error> {
        route(&m, p, paths("/files/", Some("/media/")))
    }

    #[test]
    fn the_list_route() {
        assert_eq!(r(Method::GET, "/uploads").unwrap(), Route::List);
        assert_eq!(r(Method::GET, "/uploads/").unwrap(), Route::List);
        assert!(matches!(
            r(Method::POST, "/uploads"),
            Err(Error::MethodNotAllowed(_))
        ));
        // It comes before ids, even under a root base path.
        assert_eq!(
            route(&Method::GET, "/uploads", paths("/", None)).unwrap(),
            Route::List
        );
    }

    #[test]
    fn collection_routes() {
        assert_eq!(r(Method::POST, "/files/").unwrap(), Route::Create);
        assert_eq!(r(Method::POST, "/files").unwrap(), Route::Create);
        assert_eq!(r(Method::OPTIONS, "/files/").unwrap(), Route::Options);
        assert!(matches!(
            r(Method::GET, "/files/"),
            Err(Error::MethodNotAllowed(_))
        ));
    }

    #[test]
    fn probe_routes_come_first_even_under_a_root_base_path() {
        assert_eq!(r(Method::GET, "/healthz").unwrap(), Route::Health);
        assert_eq!(r(Method::HEAD, "/readyz").unwrap(), Route::Ready);
        assert!(matches!(
            route(&Method::GET, "/readyz", paths("/", None)).unwrap(),
            Route::Ready
        ));
        assert!(matches!(
            r(Method::POST, "/healthz"),
            Err(Error::MethodNotAllowed(_))
        ));
        assert!(r(Method::GET, "/healthz/x").is_err());
    }

    #[test]
    fn upload_routes() {
        let p = format!("/files/{ID}");
        let id = UploadId::parse(ID).unwrap();
        assert_eq!(r(Method::HEAD, &p).unwrap(), Route::Head(id.clone()));
        assert_eq!(r(Method::PATCH, &p).unwrap(), Route::Patch(id.clone()));
        assert_eq!(r(Method::DELETE, &p).unwrap(), Route::Delete(id.clone()));
        assert_eq!(r(Method::GET, &p).unwrap(), Route::Get(id));
        assert!(matches!(
            r(Method::PUT, &p),
            Err(Error::MethodNotAllowed(_))
        ));
    }

    #[test]
    fn bad_ids_and_other_paths_are_not_found() {
        for p in [
            "/files/../etc/passwd",
            "/files/a/b",
            "/files/%2e%2e",
            "/files/a.b",
        ] {
            assert!(matches!(r(Method::HEAD, p), Err(Error::NotFound)), "{p}");
        }
        assert!(matches!(
            r(Method::GET, "/other"),
            Err(Error::RouteNotFound)
        ));
        assert!(matches!(r(Method::POST, "/"), Err(Error::RouteNotFound)));
    }

    #[test]
    fn media_routes() {
        let id = UploadId::parse(ID).unwrap();
        assert_eq!(
            r(Method::GET, &format!("/media/{ID}")).unwrap(),
            Route::MediaStatus(id.clone())
        );
        assert_eq!(
            r(Method::HEAD, &format!("/media/{ID}/v1/master.m3u8")).unwrap(),
            Route::MediaFile(id, "v1/master.m3u8".into())
        );
        assert_eq!(
            r(Method::GET, &format!("/media/{ID}/%7E1.sig/v1/master.m3u8")).unwrap(),
            Route::MediaFile(UploadId::parse(ID).unwrap(), "~1.sig/v1/master.m3u8".into())
        );
        assert!(matches!(
            r(Method::GET, "/media/a.b"),
            Err(Error::MediaNotFound)
        ));
        assert!(matches!(
            r(Method::DELETE, &format!("/media/{ID}")),
            Err(Error::MethodNotAllowed(_))
        ));
        // Media off: the path is nobody's.
        assert!(matches!(
            route(
                &Method::GET,
                &format!("/media/{ID}"),
                paths("/files/", None)
            ),
            Err(Error::RouteNotFound)
        ));
    }
}
