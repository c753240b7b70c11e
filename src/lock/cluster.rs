//! One writer per upload across nodes. A node that holds an upload locally also holds its lease
//! in the shared metadata store (`Cluster`), renewed while it holds it; a request on another
//! node that wants the upload asks the holder to let go (the holder's request commits what it
//! has and answers as usual) and takes the lease once it is given back, or once it runs out when
//! the holder died. A holder whose lease could not be renewed in time, or was taken over, is
//! asked to stop, so two nodes never both believe they write an upload.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use crate::domain::lease::Cluster;
use crate::domain::upload::UploadId;

/// How often a waiting request tries the lease when no release is heard of (a lease that runs
/// out is not announced).
const RETRY: Duration = Duration::from_millis(250);

/// The leases this node holds: upload → the holder's stop signal.
#[derive(Clone, Default)]
pub(super) struct Leased(Arc<Mutex<HashMap<UploadId, CancellationToken>>>);

impl Leased {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UploadId, CancellationToken>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn insert(&self, id: &UploadId, token: CancellationToken) {
        self.lock().insert(id.clone(), token);
    }

    pub(super) fn remove(&self, id: &UploadId) {
        self.lock().remove(id);
    }

    fn ids(&self) -> Vec<UploadId> {
        self.lock().keys().cloned().collect()
    }

    fn stop(&self, ids: &[UploadId]) {
        let held = self.lock();
        for id in ids {
            if let Some(t) = held.get(id) {
                t.cancel();
            }
        }
    }
}

/// Takes the lease of an upload this node holds locally: at once if free; else after asking
/// the holder, once it lets go or its lease runs out, within `wait` (`None`: not in time).
/// `grace` is how long the holder may finish on its own before it is asked.
pub(super) async fn take(
    cluster: &dyn Cluster,
    id: &UploadId,
    grace: Duration,
    wait: Duration,
    ask: bool,
) -> Option<i64> {
    let start = Instant::now();
    let mut released = cluster.released();
    let mut asked = false;
    loop {
        match cluster.take(id).await {
            Ok(Some(token)) => return Some(token),
            Ok(None) => {}
            Err(e) => tracing::warn!(%id, "cannot take the upload's lease: {e}"),
        }
        if !ask {
            return None;
        }
        let elapsed = start.elapsed();
        if elapsed >= wait {
            return None;
        }
        if !asked && elapsed >= grace {
            asked = true;
            if let Err(e) = cluster.ask_release(id).await {
                tracing::warn!(%id, "cannot ask the upload's holder to let go: {e}");
            }
        }
        let until = if asked { wait } else { grace };
        let nap = RETRY.min(until.saturating_sub(elapsed));
        let heard = async {
            loop {
                match released.recv().await {
                    Ok(r) if &r == id => return,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            () = heard => {}
            () = tokio::time::sleep(nap) => {}
        }
    }
}

/// Runs until shutdown: renews this node's leases, stops holders whose lease was lost, and
/// passes other nodes' requests to let go to `interrupt`.
pub(super) async fn run(
    cluster: Arc<dyn Cluster>,
    leased: Leased,
    shutdown: CancellationToken,
    interrupt: impl Fn(&UploadId) + Send + 'static,
) {
    let every = cluster.lease() / 4;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut requests = cluster.release_requests();
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            r = requests.recv() => match r {
                Ok(id) => interrupt(&id),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                let held = leased.ids();
                match cluster.renew(&held).await {
                    Ok(lost) => {
                        renewed = Instant::now();
                        if !lost.is_empty() {
                            tracing::warn!(?lost, "upload leases were lost; their writers stop");
                            leased.stop(&lost);
                        }
                    }
                    Err(e) => {
                        tracing::warn!("cannot renew the upload leases: {e}");
                        // Past the lease, another node may have taken them.
                        if renewed.elapsed() + every >= cluster.lease() {
                            leased.stop(&held);
                        }
                    }
                }
            }
        }
    }
}
