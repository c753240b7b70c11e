//! Where the decoder's pads go: the first video and audio stream to their chains, the rest (a
//! second audio track, subtitles) to a fakesink; a chain no stream reached gets EOS.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::super::elements::link_fakesink;

/// Where the decoder's pads go: the chains' sink pads, and whether each chain got its stream.
#[derive(Clone)]
pub(super) struct Routes {
    pub(super) vsink: gst::Pad,
    /// The audio chain's sink pad, when there is an audio chain.
    pub(super) asink: Option<gst::Pad>,
    pub(super) linked_video: Arc<AtomicBool>,
    pub(super) linked_audio: Arc<AtomicBool>,
}

impl Routes {
    /// Links the decoder's pads as they come to the video chain (its sink pad `vsink`) and the
    /// audio chain (its queue and tee), and ends the chains no stream reached.
    pub(super) fn connect(
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
    pub(super) fn target(&self, kind: &str) -> Option<gst::Pad> {
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
    pub(super) fn end_unlinked(&self) {
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
