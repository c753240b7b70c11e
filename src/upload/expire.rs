//! The expiry sweeper: reclaims the storage of unfinished uploads that have expired and marks
//! them expired, so their URLs answer 410. Tombstones are forgotten after `TOMBSTONE_KEEP`.
//! An upload that a request holds is skipped and looked at on a later pass.

use std::time::{Duration, SystemTime};

use super::{UploadError, Uploads};
use crate::domain::upload::{State, UploadId};

const BATCH: usize = 256;
const TOMBSTONE_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// How often the sweeper runs for a given expiry period.
pub fn interval(expire_after: Duration) -> Duration {
    (expire_after / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Runs until shutdown.
pub async fn run(core: Uploads) {
    let Some(expire_after) = core.limits.expire_after else {
        return;
    };
    let mut tick = tokio::time::interval(interval(expire_after));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = core.shutdown.cancelled() => return,
            _ = tick.tick() => {}
            () = core.clock.moved() => {}
        }
        if let Err(e) = sweep(&core, core.clock.now()).await {
            tracing::warn!("expiry sweep failed: {e}");
        }
    }
}

/// One pass: returns how many uploads it expired. An upload whose storage cannot be deleted
/// now is logged and tried again on the next pass; it does not stop the others.
pub async fn sweep(core: &Uploads, now: SystemTime) -> Result<usize, UploadError> {
    let mut expired = 0;
    for id in core.meta.due_to_expire(now, BATCH).await? {
        match expire(core, &id, now).await {
            Ok(true) => expired += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(%id, "cannot expire the upload, will retry: {e}"),
        }
    }
    core.meta.purge_expired(now - TOMBSTONE_KEEP).await?;
    Ok(expired)
}

/// Expires one upload unless a request holds it or it was extended meanwhile.
async fn expire(core: &Uploads, id: &UploadId, now: SystemTime) -> Result<bool, UploadError> {
    let Some(_guard) = core.locks.try_acquire(id).await else {
        return Ok(false);
    };
    // Re-check under the lock: a PATCH may have just extended it.
    let upload = match core.meta.get(id).await? {
        Some(u) if u.is_expired_at(now) && u.state == State::Active => u,
        _ => return Ok(false),
    };
    core.storage.delete(id).await?;
    core.meta.mark_expired(id, now).await?;
    tracing::info!(%id, "unfinished upload expired");
    core.metrics.uploads_expired.inc();
    core.partial_changed(&upload);
    Ok(true)
}
