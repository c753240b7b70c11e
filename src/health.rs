//! Readiness for orchestrators (served as `/readyz` by `http::ops`): the metadata store takes a
//! write, the store answers a small request, every media worker has been seen lately.
//!
//! Free space is reported (`disk`: ok, low, full) but never makes the node unready: a full
//! node still answers HEAD, GET, DELETE and the media status, and DELETE is how clients and
//! operators free space through it; with local storage its uploads are reachable only through
//! it. Taking it out of the load balancer would turn "no room for new data" (507, which
//! clients retry) into "every upload on it is gone". A metadata store that refuses a write
//! because its disk is full is reported the same way.
//! Readiness is checked at most once a second, whatever the number of probes: concurrent probes
//! wait for the one check and share its result.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::meta::{MetaError, MetaStore};
use crate::space::{Level, Space};
use crate::storage::Storage;

/// How long a readiness result is reused.
const CACHE: Duration = Duration::from_secs(1);
/// How long one check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// A media worker not seen for this long is taken as dead (idle ones check in every 2 s,
/// busy ones with every heartbeat, 10 s).
const WORKER_SILENCE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Health {
    /// Unix ms each media worker was last seen.
    beats: Vec<AtomicU64>,
    cache: tokio::sync::Mutex<Option<(Instant, Report)>>,
}

#[derive(Clone, Debug)]
pub struct Report {
    /// (check, None when it passed, else why not).
    pub checks: Vec<(&'static str, Option<String>)>,
    /// (what, its state): reported, never failing readiness (free space).
    pub notes: Vec<(&'static str, String)>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|(_, e)| e.is_none())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl Health {
    pub fn new(workers: usize) -> Health {
        let now = now_ms();
        Health {
            beats: (0..workers).map(|_| AtomicU64::new(now)).collect(),
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// Media worker `i` is alive.
    pub fn beat(&self, i: usize) {
        if let Some(b) = self.beats.get(i) {
            b.store(now_ms(), Ordering::Relaxed);
        }
    }

    pub async fn ready(
        &self,
        meta: &dyn MetaStore,
        storage: &dyn Storage,
        space: &Space,
    ) -> Report {
        let mut cache = self.cache.lock().await;
        if let Some((at, report)) = cache.as_ref()
            && at.elapsed() < CACHE
        {
            return report.clone();
        }
        let report = self.check(meta, storage, space).await;
        *cache = Some((Instant::now(), report.clone()));
        report
    }

    async fn check(&self, meta: &dyn MetaStore, storage: &dyn Storage, space: &Space) -> Report {
        let timed = |what: &'static str| {
            move |r: Result<Result<(), String>, tokio::time::error::Elapsed>| match r {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(format!("{what} did not answer within {CHECK_TIMEOUT:?}")),
            }
        };
        let meta = tokio::time::timeout(CHECK_TIMEOUT, meta.ping());
        let store = tokio::time::timeout(CHECK_TIMEOUT, async {
            storage.ping().await.map_err(|e| e.to_string())
        });
        let (meta, store) = tokio::join!(meta, store);
        let mut notes = vec![("disk", disk(space))];
        let mut checks = Vec::new();
        match meta {
            // A database that refuses the write for a full disk is reported, not failing.
            Ok(Err(e @ MetaError::Full(_))) => notes.push(("metadata", format!("full: {e}"))),
            r => checks.push((
                "metadata",
                timed("the metadata store")(r.map(|r| r.map_err(|e| e.to_string()))),
            )),
        }
        checks.push(("storage", timed("the store")(store)));
        if !self.beats.is_empty() {
            let now = now_ms();
            let silent = self
                .beats
                .iter()
                .filter(|b| {
                    now.saturating_sub(b.load(Ordering::Relaxed))
                        > WORKER_SILENCE.as_millis() as u64
                })
                .count();
            checks.push((
                "media",
                (silent > 0).then(|| {
                    format!(
                        "{silent} of {} media workers not seen for {}s",
                        self.beats.len(),
                        WORKER_SILENCE.as_secs()
                    )
                }),
            ));
        }
        for (name, e) in &checks {
            if let Some(e) = e {
                tracing::warn!(check = name, "not ready: {e}");
            }
        }
        Report { checks, notes }
    }
}

/// `ok`, or the tightest filesystem's state (`low: …`, `full: …`), without its path.
fn disk(space: &Space) -> String {
    let worst = space
        .read(&[])
        .into_iter()
        .max_by_key(|r| (r.level(), std::cmp::Reverse(r.room())));
    match worst {
        Some(r) if r.level() != Level::Ok => {
            let level = if r.level() == Level::Full {
                "full"
            } else {
                "low"
            };
            format!("{level}: {}", r.summary())
        }
        _ => "ok".to_owned(),
    }
}
