//! Limits per kind of media: size, duration and pixels, each given for every kind at once
//! (`6h`) or kind by kind (`video=6h,audio=12h`), checked before any decoding.

use std::time::Duration;

use crate::config::{ConfigError, bad};

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

    /// Parses `VALUE` (every kind) and `kind=VALUE` items, comma-separated, on top of
    /// `defaults`; `none` (or 0) lifts a limit.
    pub fn parse(
        flag: &'static str,
        s: &str,
        defaults: PerKind<T>,
        value: impl Fn(&str) -> Result<T, String>,
        zero: impl Fn(&T) -> bool,
    ) -> Result<PerKind<T>, ConfigError> {
        let mut out = defaults;
        let one = |v: &str| -> Result<Option<T>, ConfigError> {
            if v.eq_ignore_ascii_case("none") {
                return Ok(None);
            }
            let t = value(v).map_err(|e| bad(flag, e))?;
            Ok(Some(t).filter(|t| !zero(t)))
        };
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once('=') {
                Some((k, v)) => {
                    let kind = Kind::ALL
                        .into_iter()
                        .find(|x| x.as_str() == k.trim().to_ascii_lowercase())
                        .ok_or_else(|| {
                            bad(
                                flag,
                                format!("{k:?} is not video, audio, image or document"),
                            )
                        })?;
                    out.0[kind.index()] = one(v.trim())?;
                }
                None => {
                    let v = one(item)?;
                    out.0 = [v; 4];
                }
            }
        }
        Ok(out)
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

    pub fn parse(size: &str, duration: &str, pixels: &str) -> Result<Limits, ConfigError> {
        let d = Limits::defaults();
        Ok(Limits {
            size: PerKind::parse(
                "--media-max-size",
                size,
                d.size,
                |v| crate::config::size("--media-max-size", v).map_err(|e| e.reason.to_string()),
                |n| *n == 0,
            )?,
            duration: PerKind::parse(
                "--media-max-duration",
                duration,
                d.duration,
                |v| {
                    crate::config::duration("--media-max-duration", v)
                        .map_err(|e| e.reason.to_string())
                },
                Duration::is_zero,
            )?,
            pixels: PerKind::parse(
                "--media-max-pixels",
                pixels,
                d.pixels,
                |v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{v:?} is not a number of pixels"))
                },
                |n| *n == 0,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_given_for_all_kinds_or_one_by_one() {
        let l = Limits::parse("", "", "").unwrap();
        assert_eq!(l.size.get(Kind::Image), Some(100 << 20));
        assert_eq!(l.size.get(Kind::Video), None);
        assert_eq!(l.pixels.get(Kind::Image), Some(50_000_000));
        let l = Limits::parse("1GiB,image=10MiB", "2h", "video=1000,image=none").unwrap();
        assert_eq!(l.size.get(Kind::Video), Some(1 << 30));
        assert_eq!(l.size.get(Kind::Image), Some(10 << 20));
        assert_eq!(l.duration.get(Kind::Audio), Some(Duration::from_secs(7200)));
        assert_eq!(l.pixels.get(Kind::Video), Some(1000));
        assert_eq!(l.pixels.get(Kind::Image), None);
        assert_eq!(
            Limits::parse("0", "", "").unwrap().size.get(Kind::Image),
            None
        );
        for (s, d, p) in [("pdf=1", "", ""), ("", "video=soon", ""), ("", "", "-3")] {
            assert!(Limits::parse(s, d, p).is_err(), "{s} {d} {p}");
        }
    }

    #[test]
    fn kinds_follow_the_top_level_type() {
        assert_eq!(Kind::of("video/mp4"), Kind::Video);
        assert_eq!(Kind::of("audio/flac"), Kind::Audio);
        assert_eq!(Kind::of("image/png"), Kind::Image);
        assert_eq!(Kind::of("application/pdf"), Kind::Document);
    }
}
