//! The media pipeline's validated settings, from `MediaArgs`.

use std::path::Path;
use std::time::Duration;

use super::limits::Limits;
use super::scan::{Policy, ScanConfig, clamd};
use crate::cli::{MediaArgs, OnOff, ScanPolicyArg};
use crate::config::{ConfigError, bad, duration, size};

#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Jobs run at once.
    pub workers: usize,
    pub max_attempts: u32,
    /// `type/*` or `type/subtype`, lowercase.
    pub allow: Vec<String>,
    pub keep_rejected: bool,
    /// Size, duration and pixels, per kind.
    pub limits: Limits,
    /// Image variant widths, ascending, distinct.
    pub image_widths: Vec<u32>,
    /// LUFS.
    pub audio_loudness: f64,
    /// Videos also get a progressive MP4.
    pub mp4_fallback: bool,
    /// Starts and ends with `/`.
    pub path: String,
    /// Whole seconds.
    pub hls_segment: u32,
    /// Rendition heights (shorter side), ascending, distinct.
    pub ladder: Vec<u32>,
    pub thumb_widths: Vec<u32>,
    /// How long a claimed job is a worker's without a heartbeat.
    pub lease: Duration,
    /// The malware scan, when a scanner is configured.
    pub scan: Option<ScanConfig>,
}

impl MediaConfig {
    /// The defaults of `tuskd serve`.
    pub fn new() -> MediaConfig {
        MediaConfig {
            workers: default_workers(),
            max_attempts: 5,
            allow: vec![
                "video/*".into(),
                "image/*".into(),
                "audio/*".into(),
                "application/pdf".into(),
            ],
            keep_rejected: false,
            limits: Limits::defaults(),
            image_widths: vec![128, 320, 640, 1280],
            audio_loudness: -16.0,
            mp4_fallback: false,
            path: "/media/".into(),
            hls_segment: 4,
            ladder: vec![360, 720, 1080],
            thumb_widths: vec![320, 640],
            lease: Duration::from_secs(30),
            scan: None,
        }
    }

    /// None when the pipeline is off.
    pub fn from_args(a: &MediaArgs, base_path: &str) -> Result<Option<MediaConfig>, ConfigError> {
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
        let allow = a
            .media_allow
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .map(|s| match s.split_once('/') {
                Some((t, sub)) if is_token(t) && (sub == "*" || is_token(sub)) => Ok(s),
                _ => Err(bad(
                    "--media-allow",
                    format!("{s:?} is not type/* or type/subtype"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let limits = Limits::parse(
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
        let mut image_widths = numbers("--image-widths", &a.image_widths, 16..=8192)?;
        image_widths.sort_unstable();
        image_widths.dedup();
        let segment = duration("--hls-segment", &a.hls_segment)?;
        if segment.subsec_nanos() != 0 || !(1..=30).contains(&segment.as_secs()) {
            return Err(bad(
                "--hls-segment",
                format!(
                    "{:?} must be a whole number of seconds from 1s to 30s",
                    a.hls_segment
                ),
            ));
        }
        let mut ladder = numbers("--hls-ladder", &a.hls_ladder, 16..=4320)?;
        ladder.sort_unstable();
        ladder.dedup();
        let mut thumb_widths = numbers("--thumb-widths", &a.thumb_widths, 16..=4096)?;
        thumb_widths.sort_unstable();
        thumb_widths.dedup();
        let path =
            crate::config::base_path(&a.media_path).map_err(|e| bad("--media-path", e.reason))?;
        if path == base_path {
            return Err(bad("--media-path", "must differ from --base-path"));
        }
        Ok(Some(MediaConfig {
            workers,
            max_attempts: a.media_max_attempts,
            allow,
            keep_rejected: a.media_keep_rejected,
            limits,
            image_widths,
            audio_loudness,
            mp4_fallback: a.mp4_fallback,
            path,
            hls_segment: segment.as_secs() as u32,
            ladder,
            thumb_widths,
            lease: lease(&a.media_lease)?,
            scan: scan_config(a)?,
        }))
    }

    /// Whether a detected type is processed.
    pub fn allows(&self, mime: &str) -> bool {
        let mime = mime.to_ascii_lowercase();
        let top = mime.split('/').next().unwrap_or_default();
        self.allow.iter().any(|a| match a.strip_suffix("/*") {
            Some(t) => t == top,
            None => *a == mime,
        })
    }

    /// Where a worker keeps a job's files while it runs.
    pub fn work_dir(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("media-work")
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig::new()
    }
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
    let d = crate::config::duration("--media-lease", s)?;
    if d < Duration::from_secs(3) {
        return Err(bad("--media-lease", "must be at least 3s"));
    }
    Ok(d)
}

fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 2).max(1)
}

fn numbers(
    flag: &'static str,
    s: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<Vec<u32>, ConfigError> {
    let v = s
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
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_patterns_match_top_level_and_exact_types() {
        let c = MediaConfig {
            allow: vec!["video/*".into(), "application/pdf".into()],
            ..MediaConfig::new()
        };
        assert!(c.allows("video/mp4"));
        assert!(c.allows("Video/QuickTime"));
        assert!(c.allows("application/pdf"));
        assert!(!c.allows("application/zip"));
        assert!(!c.allows("image/png"));
    }
}
