//! Small pieces every pipeline here uses: making elements with a clear error when a plugin is
//! missing, linking errors, the tag-dropping probe, the orientation fix, the Null guard.

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::media::steps::StepError;

/// Sets the pipeline to Null when dropped, however the run ends.
pub(super) struct NullOnDrop(pub gst::Pipeline);

impl Drop for NullOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

pub(super) fn make(factory: &str) -> Result<gst::Element, StepError> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        StepError::permanent(
            "missing_plugin",
            format!("the GStreamer element {factory} is not installed"),
        )
    })
}

pub(super) fn caps_filter(caps: gst::Caps) -> Result<gst::Element, StepError> {
    gst::ElementFactory::make("capsfilter")
        .property("caps", caps)
        .build()
        .map_err(|_| StepError::permanent("missing_plugin", "capsfilter is not installed"))
}

pub(super) fn link_err(what: &str) -> impl Fn(gst::glib::BoolError) -> StepError + '_ {
    move |e| StepError::permanent("pipeline", format!("cannot link {what}: {e}"))
}

/// Links `from`'s src pad to a new request pad of `to` from `template` (`audio`, `video_%u`).
pub(super) fn link_request(
    from: &gst::Element,
    to: &gst::Element,
    template: &str,
) -> Result<(), StepError> {
    let name = to
        .factory()
        .map(|f| f.name().to_string())
        .unwrap_or_default();
    let pad = to.request_pad_simple(template).ok_or_else(|| {
        StepError::permanent("pipeline", format!("{name} gave no {template} pad"))
    })?;
    from.static_pad("src")
        .ok_or_else(|| StepError::permanent("pipeline", "an element without a src pad"))?
        .link(&pad)
        .map(|_| ())
        .map_err(|e| StepError::permanent("pipeline", format!("{name} {template}: {e:?}")))
}

/// Drops tag events (the source's metadata) passing `pad`. The probe takes the event and says
/// it handled it: answering `Drop` instead makes GStreamer unref an event the bindings already
/// released (a GStreamer-CRITICAL on every tag).
pub(super) fn drop_tags(pad: &gst::Pad) {
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
pub(super) fn direction(rotation: u32, flipped: bool) -> &'static str {
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

/// Links a decoder pad nothing wants to a fakesink of its own.
pub(super) fn link_fakesink(pipeline: &gst::Pipeline, pad: &gst::Pad) {
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
