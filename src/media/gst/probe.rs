//! Step 2: the probe. GStreamer's Discoverer reads the container and stream headers (no
//! decoding of the picture) and reports what the file holds. Blocking: run it off the async
//! runtime.

use std::path::Path;
use std::time::Duration;

use gstreamer as gst;
use gstreamer_pbutils as pbutils;
use gstreamer_pbutils::prelude::*;

use std::str::FromStr;

use gstreamer_video as gst_video;

use crate::domain::media::{AudioFacts, ColorFacts, Probe, VideoFacts};
use crate::media::steps::StepError;

/// Probes the file at `path`, giving the Discoverer `timeout` to read its headers.
pub fn probe(path: &Path, timeout: Duration) -> Result<Probe, StepError> {
    super::init()?;
    let path = std::path::absolute(path)?;
    let uri = gst::glib::filename_to_uri(&path, None)
        .map_err(|e| StepError::transient("probe_failed", format!("bad input path: {e}")))?;
    let info = discover(&path, &uri, timeout)?;
    check_result(&info)?;
    let container = info
        .container_streams()
        .first()
        .and_then(|c| c.caps())
        .and_then(|c| c.structure(0).map(|s| s.name().to_string()));
    // Tags of the container (orientation may be there instead of on the stream).
    let global_tags = info.container_streams().first().and_then(|c| c.tags());
    let video = info
        .video_streams()
        .into_iter()
        .find(|v| !v.is_image())
        .map(|v| video_facts(&v, global_tags.as_ref()));
    let audio = info.audio_streams().into_iter().next().map(|a| AudioFacts {
        codec: a
            .caps()
            .map(|c| codec_name(&c))
            .unwrap_or_else(|| "unknown".into()),
        channels: a.channels(),
        sample_rate: a.sample_rate(),
        bitrate: Some(a.bitrate()).filter(|&b| b > 0),
        loudness: None,
    });
    let bitrate = global_tags
        .as_ref()
        .and_then(|t| t.get::<gst::tags::Bitrate>().map(|v| v.get()))
        .or_else(|| {
            let sum = video.as_ref().map_or(0, |_| {
                info.video_streams().first().map_or(0, |v| v.bitrate())
            }) + audio.as_ref().and_then(|a| a.bitrate).unwrap_or(0);
            Some(sum).filter(|&s| s > 0)
        });
    Ok(Probe {
        container,
        duration_ms: info.duration().map(|d| d.mseconds()),
        bitrate,
        video,
        audio,
    })
}

/// Runs the Discoverer on `uri` (the file at `path`), with one more try after a timeout.
fn discover(
    path: &Path,
    uri: &str,
    timeout: Duration,
) -> Result<pbutils::DiscovererInfo, StepError> {
    // GStreamer 1.22's synchronous discovery has been seen, rarely and only under load, to miss
    // the end of a file's discovery and sit out its whole timeout; a fresh Discoverer then
    // answers at once. So a timeout gets one more try before it counts.
    let mut tries = 0;
    loop {
        tries += 1;
        let discoverer =
            pbutils::Discoverer::new(gst::ClockTime::from_nseconds(timeout.as_nanos() as u64))
                .map_err(|e| StepError::transient("probe_failed", e.to_string()))?;
        let info = discoverer.discover_uri(uri).map_err(|e| {
            StepError::permanent(
                "probe_failed",
                format!("the file could not be read as media: {}", e.message()),
            )
        })?;
        if info.result() != pbutils::DiscovererResult::Timeout || tries == 2 {
            break Ok(info);
        }
        tracing::warn!(path = %path.display(), "media probe timed out; trying once more");
    }
}

