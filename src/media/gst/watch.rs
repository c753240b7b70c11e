//! Waiting for a pipeline to finish: the bus, the time budget, the stall watchdog, the cancel
//! flag and progress reports. A decoder's error becomes the job's reason.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::media::steps::StepError;

/// What a run is watched for.
pub struct Watch<'a> {
    /// The media's length, for progress.
    pub duration_ms: Option<u64>,
    /// Where in the media the run starts (a chunk's start), ms: progress counts from there.
    pub from_ms: u64,
    /// The longest the whole run may take.
    pub budget: Duration,
    /// The longest the media position may stand still.
    pub stall: Duration,
    pub cancel: &'a AtomicBool,
    /// Called with the percentage done, about once a second.
    pub progress: &'a (dyn Fn(f32) + Sync),
}

impl std::fmt::Debug for Watch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("duration_ms", &self.duration_ms)
            .field("budget", &self.budget)
            .field("stall", &self.stall)
            .finish_non_exhaustive()
    }
}

/// Waits for the end of the stream on the bus, under the budget, the stall watchdog and the
/// cancel flag, reporting progress. `on_message` sees every other message (tags, say).
pub fn watch(
    job: &Watch<'_>,
    pipeline: &gst::Pipeline,
    position: &AtomicU64,
    on_message: &mut dyn FnMut(&gst::Message),
) -> Result<(), StepError> {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let started = Instant::now();
    let from_ns = job.from_ms * 1_000_000;
    let duration_ns = job
        .duration_ms
        .unwrap_or(0)
        .saturating_sub(job.from_ms)
        .max(1)
        * 1_000_000;
    let (mut last_pos, mut last_move, mut last_report) = (0u64, Instant::now(), Instant::now());
    loop {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            match msg.view() {
                gst::MessageView::Eos(_) => return Ok(()),
                gst::MessageView::Error(err) => {
                    let from = err
                        .src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default();
                    let e = err.error();
                    let detail = format!("{} ({from})", e.message());
                    tracing::debug!(debug = ?err.debug(), "pipeline error: {detail}");
                    return Err(match e.kind::<gst::ResourceError>() {
                        Some(gst::ResourceError::NoSpaceLeft | gst::ResourceError::Write) => {
                            StepError::transient("io", detail)
                        }
                        _ => StepError::permanent("decode_failed", detail),
                    });
                }
                _ => on_message(&msg),
            }
        }
        if job.cancel.load(Ordering::Relaxed) {
            return Err(StepError::transient("cancelled", "the run was stopped"));
        }
        let pos = position.load(Ordering::Relaxed);
        if pos > last_pos {
            last_pos = pos;
            last_move = Instant::now();
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let done = pos.saturating_sub(from_ns);
            (job.progress)((done as f64 * 100.0 / duration_ns as f64).min(99.0) as f32);
        }
        if last_move.elapsed() > job.stall {
            return Err(StepError::permanent(
                "stalled",
                format!(
                    "decoding made no progress for {}s (at {:.1}s)",
                    job.stall.as_secs(),
                    pos as f64 / 1e9
                ),
            ));
        }
        if started.elapsed() > job.budget {
            return Err(StepError::permanent(
                "time_budget",
                format!("processing took longer than {}s", job.budget.as_secs()),
            ));
        }
    }
}
