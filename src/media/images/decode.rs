//! Reading images: the format from the detected type, the size from the header alone, and a
//! decode under limits, upright and in sRGB.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::media::steps::StepError;

/// A decoded picture: 8-bit RGB, or RGBA when it has transparency.
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
    pub pixels: Vec<u8>,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picture")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("alpha", &self.alpha)
            .finish_non_exhaustive()
    }
}

impl Picture {
    /// `img` as a picture: RGBA when it has an alpha channel that is not opaque everywhere,
    /// else RGB.
    pub fn from_image(img: DynamicImage) -> Picture {
        if img.color().has_alpha() {
            return Picture::from_rgba(img.into_rgba8());
        }
        let (width, height) = (img.width(), img.height());
        Picture {
            width,
            height,
            alpha: false,
            pixels: img.into_rgb8().into_raw(),
        }
    }

    pub fn from_rgba(img: image::RgbaImage) -> Picture {
        let (width, height) = img.dimensions();
        let alpha = img.pixels().any(|p| p.0[3] != 255);
        let pixels = if alpha {
            img.into_raw()
        } else {
            DynamicImage::ImageRgba8(img).into_rgb8().into_raw()
        };
        Picture {
            width,
            height,
            alpha,
            pixels,
        }
    }
}

/// How a format is read: by the `image` crate, or by libheif (HEIC/HEIF, AVIF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Raster(ImageFormat),
    Heif,
}

/// The formats read; anything else is refused with the reason.
pub fn format(mime: &str) -> Result<Format, StepError> {
    match mime {
        "image/jpeg" => Ok(Format::Raster(ImageFormat::Jpeg)),
        "image/png" => Ok(Format::Raster(ImageFormat::Png)),
        "image/webp" => Ok(Format::Raster(ImageFormat::WebP)),
        "image/gif" => Ok(Format::Raster(ImageFormat::Gif)),
        "image/heif" | "image/heic" | "image/avif" => Ok(Format::Heif),
        other => Err(StepError::rejected(
            "unsupported_image",
            format!("{other} images are not supported (JPEG, PNG, WebP, GIF, HEIC and AVIF are)"),
        )),
    }
}

fn reader(path: &Path, format: ImageFormat) -> Result<ImageReader<BufReader<File>>, StepError> {
    let mut r = ImageReader::new(BufReader::new(File::open(path)?));
    r.set_format(format);
    Ok(r)
}

fn undecodable(e: impl std::fmt::Display) -> StepError {
    StepError::permanent("decode_failed", format!("the image cannot be decoded: {e}"))
}

/// Width and height as the header says, nothing decoded.
pub fn dimensions(path: &Path, format: Format) -> Result<(u32, u32), StepError> {
    match format {
        Format::Raster(format) => reader(path, format)?.into_dimensions().map_err(undecodable),
        Format::Heif => super::heif::dimensions(path),
    }
}

/// Limits for decoding an image the header said is `w`×`h`: no more, and memory for it alone.
pub fn limits((w, h): (u32, u32)) -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(w);
    l.max_image_height = Some(h);
    // RGBA at 16 bits per channel, twice (decoder buffers), plus slack.
    l.max_alloc = Some(w as u64 * h as u64 * 16 + (64 << 20));
    l
}

/// Decodes a picture held in memory (a cover in a tag) of at most `max_pixels`.
pub fn from_memory(bytes: &[u8], max_pixels: u64) -> Result<Picture, StepError> {
    let reader = || {
        ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(undecodable)
    };
    let (w, h) = reader()?.into_dimensions().map_err(undecodable)?;
    if w as u64 * h as u64 > max_pixels {
        return Err(StepError::rejected(
            "too_large",
            format!("a {w}x{h} picture"),
        ));
    }
    let mut r = reader()?;
    r.limits(limits((w, h)));
    let img = r.decode().map_err(undecodable)?;
    Ok(Picture::from_rgba(img.into_rgba8()))
}

