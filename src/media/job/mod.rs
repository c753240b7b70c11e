//! One run of a media job: detect → scan → (by kind) probe and transcode, make image variants,
//! render a document's first page → publish. Returns what was published (None: nothing to
//! derive, e.g. a document stored as it is) or a typed failure. The original is only read.
//! On a fast-only slot, a video (or long sound) is handed over once checked and probed
//! (`Ran::Handoff`); the general slot that takes it next starts from what was found.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::config::MediaConfig;
use super::detect::{self, SNIFF_BYTES};
use super::limits::{Kind, check_limits, check_size};
use super::publish::Produced;
use super::steps::StepError;
use crate::domain::media::{
    Lane, MediaRecord, MediaStatus, MediaUpdate, Probe, Published, ScanOutcome, Takes,
};
use crate::domain::upload::{Upload, UploadId};
use crate::media::Context;
use crate::storage::MediaKey;

mod decode;
mod progress;
mod stages;
mod tasks;

pub use progress::Progress;

pub use tasks::{progress as tasks_progress, run_task, spec as task_spec};

use decode::{images, probe};

/// Sound longer than this is slow work (a fast-only slot hands it over).
const SLOW_AUDIO: Duration = Duration::from_secs(600);

/// The run's time budget for media of `duration`: generous, since the machine may be shared,
/// but bounded, so a pathological file cannot hold a worker.
pub fn budget(duration_ms: Option<u64>) -> Duration {
    let media = Duration::from_millis(duration_ms.unwrap_or(60_000));
    Duration::from_secs(120) + media * 20
}

/// The media key of `id`'s outputs, or of one version of them.
pub fn key(id: &UploadId, version: Option<&str>) -> MediaKey {
    let k = MediaKey::parse(id.as_str()).expect("upload ids are valid media keys");
    match version {
        Some(v) => k.join(v).expect("versions are valid key segments"),
        None => k,
    }
}

/// Deletes the outputs of `old` (what the record pointed at before) once the record points at
/// `version` instead; a failure is logged (the files are orphaned, not served).
pub async fn drop_superseded(cx: &Context, id: &UploadId, old: Option<&Published>, version: &str) {
    if let Some(old) = old.filter(|old| old.version != version && !old.version.is_empty())
        && let Err(e) = cx.storage.delete_media(&key(id, Some(&old.version))).await
    {
        tracing::warn!(%id, "cannot delete superseded media version {}: {e}", old.version);
    }
}

struct Ctx<'a> {
    cx: &'a Context,
    owner: &'a str,
    job: &'a MediaRecord,
    upload: &'a Upload,
    takes: Takes,
    /// The probe of a job handed over (`handed_over`).
    probed: Option<&'a Probe>,
}

impl Ctx<'_> {
    async fn record(&self, update: MediaUpdate) -> Result<(), StepError> {
        if !self
            .cx
            .meta
            .update_media(&self.job.id, self.owner, &update)
            .await?
        {
            return Err(StepError::transient(
                "lease_lost",
                "another worker took the job over",
            ));
        }
        Ok(())
    }

    async fn status(&self, status: MediaStatus) -> Result<(), StepError> {
        self.record(MediaUpdate {
            status: Some(status),
            ..Default::default()
        })
        .await
    }
}

/// Removes a directory when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a run that did not fail ended.
#[derive(Debug)]
pub enum Ran {
    /// What was published (None: nothing to derive, e.g. a document stored as it is).
    Done(Option<Published>),
    /// Checked and probed on a fast-only slot, and slow work: for a general slot.
    Handoff,
    /// Waiting for its tasks, `settled` of which the run saw settled.
    Wait { settled: u32 },
}

