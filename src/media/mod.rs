//! The media pipeline: every finished upload (not a partial one) gets a media job, written in
//! the transaction that finishes it (`meta`), and `worker`s run its steps (`job`): `detect`
//! the type from the bytes (reading the `original`), `scan` it for malware (clamd), check the
//! `limits` of its kind, then by kind: `video` (probe in `gst::probe`, the ladder from `plan`,
//! transcoded in one or two passes in `gst::transcode` with `poster`, `extras` planned and
//! written by `previews`; `job::stages` publishes each pass, a first one as PLAYABLE),
//! `images` (variants), `audio` (`gst::audio`, `waveform`), `document` (a PDF's first page);
//! and `publish` (HLS playlists from `hls`) into storage under a fresh version. Worker slots
//! take jobs by lane (fast work never waits behind transcodes; `worker`). The outcome is
//! recorded on the media `record` with the media-* hook `events`; `api` serves the status
//! (`status`) and the derived files. `tuskd media list|retry|reprocess` is `commands::media`.
//!
//! GStreamer is behind the `media` feature: without it the crate builds with no GStreamer and
//! `--media on` is refused.

pub mod audio;
pub mod config;
pub mod detect;
pub mod document;
pub mod events;
pub mod extras;
#[cfg(feature = "media")]
pub mod gst;
pub mod hdr;
pub mod hls;
#[cfg(feature = "media")]
pub mod images;
pub mod job;
pub mod limits;
pub mod original;
pub mod passes;
pub mod plan;
#[cfg(feature = "media")]
pub mod poster;
#[cfg(feature = "media")]
pub mod previews;
pub mod publish;
pub mod scan;
pub mod status;
pub mod steps;
pub mod ts;
pub mod video;
#[cfg(feature = "media")]
pub mod waveform;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::hooks::Hooks;
use crate::meta::MetaStore;
use crate::metrics::Metrics;
use crate::storage::Storage;
pub use config::MediaConfig;

/// What the media pipeline works with, handed over by the process that hosts its workers
/// (`tuskd serve`, `tuskd worker`): the stores, the hooks its outcomes go to, its settings,
/// and the signals it answers to.
#[derive(Clone)]
pub struct Context {
    pub meta: Arc<dyn MetaStore>,
    pub storage: Arc<dyn Storage>,
    pub hooks: Hooks,
    pub config: MediaConfig,
    /// The data directory, under which runs keep their scratch files
    /// (`MediaConfig::work_dir`).
    pub data_dir: PathBuf,
    pub metrics: Arc<Metrics>,
    /// Where the workers show they are alive (readiness).
    pub health: Arc<Health>,
    /// Cancelled when the process shuts down: running jobs stop and record what they can.
    pub shutdown: CancellationToken,
    /// Wakes an idle worker: a job was released.
    pub wake: Arc<Notify>,
    /// Free space: work starts and goes on only above twice the reserve.
    pub space: crate::space::Space,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}
