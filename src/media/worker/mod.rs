//! The media workers: slots that claim jobs with a lease, keep the lease alive with a
//! heartbeat (which also records progress), run the job's steps, and end it: READY, REJECTED
//! (the original deleted unless kept), FAILED, or queued again with backoff after a passing
//! failure. A worker that dies leaves its lease to run out; the job is then claimed again, and
//! a job claimed more often than `--media-max-attempts` fails.
//!
//! Lanes: `--media-workers` general slots take any job, fast work first;
//! `--media-fast-workers` slots take only fast work (uploads up to `--media-fast-max-size`,
//! not yet found to be slow), and hand a video they probe to the slow lane (`Handoff`), so a
//! photo is never queued behind a transcode.
//!
//! Media work keeps off the room uploads need: a worker claims nothing while its scratch
//! filesystem is below twice the free-space reserve (`space`), and a run that takes it below
//! stops and is retried (`no_space`) with its scratch files removed.

use std::time::{Duration, SystemTime};

use tokio::task::JoinSet;

use super::config::MediaConfig;
use super::job::{self, Progress, Ran, key};
use super::steps::{Failure, StepError};
use crate::domain::event::OutboxEvent;
use crate::domain::media::{MediaOutcome, MediaRecord, MediaStatus, Takes};
use crate::domain::upload::{Upload, UploadId};
use crate::hooks::HookType;
use crate::media::Context;
use beside::{Held, supervised};

mod beside;
mod task;

/// How often an idle worker looks for jobs that became due (backoff, a dead worker's lease)
/// without being woken.
const IDLE_POLL: Duration = Duration::from_secs(2);
/// How often a run's scratch filesystem is read against the low mark.
const SPACE_WATCH: Duration = Duration::from_secs(1);

/// Runs the workers until shutdown, when the media pipeline is on.
pub async fn run_if_on(cx: Option<Context>) {
    if let Some(cx) = cx {
        run(cx).await;
    }
}

/// Runs the workers until shutdown.
pub async fn run(cx: Context) {
    let cfg = cx.config.clone();
    if cfg.workers == 0 {
        return;
    }
    // Files of runs this process's predecessor did not finish (a crash, kill -9).
    let work = MediaConfig::work_dir(&cx.data_dir);
    if let Err(e) = tokio::fs::remove_dir_all(&work).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("cannot empty {}: {e}", work.display());
    }
    // A slot's leases name its node: a task's status shows where it ran.
    let node = crate::host::node_name();
    let mut workers = JoinSet::new();
    for (i, takes) in cfg.slots().into_iter().enumerate() {
        let owner = format!("{node}/{i}");
        workers.spawn(worker(cx.clone(), cfg.clone(), (owner, takes), i));
    }
    while workers.join_next().await.is_some() {}
}

async fn worker(cx: Context, cfg: MediaConfig, slot: (String, Takes), index: usize) {
    let (owner, takes) = slot;
    loop {
        cx.health.beat(index);
        if cx.shutdown.is_cancelled() {
            return;
        }
        if cx.space.stops_media().is_some() {
            // No room for work files: wait for space (the watcher wakes us) or shutdown.
            tokio::select! {
                _ = cx.wake.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = cx.shutdown.cancelled() => return,
            }
            continue;
        }
        let now = SystemTime::now();
        // Jobs first (what a job runs is short, or a video's planning); then, on a slot taking
        // slow work, a video's tasks.
        let claimed = match cx
            .meta
            .claim_media(&owner, takes, now, now + cfg.lease)
            .await
        {
            Ok(None) if takes.slow => cx
                .meta
                .claim_task(&owner, now, now + cfg.lease)
                .await
                .map(|t| t.map(|t| Claimed::Task(Box::new(t)))),
            other => other.map(|j| j.map(|j| Claimed::Job(Box::new(j)))),
        };
        match claimed {
            Ok(Some(Claimed::Job(job))) => process(&cx, &cfg, (&owner, takes), index, *job).await,
            Ok(Some(Claimed::Task(t))) => task::process(&cx, &cfg, (&owner, index), *t).await,
            Ok(None) => {
                // Copies of originals whose tasks are all done.
                crate::media::original::sweep(&cx).await;
                tokio::select! {
                    _ = cx.wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = cx.shutdown.cancelled() => return,
                }
            }
            Err(e) => {
                tracing::warn!("cannot claim a media job: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = cx.shutdown.cancelled() => return,
                }
            }
        }
    }
}

