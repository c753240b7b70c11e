//! A JPEG decoded at a reduced scale when the widest variant needs no more: the DCT's own
//! scaling (`jpeg-decoder`, 1/2, 1/4 or 1/8) makes the picture at that size directly, as
//! libjpeg's shrink-on-load does for vips, so a 12-megapixel photo whose widest variant is
//! 1280 is decoded at 2000×1500 (9 MB of RGB instead of 36). Anything this path does not
//! handle (CMYK, 16-bit, no reduction possible, a file it cannot read) answers None and takes
//! the full decode.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};
use jpeg_decoder::{Decoder, PixelFormat};

use super::decode::{Picture, to_srgb};
use crate::media::steps::StepError;

/// Decodes the JPEG at `path` (`w`×`h` by its header) at the smallest DCT scale that still
/// leaves it at least `widest` wide once upright, upright and in sRGB; None when no scale
/// below the full one does, or the file is not one this path reads.
pub(super) fn reduced(
    path: &Path,
    (w, h): (u32, u32),
    widest: u32,
) -> Result<Option<Picture>, StepError> {
    let mut decoder = Decoder::new(BufReader::new(File::open(path)?));
    if decoder.read_info().is_err() {
        return Ok(None);
    }
    let Some(info) = decoder.info() else {
        return Ok(None);
    };
    if !matches!(info.pixel_format, PixelFormat::RGB24 | PixelFormat::L8)
        || (info.width as u32, info.height as u32) != (w, h)
    {
        return Ok(None);
    }
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let turned = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let upright_width = if turned { h } else { w };
    let need = widest.min(upright_width);
    // Below a half, a DCT scale fits; the decoder picks the smallest one at least this size.
    if need as u64 * 2 > upright_width as u64 {
        return Ok(None);
    }
    let fraction = need as f64 / upright_width as f64;
    let ask = |side: u32| ((side as f64 * fraction).ceil() as u32).clamp(1, u16::MAX as u32) as u16;
    let Ok((sw, sh)) = decoder.scale(ask(w), ask(h)) else {
        return Ok(None);
    };
    let (sw, sh) = (sw as u32, sh as u32);
    let upright = if turned { sh } else { sw };
    if (sw, sh) == (w, h) || upright < need {
        return Ok(None);
    }
    decoder.set_max_decoding_buffer_size(w as usize * h as usize * 4);
    let Ok(pixels) = decoder.decode() else {
        return Ok(None);
    };
    let pixels = match info.pixel_format {
        PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        _ => pixels,
    };
    let Some(img) = RgbImage::from_raw(sw, sh, pixels) else {
        return Ok(None);
    };
    let mut img = DynamicImage::ImageRgb8(img);
    img.apply_orientation(orientation);
    let mut p = Picture::from_image(img);
    if let Some(icc) = decoder.icc_profile() {
        to_srgb(&icc, false, &mut p.pixels);
    }
    Ok(Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), bytes).unwrap();
        f
    }

    #[test]
    fn a_photo_more_than_twice_the_widest_is_decoded_smaller_and_upright() {
        // Coded 1600×800, shown 800×1600 (orientation 6); red on the coded left.
        let f = file(&testkit::pictures::phone_jpeg(1600, 800, 6));
        let p = reduced(f.path(), (1600, 800), 320)
            .unwrap()
            .expect("reduced");
        // 320 of 800 upright: a half is the smallest scale at least that wide.
        assert_eq!((p.width, p.height, p.alpha), (400, 800, false));
        let px = |x: u32, y: u32| &p.pixels[((y * p.width + x) * 3) as usize..][..3];
        assert!(
            px(100, 200)[0] > 180 && px(100, 200)[2] < 60,
            "red at the top"
        );
        assert!(px(100, 600)[2] > 180, "blue at the bottom");
        // A widest of 100 takes an eighth... of 800 upright is 100: exactly wide enough.
        let p = reduced(f.path(), (1600, 800), 100)
            .unwrap()
            .expect("reduced");
        assert_eq!((p.width, p.height), (100, 200));
    }

    #[test]
    fn no_reduction_below_a_half_or_for_what_this_path_does_not_read() {
        let f = file(&testkit::pictures::phone_jpeg(1600, 800, 1));
        assert!(reduced(f.path(), (1600, 800), 1000).unwrap().is_none());
        assert!(reduced(f.path(), (1600, 800), 801).unwrap().is_none());
        // A header that does not match what was checked is left to the full decode.
        assert!(reduced(f.path(), (1601, 800), 100).unwrap().is_none());
        let junk = file(b"\xff\xd8\xff\xe0 not a jpeg");
        assert!(reduced(junk.path(), (1600, 800), 100).unwrap().is_none());
    }
}
