//! The media status document: what `GET /media/{id}` answers and what media-* events carry.
//! A job in tasks (a long video's) has its progress from them, and an estimate of the time
//! left (`eta_seconds`) from how fast they went so far.

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
    let eta = match status {
        MediaStatus::Processing | MediaStatus::Playable => eta_seconds(tasks, progress),
        _ => None,
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
        "eta_seconds": eta,
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

/// Seconds until a job in tasks is done, from how fast its `tasks` went so far: the time since
/// they were planned, over the share of the work done (`progress`, percent), times the share
/// left. None without tasks or before a twentieth is done (too early to say).
pub fn eta_seconds(tasks: &[MediaTask], progress: f32) -> Option<u64> {
    let planned = tasks.iter().map(|t| t.created_at).min()?;
    let elapsed = std::time::SystemTime::now()
        .duration_since(planned)
        .ok()?
        .as_secs_f64();
    if !(5.0..100.0).contains(&progress) {
        return None;
    }
    let left = elapsed * f64::from(100.0 - progress) / f64::from(progress);
    Some(left.ceil() as u64)
}

/// A task in the status document: its name (the first task's lowest rung, or a chunk's part
/// of the video), where it is, whether it makes the stills, and the slot that ran it last.
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use crate::domain::task::{MediaTask, TaskStatus};
    use crate::domain::upload::UploadId;

    fn planned(ago: Duration) -> MediaTask {
        let at = SystemTime::now() - ago;
        MediaTask {
            id: UploadId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            name: "chunk1".into(),
            seq: 1,
            version: "v1".into(),
            spec: serde_json::Value::Null,
            status: TaskStatus::Running,
            attempts: 1,
            worker: None,
            lease_until: None,
            next_at: at,
            progress: 0.0,
            reason_code: None,
            reason: None,
            result: None,
            updated_at: at,
            created_at: at,
        }
    }

    #[test]
    fn the_time_left_follows_the_pace_so_far() {
        let tasks = [planned(Duration::from_secs(30))];
        // A quarter done in 30 s: 90 s to go.
        let eta = super::eta_seconds(&tasks, 25.0).unwrap();
        assert!((90..=92).contains(&eta), "{eta}");
        assert_eq!(super::eta_seconds(&tasks, 2.0), None, "too early to say");
        assert_eq!(super::eta_seconds(&tasks, 100.0), None);
        assert_eq!(super::eta_seconds(&[], 50.0), None, "a job without tasks");
    }
}
