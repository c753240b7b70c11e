//! One run of a media job: detect → scan → probe → transcode → publish. Returns what was published
//! (None: nothing to derive, e.g. audio before its renditions exist) or a typed failure. The
//! original upload is only read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;

use super::config::MediaConfig;
use super::detect::{self, SNIFF_BYTES};
use super::record::{MediaRecord, MediaStatus, MediaUpdate, Probe, Published, ScanOutcome};
use super::steps::StepError;
use crate::app::App;
use crate::storage::MediaKey;
use crate::upload::{Upload, UploadId};

/// How long the Discoverer may read headers (it has two tries).
#[cfg(feature = "media")]
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long decoding may stand still before the run fails.
#[cfg(feature = "media")]
const STALL: Duration = Duration::from_secs(60);

/// What the run shares with its heartbeat.
pub struct Progress {
    /// Percent, as f32 bits.
    pub percent: AtomicU32,
    /// Set when the lease is lost or the server stops: the pipeline gives up.
    pub cancel: AtomicBool,
}

impl Progress {
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress {
            percent: AtomicU32::new(0f32.to_bits()),
            cancel: AtomicBool::new(false),
        })
    }

    pub fn percent(&self) -> f32 {
        f32::from_bits(self.percent.load(Ordering::Relaxed))
    }
}

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

struct Ctx<'a> {
    app: &'a App,
    owner: &'a str,
    job: &'a MediaRecord,
}

impl Ctx<'_> {
    async fn record(&self, update: MediaUpdate) -> Result<(), StepError> {
        if !self
            .app
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
}

