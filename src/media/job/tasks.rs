//! A long video's work as tasks (`domain::task`): the job plans one per pass (`passes::passes`:
//! the lowest rung with the stills and the sound, then the upper rungs in chunks) under its
//! pending version and waits; any slot taking slow work, on any node, runs a task (`run_task`:
//! decode, encode its rungs, store its files; a chunk's segments numbered in their rendition)
//! under a lease of its own; each task that settles makes the job due, and the slot that
//! claims it assembles what is done (`Ctx::assemble`): the playable master once the first task
//! is done, the chunks' segments joined into playlists and the master and READY once all are,
//! FAILED if a task failed.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Ctx, Progress, Ran, Scratch};
use crate::domain::media::{MediaRecord, MediaStatus, Probe, Variant, VideoFacts};
use crate::domain::task::{MediaTask, TaskPlan, TaskStatus};
use crate::media::Context;
use crate::media::config::MediaConfig;
use crate::media::hls;
use crate::media::passes::Pass;
use crate::media::plan::Plan;
use crate::media::plan::Sound;
use crate::media::publish::{MASTER, PLAYABLE_MASTER, Publisher, Rendition};
use crate::media::steps::StepError;
use crate::media::video;

/// What a task stored: its renditions' master playlist entries and its variants (a pass
/// over the whole source), or its renditions' segments (a chunk's).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Left {
    entries: Vec<hls::Entry>,
    variants: Vec<Variant>,
    variable_frame_rate: bool,
    #[serde(default)]
    chunk: Vec<ChunkRung>,
}

/// A chunk's part of one rendition: the segments it stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChunkRung {
    dir: String,
    picture: Option<(u32, u32, f64)>,
    codecs: String,
    segments: Vec<hls::Segment>,
}

/// A task's name: a chunk's number and its part of the source (`chunk2 0:28-0:56`), or its
/// first rung's height (`360p`).
fn name(plan: &Plan, pass: &Pass, number: usize) -> String {
    let at = |ns: u64| {
        let s = ns / 1_000_000_000;
        format!("{}:{:02}", s / 60, s % 60)
    };
    if let Some((start, stop)) = pass.range {
        let stop = if stop == u64::MAX {
            "end".into()
        } else {
            at(stop)
        };
        return format!("chunk{number} {}-{stop}", at(start));
    }
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
            .enumerate()
            .map(|(i, p)| TaskPlan {
                name: name(plan, p, i),
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
        let joined = if all { join(&mut done)? } else { Vec::new() };
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
        let mut publisher = Publisher::resume(cx, id, version, &scratch.0, parts);
        for (r, segments) in &joined {
            publisher.add_joined(r, segments).await?;
        }
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

/// Each rendition's segments from the chunks in `done` (taken out of them), in order; fails
/// when the chunks' segments do not follow each other.
fn join(done: &mut [Left]) -> Result<Vec<(Rendition, Vec<hls::Segment>)>, StepError> {
    let mut rungs: BTreeMap<String, (Rendition, Vec<hls::Segment>)> = BTreeMap::new();
    for part in done.iter_mut().flat_map(|l| std::mem::take(&mut l.chunk)) {
        let (_, segments) = rungs.entry(part.dir.clone()).or_insert_with(|| {
            let r = Rendition {
                dir: part.dir.clone(),
                picture: part.picture,
                codecs: part.codecs.clone(),
                audio_group: false,
            };
            (r, Vec::new())
        });
        segments.extend(part.segments);
    }
    let mut out = Vec::with_capacity(rungs.len());
    for (dir, (r, mut segments)) in rungs {
        segments.sort_by_key(|s| s.index);
        let gap = segments
            .iter()
            .enumerate()
            .find(|(i, s)| s.index != *i as u64);
        if let Some((i, s)) = gap {
            return Err(StepError::permanent(
                "chunks",
                format!(
                    "the chunks of {dir} do not join: segment {} where {i} belongs",
                    s.index
                ),
            ));
        }
        out.push((r, segments));
    }
    Ok(out)
}

/// Renames the segments of a chunk's rendition `dir` under `out` to their numbers in the
/// whole rendition (from `first`), stores them and returns them, each one's duration from the
/// frames it holds (`frame_s` each).
async fn store_chunk_segments(
    publisher: &Publisher<'_>,
    out: &std::path::Path,
    dir: &str,
    first: u64,
    frame_s: f64,
) -> Result<Vec<hls::Segment>, StepError> {
    let text = tokio::fs::read_to_string(out.join(dir).join("index.m3u8"))
        .await
        .map_err(|e| StepError::permanent("transcode", format!("no playlist for {dir}: {e}")))?;
    let mut segments = Vec::new();
    for (i, (_, uri)) in hls::segments(&text).into_iter().enumerate() {
        if uri.contains('/') {
            return Err(StepError::permanent(
                "transcode",
                format!("odd segment URI {uri}"),
            ));
        }
        let index = first + i as u64;
        let name = format!("seg{index:05}.ts");
        let (from, to) = (out.join(dir).join(&uri), out.join(dir).join(&name));
        let data = tokio::fs::read(&from).await?;
        let frames = crate::media::ts::video_pts(&data).len();
        if frames == 0 {
            return Err(StepError::permanent(
                "transcode",
                format!("{dir}/{uri} holds no frame"),
            ));
        }
        drop(data);
        tokio::fs::rename(&from, &to).await?;
        let bytes = publisher.put(format!("{dir}/{name}")).await?;
        segments.push(hls::Segment {
            index,
            uri: name,
            duration: frames as f64 * frame_s,
            bytes,
        });
    }
    if segments.is_empty() {
        return Err(StepError::permanent(
            "transcode",
            format!("the chunk of {dir} has no segments"),
        ));
    }
    Ok(segments)
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
        if pass.sound == Sound::Without {
            let (num, den) = video::plan(facts, cfg).fps;
            let frame_s = f64::from(den.max(1)) / f64::from(num.max(1));
            let mut chunk = Vec::new();
            for r in &produced.renditions {
                let segments =
                    store_chunk_segments(&publisher, &out, &r.dir, pass.first_segment, frame_s)
                        .await?;
                chunk.push(ChunkRung {
                    dir: r.dir.clone(),
                    picture: r.picture,
                    codecs: r.codecs.clone(),
                    segments,
                });
            }
            let left = Left {
                chunk,
                variable_frame_rate: produced.variable_frame_rate,
                ..Left::default()
            };
            return Ok(serde_json::to_value(left).expect("a task's result serialises"));
        }
        publisher.add(&produced).await?;
        let (entries, variants) = publisher.parts();
        let left = Left {
            entries,
            variants,
            variable_frame_rate: produced.variable_frame_rate,
            chunk: Vec::new(),
        };
        Ok(serde_json::to_value(left).expect("a task's result serialises"))
    }
    .await;
    worked.map_err(|e| super::out_of_room(cx, e))
}
