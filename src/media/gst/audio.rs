//! Audio in two passes over the decoded sound:
//!
//! ```text
//! measure: filesrc ! decodebin ─audio─▶ queue ! audioconvert ! audioresample ! F32 48 kHz ! appsink
//!          (EBU R128 loudness and true peak, the waveform's min/max blocks, cover art from the tags)
//! encode:  filesrc ! decodebin ─audio─▶ queue ! audioconvert ! audioresample ! F32 48 kHz ! volume(gain)
//!            ! audioconvert ! voaacenc ! aacparse ! tee ─▶ queue ! hlssink2.audio   (a/…)
//!                                                      tee ─▶ queue ! mp4mux ! filesink (audio.m4a)
//! ```
//!
//! Tags are dropped before the encoder: the outputs carry no title, artist or picture.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::elements::{NullOnDrop, caps_filter, drop_tags, link_err, link_request, make};
use super::watch::{Watch, watch};
use crate::media::steps::StepError;

/// The decoders' common rate.
const RATE: i32 = 48_000;
/// Frames per waveform block.
pub const BLOCK: usize = 480;

/// What the measuring pass found.
#[derive(Debug)]
pub struct Measured {
    /// Integrated loudness, LUFS (-inf for silence).
    pub loudness: f64,
    /// True peak, dBTP.
    pub true_peak: f64,
    /// Min and max of the channels' mean, per block of `BLOCK` frames.
    pub blocks: Vec<(f32, f32)>,
    /// The first picture in the tags (cover art), as stored.
    pub cover: Option<Vec<u8>>,
    pub decoded_ms: u64,
}

struct Meter {
    r128: ebur128::EbuR128,
    channels: usize,
    blocks: Vec<(f32, f32)>,
    current: (f32, f32, usize),
}

impl Meter {
    fn add(&mut self, samples: &[f32]) -> Result<(), gst::FlowError> {
        self.r128
            .add_frames_f32(samples)
            .map_err(|_| gst::FlowError::Error)?;
        for frame in samples.chunks_exact(self.channels) {
            let v = frame.iter().sum::<f32>() / self.channels as f32;
            let (lo, hi, n) = &mut self.current;
            *lo = lo.min(v);
            *hi = hi.max(v);
            *n += 1;
            if *n == BLOCK {
                self.blocks.push((*lo, *hi));
                self.current = (0.0, 0.0, 0);
            }
        }
        Ok(())
    }
}

fn source(pipeline: &gst::Pipeline, input: &Path) -> Result<gst::Element, StepError> {
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

/// queue ! audioconvert ! audioresample ! F32LE 48 kHz with `channels`: returns its first and
/// last element. The first audio pad of `decode` is linked to it, the others to fakesinks.
fn raw_chain(
    pipeline: &gst::Pipeline,
    decode: &gst::Element,
    channels: i32,
    position: Arc<AtomicU64>,
) -> Result<(gst::Element, gst::Element), StepError> {
    let q = make("queue")?;
    let conv = make("audioconvert")?;
    let resample = make("audioresample")?;
    let caps = caps_filter(
        gst::Caps::builder("audio/x-raw")
            .field("format", "F32LE")
            .field("layout", "interleaved")
            .field("rate", RATE)
            .field("channels", channels)
            .build(),
    )?;
    let chain = [&q, &conv, &resample, &caps];
    pipeline
        .add_many(chain)
        .map_err(link_err("the audio chain"))?;
    gst::Element::link_many(chain).map_err(link_err("the audio chain"))?;
    let sink = q.static_pad("sink").expect("queue has a sink pad");
    sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(b) = info.buffer() {
            let end = b.pts().map(|p| p.nseconds()).unwrap_or(0)
                + b.duration().map(|d| d.nseconds()).unwrap_or(0);
            position.fetch_max(end, Ordering::Relaxed);
        }
        gst::PadProbeReturn::Ok
    });
    let linked = Arc::new(AtomicBool::new(false));
    let weak = pipeline.downgrade();
    let target = sink.clone();
    let l = linked.clone();
    decode.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let is_audio = pad
            .current_caps()
            .or_else(|| Some(pad.query_caps(None)))
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("audio/")))
            .unwrap_or(false);
        if is_audio && !l.swap(true, Ordering::SeqCst) {
            let _ = pad.link(&target);
            return;
        }
        super::elements::link_fakesink(&pipeline, pad);
    });
    let l = linked;
    decode.connect_no_more_pads(move |_| {
        if !l.load(Ordering::SeqCst) {
            sink.send_event(gst::event::Eos::new());
        }
    });
    Ok((q, caps))
}

fn start(pipeline: &gst::Pipeline) -> Result<(), StepError> {
    pipeline
        .set_state(gst::State::Playing)
        .map(|_| ())
        .map_err(|_| StepError::permanent("decode_failed", "the pipeline could not start"))
}