/// Removes a directory when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn run(
    app: &App,
    cfg: &MediaConfig,
    owner: &str,
    job: &MediaRecord,
    upload: Option<&Upload>,
    progress: Arc<Progress>,
) -> Result<Option<Published>, StepError> {
    let ctx = Ctx { app, owner, job };
    // A run that died while publishing left a version nobody points at.
    if let Some(v) = &job.pending_version
        && job.published.as_ref().map(|p| &p.version) != Some(v)
    {
        app.storage.delete_media(&key(&job.id, Some(v))).await?;
    }
    let upload = upload.ok_or_else(|| {
        StepError::permanent("original_missing", "the upload is no longer stored")
    })?;
    ctx.record(MediaUpdate {
        status: Some(MediaStatus::Validating),
        ..Default::default()
    })
    .await?;

    let head = read_head(app, &job.id, job.length.min(SNIFF_BYTES as u64)).await?;
    let detected = detect::detect(&head, upload.metadata.as_ref(), |m| cfg.allows(m));
    if let Ok(mime) = detected {
        ctx.record(MediaUpdate {
            detected: Some(mime.to_owned()),
            ..Default::default()
        })
        .await?;
    }
    if let Some(scan) = &cfg.scan {
        ctx.record(MediaUpdate {
            status: Some(MediaStatus::Scanning),
            ..Default::default()
        })
        .await?;
        let last_attempt = job.attempts >= cfg.max_attempts;
        let found = super::scan::run(app, scan, job, last_attempt).await?;
        let infected = found.outcome == ScanOutcome::Infected;
        ctx.record(MediaUpdate {
            scan: Some(found.clone()),
            ..Default::default()
        })
        .await?;
        if infected {
            return Err(super::scan::infected(&found));
        }
    }
    // Scanned first, whatever the type: malware is reported as such, not as a wrong type.
    let mime = detected.map_err(|r| StepError::rejected(r.code, r.message))?;
    ctx.record(MediaUpdate {
        status: Some(MediaStatus::Processing),
        ..Default::default()
    })
    .await?;

    if mime.starts_with("image/") {
        // Images get their own step (variants, limits checked from the header); until then
        // the detected type is what is recorded.
        return Ok(None);
    }
    // One run of a job at a time (the lease): its directory is named after the job, and what a
    // dead run left there goes now.
    let scratch = Scratch(MediaConfig::work_dir(&app.config.data_dir).join(job.id.as_str()));
    let _ = tokio::fs::remove_dir_all(&scratch.0).await;
    tokio::fs::create_dir_all(&scratch.0).await?;
    let input = match app.storage.local_path(&job.id) {
        Some(p) => p,
        None => download(app, &job.id, job.length, &scratch.0.join("original")).await?,
    };
    let probe = probe(&input).await?;
    // Recorded first: a rejection for size or length shows what was found.
    ctx.record(MediaUpdate {
        probe: Some(probe.clone()),
        ..Default::default()
    })
    .await?;
    check_limits(cfg, &probe)?;
    let Some(video) = &probe.video else {
        // Images and audio get their variants in a later step; their facts are recorded.
        return Ok(None);
    };
    let plan = super::plan::plan(video, &cfg.ladder, cfg.hls_segment);
    let out = scratch.0.join("out");
    tokio::fs::create_dir_all(&out).await?;
    let produced = transcode(&input, &out, &probe, &plan, cfg, progress).await?;
    if produced.variable_frame_rate && !video.variable_frame_rate {
        // Seen while decoding: the frames' durations varied though the container named a rate.
        let mut probe = probe.clone();
        if let Some(v) = probe.video.as_mut() {
            v.variable_frame_rate = true;
        }
        ctx.record(MediaUpdate {
            probe: Some(probe),
            ..Default::default()
        })
        .await?;
    }
    let version = format!(
        "v{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    );
    ctx.record(MediaUpdate {
        pending_version: Some(version.clone()),
        ..Default::default()
    })
    .await?;
    let variants = super::publish::publish(app, &job.id, &version, &out, &produced).await?;
    Ok(Some(Published { version, variants }))
}

fn check_limits(cfg: &MediaConfig, probe: &Probe) -> Result<(), StepError> {
    if let Some(ms) = probe.duration_ms
        && Duration::from_millis(ms) > cfg.max_duration
    {
        return Err(StepError::rejected(
            "too_long",
            format!(
                "the media lasts {}s; at most {}s is accepted",
                ms / 1000,
                cfg.max_duration.as_secs()
            ),
        ));
    }
    if let Some(v) = &probe.video {
        let pixels = v.coded_width as u64 * v.coded_height as u64;
        if pixels > cfg.max_pixels {
            return Err(StepError::rejected(
                "too_large",
                format!(
                    "the picture is {}x{} ({pixels} pixels); at most {} are accepted",
                    v.coded_width, v.coded_height, cfg.max_pixels
                ),
            ));
        }
    }
    Ok(())
}

async fn read_head(app: &App, id: &UploadId, n: u64) -> Result<Vec<u8>, StepError> {
    let mut out = Vec::with_capacity(n as usize);
    if n == 0 {
        return Ok(out);
    }
    let mut stream = app.storage.read(id, 0..n).await?;
    while let Some(chunk) = stream.try_next().await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Copies an object-stored original to local disk, where the decoders can seek in it.
async fn download(app: &App, id: &UploadId, len: u64, to: &Path) -> Result<PathBuf, StepError> {
    let mut file = tokio::fs::File::create(to).await?;
    let mut stream = app.storage.read(id, 0..len).await?;
    while let Some(chunk) = stream.try_next().await? {
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(to.to_owned())
}

/// Blocking GStreamer work on the blocking pool; a panic in it is a failed run, not a dead
/// worker.
#[cfg(feature = "media")]
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StepError> + Send + 'static,
) -> Result<T, StepError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(StepError::transient(
            "crashed",
            format!("the step panicked: {e}"),
        ))
    })
}

#[cfg(feature = "media")]
async fn probe(input: &Path) -> Result<Probe, StepError> {
    let input = input.to_owned();
    blocking(move || super::gst::probe::probe(&input, PROBE_TIMEOUT)).await
}