enum Claimed {
    Job(Box<MediaRecord>),
    Task(Box<crate::domain::task::MediaTask>),
}

/// Backoff before attempt `attempts + 1`: 10 s, 20 s, 40 s ... at most 10 min.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(10u64.saturating_mul(1 << attempts.saturating_sub(1).min(6)))
        .min(Duration::from_secs(600))
}

async fn process(
    cx: &Context,
    cfg: &MediaConfig,
    slot: (&str, Takes),
    index: usize,
    job: MediaRecord,
) {
    let owner = slot.0;
    if let Ok(waited) = SystemTime::now().duration_since(job.next_at) {
        cx.metrics.media_queue_seconds.observe(waited.as_secs_f64());
    }
    let started = std::time::Instant::now();
    let upload = cx.meta.get(&job.id).await.ok().flatten();
    let result = attempt(cx, cfg, slot, index, &job, upload.as_ref()).await;
    let outcome = outcome(cx, cfg, &job, result).await;
    cx.metrics
        .media_run_seconds
        .observe(started.elapsed().as_secs_f64());
    end(cx, owner, &job, upload.as_ref(), outcome).await;
}

/// Runs the job's steps under a heartbeat that keeps its lease, unless it used up its attempts;
/// shutdown stops it.
async fn attempt(
    cx: &Context,
    cfg: &MediaConfig,
    slot: (&str, Takes),
    index: usize,
    job: &MediaRecord,
    upload: Option<&Upload>,
) -> Result<Ran, StepError> {
    let owner = slot.0;
    let id = job.id.clone();
    if job.attempts > cfg.max_attempts {
        return Err(exhausted(cfg, job.reason.as_deref()));
    }
    tracing::info!(%id, attempt = job.attempts, "media job started");
    let progress = Progress::new();
    let run = job::run(cx, cfg, slot, job, upload, progress.clone());
    supervised(cx, cfg.lease, (owner, index), Held::Job(id), progress, run).await
}

/// The failure of a run claimed after its attempts ran out; `last`: the last one's reason.
fn exhausted(cfg: &MediaConfig, last: Option<&str>) -> StepError {
    StepError::permanent(
        "attempts_exhausted",
        format!(
            "gave up after {} attempts; last: {}",
            cfg.max_attempts,
            last.unwrap_or("the worker stopped")
        ),
    )
}

/// How long a run that failed in passing (`e`) after `attempts` waits before it goes again:
/// a run the server stopped did not fail, and goes again as soon as a slot is free.
fn retry_wait(attempts: u32, e: &StepError) -> Duration {
    if e.code == "cancelled" {
        Duration::ZERO
    } else {
        backoff(attempts)
    }
}

/// What a run's result means for the job; a rejected upload is removed (or quarantined) here,
/// and a removal that fails makes the job run again.
async fn outcome(
    cx: &Context,
    cfg: &MediaConfig,
    job: &MediaRecord,
    result: Result<Ran, StepError>,
) -> MediaOutcome {
    let id = &job.id;
    match result {
        Ok(Ran::Handoff) => MediaOutcome::Handoff,
        Ok(Ran::Wait { settled }) => MediaOutcome::Wait { settled },
        Ok(Ran::Done(Some(published))) => MediaOutcome::Ready(published),
        Ok(Ran::Done(None)) => MediaOutcome::Ready(crate::domain::media::Published {
            version: String::new(),
            variants: Vec::new(),
        }),
        Err(e) => match e.kind {
            Failure::Rejected => {
                // Malware is never kept where downloads reach it.
                let infected = e.code == "infected";
                let forget = infected || !cfg.keep_rejected;
                let removed = if infected && cfg.scan.as_ref().is_some_and(|s| s.quarantine) {
                    cx.storage.quarantine(id).await.map(|to| {
                        tracing::warn!(%id, "infected upload quarantined at {to}");
                    })
                } else if forget {
                    cx.storage.delete(id).await
                } else {
                    Ok(())
                };
                if let Err(err) = removed {
                    tracing::warn!(%id, "cannot remove a rejected upload: {err}");
                    requeue(
                        job.attempts,
                        cfg,
                        StepError::transient("storage", err.to_string()),
                    )
                } else {
                    MediaOutcome::Rejected {
                        code: e.code,
                        message: e.message,
                        forget_upload: forget,
                    }
                }
            }
            Failure::Permanent => MediaOutcome::Failed {
                code: e.code,
                message: e.message,
            },
            Failure::Transient => requeue(job.attempts, cfg, e),
        },
    }
}

