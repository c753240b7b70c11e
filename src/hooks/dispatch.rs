//! The outbox dispatcher: delivers post-* events at least once, in order per upload, with
//! exponential backoff and jitter between attempts. Every node runs one; an event is claimed
//! under a lease (`MetaStore::claim_events`), so it goes out once while its dispatcher lives
//! and again after the lease if it died; after the most attempts an event is kept
//! as a dead letter (`tuskd hooks list --failed`, `tuskd hooks retry ID`). Runs until shutdown;
//! events still undelivered then are delivered after the next start.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::{HookConfig, HookType, Hooks};
use crate::domain::event::StoredEvent;
use crate::lock::Locks;
use crate::meta::MetaStore;

/// Events delivered at once (of different uploads).
const BATCH: usize = 16;
/// How often the outbox is looked at when nothing wakes the dispatcher (retries come due).
const POLL: Duration = Duration::from_millis(500);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Added to the hook timeout for the lease on a claimed event.
const LEASE_MARGIN: Duration = Duration::from_secs(15);

/// What the dispatcher works with: the outbox in the metadata store, the hook target, the
/// upload locks (a post-receive answer may stop the request writing its upload) and the
/// server's shutdown.
pub struct Dispatcher {
    pub meta: Arc<dyn MetaStore>,
    pub hooks: Hooks,
    pub locks: Locks,
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("hooks", &self.hooks)
            .field("locks", &self.locks)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Delivers due events until shutdown; returns at once when no hooks are configured.
    pub async fn run(self) {
        let Some(config) = self.hooks.config().cloned() else {
            return;
        };
        loop {
            loop {
                let now = SystemTime::now();
                // Longer than a delivery can take, so that no other dispatcher takes it meanwhile.
                let lease_until = now + config.timeout + LEASE_MARGIN;
                let due = match self.meta.claim_events(now, lease_until, BATCH).await {
                    Ok(due) => due,
                    Err(e) => {
                        tracing::warn!("cannot read the hook outbox: {e}");
                        break;
                    }
                };
                if due.is_empty() || self.shutdown.is_cancelled() {
                    break;
                }
                futures_util::future::join_all(due.into_iter().map(|e| self.deliver(&config, e)))
                    .await;
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = self.hooks.woken() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn deliver(&self, config: &HookConfig, stored: StoredEvent) {
        let e = &stored.event;
        let outcome = match HookType::parse(&e.kind) {
            Some(kind) => self
                .hooks
                .send(kind, e.payload.as_bytes(), Some(&e.id))
                .await
                .map(|answer| (kind, answer))
                .map_err(|err| err.to_string()),
            None => Err(format!("unknown event kind {:?}", e.kind)),
        };
        let recorded = match outcome {
            Ok((kind, answer)) => {
                tracing::debug!(event = %e.id, kind = %e.kind, upload = %e.upload, "hook event delivered");
                // The stop is for the request writing the upload now, if one is; an answer that
                // comes after its request ended is not kept for a later one.
                if kind == HookType::PostReceive
                    && answer.stop_upload
                    && !self.locks.interrupt_with(&e.upload, answer.http_response)
                {
                    tracing::info!(upload = %e.upload, "post-receive StopUpload came after its request ended (or the request is on another node)");
                }
                self.meta.event_delivered(&e.id).await
            }
            Err(err) => {
                let attempts = stored.attempts + 1;
                if attempts >= config.max_attempts {
                    tracing::error!(event = %e.id, kind = %e.kind, upload = %e.upload, attempts,
                        "hook event given up, kept as a dead letter: {err}");
                    self.meta.event_failed(&e.id, &err, None).await
                } else {
                    let wait = backoff(attempts);
                    tracing::warn!(event = %e.id, kind = %e.kind, upload = %e.upload, attempts,
                        "hook event failed, next attempt in {wait:?}: {err}");
                    self.meta
                        .event_failed(&e.id, &err, Some(SystemTime::now() + wait))
                        .await
                }
            }
        };
        if let Err(err) = recorded {
            tracing::warn!(event = %e.id, "cannot record the delivery attempt: {err}");
        }
    }
}

/// Doubling from 1 s up to 10 min, each wait drawn from its upper half so that events that
/// failed together do not retry together.
fn backoff(attempts: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1 << attempts.saturating_sub(1).min(20))
        .min(MAX_BACKOFF);
    full / 2 + full.mul_f64(rand::rng().random_range(0.0..0.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_ceiling() {
        for attempt in 1..30 {
            let full = FIRST_BACKOFF
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(MAX_BACKOFF);
            let b = backoff(attempt);
            assert!(b >= full / 2 && b <= full, "{attempt}: {b:?}");
        }
        assert!(backoff(30) <= MAX_BACKOFF);
    }
}
