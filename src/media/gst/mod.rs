//! The GStreamer side of the pipeline (feature `media`): the probe, the video transcode and
//! the audio passes.
//! Everything here blocks; callers run it on a blocking thread.

use std::sync::OnceLock;

use crate::media::steps::StepError;

pub mod audio;
mod elements;
mod frames;
mod mp4;
pub mod probe;
pub mod transcode;
pub mod watch;

/// Initialises GStreamer once per process.
pub fn init() -> Result<(), StepError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| gstreamer::init().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| StepError::transient("gstreamer", format!("GStreamer did not start: {e}")))
}
