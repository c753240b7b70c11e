//! Step 3 for video: one decode feeding every rendition. The pipeline is built from the probe
//! (an audio branch only when there is audio), never from a fixed launch string:
//!
//! ```text
//! filesrc ! decodebin ─video─▶ queue ! videoconvert ! I420 ! deinterlace ! videoflip ! videorate ! fps ! tee
//!                                tee ─▶ queue ! videoscale ! WxH ! x264enc ! high ! h264parse ! hlssink2[i].video
//!                                tee ─▶ videoscale ! videoconvert ! queue ! RGB appsink   (poster, preview, storyboard frames: one branch each)
//!                   (--mp4-fallback) h264parse[k] ! tee ─▶ queue ! h264parse ! mp4mux ! filesink (fallback.mp4)
//!                     ─audio─▶ queue ! audioconvert ! audioresample ! voaacenc ! aacparse ! tee ─▶ hlssink2[i].audio
//! ```
//!
//! An HDR source (HLG or PQ, as the probe found it) is tone-mapped right after the decoder, by
//! `videoconvert ! I420_10LE ! ToneMap` (see `tonemap`), so every branch gets SDR BT.709.
//!
//! I420 before the encoders: x264enc would otherwise pick 4:4:4 (or 10-bit) that browsers
//! cannot play. Every encoder has the same fixed GOP of one segment with scene cuts off, so
//! every rendition's keyframes (and segment cuts) fall on the same frames. Tag events are
//! dropped at the decoder's pads: nothing of the source's metadata (GPS, make, model) reaches
//! an output. The run is watched: a time budget, a stall watchdog and a cancel flag; the
//! pipeline is set to Null however it ends.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::elements::{NullOnDrop, direction};

use crate::domain::media::{Probe, VideoFacts};
use crate::media::extras::Extras;
use crate::media::plan::{Plan, Sound};
use crate::media::steps::StepError;

mod graph;
mod routes;
#[cfg(test)]
mod tests;

use graph::{Graph, Renditions, Timing, ToneMapping, add_audio_chain, add_source, add_video_chain};
use routes::Routes;

/// A decoded frame, RGB, for the poster.
pub struct Frame {
    pub width: u32,
    pub height: u32,
    /// When it shows, in the source's time.
    pub pts_ns: u64,
    pub rgb: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("pts_ns", &self.pts_ns)
            .finish_non_exhaustive()
    }
}

/// What a run produced, besides the files under the output directory.
pub struct Output {
    /// Per rendition, in plan order: its directory under the output and the H.264 profile and
    /// level the encoder settled on.
    pub renditions: Vec<(String, String, String)>,
    pub frames: Vec<Frame>,
    /// Frames at the preview's and the storyboard's times.
    pub preview: Vec<Frame>,
    pub storyboard: Vec<Frame>,
    /// The sound's own rendition directory (`Sound::Own`, when there was sound).
    pub audio_dir: Option<String>,
    /// `fallback.mp4` was written.
    pub mp4: bool,
    /// The decoded frames' durations varied.
    pub variable_frame_rate: bool,
    pub has_audio: bool,
    /// How far the video was decoded (the last frame's time), ms.
    pub decoded_ms: u64,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("renditions", &self.renditions)
            .finish_non_exhaustive()
    }
}

pub struct Job<'a> {
    pub input: &'a Path,
    pub out_dir: &'a Path,
    pub probe: &'a Probe,
    pub plan: &'a Plan,
    /// The plan's renditions this run encodes (written to `r{index}`): all of them, or a
    /// stage's share.
    pub rungs: std::ops::Range<usize>,
    /// Whether this run also takes the poster candidates, the preview's frames and the
    /// storyboard's tiles (one run of a video does).
    pub stills: bool,
    pub extras: &'a Extras,
    pub segment: u32,
    /// Where the sound goes (when there is any).
    pub sound: Sound,
    /// The part of the source this run encodes, [start, stop) in ns: a chunk (None: all of
    /// it). Its outputs carry the source's times, so chunks' segments continue each other.
    pub range: Option<(u64, u64)>,
    /// The longest the whole run may take.
    pub budget: Duration,
    /// The longest the media position may stand still.
    pub stall: Duration,
    pub cancel: &'a AtomicBool,
    /// Called with the percentage done, about once a second.
    pub progress: &'a (dyn Fn(f32) + Sync),
}

impl std::fmt::Debug for Job<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("input", &self.input)
            .field("out_dir", &self.out_dir)
            .field("plan", &self.plan)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// An HDR source's tone mapping, scaled first to the plan's largest rendition (in the coded
