//! The server's wall clock, for what is measured in wall time (upload expiry). Tests move it
//! forward with `advance` instead of waiting: the expiry sweeper wakes when it moves.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Clock(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// How far `advance` has moved this clock past the system's, in milliseconds.
    ahead_ms: AtomicU64,
    moved: Notify,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(+{}ms)", self.0.ahead_ms.load(Ordering::Relaxed))
    }
}

impl Clock {
    pub fn now(&self) -> SystemTime {
        SystemTime::now() + Duration::from_millis(self.0.ahead_ms.load(Ordering::Relaxed))
    }

    /// Moves the clock forward by `by` and wakes whoever waits on `moved`.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.ahead_ms.fetch_add(ms, Ordering::Relaxed);
        // A permit is kept if the sweeper is busy: it sweeps again right after.
        self.0.moved.notify_one();
    }

    /// Resolves when `advance` has been called since the last time this resolved (one waiter).
    pub async fn moved(&self) {
        self.0.moved.notified().await
    }
}