/// Runs `job` on a slot that `takes` what it takes.
pub async fn run(
    cx: &Context,
    cfg: &MediaConfig,
    slot: (&str, Takes),
    job: &MediaRecord,
    upload: Option<&Upload>,
    progress: Arc<Progress>,
) -> Result<Ran, StepError> {
    let (owner, takes) = slot;
    let upload = upload.ok_or_else(|| {
        StepError::permanent("original_missing", "the upload is no longer stored")
    })?;
    let handed = handed_over(cfg, job);
    let ctx = Ctx {
        cx,
        owner,
        job,
        upload,
        takes,
        probed: handed.map(|(_, probe)| probe),
    };
    // A job waiting for its tasks assembles what they did.
    let tasks = waiting_for(cx, job).await?;
    if !tasks.is_empty() {
        return ctx.assemble(&tasks).await;
    }
    // A run that died while publishing left a version nobody points at.
    if let Some(v) = &job.pending_version
        && job.published.as_ref().map(|p| &p.version) != Some(v)
    {
        cx.storage.delete_media(&key(&job.id, Some(v))).await?;
    }
    let mime = match handed {
        Some((mime, _)) => mime.to_owned(),
        None => {
            ctx.status(MediaStatus::Validating).await?;
            ctx.validate(cfg, upload).await?.to_owned()
        }
    };
    let kind = Kind::of(&mime);
    check_size(cfg, kind, job.length)?;
    ctx.status(MediaStatus::Processing).await?;

    // One run of a job at a time (the lease): its directory is named after the job, and what a
    // dead run left there goes now.
    let scratch = Scratch(MediaConfig::work_dir(&cx.data_dir).join(job.id.as_str()));
    let _ = tokio::fs::remove_dir_all(&scratch.0).await;
    let worked = ctx.work(&scratch.0, cfg, kind, &mime, progress).await;
    // Judged while the scratch files still take their room.
    worked.map_err(|e| out_of_room(cx, e))
}

/// The tasks of `job`'s pending version, if it is processing: a job that was queued again
/// (RECEIVED) plans afresh.
async fn waiting_for(
    cx: &Context,
    job: &MediaRecord,
) -> Result<Vec<crate::domain::task::MediaTask>, StepError> {
    let (Some(version), MediaStatus::Processing | MediaStatus::Playable) =
        (&job.pending_version, job.status)
    else {
        return Ok(Vec::new());
    };
    let mut tasks = cx.meta.tasks(&job.id).await?;
    tasks.retain(|t| &t.version == version);
    Ok(tasks)
}

/// The detected type and probe of a job a fast-only slot checked and handed over (its checks
/// are not repeated), if the settings still let it through unchecked. A job queued again by a
/// retry or a reprocess (RECEIVED) is checked again.
fn handed_over<'a>(cfg: &MediaConfig, job: &'a MediaRecord) -> Option<(&'a str, &'a Probe)> {
    let (mime, probe) = (job.detected.as_deref()?, job.probe.as_ref()?);
    let scanned = cfg.scan.is_none() || job.scan.is_some();
    let handed = job.lane == Lane::Slow && job.status == MediaStatus::Processing;
    (handed && scanned && cfg.allows(mime)).then_some((mime, probe))
}

/// Whether probed media is slow work: a video (it is transcoded), or sound longer than
/// `SLOW_AUDIO`.
fn slow_work(probe: &Probe) -> bool {
    probe.video.is_some()
        || probe
            .duration_ms
            .is_some_and(|ms| Duration::from_millis(ms) > SLOW_AUDIO)
}

/// A run that failed while its scratch filesystem is below the low mark (a full disk is below
/// it too) ran out of room: it is retried (transient), whatever step noticed first. A full
/// disk or store met elsewhere is `no_space` already (`StepError::from`).
fn out_of_room(cx: &Context, e: StepError) -> StepError {
    if e.kind == super::steps::Failure::Rejected {
        return e;
    }
    match cx.space.stops_media() {
        Some(r) => StepError::transient(
            "no_space",
            format!("ran out of room for work files ({}): {e}", r.summary()),
        ),
        None => e,
    }
}

