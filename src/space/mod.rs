//! Free space on the filesystems tuskd writes to, and the reserve it keeps free on each
//! (`--min-free-space`): the uploads' directory (local storage), the SQLite database's, and the
//! media workers' scratch directory. No HTTP types here.
//!
//! Upload data stops at the reserve, so the metadata store always has room to record the
//! offsets of what arrived and the deletions that free space; new uploads are refused below it.
//! Media work stops earlier, at twice the reserve (the "low" mark), so that transcodes never
//! take the room uploads need. A watcher (`watch`) reads every filesystem every few seconds for
//! the metrics and the log (a warning at the low mark, an error below the reserve, a note when
//! space returns, which also wakes the media workers).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::{DirLabels, Metrics};

mod allowance;
pub use allowance::Allowance;

/// How often the watcher reads the filesystems.
const WATCH_EVERY: Duration = Duration::from_secs(5);
/// How long a reading is reused for a new upload's check (a stream of data always reads
/// afresh, and its readings serve the checks that follow).
const REUSE_FOR: Duration = Duration::from_millis(200);
/// The default reserve: this share of the filesystem …
const DEFAULT_PERCENT: f64 = 5.0;
/// … but never more than this.
const DEFAULT_CAP: u64 = 1 << 30;

/// How much free space to keep: `--min-free-space`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reserve {
    Bytes(u64),
    /// A share of each filesystem's size, in percent.
    Percent(f64),
    /// 5% of each filesystem, at most 1 GiB.
    Default,
}

impl Reserve {
    /// `5%`, a size (`512MiB`, `2GB`, `0` for none) or `default`.
    pub fn parse(s: &str) -> Result<Reserve, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("default") {
            return Ok(Reserve::Default);
        }
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a percentage"))?;
            if !(0.0..=50.0).contains(&p) {
                return Err(format!("{s}: a percentage from 0% to 50%"));
            }
            return Ok(Reserve::Percent(p));
        }
        crate::domain::upload::parse_size(s).map(Reserve::Bytes)
    }

    /// The bytes to keep free on a filesystem of `total` bytes.
    pub fn bytes(&self, total: u64) -> u64 {
        match *self {
            Reserve::Bytes(n) => n,
            Reserve::Percent(p) => (total as f64 * p / 100.0) as u64,
            Reserve::Default => ((total as f64 * DEFAULT_PERCENT / 100.0) as u64).min(DEFAULT_CAP),
        }
    }
}

/// What a directory is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The uploads' bytes (local storage).
    Uploads,
    /// The SQLite database.
    Metadata,
    /// The media workers' scratch files.
    Work,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Uploads => "uploads",
            Role::Metadata => "metadata",
            Role::Work => "media-work",
        }
    }
}

/// One reading of a watched directory's filesystem.
#[derive(Clone, Debug)]
pub struct Reading {
    pub role: Role,
    pub path: Arc<Path>,
    /// Bytes an unprivileged writer may still use.
    pub free: u64,
    pub total: u64,
    pub reserve: u64,
}

/// Where a filesystem stands against its reserve (in order of gravity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    /// Below twice the reserve: media work waits, operators are warned.
    Low,
    /// Below the reserve: upload data and new uploads are refused.
    Full,
}

impl Reading {
    /// Bytes that may still be written before the reserve.
    pub fn room(&self) -> u64 {
        self.free.saturating_sub(self.reserve)
    }

    /// Bytes media work may still write before the low mark.
    pub fn media_room(&self) -> u64 {
        self.free.saturating_sub(self.reserve.saturating_mul(2))
    }

    pub fn level(&self) -> Level {
        if self.free < self.reserve || (self.reserve == 0 && self.free == 0) {
            Level::Full
        } else if self.free < self.reserve.saturating_mul(2) {
            Level::Low
        } else {
            Level::Ok
        }
    }

    /// Words for the log.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.summary(), self.path.display())
    }

    /// Words for the readiness report: no path.
    pub fn summary(&self) -> String {
        format!(
            "{} free on the {} filesystem, reserve {}",
            human(self.free),
            self.role.as_str(),
            human(self.reserve)
        )
    }
}

fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{v:.1} {}", UNITS[unit]),
    }
}

/// The watched directories and their reserve; cheap to clone.
#[derive(Clone, Debug)]
pub struct Space(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    reserve: Reserve,
    dirs: Vec<(Role, Arc<Path>)>,
    metrics: Arc<Metrics>,
    /// The last reading of every directory, and when it was taken.
    last: Mutex<Option<(Instant, Arc<[Reading]>)>>,
    /// The level each directory was last reported at (the watcher logs changes).
    levels: Mutex<Vec<Level>>,
}

impl Space {
    pub fn new(reserve: Reserve, dirs: Vec<(Role, PathBuf)>, metrics: Arc<Metrics>) -> Space {
        let levels = Mutex::new(vec![Level::Ok; dirs.len()]);
        Space(Arc::new(Inner {
            reserve,
            dirs: dirs.into_iter().map(|(r, p)| (r, Arc::from(p))).collect(),
            metrics,
            levels,
            last: Mutex::new(None),
        }))
    }

    /// Nothing watched: every check passes (object stores with Postgres; tests).
    pub fn unwatched(metrics: Arc<Metrics>) -> Space {
        Space::new(Reserve::Bytes(0), Vec::new(), metrics)
    }

