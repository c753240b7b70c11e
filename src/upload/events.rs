//! The core's side of hooks: events built from the request and the upload, and what pre-*
//! answers do to an operation. pre-create may reject the upload, choose its id or replace its
//! metadata (checked like a client's); pre-finish may shape the answer of the request that
//! finished the upload; pre-terminate may reject a termination. post-* events are written to the
//! outbox with the change that causes them; the held ones (post-finish, post-terminate) and the
//! media job are let go by `release` once the operation's remaining work is done.

use http::request::Parts;
use http::{HeaderMap, HeaderName, StatusCode};

use super::{UploadError, Uploads};
use crate::domain::event::{Effects, OutboxEvent};
use crate::domain::upload::{Concat, Metadata, Upload, UploadId};
use crate::hooks::{FileInfo, HookError, HookEvent, HookRequest, HookType, HttpRequestInfo};

/// What a hook set for the response of a request that went ahead.
#[derive(Debug, Default)]
pub struct Shaped {
    pub status: Option<StatusCode>,
    pub headers: HeaderMap,
    pub body: Option<String>,
}

impl Uploads {
    /// What a change that leaves the upload as `after` causes: `events`, and its media job if
    /// the change finishes an upload the pipeline processes.
    pub(crate) fn effects(&self, events: Vec<OutboxEvent>, after: &Upload) -> Effects {
        Effects {
            events,
            media_job: self.wants_media(after),
        }
    }

    /// Whether `upload` goes to the media pipeline now: it is finished, the pipeline is on, and
    /// it is not a partial upload of a concatenation (its final upload is the media).
    fn wants_media(&self, upload: &Upload) -> bool {
        self.media_jobs && upload.is_complete() && upload.concat != Concat::Partial
    }

    /// The event a hook receives about `upload`, caused by the request `req`, without the headers
    /// in `redact`.
    fn event(&self, req: &Parts, upload: &Upload, redact: &[HeaderName]) -> HookEvent {
        let remote = req
            .extensions
            .get::<crate::hooks::RemoteAddr>()
            .map(|a| a.0.to_string())
            .unwrap_or_default();
        HookEvent {
            upload: FileInfo::of(upload, self.storage.location(&upload.id)),
            http_request: HttpRequestInfo::of(&req.method, &req.uri, &req.headers, &remote, redact),
            media: None,
        }
    }

    /// The post-* events of `kinds` about `upload` (as it is after the change) for the outbox,
    /// those that are hooked, without credentials (they are stored). post-finish and
    /// post-terminate are held until the request's remaining work (the finished object, the
    /// pre-finish hook, deleting storage) is done: see `release`.
    pub(crate) fn post(
        &self,
        kinds: &[HookType],
        req: &Parts,
        upload: &Upload,
    ) -> Vec<OutboxEvent> {
        let redact = self.hooks.config().map_or(&[][..], |c| &c.redact[..]);
        kinds
            .iter()
            .filter(|&&kind| self.hooks.is_enabled(kind))
            .filter_map(|&kind| {
                let request = HookRequest {
                    kind,
                    event: self.event(req, upload, redact),
                };
                request.to_outbox(&upload.id)
            })
            .collect()
    }

    /// The events of a new upload: post-create, and post-finish if it is complete already (an
    /// empty upload).
    pub(crate) fn created(&self, req: &Parts, upload: &Upload) -> Vec<OutboxEvent> {
        let kinds: &[HookType] = match upload.is_complete() {
            true => &[HookType::PostCreate, HookType::PostFinish],
            false => &[HookType::PostCreate],
        };
        self.post(kinds, req, upload)
    }

    /// Lets the held events (and the media job) of `id` go out.
    pub(crate) async fn release(&self, id: &UploadId) -> Result<(), UploadError> {
        if self.hooks.config().is_some() || self.media_jobs {
            self.meta.release_events(Some(id)).await?;
            self.hooks.wake();
            self.media_wake.notify_one();
        }
        Ok(())
    }

    async fn ask(
        &self,
        kind: HookType,
        req: &Parts,
        upload: &Upload,
    ) -> Result<crate::hooks::HookResponse, UploadError> {
        // pre-* hooks run in memory and see every header (a token check needs Authorization).
        let request = HookRequest {
            kind,
            event: self.event(req, upload, &[]),
        };
        self.hooks
            .invoke(&request)
            .await
            .map_err(UploadError::HookFailed)
    }

    /// pre-create: runs before anything is stored. Returns headers for the 201 response.
    pub(crate) async fn pre_create(
        &self,
        req: &Parts,
        upload: &mut Upload,
    ) -> Result<HeaderMap, UploadError> {
        const HOOK: &str = "pre-create";
        if !self.hooks.is_enabled(HookType::PreCreate) {
            return Ok(HeaderMap::new());
        }
        let answer = self.ask(HookType::PreCreate, req, upload).await?;
        let (status, headers, body) = answer
            .http_response
            .validated(HOOK)
            .map_err(UploadError::HookFailed)?;
        if answer.reject_upload {
            tracing::info!(id = %upload.id, "upload rejected by the pre-create hook");
            return Err(UploadError::rejected(HOOK, (status, headers, body)));
        }
        let garbage = |what: String| UploadError::HookFailed(HookError::Garbage(HOOK, what));
        let changes = answer.change_file_info;
        if !changes.id.is_empty() {
            let id = UploadId::parse(&changes.id).ok_or_else(|| {
                garbage(format!(
                    "ID {:?} is not 1-128 letters, digits, '-' or '_'",
                    changes.id
                ))
            })?;
            if self.meta.get(&id).await?.is_some() {
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
    pub(crate) async fn pre_finish(
        &self,
        req: &Parts,
        upload: &Upload,
    ) -> Result<Shaped, UploadError> {
        if !self.hooks.is_enabled(HookType::PreFinish) {
            return Ok(Shaped::default());
        }
        let answer = self.ask(HookType::PreFinish, req, upload).await?;
        let (status, headers, body) = answer
            .http_response
            .validated("pre-finish")
            .map_err(UploadError::HookFailed)?;
        Ok(Shaped {
            status,
            headers,
            body: (!body.is_empty()).then_some(body),
        })
    }

    /// pre-terminate: runs before a DELETE removes anything, and may refuse it.
    pub(crate) async fn pre_terminate(
        &self,
        req: &Parts,
        upload: &Upload,
    ) -> Result<(), UploadError> {
        const HOOK: &str = "pre-terminate";
        if !self.hooks.is_enabled(HookType::PreTerminate) {
            return Ok(());
        }
        let answer = self.ask(HookType::PreTerminate, req, upload).await?;
        let shaped = answer
            .http_response
            .validated(HOOK)
            .map_err(UploadError::HookFailed)?;
        if answer.reject_termination {
            tracing::info!(id = %upload.id, "termination rejected by the pre-terminate hook");
            return Err(UploadError::rejected(HOOK, shaped));
        }
        Ok(())
    }
}
