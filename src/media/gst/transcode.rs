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
//! I420 before the encoders: x264enc would otherwise pick 4:4:4 (or 10-bit) that browsers
//! cannot play. Every encoder has the same fixed GOP of one segment with scene cuts off, so
//! every rendition's keyframes (and segment cuts) fall on the same frames. Tag events are
//! dropped at the decoder's pads: nothing of the source's metadata (GPS, make, model) reaches
//! an output. The run is watched: a time budget, a stall watchdog and a cancel flag; the
//! pipeline is set to Null however it ends.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::elements::{
    NullOnDrop, caps_filter, direction, drop_tags, link_err, link_fakesink, make,
};

use crate::domain::media::Probe;
use crate::media::extras::Extras;
use crate::media::plan::Plan;
use crate::media::steps::StepError;

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
    pub extras: &'a Extras,
    pub segment: u32,
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
    let (vq_sink, vtee) = add_video_chain(&pipeline, job.plan.fps, flip)?;

    // How far the decode has come (progress, stall watchdog), and whether frame durations vary.
    let timing = Timing::track(&vq_sink);

    // Audio, only when the probe found some.
    let audio = add_audio_chain(&pipeline, job)?;
    let graph = Graph {
        job,
        pipeline: &pipeline,
        vtee,
        audio,
    };

    // One encoder and one HLS sink per rendition.
    let Renditions { parsers, dirs, mp4 } = graph.add_renditions()?;

    // The MP4's sound, from the same AAC stream.
    if let Some(mux) = &mp4 {
        graph.link_mp4_audio(mux)?;
    }

    // Poster candidates (at 10, 25 and 50% of the way, at the top rendition's size), the
    // preview's frames and the storyboard's tiles, each through a branch of its own.
    let (frames, preview, storyboard) = graph.frame_branches()?;

    // The decoder's pads: the first video and audio stream go to their chains, the rest (a
    // second audio track, subtitles) to a fakesink. A chain no stream reached gets EOS.
    let routes = Routes::connect(&decode, &pipeline, vq_sink, graph.audio.as_ref());

    start_and_watch(job, &pipeline, &timing.position)?;

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
        mp4: mp4.is_some(),
        variable_frame_rate: timing.variable(),
        has_audio: routes.linked_audio.load(Ordering::SeqCst),
        decoded_ms: timing.position.load(Ordering::Relaxed) / 1_000_000,
    })
}

/// filesrc ! decodebin, added to `pipeline`; returns the decoder.
fn add_source(pipeline: &gst::Pipeline, input: &Path) -> Result<gst::Element, StepError> {
    let src = gst::ElementFactory::make("filesrc")
        .property("location", input.to_str().unwrap_or_default())
        .build()
        .map_err(|_| StepError::permanent("missing_plugin", "filesrc is not installed"))?;
    let decode = make("decodebin")?;
    pipeline
        .add_many([&src, &decode])
        .map_err(link_err("the source"))?;
    src.link(&decode).map_err(link_err("the source"))?;
    Ok(decode)
}

/// The video chain up to its tee, turned by `flip` and at `fps`; returns the chain's sink pad
/// (tags dropped there) and the tee.
fn add_video_chain(
    pipeline: &gst::Pipeline,
    (num, den): (i32, i32),
    flip_direction: &str,
) -> Result<(gst::Pad, gst::Element), StepError> {
    let vq = make("queue")?;
    let vconv = make("videoconvert")?;
    let i420 = caps_filter(
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .build(),
    )?;
    // Interlaced input (cameras, broadcast) becomes one frame per field; progressive input
    // passes through untouched.
    let deinterlace = make("deinterlace")?;
    let flip = make("videoflip")?;
    flip.set_property_from_str("video-direction", flip_direction);
    let rate = make("videorate")?;
    let fps = caps_filter(
        gst::Caps::builder("video/x-raw")
            .field("framerate", gst::Fraction::new(num, den))
            .build(),
    )?;
    let vtee = make("tee")?;
    let chain = [&vq, &vconv, &i420, &deinterlace, &flip, &rate, &fps, &vtee];
    pipeline
        .add_many(chain)
        .map_err(link_err("the video chain"))?;
    gst::Element::link_many(chain).map_err(link_err("the video chain"))?;
    let vq_sink = vq.static_pad("sink").expect("queue has a sink pad");
    drop_tags(&vq_sink);
    Ok((vq_sink, vtee))
}

