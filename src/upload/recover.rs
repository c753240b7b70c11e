//! Repair of work that a crash or a failing store left between two steps of a state change:
//! storage of uploads that completed is finished, storage of uploads the metadata store no
//! longer knows (terminated before their objects were deleted) is deleted, and hook events
//! held for that work are let go once it is done. Final uploads created before their partial
//! uploads finished are assembled here (`Uploads::assemble`) once they have.
//!
//! It runs once at start-up, before the first request, and then every `repair_interval`, for
//! the uploads whose request failed half-way (a store that failed to finish or delete): their
//! post-finish or post-terminate event would otherwise wait for a restart and, by the
//! per-upload order rule, hold back every later event of the upload. Work on one upload never
//! stops the others: each failure is logged and that upload is tried again on the next pass.
//! An upload a request holds is left to that request.

use std::time::SystemTime;

use super::{UploadError, Uploads};

/// Uploads looked at per pass, for each kind of work.
const BATCH: usize = 1000;

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Repaired {
    pub finished: usize,
    pub deleted: usize,
    pub released: usize,
    /// Final uploads assembled once their partial uploads finished.
    pub assembled: usize,
    /// Uploads whose repair failed; tried again on the next pass.
    pub failed: usize,
}

/// The start-up pass: every held event is stale, since no request runs yet.
pub async fn run(core: &Uploads) -> Result<Repaired, UploadError> {
    let done = pass(core, SystemTime::now()).await?;
    if done != Repaired::default() {
        tracing::info!(?done, "repaired what an interrupted run left");
    }
    Ok(done)
}

/// Runs a pass every `repair_interval` until shutdown. Events held for less than an interval
/// belong to requests still at work and are left alone.
pub async fn run_periodically(core: Uploads) {
    let every = core.limits.repair_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = core.shutdown.cancelled() => return,
            _ = tick.tick() => {}
            () = core.repair.notified() => {}
        }
        match pass(&core, SystemTime::now() - every).await {
            Ok(done) if done != Repaired::default() => tracing::info!(?done, "repair pass"),
            Ok(_) => {}
            Err(e) => tracing::warn!("repair pass failed: {e}"),
        }
    }
}

/// One pass: storage left unfinished, then uploads with events held since `held_before`.
pub async fn pass(core: &Uploads, held_before: SystemTime) -> Result<Repaired, UploadError> {
    let mut done = Repaired::default();
    for id in core.storage.unfinished().await? {
        if let Err(e) = settle(core, &id, &mut done).await {
            tracing::warn!(%id, "cannot repair the upload's storage, will retry: {e}");
            done.failed += 1;
        }
    }
    for id in core.meta.held_uploads(held_before, BATCH).await? {
        match settle(core, &id, &mut done).await {
            // Done, or nothing to do: an unfinished upload that holds an event is a new upload
            // under the id of a terminated one (a pre-create hook chose it), whose event goes.
            Ok(Some(_)) => {
                core.meta.release_events(Some(&id)).await?;
                done.released += 1;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%id, "cannot finish what the upload's last request left, will retry: {e}");
                done.failed += 1;
            }
        }
    }
    for id in core.meta.pending_finals(BATCH).await? {
        match core.assemble(&id).await {
            Ok(true) => done.assembled += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(%id, "cannot assemble the final upload, will retry: {e}");
                done.failed += 1;
            }
        }
    }
    if done.released > 0 {
        core.hooks.wake();
        // Released media jobs too.
        core.media_wake.notify_one();
    }
    Ok(done)
}

/// Brings an upload's storage in line with its record: finished if complete, deleted if the
/// upload is gone. Returns whether it did (`Some(false)`: still being uploaded), or `None` if a
/// request holds the upload.
async fn settle(
    core: &Uploads,
    id: &crate::domain::upload::UploadId,
    done: &mut Repaired,
) -> Result<Option<bool>, UploadError> {
    // An upload still being uploaded needs nothing, and is not locked to find that out (with
    // several nodes a lock is a database write).
    if core.meta.get(id).await?.is_some_and(|u| !u.is_complete()) {
        return Ok(Some(false));
    }
    let Some(_guard) = core.locks.try_acquire(id).await else {
        return Ok(None);
    };
    match core.meta.get(id).await? {
        Some(u) if u.is_complete() => {
            core.storage.finish(id, u.offset).await?;
            done.finished += 1;
            Ok(Some(true))
        }
        Some(_) => Ok(Some(false)),
        None => {
            core.storage.delete(id).await?;
            done.deleted += 1;
            Ok(Some(true))
        }
    }
}
