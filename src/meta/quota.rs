//! Quota decisions both backends share (`MetaStore::insert`, `set_length`). Each backend
//! serialises the changes of one owner (Postgres: an advisory lock per owner; SQLite: its one
//! writer, in an immediate transaction), reads the figures in the transaction that writes the
//! change, and asks these functions whether the change fits. A refusal rolls the whole
//! transaction back: nothing of the change is written, and the refused upload does not count
//! toward the owner's rate either.

use std::time::Duration;

use crate::domain::access::Owner;
use crate::domain::quota::{Quota, QuotaExceeded};
use crate::domain::upload::Upload;

/// The length of a rate window: fixed minutes of the unix clock.
pub(super) const WINDOW_MS: i64 = 60_000;

/// The owner whose quota an insert of `u` is checked against: none for an upload without an
/// owner, or when no limit is set.
pub(super) fn owner_of<'a>(u: &'a Upload, quota: &Quota) -> Option<&'a Owner> {
    u.owner.as_ref().filter(|_| !quota.is_unlimited())
}

/// When the rate window of an upload created at `now_ms` started.
pub(super) fn window_start(now_ms: i64) -> i64 {
    now_ms.div_euclid(WINDOW_MS) * WINDOW_MS
}

/// With `count` uploads created in the current window, this one included: whether the rate
/// allows it. A refusal says to retry when the window ends, in whole seconds, at least one.
pub(super) fn rate(limit: u64, count: i64, now_ms: i64) -> Result<(), QuotaExceeded> {
    if count.max(0) as u64 <= limit {
        return Ok(());
    }
    let left_ms = window_start(now_ms) + WINDOW_MS - now_ms;
    Err(QuotaExceeded::Rate {
        limit,
        retry_after: Duration::from_secs(((left_ms + 999) / 1000).max(1) as u64),
    })
}

/// With `count` unfinished uploads held: whether one more may start. An upload complete from
/// its creation (an empty one) adds no unfinished upload and is never refused for this.
pub(super) fn unfinished(limit: u64, count: i64, adds_one: bool) -> Result<(), QuotaExceeded> {
    match adds_one && count.max(0) as u64 >= limit {
        true => Err(QuotaExceeded::Unfinished { limit }),
        false => Ok(()),
    }
}

/// With `held` bytes held by the owner's uploads, `adding` more: whether they fit.
pub(super) fn bytes(limit: u64, held: i64, adding: u64) -> Result<(), QuotaExceeded> {
    match (held.max(0) as u64).saturating_add(adding) > limit {
        true => Err(QuotaExceeded::Bytes { limit }),
        false => Ok(()),
    }
}

/// What a new upload adds to its owner's bytes: its length, or what it holds while the length
/// is deferred (the same as the held bytes' `COALESCE(length, offset)`).
pub(super) fn new_bytes(u: &Upload) -> u64 {
    u.length.unwrap_or(u.offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_fixed_minutes_and_retry_after_is_what_is_left_of_one() {
        assert_eq!(window_start(125_500), 120_000);
        assert_eq!(rate(2, 2, 125_500), Ok(()));
        let refused = rate(2, 3, 125_500).unwrap_err();
        assert_eq!(
            refused,
            QuotaExceeded::Rate {
                limit: 2,
                retry_after: Duration::from_secs(55)
            }
        );
        let at_the_end = rate(2, 3, 179_999).unwrap_err();
        assert!(matches!(at_the_end, QuotaExceeded::Rate { retry_after, .. }
            if retry_after == Duration::from_secs(1)));
    }

    #[test]
    fn limits_are_inclusive() {
        assert_eq!(unfinished(2, 1, true), Ok(()));
        assert_eq!(
            unfinished(2, 2, true),
            Err(QuotaExceeded::Unfinished { limit: 2 })
        );
        assert_eq!(unfinished(2, 2, false), Ok(()));
        assert_eq!(bytes(100, 60, 40), Ok(()));
        assert_eq!(bytes(100, 60, 41), Err(QuotaExceeded::Bytes { limit: 100 }));
    }
}
