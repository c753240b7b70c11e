//! Step 3 for video: one decode feeding every rendition. The pipeline is built from the probe
//! (an audio branch only when there is audio), never from a fixed launch string:
//!
//! ```text
//! filesrc ! decodebin ─video─▶ queue ! videoconvert ! I420 ! videoflip ! videorate ! fps ! tee
//!                                tee ─▶ queue ! videoscale ! WxH ! x264enc ! high ! h264parse ! hlssink2[i].video
//!                                tee ─▶ queue ! videoscale ! videoconvert ! RGB ! appsink  (poster candidates)
//!                     ─audio─▶ queue ! audioconvert ! audioresample ! voaacenc ! aacparse ! tee ─▶ hlssink2[i].audio
//! ```
//!
//! I420 before the encoders: x264enc would otherwise pick 4:4:4 (or 10-bit) that browsers
//! cannot play. Every encoder has the same fixed GOP of one segment with scene cuts off, so
//! every rendition's keyframes (and segment cuts) fall on the same frames. Tag events are
//! dropped at the decoder's pads: nothing of the source's metadata (GPS, make, model) reaches
//! an output. The run is watched: a time budget, a stall watchdog and a cancel flag; the
//! pipeline is set to Null however it ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use crate::media::plan::Plan;
use crate::media::record::Probe;
use crate::media::steps::StepError;

/// A decoded frame, RGB, for the poster.
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// What a run produced, besides the files under the output directory.
pub struct Output {
    /// Per rendition, in plan order: its directory under the output and the H.264 profile and
    /// level the encoder settled on.
    pub renditions: Vec<(String, String, String)>,
    pub frames: Vec<Frame>,
    /// The decoded frames' durations varied.
    pub variable_frame_rate: bool,
    pub has_audio: bool,
    /// How far the video was decoded (the last frame's time), ms.
    pub decoded_ms: u64,
}

pub struct Job<'a> {
    pub input: &'a Path,
    pub out_dir: &'a Path,
    pub probe: &'a Probe,
    pub plan: &'a Plan,
    pub segment: u32,
    /// The longest the whole run may take.
    pub budget: Duration,
    /// The longest the media position may stand still.
    pub stall: Duration,
    pub cancel: &'a AtomicBool,
    /// Called with the percentage done, about once a second.
    pub progress: &'a (dyn Fn(f32) + Sync),
}

/// Sets the pipeline to Null when dropped, however the run ends.
struct NullOnDrop(gst::Pipeline);

impl Drop for NullOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

fn make(factory: &str) -> Result<gst::Element, StepError> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        StepError::permanent(
            "missing_plugin",
            format!("the GStreamer element {factory} is not installed"),
        )
    })
}

fn caps_filter(caps: gst::Caps) -> Result<gst::Element, StepError> {
    gst::ElementFactory::make("capsfilter")
        .property("caps", caps)
        .build()
        .map_err(|_| StepError::permanent("missing_plugin", "capsfilter is not installed"))
}

fn link_err(what: &str) -> impl Fn(gst::glib::BoolError) -> StepError + '_ {
    move |e| StepError::permanent("pipeline", format!("cannot link {what}: {e}"))
}

/// Drops tag events (the source's metadata) passing `pad`. The probe takes the event and says
/// it handled it: answering `Drop` instead makes GStreamer unref an event the bindings already
/// released (a GStreamer-CRITICAL on every tag).
fn drop_tags(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
        if info
            .event()
            .is_some_and(|e| e.type_() == gst::EventType::Tag)
        {
            info.data = None;
            return gst::PadProbeReturn::Handled;
        }
        gst::PadProbeReturn::Ok
    });
}

