//! The media status document: what `GET /media/{id}` answers and what media-* events carry.

use serde_json::{Value, json};

use crate::domain::media::{MediaRecord, MediaStatus};
use crate::domain::task::MediaTask;
use crate::domain::upload::Upload;

/// The status of `id`: its media record if it has one (else it is still uploading), its tasks
/// (a long video's), the upload if it is still stored. `base` is the URL prefix of derived
/// files (`/media/` or absolute); `signature`, a path segment that follows the id in every file
/// URL (signed media URLs).
pub fn document(
    id: &str,
    record: Option<&MediaRecord>,
    tasks: &[MediaTask],
    upload: Option<&Upload>,
    base: &str,
    signature: Option<&str>,
) -> Value {
    let files = match signature {
        Some(sig) => format!("{base}{id}/{sig}/"),
        None => format!("{base}{id}/"),
    };
    let status = record.map_or(MediaStatus::Uploading, |r| r.status);
    let length = upload.and_then(|u| u.length).or(record.map(|r| r.length));
    let offset = upload.map(|u| u.offset).or(record.map(|r| r.length));
    let reason = record.and_then(|r| {
        r.reason_code
            .as_ref()
            .map(|code| json!({ "code": code, "message": r.reason.clone().unwrap_or_default() }))
    });
    let progress = match status {
        MediaStatus::Ready => 100.0,
        MediaStatus::Processing | MediaStatus::Playable => {
            super::job::tasks_progress(tasks).unwrap_or_else(|| record.map_or(0.0, |r| r.progress))
        }
        _ => 0.0,
    };
    let variants: Vec<Value> = record
        // A record being processed again keeps showing what it published before.
        .and_then(|r| r.published.as_ref())
        .map(|p| {
            p.variants
                .iter()
                .map(|v| {
                    json!({
                        "kind": v.kind,
                        "type": v.mime,
                        "url": format!("{files}{}/{}", p.version, v.path),
                        "width": v.width,
                        "height": v.height,
                        "bitrate": v.bitrate,
                        "bytes": v.bytes,
                        "duration_ms": v.duration_ms,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": id,
        "status": status.as_str(),
        "progress": (progress * 10.0).round() / 10.0,
        "reason": reason,
        "offset": offset,
        "length": length,
        "type": record.and_then(|r| r.detected.clone()),
        "probe": record.and_then(|r| r.probe.as_ref()),
        "scan": record.and_then(|r| r.scan.as_ref()),
        "attempts": record.map_or(0, |r| r.attempts),
        "lane": record.map(|r| r.lane.as_str()),
        "variants": variants,
        "tasks": tasks.iter().map(task).collect::<Vec<_>>(),
        "updated_at": record.map(|r| httpdate::fmt_http_date(r.updated_at)),
    })
}

/// A task in the status document: its name, where it is, the renditions it makes (their
/// heights are in its name) and whether it makes the stills, and the slot that ran it last.
fn task(t: &MediaTask) -> Value {
    let spec = super::job::task_spec(t).ok();
    let reason = t
        .reason_code
        .as_ref()
        .map(|code| json!({ "code": code, "message": t.reason.clone().unwrap_or_default() }));
    json!({
        "name": t.name,
        "status": t.status.as_str(),
        "progress": (t.progress * 10.0).round() / 10.0,
        "attempts": t.attempts,
        "stills": spec.map(|s| s.stills),
        "worker": t.worker,
        "reason": reason,
        "updated_at": httpdate::fmt_http_date(t.updated_at),
    })
}
