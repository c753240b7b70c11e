//! The media pipeline's settings (`media::config::MediaConfig`, its `Limits` and the malware
//! scan's `ScanConfig`) from `MediaArgs`: every check on the media flags.

use std::time::Duration;

use super::{ConfigError, bad, duration, size};
use crate::cli::{MediaArgs, OnOff, ScanPolicyArg};
use crate::media::config::{MediaConfig, default_workers};
use crate::media::limits::{Kind, Limits, PerKind};
use crate::media::scan::{Policy, ScanConfig, clamd};

/// None when the pipeline is off.
pub(super) fn from_args(
    a: &MediaArgs,
    base_path: &str,
) -> Result<Option<MediaConfig>, ConfigError> {
    if a.media == OnOff::Off {
        return Ok(None);
    }
    if !cfg!(feature = "media") {
        return Err(bad(
            "--media",
            "this tuskd was built without the media pipeline (GStreamer); use --media off",
        ));
    }
    let workers = match a.media_workers {
        None => default_workers(),
        // Ingest only: jobs are queued here and run by other nodes or `tuskd worker`.
        Some(0) => 0,
        Some(n) => n,
    };
    if a.media_max_attempts == 0 {
        return Err(bad("--media-max-attempts", "must be at least 1"));
    }
    let allow = allow_list(&a.media_allow)?;
    let limits = limits(
        &a.media_max_size,
        &a.media_max_duration,
        &a.media_max_pixels,
    )?;
    let audio_loudness = a.audio_loudness;
    if !(-50.0..=-5.0).contains(&audio_loudness) {
        return Err(bad(
            "--audio-loudness",
            format!("{audio_loudness} is not a loudness from -50 to -5 LUFS"),
        ));
    }
    let image_widths = sorted_numbers("--image-widths", &a.image_widths, 16..=8192)?;
    let hls_segment = hls_segment(&a.hls_segment)?;
    let ladder = sorted_numbers("--hls-ladder", &a.hls_ladder, 16..=4320)?;
    let thumb_widths = sorted_numbers("--thumb-widths", &a.thumb_widths, 16..=4096)?;
    let path = super::base_path(&a.media_path).map_err(|e| bad("--media-path", e.reason))?;
    if path == base_path {
        return Err(bad("--media-path", "must differ from --base-path"));
    }
    Ok(Some(MediaConfig {
        workers,
        fast_workers: a.media_fast_workers,
        fast_max_bytes: size("--media-fast-max-size", &a.media_fast_max_size)?,
        max_attempts: a.media_max_attempts,
        allow,
        keep_rejected: a.media_keep_rejected,
        limits,
        image_widths,
        image_budget: duration("--image-time-budget", &a.image_time_budget)?,
        audio_loudness,
        mp4_fallback: a.mp4_fallback,
        path,
        hls_segment,
        playable_from: match a.media_playable_from.as_str() {
            "off" => None,
            s => Some(duration("--media-playable-from", s)?),
        },
        chunk: match a.media_chunk.as_str() {
            "off" => None,
            s => Some(duration("--media-chunk", s)?).filter(|d| !d.is_zero()),
        },
        ladder,
        thumb_widths,
        lease: lease(&a.media_lease)?,
        scan: scan_config(a)?,
    }))
}

/// `--media-allow`: `type/*` or `type/subtype` items, comma-separated, lowercased.
fn allow_list(s: &str) -> Result<Vec<String>, ConfigError> {
    s.split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .map(|s| match s.split_once('/') {
            Some((t, sub)) if is_token(t) && (sub == "*" || is_token(sub)) => Ok(s),
            _ => Err(bad(
                "--media-allow",
                format!("{s:?} is not type/* or type/subtype"),
            )),
        })
        .collect()
}

/// `--hls-segment`: whole seconds from 1 to 30.
fn hls_segment(s: &str) -> Result<u32, ConfigError> {
    let segment = duration("--hls-segment", s)?;
    if segment.subsec_nanos() != 0 || !(1..=30).contains(&segment.as_secs()) {
        return Err(bad(
            "--hls-segment",
            format!("{s:?} must be a whole number of seconds from 1s to 30s"),
        ));
    }
    Ok(segment.as_secs() as u32)
}