/// The `videoflip` direction that shows the coded picture upright.
fn direction(rotation: u32, flipped: bool) -> &'static str {
    match (rotation, flipped) {
        (90, false) => "90r",
        (180, false) => "180",
        (270, false) => "90l",
        (0, true) => "horiz",
        (90, true) => "ul-lr",
        (180, true) => "vert",
        (270, true) => "ur-ll",
        _ => "identity",
    }
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
    let src = gst::ElementFactory::make("filesrc")
        .property("location", job.input.to_str().unwrap_or_default())
        .build()
        .map_err(|_| StepError::permanent("missing_plugin", "filesrc is not installed"))?;
    let decode = make("decodebin")?;
    pipeline
        .add_many([&src, &decode])
        .map_err(link_err("the source"))?;
    src.link(&decode).map_err(link_err("the source"))?;

    // Video: one upright, constant-rate, I420 stream into a tee.
    let (num, den) = job.plan.fps;
    let vq = make("queue")?;
    let vconv = make("videoconvert")?;
    let i420 = caps_filter(
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .build(),
    )?;
    let flip = make("videoflip")?;
    flip.set_property_from_str("video-direction", direction(video.rotation, video.flipped));
    let rate = make("videorate")?;
    let fps = caps_filter(
        gst::Caps::builder("video/x-raw")
            .field("framerate", gst::Fraction::new(num, den))
            .build(),
    )?;
    let vtee = make("tee")?;
    let chain = [&vq, &vconv, &i420, &flip, &rate, &fps, &vtee];
    pipeline
        .add_many(chain)
        .map_err(link_err("the video chain"))?;
    gst::Element::link_many(chain).map_err(link_err("the video chain"))?;
    let vq_sink = vq.static_pad("sink").expect("queue has a sink pad");
    drop_tags(&vq_sink);

    // How far the decode has come (progress, stall watchdog), and whether frame durations vary.
    let position = Arc::new(AtomicU64::new(0));
    let (min_gap, max_gap) = (
        Arc::new(AtomicU64::new(u64::MAX)),
        Arc::new(AtomicU64::new(0)),
    );
    {
        let (position, min_gap, max_gap) = (position.clone(), min_gap.clone(), max_gap.clone());
        let last = Mutex::new(None::<u64>);
        vq_sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(pts) = info.buffer().and_then(|b| b.pts()).map(|p| p.nseconds()) {
                position.fetch_max(pts, Ordering::Relaxed);
                let mut last = last.lock().expect("not poisoned");
                if let Some(prev) = *last
                    && pts > prev
                {
                    min_gap.fetch_min(pts - prev, Ordering::Relaxed);
                    max_gap.fetch_max(pts - prev, Ordering::Relaxed);
                }
                *last = Some(pts);
            }
            gst::PadProbeReturn::Ok
        });
    }

    // Audio, only when the probe found some.
    let audio = match &job.probe.audio {
        None => None,
        Some(a) => {
            let aq = make("queue")?;
            let aconv = make("audioconvert")?;
            let resample = make("audioresample")?;
            let rate = if a.sample_rate == 44_100 {
                44_100
            } else {
                48_000
            };
            let araw = caps_filter(
                gst::Caps::builder("audio/x-raw")
                    .field("rate", rate)
                    .field("channels", a.channels.clamp(1, 2) as i32)
                    .build(),
            )?;
            let aenc = gst::ElementFactory::make("voaacenc")
                .property("bitrate", 128_000i32)
                .build()
                .map_err(|_| StepError::permanent("missing_plugin", "voaacenc is not installed"))?;
            let aparse = make("aacparse")?;
            let atee = make("tee")?;
            let chain = [&aq, &aconv, &resample, &araw, &aenc, &aparse, &atee];
            pipeline
                .add_many(chain)
                .map_err(link_err("the audio chain"))?;
            gst::Element::link_many(chain).map_err(link_err("the audio chain"))?;
            drop_tags(&aq.static_pad("sink").expect("queue has a sink pad"));
            Some((aq, atee))
        }
    };

    // One encoder and one HLS sink per rendition.
    let mut parsers = Vec::new();
    let mut dirs = Vec::new();
    for (i, r) in job.plan.renditions.iter().enumerate() {
        let name = format!("r{i}");
        let dir = job.out_dir.join(&name);
        std::fs::create_dir_all(&dir)?;
        let q = gst::ElementFactory::make("queue")
            .property("max-size-time", 3 * gst::ClockTime::SECOND)
            .build()
            .map_err(|_| StepError::permanent("missing_plugin", "queue is not installed"))?;
        let scale = gst::ElementFactory::make("videoscale")
            .property("add-borders", false)
            .build()
            .map_err(|_| StepError::permanent("missing_plugin", "videoscale is not installed"))?;
        let size = caps_filter(
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", r.width as i32)
                .field("height", r.height as i32)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build(),
        )?;
        let enc = gst::ElementFactory::make("x264enc")
            .property("bitrate", r.kbps)
            .property("key-int-max", job.plan.gop)
            .property(
                "option-string",
                format!(
                    "scenecut=0:min-keyint={}:keyint={}",
                    job.plan.gop, job.plan.gop
                ),
            )
            .build()
            .map_err(|_| StepError::permanent("missing_plugin", "x264enc is not installed"))?;
        enc.set_property_from_str("speed-preset", "veryfast");
        let profile = caps_filter(
            gst::Caps::builder("video/x-h264")
                .field("profile", "high")
                .build(),
        )?;
        let parse = make("h264parse")?;
        let sink = gst::ElementFactory::make("hlssink2")
            .property(
                "location",
                dir.join("seg%05d.ts").to_str().unwrap_or_default(),
            )
            .property(
                "playlist-location",
                dir.join("index.m3u8").to_str().unwrap_or_default(),
            )
            .property("target-duration", job.segment)
            .property("max-files", 0u32)
            .property("playlist-length", 0u32)
            .property("send-keyframe-requests", false)
            .build()
            .map_err(|_| StepError::permanent("missing_plugin", "hlssink2 is not installed"))?;
        let chain = [&q, &scale, &size, &enc, &profile, &parse];
        pipeline.add_many(chain).map_err(link_err("a rendition"))?;
        pipeline.add(&sink).map_err(link_err("a rendition"))?;
        gst::Element::link_many(chain).map_err(link_err("a rendition"))?;
        let tee_pad = vtee
            .request_pad_simple("src_%u")
            .ok_or_else(|| StepError::permanent("pipeline", "tee gave no pad"))?;
        tee_pad
            .link(&q.static_pad("sink").expect("queue has a sink pad"))
            .map_err(|e| StepError::permanent("pipeline", format!("tee: {e:?}")))?;
        let vpad = sink
            .request_pad_simple("video")
            .ok_or_else(|| StepError::permanent("pipeline", "hlssink2 gave no video pad"))?;
        parse
            .static_pad("src")
            .expect("h264parse has a src pad")
            .link(&vpad)
            .map_err(|e| StepError::permanent("pipeline", format!("hlssink2 video: {e:?}")))?;
        if let Some((_, atee)) = &audio {
            let aq = make("queue")?;
            pipeline.add(&aq).map_err(link_err("an audio branch"))?;
            let from = atee
                .request_pad_simple("src_%u")
                .ok_or_else(|| StepError::permanent("pipeline", "tee gave no pad"))?;
            from.link(&aq.static_pad("sink").expect("queue has a sink pad"))
                .map_err(|e| StepError::permanent("pipeline", format!("audio tee: {e:?}")))?;
            let apad = sink
                .request_pad_simple("audio")
                .ok_or_else(|| StepError::permanent("pipeline", "hlssink2 gave no audio pad"))?;
            aq.static_pad("src")
                .expect("queue has a src pad")
                .link(&apad)
                .map_err(|e| StepError::permanent("pipeline", format!("hlssink2 audio: {e:?}")))?;
        }
        parsers.push(parse);
        dirs.push(name);
    }

    // Poster candidates: a few frames through their own branch, at the top rendition's size.
    let top = job.plan.renditions.last().expect("a plan has a rendition");
    let frames = Arc::new(Mutex::new(Vec::<Frame>::new()));
    {
        let q = make("queue")?;
        let scale = make("videoscale")?;
        let conv = make("videoconvert")?;
        let rgb = gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", top.width as i32)
            .field("height", top.height as i32)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build();
        let appsink = gst_app::AppSink::builder().caps(&rgb).sync(false).build();
        let frames = frames.clone();
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(frame) = copy_frame(&sample) {
                        frames.lock().expect("not poisoned").push(frame);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let appsink: gst::Element = appsink.upcast();
        let chain = [&q, &scale, &conv, &appsink];
        pipeline
            .add_many(chain)
            .map_err(link_err("the poster branch"))?;
        gst::Element::link_many(chain).map_err(link_err("the poster branch"))?;
        let tee_pad = vtee
            .request_pad_simple("src_%u")
            .ok_or_else(|| StepError::permanent("pipeline", "tee gave no pad"))?;
        let duration_ns = job.probe.duration_ms.unwrap_or(0) * 1_000_000;
        let wanted: Vec<u64> = [0.1, 0.25, 0.5]
            .iter()
            .map(|f| (duration_ns as f64 * f) as u64)
            .collect();
        let next = Mutex::new(0usize);
        tee_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let pts = info
                .buffer()
                .and_then(|b| b.pts())
                .map_or(0, |p| p.nseconds());
            let mut next = next.lock().expect("not poisoned");
            if *next < wanted.len() && pts >= wanted[*next] {
                while *next < wanted.len() && pts >= wanted[*next] {
                    *next += 1;
                }
                gst::PadProbeReturn::Ok
            } else {
                gst::PadProbeReturn::Drop
            }
        });
        tee_pad
            .link(&q.static_pad("sink").expect("queue has a sink pad"))
            .map_err(|e| StepError::permanent("pipeline", format!("tee: {e:?}")))?;
    }

    // The decoder's pads: the first video and audio stream go to their chains, the rest (a
    // second audio track, subtitles) to a fakesink. A chain no stream reached gets EOS.
    let linked_video = Arc::new(AtomicBool::new(false));
    let linked_audio = Arc::new(AtomicBool::new(false));
    {
        let weak = pipeline.downgrade();
        let vsink = vq_sink.clone();
        let asink = audio
            .as_ref()
            .map(|(aq, _)| aq.static_pad("sink").expect("queue has a sink pad"));
        let (lv, la) = (linked_video.clone(), linked_audio.clone());
        decode.connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            let kind = pad
                .current_caps()
                .or_else(|| Some(pad.query_caps(None)))
                .and_then(|c| c.structure(0).map(|s| s.name().to_string()))
                .unwrap_or_default();
            let target = if kind.starts_with("video/") && !lv.swap(true, Ordering::SeqCst) {
                Some(vsink.clone())
            } else if kind.starts_with("audio/")
                && asink.is_some()
                && !la.swap(true, Ordering::SeqCst)
            {
                asink.clone()
            } else {
                None
            };
            match target {
                Some(sink) => {
                    let _ = pad.link(&sink);
                }
                None => {
                    if let Ok(fake) = gst::ElementFactory::make("fakesink")
                        .property("sync", false)
                        .property("async", false)
                        .build()
                    {
                        let _ = pipeline.add(&fake);
                        let _ = fake.sync_state_with_parent();
                        if let Some(p) = fake.static_pad("sink") {
                            let _ = pad.link(&p);
                        }
                    }
                }
            }
        });
        let vsink = vq_sink.clone();
        let asink = audio
            .as_ref()
            .map(|(aq, _)| aq.static_pad("sink").expect("queue has a sink pad"));
        let (lv, la) = (linked_video.clone(), linked_audio.clone());
        decode.connect_no_more_pads(move |_| {
            if !lv.load(Ordering::SeqCst) {
                vsink.send_event(gst::event::Eos::new());
            }
            if let Some(a) = &asink
                && !la.load(Ordering::SeqCst)
            {
                a.send_event(gst::event::Eos::new());
            }
        });
    }

    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| StepError::permanent("decode_failed", "the pipeline could not start"))?;
    watch(job, &pipeline, &position)?;

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
    drop(guard);
    if !linked_video.load(Ordering::SeqCst) {
        return Err(StepError::permanent(
            "decode_failed",
            "no video stream could be decoded",
        ));
    }
    let (lo, hi) = (
        min_gap.load(Ordering::Relaxed),
        max_gap.load(Ordering::Relaxed),
    );
    let frames = std::mem::take(&mut *frames.lock().expect("not poisoned"));
    Ok(Output {
        renditions,
        frames,
        variable_frame_rate: lo != u64::MAX && hi > lo + lo / 2,
        has_audio: linked_audio.load(Ordering::SeqCst),
        decoded_ms: position.load(Ordering::Relaxed) / 1_000_000,
    })
}

/// Waits for the end of the stream on the bus, under the budget, the stall watchdog and the
/// cancel flag, reporting progress.
fn watch(job: &Job<'_>, pipeline: &gst::Pipeline, position: &AtomicU64) -> Result<(), StepError> {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let started = Instant::now();
    let duration_ns = job.probe.duration_ms.unwrap_or(0).max(1) * 1_000_000;
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
                _ => {}
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
            (job.progress)((pos as f64 * 100.0 / duration_ns as f64).min(99.0) as f32);
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

fn copy_frame(sample: &gst::Sample) -> Option<Frame> {
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let buffer = sample.buffer()?;
    let map = buffer.map_readable().ok()?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let stride = info.stride()[0] as usize;
    let mut rgb = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        let start = row * stride;
        rgb.extend_from_slice(map.get(start..start + w * 3)?);
    }
    Some(Frame {
        width: w as u32,
        height: h as u32,
        rgb,
    })
}

/// Where the playlists of a finished run are, for publishing.
pub fn playlist(out_dir: &Path, rendition_dir: &str) -> PathBuf {
    out_dir.join(rendition_dir).join("index.m3u8")
}
