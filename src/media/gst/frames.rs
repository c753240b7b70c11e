//! The poster branch of the transcode: a few decoded frames (at 10%, 25% and 50% of the
//! duration, chosen by a probe on the tee's pad so the others cost nothing) scaled to the top
//! rendition's size and converted to RGB, collected by an appsink for `media::poster`.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::elements::{link_err, make};
use super::transcode::Frame;
use crate::media::steps::StepError;

/// Adds the branch to `pipeline`, fed from `tee`; the frames land in the returned vector.
pub fn branch(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    width: u32,
    height: u32,
    duration_ms: u64,
) -> Result<Arc<Mutex<Vec<Frame>>>, StepError> {
    let frames = Arc::new(Mutex::new(Vec::<Frame>::new()));
    {
        let q = make("queue")?;
        let scale = make("videoscale")?;
        let conv = make("videoconvert")?;
        let rgb = gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", width as i32)
            .field("height", height as i32)
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
        let tee_pad = tee
            .request_pad_simple("src_%u")
            .ok_or_else(|| StepError::permanent("pipeline", "tee gave no pad"))?;
        let duration_ns = duration_ms * 1_000_000;
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
        rgb,
    })
}
