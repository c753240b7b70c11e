//! Quotas on SQLite: the figures of one owner's uploads, read in the transaction that records
//! the change they limit. The one writer connection runs one transaction at a time, and the
//! transactions that check a quota are immediate (they take the database's write lock when
//! they begin), so no other process's change of the same owner comes in between the check and
//! the write.

use rusqlite::{OptionalExtension, Transaction, params};

use super::ms;
use crate::domain::quota::Quota;
use crate::domain::upload::{Upload, UploadId};
use crate::meta::MetaError;
use crate::meta::quota;

/// How many unfinished uploads `?1` has (read from the index `uploads_owner_quota` alone).
pub(super) const UNFINISHED: &str = "SELECT count(*) FROM uploads
    WHERE owner = ?1 AND state = 'active' AND (length IS NULL OR offset < length)";

/// What `?1`'s active uploads hold: each its length, or its offset while the length is
/// deferred (read from the index `uploads_owner_quota` alone).
pub(super) const HELD: &str = "SELECT coalesce(sum(coalesce(length, offset)), 0) FROM uploads
    WHERE owner = ?1 AND state = 'active'";

/// Whether the owner of the new upload `u` may create it under `quota`, in the insert's
/// transaction, before the insert. Counts `u` toward the owner's rate; a refusal (or any other
/// failure of the insert) rolls that back with the rest.
pub(super) fn admit(tx: &Transaction<'_>, u: &Upload, q: &Quota) -> Result<(), MetaError> {
    let Some(owner) = quota::owner_of(u, q) else {
        return Ok(());
    };
    let owner = owner.as_str();
    if let Some(limit) = q.max_per_minute {
        let now = ms(u.created_at);
        let count = count_in_window(tx, owner, quota::window_start(now))?;
        quota::rate(limit, count, now)?;
    }
    if let Some(limit) = q.max_unfinished {
        let count: i64 = tx
            .prepare_cached(UNFINISHED)?
            .query_row([owner], |r| r.get(0))?;
        quota::unfinished(limit, count, !u.is_complete())?;
    }
    if let Some(limit) = q.max_bytes {
        quota::bytes(limit, held_bytes(tx, owner)?, quota::new_bytes(u))?;
    }
    Ok(())
}

/// Counts one more upload of `owner` in the window that started at `start` and returns the
/// window's count; forgets the owner's earlier windows.
fn count_in_window(tx: &Transaction<'_>, owner: &str, start: i64) -> Result<i64, MetaError> {
    tx.prepare_cached("DELETE FROM owner_rates WHERE owner = ?1 AND window_start_ms < ?2")?
        .execute(params![owner, start])?;
    let count = tx
        .prepare_cached(
            "INSERT INTO owner_rates (owner, window_start_ms, count) VALUES (?1, ?2, 1)
             ON CONFLICT (owner, window_start_ms) DO UPDATE SET count = owner_rates.count + 1
             RETURNING count",
        )?
        .query_row(params![owner, start], |r| r.get(0))?;
    Ok(count)
}

/// Whether the owner of upload `id`, whose length was just set in `tx`, still holds no more
/// than `quota.max_bytes`.
pub(super) fn length_fits(tx: &Transaction<'_>, id: &UploadId, q: &Quota) -> Result<(), MetaError> {
    let Some(limit) = q.max_bytes else {
        return Ok(());
    };
    let owner: Option<String> = tx
        .prepare_cached("SELECT owner FROM uploads WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?
        .flatten();
    match owner {
        // The upload's new length is among the held bytes already.
        Some(owner) => Ok(quota::bytes(limit, held_bytes(tx, &owner)?, 0)?),
        None => Ok(()),
    }
}

fn held_bytes(tx: &Transaction<'_>, owner: &str) -> Result<i64, MetaError> {
    Ok(tx.prepare_cached(HELD)?.query_row([owner], |r| r.get(0))?)
}
