//! HEIC/HEIF and AVIF stills, through libheif (`libheif-rs`): the primary image only (a
//! sequence's or a Live Photo's still; depth maps, thumbnails and auxiliary images are not
//! read), its grid tiles assembled and its rotation and mirror (irot, imir) applied by libheif.
//! The EXIF orientation is not applied on top of those (MIAF has readers ignore it, and phones
//! write both: applied twice the photo would turn too far), only to a file without them, as
//! encoders that keep a JPEG's EXIF write it. 10-bit images come out as 8-bit, alpha is kept,
//! an ICC profile (Display P3 on iPhones) or an nclx Display P3 is converted to sRGB. The size
//! is read from the header before anything is decoded. Nothing of the file's metadata is read.

use std::path::Path;

use image::metadata::Orientation;
use libheif_rs::{ColorPrimaries, ColorSpace, HeifContext, ImageHandle, LibHeif, RgbChroma};

use super::decode::{Picture, to_srgb};
use crate::media::steps::StepError;

fn undecodable(e: impl std::fmt::Display) -> StepError {
    StepError::permanent("decode_failed", format!("the image cannot be decoded: {e}"))
}

/// The file's context: its boxes parsed, nothing decoded.
fn open(path: &Path) -> Result<HeifContext<'static>, StepError> {
    let path = path
        .to_str()
        .ok_or_else(|| StepError::permanent("decode_failed", "the path is not UTF-8"))?;
    HeifContext::read_from_file(path).map_err(undecodable)
}

fn primary(ctx: &HeifContext<'_>) -> Result<ImageHandle, StepError> {
    ctx.primary_image_handle().map_err(undecodable)
}

/// Width and height of the primary image as displayed (after rotation), from the header.
pub(super) fn dimensions(path: &Path) -> Result<(u32, u32), StepError> {
    let ctx = open(path)?;
    let handle = primary(&ctx)?;
    Ok((handle.width(), handle.height()))
}

/// Decodes the primary image, upright and in sRGB; `dims` is what `dimensions` said (the
/// decoded image must not be larger).
pub(super) fn still(path: &Path, dims: (u32, u32)) -> Result<Picture, StepError> {
    let ctx = open(path)?;
    let handle = primary(&ctx)?;
    let alpha = handle.has_alpha_channel();
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let image = LibHeif::new()
        .decode(&handle, ColorSpace::Rgb(chroma), None)
        .map_err(undecodable)?;
    let (width, height) = (image.width(), image.height());
    if width as u64 * height as u64 > dims.0 as u64 * dims.1 as u64 {
        return Err(undecodable(format!(
            "it decodes to {width}x{height}, larger than its header's {}x{}",
            dims.0, dims.1
        )));
    }
    let planes = image.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| undecodable("libheif gave no interleaved picture"))?;
    let channels = if alpha { 4 } else { 3 };
    let row = width as usize * channels;
    let mut pixels = Vec::with_capacity(row * height as usize);
    for y in 0..height as usize {
        let start = y * plane.stride;
        let line = plane
            .data
            .get(start..start + row)
            .ok_or_else(|| undecodable("libheif's picture is shorter than its size"))?;
        pixels.extend_from_slice(line);
    }
    drop(image);
    if let Some(icc) = handle.color_profile_raw().filter(|p| !p.data.is_empty()) {
        to_srgb(&icc.data, alpha, &mut pixels);
    } else if handle
        .color_profile_nclx()
        .is_some_and(|n| n.color_primaries() == ColorPrimaries::SMPTE_EG_432_1)
    {
        // Display P3 named by nclx (primaries 12) with the sRGB curve, as phones write it.
        let p3 = moxcms::ColorProfile::new_display_p3().encode().ok();
        if let Some(p3) = p3 {
            to_srgb(&p3, alpha, &mut pixels);
        }
    }
    let orientation = match transformed(path)? {
        true => None,
        false => exif_orientation(&handle),
    };
    let mut img = if alpha {
        image::DynamicImage::ImageRgba8(
            image::RgbaImage::from_raw(width, height, pixels).expect("sized above"),
        )
    } else {
        image::DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(width, height, pixels).expect("sized above"),
        )
    };
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(Picture::from_image(img))
}

/// The orientation in the image's EXIF block, if it has one saying so.
fn exif_orientation(handle: &ImageHandle) -> Option<Orientation> {
    let mut ids = [0; 4];
    let n = handle.metadata_block_ids(&mut ids, b"Exif");
    ids[..n.min(ids.len())].iter().find_map(|id| {
        let data = handle.metadata(*id).ok()?;
        // A 4-byte offset to the TIFF header, then the EXIF payload (which some writers start
        // with JPEG's `Exif\0\0`).
        let skip = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
        let tiff = data.get(4usize.checked_add(skip)?..)?;
        let tiff = tiff.strip_prefix(b"Exif\0\0").unwrap_or(tiff);
        Orientation::from_exif_chunk(tiff).filter(|o| *o != Orientation::NoTransforms)
    })
}

/// The most of a `meta` box read to look for transforms.
const META_MAX: u64 = 16 << 20;

/// Whether the file's `meta` box holds a rotation or a mirror property (`irot`, `imir`),
/// which libheif has applied.
fn transformed(path: &Path) -> Result<bool, StepError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let end = f.metadata()?.len();
    let mut at = 0u64;
    while at + 8 <= end {
        let mut head = [0u8; 16];
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(&mut head[..8])?;
        let mut size = u64::from(u32::from_be_bytes(head[..4].try_into().expect("4 bytes")));
        let mut header = 8;
        if size == 1 {
            f.read_exact(&mut head[8..16])?;
            size = u64::from_be_bytes(head[8..16].try_into().expect("8 bytes"));
            header = 16;
        } else if size == 0 {
            size = end - at;
        }
        if size < header {
            return Ok(false);
        }
        if &head[4..8] == b"meta" {
            let mut body = Vec::new();
            f.take((size - header).min(META_MAX))
                .read_to_end(&mut body)?;
            return Ok(body.windows(4).any(|w| w == b"irot" || w == b"imir"));
        }
        at = at.saturating_add(size);
    }
    Ok(false)
}
