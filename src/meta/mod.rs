//! The metadata store: the source of truth for every upload's offset, length and metadata.
//!
//! Contract: offsets only move through `advance`, a compare-and-set from the offset the caller
//! saw to the new one, so two writers can never both believe they extended the same bytes.
//!
//! The hook outbox lives here too: every state change takes the events it causes and writes
//! them in the same transaction, so an event exists exactly when its change does. A `held`
//! event waits for `release_events` (work the request still does first, like assembling the
//! finished object); events still held at start-up are released then.
//!
//! Media jobs follow the same rule: the upload core asks for one (`Effects::media_job`) with the
//! change that finishes an upload the pipeline processes (`insert`, `advance`, `set_length`);
//! the store queues it, held, in that change's transaction, and `release_events` lets it run.
//! A worker claims a job with a lease (`claim_media`), records progress under it
//! (`update_media`) and ends it with the events its outcome causes (`end_media`); a job whose
//! lease ran out is claimed again. A video's job may split its work into tasks (`TaskQueue`,
//! `domain::task`) that slots claim on their own and that wake the job as they settle.
//!
//! Uploads have owners (`Upload::owner`, copied to the media record when its job is queued).
//! `list_uploads` pages through one owner's active uploads, or every owner's, newest first
//! after a keyset cursor, each with its media record (`listing`: one statement for both
//! backends, walking an index in the order it returns rows). `insert` and `set_length` check
//! the owner's `Quota` in their own transaction, serialised per owner across every process
//! sharing the store, and write nothing when they refuse (`quota`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

pub use crate::domain::event::{Effects, EventState, OutboxEvent, StoredEvent, Work};
use crate::domain::lease::Cluster;
use crate::domain::listing::{ListQuery, Listed};
use crate::domain::media::{MediaOutcome, MediaRecord, MediaUpdate, Takes};
use crate::domain::parts::PartLog;
use crate::domain::quota::{Quota, QuotaExceeded};
use crate::domain::upload::{Upload, UploadId};
pub use tasks::TaskQueue;

mod listing;
pub mod postgres;
mod quota;
mod rows;
pub mod sqlite;
#[cfg(test)]
pub mod suite;
mod tasks;

/// Everything a metadata backend keeps: uploads, the hook outbox, media jobs, and the object
/// store's bookkeeping of parts and tails.
pub trait Meta: MetaStore + PartLog {}
impl<T: MetaStore + PartLog> Meta for T {}

/// Where the metadata lives (`--meta`): a SQLite file, for one node, or a Postgres database
/// that several nodes share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

impl MetaLocation {
    /// `postgres://…` / `postgresql://…` (libpq's URL form), `sqlite:PATH`, or a plain path to
    /// a SQLite file.
    pub fn parse(s: &str) -> Result<MetaLocation, String> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            let wants_tls = url::Url::parse(s).is_ok_and(|u| {
                u.query_pairs()
                    .any(|(k, v)| k == "sslmode" && v != "disable" && v != "prefer")
            });
            if wants_tls {
                return Err(
                    "TLS to Postgres is not supported yet: connect over a private \
                            network (sslmode=disable or prefer) or through a local TLS proxy"
                        .into(),
                );
            }
            s.parse::<tokio_postgres::Config>()
                .map_err(|e| format!("not a usable Postgres URL: {e}"))?;
            return Ok(MetaLocation::Postgres(s.to_owned()));
        }
        let path = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
            .unwrap_or(s);
        if path.is_empty() || s.contains("://") && !s.starts_with("sqlite://") {
            return Err("expected postgres://…, sqlite:PATH or a file path".into());
        }
        Ok(MetaLocation::Sqlite(PathBuf::from(path)))
    }

    /// The default: `tuskd.db` in the data directory.
    pub fn in_data_dir(dir: &Path) -> MetaLocation {
        MetaLocation::Sqlite(dir.join("tuskd.db"))
    }

    /// Whether other processes on other hosts can share it (several nodes).
    pub fn is_shared(&self) -> bool {
        matches!(self, MetaLocation::Postgres(_))
    }

    /// For logs: the location without a password.
    pub fn describe(&self) -> String {
        match self {
            MetaLocation::Sqlite(p) => format!("sqlite:{}", p.display()),
            MetaLocation::Postgres(url) => match url::Url::parse(url) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("****"));
                    }
                    u.to_string()
                }
                Err(_) => "postgres".into(),
            },
        }
    }
}

/// How to open the metadata store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Every commit reaches the disk before it returns (SQLite; Postgres has its own settings).
    pub durable: bool,
    /// Connections in the pool (Postgres).
    pub pool_size: usize,
}