/// Decodes a still picture, upright and in sRGB; a JPEG at a reduced scale when it is more
/// than twice `widest` (the widest it will be shown at).
pub fn still(
    path: &Path,
    format: Format,
    dims: (u32, u32),
    widest: Option<u32>,
) -> Result<Picture, StepError> {
    let format = match format {
        Format::Raster(format) => format,
        Format::Heif => return super::heif::still(path, dims),
    };
    if let (ImageFormat::Jpeg, Some(widest)) = (format, widest)
        && let Some(p) = super::jpeg::reduced(path, dims, widest)?
    {
        return Ok(p);
    }
    let mut r = reader(path, format)?;
    r.limits(limits(dims));
    let mut decoder = r.into_decoder().map_err(undecodable)?;
    let orientation = decoder.orientation().map_err(undecodable)?;
    let icc = decoder.icc_profile().ok().flatten();
    let mut img = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    img.apply_orientation(orientation);
    let alpha = img.color().has_alpha();
    let (width, height) = (img.width(), img.height());
    let mut pixels = if alpha {
        img.into_rgba8().into_raw()
    } else {
        img.into_rgb8().into_raw()
    };
    if let Some(icc) = icc {
        to_srgb(&icc, alpha, &mut pixels);
    }
    Ok(Picture::from_image(if alpha {
        DynamicImage::ImageRgba8(
            image::RgbaImage::from_raw(width, height, pixels).expect("sized above"),
        )
    } else {
        DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(width, height, pixels).expect("sized above"),
        )
    }))
}

/// Converts pixels from the embedded profile to sRGB. A profile that cannot be read, or is
/// not an RGB one (the decoder already made CMYK and grey RGB), is dropped with the pixels as
/// they are: they are then taken as sRGB.
pub(super) fn to_srgb(icc: &[u8], alpha: bool, pixels: &mut [u8]) {
    use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};
    let Ok(src) = ColorProfile::new_from_slice(icc) else {
        return;
    };
    if src.color_space != DataColorSpace::Rgb {
        return;
    }
    let layout = if alpha { Layout::Rgba } else { Layout::Rgb };
    let Ok(t) = src.create_transform_8bit(
        layout,
        &ColorProfile::new_srgb(),
        layout,
        TransformOptions::default(),
    ) else {
        return;
    };
    // A band of rows at a time, through a small buffer: the picture is not copied whole.
    let band = layout.channels() * 4096 * 16;
    let mut copy = Vec::with_capacity(band.min(pixels.len()));
    for chunk in pixels.chunks_mut(band) {
        copy.clear();
        copy.extend_from_slice(chunk);
        if t.transform(&copy, chunk).is_err() {
            chunk.copy_from_slice(&copy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_gamut_pixels_are_converted_to_srgb_and_broken_profiles_dropped() {
        // Display P3's pure green lies outside sRGB: converted, its red channel goes to 0 and
        // it stays green; a mid grey stays grey.
        let p3 = moxcms::ColorProfile::new_display_p3().encode().unwrap();
        let mut px = vec![0u8, 255, 0, 128, 128, 128];
        to_srgb(&p3, false, &mut px);
        assert_eq!(px[0], 0);
        assert!(px[1] == 255 && px[2] < 80, "{px:?}");
        assert!(px[3..].iter().all(|&c| (126..=130).contains(&c)), "{px:?}");
        // A P3 colour inside sRGB moves: (200, 100, 50) is more saturated in sRGB.
        let mut px = vec![200u8, 100, 50];
        to_srgb(&p3, false, &mut px);
        assert!(px[0] > 200 && px[2] < 50, "{px:?}");
        // An sRGB profile changes nothing; garbage is ignored.
        let srgb = moxcms::ColorProfile::new_srgb().encode().unwrap();
        let mut px = vec![200u8, 100, 50, 7];
        to_srgb(&srgb, true, &mut px);
        assert!(
            px.iter()
                .zip([200u8, 100, 50, 7])
                .all(|(a, b)| a.abs_diff(b) <= 1),
            "{px:?}"
        );
        let mut px = vec![1u8, 2, 3];
        to_srgb(b"not a profile", false, &mut px);
        assert_eq!(px, [1, 2, 3]);
    }
}
