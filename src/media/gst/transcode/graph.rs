//! The transcode pipeline's graph, as `run` builds it: the source, the video chain into a
//! tee (with the decode's timing), the audio chain, one encoder and HLS sink per rendition (and
//! the MP4 fallback), the frame branches, and the routing of the decoder's pads.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::super::elements::{caps_filter, drop_tags, link_err, make};
use super::super::tonemap::ToneMap;
use super::{Frame, Job};
use crate::media::hdr::Transfer;
use crate::media::plan::Sound;
use crate::media::steps::StepError;

/// filesrc ! decodebin, added to `pipeline`; returns the decoder.
pub(super) fn add_source(
    pipeline: &gst::Pipeline,
    input: &Path,
) -> Result<gst::Element, StepError> {
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
pub(super) fn add_video_chain(
    pipeline: &gst::Pipeline,
    (num, den): (i32, i32),
    flip_direction: &str,
    tone_map: Option<ToneMapping>,
) -> Result<(gst::Pad, gst::Element), StepError> {
    let vq = make("queue")?;
    // HDR: 10-bit 4:2:0 into the tone mapping (scaled down first to the largest size any
    // branch takes, so a 4K phone video is mapped at most at its top rung's size), BT.709
    // 8-bit out of it. SDR skips all of it.
    let hdr = match tone_map {
        Some(t) => {
            let mut ten = gst::Caps::builder("video/x-raw").field("format", "I420_10LE");
            let mut elements = vec![make("videoconvert")?];
            if let Some((w, h)) = t.scale_to {
                elements.push(make("videoscale")?);
                ten = ten
                    .field("width", w as i32)
                    .field("height", h as i32)
                    .field("pixel-aspect-ratio", gst::Fraction::new(1, 1));
            }
            elements.push(caps_filter(ten.build())?);
            elements.push(ToneMap::new(t.transfer, t.peak_nits).upcast::<gst::Element>());
            elements
        }
        None => Vec::new(),
    };
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
    let chain: Vec<&gst::Element> = std::iter::once(&vq)
        .chain(&hdr)
        .chain([&vconv, &i420, &deinterlace, &flip, &rate, &fps, &vtee])
        .collect();
    pipeline
        .add_many(chain.iter().copied())
        .map_err(link_err("the video chain"))?;
    gst::Element::link_many(chain.iter().copied()).map_err(link_err("the video chain"))?;
    let vq_sink = vq.static_pad("sink").expect("queue has a sink pad");
    drop_tags(&vq_sink);
    Ok((vq_sink, vtee))
}

/// An HDR source's tone mapping in the video chain.
#[derive(Debug, Clone, Copy)]
pub(super) struct ToneMapping {
    pub(super) transfer: Transfer,
    pub(super) peak_nits: f32,
    /// The size to scale to before mapping (the coded picture's orientation), when smaller.
    pub(super) scale_to: Option<(u32, u32)>,
}

/// How far the decode has come (the latest frame time, ns) and the shortest and longest gap
/// between frames, kept by a probe on the video chain.
pub(super) struct Timing {
    pub(super) position: Arc<AtomicU64>,
    pub(super) min_gap: Arc<AtomicU64>,
    pub(super) max_gap: Arc<AtomicU64>,
}

impl Timing {
    /// Starts keeping the times of the buffers passing `pad`.
    pub(super) fn track(pad: &gst::Pad) -> Timing {
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
    pub(super) fn variable(&self) -> bool {
        let (lo, hi) = (
            self.min_gap.load(Ordering::Relaxed),
            self.max_gap.load(Ordering::Relaxed),
        );
        lo != u64::MAX && hi > lo + lo / 2
    }
}

/// The audio chain up to its tee, when the probe found audio; returns its queue and its tee.
pub(super) fn add_audio_chain(
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
pub(super) type Frames = Arc<Mutex<Vec<Frame>>>;

/// The renditions' branches: each one's parser (its caps name the profile and level) and
/// directory, in plan order, and the MP4's muxer if there is one.
pub(super) struct Renditions {
    pub(super) parsers: Vec<gst::Element>,
    pub(super) dirs: Vec<String>,
    pub(super) mp4: Option<gst::Element>,
}

/// The pipeline being built, with the tees every output branch hangs off.
pub(super) struct Graph<'j> {
    pub(super) job: &'j Job<'j>,
    pub(super) pipeline: &'j gst::Pipeline,
    pub(super) vtee: gst::Element,
    /// The audio chain's queue and tee, when there is audio.
    pub(super) audio: Option<(gst::Element, gst::Element)>,
}

impl Graph<'_> {
    /// One encoder and one HLS sink per rendition; returns each one's parser and directory
    /// name, and the MP4's muxer when `--mp4-fallback` picked a rendition.
    pub(super) fn add_renditions(&self) -> Result<Renditions, StepError> {
        let job = self.job;
        let mut mp4 = None;
        let mut parsers = Vec::new();
        let mut dirs = Vec::new();
        for (i, r) in job
            .plan
            .renditions
            .iter()
            .enumerate()
            .filter(|(i, _)| job.rungs.contains(i))
        {
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
            if let (Some((_, atee)), Sound::Muxed) = (&self.audio, job.sound) {
                link_rendition_audio(pipeline, atee, &sink)?;
            }
            parsers.push(parse);
            dirs.push(name);
        }
        Ok(Renditions { parsers, dirs, mp4 })
    }

    /// The sound's own rendition (`audio/`: an HLS sink fed by the audio chain alone), when
    /// there is an audio chain; returns its directory name.
    pub(super) fn add_audio_rendition(&self) -> Result<Option<String>, StepError> {
        let Some((_, atee)) = &self.audio else {
            return Ok(None);
        };
        let name = "audio".to_owned();
        let dir = self.job.out_dir.join(&name);
        std::fs::create_dir_all(&dir)?;
        let sink = self.hls_sink(&dir)?;
        self.pipeline
            .add(&sink)
            .map_err(link_err("the audio rendition"))?;
        link_rendition_audio(self.pipeline, atee, &sink)?;
        Ok(Some(name))
    }

    /// A rendition's queue ! videoscale ! WxH ! x264enc ! high ! h264parse, made in that order
    /// but not yet added.
    pub(super) fn encoder_chain(
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
    pub(super) fn hls_sink(&self, dir: &Path) -> Result<gst::Element, StepError> {
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
    pub(super) fn tap_mp4(
        &self,
        parse: &gst::Element,
    ) -> Result<(gst::Element, gst::Element), StepError> {
        let pipeline = self.pipeline;
        let t = make("tee")?;
        pipeline.add(&t).map_err(link_err("the MP4 branch"))?;
        parse.link(&t).map_err(link_err("the MP4 branch"))?;
        let hq = make("queue")?;
        pipeline.add(&hq).map_err(link_err("the MP4 branch"))?;
        t.link(&hq).map_err(link_err("the MP4 branch"))?;
        let mux = super::super::mp4::branch(pipeline, &t, self.job.out_dir)?;
        Ok((hq, mux))
    }

    /// Feeds the MP4's muxer the AAC stream, when there is audio.
    pub(super) fn link_mp4_audio(&self, mux: &gst::Element) -> Result<(), StepError> {
        if let Some((_, atee)) = &self.audio {
            let aq = make("queue")?;
            self.pipeline.add(&aq).map_err(link_err("the MP4 audio"))?;
            atee.link(&aq).map_err(link_err("the MP4 audio"))?;
            super::super::elements::link_request(&aq, mux, "audio_%u")?;
        }
        Ok(())
    }

    /// The poster's, the preview's and the storyboard's frame branches, in that order.
    pub(super) fn frame_branches(&self) -> Result<(Frames, Frames, Frames), StepError> {
        let (job, pipeline, vtee) = (self.job, self.pipeline, &self.vtee);
        let top = job.plan.renditions.last().expect("a plan has a rendition");
        let duration_ns = job.probe.duration_ms.unwrap_or(0) * 1_000_000;
        let poster_times = [0.1, 0.25, 0.5]
            .iter()
            .map(|f| (duration_ns as f64 * f) as u64)
            .collect();
        let frames =
            super::super::frames::branch(pipeline, vtee, top.width, top.height, poster_times)?;
        let ns = |times: &[u64]| times.iter().map(|ms| ms * 1_000_000).collect::<Vec<_>>();
        let (pv, sb) = (&job.extras.preview, &job.extras.storyboard);
        let preview =
            super::super::frames::branch(pipeline, vtee, pv.width, pv.height, ns(&pv.times_ms))?;
        let storyboard =
            super::super::frames::branch(pipeline, vtee, sb.width, sb.height, ns(&sb.times_ms))?;
        Ok((frames, preview, storyboard))
    }
}

/// queue ! hlssink2's audio pad, fed from the audio chain's tee `atee`.
pub(super) fn link_rendition_audio(
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