/// How far the decode has come (the latest frame time, ns) and the shortest and longest gap
/// between frames, kept by a probe on the video chain.
struct Timing {
    position: Arc<AtomicU64>,
    min_gap: Arc<AtomicU64>,
    max_gap: Arc<AtomicU64>,
}

impl Timing {
    /// Starts keeping the times of the buffers passing `pad`.
    fn track(pad: &gst::Pad) -> Timing {
        let position = Arc::new(AtomicU64::new(0));
        let (min_gap, max_gap) = (
            Arc::new(AtomicU64::new(u64::MAX)),
            Arc::new(AtomicU64::new(0)),
        );
        {
            let (position, min_gap, max_gap) = (position.clone(), min_gap.clone(), max_gap.clone());
            let last = Mutex::new(None::<u64>);
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
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
        Timing {
            position,
            min_gap,
            max_gap,
        }
    }

    /// Whether the frames' durations varied (the longest gap over 1.5 times the shortest).
    fn variable(&self) -> bool {
        let (lo, hi) = (
            self.min_gap.load(Ordering::Relaxed),
            self.max_gap.load(Ordering::Relaxed),
        );
        lo != u64::MAX && hi > lo + lo / 2
    }
}

/// The audio chain up to its tee, when the probe found audio; returns its queue and its tee.
fn add_audio_chain(
    pipeline: &gst::Pipeline,
    job: &Job<'_>,
) -> Result<Option<(gst::Element, gst::Element)>, StepError> {
    let Some(a) = &job.probe.audio else {
        return Ok(None);
    };
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
    Ok(Some((aq, atee)))
}

/// The frames the poster, the preview and the storyboard are taken from, filled by a branch.
type Frames = Arc<Mutex<Vec<Frame>>>;

/// The renditions' branches: each one's parser (its caps name the profile and level) and
/// directory, in plan order, and the MP4's muxer if there is one.
struct Renditions {
    parsers: Vec<gst::Element>,
    dirs: Vec<String>,
    mp4: Option<gst::Element>,
}

/// The pipeline being built, with the tees every output branch hangs off.
struct Graph<'j> {
    job: &'j Job<'j>,
    pipeline: &'j gst::Pipeline,
    vtee: gst::Element,
    /// The audio chain's queue and tee, when there is audio.
    audio: Option<(gst::Element, gst::Element)>,
}

