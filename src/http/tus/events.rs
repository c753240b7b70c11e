//! The tus side of hooks: events built from the request and the upload, and what pre-* answers
//! do to a request. pre-create may reject the upload, choose its id or replace its metadata
//! (checked like a client's); pre-finish may shape the response of the request that finished
//! the upload; pre-terminate may reject a termination. Headers a hook sets reach the client.

use http::request::Parts;
use http::{HeaderMap, HeaderName, StatusCode};

use crate::app::App;
use crate::domain::event::OutboxEvent;
use crate::domain::upload::{Metadata, Upload, UploadId};
use crate::hooks::{FileInfo, HookError, HookEvent, HookRequest, HookType, HttpRequestInfo};
use crate::http::RemoteAddr;
use crate::http::error::Error;

/// What a hook set for the response of a request that went ahead.
#[derive(Debug, Default)]
pub struct Shaped {
    pub status: Option<StatusCode>,
    pub headers: HeaderMap,
    pub body: Option<String>,
}

impl Shaped {
    pub fn apply(self, resp: &mut http::Response<crate::http::body::Body>) {
        if let Some(s) = self.status {
            *resp.status_mut() = s;
        }
        for (k, v) in self.headers {
            if let Some(k) = k {
                resp.headers_mut().insert(k, v);
            }
        }
        if let Some(body) = self.body {
            *resp.body_mut() = crate::http::body::full(body);
        }
    }
}

/// The event a hook receives about `upload`, caused by the request `req`, without the headers
/// in `redact`.
pub fn event(app: &App, req: &Parts, upload: &Upload, redact: &[HeaderName]) -> HookEvent {
    let remote = req
        .extensions
        .get::<RemoteAddr>()
        .map(|a| a.0.to_string())
        .unwrap_or_default();
    HookEvent {
        upload: FileInfo::of(upload, app.storage.location(&upload.id)),
        http_request: HttpRequestInfo::of(&req.method, &req.uri, &req.headers, &remote, redact),
        media: None,
    }
}

/// The post-* events of `kinds` about `upload` (as it is after the change) for the outbox,
/// those that are hooked, without credentials (they are stored). post-finish and post-terminate are held until the request's
/// remaining work (the finished object, the pre-finish hook, deleting storage) is done: see
/// `release`.
pub fn post(app: &App, kinds: &[HookType], req: &Parts, upload: &Upload) -> Vec<OutboxEvent> {
    let redact = app.hooks.config().map_or(&[][..], |c| &c.redact[..]);
    kinds
        .iter()
        .filter(|&&kind| app.hooks.is_enabled(kind))
        .filter_map(|&kind| {
            let request = HookRequest {
                kind,
                event: event(app, req, upload, redact),
            };
            Some(OutboxEvent {
                id: UploadId::random().to_string(),
                kind: kind.name().to_owned(),
                upload: upload.id.clone(),
                payload: serde_json::to_string(&request).ok()?,
                held: matches!(kind, HookType::PostFinish | HookType::PostTerminate),
            })
        })
        .collect()
}

/// The events of a new upload: post-create, and post-finish if it is complete already (an
/// empty upload).
pub fn created(app: &App, req: &Parts, upload: &Upload) -> Vec<OutboxEvent> {
    let kinds: &[HookType] = match upload.is_complete() {
        true => &[HookType::PostCreate, HookType::PostFinish],
        false => &[HookType::PostCreate],
    };
    post(app, kinds, req, upload)
}

/// Lets the held events (and the media job) of `id` go out.
pub async fn release(app: &App, id: &UploadId) -> Result<(), Error> {
    if app.hooks.config().is_some() || app.config.media.is_some() {
        app.meta.release_events(Some(id)).await?;
        app.hooks.wake();
        app.media_jobs.notify_one();
    }
    Ok(())
}

async fn ask(
    app: &App,
    kind: HookType,
    req: &Parts,
    upload: &Upload,
) -> Result<crate::hooks::HookResponse, Error> {
    // pre-* hooks run in memory and see every header (a token check needs Authorization).
    let request = HookRequest {
        kind,
        event: event(app, req, upload, &[]),
    };
    app.hooks.invoke(&request).await.map_err(Error::HookFailed)
}

/// pre-create: runs before anything is stored. Returns headers for the 201 response.
pub async fn pre_create(app: &App, req: &Parts, upload: &mut Upload) -> Result<HeaderMap, Error> {
    const HOOK: &str = "pre-create";
    if !app.hooks.is_enabled(HookType::PreCreate) {
        return Ok(HeaderMap::new());
    }
    let answer = ask(app, HookType::PreCreate, req, upload).await?;
    let (status, headers, body) = answer
        .http_response
        .validated(HOOK)
        .map_err(Error::HookFailed)?;
    if answer.reject_upload {
        tracing::info!(id = %upload.id, "upload rejected by the pre-create hook");
        return Err(Error::rejected(HOOK, (status, headers, body)));
    }
    let garbage = |what: String| Error::HookFailed(HookError::Garbage(HOOK, what));
    let changes = answer.change_file_info;
    if !changes.id.is_empty() {
        let id = UploadId::parse(&changes.id).ok_or_else(|| {
            garbage(format!(
                "ID {:?} is not 1-128 letters, digits, '-' or '_'",
                changes.id
            ))
        })?;
        if app.meta.get(&id).await?.is_some() {
            return Err(garbage(format!("ID {id} is already in use")));
        }
        upload.id = id;
    }
    if let Some(map) = changes.metadata {
        upload.metadata =
            Metadata::from_map(&map).map_err(|e| garbage(format!("MetaData: {e}")))?;
    }
    Ok(headers)
}

/// pre-finish: runs once the upload's last byte is stored, before the response. What it sets
/// shapes the response; a failure is a 500, but the upload stays finished.
pub async fn pre_finish(app: &App, req: &Parts, upload: &Upload) -> Result<Shaped, Error> {
    if !app.hooks.is_enabled(HookType::PreFinish) {
        return Ok(Shaped::default());
    }
    let answer = ask(app, HookType::PreFinish, req, upload).await?;
    let (status, headers, body) = answer
        .http_response
        .validated("pre-finish")
        .map_err(Error::HookFailed)?;
    Ok(Shaped {
        status,
        headers,
        body: (!body.is_empty()).then_some(body),
    })
}

/// pre-terminate: runs before a DELETE removes anything, and may refuse it.
pub async fn pre_terminate(app: &App, req: &Parts, upload: &Upload) -> Result<(), Error> {
    const HOOK: &str = "pre-terminate";
    if !app.hooks.is_enabled(HookType::PreTerminate) {
        return Ok(());
    }
    let answer = ask(app, HookType::PreTerminate, req, upload).await?;
    let shaped = answer
        .http_response
        .validated(HOOK)
        .map_err(Error::HookFailed)?;
    if answer.reject_termination {
        tracing::info!(id = %upload.id, "termination rejected by the pre-terminate hook");
        return Err(Error::rejected(HOOK, shaped));
    }
    Ok(())
}
