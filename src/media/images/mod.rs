//! Images (JPEG, PNG, WebP, GIF): the pixel count is checked from the header before anything
//! is decoded; the picture is decoded once, turned upright (EXIF orientation), converted to
//! sRGB (its ICC profile applied, then dropped), and written at each `--image-widths` width no
//! wider than itself as JPEG and WebP. Animated GIF and WebP get a still poster (the first
//! frame) and an animated WebP. Outputs are encoded from pixels, so no metadata block (EXIF,
//! GPS, XMP, comments, ICC) reaches them.
//!
//! Crates, chosen for speed: `image` decodes (zune-jpeg, png, gif, image-webp: pure Rust, with
//! limits), `fast_image_resize` scales (SIMD convolution, several times faster than `image`'s
//! own resize), `jpeg-encoder` writes JPEG (SIMD), `webp` binds libwebp for lossy and animated
//! WebP (which `image` cannot write), `moxcms` does the ICC conversion; `jpeg-decoder` decodes
//! a JPEG far wider than its widest variant at a reduced DCT scale (`jpeg`).

pub mod animated;
pub mod decode;
pub mod encode;
mod heif;
mod jpeg;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::publish::Output;
use super::steps::StepError;

/// What the image step needs to know.
pub struct ImageJob<'a> {
    pub input: &'a Path,
    pub out_dir: &'a Path,
    /// The detected type.
    pub mime: &'a str,
    pub widths: &'a [u32],
    pub max_pixels: Option<u64>,
    pub cancel: &'a AtomicBool,
    pub progress: &'a dyn Fn(f32),
}

impl std::fmt::Debug for ImageJob<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageJob")
            .field("input", &self.input)
            .field("out_dir", &self.out_dir)
            .field("mime", &self.mime)
            .field("widths", &self.widths)
            .field("max_pixels", &self.max_pixels)
            .finish_non_exhaustive()
    }
}

/// The stills' variant kind and file prefix (`w320.jpg`).
const STILLS: (&str, &str) = ("image", "w");

/// Animated variants are at most this wide.
const ANIMATED_WIDTH: u32 = 480;

pub fn process(job: &ImageJob<'_>) -> Result<Vec<Output>, StepError> {
    let format = decode::format(job.mime)?;
    let (w, h) = decode::dimensions(job.input, format)?;
    let pixels = w as u64 * h as u64;
    if let Some(max) = job.max_pixels
        && pixels > max
    {
        return Err(StepError::rejected(
            "too_large",
            format!("the image is {w}x{h} ({pixels} pixels); at most {max} are accepted"),
        ));
    }
    let stop = || {
        if job.cancel.load(Ordering::Relaxed) {
            Err(StepError::transient("cancelled", "the run was stopped"))
        } else {
            Ok(())
        }
    };
    let mut outputs = Vec::new();
    let animation = match format {
        decode::Format::Raster(f) => animated::frames(job.input, f, (w, h), ANIMATED_WIDTH)?,
        decode::Format::Heif => None,
    };
    if let Some(anim) = animation {
        stop()?;
        let file = "animated.webp".to_owned();
        std::fs::write(job.out_dir.join(&file), encode::animated_webp(&anim)?)?;
        outputs.push(Output::picture(
            "animated",
            file,
            "image/webp",
            anim.width,
            anim.height,
        ));
        (job.progress)(50.0);
        // The first frame is the poster and the stills.
        let first = decode::Picture::from_rgba(anim.first);
        outputs.push(encode::poster(&first, job.widths, job.out_dir)?);
        outputs.extend(encode::variants(
            first,
            job.widths,
            job.out_dir,
            STILLS,
            &stop,
        )?);
        return Ok(outputs);
    }
    stop()?;
    let picture = decode::still(job.input, format, (w, h), job.widths.iter().max().copied())?;
    (job.progress)(30.0);
    outputs.extend(encode::variants(
        picture,
        job.widths,
        job.out_dir,
        STILLS,
        &stop,
    )?);
    Ok(outputs)
}

/// Cover art (a picture from an audio file's tags) as `poster.jpg` and thumbnails.
pub fn cover(bytes: &[u8], widths: &[u32], out: &Path) -> Result<Vec<Output>, StepError> {
    let picture = decode::from_memory(bytes, COVER_PIXELS)?;
    let mut made = vec![encode::poster(&picture, widths, out)?];
    made.extend(
        encode::variants(picture, widths, out, ("thumbnail", "thumb-"), &|| Ok(()))?
            .into_iter()
            .filter(|o| o.mime == "image/jpeg"),
    );
    Ok(made)
}

/// Cover art larger than this is not decoded.
const COVER_PIXELS: u64 = 25_000_000;
