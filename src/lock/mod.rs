//! Per-upload locks: one writer per upload at a time.
//!
//! A request that wants an upload another request holds first gives the holder a short grace
//! to finish on its own, then asks it to let go (by cancelling the holder's token) and waits
//! for it. A holder that is streaming a body stops reading, commits what it has and releases;
//! this is how a client that reconnects after a stall takes over from its own dead connection.
//! The grace keeps clients that race on one upload from interrupting each other before any
//! of them gets its bytes stored (on an object store, opening an append takes round trips). Every holder's token is also a child of the
//! server's shutdown token. HEAD and GET never lock.
//!
//! With several nodes on one metadata store, a local holder also holds the upload's lease
//! across the nodes (`cluster`), taken after the local lock and given back with it.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;
use tokio_util::sync::CancellationToken;

use crate::domain::upload::UploadId;

mod cluster;

pub use cluster::Cluster;

/// How long a request waits for a holder to finish on its own before asking it to let go.
const GRACE: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Slot {
    held: Arc<tokio::sync::Mutex<()>>,
    /// The current holder's stop signal; `None` while nobody holds the upload.
    stop: Mutex<Option<CancellationToken>>,
    /// Why the current holder was asked to stop, if someone said (a hook's answer). It belongs
    /// to that holder: the next one starts without.
    reason: Mutex<Option<Box<dyn Any + Send>>>,
}

#[derive(Clone)]
pub struct Locks {
    slots: Arc<Mutex<HashMap<UploadId, Arc<Slot>>>>,
    shutdown: CancellationToken,
    wait: Duration,
    cluster: Option<Arc<dyn Cluster>>,
    leased: cluster::Leased,
}

impl std::fmt::Debug for Locks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locks")
            .field("wait", &self.wait)
            .field("across_nodes", &self.cluster.is_some())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("id", &self.id)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// Holding this means holding the upload. `cancelled()` fires when someone asks us to let go.
pub struct Guard {
    id: UploadId,
    slot: Arc<Slot>,
    locks: Locks,
    token: CancellationToken,
    /// The lease across nodes, if there are several: its take's token.
    lease: Option<i64>,
    _held: Option<OwnedMutexGuard<()>>,
}

impl Guard {
    /// Fires when a newer request for this upload, or shutdown, asks the holder to stop.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// The reason given with `Locks::interrupt_with` to this holder, if one of type `R` was.
    pub fn take_reason<R: Any>(&self) -> Option<R> {
        let reason = self
            .slot
            .reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        reason.downcast().ok().map(|r| *r)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let (Some(token), Some(cluster)) = (self.lease.take(), self.locks.cluster.clone()) {
            self.locks.leased.remove(&self.id);
            let id = self.id.clone();
            // Given back soon after; meanwhile this node may take it again (its own lease).
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = cluster.release(&id, token).await {
                        tracing::warn!(%id, "cannot give back the upload's lease: {e}");
                    }
                });
            }
        }
        *self.slot.stop.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.slot.reason.lock().unwrap_or_else(|p| p.into_inner()) = None;
        drop(self._held.take());
        self.locks.forget_if_idle(&self.id, &self.slot);
    }
}

impl Locks {
    /// `wait` bounds how long a request waits for a holder to let go.
    pub fn new(shutdown: CancellationToken, wait: Duration) -> Locks {
        Locks {
            slots: Arc::default(),
            shutdown,
            wait,
            cluster: None,
            leased: cluster::Leased::default(),
        }
    }

    /// Makes these locks hold across the nodes that share `cluster`: starts the lease renewal
    /// and the answer to other nodes' requests to let go, until shutdown.
    pub fn with_cluster(mut self, cluster: Arc<dyn Cluster>) -> Locks {
        self.cluster = Some(cluster.clone());
        let me = self.clone();
        tokio::spawn(cluster::run(
            cluster,
            self.leased.clone(),
            self.shutdown.clone(),
            move |id| {
                me.interrupt(id);
            },
        ));
        self
    }

    /// At shutdown, once no request runs: gives back this node's leases across nodes at once
    /// (a release still on its way when the process ends would leave them to run out).
    pub async fn give_back(&self) {
        if let Some(cluster) = &self.cluster
            && let Err(e) = cluster.release_all().await
        {
            tracing::warn!("cannot give back the upload leases: {e}");
        }
    }

    /// Asks the local holder of an upload, if any, to let go.
    fn interrupt(&self, id: &UploadId) -> bool {
        self.stop_holder(id, None)
    }

    /// Adds the lease across nodes to a local guard (when there are several nodes). `ask`:
    /// ask another node's holder to let go and wait for it; else only take a free lease.
    async fn with_lease(&self, mut guard: Guard, ask: bool) -> Option<Guard> {
        let Some(cluster) = &self.cluster else {
            return Some(guard);
        };
        let token = cluster::take(cluster.as_ref(), &guard.id, GRACE, self.wait, ask).await?;
        guard.lease = Some(token);
        self.leased.insert(&guard.id, guard.token.clone());
        Some(guard)
    }