    /// Reads the directories of `roles` (all of them when `roles` is empty). A directory whose
    /// filesystem cannot be read is left out, with a warning: the check fails open, as the
    /// writes themselves still report a full disk.
    pub fn read(&self, roles: &[Role]) -> Vec<Reading> {
        self.0
            .dirs
            .iter()
            .filter(|(role, _)| roles.is_empty() || roles.contains(role))
            .filter_map(|(role, path)| match statvfs(path) {
                Ok((free, total)) => Some(Reading {
                    role: *role,
                    path: path.clone(),
                    free,
                    total,
                    reserve: self.0.reserve.bytes(total),
                }),
                Err(e) => {
                    tracing::warn!("cannot read the free space of {}: {e}", path.display());
                    None
                }
            })
            .collect()
    }

    /// Every directory read, or the last reading if it is younger than `REUSE_FOR` and
    /// `fresh` is not asked for.
    fn readings(&self, fresh: bool) -> Arc<[Reading]> {
        let mut last = self.0.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, r)) = last.as_ref()
            && !fresh
            && at.elapsed() < REUSE_FOR
        {
            return r.clone();
        }
        let r: Arc<[Reading]> = self.read(&[]).into();
        *last = Some((Instant::now(), r.clone()));
        r
    }

    /// The room upload data has, and the reading that bounds it (None: nothing watched):
    /// its bytes take room on the uploads' filesystem (local storage; an object store's parts
    /// take none here), and its records need the metadata's filesystem above the reserve.
    /// `fresh`: read the filesystems now rather than reuse a reading of the last moments.
    pub fn data_room(&self, fresh: bool) -> Option<(u64, Reading)> {
        self.readings(fresh)
            .iter()
            .filter(|r| matches!(r.role, Role::Uploads | Role::Metadata))
            .map(|r| match r.role {
                Role::Metadata if r.level() != Level::Full => (u64::MAX, r.clone()),
                _ => (r.room(), r.clone()),
            })
            .min_by_key(|(room, _)| *room)
    }

    /// Whether media work may start (or go on): its scratch filesystem is above the low mark.
    /// Returns the reading that stops it.
    pub fn stops_media(&self) -> Option<Reading> {
        self.read(&[Role::Work])
            .into_iter()
            .find(|r| r.level() != Level::Ok)
    }

    /// A budget for one stream of upload data.
    pub fn allowance(&self) -> Allowance {
        Allowance::new(self.clone())
    }

    /// Sets the free-space gauges from a fresh reading.
    pub fn refresh_metrics(&self) -> Vec<Reading> {
        let readings = self.read(&[]);
        for r in &readings {
            let labels = DirLabels {
                dir: r.role.as_str(),
            };
            self.0
                .metrics
                .disk_free_bytes
                .get_or_create(&labels)
                .set(r.free as i64);
            self.0
                .metrics
                .disk_reserve_bytes
                .get_or_create(&labels)
                .set(r.reserve as i64);
        }
        readings
    }

    /// Reads the filesystems every few seconds until shutdown: the gauges, a log line when a
    /// filesystem changes level, and `returned` woken when one leaves the low or full level.
    pub async fn watch(self, shutdown: CancellationToken, returned: Arc<Notify>) {
        if self.0.dirs.is_empty() {
            return;
        }
        loop {
            let space = self.clone();
            if let Ok(readings) = tokio::task::spawn_blocking(move || space.refresh_metrics()).await
                && self.log_changes(&readings)
            {
                returned.notify_waiters();
            }
            tokio::select! {
                _ = tokio::time::sleep(WATCH_EVERY) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Logs each directory whose level changed; returns whether space returned on one.
    fn log_changes(&self, readings: &[Reading]) -> bool {
        let mut levels = self.0.levels.lock().unwrap_or_else(|p| p.into_inner());
        let mut returned = false;
        for r in readings {
            let Some(i) = self
                .0
                .dirs
                .iter()
                .position(|(role, p)| *role == r.role && *p == r.path)
            else {
                continue;
            };
            let (before, now) = (levels[i], r.level());
            if before == now {
                continue;
            }
            levels[i] = now;
            match now {
                Level::Full => tracing::error!(
                    "below the free-space reserve: {}; upload data and new uploads are refused \
                     (507) until space is freed",
                    r.describe()
                ),
                Level::Low => tracing::warn!(
                    "free space is approaching the reserve: {}; media work waits",
                    r.describe()
                ),
                Level::Ok => tracing::info!("free space is back: {}", r.describe()),
            }
            returned |= now != Level::Full && before != Level::Ok && now != before;
        }
        returned
    }
}

/// (bytes available to an unprivileged writer, size) of the filesystem holding `path`, or of
/// its nearest existing ancestor (a directory made on first use).
fn statvfs(path: &Path) -> std::io::Result<(u64, u64)> {
    let mut p = path;
    loop {
        match rustix::fs::statvfs(p) {
            Ok(s) => {
                let unit = if s.f_frsize > 0 {
                    s.f_frsize
                } else {
                    s.f_bsize
                };
                return Ok((
                    s.f_bavail.saturating_mul(unit),
                    s.f_blocks.saturating_mul(unit),
                ));
            }
            Err(rustix::io::Errno::NOENT) if p.parent().is_some() => {
                p = p.parent().expect("checked");
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests;
