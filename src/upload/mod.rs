//! The upload core: every operation on an upload, whatever front door a client came through
//! (tus today), and none of any protocol's syntax. Create (with a length or deferred, metadata,
//! an id a pre-create hook may choose), append a byte stream at an offset (`append`, checked by
//! a pluggable `checksum::Verifier`), declare a deferred length, complete (storage finishes the
//! object, pre-finish may shape the answer, post-finish and the media job are let go),
//! terminate, concatenate, read; and the background work uploads need (`expire`, `recover`).
//!
//! A door parses its protocol's request into the core's terms, calls `Uploads`, and writes its
//! protocol's answer from the result or from `UploadError`. The request itself (`http::request
//! ::Parts`) is passed through only for the hooks, whose events describe it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::request::Parts;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::domain::access::Caller;
use crate::domain::quota::Quota;
use crate::domain::upload::{Upload, UploadId};
use crate::hooks::Hooks;
use crate::lock::Locks;
use crate::meta::MetaStore;
use crate::metrics::Metrics;
use crate::storage::Storage;

mod append;
pub mod checksum;
pub mod concat;
mod create;
mod error;
mod events;
pub mod expire;
mod read;
pub mod recover;
mod source;
mod terminate;
mod write;

pub use create::{Created, NewUpload};
pub use error::{ChecksumError, FullReason, Rejection, UploadError};
pub use events::Shaped;
pub use source::{ByteSource, Data, Read};

/// What limits uploads, whatever door they come through.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// The largest upload accepted (`--max-size`).
    pub max_size: Option<u64>,
    /// How long an unfinished upload lives after its last change (`--expire-after`).
    pub expire_after: Option<Duration>,
    /// How often the repair loop runs (`recover`).
    pub repair_interval: Duration,
    /// What each owner may hold and start (`--quota-*`).
    pub quota: Quota,
}

/// The upload core, cheap to clone (an `Arc` inside).
#[derive(Clone, Debug)]
pub struct Uploads(Arc<Inner>);

/// What the core works with: the stores, the locks, the hooks and the wake-up signals of the
/// background work it causes.
#[derive(Debug)]
pub struct Inner {
    pub meta: Arc<dyn MetaStore>,
    pub storage: Arc<dyn Storage>,
    pub locks: Locks,
    pub hooks: Hooks,
    pub limits: Limits,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    /// Finished uploads get a media job (the media pipeline is on).
    pub media_jobs: bool,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Free space against the reserve: new uploads and upload data stop there.
    pub space: crate::space::Space,
    /// Wakes the repair loop before its next pass (a partial upload finished, so a pending
    /// final upload may be ready).
    pub repair: Notify,
    /// Wakes an idle media worker: a job was released.
    pub media_wake: Arc<Notify>,
}

impl std::ops::Deref for Uploads {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Uploads {
    pub fn new(inner: Inner) -> Uploads {
        Uploads(Arc::new(inner))
    }

    /// Loads an upload a client names: `NotFound` if unknown or not the caller's to see (the
    /// two are indistinguishable), `Expired` if it expired. Every operation on an upload a
    /// client names goes through here: the one place ownership is checked.
    pub async fn load(&self, caller: &Caller, id: &UploadId) -> Result<Upload, UploadError> {
        let upload = self.meta.get(id).await?.ok_or(UploadError::NotFound)?;
        if !caller.may_see(upload.owner.as_ref()) {
            return Err(UploadError::NotFound);
        }
        if upload.is_expired_at(self.clock.now()) {
            return Err(UploadError::Expired);
        }
        Ok(upload)
    }

    /// Everything that follows an upload's completion, once its final offset (or a length
    /// equal to its offset) is recorded: storage assembles the finished object, then the
    /// pre-finish hook may shape the response. The one place every way of completing an upload
    /// (appending, creation with or without data, declaring the length, concatenation) goes
    /// through.
    pub async fn complete(&self, req: &Parts, upload: &Upload) -> Result<Shaped, UploadError> {
        debug_assert!(upload.is_complete());
        self.storage.finish(&upload.id, upload.offset).await?;
        tracing::info!(id = %upload.id, length = upload.offset, "upload finished");
        self.metrics.uploads_finished.inc();
        let shaped = self.pre_finish(req, upload).await;
        // The upload is finished whatever the pre-finish hook did: post-finish goes out.
        self.release(&upload.id).await?;
        self.partial_changed(upload);
        shaped
    }

    /// When an unfinished upload touched now would expire.
    pub fn expiry(&self, upload_complete: bool) -> Option<SystemTime> {
        if upload_complete {
            return None;
        }
        self.limits.expire_after.map(|d| self.clock.now() + d)
    }

    /// Why a holder's stop token was cancelled: a newer request, or shutdown.
    fn stopped(&self) -> UploadError {
        if self.shutdown.is_cancelled() {
            UploadError::ShuttingDown
        } else {
            UploadError::Interrupted
        }
    }
}

#[cfg(test)]
mod tests;