/// The measuring pass.
pub fn measure(input: &Path, channels: u32, w: &Watch<'_>) -> Result<Measured, StepError> {
    super::init()?;
    let channels = channels.clamp(1, 2) as i32;
    let pipeline = gst::Pipeline::new();
    let guard = NullOnDrop(pipeline.clone());
    let decode = source(&pipeline, input)?;
    let position = Arc::new(AtomicU64::new(0));
    let (_, last) = raw_chain(&pipeline, &decode, channels, position.clone())?;
    let r128 = ebur128::EbuR128::new(
        channels as u32,
        RATE as u32,
        ebur128::Mode::I | ebur128::Mode::TRUE_PEAK,
    )
    .map_err(|e| StepError::permanent("loudness", format!("EBU R128 meter: {e}")))?;
    let meter = Arc::new(Mutex::new(Meter {
        r128,
        channels: channels as usize,
        blocks: Vec::new(),
        current: (0.0, 0.0, 0),
    }));
    let appsink = gst_app::AppSink::builder().sync(false).build();
    {
        let meter = meter.clone();
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    let samples: Vec<f32> = map
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    meter.lock().expect("not poisoned").add(&samples)?;
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    let appsink: gst::Element = appsink.upcast();
    pipeline.add(&appsink).map_err(link_err("the meter"))?;
    last.link(&appsink).map_err(link_err("the meter"))?;
    start(&pipeline)?;
    let mut cover = None;
    watch(w, &pipeline, &position, &mut |msg| {
        if cover.is_none()
            && let gst::MessageView::Tag(t) = msg.view()
        {
            let tags = t.tags();
            let picture = tags
                .get::<gst::tags::Image>()
                .or_else(|| tags.get::<gst::tags::PreviewImage>());
            if let Some(sample) = picture
                && let Some(buf) = sample.get().buffer()
                && let Ok(map) = buf.map_readable()
                // A cover larger than this is not a cover.
                && map.len() <= 32 << 20
            {
                cover = Some(map.to_vec());
            }
        }
    })?;
    drop(guard);
    let mut m = meter.lock().expect("not poisoned");
    let (lo, hi, n) = m.current;
    if n > 0 {
        m.blocks.push((lo, hi));
    }
    let loudness = m.r128.loudness_global().unwrap_or(f64::NEG_INFINITY);
    let peak = (0..channels as u32)
        .filter_map(|c| m.r128.true_peak(c).ok())
        .fold(0.0f64, f64::max);
    Ok(Measured {
        loudness,
        true_peak: 20.0 * peak.max(1e-10).log10(),
        blocks: std::mem::take(&mut m.blocks),
        cover,
        decoded_ms: position.load(Ordering::Relaxed) / 1_000_000,
    })
}

/// Where the encoding pass writes.
#[derive(Debug)]
pub struct Encoded {
    /// The HLS rendition's directory (under the output directory).
    pub hls_dir: String,
    pub m4a: PathBuf,
    pub decoded_ms: u64,
}

/// The encoding pass: `gain_db` applied, AAC-LC at 128 kb/s (stereo) or 96 kb/s (mono).
pub fn encode(
    input: &Path,
    out_dir: &Path,
    channels: u32,
    gain_db: f64,
    segment: u32,
    w: &Watch<'_>,
) -> Result<Encoded, StepError> {
    super::init()?;
    let channels = channels.clamp(1, 2) as i32;
    let pipeline = gst::Pipeline::new();
    let guard = NullOnDrop(pipeline.clone());
    let decode = source(&pipeline, input)?;
    let position = Arc::new(AtomicU64::new(0));
    let (first, last) = raw_chain(&pipeline, &decode, channels, position.clone())?;
    drop_tags(&first.static_pad("sink").expect("queue has a sink pad"));
    let volume = gst::ElementFactory::make("volume")
        .property("volume", 10f64.powf(gain_db / 20.0))
        .build()
        .map_err(|_| StepError::permanent("missing_plugin", "volume is not installed"))?;
    let conv = make("audioconvert")?;
    let enc = gst::ElementFactory::make("voaacenc")
        .property("bitrate", if channels == 1 { 96_000i32 } else { 128_000 })
        .build()
        .map_err(|_| StepError::permanent("missing_plugin", "voaacenc is not installed"))?;
    let parse = make("aacparse")?;
    let tee = make("tee")?;
    let chain = [&volume, &conv, &enc, &parse, &tee];
    pipeline.add_many(chain).map_err(link_err("the encoder"))?;
    gst::Element::link_many(chain).map_err(link_err("the encoder"))?;
    last.link(&volume).map_err(link_err("the encoder"))?;

    let hls_dir = "a".to_owned();
    let dir = out_dir.join(&hls_dir);
    std::fs::create_dir_all(&dir)?;
    let hq = make("queue")?;
    let hls = gst::ElementFactory::make("hlssink2")
        .property(
            "location",
            dir.join("seg%05d.ts").to_str().unwrap_or_default(),
        )
        .property(
            "playlist-location",
            dir.join("index.m3u8").to_str().unwrap_or_default(),
        )
        .property("target-duration", segment)
        .property("max-files", 0u32)
        .property("playlist-length", 0u32)
        .build()
        .map_err(|_| StepError::permanent("missing_plugin", "hlssink2 is not installed"))?;
    let m4a = out_dir.join("audio.m4a");
    let mq = make("queue")?;
    pipeline
        .add_many([&hq, &hls, &mq])
        .map_err(link_err("the outputs"))?;
    let mux = super::mp4::file(&pipeline, out_dir, "audio.m4a")?;
    for q in [&hq, &mq] {
        tee.link(q).map_err(link_err("the outputs"))?;
    }
    link_request(&hq, &hls, "audio")?;
    link_request(&mq, &mux, "audio_%u")?;
    start(&pipeline)?;
    watch(w, &pipeline, &position, &mut |_| {})?;
    drop(guard);
    let _ = std::fs::remove_file(out_dir.join("mp4mux.tmp"));
    Ok(Encoded {
        hls_dir,
        m4a,
        decoded_ms: position.load(Ordering::Relaxed) / 1_000_000,
    })
}