/// An open metadata store, and, when several nodes share it, the locks across them.
#[derive(Debug)]
pub struct Opened {
    pub meta: Arc<dyn Meta>,
    pub cluster: Option<Arc<dyn Cluster>>,
}

/// The metadata store of a server, for the administrative subcommands: `--meta` if given, else
/// tuskd.db in the data directory, which must exist (a typo in the path creates nothing).
pub async fn open_existing(data_dir: &Path, meta: Option<&str>) -> Result<Arc<dyn Meta>, String> {
    let location = match meta.filter(|m| !m.is_empty()) {
        Some(m) => MetaLocation::parse(m).map_err(|e| format!("invalid --meta: {e}"))?,
        None => MetaLocation::in_data_dir(data_dir),
    };
    if let MetaLocation::Sqlite(path) = &location
        && !path.is_file()
    {
        return Err(format!("no tuskd database at {}", path.display()));
    }
    let options = OpenOptions {
        durable: true,
        pool_size: 2,
    };
    open(&location, &options)
        .await
        .map(|o| o.meta)
        .map_err(|e| format!("cannot open {}: {e}", location.describe()))
}

/// Opens (creating if needed) the metadata store at `location` and brings its schema up to
/// date. Used by the server, the worker and every subcommand.
pub async fn open(location: &MetaLocation, options: &OpenOptions) -> Result<Opened, MetaError> {
    match location {
        MetaLocation::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    MetaError::backend(format!("cannot create {}: {e}", dir.display()), e)
                })?;
            }
            let meta = sqlite::SqliteMeta::open(path, options.durable)?;
            Ok(Opened {
                meta: Arc::new(meta),
                cluster: None,
            })
        }
        MetaLocation::Postgres(url) => {
            let pg = postgres::PgMeta::open(url, options.pool_size).await?;
            let cluster = pg.cluster();
            Ok(Opened {
                meta: Arc::new(pg),
                cluster: Some(cluster),
            })
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The database failed or refused the request: what failed, in its own words (`what`),
    /// with the database's error kept as the source.
    #[error("{what}")]
    Backend {
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("an upload with id {0} already exists")]
    Exists(UploadId),
    /// A quota would be passed: nothing was written.
    #[error("quota exceeded: {0}")]
    OverQuota(#[from] QuotaExceeded),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The database's disk is full: nothing was written. The database's words.
    #[error("the database's disk is full: {0}")]
    Full(String),
    #[error("database task failed: {0}")]
    Task(String),
}

impl MetaError {
    /// A backend failure: `what` says what failed, in words that include the cause's (the
    /// log shows them as they are); `source` keeps the cause for whoever walks the chain.
    pub fn backend(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> MetaError {
        MetaError::Backend {
            what: what.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// What `MetaStore::stats` reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaStats {
    /// Events held or waiting to be delivered.
    pub outbox_pending: u64,
    /// When the oldest of them was written.
    pub outbox_oldest: Option<SystemTime>,
    pub dead_letters: u64,
    /// (status, records).
    pub media: Vec<(String, u64)>,
    /// (lane, jobs due that no worker holds): the media queue's depth.
    pub media_due: Vec<(String, u64)>,
}

#[async_trait]
pub trait MetaStore: TaskQueue + std::fmt::Debug + Send + Sync + 'static {
    /// Records a new upload, with what it causes. Fails with `Exists` if the id is taken, and
    /// with `OverQuota` (writing nothing) if the upload's owner would pass `quota`: checked in
    /// the insert's transaction, serialised per owner across every process sharing the store.
    async fn insert(
        &self,
        upload: &Upload,
        effects: &Effects,
        quota: &Quota,
    ) -> Result<(), MetaError>;

    async fn get(&self, id: &UploadId) -> Result<Option<Upload>, MetaError>;

    /// A page of uploads, newest first (`created_at`, then `id`, both descending), strictly
    /// after `query.after`, each with its media record. Expired uploads are not listed.
    async fn list_uploads(&self, query: &ListQuery) -> Result<Vec<Listed>, MetaError>;

    /// Moves the offset from `expected` to `new` and sets the expiry, only if the offset is
    /// still `expected`. Returns whether it did; the effects are written only if it did.
    async fn advance(
        &self,
        id: &UploadId,
        expected: u64,
        new: u64,
        expires_at: Option<SystemTime>,
        effects: &Effects,
    ) -> Result<bool, MetaError>;

    /// Sets the length of an upload whose length was deferred. Returns whether it did; the
    /// effects are written only if it did. Fails with `OverQuota` if the owner's bytes would
    /// pass `quota.max_bytes`.
    async fn set_length(
        &self,
        id: &UploadId,
        length: u64,
        effects: &Effects,
        quota: &Quota,
    ) -> Result<bool, MetaError>;

    /// Forgets an upload and its media record. Returns whether the upload existed; the events
    /// are written only if it did.
    async fn remove(&self, id: &UploadId, events: &[OutboxEvent]) -> Result<bool, MetaError>;

    /// A small write that proves the store can take writes (readiness).
    async fn ping(&self) -> Result<(), MetaError>;

    /// Work that any process sharing this store released (events due, media jobs runnable),
    /// heard as it happens, so that background loops need not wait for their next poll. `None`
    /// for a store no other process shares (this process wakes its own loops).
    fn work(&self) -> Option<tokio::sync::broadcast::Receiver<Work>> {
        None
    }

    /// Figures for the metrics: the outbox's depth and oldest event, dead letters, media
    /// records by status.
    async fn stats(&self) -> Result<MetaStats, MetaError>;

    /// Makes held events deliverable: those of `upload`, or every held one.
    async fn release_events(&self, upload: Option<&UploadId>) -> Result<(), MetaError>;

    /// Uploads with events held since `before` or longer: work a request left undone (see
    /// `recover`).
    async fn held_uploads(
        &self,
        before: SystemTime,
        limit: usize,
    ) -> Result<Vec<UploadId>, MetaError>;

    /// Active final uploads not yet assembled (`tus::concat`), oldest first.
    async fn pending_finals(&self, limit: usize) -> Result<Vec<UploadId>, MetaError>;

    /// Takes pending events due at `now`, oldest first, at most one per upload (the oldest
    /// undelivered one, so an upload's events are delivered in order), and makes them due
    /// again only at `lease_until`: a dispatcher elsewhere does not take them meanwhile, and
    /// one that died leaves them to be taken again then.
    async fn claim_events(
        &self,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, MetaError>;

    /// Forgets a delivered event.
    async fn event_delivered(&self, id: &str) -> Result<(), MetaError>;

    /// Records a failed attempt: tried again at `retry_at`, or a dead letter if `None`.
    async fn event_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<SystemTime>,
    ) -> Result<(), MetaError>;

    /// Events waiting or given up on (only dead letters if `failed_only`), oldest first.
    async fn list_events(&self, failed_only: bool) -> Result<Vec<StoredEvent>, MetaError>;

    /// Makes an event due now with its attempts reset. Returns whether it exists.
    async fn retry_event(&self, id: &str) -> Result<bool, MetaError>;

    /// Unfinished, active uploads whose expiry is at or before `now`, oldest first.
    async fn due_to_expire(
        &self,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<UploadId>, MetaError>;

    /// Marks an upload expired: it answers 410 from now on. `at` is recorded as its expiry.
    async fn mark_expired(&self, id: &UploadId, at: SystemTime) -> Result<(), MetaError>;

    /// Forgets expired uploads whose expiry is older than `before`. Returns how many.
    async fn purge_expired(&self, before: SystemTime) -> Result<usize, MetaError>;

    /// The media record of an upload, if it has one.
    async fn media(&self, id: &UploadId) -> Result<Option<MediaRecord>, MetaError>;

    /// Takes the oldest job due at `now` that no live lease holds and `takes` allows (fast
    /// work first), under a lease of `owner`'s until `lease_until`, counting an attempt.
    async fn claim_media(
        &self,
        owner: &str,
        takes: Takes,
        now: SystemTime,
        lease_until: SystemTime,
    ) -> Result<Option<MediaRecord>, MetaError>;

    /// Records a running job's progress and findings (and extends its lease), if `owner` still
    /// holds it. Returns whether it did.
    async fn update_media(
        &self,
        id: &UploadId,
        owner: &str,
        update: &MediaUpdate,
    ) -> Result<bool, MetaError>;

    /// Ends `owner`'s run of a job with `outcome` and writes `events`, if `owner` still holds
    /// it. Returns the record as it was before (None: the lease was lost, nothing was written).
    async fn end_media(
        &self,
        id: &UploadId,
        owner: &str,
        outcome: &MediaOutcome,
        events: &[OutboxEvent],
    ) -> Result<Option<MediaRecord>, MetaError>;

    /// Media records (only failed ones if `failed_only`), oldest first.
    async fn list_media(&self, failed_only: bool) -> Result<Vec<MediaRecord>, MetaError>;

    /// Queues a job that is not running again, attempts reset. Returns whether it did.
    async fn retry_media(&self, id: &UploadId) -> Result<bool, MetaError>;
}
