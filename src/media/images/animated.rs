//! Animated GIF and WebP: their frames, composited by the decoder, scaled down as they come so
//! that memory stays small, with their delays. A still GIF or WebP is left to the still path.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use image::codecs::gif::GifDecoder;
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, Frames, ImageDecoder, ImageFormat, RgbaImage, imageops};

use super::decode::limits;
use crate::media::steps::StepError;

/// Frames kept; a longer animation is cut here.
const MAX_FRAMES: usize = 300;
/// Frames × canvas pixels decoded at most (bounds the work a small file can ask for).
const MAX_DECODED_PIXELS: u64 = 1 << 30;

pub struct Animation {
    pub width: u32,
    pub height: u32,
    /// The first frame at full size (the poster).
    pub first: RgbaImage,
    /// Scaled frames and how long each shows, in ms.
    pub frames: Vec<(RgbaImage, u32)>,
}

impl std::fmt::Debug for Animation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Animation")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

/// The frames of an animated GIF or WebP scaled to at most `max_width`, or None for a still.
pub fn frames(
    path: &Path,
    format: ImageFormat,
    dims: (u32, u32),
    max_width: u32,
) -> Result<Option<Animation>, StepError> {
    let undecodable = |e: image::ImageError| {
        StepError::permanent("decode_failed", format!("the image cannot be decoded: {e}"))
    };
    let file = || -> Result<BufReader<File>, StepError> { Ok(BufReader::new(File::open(path)?)) };
    let frames: Frames<'_> = match format {
        ImageFormat::Gif => {
            let mut d = GifDecoder::new(file()?).map_err(undecodable)?;
            d.set_limits(limits(dims)).map_err(undecodable)?;
            d.into_frames()
        }
        ImageFormat::WebP => {
            let mut d = WebPDecoder::new(file()?).map_err(undecodable)?;
            if !d.has_animation() {
                return Ok(None);
            }
            d.set_limits(limits(dims)).map_err(undecodable)?;
            d.into_frames()
        }
        _ => return Ok(None),
    };
    let (w, h) = dims;
    let (sw, sh) = if w > max_width {
        (
            max_width,
            ((h as u64 * max_width as u64 / w as u64) as u32).max(1),
        )
    } else {
        (w, h)
    };
    let budget = (MAX_DECODED_PIXELS / (w as u64 * h as u64).max(1)) as usize;
    let mut first = None;
    let mut out = Vec::new();
    for frame in frames.take(MAX_FRAMES.min(budget.max(1))) {
        let frame = frame.map_err(undecodable)?;
        let (n, d) = frame.delay().numer_denom_ms();
        let ms = n.checked_div(d).unwrap_or(0);
        // Browsers show delays under 20 ms as 100 ms; so does the output.
        let ms = if ms < 20 { 100 } else { ms };
        let buf = frame.into_buffer();
        let scaled = if (sw, sh) == buf.dimensions() {
            buf.clone()
        } else {
            imageops::thumbnail(&buf, sw, sh)
        };
        if first.is_none() {
            first = Some(buf);
        }
        out.push((scaled, ms));
    }
    let Some(first) = first else {
        return Err(StepError::permanent(
            "decode_failed",
            "the image has no frames",
        ));
    };
    if out.len() < 2 {
        return Ok(None);
    }
    Ok(Some(Animation {
        width: sw,
        height: sh,
        first,
        frames: out,
    }))
}
