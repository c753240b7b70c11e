//! A slot's run of one task of a video's job (`job::run_task`): under a lease of its own kept
//! by the heartbeat, stopped by shutdown or a full scratch disk like a job's run, ended DONE,
//! FAILED (the job then fails), or queued again with backoff after a passing failure; a task
//! claimed more often than `--media-max-attempts` fails.

use std::time::SystemTime;

use super::beside::{Held, supervised};
use super::{MediaConfig, exhausted, retry_wait};
use crate::domain::task::{MediaTask, TaskOutcome};
use crate::media::Context;
use crate::media::job::{self, Progress};
use crate::media::steps::{Failure, StepError};

pub(super) async fn process(
    cx: &Context,
    cfg: &MediaConfig,
    (owner, index): (&str, usize),
    task: MediaTask,
) {
    let (id, name) = (task.id.clone(), task.name.clone());
    let started = std::time::Instant::now();
    let result = attempt(cx, cfg, (owner, index), &task).await;
    cx.metrics
        .media_run_seconds
        .observe(started.elapsed().as_secs_f64());
    let outcome = match result {
        Ok(left) => TaskOutcome::Done(left),
        Err(e) if e.kind == Failure::Transient && task.attempts < cfg.max_attempts => {
            let wait = retry_wait(task.attempts, &e);
            TaskOutcome::Retry {
                code: e.code,
                message: e.message,
                at: SystemTime::now() + wait,
            }
        }
        Err(e) => TaskOutcome::Failed {
            code: e.code,
            message: e.message,
        },
    };
    match cx.meta.end_task(&id, &name, owner, &outcome).await {
        Ok(true) => {
            match &outcome {
                TaskOutcome::Done(_) => tracing::info!(%id, task = %name, "media task done"),
                TaskOutcome::Retry { code, message, .. } => {
                    tracing::warn!(%id, task = %name, code, "media task will be retried: {message}")
                }
                TaskOutcome::Failed { code, message } => {
                    tracing::warn!(%id, task = %name, code, "media task failed: {message}")
                }
            }
            // Its job is due: an idle slot here assembles it now.
            cx.wake.notify_waiters();
        }
        // What it stored stays under a version its job no longer waits for, deleted when the
        // job plans again; or another slot took the task over and stores the same files.
        Ok(false) => tracing::info!(%id, task = %name, "media task was taken over or dropped"),
        Err(e) => tracing::warn!(%id, task = %name, "cannot record the end of a media task: {e}"),
    }
}

/// Runs the task under its heartbeat, unless it used up its attempts or its job is gone.
async fn attempt(
    cx: &Context,
    cfg: &MediaConfig,
    (owner, index): (&str, usize),
    task: &MediaTask,
) -> Result<serde_json::Value, StepError> {
    if task.attempts > cfg.max_attempts {
        return Err(exhausted(cfg, task.reason.as_deref()));
    }
    let Some(job) = cx.meta.media(&task.id).await? else {
        return Err(StepError::permanent("original_missing", "the job is gone"));
    };
    let (id, name) = (&task.id, &task.name);
    tracing::info!(%id, task = %name, attempt = task.attempts, "media task started");
    let progress = Progress::new();
    let held = Held::Task(id.clone(), name.clone());
    let run = job::run_task(cx, cfg, &job, task, progress.clone());
    supervised(cx, cfg.lease, (owner, index), held, progress, run).await
}
