//! The HLS ladder for a probed video: which renditions, their sizes and bitrates, the output
//! frame rate and the keyframe interval. Pure, so the choices are unit-tested.

use crate::domain::media::VideoFacts;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    pub width: u32,
    pub height: u32,
    /// Video bitrate, kbit/s.
    pub kbps: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Ascending by size.
    pub renditions: Vec<Rendition>,
    /// Constant output frame rate, as a fraction.
    pub fps: (i32, i32),
    /// Frames between keyframes: one segment, so every rendition cuts at the same frames.
    pub gop: u32,
}

/// Where a pass's sound goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Sound {
    /// Into every rendition's segments (a video done in one pass; tasks planned before chunks).
    #[default]
    Muxed,
    /// Into a rendition of its own (`audio/`), the master's audio group: the renditions of a
    /// video done in chunks carry none, so the sound is encoded once and never joined.
    Own,
    /// Nowhere: a chunk's.
    Without,
}

/// Output rate: the source's when it is a sane constant rate (its field rate when interlaced:
/// each field becomes a frame), else 30 (variable-rate input is made constant); never above 60.
fn output_fps(v: &VideoFacts) -> (i32, i32) {
    let rate = v.frame_rate.map(|f| if v.interlaced { f * 2.0 } else { f });
    match rate {
        Some(f) if (1.0..=60.5).contains(&f) && !v.variable_frame_rate => {
            // Keep NTSC rates exact (29.97 = 30000/1001).
            let ntsc = (f * 1001.0 / 1000.0).round();
            if (ntsc * 1000.0 / 1001.0 - f).abs() < 0.01 && (f - f.round()).abs() > 0.01 {
                (ntsc as i32 * 1000, 1001)
            } else {
                (f.round() as i32, 1)
            }
        }
        Some(f) if f > 60.5 => (60, 1),
        Some(f) if f >= 1.0 => ((f.round() as i32).clamp(1, 60), 1),
        _ => (30, 1),
    }
}

/// `x` rounded to an even number (the encoder needs even sizes), never more than `limit`
/// (the source's size: no upscaling, not even by a pixel).
fn even(x: f64, limit: f64) -> u32 {
    let cap = ((limit / 2.0).floor() as u32 * 2).max(2);
    ((x / 2.0).round() as u32 * 2).clamp(2, cap)
}

/// Bitrate for a picture of `short` lines at `fps`, kbit/s.
fn kbps(short: u32, fps: f64) -> u32 {
    let base = match short {
        0..=240 => 400,
        241..=360 => 800,
        361..=480 => 1400,
        481..=720 => 2800,
        721..=1080 => 5000,
        1081..=1440 => 8000,
        _ => 14000,
    };
    if fps > 31.0 { base * 3 / 2 } else { base }
}

/// The ladder for `v` (upright display size) from `ladder` (shorter-side heights), with
/// segments of `segment` seconds. Never upscales: rungs above the source are dropped, and a
/// source below the lowest rung gets one rendition at its own size.
pub fn plan(v: &VideoFacts, ladder: &[u32], segment: u32) -> Plan {
    let (dw, dh) = (
        v.display_width.max(2) as f64,
        v.display_height.max(2) as f64,
    );
    let short = dw.min(dh);
    let mut rungs: Vec<u32> = ladder
        .iter()
        .copied()
        .filter(|&r| r as f64 <= short)
        .collect();
    if rungs.is_empty() {
        rungs.push(short as u32);
    }
    let fps = output_fps(v);
    let fps_f = fps.0 as f64 / fps.1 as f64;
    let renditions = rungs
        .into_iter()
        .map(|r| {
            let scale = r as f64 / short;
            let (width, height) = (even(dw * scale, dw), even(dh * scale, dh));
            Rendition {
                width,
                height,
                kbps: kbps(width.min(height), fps_f),
            }
        })
        .collect();
    Plan {
        renditions,
        fps,
        gop: ((segment as f64 * fps_f).round() as u32).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(w: u32, h: u32, fps: Option<f64>) -> VideoFacts {
        VideoFacts {
            display_width: w,
            display_height: h,
            coded_width: w,
            coded_height: h,
            frame_rate: fps,
            variable_frame_rate: fps.is_none(),
            ..Default::default()
        }
    }

    fn sizes(p: &Plan) -> Vec<(u32, u32)> {
        p.renditions.iter().map(|r| (r.width, r.height)).collect()
    }

    #[test]
    fn full_ladder_for_1080p() {
        let p = plan(&video(1920, 1080, Some(30.0)), &[360, 720, 1080], 4);
        assert_eq!(sizes(&p), [(640, 360), (1280, 720), (1920, 1080)]);
        assert_eq!((p.fps, p.gop), ((30, 1), 120));
    }

    #[test]
    fn never_upscales_and_keeps_small_sources() {
        let p = plan(&video(1280, 720, Some(25.0)), &[360, 720, 1080], 4);
        assert_eq!(sizes(&p), [(640, 360), (1280, 720)]);
        let p = plan(&video(321, 241, Some(25.0)), &[360, 720], 2);
        assert_eq!(sizes(&p), [(320, 240)]);
        assert_eq!(p.gop, 50);
    }

    #[test]
    fn portrait_uses_the_shorter_side_and_even_sizes() {
        let p = plan(&video(1080, 1920, Some(30.0)), &[360, 720, 1080], 4);
        assert_eq!(sizes(&p), [(360, 640), (720, 1280), (1080, 1920)]);
        let p = plan(&video(853, 480, Some(30.0)), &[360], 4);
        assert_eq!(sizes(&p), [(640, 360)]);
        assert!(
            p.renditions
                .iter()
                .all(|r| r.width % 2 == 0 && r.height % 2 == 0)
        );
    }

    #[test]
    fn frame_rates_are_made_constant_and_sane() {
        assert_eq!(plan(&video(640, 360, None), &[360], 4).fps, (30, 1));
        assert_eq!(
            plan(&video(640, 360, Some(29.97)), &[360], 4).fps,
            (30000, 1001)
        );
        assert_eq!(plan(&video(640, 360, Some(120.0)), &[360], 4).fps, (60, 1));
        assert_eq!(plan(&video(640, 360, Some(24.0)), &[360], 2).gop, 48);
        let interlaced = VideoFacts {
            interlaced: true,
            ..video(1920, 1080, Some(25.0))
        };
        assert_eq!(
            plan(&interlaced, &[1080], 4).fps,
            (50, 1),
            "50i becomes 50p"
        );
    }
}