/// Turns a discovery that did not succeed (timeout, missing decoder, unreadable) into its error.
fn check_result(info: &pbutils::DiscovererInfo) -> Result<(), StepError> {
    match info.result() {
        pbutils::DiscovererResult::Ok => Ok(()),
        pbutils::DiscovererResult::Timeout => Err(StepError::permanent(
            "probe_timeout",
            "reading the file's headers took too long",
        )),
        pbutils::DiscovererResult::MissingPlugins => Err(StepError::permanent(
            "unsupported_codec",
            format!(
                "no decoder for {}",
                info.missing_elements_installer_details().join(", ")
            ),
        )),
        other => Err(StepError::permanent(
            "probe_failed",
            format!("the file could not be read as media ({other:?})"),
        )),
    }
}

fn video_facts(v: &pbutils::DiscovererVideoInfo, global: Option<&gst::TagList>) -> VideoFacts {
    let caps = v.caps();
    let s = caps
        .as_ref()
        .and_then(|c| c.structure(0).map(|s| s.to_owned()));
    let profile = s.as_ref().and_then(|s| s.get::<String>("profile").ok());
    let bit_depth = s
        .as_ref()
        .and_then(|s| s.get::<u32>("bit-depth-luma").ok())
        .or_else(|| {
            profile.as_deref().map(|p| {
                if p.contains("10") {
                    10
                } else if p.contains("12") {
                    12
                } else {
                    8
                }
            })
        });
    let orientation = v
        .tags()
        .and_then(|t| {
            t.get::<gst::tags::ImageOrientation>()
                .map(|o| o.get().to_string())
        })
        .or_else(|| {
            global.and_then(|t| {
                t.get::<gst::tags::ImageOrientation>()
                    .map(|o| o.get().to_string())
            })
        });
    let (rotation, flipped) = orientation.as_deref().map_or((0, false), parse_orientation);
    let (w, h) = (v.width(), v.height());
    let par = v.par();
    let (pn, pd) = (par.numer().max(1) as u64, par.denom().max(1) as u64);
    // Display size: the pixel aspect ratio widens (or narrows) the picture, then rotation.
    let shown_w = ((w as u64 * pn) / pd).max(1) as u32;
    let (display_width, display_height) = match rotation {
        90 | 270 => (h, shown_w),
        _ => (shown_w, h),
    };
    let fr = v.framerate();
    let frame_rate =
        (fr.numer() > 0 && fr.denom() > 0).then(|| fr.numer() as f64 / fr.denom() as f64);
    VideoFacts {
        codec: caps.as_ref().map_or_else(|| "unknown".into(), codec_name),
        profile,
        bit_depth,
        coded_width: w,
        coded_height: h,
        display_width,
        display_height,
        rotation,
        flipped,
        frame_rate,
        // A container that cannot name one rate (0/1) has frames of varying duration.
        variable_frame_rate: frame_rate.is_none(),
        interlaced: v.is_interlaced(),
        color: s.as_ref().and_then(color_facts),
    }
}

/// The stream's colour description from its caps (`colorimetry`, and for HDR its
/// `content-light-level` or `mastering-display-info`); None when the caps give none.
fn color_facts(s: &gst::Structure) -> Option<ColorFacts> {
    use gst_video::{VideoColorMatrix as M, VideoColorPrimaries as P, VideoTransferFunction as T};
    let text = s.get::<String>("colorimetry").ok()?;
    let c = gst_video::VideoColorimetry::from_str(&text).ok()?;
    let transfer = match c.transfer() {
        T::Bt709 | T::Bt601 | T::Bt202010 | T::Bt202012 => "bt709".into(),
        T::AribStdB67 => "hlg".into(),
        T::Smpte2084 => "pq".into(),
        T::Srgb => "srgb".into(),
        T::Unknown => "unknown".into(),
        other => format!("{other:?}").to_lowercase(),
    };
    let primaries = match c.primaries() {
        P::Bt709 => "bt709".into(),
        P::Bt2020 => "bt2020".into(),
        P::Smpteeg432 => "display-p3".into(),
        P::Smpte170m | P::Bt470bg => "bt601".into(),
        P::Unknown => "unknown".into(),
        other => format!("{other:?}").to_lowercase(),
    };
    let matrix = match c.matrix() {
        M::Bt709 => "bt709".into(),
        M::Bt2020 => "bt2020".into(),
        M::Bt601 => "bt601".into(),
        M::Unknown => "unknown".into(),
        other => format!("{other:?}").to_lowercase(),
    };
    let range = match c.range() {
        gst_video::VideoColorRange::Range0_255 => "full",
        _ => "limited",
    };
    let tone_mapped = matches!(transfer.as_str(), "hlg" | "pq");
    Some(ColorFacts {
        peak_nits: tone_mapped.then(|| peak_nits(s)).flatten(),
        transfer,
        primaries,
        matrix,
        range: range.into(),
        tone_mapped,
    })
}

