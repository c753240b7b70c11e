//! What a run (of a job or of a task) shares with what runs beside it: its progress, which the
//! heartbeat records, and the flag that stops it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// What the run shares with its heartbeat.
#[derive(Debug)]
pub struct Progress {
    /// Percent, as f32 bits.
    pub percent: AtomicU32,
    /// Set when the lease is lost or the server stops: the pipeline gives up.
    pub cancel: AtomicBool,
}

impl Progress {
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress {
            percent: AtomicU32::new(0f32.to_bits()),
            cancel: AtomicBool::new(false),
        })
    }

    pub fn percent(&self) -> f32 {
        f32::from_bits(self.percent.load(Ordering::Relaxed))
    }

    pub fn report(&self, p: f32) {
        self.percent.store(p.to_bits(), Ordering::Relaxed);
    }
}
