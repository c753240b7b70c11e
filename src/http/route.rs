//! Routing: (method, path) → `Route`, before any handler runs. Pure and unit-tested.

use http::Method;

use crate::error::Error;
use crate::upload::UploadId;

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
}

const COLLECTION_METHODS: &str = "OPTIONS, POST";
const UPLOAD_METHODS: &str = "OPTIONS, HEAD, PATCH, DELETE, GET";

/// Routes a request. `base_path` starts and ends with `/`.
pub fn route(method: &Method, path: &str, base_path: &str) -> Result<Route, Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn r(m: Method, p: &str) -> Result<Route, Error> {
        route(&m, p, "/files/")
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
}
