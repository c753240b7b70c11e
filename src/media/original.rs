//! Reading an upload's original for a run: its first bytes (type detection) and the whole file
//! on local disk, where the decoders can seek: the stored file itself on local storage, else
//! this node's copy of the object-stored original (`media-work/originals/<id>`), downloaded once
//! and shared by the runs of the job and its tasks on this node. A copy goes when its job's run
//! ends (`forget`), or, when a job's last run here is not its end (its tasks ran elsewhere, a
//! retry waits out its backoff), once nothing of the job is running or due (`sweep`, from idle
//! worker slots).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::SystemTime;

use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;

use super::config::MediaConfig;
use super::steps::StepError;
use crate::domain::media::MediaStatus;
use crate::domain::task::TaskStatus;
use crate::domain::upload::UploadId;
use crate::media::Context;

pub async fn read_head(cx: &Context, id: &UploadId, n: u64) -> Result<Vec<u8>, StepError> {
    let mut out = Vec::with_capacity(n as usize);
    if n == 0 {
        return Ok(out);
    }
    let mut stream = cx.storage.read(id, 0..n).await?;
    while let Some(chunk) = stream.try_next().await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn copies(cx: &Context) -> PathBuf {
    MediaConfig::work_dir(&cx.data_dir).join("originals")
}

/// The original of `id` (`len` bytes) as a local file.
pub async fn local(cx: &Context, id: &UploadId, len: u64) -> Result<PathBuf, StepError> {
    if let Some(p) = cx.storage.local_path(id) {
        return Ok(p);
    }
    let dir = copies(cx);
    let path = dir.join(id.as_str());
    // One download per original at a time in this process: a second run waits and shares it.
    let lock = downloading(id);
    let _held = lock.lock().await;
    if tokio::fs::metadata(&path)
        .await
        .is_ok_and(|m| m.len() == len)
    {
        return Ok(path);
    }
    tokio::fs::create_dir_all(&dir).await?;
    // Written aside and renamed: a copy under its name is always whole.
    let part = dir.join(format!("{id}.{}.part", &UploadId::random().as_str()[..8]));
    let copied = download(cx, id, len, &part).await;
    if copied.is_ok() {
        tokio::fs::rename(&part, &path).await?;
    } else {
        let _ = tokio::fs::remove_file(&part).await;
    }
    copied.map(|_| path)
}

/// The lock of `id`'s download; entries no run holds are dropped as others are taken.
fn downloading(id: &UploadId) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: LazyLock<Mutex<HashMap<UploadId, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Mutex::default);
    let mut locks = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    locks.retain(|_, l| Arc::strong_count(l) > 1);
    locks.entry(id.clone()).or_default().clone()
}

/// Drops this node's copy of `id`'s original, if it has one.
pub async fn forget(cx: &Context, id: &UploadId) {
    if cx.storage.local_path(id).is_none() {
        let _ = tokio::fs::remove_file(copies(cx).join(id.as_str())).await;
    }
}

/// Drops the copies no run needs soon: their job is gone or over, or nothing of it is running
/// or due (no live lease, not due, no task queued or running: a retry waiting out its backoff).
/// A job handed over, or waiting to assemble, is due and keeps its copy.
pub async fn sweep(cx: &Context) {
    let Ok(mut dir) = tokio::fs::read_dir(copies(cx)).await else {
        return;
    };
    while let Ok(Some(entry)) = dir.next_entry().await {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(UploadId::parse) else {
            continue;
        };
        let (Ok(job), Ok(tasks)) = (cx.meta.media(&id).await, cx.meta.tasks(&id).await) else {
            continue;
        };
        let now = SystemTime::now();
        let active = |s| matches!(s, TaskStatus::Queued | TaskStatus::Running);
        let needed = job.is_some_and(|j| {
            let open = !matches!(
                j.status,
                MediaStatus::Ready | MediaStatus::Rejected | MediaStatus::Failed
            );
            let leased = j.lease_until.is_some_and(|until| until > now);
            open && (leased || j.next_at <= now || tasks.iter().any(|t| active(t.status)))
        });
        if !needed {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
    }
}

/// Copies an object-stored original to local disk.
async fn download(cx: &Context, id: &UploadId, len: u64, to: &Path) -> Result<(), StepError> {
    let mut file = tokio::fs::File::create(to).await?;
    let mut stream = cx.storage.read(id, 0..len).await?;
    while let Some(chunk) = stream.try_next().await? {
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(())
}
