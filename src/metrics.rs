//! Prometheus metrics (`/metrics`, text format): what tusd exports, with tuskd's names, and
//! what an ingest service's operators need besides. Label values are bounded: methods, route
//! kinds, status codes, error codes, hook events, media states, storage operations; never an
//! upload id. Counters move where the work happens; the outbox and media figures are read from
//! the metadata store when scraped.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneLabels {
    pub lane: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirLabels {
    /// What the directory holds: uploads, metadata, media-work.
    pub dir: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    pub backend: &'static str,
    pub operation: &'static str,
}

/// Holds a gauge up while it lives.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    pub fn new(g: &'a Gauge) -> InFlight<'a> {
        g.inc();
        InFlight(g)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub struct Metrics {
    registry: Registry,
    pub connections_open: Gauge,
    pub requests: Family<RequestLabels, Counter>,
    pub errors: Family<CodeLabels, Counter>,
    pub bytes_received: Counter,
    pub uploads_created: Counter,
    pub uploads_finished: Counter,
    pub uploads_terminated: Counter,
    pub uploads_expired: Counter,
    pub patches_in_progress: Gauge,
    pub patch_seconds: Histogram,
    pub patch_bytes: Histogram,
    pub hook_invocations: Family<EventLabels, Counter>,
    pub hook_failures: Family<EventLabels, Counter>,
    pub outbox_pending: Gauge,
    pub outbox_oldest_seconds: Gauge<f64, AtomicU64>,
    pub outbox_dead: Gauge,
    pub media_jobs: Family<StateLabels, Gauge>,
    /// Jobs due that no worker holds, by lane (`fast`, `slow`): what worker autoscaling reads.
    pub media_queue_depth: Family<LaneLabels, Gauge>,
    pub media_queue_seconds: Histogram,
    pub media_run_seconds: Histogram,
    pub store_bytes_written: Family<StoreLabels, Counter>,
    pub store_bytes_read: Family<StoreLabels, Counter>,
    pub store_errors: Family<StoreLabels, Counter>,
    pub disk_free_bytes: Family<DirLabels, Gauge>,
    pub disk_reserve_bytes: Family<DirLabels, Gauge>,
    pub storage_full: Family<ReasonLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("tuskd");
        let m = Metrics {
            connections_open: Gauge::default(),
            requests: Family::default(),
            errors: Family::default(),
            bytes_received: Counter::default(),
            uploads_created: Counter::default(),
            uploads_finished: Counter::default(),
            uploads_terminated: Counter::default(),
            uploads_expired: Counter::default(),
            patches_in_progress: Gauge::default(),
            // 1 ms to ~4.6 h.
            patch_seconds: Histogram::new(exponential_buckets(0.001, 4.0, 13)),
            // 1 KiB to 16 GiB.
            patch_bytes: Histogram::new(exponential_buckets(1024.0, 4.0, 13)),
            hook_invocations: Family::default(),
            hook_failures: Family::default(),
            outbox_pending: Gauge::default(),
            outbox_oldest_seconds: Gauge::default(),
            outbox_dead: Gauge::default(),
            media_jobs: Family::default(),
            media_queue_depth: Family::default(),
            // 10 ms to ~3 days.
            media_queue_seconds: Histogram::new(exponential_buckets(0.01, 4.0, 13)),
            // 0.1 s to ~5 days.
            media_run_seconds: Histogram::new(exponential_buckets(0.1, 3.0, 15)),
            store_bytes_written: Family::default(),
            store_bytes_read: Family::default(),
            store_errors: Family::default(),
            disk_free_bytes: Family::default(),
            disk_reserve_bytes: Family::default(),
            storage_full: Family::default(),
            registry: Registry::default(),
        };
        m.register_requests(&mut r);
        m.register_uploads(&mut r);
        m.register_hooks(&mut r);
        m.register_media(&mut r);
        m.register_store(&mut r);
        Metrics { registry: r, ..m }
    }

    /// Registers the connections and requests the edge serves.
    fn register_requests(&self, r: &mut Registry) {
        r.register(
            "connections_open",
            "Client connections open",
            self.connections_open.clone(),
        );
        r.register(
            "requests",
            "Requests answered, by method, route kind and status",
            self.requests.clone(),
        );
        r.register(
            "errors",
            "Error responses by tus error code",
            self.errors.clone(),
        );
        r.register(
            "bytes_received",
            "Request body bytes read",
            self.bytes_received.clone(),
        );
    }

    /// Registers what happens to uploads, and the PATCHes that write them.
    fn register_uploads(&self, r: &mut Registry) {
        r.register(
            "uploads_created",
            "Uploads created",
            self.uploads_created.clone(),
        );
        r.register(
            "uploads_finished",
            "Uploads that received their last byte",
            self.uploads_finished.clone(),
        );
        r.register(
            "uploads_terminated",
            "Uploads terminated by DELETE",
            self.uploads_terminated.clone(),
        );
        r.register(
            "uploads_expired",
            "Unfinished uploads removed by expiry",
            self.uploads_expired.clone(),
        );
        r.register(
            "patches_in_progress",
            "PATCH requests receiving bytes now",
            self.patches_in_progress.clone(),
        );
        r.register(
            "patch_duration_seconds",
            "Time from a PATCH's start to its answer",
            self.patch_seconds.clone(),
        );
        r.register(
            "patch_bytes",
            "Bytes one PATCH stored",
            self.patch_bytes.clone(),
        );
    }

    /// Registers hook calls and the outbox of post-* events.
    fn register_hooks(&self, r: &mut Registry) {
        r.register(
            "hook_invocations",
            "Hook calls, by event",
            self.hook_invocations.clone(),
        );
        r.register(
            "hook_failures",
            "Hook calls that failed, by event",
            self.hook_failures.clone(),
        );
        r.register(
            "outbox_pending",
            "Hook events waiting to be delivered",
            self.outbox_pending.clone(),
        );
        r.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest undelivered hook event",
            self.outbox_oldest_seconds.clone(),
        );
        r.register(
            "outbox_dead_letters",
            "Hook events given up on",
            self.outbox_dead.clone(),
        );
    }

    /// Registers the media pipeline's jobs.
    fn register_media(&self, r: &mut Registry) {
        r.register(
            "media_jobs",
            "Media records by status",
            self.media_jobs.clone(),
        );
        r.register(
            "media_queue_depth",
            "Media jobs due that no worker holds, by lane",
            self.media_queue_depth.clone(),
        );
        r.register(
            "media_queue_wait_seconds",
            "Time from a job being due to a worker taking it",
            self.media_queue_seconds.clone(),
        );
        r.register(
            "media_run_seconds",
            "Time one run of a media job took",
            self.media_run_seconds.clone(),
        );
    }

    /// Registers the store's traffic and failures.
    fn register_store(&self, r: &mut Registry) {
        r.register(
            "store_written_bytes",
            "Bytes written to the store, by backend",
            self.store_bytes_written.clone(),
        );
        r.register(
            "store_read_bytes",
            "Bytes read from the store, by backend",
            self.store_bytes_read.clone(),
        );
        r.register(
            "store_errors",
            "Store calls that failed, by backend and operation",
            self.store_errors.clone(),
        );
        r.register(
            "disk_free_bytes",
            "Bytes free on each filesystem tuskd writes to (uploads, metadata, media-work)",
            self.disk_free_bytes.clone(),
        );
        r.register(
            "disk_reserve_bytes",
            "Bytes tuskd keeps free on each filesystem it writes to (--min-free-space)",
            self.disk_reserve_bytes.clone(),
        );
        r.register(
            "storage_full_refusals",
            "Requests answered 507 for lack of space, by reason: reserve (refused before the \
             free-space reserve), storage (the disk or object store was full), metadata (the \
             metadata store was full)",
            self.storage_full.clone(),
        );
    }

    /// Counts what one answered request says: its labels, its error code, its body bytes, and
    /// what it did to uploads.
    pub fn request(
        &self,
        method: &'static str,
        route: &'static str,
        status: u16,
        error: Option<&'static str>,
        bytes_in: u64,
        took: std::time::Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
        if let Some(code) = error {
            self.errors.get_or_create(&CodeLabels { code }).inc();
        }
        self.bytes_received.inc_by(bytes_in);
        match (route, status) {
            ("create", 201) => {
                self.uploads_created.inc();
            }
            ("delete", 204) => {
                self.uploads_terminated.inc();
            }
            ("patch", _) => {
                self.patch_seconds.observe(took.as_secs_f64());
                self.patch_bytes.observe(bytes_in as f64);
            }
            _ => {}
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a string cannot fail");
        out
    }
}
