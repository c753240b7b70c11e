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
mod tonemap;
pub mod transcode;
pub mod watch;

/// The elements tuskd's pipelines create, each with the Debian package that has it.
const NEEDED: &[(&str, &str)] = &[
    ("filesrc", "libgstreamer1.0-0"),
    ("filesink", "libgstreamer1.0-0"),
    ("fakesink", "libgstreamer1.0-0"),
    ("queue", "libgstreamer1.0-0"),
    ("tee", "libgstreamer1.0-0"),
    ("capsfilter", "libgstreamer1.0-0"),
    ("decodebin", "gstreamer1.0-plugins-base"),
    ("appsink", "gstreamer1.0-plugins-base"),
    ("videoconvert", "gstreamer1.0-plugins-base"),
    ("videoscale", "gstreamer1.0-plugins-base"),
    ("videorate", "gstreamer1.0-plugins-base"),
    ("audioconvert", "gstreamer1.0-plugins-base"),
    ("audioresample", "gstreamer1.0-plugins-base"),
    ("volume", "gstreamer1.0-plugins-base"),
    ("videoflip", "gstreamer1.0-plugins-good"),
    ("deinterlace", "gstreamer1.0-plugins-good"),
    ("mp4mux", "gstreamer1.0-plugins-good"),
    ("aacparse", "gstreamer1.0-plugins-good"),
    ("splitmuxsink", "gstreamer1.0-plugins-good"),
    ("h264parse", "gstreamer1.0-plugins-bad"),
    ("voaacenc", "gstreamer1.0-plugins-bad"),
    ("mpegtsmux", "gstreamer1.0-plugins-bad"),
    ("hlssink2", "gstreamer1.0-plugins-bad"),
    ("x264enc", "gstreamer1.0-plugins-ugly"),
];

/// The elements the pipelines need that this GStreamer lacks, as `name (package)`: checked at
/// start-up, so that a server with an incomplete GStreamer refuses to start rather than failing
/// every job.
pub fn missing_elements() -> Result<Vec<String>, StepError> {
    init()?;
    Ok(NEEDED
        .iter()
        .filter(|(name, _)| gstreamer::ElementFactory::find(name).is_none())
        .map(|(name, package)| format!("{name} ({package})"))
        .collect())
}

/// Initialises GStreamer once per process.
pub fn init() -> Result<(), StepError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| gstreamer::init().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| StepError::transient("gstreamer", format!("GStreamer did not start: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_machine_has_every_element_the_pipelines_create() {
        assert_eq!(super::missing_elements().unwrap(), Vec::<String>::new());
    }
}