    fn slot(&self, id: &UploadId) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(id.clone()).or_default().clone()
    }

    fn guard(&self, id: &UploadId, slot: Arc<Slot>, held: OwnedMutexGuard<()>) -> Guard {
        let token = self.shutdown.child_token();
        *slot.stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
        Guard {
            id: id.clone(),
            slot,
            locks: self.clone(),
            token,
            lease: None,
            _held: Some(held),
        }
    }

    /// Takes the upload, asking a current holder (here or on another node) to let go. `None`
    /// if it did not in time.
    pub async fn acquire(&self, id: &UploadId) -> Option<Guard> {
        let guard = self.acquire_here(id).await?;
        self.with_lease(guard, true).await
    }

    async fn acquire_here(&self, id: &UploadId) -> Option<Guard> {
        let slot = self.slot(id);
        if let Ok(held) = slot.held.clone().try_lock_owned() {
            return Some(self.guard(id, slot, held));
        }
        // One place in the queue throughout: the grace, then the wait after asking.
        let lock = slot.held.clone().lock_owned();
        tokio::pin!(lock);
        if let Ok(held) = tokio::time::timeout(GRACE, &mut lock).await {
            return Some(self.guard(id, slot, held));
        }
        if let Some(holder) = &*slot.stop.lock().unwrap_or_else(|p| p.into_inner()) {
            holder.cancel();
        }
        let held = tokio::time::timeout(self.wait, &mut lock).await;
        match held {
            Ok(held) => Some(self.guard(id, slot, held)),
            Err(_) => {
                self.forget_if_idle(id, &slot);
                None
            }
        }
    }

    /// Asks the current holder of an upload to let go, telling it why (a hook stopped the
    /// upload). Returns false, and keeps nothing, if nobody holds the upload.
    pub fn interrupt_with(&self, id: &UploadId, reason: impl Any + Send) -> bool {
        self.stop_holder(id, Some(Box::new(reason)))
    }

    /// Cancels the current holder's token, leaving it `reason` if given. Returns false, and
    /// keeps nothing, if nobody holds the upload.
    fn stop_holder(&self, id: &UploadId, reason: Option<Box<dyn Any + Send>>) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let Some(slot) = slots.get(id) else {
            return false;
        };
        // Under the stop lock, so that a holder leaving now drops the reason with itself.
        let stop = slot.stop.lock().unwrap_or_else(|p| p.into_inner());
        let Some(holder) = &*stop else {
            return false;
        };
        if reason.is_some() {
            *slot.reason.lock().unwrap_or_else(|p| p.into_inner()) = reason;
        }
        holder.cancel();
        true
    }

    /// Takes the upload only if nobody holds it, here or on another node (background work
    /// never interrupts clients).
    pub async fn try_acquire(&self, id: &UploadId) -> Option<Guard> {
        let slot = self.slot(id);
        let guard = match slot.held.clone().try_lock_owned() {
            Ok(held) => self.guard(id, slot, held),
            Err(_) => {
                self.forget_if_idle(id, &slot);
                return None;
            }
        };
        self.with_lease(guard, false).await
    }

    /// Forgets the slot if only the map and the caller still know it: nobody holds or waits.
    fn forget_if_idle(&self, id: &UploadId, slot: &Arc<Slot>) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(slot) == 2 {
            slots.remove(id);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locks() -> Locks {
        Locks::new(CancellationToken::new(), Duration::from_secs(5))
    }

    #[tokio::test]
    async fn a_new_request_asks_the_holder_to_let_go() {
        let l = locks();
        let id = UploadId::random();
        let first = l.acquire(&id).await.unwrap();
        let token = first.token();
        let holder = tokio::spawn(async move {
            token.cancelled().await;
            drop(first);
        });
        let second = l.acquire(&id).await.expect("holder let go");
        holder.await.unwrap();
        assert!(!second.token().is_cancelled());
        drop(second);
        assert_eq!(l.len(), 0, "idle slots are forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn a_holder_that_never_lets_go_times_the_waiter_out() {
        let l = locks();
        let id = UploadId::random();
        let _stuck = l.acquire(&id).await.unwrap();
        assert!(l.acquire(&id).await.is_none());
        assert!(l.try_acquire(&id).await.is_none());
    }

    #[tokio::test]
    async fn a_reason_reaches_only_the_holder_it_was_given_to() {
        let l = locks();
        let id = UploadId::random();
        assert!(!l.interrupt_with(&id, "nobody holds it"), "kept for no one");
        let first = l.acquire(&id).await.unwrap();
        assert!(l.interrupt_with(&id, "stop"));
        assert!(first.token().is_cancelled());
        drop(first);
        assert!(!l.interrupt_with(&id, "too late"));
        let second = l.acquire(&id).await.unwrap();
        assert_eq!(
            second.take_reason::<&str>(),
            None,
            "the next holder starts clean"
        );
        assert!(l.interrupt_with(&id, "again"));
        assert_eq!(second.take_reason::<&str>(), Some("again"));
    }

    #[tokio::test]
    async fn shutdown_cancels_every_holder() {
        let shutdown = CancellationToken::new();
        let l = Locks::new(shutdown.clone(), Duration::from_secs(5));
        let g = l.acquire(&UploadId::random()).await.unwrap();
        shutdown.cancel();
        assert!(g.token().is_cancelled());
    }
}