/// The brightest an HDR stream gets, cd/m²: its content light level's MaxCLL
/// (`content-light-level=MaxCLL:MaxFALL`), else its mastering display's peak
/// (`mastering-display-info=…:max:min`, in 0.0001 cd/m²); None when neither is sane.
fn peak_nits(s: &gst::Structure) -> Option<u32> {
    let field = |name| s.get::<String>(name).ok();
    let cll = field("content-light-level")
        .and_then(|v| v.split(':').next()?.parse::<u32>().ok())
        .filter(|n| (100..=10_000).contains(n));
    cll.or_else(|| {
        field("mastering-display-info")
            .and_then(|v| v.split(':').nth(8)?.parse::<u64>().ok())
            .map(|n| (n / 10_000) as u32)
            .filter(|n| (100..=10_000).contains(n))
    })
}

/// `rotate-90`, `flip-rotate-270`, ... as (clockwise degrees, mirrored).
pub fn parse_orientation(s: &str) -> (u32, bool) {
    let (flip, rest) = match s.strip_prefix("flip-") {
        Some(r) => (true, r),
        None => (false, s),
    };
    let deg = rest
        .strip_prefix("rotate-")
        .and_then(|d| d.parse::<u32>().ok())
        .filter(|d| matches!(d, 0 | 90 | 180 | 270))
        .unwrap_or(0);
    (deg, flip)
}

/// A short codec name from caps: h264, hevc, vp9, av1, mpeg4, aac, mp3, opus, ...
pub fn codec_name(caps: &gst::Caps) -> String {
    let Some(s) = caps.structure(0) else {
        return "unknown".into();
    };
    let version = s.get::<i32>("mpegversion").ok();
    match s.name().as_str() {
        "video/x-h264" => "h264".into(),
        "video/x-h265" => "hevc".into(),
        "video/x-vp8" => "vp8".into(),
        "video/x-vp9" => "vp9".into(),
        "video/x-av1" => "av1".into(),
        "video/x-theora" => "theora".into(),
        "video/mpeg" => match version {
            Some(4) => "mpeg4".into(),
            Some(2) => "mpeg2".into(),
            Some(1) => "mpeg1".into(),
            _ => "mpeg".into(),
        },
        "audio/mpeg" => match version {
            Some(1) | None => "mp3".into(),
            _ => "aac".into(),
        },
        "audio/x-opus" => "opus".into(),
        "audio/x-vorbis" => "vorbis".into(),
        "audio/x-flac" => "flac".into(),
        "audio/x-raw" => "pcm".into(),
        "audio/x-ac3" => "ac3".into(),
        other => other
            .trim_start_matches("video/x-")
            .trim_start_matches("audio/x-")
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_orientation;

    #[test]
    fn orientations() {
        assert_eq!(parse_orientation("rotate-90"), (90, false));
        assert_eq!(parse_orientation("rotate-270"), (270, false));
        assert_eq!(parse_orientation("flip-rotate-180"), (180, true));
        assert_eq!(parse_orientation("rotate-45"), (0, false));
    }
}