/// picture's orientation) when that is smaller; progressive sources only, since scaling
/// before the deinterlacer would mix fields.
fn tone_mapping(video: &VideoFacts, plan: &Plan) -> Option<ToneMapping> {
    let (transfer, peak_nits) = crate::media::hdr::tone_map(video.color.as_ref())?;
    let top = plan.renditions.last()?;
    let (w, h) = match video.rotation {
        90 | 270 => (top.height, top.width),
        _ => (top.width, top.height),
    };
    let smaller = (w as u64 * h as u64) < video.coded_width as u64 * video.coded_height as u64;
    Some(ToneMapping {
        transfer,
        peak_nits,
        scale_to: (smaller && !video.interlaced).then_some((w, h)),
    })
}

pub fn run(job: &Job<'_>) -> Result<Output, StepError> {
    super::init()?;
    let video = job
        .probe
        .video
        .as_ref()
        .ok_or_else(|| StepError::permanent("no_video", "the file has no video stream"))?;
    let pipeline = gst::Pipeline::new();
    let guard = NullOnDrop(pipeline.clone());
    let decode = add_source(&pipeline, job.input)?;

    // Video: one upright, constant-rate, I420 stream into a tee.
    let flip = direction(video.rotation, video.flipped);
    let tone_map = tone_mapping(video, job.plan);
    let (vq_sink, vtee) = add_video_chain(&pipeline, job.plan.fps, flip, tone_map)?;
    if let Some((start, _)) = job.range {
        // The seek starts the running time at 0; everything after the tee (the encoders, the
        // HLS muxers) sees it from the chunk's start instead, so the chunk's segments carry
        // the source's times and continue the chunk before.
        let offset = i64::try_from(start).unwrap_or(i64::MAX);
        vtee.static_pad("sink")
            .expect("tee has a sink pad")
            .set_offset(offset);
    }

    // How far the decode has come (progress, stall watchdog), and whether frame durations vary.
    let timing = Timing::track(&vq_sink);

    // Audio, only when the probe found some and the run writes it.
    let audio = match job.sound {
        Sound::Without => None,
        _ => add_audio_chain(&pipeline, job)?,
    };
    let graph = Graph {
        job,
        pipeline: &pipeline,
        vtee,
        audio,
    };

    // One encoder and one HLS sink per rendition.
    let Renditions { parsers, dirs, mp4 } = graph.add_renditions()?;

    // The sound's own rendition.
    let audio_dir = match job.sound {
        Sound::Own => graph.add_audio_rendition()?,
        _ => None,
    };

    // The MP4's sound, from the same AAC stream.
    if let Some(mux) = &mp4 {
        graph.link_mp4_audio(mux)?;
    }

    // Poster candidates (at 10, 25 and 50% of the way, at the top rendition's size), the
    // preview's frames and the storyboard's tiles, each through a branch of its own.
    let (frames, preview, storyboard) = if job.stills {
        graph.frame_branches()?
    } else {
        Default::default()
    };

    // The decoder's pads: the first video and audio stream go to their chains, the rest (a
    // second audio track, subtitles) to a fakesink. A chain no stream reached gets EOS.
    let routes = Routes::connect(&decode, &pipeline, vq_sink, graph.audio.as_ref());

    start_and_watch(job, &pipeline, &timing.position)?;
    if job.range.is_some() {
        drop_prerolls(job.out_dir, dirs.iter().chain(&audio_dir))?;
    }

    let renditions = rendition_profiles(&parsers, dirs);
    drop(guard);
    if !routes.linked_video.load(Ordering::SeqCst) {
        return Err(StepError::permanent(
            "decode_failed",
            "no video stream could be decoded",
        ));
    }
    let take = |f: &Mutex<Vec<Frame>>| std::mem::take(&mut *f.lock().expect("not poisoned"));
    Ok(Output {
        renditions,
        frames: take(&frames),
        preview: take(&preview),
        storyboard: take(&storyboard),
        audio_dir: audio_dir.filter(|_| routes.linked_audio.load(Ordering::SeqCst)),
        mp4: mp4.is_some(),
        variable_frame_rate: timing.variable(),
        has_audio: routes.linked_audio.load(Ordering::SeqCst),
        decoded_ms: timing.position.load(Ordering::Relaxed) / 1_000_000,
    })
}

