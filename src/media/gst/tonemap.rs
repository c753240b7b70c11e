//! `ToneMap`: a video filter element turning 10-bit 4:2:0 HLG or PQ video into 8-bit 4:2:0
//! BT.709 (the mapping itself is `media::hdr`). GStreamer 1.22 has no tone-mapping element;
//! this one sits in the transcode's video chain, before the tee, only for HDR sources, so every
//! output (the ladder, the poster, thumbnails, preview, storyboard) gets the same SDR picture
//! and SDR sources pay nothing. Its output caps say `bt709`, so the encoders tag it so.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::subclass::prelude::*;
use gstreamer_video as gst_video;

use crate::media::hdr::{Mapper, Source, Transfer};

glib::wrapper! {
    pub struct ToneMap(ObjectSubclass<imp::ToneMap>)
        @extends gst_video::VideoFilter, gst_video::gst_base::BaseTransform, gst::Element, gst::Object;
}

impl ToneMap {
    /// An element mapping a source of `transfer` whose brightest is `peak_nits`. The matrix,
    /// range and primaries are read from the caps it is given (BT.2020's when they say none).
    pub fn new(transfer: Transfer, peak_nits: f32) -> ToneMap {
        let element: ToneMap = glib::Object::new();
        *element.imp().source.lock().expect("not poisoned") =
            Some(Source::bt2100(transfer, peak_nits));
        element
    }
}

/// The source as the caps' colorimetry describes it, over what the probe said.
fn described(mut source: Source, colorimetry: &gst_video::VideoColorimetry) -> Source {
    use gst_video::{VideoColorMatrix as M, VideoColorPrimaries as P, VideoTransferFunction as T};
    match colorimetry.transfer() {
        T::AribStdB67 => source.transfer = Transfer::Hlg,
        T::Smpte2084 => source.transfer = Transfer::Pq,
        _ => {}
    }
    (source.kr, source.kb) = match colorimetry.matrix() {
        M::Bt709 => (0.2126, 0.0722),
        M::Bt601 => (0.299, 0.114),
        _ => (0.2627, 0.0593),
    };
    source.wide_gamut = colorimetry.primaries() != P::Bt709;
    source.full_range = colorimetry.range() == gst_video::VideoColorRange::Range0_255;
    source
}

/// A plane's samples as u16 (GStreamer's buffers are aligned; a copy when one is not).
fn samples(bytes: &[u8]) -> std::borrow::Cow<'_, [u16]> {
    match bytemuck::try_cast_slice(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => std::borrow::Cow::Owned(
            bytes
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect(),
        ),
    }
}

mod imp {
    use std::sync::LazyLock;

    use gstreamer_video::VideoFrameExt;
    use gstreamer_video::subclass::prelude::*;

    use super::*;

    #[derive(Debug, Default)]
    pub struct ToneMap {
        /// What the probe said of the source.
        pub(super) source: Mutex<Option<Source>>,
        /// The mapping for the current caps.
        mapper: Mutex<Option<Arc<Mapper>>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for ToneMap {
        const NAME: &'static str = "TuskdToneMap";
        type Type = super::ToneMap;
        type ParentType = gst_video::VideoFilter;
    }

    impl ObjectImpl for ToneMap {}
    impl GstObjectImpl for ToneMap {}

    impl ElementImpl for ToneMap {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "HDR to SDR tone mapping",
                    "Filter/Converter/Video",
                    "HLG or PQ 10-bit to BT.709 8-bit (Hable, linear light, BT.2020 to BT.709)",
                    "tuskd",
                )
            });
            Some(&*META)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let caps = |format| gst_video::VideoCapsBuilder::new().format(format).build();
                let template = |name, direction, format| {
                    gst::PadTemplate::new(name, direction, gst::PadPresence::Always, &caps(format))
                        .expect("a valid template")
                };
                vec![
                    template("src", gst::PadDirection::Src, gst_video::VideoFormat::I420),
                    template(
                        "sink",
                        gst::PadDirection::Sink,
                        gst_video::VideoFormat::I42010le,
                    ),
                ]
            });
            TEMPLATES.as_ref()
        }
    }

    impl BaseTransformImpl for ToneMap {
        const MODE: gst_video::gst_base::subclass::BaseTransformMode =
            gst_video::gst_base::subclass::BaseTransformMode::NeverInPlace;
        const PASSTHROUGH_ON_SAME_CAPS: bool = false;
        const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

        fn transform_caps(
            &self,
            direction: gst::PadDirection,
            caps: &gst::Caps,
            filter: Option<&gst::Caps>,
        ) -> Option<gst::Caps> {
            let mut other = caps.clone();
            for s in other.make_mut().iter_mut() {
                if direction == gst::PadDirection::Sink {
                    s.set("format", "I420");
                    s.set("colorimetry", "bt709");
                    s.remove_fields(["mastering-display-info", "content-light-level"]);
                } else {
                    s.set("format", "I420_10LE");
                    s.remove_field("colorimetry");
                }
            }
            Some(match filter {
                Some(f) => f.intersect_with_mode(&other, gst::CapsIntersectMode::First),
                None => other,
            })
        }
    }

    impl VideoFilterImpl for ToneMap {
        fn set_info(
            &self,
            _incaps: &gst::Caps,
            in_info: &gst_video::VideoInfo,
            _outcaps: &gst::Caps,
            _out_info: &gst_video::VideoInfo,
        ) -> Result<(), gst::LoggableError> {
            let probed = self
                .source
                .lock()
                .expect("not poisoned")
                .ok_or_else(|| gst::loggable_error!(gst::CAT_RUST, "no source set"))?;
            let source = described(probed, &in_info.colorimetry());
            *self.mapper.lock().expect("not poisoned") = Some(Arc::new(Mapper::new(source)));
            Ok(())
        }

        fn transform_frame(
            &self,
            inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
            outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            let mapper = self
                .mapper
                .lock()
                .expect("not poisoned")
                .clone()
                .ok_or(gst::FlowError::NotNegotiated)?;
            let size = (inframe.width() as usize, inframe.height() as usize);
            let in_strides = inframe.plane_stride();
            let out_strides: [i32; 2] = {
                let s = outframe.plane_stride();
                [s[0], s[1]]
            };
            let plane = |i| inframe.plane_data(i).map_err(|_| gst::FlowError::Error);
            let (y, u, v) = (samples(plane(0)?), samples(plane(1)?), samples(plane(2)?));
            let input = crate::media::hdr::Planes10 {
                y: &y,
                u: &u,
                v: &v,
                y_stride: in_strides[0] as usize / 2,
                uv_stride: in_strides[1] as usize / 2,
            };
            let [oy, ou, ov, _] = outframe.planes_data_mut();
            let mut output = crate::media::hdr::Planes8 {
                y: oy,
                u: ou,
                v: ov,
                y_stride: out_strides[0] as usize,
                uv_stride: out_strides[1] as usize,
            };
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
            mapper.frame(&input, &mut output, size, threads);
            Ok(gst::FlowSuccess::Ok)
        }
    }
}
