//! Frame branches of the transcode: the decoded frames at given times (the first frame at or
//! after each, chosen by a probe on the tee's pad so the others cost nothing), scaled and
//! converted to RGB, collected by an appsink: poster candidates, preview frames, storyboard
//! tiles.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::elements::{link_err, make};
use super::transcode::Frame;
use crate::media::steps::StepError;

/// Adds a branch to `pipeline`, fed from `tee`, that keeps the frames at `wanted` (ascending
/// nanoseconds) at `width`×`height`; they land in the returned vector.
pub(super) fn branch(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    width: u32,
    height: u32,
    wanted: Vec<u64>,
) -> Result<Arc<Mutex<Vec<Frame>>>, StepError> {
    let frames = Arc::new(Mutex::new(Vec::<Frame>::new()));
    {
        // Scaled before the queue (in the tee's thread, for the few frames let through), and a
        // queue that holds them all: a sink waiting to preroll never blocks the tee, and the
        // renditions' encoders get the frames they need to produce their first output.
        let q = gst::ElementFactory::make("queue")
            .property("max-size-buffers", wanted.len() as u32 + 2)
            .property("max-size-bytes", 0u32)
            .property("max-size-time", 0u64)
            .build()
            .map_err(|_| StepError::permanent("missing_plugin", "queue is not installed"))?;
        let scale = make("videoscale")?;
        let conv = make("videoconvert")?;
        let rgb = gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", width as i32)
            .field("height", height as i32)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build();
        let appsink = gst_app::AppSink::builder().caps(&rgb).sync(false).build();
        // Not waited for to preroll: its first frame may come late in the video (a poster at a
        // tenth of the way), and until every sink has prerolled the others are held in
        // PAUSED, blocking the tee: a long video's decode would stand still.
        appsink.set_async(false);
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
        let chain = [&scale, &conv, &q, &appsink];
        pipeline
            .add_many(chain)
            .map_err(link_err("a frame branch"))?;
        gst::Element::link_many(chain).map_err(link_err("a frame branch"))?;
        let tee_pad = tee
            .request_pad_simple("src_%u")
            .ok_or_else(|| StepError::permanent("pipeline", "tee gave no pad"))?;
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
            .link(&scale.static_pad("sink").expect("videoscale has a sink pad"))
            .map_err(|e| StepError::permanent("pipeline", format!("tee: {e:?}")))?;
    }
    Ok(frames)
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
        pts_ns: buffer.pts().map_or(0, |p| p.nseconds()),
        rgb,
    })
}
