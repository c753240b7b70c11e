//! The media-* hook events (media-playable, media-ready, media-rejected, media-failed): the
//! upload and the status document as the record is after the change, written in the
//! transaction that records it.

use crate::domain::event::OutboxEvent;
use crate::domain::media::MediaRecord;
use crate::domain::upload::Upload;
use crate::hooks::{FileInfo, HookEvent, HookRequest, HookType, HttpRequestInfo};
use crate::media::Context;

/// The `kind` event for the record `after` (of `upload`, if it is still stored), if it is
/// hooked.
pub fn event(
    cx: &Context,
    kind: HookType,
    after: &MediaRecord,
    upload: Option<&Upload>,
) -> Vec<OutboxEvent> {
    if !cx.hooks.is_enabled(kind) {
        return Vec::new();
    }
    let id = &after.id;
    let base = &cx.config.path;
    let doc = super::status::document(id.as_str(), Some(after), &[], upload, base, None);
    let file = match upload {
        Some(u) => FileInfo::of(u, cx.storage.location(&u.id)),
        None => FileInfo {
            id: id.to_string(),
            size: after.length as i64,
            size_is_deferred: false,
            offset: after.length as i64,
            metadata: Default::default(),
            is_partial: false,
            is_final: false,
            partial_uploads: None,
            storage: Default::default(),
            owner: after.owner.as_ref().map(|o| o.to_string()),
        },
    };
    let request = HookRequest {
        kind,
        event: HookEvent {
            upload: file,
            http_request: HttpRequestInfo::default(),
            media: Some(doc),
        },
    };
    request.to_outbox(id).into_iter().collect()
}
