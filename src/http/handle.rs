//! The edge of every request: `X-HTTP-Method-Override`, the CORS origin check, routing, the
//! headers every response carries, the access line, and the one place an error becomes a
//! response. Routes are
//! dispatched here to their handlers (the tus protocol's in `tus`; media, metrics and health
//! join them).

use http::{HeaderValue, Method, Request, Response, header};
use hyper::body::Incoming;

use std::time::Instant;

use super::access;
use super::body::Body;
use super::error::Error;
use super::headers::{self as h, check_tus_resumable};
use super::route::{Paths, Route, route};
use super::tus;
use crate::app::App;
use crate::auth::{Access, AuthError};
use crate::config::MediaAccess;
use crate::domain::access::{Caller, Owner};

/// Handles one request end to end; never fails (errors become responses here). Logs one access
/// line for it.
pub async fn handle(app: App, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let request_id = access::request_id(req.headers());
    let method = req.method().clone();
    let version = req.version();
    let mut seen = Seen::default();
    let (mut resp, bytes_in) = access::counting(respond(&app, req, &mut seen)).await;
    if seen.upload.is_none() && seen.kind == Some("create") {
        // The new upload's id, from the Location this server made.
        seen.upload = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .map(str::to_owned);
    }
    let bytes_out = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .or_else(|| http_body::Body::size_hint(resp.body()).exact())
        .unwrap_or(0);
    tracing::info!(
        target: "tuskd::access",
        method = %seen.method.as_ref().unwrap_or(&method),
        route = seen.kind.unwrap_or("none"),
        version = ?version,
        status = resp.status().as_u16(),
        bytes_in,
        bytes_out,
        ms = (started.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
        upload = seen.upload.as_deref().unwrap_or("-"),
        request_id = request_id.to_str().unwrap_or("-"),
        "request"
    );
    let method = seen.method.as_ref().unwrap_or(&method);
    app.metrics.request(
        // Only the methods tus knows: a made-up one must not grow the label set.
        match *method {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::POST => "POST",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::OPTIONS => "OPTIONS",
            _ => "other",
        },
        seen.kind.unwrap_or("none"),
        resp.status().as_u16(),
        seen.error,
        bytes_in,
        started.elapsed(),
    );
    resp.headers_mut().insert(access::REQUEST_ID, request_id);
    resp
}

/// What routing found, for the access line.
#[derive(Default)]
struct Seen {
    method: Option<Method>,
    kind: Option<&'static str>,
    upload: Option<String>,
    /// The tus error code, when the request failed.
    error: Option<&'static str>,
}

async fn respond(app: &App, req: Request<Incoming>, seen: &mut Seen) -> Response<Body> {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let method = match h::method_override(req.headers()) {
        Ok(m) => m.unwrap_or_else(|| req.method().clone()),
        Err(e) => {
            seen.error = Some(e.code());
            return finish(app, e.into_response(), None, req.method(), false);
        }
    };
    seen.method = Some(method.clone());
    let preflight = method == Method::OPTIONS && super::cors::is_preflight(req.headers());
    let origin = match origin {
        Some(o) if !o.to_str().is_ok_and(|s| app.config.cors.allows(s)) => {
            seen.error = Some(Error::OriginNotAllowed.code());
            return finish(
                app,
                Error::OriginNotAllowed.into_response(),
                None,
                &method,
                preflight,
            );
        }
        o => o,
    };
    let has_body = !http_body::Body::is_end_stream(req.body());
    let resp = match dispatch(app, req, &method, seen).await {
        Ok(r) => r,
        Err(e) => {
            seen.error = Some(e.code());
            if let Error::StorageFull { reason, .. } = &e {
                app.metrics
                    .storage_full
                    .get_or_create(&crate::metrics::ReasonLabels { reason })
                    .inc();
            }
            let mut r = e.into_response();
            // The body may be unread or cut short (a timeout, a takeover, shutdown): the
            // connection cannot carry another request.
            if has_body {
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            r
        }
    };
    finish(app, resp, origin.as_ref(), &method, preflight)
}

/// Headers every response carries.
fn finish(
    app: &App,
    mut resp: Response<Body>,
    origin: Option<&HeaderValue>,
    method: &Method,
    preflight: bool,
) -> Response<Body> {
    let hs = resp.headers_mut();
    hs.insert(h::TUS_RESUMABLE, HeaderValue::from_static(h::VERSION));
    hs.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(origin) = origin {
        super::cors::decorate(&app.config.cors, origin, method, preflight, hs);
    }
    resp
}

/// The caller of a request, from the gate (`--auth`). Discovery, CORS preflights and the
/// probes need none; `/metrics` needs an admin when `--auth-metrics` says so. With `--auth
/// none` and quotas, each client address is an owner of its own for the quotas.
async fn gate(
    app: &App,
    route: &Route,
    req: &Request<Incoming>,
    method: &Method,
    kind: &'static str,
    upload: Option<&str>,
) -> Result<Caller, Error> {
    let open = match route {
        Route::Options | Route::Health | Route::Ready => true,
        Route::Metrics => !app.config.access.metrics_need_admin,
        // Public media, or a signed URL: the file handler checks the signature.
        Route::MediaFile(_, file) => {
            app.config.access.media_access == MediaAccess::Public || file.starts_with('~')
        }
        _ => false,
    };
    if open {
        return Ok(if app.auth.is_on() {
            Caller::nobody()
        } else {
            Caller::anyone()
        });
    }
    let remote = client_address(app, req);
    let mut caller = app
        .auth
        .check(&Access {
            method,
            route: kind,
            upload,
            uri: req.uri(),
            headers: req.headers(),
            remote,
        })
        .await
        .map_err(|e| Error::Auth(Box::new(e)))?;
    if matches!(route, Route::Metrics) && !caller.sees_all {
        return Err(Error::Auth(Box::new(AuthError::Forbidden(
            "metrics need an admin's credentials",
        ))));
    }
    if !app.auth.is_on() && !app.config.access.quota.is_unlimited() {
        caller.owner = remote.and_then(|ip| Owner::parse(&format!("addr:{ip}")));
    }
    Ok(caller)
}

/// The client's address: the connection's, or behind a proxy (`--behind-proxy`) the first
/// `X-Forwarded-For` (or `Forwarded: for=`) address the proxy passed on.
fn client_address(app: &App, req: &Request<Incoming>) -> Option<std::net::IpAddr> {
    let peer = req
        .extensions()
        .get::<crate::hooks::RemoteAddr>()
        .map(|a| a.0.ip());
    if !app.config.behind_proxy {
        return peer;
    }
    let first = |name: &str| {
        let v = req.headers().get(name)?.to_str().ok()?;
        Some(v.split(',').next()?.trim().to_owned())
    };
    let forwarded = first("x-forwarded-for").or_else(|| {
        let f = first("forwarded")?;
        let v = f.split(';').find_map(|p| p.trim().strip_prefix("for="))?;
        Some(
            v.trim_matches('"')
                .trim_start_matches('[')
                .split(']')
                .next()?
                .to_owned(),
        )
    });
    forwarded.and_then(|a| a.parse().ok()).or(peer)
}

async fn dispatch(
    app: &App,
    req: Request<Incoming>,
    method: &Method,
    seen: &mut Seen,
) -> Result<Response<Body>, Error> {
    let paths = Paths {
        base: &app.config.base_path,
        media: app.config.media.as_ref().map(|m| m.path.as_str()),
        list: &app.config.access.list_path,
    };
    let route = route(method, req.uri().path(), paths)?;
    let (kind, upload) = access::describe(&route);
    seen.kind = Some(kind);
    seen.upload = upload.map(str::to_owned);
    let caller = gate(app, &route, &req, method, kind, upload).await?;
    let _receiving = matches!(route, Route::Patch(_))
        .then(|| crate::metrics::InFlight::new(&app.metrics.patches_in_progress));
    // G4: every tus request but discovery and downloads names the protocol version.
    if !matches!(
        route,
        Route::Options
            | Route::Get(_)
            | Route::MediaStatus(_)
            | Route::MediaFile(..)
            | Route::Health
            | Route::Ready
            | Route::Metrics
            | Route::List
    ) {
        check_tus_resumable(req.headers())?;
    }
    // Handlers and hooks see the method the client meant (X-HTTP-Method-Override).
    let (mut parts, body) = req.into_parts();
    parts.method = method.clone();
    let req = Request::from_parts(parts, body);
    match route {
        Route::Options => Ok(tus::options::handle(app)),
        Route::Create => tus::create::handle(app, &caller, req).await,
        Route::Head(id) => tus::head::handle(app, &caller, &id).await,
        Route::Patch(id) => tus::patch::handle(app, &caller, req, id).await,
        Route::Delete(id) => tus::delete::handle(app, &caller, &req.into_parts().0, &id).await,
        Route::Get(id) => tus::get::handle(app, &caller, req.headers(), &id).await,
        Route::MediaStatus(id) => {
            super::media::status(app, &caller, req.headers(), req.uri(), &id).await
        }
        Route::MediaFile(id, file) => {
            super::media::file(app, &caller, method, req.headers(), &id, &file).await
        }
        Route::List => super::list::handle(app, &caller, req.headers(), req.uri()).await,
        Route::Health => Ok(super::ops::healthz()),
        Route::Ready => Ok(super::ops::readyz(app).await),
        Route::Metrics if app.config.metrics == crate::config::MetricsAt::Main => {
            Ok(super::ops::metrics(app).await)
        }
        Route::Metrics => Err(Error::RouteNotFound),
    }
}