#[cfg(not(feature = "media"))]
async fn probe(_input: &Path) -> Result<Probe, StepError> {
    Err(StepError::permanent(
        "unsupported",
        "built without the media pipeline",
    ))
}

/// What the transcode left in the output directory.
pub struct Produced {
    /// Per rendition: directory, width, height, frame rate, RFC 6381 codecs.
    pub renditions: Vec<(String, u32, u32, f64, String)>,
    /// (file, width, height) of the poster and thumbnails.
    pub images: Vec<(String, u32, u32)>,
    /// The decoded frames' durations varied (the container may not say so).
    pub variable_frame_rate: bool,
}

#[cfg(feature = "media")]
async fn transcode(
    input: &Path,
    out: &Path,
    probe: &Probe,
    plan: &super::plan::Plan,
    cfg: &MediaConfig,
    progress: Arc<Progress>,
) -> Result<Produced, StepError> {
    use super::gst::transcode;
    let (input, out, probe, plan) = (
        input.to_owned(),
        out.to_owned(),
        probe.clone(),
        plan.clone(),
    );
    let (segment, widths) = (cfg.hls_segment, cfg.thumb_widths.clone());
    blocking(move || {
        let report = |p: f32| progress.percent.store(p.to_bits(), Ordering::Relaxed);
        let result = transcode::run(&transcode::Job {
            input: &input,
            out_dir: &out,
            probe: &probe,
            plan: &plan,
            segment,
            budget: budget(probe.duration_ms),
            stall: STALL,
            cancel: &progress.cancel,
            progress: &report,
        })?;
        truncated(probe.duration_ms, result.decoded_ms)?;
        let fps = plan.fps.0 as f64 / plan.fps.1 as f64;
        let audio = if result.has_audio { ",mp4a.40.2" } else { "" };
        let renditions = result
            .renditions
            .iter()
            .zip(&plan.renditions)
            .map(|((dir, profile, level), r)| {
                let codecs = format!("{}{audio}", super::hls::avc1(profile, level));
                (dir.clone(), r.width, r.height, fps, codecs)
            })
            .collect();
        let images = match super::poster::pick(result.frames) {
            Some(frame) => super::poster::write(frame, &widths, &out)?,
            None => Vec::new(),
        };
        Ok(Produced {
            renditions,
            images,
            variable_frame_rate: result.variable_frame_rate,
        })
    })
    .await
}

/// A file whose video stops well before the duration its container declares was cut short
/// (its upload was complete, but the file itself was not): the outputs would silently lack
/// the rest.
pub fn truncated(declared_ms: Option<u64>, decoded_ms: u64) -> Result<(), StepError> {
    let Some(declared) = declared_ms else {
        return Ok(());
    };
    let slack = (declared / 10).max(1000);
    if decoded_ms + slack < declared {
        return Err(StepError::permanent(
            "truncated",
            format!(
                "the video stops at {:.1}s of the {:.1}s the file declares: the file is cut short",
                decoded_ms as f64 / 1000.0,
                declared as f64 / 1000.0
            ),
        ));
    }
    Ok(())
}

#[cfg(not(feature = "media"))]
async fn transcode(
    _input: &Path,
    _out: &Path,
    _probe: &Probe,
    _plan: &super::plan::Plan,
    _cfg: &MediaConfig,
    _progress: Arc<Progress>,
) -> Result<Produced, StepError> {
    Err(StepError::permanent(
        "unsupported",
        "built without the media pipeline",
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_video_cut_short_is_truncated() {
        assert!(super::truncated(Some(10_000), 4_900).is_err());
        // The last frame's time, and a video a little shorter than its audio, are fine.
        assert!(super::truncated(Some(10_000), 9_966).is_ok());
        assert!(super::truncated(Some(3_000), 2_367).is_ok());
        assert!(super::truncated(None, 0).is_ok());
    }
}
