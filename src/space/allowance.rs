//! A stream of upload data's budget against the reserve.

use super::Space;

/// A stream of upload data's budget against the reserve: `take` says how much of a piece may
/// be written. It reads the filesystems again after a share of what it last saw was used, so
/// concurrent writers overshoot by at most a few MiB each.
#[derive(Debug)]
pub struct Allowance {
    space: Space,
    /// Room at the last reading, less what was taken since (None: not read yet, or unwatched
    /// when `since_check` is `u64::MAX`).
    left: Option<u64>,
    since_check: u64,
}

const RECHECK_MIN: u64 = 64 << 10;
const RECHECK_MAX: u64 = 4 << 20;

impl Allowance {
    pub(super) fn new(space: Space) -> Allowance {
        Allowance {
            space,
            left: None,
            since_check: 0,
        }
    }

    /// How many of `n` bytes may be written now.
    pub fn take(&mut self, n: u64) -> u64 {
        if self.since_check == u64::MAX {
            return n;
        }
        let stale = match self.left {
            None => true,
            Some(left) => {
                n > left || self.since_check >= (left / 8).clamp(RECHECK_MIN, RECHECK_MAX)
            }
        };
        if stale {
            match self.space.data_room(true) {
                None => {
                    self.since_check = u64::MAX;
                    return n;
                }
                Some((room, _)) => {
                    self.left = Some(room);
                    self.since_check = 0;
                }
            }
        }
        let left = self.left.unwrap_or(0);
        let took = n.min(left);
        if took < n {
            // This stream used up the room the last reading showed: the next check reads
            // afresh rather than reuse it.
            *self.space.0.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        self.left = Some(left - took);
        self.since_check += took;
        took
    }
}
