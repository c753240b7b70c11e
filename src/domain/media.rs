//! The media record of one finished upload: its status for clients, the job's bookkeeping
//! (attempts, lease, backoff), what the steps found (the detected type, the probe) and what was
//! published (a version and its variants). Pure types, no I/O; the metadata store keeps them.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::domain::access::Owner;
use crate::domain::upload::UploadId;

/// Where a finished upload is in the pipeline, as clients see it. An upload still receiving
/// bytes has no record: its status is `Uploading`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MediaStatus {
    Uploading,
    /// Finished and queued (or waiting to be retried).
    Received,
    /// Detecting the type.
    Validating,
    /// Being scanned for malware.
    Scanning,
    /// Probing, transcoding and publishing.
    Processing,
    /// Still processing, but playable: the poster and the lowest rung are published, and the
    /// master playlist of the published outputs lists the rungs done so far.
    Playable,
    Ready,
    Rejected,
    Failed,
}

impl MediaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaStatus::Uploading => "UPLOADING",
            MediaStatus::Received => "RECEIVED",
            MediaStatus::Validating => "VALIDATING",
            MediaStatus::Scanning => "SCANNING",
            MediaStatus::Processing => "PROCESSING",
            MediaStatus::Playable => "PLAYABLE",
            MediaStatus::Ready => "READY",
            MediaStatus::Rejected => "REJECTED",
            MediaStatus::Failed => "FAILED",
        }
    }

    /// Every status a record can have (UPLOADING is only ever shown, never stored).
    pub const ALL: [MediaStatus; 8] = [
        MediaStatus::Received,
        MediaStatus::Validating,
        MediaStatus::Scanning,
        MediaStatus::Processing,
        MediaStatus::Playable,
        MediaStatus::Ready,
        MediaStatus::Rejected,
        MediaStatus::Failed,
    ];

    pub fn parse(s: &str) -> Option<MediaStatus> {
        std::iter::once(MediaStatus::Uploading)
            .chain(MediaStatus::ALL)
            .find(|m| m.as_str() == s)
    }
}

/// The queue a job waits in. Every job starts `Fast`; a video (or long audio) that a fast-only
/// worker slot finds after probing is handed to the `Slow` lane, where only general slots take
/// it, so photos, audio and documents never wait behind transcodes (`media::worker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    Fast,
    Slow,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Fast => "fast",
            Lane::Slow => "slow",
        }
    }

    pub fn parse(s: &str) -> Option<Lane> {
        [Lane::Fast, Lane::Slow]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

/// Which jobs a worker slot claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Takes {
    /// General slots take slow-lane jobs too (fast ones first); fast-only slots do not.
    pub slow: bool,
    /// Jobs of uploads larger than this are slow work from the start (scanning and probing
    /// them takes long).
    pub fast_max_bytes: u64,
}

/// What the probe found, before any decoding work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// The container's caps name, e.g. `video/quicktime`.
    pub container: Option<String>,
    pub duration_ms: Option<u64>,
    pub bitrate: Option<u32>,
    pub video: Option<VideoFacts>,
    pub audio: Option<AudioFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoFacts {
    pub codec: String,
    pub profile: Option<String>,
    pub bit_depth: Option<u32>,
    /// As stored in the stream.
    pub coded_width: u32,
    pub coded_height: u32,
    /// As shown: after rotation (and the pixel aspect ratio).
    pub display_width: u32,
    pub display_height: u32,
    /// Clockwise degrees to turn the coded picture to show it upright: 0, 90, 180 or 270.
    pub rotation: u32,
    /// Whether the picture is mirrored as well (a `flip-rotate-*` orientation).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flipped: bool,
    /// Frames per second (the average when it varies); None when the container does not say.
    pub frame_rate: Option<f64>,
    pub variable_frame_rate: bool,
    /// Interlaced (fields, not frames): deinterlaced to one frame per field.
    #[serde(default)]
    pub interlaced: bool,
    /// The colour the stream says it is coded in (transfer `bt709`, `hlg`, `pq`…; primaries
    /// `bt709`, `bt2020`…; matrix), when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<ColorFacts>,
}

/// A video stream's colour description, and what was done with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColorFacts {
    pub transfer: String,
    pub primaries: String,
    pub matrix: String,
    /// `full` or `limited`.
    pub range: String,
    /// HDR: the brightest the content gets, cd/m² (its content light level, else its mastering
    /// display's peak), when the stream says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_nits: Option<u32>,
    /// HDR (HLG or PQ) tone-mapped to SDR BT.709 for every output.
    #[serde(default)]
    pub tone_mapped: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioFacts {
    pub codec: String,
    pub channels: u32,
    pub sample_rate: u32,
    pub bitrate: Option<u32>,
    /// Measured while processing audio (not video's sound track).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness: Option<Loudness>,
}

