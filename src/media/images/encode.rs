//! Writing images: scaling (fast_image_resize, Lanczos 3), JPEG (jpeg-encoder; transparency
//! flattened onto white) and WebP (libwebp, lossy with alpha), still and animated. Nothing but
//! pixels is written: no EXIF, XMP, ICC or comment.

use std::path::Path;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::animated::Animation;
use super::decode::Picture;
use crate::media::publish::Output;
use crate::media::steps::StepError;

const JPEG_QUALITY: u8 = 82;
const WEBP_QUALITY: f32 = 80.0;
/// WebP's largest side.
const WEBP_MAX: u32 = 16383;
/// JPEG's largest side.
const JPEG_MAX: u32 = 65535;

/// The widths made for a picture `width` wide: each configured one narrower than it, and the
/// picture's own width when it is narrower than the widest configured (never upscaled).
pub fn sizes(width: u32, widths: &[u32]) -> Vec<u32> {
    let mut out: Vec<u32> = widths.iter().copied().filter(|&w| w < width).collect();
    if let Some(&top) = widths.iter().max() {
        out.push(width.min(top));
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn height_for(p: &Picture, width: u32) -> u32 {
    ((p.height as u64 * width as u64 + p.width as u64 / 2) / p.width as u64).max(1) as u32
}

/// `p` scaled to `width` (its height in proportion).
pub fn scaled(p: &Picture, width: u32) -> Result<Picture, StepError> {
    let height = height_for(p, width);
    if (width, height) == (p.width, p.height) {
        return Ok(Picture {
            pixels: p.pixels.clone(),
            ..*p
        });
    }
    let kind = if p.alpha {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    };
    let failed = |e: &dyn std::fmt::Display| StepError::permanent("resize", e.to_string());
    // Read in place: a copy of a 12-megapixel photo would be another 36 MB.
    let src = ImageRef::new(p.width, p.height, &p.pixels, kind).map_err(|e| failed(&e))?;
    let mut dst = Image::new(width, height, kind);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| failed(&e))?;
    Ok(Picture {
        width,
        height,
        alpha: p.alpha,
        pixels: dst.into_vec(),
    })
}

pub fn jpeg(p: &Picture) -> Result<Vec<u8>, StepError> {
    let rgb;
    let data = if p.alpha {
        // Onto white: what a page behind a transparent PNG usually is.
        rgb = p
            .pixels
            .chunks_exact(4)
            .flat_map(|px| {
                let a = px[3] as u32;
                let over = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
                [over(px[0]), over(px[1]), over(px[2])]
            })
            .collect::<Vec<u8>>();
        &rgb
    } else {
        &p.pixels
    };
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY)
        .encode(
            data,
            p.width as u16,
            p.height as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .map_err(|e| StepError::permanent("encode", format!("JPEG: {e}")))?;
    Ok(out)
}

pub fn webp(p: &Picture) -> Result<Vec<u8>, StepError> {
    let enc = if p.alpha {
        webp::Encoder::from_rgba(&p.pixels, p.width, p.height)
    } else {
        webp::Encoder::from_rgb(&p.pixels, p.width, p.height)
    };
    enc.encode_simple(false, WEBP_QUALITY)
        .map(|m| m.to_vec())
        .map_err(|e| StepError::permanent("encode", format!("WebP: {e:?}")))
}

pub fn animated_webp(a: &Animation) -> Result<Vec<u8>, StepError> {
    let mut config = webp::WebPConfig::new()
        .map_err(|_| StepError::permanent("encode", "libwebp cannot be set up"))?;
    config.quality = 70.0;
    config.method = 4;
    let mut enc = webp::AnimEncoder::new(a.width, a.height, &config);
    enc.set_loop_count(0);
    let mut t = 0i32;
    for (img, ms) in &a.frames {
        enc.add_frame(webp::AnimFrame::from_rgba(
            img.as_raw(),
            img.width(),
            img.height(),
            t,
        ));
        t = t.saturating_add(*ms as i32);
    }
    enc.try_encode()
        .map(|m| m.to_vec())
        .map_err(|e| StepError::permanent("encode", format!("animated WebP: {e:?}")))
}

/// Writes `<prefix><width>.jpg` and `.webp` into `dir` for each of `sizes(p.width, widths)`,
/// largest first, each scaled from the one before; they are variants of `kind`. Each picture
/// is let go as soon as the next smaller one is made from it: the full size first.
pub fn variants(
    p: Picture,
    widths: &[u32],
    dir: &Path,
    (kind, prefix): (&'static str, &str),
    stop: &dyn Fn() -> Result<(), StepError>,
) -> Result<Vec<Output>, StepError> {
    let mut out = Vec::new();
    let sizes = sizes(p.width, widths);
    let mut from = p;
    for w in sizes.into_iter().rev() {
        stop()?;
        let mut made = Vec::new();
        let v = if (w, height_for(&from, w)) == (from.width, from.height) {
            from
        } else {
            let v = scaled(&from, w)?;
            drop(from);
            v
        };
        if v.height <= JPEG_MAX {
            let name = format!("{prefix}{w}.jpg");
            std::fs::write(dir.join(&name), jpeg(&v)?)?;
            made.push(Output::picture(kind, name, "image/jpeg", v.width, v.height));
        }
        if v.height <= WEBP_MAX {
            let name = format!("{prefix}{w}.webp");
            std::fs::write(dir.join(&name), webp(&v)?)?;
            made.push(Output::picture(kind, name, "image/webp", v.width, v.height));
        }
        out.push(made);
        from = v;
    }
    Ok(out.into_iter().rev().flatten().collect())
}

/// Writes `poster.jpg`: `p` at the widest of `widths` it allows.
pub fn poster(p: &Picture, widths: &[u32], dir: &Path) -> Result<Output, StepError> {
    let w = sizes(p.width, widths).last().copied().unwrap_or(p.width);
    let v = scaled(p, w)?;
    std::fs::write(dir.join("poster.jpg"), jpeg(&v)?)?;
    Ok(Output::picture(
        "poster",
        "poster.jpg".into(),
        "image/jpeg",
        v.width,
        v.height,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_never_upscale() {
        let widths = [128, 320, 640, 1280];
        assert_eq!(sizes(4000, &widths), [128, 320, 640, 1280]);
        assert_eq!(sizes(1000, &widths), [128, 320, 640, 1000]);
        assert_eq!(sizes(640, &widths), [128, 320, 640]);
        assert_eq!(sizes(100, &widths), [100]);
    }

    fn picture(w: u32, h: u32, alpha: bool) -> Picture {
        let n = if alpha { 4 } else { 3 };
        Picture {
            width: w,
            height: h,
            alpha,
            pixels: (0..w * h * n).map(|i| (i % 251) as u8).collect(),
        }
    }

    #[test]
    fn outputs_decode_at_their_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let none = || Ok(());
        let out = variants(
            picture(700, 350, true),
            &[128, 320],
            dir.path(),
            ("image", "w"),
            &none,
        )
        .unwrap();
        let names: Vec<_> = out
            .iter()
            .map(|o| (o.path.as_str(), o.width, o.height))
            .collect();
        assert_eq!(
            names,
            [
                ("w128.jpg", Some(128), Some(64)),
                ("w128.webp", Some(128), Some(64)),
                ("w320.jpg", Some(320), Some(160)),
                ("w320.webp", Some(320), Some(160)),
            ]
        );
        for o in &out {
            let img = image::open(dir.path().join(&o.path)).unwrap();
            assert_eq!((Some(img.width()), Some(img.height())), (o.width, o.height));
        }
        let webp = image::open(dir.path().join("w320.webp")).unwrap();
        assert!(webp.color().has_alpha(), "transparency kept in WebP");
    }
}