impl Graph<'_> {
    /// One encoder and one HLS sink per rendition; returns each one's parser and directory
    /// name, and the MP4's muxer when `--mp4-fallback` picked a rendition.
    fn add_renditions(&self) -> Result<Renditions, StepError> {
        let job = self.job;
        let mut mp4 = None;
        let mut parsers = Vec::new();
        let mut dirs = Vec::new();
        for (i, r) in job.plan.renditions.iter().enumerate() {
            let name = format!("r{i}");
            let dir = job.out_dir.join(&name);
            std::fs::create_dir_all(&dir)?;
            let [q, scale, size, enc, profile, parse] =
                self.encoder_chain(r.width, r.height, r.kbps)?;
            let sink = self.hls_sink(&dir)?;
            let chain = [&q, &scale, &size, &enc, &profile, &parse];
            let pipeline = self.pipeline;
            pipeline.add_many(chain).map_err(link_err("a rendition"))?;
            pipeline.add(&sink).map_err(link_err("a rendition"))?;
            gst::Element::link_many(chain).map_err(link_err("a rendition"))?;
            let tee_pad = self
                .vtee
                .request_pad_simple("src_%u")
                .ok_or_else(|| StepError::permanent("pipeline", "tee gave no pad"))?;
            tee_pad
                .link(&q.static_pad("sink").expect("queue has a sink pad"))
                .map_err(|e| StepError::permanent("pipeline", format!("tee: {e:?}")))?;
            let vpad = sink
                .request_pad_simple("video")
                .ok_or_else(|| StepError::permanent("pipeline", "hlssink2 gave no video pad"))?;
            let video_out = if job.extras.mp4 == Some(i) {
                // This rendition is also the progressive MP4: its stream is teed to a muxer.
                let (hq, mux) = self.tap_mp4(&parse)?;
                mp4 = Some(mux);
                hq
            } else {
                parse.clone()
            };
            video_out
                .static_pad("src")
                .expect("the chain ends in a src pad")
                .link(&vpad)
                .map_err(|e| StepError::permanent("pipeline", format!("hlssink2 video: {e:?}")))?;
            if let Some((_, atee)) = &self.audio {
                link_rendition_audio(pipeline, atee, &sink)?;
            }
            parsers.push(parse);
            dirs.push(name);
        }
        Ok(Renditions { parsers, dirs, mp4 })
    }

    /// A rendition's queue ! videoscale ! WxH ! x264enc ! high ! h264parse, made in that order
    /// but not yet added.
    fn encoder_chain(
        &self,
        width: u32,
        height: u32,
        kbps: u32,
    ) -> Result<[gst::Element; 6], StepError> {
        let job = self.job;
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
                .field("width", width as i32)
                .field("height", height as i32)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build(),
        )?;
        let enc = gst::ElementFactory::make("x264enc")
            .property("bitrate", kbps)
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
        Ok([q, scale, size, enc, profile, parse])
    }

    /// A rendition's hlssink2, writing its segments and playlist into `dir`; not yet added.
    fn hls_sink(&self, dir: &Path) -> Result<gst::Element, StepError> {
        gst::ElementFactory::make("hlssink2")
            .property(
                "location",
                dir.join("seg%05d.ts").to_str().unwrap_or_default(),
            )
            .property(
                "playlist-location",
                dir.join("index.m3u8").to_str().unwrap_or_default(),
            )
            .property("target-duration", self.job.segment)
            .property("max-files", 0u32)
            .property("playlist-length", 0u32)
            .property("send-keyframe-requests", false)
            .build()
            .map_err(|_| StepError::permanent("missing_plugin", "hlssink2 is not installed"))
    }

    /// Tees `parse`'s stream to the MP4 branch; returns the queue that feeds the HLS sink
    /// instead, and the MP4's muxer.
    fn tap_mp4(&self, parse: &gst::Element) -> Result<(gst::Element, gst::Element), StepError> {
        let pipeline = self.pipeline;
        let t = make("tee")?;
        pipeline.add(&t).map_err(link_err("the MP4 branch"))?;
        parse.link(&t).map_err(link_err("the MP4 branch"))?;
        let hq = make("queue")?;
        pipeline.add(&hq).map_err(link_err("the MP4 branch"))?;
        t.link(&hq).map_err(link_err("the MP4 branch"))?;
        let mux = super::mp4::branch(pipeline, &t, self.job.out_dir)?;
        Ok((hq, mux))
    }

    /// Feeds the MP4's muxer the AAC stream, when there is audio.
    fn link_mp4_audio(&self, mux: &gst::Element) -> Result<(), StepError> {
        if let Some((_, atee)) = &self.audio {
            let aq = make("queue")?;
            self.pipeline.add(&aq).map_err(link_err("the MP4 audio"))?;
            atee.link(&aq).map_err(link_err("the MP4 audio"))?;
            super::elements::link_request(&aq, mux, "audio_%u")?;
        }
        Ok(())
    }

    /// The poster's, the preview's and the storyboard's frame branches, in that order.
    fn frame_branches(&self) -> Result<(Frames, Frames, Frames), StepError> {
        let (job, pipeline, vtee) = (self.job, self.pipeline, &self.vtee);
        let top = job.plan.renditions.last().expect("a plan has a rendition");
        let duration_ns = job.probe.duration_ms.unwrap_or(0) * 1_000_000;
        let poster_times = [0.1, 0.25, 0.5]
            .iter()
            .map(|f| (duration_ns as f64 * f) as u64)
            .collect();
        let frames = super::frames::branch(pipeline, vtee, top.width, top.height, poster_times)?;
        let ns = |times: &[u64]| times.iter().map(|ms| ms * 1_000_000).collect::<Vec<_>>();
        let (pv, sb) = (&job.extras.preview, &job.extras.storyboard);
        let preview = super::frames::branch(pipeline, vtee, pv.width, pv.height, ns(&pv.times_ms))?;
        let storyboard =
            super::frames::branch(pipeline, vtee, sb.width, sb.height, ns(&sb.times_ms))?;
        Ok((frames, preview, storyboard))
    }
}

