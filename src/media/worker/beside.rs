//! What runs beside a job's (or a task's) run: the heartbeat that keeps its lease and records
//! its progress, and the watch on its scratch filesystem's free space. Either stops the run
//! through its cancel flag; `supervised` runs one with both, and stops it at shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::SPACE_WATCH;
use crate::domain::media::MediaUpdate;
use crate::domain::upload::UploadId;
use crate::media::Context;
use crate::media::job::Progress;
use crate::media::steps::StepError;

/// Runs `run` (a job's or a task's, sharing `progress`) with the heartbeat that keeps `held`'s
/// lease for the slot `(owner, index)` and the watch on the scratch filesystem beside it;
/// shutdown stops it, as a passing failure (it goes again).
pub(super) async fn supervised<T>(
    cx: &Context,
    lease: Duration,
    (owner, index): (&str, usize),
    held: Held,
    progress: Arc<Progress>,
    run: impl Future<Output = Result<T, StepError>>,
) -> Result<T, StepError> {
    let beat = tokio::spawn(heartbeat(
        cx.clone(),
        lease,
        (owner.to_owned(), index),
        held,
        progress.clone(),
    ));
    let room = tokio::spawn(watch_space(cx.clone(), progress.clone()));
    let r = tokio::select! {
        r = run => r,
        _ = cx.shutdown.cancelled() => {
            progress.cancel.store(true, Ordering::Relaxed);
            Err(StepError::transient("cancelled", "the server stopped"))
        }
    };
    beat.abort();
    room.abort();
    r
}

/// Stops the run (its pipelines see the cancel flag) when its scratch filesystem falls below
/// the low mark; the run then fails as `no_space` (`job::run`).
async fn watch_space(cx: Context, progress: Arc<Progress>) {
    loop {
        tokio::time::sleep(SPACE_WATCH).await;
        let space = cx.space.clone();
        if let Ok(Some(r)) = tokio::task::spawn_blocking(move || space.stops_media()).await {
            tracing::warn!("stopping a media run for lack of space: {}", r.describe());
            progress.cancel.store(true, Ordering::Relaxed);
            return;
        }
    }
}

/// What a run holds a lease on: a job, or one of its tasks (by name).
#[derive(Debug, Clone)]
pub(super) enum Held {
    Job(UploadId),
    Task(UploadId, String),
}

/// Extends the lease and records progress while the run goes on; a lost lease stops the run.
async fn heartbeat(
    cx: Context,
    lease: Duration,
    (owner, index): (String, usize),
    held: Held,
    progress: Arc<Progress>,
) {
    let every = lease / 3;
    loop {
        tokio::time::sleep(every).await;
        cx.health.beat(index);
        let until = SystemTime::now() + lease;
        let kept = match &held {
            Held::Job(id) => {
                let update = MediaUpdate {
                    progress: Some(progress.percent()),
                    lease_until: Some(until),
                    ..Default::default()
                };
                cx.meta.update_media(id, &owner, &update).await
            }
            Held::Task(id, name) => {
                let p = progress.percent();
                cx.meta.update_task(id, name, &owner, p, until).await
            }
        };
        let (Held::Job(id) | Held::Task(id, _)) = &held;
        match kept {
            Ok(true) => {}
            Ok(false) => {
                progress.cancel.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => tracing::warn!(%id, "media heartbeat failed: {e}"),
        }
    }
}