/// Starts the pipeline and waits for it to finish under the job's budget, stall watchdog and
/// cancel flag.
fn start_and_watch(
    job: &Job<'_>,
    pipeline: &gst::Pipeline,
    position: &AtomicU64,
) -> Result<(), StepError> {
    // Transcodes are the slow lane's work: every streaming thread (and the encoders' threads
    // it starts) runs at a lower priority, so fast work and requests on the same cores are not
    // slowed by them; with nothing else to run they take the whole machine as before.
    let bus = pipeline.bus().expect("a pipeline has a bus");
    bus.set_sync_handler(|_, msg| {
        if let gst::MessageView::StreamStatus(s) = msg.view()
            && s.get().0 == gst::StreamStatusType::Enter
        {
            lower_this_threads_priority();
        }
        gst::BusSyncReply::Pass
    });
    if let Some(range) = job.range {
        seek_to(job, pipeline, range)?;
    }
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| StepError::permanent("decode_failed", "the pipeline could not start"))?;
    let watch = super::watch::Watch {
        duration_ms: match job.range {
            Some((_, stop)) => job.probe.duration_ms.map(|d| d.min(stop / 1_000_000)),
            None => job.probe.duration_ms,
        },
        from_ms: job.range.map_or(0, |(start, _)| start / 1_000_000),
        budget: job.budget,
        stall: job.stall,
        cancel: job.cancel,
        progress: job.progress,
    };
    super::watch::watch(&watch, pipeline, position, &mut |_| {})
}

/// Removes the empty fragment a chunk's preroll left first in each rendition's playlist.
fn drop_prerolls<'d>(out: &Path, dirs: impl Iterator<Item = &'d String>) -> Result<(), StepError> {
    for dir in dirs {
        let playlist = out.join(dir).join("index.m3u8");
        let Ok(text) = std::fs::read_to_string(&playlist) else {
            continue;
        };
        if let (kept, Some(uri)) = crate::media::hls::drop_preroll(&text) {
            std::fs::write(&playlist, kept)?;
            let _ = std::fs::remove_file(out.join(dir).join(uri));
        }
    }
    Ok(())
}

/// Prerolls the pipeline and seeks it to `[start, stop)`: decoders drop what comes before
/// `start` (frame-exact, whatever the source's keyframes) and end the stream at `stop`.
fn seek_to(
    job: &Job<'_>,
    pipeline: &gst::Pipeline,
    (start, stop): (u64, u64),
) -> Result<(), StepError> {
    let failed =
        |what: &str| StepError::permanent("decode_failed", format!("the chunk's {what} failed"));
    pipeline
        .set_state(gst::State::Paused)
        .map_err(|_| failed("preroll"))?;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let started = std::time::Instant::now();
    loop {
        if job.cancel.load(Ordering::Relaxed) {
            return Err(StepError::transient("cancelled", "the run was stopped"));
        }
        if started.elapsed() > job.stall {
            return Err(failed("preroll"));
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::AsyncDone(_) => break,
            gst::MessageView::Error(e) => {
                return Err(StepError::permanent("decode_failed", e.error().to_string()));
            }
            gst::MessageView::Eos(_) => return Err(failed("preroll")),
            _ => {}
        }
    }
    pipeline
        .seek(
            1.0,
            gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
            gst::SeekType::Set,
            gst::ClockTime::from_nseconds(start),
            if stop == u64::MAX {
                gst::SeekType::None
            } else {
                gst::SeekType::Set
            },
            gst::ClockTime::from_nseconds(stop.min(u64::MAX - 1)),
        )
        .map_err(|_| failed("seek"))
}

/// The nice value of a transcode's threads.
const TRANSCODE_NICE: i32 = 10;

/// Lowers the calling thread's priority (Linux: nice is per thread, and threads it starts
/// inherit it). Best effort: a thread already lower stays so.
fn lower_this_threads_priority() {
    let tid = rustix::thread::gettid();
    match rustix::process::getpriority_process(Some(tid)) {
        Ok(nice) if nice >= TRANSCODE_NICE => {}
        _ => {
            if let Err(e) = rustix::process::setpriority_process(Some(tid), TRANSCODE_NICE) {
                tracing::debug!("cannot lower a transcode thread's priority: {e}");
            }
        }
    }
}

/// Each rendition's directory with the H.264 profile and level its parser settled on.
fn rendition_profiles(
    parsers: &[gst::Element],
    dirs: Vec<String>,
) -> Vec<(String, String, String)> {
    let mut renditions = Vec::new();
    for (parse, dir) in parsers.iter().zip(dirs) {
        let caps = parse.static_pad("src").and_then(|p| p.current_caps());
        let s = caps.as_ref().and_then(|c| c.structure(0));
        let profile = s
            .and_then(|s| s.get::<String>("profile").ok())
            .unwrap_or_else(|| "high".into());
        let level = s
            .and_then(|s| s.get::<String>("level").ok())
            .unwrap_or_else(|| "4".into());
        renditions.push((dir, profile, level));
    }
    renditions
}
