//! MP4 files with the index first: the progressive MP4 of `--mp4-fallback` (one rendition's
//! H.264, teed after its parser, with the AAC stream) and audio's M4A.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::elements::{link_err, link_request, make};
use crate::media::steps::StepError;

/// mp4mux (index first, for progressive download) ! filesink `out_dir/name`, added to
/// `pipeline`; returns the muxer, whose pads the streams are linked to.
pub(super) fn file(
    pipeline: &gst::Pipeline,
    out_dir: &Path,
    name: &str,
) -> Result<gst::Element, StepError> {
    let mux = gst::ElementFactory::make("mp4mux")
        .property("faststart", true)
        .property(
            "faststart-file",
            out_dir.join("mp4mux.tmp").to_str().unwrap_or_default(),
        )
        .build()
        .map_err(|_| StepError::permanent("missing_plugin", "mp4mux is not installed"))?;
    let sink = gst::ElementFactory::make("filesink")
        .property("location", out_dir.join(name).to_str().unwrap_or_default())
        .build()
        .map_err(|_| StepError::permanent("missing_plugin", "filesink is not installed"))?;
    pipeline
        .add_many([&mux, &sink])
        .map_err(link_err("an MP4 file"))?;
    mux.link(&sink).map_err(link_err("an MP4 file"))?;
    Ok(mux)
}

/// h264parse (to MP4's avc form) ! `file` `fallback.mp4`, fed from `tee`. Returns the muxer,
/// for the sound.
pub(super) fn branch(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    out_dir: &Path,
) -> Result<gst::Element, StepError> {
    let q = make("queue")?;
    let parse = make("h264parse")?;
    pipeline
        .add_many([&q, &parse])
        .map_err(link_err("the MP4 branch"))?;
    tee.link(&q).map_err(link_err("the MP4 branch"))?;
    q.link(&parse).map_err(link_err("the MP4 branch"))?;
    let mux = file(pipeline, out_dir, "fallback.mp4")?;
    link_request(&parse, &mux, "video_%u")?;
    Ok(mux)
}