/// queue ! hlssink2's audio pad, fed from the audio chain's tee `atee`.
fn link_rendition_audio(
    pipeline: &gst::Pipeline,
    atee: &gst::Element,
    sink: &gst::Element,
) -> Result<(), StepError> {
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
    Ok(())
}

/// Where the decoder's pads go: the chains' sink pads, and whether each chain got its stream.
#[derive(Clone)]
struct Routes {
    vsink: gst::Pad,
    /// The audio chain's sink pad, when there is an audio chain.
    asink: Option<gst::Pad>,
    linked_video: Arc<AtomicBool>,
    linked_audio: Arc<AtomicBool>,
}

impl Routes {
    /// Links the decoder's pads as they come to the video chain (its sink pad `vsink`) and the
    /// audio chain (its queue and tee), and ends the chains no stream reached.
    fn connect(
        decode: &gst::Element,
        pipeline: &gst::Pipeline,
        vsink: gst::Pad,
        audio: Option<&(gst::Element, gst::Element)>,
    ) -> Routes {
        let this = Routes {
            vsink,
            asink: audio.map(|(aq, _)| aq.static_pad("sink").expect("queue has a sink pad")),
            linked_video: Arc::new(AtomicBool::new(false)),
            linked_audio: Arc::new(AtomicBool::new(false)),
        };
        let weak = pipeline.downgrade();
        let routes = this.clone();
        decode.connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            let kind = pad
                .current_caps()
                .or_else(|| Some(pad.query_caps(None)))
                .and_then(|c| c.structure(0).map(|s| s.name().to_string()))
                .unwrap_or_default();
            match routes.target(&kind) {
                Some(sink) => {
                    let _ = pad.link(&sink);
                }
                None => link_fakesink(&pipeline, pad),
            }
        });
        let routes = this.clone();
        decode.connect_no_more_pads(move |_| routes.end_unlinked());
        this
    }

    /// The chain a new decoder pad of media type `kind` goes to, claiming it: the first video
    /// and the first audio stream only.
    fn target(&self, kind: &str) -> Option<gst::Pad> {
        if kind.starts_with("video/") && !self.linked_video.swap(true, Ordering::SeqCst) {
            Some(self.vsink.clone())
        } else if kind.starts_with("audio/")
            && self.asink.is_some()
            && !self.linked_audio.swap(true, Ordering::SeqCst)
        {
            self.asink.clone()
        } else {
            None
        }
    }

    /// Sends EOS into each chain no stream reached.
    fn end_unlinked(&self) {
        if !self.linked_video.load(Ordering::SeqCst) {
            self.vsink.send_event(gst::event::Eos::new());
        }
        if let Some(a) = &self.asink
            && !self.linked_audio.load(Ordering::SeqCst)
        {
            a.send_event(gst::event::Eos::new());
        }
    }
}

/// Starts the pipeline and waits for it to finish under the job's budget, stall watchdog and
/// cancel flag.
fn start_and_watch(
    job: &Job<'_>,
    pipeline: &gst::Pipeline,
    position: &AtomicU64,
) -> Result<(), StepError> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| StepError::permanent("decode_failed", "the pipeline could not start"))?;
    let watch = super::watch::Watch {
        duration_ms: job.probe.duration_ms,
        budget: job.budget,
        stall: job.stall,
        cancel: job.cancel,
        progress: job.progress,
    };
    super::watch::watch(&watch, pipeline, position, &mut |_| {})
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
