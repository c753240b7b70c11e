//! The waveform of an audio file: (min, max) per column drawn as a PNG, and the same columns
//! as audiowaveform's JSON (version 2, 8 bits), which web players read.

use std::path::Path;

use super::steps::StepError;

/// The bars' colour (RGBA); the background is transparent.
const INK: [u8; 4] = [0x2f, 0x6f, 0xd6, 0xff];

pub fn png(cols: &[(f32, f32)], (w, h): (u32, u32), path: &Path) -> Result<(), StepError> {
    let mut img = image::RgbaImage::new(w, h);
    let mid = (h as f32 - 1.0) / 2.0;
    for (x, (lo, hi)) in cols.iter().take(w as usize).enumerate() {
        let top = (mid - hi.clamp(-1.0, 1.0) * mid).floor().max(0.0) as u32;
        let bottom = (mid - lo.clamp(-1.0, 1.0) * mid).ceil().min(h as f32 - 1.0) as u32;
        // At least the centre line, so silence still shows where the sound is.
        let (top, bottom) = (top.min(mid as u32), bottom.max(mid.ceil() as u32));
        for y in top..=bottom {
            img.put_pixel(x as u32, y, image::Rgba(INK));
        }
    }
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| StepError::transient("io", format!("waveform: {e}")))
}

pub fn json(cols: &[(f32, f32)], samples_per_pixel: usize, path: &Path) -> Result<(), StepError> {
    let q = |v: f32| (v.clamp(-1.0, 1.0) * 127.0).round() as i32;
    let data: Vec<i32> = cols.iter().flat_map(|(lo, hi)| [q(*lo), q(*hi)]).collect();
    let doc = serde_json::json!({
        "version": 2,
        "channels": 1,
        "sample_rate": 48000,
        "samples_per_pixel": samples_per_pixel.max(1),
        "bits": 8,
        "length": cols.len(),
        "data": data,
    });
    std::fs::write(path, doc.to_string())?;
    Ok(())
}
