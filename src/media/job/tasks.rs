//! A long video's work as tasks (`domain::task`): the job plans one per pass (`video::passes`:
//! the lowest rung with the stills, then each other rung) under its pending version and waits;
//! any slot taking slow work, on any node, runs a task (`run_task`: decode, encode its rungs,
//! store its files) under a lease of its own; each task that settles makes the job due, and
//! the slot that claims it assembles what is done (`Ctx::assemble`): the playable master once
//! the lowest rung is there, the master and READY once all are, FAILED if a task failed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Ctx, Progress, Ran, Scratch};
use crate::domain::media::{MediaRecord, MediaStatus, Probe, Variant, VideoFacts};
use crate::domain::task::{MediaTask, TaskPlan, TaskStatus};
use crate::media::Context;
use crate::media::config::MediaConfig;
use crate::media::hls;
use crate::media::plan::Plan;
use crate::media::publish::{MASTER, PLAYABLE_MASTER, Publisher};
use crate::media::steps::StepError;
use crate::media::video::{self, Pass};

/// What a task stored: its renditions' master playlist entries and its variants.
#[derive(Debug, Serialize, Deserialize)]
struct Left {
    entries: Vec<hls::Entry>,
    variants: Vec<Variant>,
    variable_frame_rate: bool,
}

/// A task's name: its first rung's height (`360p`).
fn name(plan: &Plan, pass: &Pass) -> String {
    match plan.renditions.get(pass.rungs.start) {
        Some(r) => format!("{}p", r.height),
        None => format!("pass{}", pass.rungs.start),
    }
}

/// What a task's spec says it does.
pub fn spec(task: &MediaTask) -> Result<Pass, StepError> {
    serde_json::from_value(task.spec.clone()).map_err(|e| {
        StepError::permanent("task", format!("task {} has a bad spec: {e}", task.name))
    })
}

/// The job's progress from its tasks': each task's share (`Pass::share`) as far as it got.
pub fn progress(tasks: &[MediaTask]) -> Option<f32> {
    let mut total = 0.0;
    for t in tasks {
        let (from, to) = spec(t).ok()?.share;
        total += (to - from) * t.progress.clamp(0.0, 100.0) / 100.0;
    }
    (!tasks.is_empty()).then_some(total.clamp(0.0, 100.0))
}

impl Ctx<'_> {
    /// Plans `passes` as tasks publishing under `version` (recorded as pending); the run then
    /// waits for them.
    pub(super) async fn plan_tasks(
        &self,
        plan: &Plan,
        passes: &[Pass],
        version: &str,
    ) -> Result<Ran, StepError> {
        let tasks: Vec<TaskPlan> = passes
            .iter()
            .map(|p| TaskPlan {
                name: name(plan, p),
                spec: serde_json::to_value(p).expect("a pass serialises"),
            })
            .collect();
        let planned = self
            .cx
            .meta
            .plan_tasks(&self.job.id, self.owner, version, &tasks)
            .await?;
        if !planned {
            return Err(StepError::transient(
                "lease_lost",
                "another worker took the job over",
            ));
        }
        let id = &self.job.id;
        tracing::info!(%id, tasks = tasks.len(), "media job split into tasks");
        Ok(Ran::Wait { settled: 0 })
    }

    /// Assembles what the job's `tasks` (of its pending version) did so far.
    pub(super) async fn assemble(&self, tasks: &[MediaTask]) -> Result<Ran, StepError> {
        if let Some(t) = tasks.iter().find(|t| t.status == TaskStatus::Failed) {
            return Err(StepError::permanent(
                t.reason_code.as_deref().unwrap_or("task_failed"),
                format!(
                    "task {} failed: {}",
                    t.name,
                    t.reason.as_deref().unwrap_or("no reason given")
                ),
            ));
        }
        let settled = tasks.iter().filter(|t| t.status.settled()).count() as u32;
        let mut done = Vec::new();
        let mut stills = false;
        for t in tasks.iter().filter(|t| t.status == TaskStatus::Done) {
            let left: Left =
                serde_json::from_value(t.result.clone().unwrap_or_default()).map_err(|e| {
                    StepError::permanent("task", format!("task {} left a bad result: {e}", t.name))
                })?;
            stills |= spec(t)?.stills;
            done.push(left);
        }
        let all = done.len() == tasks.len();
        let playable = !all && stills && self.job.status != MediaStatus::Playable;
        if !all && !playable {
            return Ok(Ran::Wait { settled });
        }
        let (cx, id) = (self.cx, &self.job.id);
        let version = tasks[0].version.clone();
        let scratch = Scratch(MediaConfig::work_dir(&cx.data_dir).join(format!("{id}.master")));
        tokio::fs::create_dir_all(&scratch.0).await?;
        let variable_rate = done.iter().any(|l| l.variable_frame_rate);
        let mut parts = (Vec::new(), Vec::new());
        for l in done {
            parts.0.extend(l.entries);
            parts.1.extend(l.variants);
        }
        let publisher = Publisher::resume(cx, id, version, &scratch.0, parts);
        if !all {
            self.playable(publisher.master(PLAYABLE_MASTER).await?)
                .await?;
            return Ok(Ran::Wait { settled });
        }
        if let Some(probe) = &self.job.probe {
            self.note_variable_rate(probe, variable_rate).await?;
        }
        Ok(Ran::Done(Some(publisher.master(MASTER).await?)))
    }
}

/// Runs `task` of `job`: decodes the original (this node's copy if it is not on local disk,
/// shared with the job's other runs here: `original::local`), encodes the task's rungs (and
/// stills) and stores them under the task's version. Returns what the job assembles from.
pub async fn run_task(
    cx: &Context,
    cfg: &MediaConfig,
    job: &MediaRecord,
    task: &MediaTask,
    progress: Arc<Progress>,
) -> Result<serde_json::Value, StepError> {
    let pass = Pass {
        share: (0.0, 100.0),
        ..spec(task)?
    };
    let unprobed = || StepError::permanent("task", "the job's video was not probed");
    let probe: &Probe = job.probe.as_ref().ok_or_else(unprobed)?;
    let facts: &VideoFacts = probe.video.as_ref().ok_or_else(unprobed)?;
    let scratch =
        Scratch(MediaConfig::work_dir(&cx.data_dir).join(format!("{}.{}", job.id, task.name)));
    let _ = tokio::fs::remove_dir_all(&scratch.0).await;
    let worked: Result<serde_json::Value, StepError> = async {
        tokio::fs::create_dir_all(&scratch.0).await?;
        let input = crate::media::original::local(cx, &job.id, job.length).await?;
        let out = scratch.0.join("out");
        tokio::fs::create_dir_all(&out).await?;
        let produced = video::process(&input, &out, probe, facts, cfg, progress, &pass).await?;
        let mut publisher = Publisher::new(cx, &job.id, task.version.clone(), &out);
        publisher.add(&produced).await?;
        let (entries, variants) = publisher.parts();
        let left = Left {
            entries,
            variants,
            variable_frame_rate: produced.variable_frame_rate,
        };
        Ok(serde_json::to_value(left).expect("a task's result serialises"))
    }
    .await;
    worked.map_err(|e| super::out_of_room(cx, e))
}
