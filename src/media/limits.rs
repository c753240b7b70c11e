//! Limits per kind of media: size, duration and pixels, each given for every kind at once
//! (`6h`) or kind by kind (`video=6h,audio=12h`, parsed by `config::media`), checked before
//! any decoding.

use std::time::Duration;

use super::config::MediaConfig;
use super::steps::StepError;
use crate::domain::media::Probe;

/// What a finished upload is, by its detected type (video and audio are told apart by the
/// probe: an `.mp4` may hold only sound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Video,
    Audio,
    Image,
    Document,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Video, Kind::Audio, Kind::Image, Kind::Document];

    pub fn of(mime: &str) -> Kind {
        match mime.split('/').next().unwrap_or_default() {
            "video" => Kind::Video,
            "audio" => Kind::Audio,
            "image" => Kind::Image,
            _ => Kind::Document,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Video => "video",
            Kind::Audio => "audio",
            Kind::Image => "image",
            Kind::Document => "document",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One limit for each kind; None: no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerKind<T>([Option<T>; 4]);

impl<T: Copy> PerKind<T> {
    pub fn get(&self, k: Kind) -> Option<T> {
        self.0[k.index()]
    }

    /// Sets the limit of one kind; None lifts it.
    pub fn set(&mut self, k: Kind, limit: Option<T>) {
        self.0[k.index()] = limit;
    }
}

impl<T: Copy> PerKind<T> {
    pub fn of(video: Option<T>, audio: Option<T>, image: Option<T>, document: Option<T>) -> Self {
        PerKind([video, audio, image, document])
    }
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub size: PerKind<u64>,
    pub duration: PerKind<Duration>,
    pub pixels: PerKind<u64>,
}

impl Limits {
    pub fn defaults() -> Limits {
        Limits {
            size: PerKind::of(None, None, Some(100 << 20), Some(200 << 20)),
            duration: PerKind::of(
                Some(Duration::from_secs(6 * 3600)),
                Some(Duration::from_secs(12 * 3600)),
                None,
                None,
            ),
            // 8K video; 50 megapixels (a 48 MP phone photo) for images.
            pixels: PerKind::of(Some(8192 * 4320), None, Some(50_000_000), None),
        }
    }
}

/// An upload larger than its kind accepts is rejected before any decoding.
pub fn check_size(cfg: &MediaConfig, kind: Kind, length: u64) -> Result<(), StepError> {
    match cfg.limits.size.get(kind) {
        Some(max) if length > max => Err(StepError::rejected(
            "too_big",
            format!(
                "the {} is {length} bytes; at most {max} are accepted",
                kind.as_str()
            ),
        )),
        _ => Ok(()),
    }
}

/// Media longer or larger in pixels than its kind accepts is rejected once probed.
pub fn check_limits(cfg: &MediaConfig, kind: Kind, probe: &Probe) -> Result<(), StepError> {
    if let (Some(ms), Some(max)) = (probe.duration_ms, cfg.limits.duration.get(kind))
        && Duration::from_millis(ms) > max
    {
        return Err(StepError::rejected(
            "too_long",
            format!(
                "the {} lasts {}s; at most {}s is accepted",
                kind.as_str(),
                ms / 1000,
                max.as_secs()
            ),
        ));
    }
    if let (Some(v), Some(max)) = (&probe.video, cfg.limits.pixels.get(kind)) {
        let pixels = v.coded_width as u64 * v.coded_height as u64;
        if pixels > max {
            return Err(StepError::rejected(
                "too_large",
                format!(
                    "the picture is {}x{} ({pixels} pixels); at most {max} are accepted",
                    v.coded_width, v.coded_height
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_top_level_type() {
        assert_eq!(Kind::of("video/mp4"), Kind::Video);
        assert_eq!(Kind::of("audio/flac"), Kind::Audio);
        assert_eq!(Kind::of("image/png"), Kind::Image);
        assert_eq!(Kind::of("application/pdf"), Kind::Document);
    }
}