/// Records the outcome with its hook events, and drops the outputs no record points at.
async fn end(
    cx: &Context,
    owner: &str,
    job: &MediaRecord,
    upload: Option<&Upload>,
    outcome: MediaOutcome,
) {
    let id = job.id.clone();
    if !matches!(outcome, MediaOutcome::Wait { .. } | MediaOutcome::Handoff) {
        // The job's runs (and its tasks', which share this node's copy of the original) are
        // over; a job handed over or waiting for its tasks is not.
        crate::media::original::forget(cx, &id).await;
    }
    let events = events(cx, job, upload, &outcome);
    match cx.meta.end_media(&id, owner, &outcome, &events).await {
        Ok(Some(before)) => {
            if !events.is_empty() {
                cx.hooks.wake();
            }
            if matches!(outcome, MediaOutcome::Handoff | MediaOutcome::Wait { .. }) {
                // An idle slot here takes it (or its tasks, or what they did) now; other nodes
                // hear of it from the store.
                cx.wake.notify_waiters();
            }
            log(&id, &outcome);
            // The version this run replaced (or a dead run's) is no longer pointed at.
            if let MediaOutcome::Ready(p) = &outcome {
                job::drop_superseded(cx, &id, before.published.as_ref(), &p.version).await;
            }
        }
        Ok(None) => {
            tracing::info!(%id, "media job was taken over or the upload terminated; its outputs are dropped");
            if let MediaOutcome::Ready(p) = &outcome
                && !p.version.is_empty()
            {
                let _ = cx.storage.delete_media(&key(&id, Some(&p.version))).await;
            }
        }
        Err(e) => tracing::warn!(%id, "cannot record the end of a media job: {e}"),
    }
}

fn requeue(attempts: u32, cfg: &MediaConfig, e: StepError) -> MediaOutcome {
    if attempts >= cfg.max_attempts {
        return MediaOutcome::Failed {
            code: e.code,
            message: format!("gave up after {attempts} attempts: {}", e.message),
        };
    }
    let wait = retry_wait(attempts, &e);
    MediaOutcome::Retry {
        code: e.code,
        message: e.message,
        at: SystemTime::now() + wait,
    }
}

fn log(id: &UploadId, outcome: &MediaOutcome) {
    match outcome {
        MediaOutcome::Ready(p) => {
            tracing::info!(%id, version = %p.version, variants = p.variants.len(), "media ready")
        }
        MediaOutcome::Rejected { code, message, .. } => {
            tracing::info!(%id, code, "media rejected: {message}")
        }
        MediaOutcome::Failed { code, message } => {
            tracing::warn!(%id, code, "media failed: {message}")
        }
        MediaOutcome::Retry { code, message, .. } => {
            tracing::warn!(%id, code, "media job will be retried: {message}")
        }
        MediaOutcome::Handoff => tracing::info!(%id, "media job handed to the slow lane"),
        MediaOutcome::Wait { settled } => {
            tracing::info!(%id, settled, "media job waits for its tasks")
        }
    }
}

/// The media-* event of a terminal outcome, if it is hooked.
fn events(
    cx: &Context,
    job: &MediaRecord,
    upload: Option<&Upload>,
    outcome: &MediaOutcome,
) -> Vec<OutboxEvent> {
    let refused = |status, code: &String, message: &String| MediaRecord {
        status,
        reason_code: Some(code.clone()),
        reason: Some(message.clone()),
        ..job.clone()
    };
    let (kind, after) = match outcome {
        MediaOutcome::Ready(p) => (
            HookType::MediaReady,
            MediaRecord {
                status: MediaStatus::Ready,
                published: Some(p.clone()).filter(|p| !p.version.is_empty()),
                reason_code: None,
                reason: None,
                ..job.clone()
            },
        ),
        MediaOutcome::Rejected { code, message, .. } => (
            HookType::MediaRejected,
            refused(MediaStatus::Rejected, code, message),
        ),
        MediaOutcome::Failed { code, message } => (
            HookType::MediaFailed,
            refused(MediaStatus::Failed, code, message),
        ),
        MediaOutcome::Retry { .. } | MediaOutcome::Handoff | MediaOutcome::Wait { .. } => {
            return Vec::new();
        }
    };
    super::events::event(cx, kind, &after, upload)
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(30), Duration::from_secs(600));
    }
}