/// The source's loudness and what was done to it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Loudness {
    /// Integrated loudness (EBU R128), LUFS; None for silence.
    pub integrated_lufs: Option<f64>,
    pub true_peak_dbtp: f64,
    /// The gain applied to the renditions.
    pub gain_db: f64,
}

/// What the malware scan concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanOutcome {
    Clean,
    Infected,
    /// Not scanned: larger than the scanner takes. Never reported clean.
    Skipped,
    /// Not scanned: the scanner could not be reached (`--scan-policy open` let it through).
    Unavailable,
}

/// The malware scan's result, kept on the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scan {
    pub outcome: ScanOutcome,
    /// The signature found, when infected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Why it was skipped or unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Bytes sent to the scanner.
    pub bytes: u64,
    /// Unix milliseconds.
    pub at: u64,
}

/// One derived output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// `hls` (the master playlist), `rendition` (one media playlist), `poster`, `thumbnail`,
    /// `image` (a still at one width), `animated`, `audio` (M4A), `waveform`, `preview`,
    /// `storyboard`, `storyboard-vtt`, `mp4`, `page` (a document's first page).
    pub kind: String,
    /// The file, relative to the version's directory.
    pub path: String,
    /// Its media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Bits per second (peak, measured from the segments), for renditions.
    pub bitrate: Option<u64>,
    pub bytes: u64,
    pub duration_ms: Option<u64>,
}

/// What a successful run published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// The directory under the upload's media prefix; a new one per run, never rewritten.
    pub version: String,
    pub variants: Vec<Variant>,
}

/// The media record.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRecord {
    pub id: UploadId,
    /// The upload's owner, kept with the record (a rejected upload's record outlives it).
    pub owner: Option<Owner>,
    pub status: MediaStatus,
    /// Waiting for the request that finished the upload to finish its storage.
    pub held: bool,
    pub lane: Lane,
    pub attempts: u32,
    pub next_at: SystemTime,
    pub lease_owner: Option<String>,
    pub lease_until: Option<SystemTime>,
    /// Percent, while processing.
    pub progress: f32,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    /// The type detected from the bytes.
    pub detected: Option<String>,
    pub probe: Option<Probe>,
    pub scan: Option<Scan>,
    pub published: Option<Published>,
    /// A version being written by a run that may have died: deleted by the next run.
    pub pending_version: Option<String>,
    /// The upload's length when it finished.
    pub length: u64,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

/// A change a running job records under its lease.
#[derive(Debug, Clone, Default)]
pub struct MediaUpdate {
    pub status: Option<MediaStatus>,
    pub progress: Option<f32>,
    pub detected: Option<String>,
    pub probe: Option<Probe>,
    pub scan: Option<Scan>,
    pub pending_version: Option<String>,
    /// Outputs published while the job goes on (PLAYABLE: the early rungs).
    pub published: Option<Published>,
    /// Hook events written with the change (media-playable).
    pub events: Vec<crate::domain::event::OutboxEvent>,
    /// The lease is extended to this.
    pub lease_until: Option<SystemTime>,
}

/// How a job's run ended.
#[derive(Debug, Clone)]
pub enum MediaOutcome {
    Ready(Published),
    /// Refused (wrong type, too large). `forget_upload` removes the upload's record as well
    /// (its original was deleted).
    Rejected {
        code: String,
        message: String,
        forget_upload: bool,
    },
    /// Cannot be processed, or attempts ran out.
    Failed {
        code: String,
        message: String,
    },
    /// Checked and probed by a fast-only slot, and slow work: queued again in the slow lane
    /// at once, what was found kept, the attempt not counted.
    Handoff,
    /// Waiting for its tasks (`domain::task`): the lease released, the attempt not counted,
    /// and not due until a task settles, unless one settled since the run saw `settled` of
    /// them (it is due at once).
    Wait {
        settled: u32,
    },
    /// A transient failure: tried again at `at`.
    Retry {
        code: String,
        message: String,
        at: SystemTime,
    },
}

impl MediaOutcome {
    /// Whether the job's tasks still to run go with this outcome: it is over, or it starts
    /// afresh.
    pub fn drops_tasks(&self) -> bool {
        matches!(
            self,
            MediaOutcome::Rejected { .. }
                | MediaOutcome::Failed { .. }
                | MediaOutcome::Retry { .. }
        )
    }
}
