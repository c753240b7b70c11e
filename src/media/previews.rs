//! The video's preview and storyboard files, from the frames the transcode kept
//! (`extras::plan` chose their times): `preview.webp` (animated, looping) and
//! `storyboard.jpg` with `storyboard.vtt`.

use std::path::Path;

use image::{RgbImage, RgbaImage};

use super::extras::{COLUMNS, Extras, vtt};
use super::gst::transcode::Frame;
use super::images::animated::Animation;
use super::images::{decode::Picture, encode};
use super::publish::Output;
use super::steps::StepError;

fn rgba(f: &Frame) -> Option<RgbaImage> {
    RgbImage::from_raw(f.width, f.height, f.rgb.clone())
        .map(|img| image::DynamicImage::ImageRgb8(img).into_rgba8())
}

/// `preview.webp`: the frames, each shown until the next one's time.
pub fn preview(frames: &[Frame], dir: &Path) -> Result<Option<Output>, StepError> {
    let Some(first) = frames.first() else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let ms = frames
            .get(i + 1)
            .map(|n| n.pts_ns.saturating_sub(f.pts_ns) / 1_000_000)
            .filter(|&ms| ms > 0)
            .unwrap_or(100);
        let Some(img) = rgba(f) else {
            return Err(StepError::permanent("preview", "a frame of the wrong size"));
        };
        out.push((img, ms.min(10_000) as u32));
    }
    let anim = Animation {
        width: first.width,
        height: first.height,
        first: out[0].0.clone(),
        frames: out,
    };
    std::fs::write(dir.join("preview.webp"), encode::animated_webp(&anim)?)?;
    Ok(Some(Output::picture(
        "preview",
        "preview.webp".into(),
        "image/webp",
        anim.width,
        anim.height,
    )))
}

/// `storyboard.jpg` (tiles in rows of `COLUMNS`) and `storyboard.vtt`. Each tile is the first
/// frame at or after its time (the last frame for times past the end).
pub fn storyboard(
    frames: &[Frame],
    extras: &Extras,
    duration_ms: u64,
    dir: &Path,
) -> Result<Vec<Output>, StepError> {
    if frames.is_empty() {
        return Ok(Vec::new());
    }
    let sb = &extras.storyboard;
    let (tw, th) = (sb.width, sb.height);
    let tiles = sb.times_ms.len();
    let rows = tiles.div_ceil(COLUMNS) as u32;
    let cols = tiles.min(COLUMNS) as u32;
    let mut sprite = RgbImage::new(cols * tw, rows * th);
    for (i, t) in sb.times_ms.iter().enumerate() {
        let t_ns = t * 1_000_000;
        let f = frames
            .iter()
            .find(|f| f.pts_ns + 1_000_000 >= t_ns)
            .unwrap_or(frames.last().expect("not empty"));
        let Some(tile) = RgbImage::from_raw(f.width, f.height, f.rgb.clone()) else {
            return Err(StepError::permanent(
                "storyboard",
                "a frame of the wrong size",
            ));
        };
        let (x, y) = (
            (i % COLUMNS) as i64 * tw as i64,
            (i / COLUMNS) as i64 * th as i64,
        );
        image::imageops::replace(&mut sprite, &tile, x, y);
    }
    let picture = Picture {
        width: sprite.width(),
        height: sprite.height(),
        alpha: false,
        pixels: sprite.into_raw(),
    };
    std::fs::write(dir.join("storyboard.jpg"), encode::jpeg(&picture)?)?;
    let text = vtt(
        "storyboard.jpg",
        tiles,
        (tw, th),
        extras.tile_ms,
        duration_ms,
    );
    std::fs::write(dir.join("storyboard.vtt"), text)?;
    Ok(vec![
        Output::picture(
            "storyboard",
            "storyboard.jpg".into(),
            "image/jpeg",
            picture.width,
            picture.height,
        ),
        Output {
            kind: "storyboard-vtt",
            path: "storyboard.vtt".into(),
            mime: "text/vtt",
            width: Some(tw),
            height: Some(th),
            duration_ms: Some(duration_ms),
        },
    ])
}
