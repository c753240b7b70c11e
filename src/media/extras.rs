//! What a video gets besides its ladder, planned from its length and the top rendition: an
//! animated preview (a few seconds at 10 fps, small), a storyboard (a sprite of tiles every few
//! seconds and the WebVTT that maps times to them, as players use for scrubbing) and, with
//! `--mp4-fallback`, one rendition muxed as a progressive MP4. Pure, unit-tested.

use std::fmt::Write as _;

use super::plan::Plan;

/// Frames a branch of the transcode keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Frames {
    pub width: u32,
    pub height: u32,
    /// Ascending, ms.
    pub times_ms: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Extras {
    pub preview: Frames,
    pub storyboard: Frames,
    /// Its interval, ms.
    pub tile_ms: u64,
    /// The rendition (index into the plan) also written as `fallback.mp4`.
    pub mp4: Option<usize>,
}

const PREVIEW_MS: u64 = 3000;
const PREVIEW_STEP_MS: u64 = 100;
const PREVIEW_WIDTH: u32 = 320;
const TILE_WIDTH: u32 = 160;
/// Tiles per sprite row.
pub const COLUMNS: usize = 10;
const MAX_TILES: u64 = 100;
/// The fallback MP4 is the largest rendition at most this tall (on the shorter side).
const MP4_SHORT_SIDE: u32 = 720;

fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

/// `width` wide (never more than the picture), the height in proportion.
fn fit(width: u32, (w, h): (u32, u32)) -> (u32, u32) {
    let width = width.min(w);
    (
        even(width as f64),
        even(h as f64 * width as f64 / w.max(1) as f64),
    )
}

pub fn plan(plan: &Plan, duration_ms: u64, mp4: bool) -> Extras {
    let top = plan.renditions.last().expect("a plan has a rendition");
    let size = (top.width, top.height);
    // Preview: from a tenth of the way in (past intros and black), 3 s or the whole video.
    let len = PREVIEW_MS.min(duration_ms);
    let start = (duration_ms / 10).min(duration_ms - len);
    let preview_times = (0..len.div_ceil(PREVIEW_STEP_MS).max(1))
        .map(|k| start + k * PREVIEW_STEP_MS)
        .collect();
    let (pw, ph) = fit(PREVIEW_WIDTH, size);
    let tile_ms = tile_interval(duration_ms);
    let tiles = (0..duration_ms.div_ceil(tile_ms).max(1))
        .map(|i| i * tile_ms)
        .collect();
    let (tw, th) = fit(TILE_WIDTH, size);
    let mp4 = mp4.then(|| {
        plan.renditions
            .iter()
            .rposition(|r| r.width.min(r.height) <= MP4_SHORT_SIDE)
            .unwrap_or(0)
    });
    Extras {
        preview: Frames {
            width: pw,
            height: ph,
            times_ms: preview_times,
        },
        storyboard: Frames {
            width: tw,
            height: th,
            times_ms: tiles,
        },
        tile_ms,
        mp4,
    }
}

/// A tile every 2 s, or every few seconds more so that there are at most 100.
pub fn tile_interval(duration_ms: u64) -> u64 {
    let per = duration_ms.div_ceil(MAX_TILES).div_ceil(1000) * 1000;
    per.max(2000)
}

fn stamp(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// The WebVTT of a storyboard of `tiles` tiles of `w`×`h`, `COLUMNS` to a row of `sprite`.
pub fn vtt(
    sprite: &str,
    tiles: usize,
    (w, h): (u32, u32),
    tile_ms: u64,
    duration_ms: u64,
) -> String {
    let mut out = String::from("WEBVTT\n");
    for i in 0..tiles {
        let from = i as u64 * tile_ms;
        let to = (from + tile_ms).min(duration_ms);
        let (x, y) = ((i % COLUMNS) as u32 * w, (i / COLUMNS) as u32 * h);
        let _ = write!(
            out,
            "\n{} --> {}\n{sprite}#xywh={x},{y},{w},{h}\n",
            stamp(from),
            stamp(to)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::plan::Rendition;

    fn ladder(sizes: &[(u32, u32)]) -> Plan {
        Plan {
            renditions: sizes
                .iter()
                .map(|&(width, height)| Rendition {
                    width,
                    height,
                    kbps: 1000,
                })
                .collect(),
            fps: (30, 1),
            gop: 60,
        }
    }

    #[test]
    fn previews_and_storyboards_fit_the_video() {
        let p = ladder(&[(640, 360), (1280, 720), (1920, 1080)]);
        let e = plan(&p, 60_000, true);
        assert_eq!((e.preview.width, e.preview.height), (320, 180));
        assert_eq!(e.preview.times_ms.len(), 30);
        assert_eq!(e.preview.times_ms[0], 6000);
        assert_eq!((e.storyboard.width, e.storyboard.height), (160, 90));
        assert_eq!(e.tile_ms, 2000);
        assert_eq!(e.storyboard.times_ms.len(), 30);
        assert_eq!(e.mp4, Some(1), "720p, not 1080p");
        // Short: the whole clip; long: at most 100 tiles.
        let short = plan(&ladder(&[(360, 640)]), 1500, false);
        assert_eq!(
            short.preview.times_ms,
            (0..15).map(|k| k * 100).collect::<Vec<_>>()
        );
        assert_eq!(
            (short.storyboard.width, short.storyboard.height),
            (160, 284)
        );
        assert_eq!(short.storyboard.times_ms, [0]);
        assert_eq!(short.mp4, None);
        assert_eq!(tile_interval(3 * 3600 * 1000), 108_000);
        assert!(plan(&p, 3 * 3600 * 1000, false).storyboard.times_ms.len() <= 100);
    }

    #[test]
    fn the_vtt_covers_the_duration_and_points_into_the_sprite() {
        let v = vtt("storyboard.jpg", 12, (160, 90), 2000, 23_500);
        assert!(v.starts_with(
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nstoryboard.jpg#xywh=0,0,160,90\n"
        ));
        assert!(v.contains("00:00:20.000 --> 00:00:22.000\nstoryboard.jpg#xywh=0,90,160,90\n"));
        assert!(v.ends_with("00:00:22.000 --> 00:00:23.500\nstoryboard.jpg#xywh=160,90,160,90\n"));
        assert_eq!(stamp(3_723_004), "01:02:03.004");
    }
}
