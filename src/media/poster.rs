//! The poster and thumbnails: of the candidate frames the transcode kept, the one with the most
//! detail (the largest spread of brightness: not a black or faded frame), as JPEG at the top
//! rendition's size and at each thumbnail width no wider than it. The JPEG encoder writes no
//! metadata.

use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::{RgbImage, imageops};

use crate::media::gst::transcode::Frame;
use crate::media::steps::StepError;

/// Standard deviation of the luma of a frame, sampled.
fn spread(f: &Frame) -> f64 {
    let px = f.rgb.chunks_exact(3).step_by(7);
    let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
    for p in px {
        let y = 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64;
        n += 1.0;
        sum += y;
        sq += y * y;
    }
    if n == 0.0 {
        return 0.0;
    }
    let mean = sum / n;
    (sq / n - mean * mean).max(0.0).sqrt()
}

/// The most detailed frame.
pub fn pick(frames: Vec<Frame>) -> Option<Frame> {
    frames
        .into_iter()
        .map(|f| (spread(&f), f))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, f)| f)
}

fn save(img: &RgbImage, path: &Path) -> Result<(), StepError> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::new(file);
    JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(img)
        .map_err(|e| StepError::transient("io", format!("poster: {e}")))?;
    Ok(())
}

/// Writes `poster.jpg` and `thumb-<width>.jpg` into `dir`; returns (file, width, height) each.
pub fn write(
    frame: Frame,
    widths: &[u32],
    dir: &Path,
) -> Result<Vec<(String, u32, u32)>, StepError> {
    let img = RgbImage::from_raw(frame.width, frame.height, frame.rgb)
        .ok_or_else(|| StepError::permanent("poster", "frame of the wrong size"))?;
    let mut out = Vec::new();
    save(&img, &dir.join("poster.jpg"))?;
    out.push(("poster.jpg".to_owned(), img.width(), img.height()));
    for &w in widths.iter().filter(|&&w| w <= img.width()) {
        let h = ((img.height() as f64 * w as f64 / img.width() as f64).round() as u32).max(1);
        let thumb = imageops::resize(&img, w, h, imageops::FilterType::Triangle);
        let name = format!("thumb-{w}.jpg");
        save(&thumb, &dir.join(&name))?;
        out.push((name, w, h));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(f: impl Fn(usize) -> u8) -> Frame {
        Frame {
            width: 64,
            height: 36,
            pts_ns: 0,
            rgb: (0..64 * 36 * 3).map(f).collect(),
        }
    }

    #[test]
    fn a_black_frame_is_never_the_poster() {
        let picked = pick(vec![
            frame(|_| 0),
            frame(|i| (i * 37 % 251) as u8),
            frame(|_| 128),
        ])
        .unwrap();
        assert!(picked.rgb.iter().any(|&b| b != picked.rgb[0]));
    }

    #[test]
    fn thumbnails_are_never_upscaled() {
        let dir = tempfile::tempdir().unwrap();
        let out = write(frame(|i| i as u8), &[32, 128], dir.path()).unwrap();
        assert_eq!(
            out,
            [
                ("poster.jpg".into(), 64, 36),
                ("thumb-32.jpg".into(), 32, 18)
            ]
        );
        let img = image::open(dir.path().join("thumb-32.jpg")).unwrap();
        assert_eq!((img.width(), img.height()), (32, 18));
    }
}