/// `--media-max-size`, `--media-max-duration` and `--media-max-pixels` on top of the defaults.
fn limits(size: &str, duration: &str, pixels: &str) -> Result<Limits, ConfigError> {
    let d = Limits::defaults();
    Ok(Limits {
        size: per_kind(
            "--media-max-size",
            size,
            d.size,
            |v| super::size("--media-max-size", v).map_err(|e| e.reason.to_string()),
            |n| *n == 0,
        )?,
        duration: per_kind(
            "--media-max-duration",
            duration,
            d.duration,
            |v| super::duration("--media-max-duration", v).map_err(|e| e.reason.to_string()),
            Duration::is_zero,
        )?,
        pixels: per_kind(
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

/// Parses `VALUE` (every kind) and `kind=VALUE` items, comma-separated, on top of
/// `defaults`; `none` (or 0) lifts a limit.
fn per_kind<T: Copy>(
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
                out.set(kind, one(v.trim())?);
            }
            None => {
                let v = one(item)?;
                for kind in Kind::ALL {
                    out.set(kind, v);
                }
            }
        }
    }
    Ok(out)
}

fn scan_config(a: &MediaArgs) -> Result<Option<ScanConfig>, ConfigError> {
    let Some(addr) = &a.clamd else {
        return Ok(None);
    };
    let clamd = clamd::Address::parse(addr).map_err(|e| bad("--clamd", e))?;
    let max_size = size("--scan-max-size", &a.scan_max_size)?;
    if max_size == 0 {
        return Err(bad("--scan-max-size", "must be greater than zero"));
    }
    // clamd's INSTREAM cannot take more than 4 GiB, and its limits stop well before.
    if max_size >= 4 << 30 {
        return Err(bad("--scan-max-size", "clamd scans streams below 4 GiB"));
    }
    Ok(Some(ScanConfig {
        clamd,
        max_size,
        policy: match a.scan_policy {
            ScanPolicyArg::Closed => Policy::Closed,
            ScanPolicyArg::Open => Policy::Open,
        },
        quarantine: a.quarantine,
    }))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.' | b'_'))
}

fn lease(s: &str) -> Result<Duration, ConfigError> {
    let d = duration("--media-lease", s)?;
    if d < Duration::from_secs(3) {
        return Err(bad("--media-lease", "must be at least 3s"));
    }
    Ok(d)
}

/// Comma-separated numbers in `range`, at least one, ascending and distinct.
fn sorted_numbers(
    flag: &'static str,
    s: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<Vec<u32>, ConfigError> {
    let mut v = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u32>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    bad(
                        flag,
                        format!(
                            "{p:?} is not a number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if v.is_empty() {
        return Err(bad(flag, "needs at least one value"));
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_given_for_all_kinds_or_one_by_one() {
        let l = limits("", "", "").unwrap();
        assert_eq!(l.size.get(Kind::Image), Some(100 << 20));
        assert_eq!(l.size.get(Kind::Video), None);
        assert_eq!(l.pixels.get(Kind::Image), Some(50_000_000));
        let l = limits("1GiB,image=10MiB", "2h", "video=1000,image=none").unwrap();
        assert_eq!(l.size.get(Kind::Video), Some(1 << 30));
        assert_eq!(l.size.get(Kind::Image), Some(10 << 20));
        assert_eq!(l.duration.get(Kind::Audio), Some(Duration::from_secs(7200)));
        assert_eq!(l.pixels.get(Kind::Video), Some(1000));
        assert_eq!(l.pixels.get(Kind::Image), None);
        assert_eq!(limits("0", "", "").unwrap().size.get(Kind::Image), None);
        for (s, d, p) in [("pdf=1", "", ""), ("", "video=soon", ""), ("", "", "-3")] {
            assert!(limits(s, d, p).is_err(), "{s} {d} {p}");
        }
    }
}
