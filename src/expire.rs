//! The expiry sweeper: reclaims the storage of unfinished uploads that have expired and marks
//! them expired, so their URLs answer 410. Tombstones are forgotten after `TOMBSTONE_KEEP`.
//! An upload that a request holds is skipped and looked at on a later pass.

use std::time::{Duration, SystemTime};

use crate::app::App;
use crate::domain::upload::{State, UploadId};
use crate::http::error::Error;

const BATCH: usize = 256;
const TOMBSTONE_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// How often the sweeper runs for a given expiry period.
pub fn interval(expire_after: Duration) -> Duration {
    (expire_after / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Runs until shutdown.
pub async fn run(app: App) {
    let Some(expire_after) = app.config.expire_after else {
        return;
    };
    let mut tick = tokio::time::interval(interval(expire_after));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = tick.tick() => {}
            () = app.config.clock.moved() => {}
        }
        if let Err(e) = sweep(&app, app.config.clock.now()).await {
            tracing::warn!("expiry sweep failed: {e}");
        }
    }
}

/// One pass: returns how many uploads it expired. An upload whose storage cannot be deleted
/// now is logged and tried again on the next pass; it does not stop the others.
pub async fn sweep(app: &App, now: SystemTime) -> Result<usize, crate::http::error::Error> {
    let mut expired = 0;
    for id in app.meta.due_to_expire(now, BATCH).await? {
        match expire(app, &id, now).await {
            Ok(true) => expired += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(%id, "cannot expire the upload, will retry: {e}"),
        }
    }
    app.meta.purge_expired(now - TOMBSTONE_KEEP).await?;
    Ok(expired)
}

/// Expires one upload unless a request holds it or it was extended meanwhile.
async fn expire(app: &App, id: &UploadId, now: SystemTime) -> Result<bool, Error> {
    let Some(_guard) = app.locks.try_acquire(id).await else {
        return Ok(false);
    };
    // Re-check under the lock: a PATCH may have just extended it.
    let upload = match app.meta.get(id).await? {
        Some(u) if u.is_expired_at(now) && u.state == State::Active => u,
        _ => return Ok(false),
    };
    app.storage.delete(id).await?;
    app.meta.mark_expired(id, now).await?;
    tracing::info!(%id, "unfinished upload expired");
    app.metrics.uploads_expired.inc();
    crate::http::tus::concat::partial_changed(app, &upload);
    Ok(true)
}