impl Ctx<'_> {
    /// Makes the outputs in `scratch` (the original copied to this node if it is not on local
    /// disk: `original::local`) and publishes them.
    async fn work(
        &self,
        scratch: &Path,
        cfg: &MediaConfig,
        kind: Kind,
        mime: &str,
        progress: Arc<Progress>,
    ) -> Result<Ran, StepError> {
        let (cx, job) = (self.cx, self.job);
        tokio::fs::create_dir_all(scratch).await?;
        let input = super::original::local(cx, &job.id, job.length).await?;
        let out = scratch.join("out");
        tokio::fs::create_dir_all(&out).await?;
        let produced = match kind {
            Kind::Image => images(&input, &out, mime, cfg, progress).await?,
            Kind::Document => super::document::process(&input, &out, mime, cfg, &progress).await?,
            Kind::Video | Kind::Audio => {
                let probe = self.probe(&input).await?;
                if !self.takes.slow && slow_work(&probe) {
                    return Ok(Ran::Handoff);
                }
                if let Some(video) = &probe.video {
                    return self.video(&input, &out, cfg, &probe, video, progress).await;
                }
                self.audio(&input, &out, cfg, &probe, progress).await?
            }
        };
        if produced.renditions.is_empty() && produced.files.is_empty() {
            return Ok(Ran::Done(None));
        }
        self.publish(&out, &produced)
            .await
            .map(|p| Ran::Done(Some(p)))
    }

    /// Detects the type (recorded when accepted) and scans the original; returns the type, or
    /// the rejection.
    async fn validate(
        &self,
        cfg: &MediaConfig,
        upload: &Upload,
    ) -> Result<&'static str, StepError> {
        let (cx, job) = (self.cx, self.job);
        let head =
            super::original::read_head(cx, &job.id, job.length.min(SNIFF_BYTES as u64)).await?;
        let detected = detect::detect(&head, upload.metadata.as_ref(), |m| cfg.allows(m));
        if let Ok(mime) = detected {
            self.record(MediaUpdate {
                detected: Some(mime.to_owned()),
                ..Default::default()
            })
            .await?;
        }
        if let Some(scan) = &cfg.scan {
            self.status(MediaStatus::Scanning).await?;
            let last_attempt = job.attempts >= cfg.max_attempts;
            let found = super::scan::run(cx, scan, job, last_attempt).await?;
            let infected = found.outcome == ScanOutcome::Infected;
            self.record(MediaUpdate {
                scan: Some(found.clone()),
                ..Default::default()
            })
            .await?;
            if infected {
                return Err(super::scan::infected(&found));
            }
        }
        // Scanned first, whatever the type: malware is reported as such, not as a wrong type.
        detected.map_err(|r| StepError::rejected(r.code, r.message))
    }

    /// Probes a video or audio file and records what was found (first: a rejection for size
    /// or length shows it); a job handed over was probed already.
    async fn probe(&self, input: &Path) -> Result<Probe, StepError> {
        if let Some(probe) = self.probed {
            return Ok(probe.clone());
        }
        let probe = probe(input).await?;
        self.record(MediaUpdate {
            probe: Some(probe.clone()),
            ..Default::default()
        })
        .await?;
        Ok(probe)
    }

    /// Checks a probed audio file's limits and processes it; the probe is recorded again with
    /// the loudness measured.
    async fn audio(
        &self,
        input: &Path,
        out: &Path,
        cfg: &MediaConfig,
        probe: &Probe,
        progress: Arc<Progress>,
    ) -> Result<Produced, StepError> {
        if probe.audio.is_none() {
            return Err(StepError::permanent(
                "no_streams",
                "the file holds neither video nor audio",
            ));
        }
        check_limits(cfg, Kind::Audio, probe)?;
        let produced = super::audio::process(input, out, probe, cfg, progress).await?;
        let mut probe = probe.clone();
        if let Some(a) = probe.audio.as_mut() {
            a.loudness = produced.loudness;
        }
        self.record(MediaUpdate {
            probe: Some(probe),
            ..Default::default()
        })
        .await?;
        Ok(produced)
    }

    /// A new version for this run's outputs, recorded as pending (a run that dies leaves it
    /// to be deleted by the next).
    async fn new_version(&self) -> Result<String, StepError> {
        let version = format!(
            "v{}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
        );
        self.record(MediaUpdate {
            pending_version: Some(version.clone()),
            ..Default::default()
        })
        .await?;
        Ok(version)
    }

    /// Publishes `out` as a new version.
    async fn publish(&self, out: &Path, produced: &Produced) -> Result<Published, StepError> {
        let version = self.new_version().await?;
        let variants =
            super::publish::publish(self.cx, &self.job.id, &version, out, produced).await?;
        Ok(Published { version, variants })
    }
}

/// Blocking work (GStreamer, image codecs) on the blocking pool; a panic in it is a failed
/// run, not a dead worker.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StepError> + Send + 'static,
) -> Result<T, StepError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(StepError::transient(
            "crashed",
            format!("the step panicked: {e}"),
        ))
    })
}

/// The failure of a step that needs the media pipeline this build lacks.
pub fn unsupported() -> StepError {
    StepError::permanent("unsupported", "built without the media pipeline")
}
