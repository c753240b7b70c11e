//! The progressive MP4 of `--mp4-fallback`: one rendition's H.264, teed after its parser,
//! muxed with the AAC stream into `fallback.mp4` with the index first.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::elements::{link_err, make};
use crate::media::steps::StepError;

/// h264parse (to MP4's avc form) ! mp4mux (index first, for progressive download) ! filesink
/// `fallback.mp4`, fed from `tee`. Returns the muxer, for the sound.
pub fn branch(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    out_dir: &Path,
) -> Result<gst::Element, StepError> {
    let q = make("queue")?;
    let parse = make("h264parse")?;
    let mux = gst::ElementFactory::make("mp4mux")
        .property("faststart", true)
        .property(
            "faststart-file",
            out_dir.join("mp4mux.tmp").to_str().unwrap_or_default(),
        )
        .build()
        .map_err(|_| StepError::permanent("missing_plugin", "mp4mux is not installed"))?;
    let file = gst::ElementFactory::make("filesink")
        .property(
            "location",
            out_dir.join("fallback.mp4").to_str().unwrap_or_default(),
        )
        .build()
        .map_err(|_| StepError::permanent("missing_plugin", "filesink is not installed"))?;
    pipeline
        .add_many([&q, &parse, &mux, &file])
        .map_err(link_err("the MP4 branch"))?;
    tee.link(&q).map_err(link_err("the MP4 branch"))?;
    q.link(&parse).map_err(link_err("the MP4 branch"))?;
    let vpad = mux
        .request_pad_simple("video_%u")
        .ok_or_else(|| StepError::permanent("pipeline", "mp4mux gave no video pad"))?;
    parse
        .static_pad("src")
        .expect("h264parse has a src pad")
        .link(&vpad)
        .map_err(|e| StepError::permanent("pipeline", format!("mp4mux video: {e:?}")))?;
    mux.link(&file).map_err(link_err("the MP4 branch"))?;
    Ok(mux)
}
