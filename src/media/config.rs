//! The media pipeline's settings: plain values, validated and built from the flags by
//! `config` (`config::media`).

use std::path::Path;
use std::time::Duration;

use super::limits::Limits;
use crate::domain::media::Takes;

/// `--media-fast-max-size`'s default: phone photos, songs and documents are well below it.
pub const DEFAULT_FAST_MAX: u64 = 128 << 20;
use super::scan::ScanConfig;

#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// General slots: jobs of either lane run at once (fast work first); 0: none here.
    pub workers: usize,
    /// Fast-only slots beside them (only when there are general slots): images, audio,
    /// documents and every job's checks never wait behind transcodes.
    pub fast_workers: usize,
    /// Uploads larger than this are slow work from the start.
    pub fast_max_bytes: u64,
    pub max_attempts: u32,
    /// `type/*` or `type/subtype`, lowercase.
    pub allow: Vec<String>,
    pub keep_rejected: bool,
    /// Size, duration and pixels, per kind.
    pub limits: Limits,
    /// Image variant widths, ascending, distinct.
    pub image_widths: Vec<u32>,
    /// The longest a picture's step may take.
    pub image_budget: Duration,
    /// LUFS.
    pub audio_loudness: f64,
    /// Videos also get a progressive MP4.
    pub mp4_fallback: bool,
    /// Starts and ends with `/`.
    pub path: String,
    /// Whole seconds.
    pub hls_segment: u32,
    /// Videos at least this long are made playable first (`passes::passes`); None: never.
    pub playable_from: Option<std::time::Duration>,
    /// The length of a chunk of a long video's upper rungs (`passes::passes`); None: one task.
    pub chunk: Option<std::time::Duration>,
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
            fast_workers: 1,
            fast_max_bytes: DEFAULT_FAST_MAX,
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
            image_budget: Duration::from_secs(60),
            audio_loudness: -16.0,
            mp4_fallback: false,
            path: "/media/".into(),
            hls_segment: 4,
            playable_from: Some(std::time::Duration::from_secs(30)),
            chunk: Some(Duration::from_secs(30)),
            ladder: vec![360, 720, 1080],
            thumb_widths: vec![320, 640],
            lease: Duration::from_secs(30),
            scan: None,
        }
    }

    /// Every worker slot: the general ones, then the fast-only ones (none without general
    /// slots: an ingest-only node).
    pub fn slots(&self) -> Vec<Takes> {
        let fast_max_bytes = self.fast_max_bytes;
        let general = Takes {
            slow: true,
            fast_max_bytes,
        };
        let fast = Takes {
            slow: false,
            fast_max_bytes,
        };
        let fast_slots = if self.workers == 0 {
            0
        } else {
            self.fast_workers
        };
        std::iter::repeat_n(general, self.workers)
            .chain(std::iter::repeat_n(fast, fast_slots))
            .collect()
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

/// One job per two cores, at least one.
pub fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 2).max(1)
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
