//! Quotas on Postgres: the changes of one owner are serialised across every node by a
//! transaction-scoped advisory lock on a hash of the owner, taken before the figures are read;
//! the figures are read in the transaction that records the change (read committed: each
//! statement sees what the lock's previous holder committed).

use super::Db;
use crate::domain::quota::Quota;
use crate::domain::upload::{Upload, UploadId};
use crate::meta::MetaError;
use crate::meta::quota;
use crate::meta::rows::ms;

/// How many unfinished uploads `$1` has (read from the index `uploads_owner_quota`).
pub(super) const UNFINISHED: &str = "SELECT count(*) FROM uploads
    WHERE owner = $1 AND state = 'active' AND (length IS NULL OR \"offset\" < length)";

/// What `$1`'s active uploads hold: each its length, or its offset while the length is
/// deferred (read from the index `uploads_owner_quota`).
pub(super) const HELD: &str = "SELECT coalesce(sum(coalesce(length, \"offset\")), 0)::BIGINT
    FROM uploads WHERE owner = $1 AND state = 'active'";

/// The first key of the owners' advisory locks ("quot"), so that they are apart from every
/// other advisory lock (the migrations' takes one 64-bit key, a space of its own).
const OWNER_LOCKS: i32 = 0x71_75_6f_74;

/// Waits for, and holds until `tx` ends, the lock of `owner`'s quota. Two owners whose names
/// hash alike share a lock: they only wait for each other.
async fn lock(tx: &impl Db, owner: &str) -> Result<(), MetaError> {
    let stmt = tx
        .prepare_cached("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .await?;
    tx.execute(&stmt, &[&OWNER_LOCKS, &owner]).await?;
    Ok(())
}

/// Whether the owner of the new upload `u` may create it under `q`, in the insert's
/// transaction, before the insert: takes the owner's lock, then counts `u` toward the owner's
/// rate (a refusal, or any other failure of the insert, rolls that back with the rest).
pub(super) async fn admit(tx: &impl Db, u: &Upload, q: &Quota) -> Result<(), MetaError> {
    let Some(owner) = quota::owner_of(u, q) else {
        return Ok(());
    };
    let owner = owner.as_str();
    lock(tx, owner).await?;
    if let Some(limit) = q.max_per_minute {
        let now = ms(u.created_at);
        let count = count_in_window(tx, owner, quota::window_start(now)).await?;
        quota::rate(limit, count, now)?;
    }
    if let Some(limit) = q.max_unfinished {
        let stmt = tx.prepare_cached(UNFINISHED).await?;
        let count: i64 = tx.query_one(&stmt, &[&owner]).await?.try_get(0)?;
        quota::unfinished(limit, count, !u.is_complete())?;
    }
    if let Some(limit) = q.max_bytes {
        quota::bytes(limit, held_bytes(tx, owner).await?, quota::new_bytes(u))?;
    }
    Ok(())
}

/// Counts one more upload of `owner` in the window that started at `start` and returns the
/// window's count; forgets the owner's earlier windows.
async fn count_in_window(tx: &impl Db, owner: &str, start: i64) -> Result<i64, MetaError> {
    let forget = tx
        .prepare_cached("DELETE FROM owner_rates WHERE owner = $1 AND window_start_ms < $2")
        .await?;
    tx.execute(&forget, &[&owner, &start]).await?;
    let count = tx
        .prepare_cached(
            "INSERT INTO owner_rates (owner, window_start_ms, count) VALUES ($1, $2, 1)
             ON CONFLICT (owner, window_start_ms) DO UPDATE SET count = owner_rates.count + 1
             RETURNING count",
        )
        .await?;
    Ok(tx.query_one(&count, &[&owner, &start]).await?.try_get(0)?)
}

/// The owner of upload `id` if `q` limits its bytes: the owner whose lock `set_length` takes
/// before it changes the length.
pub(super) async fn length_owner(
    tx: &impl Db,
    id: &UploadId,
    q: &Quota,
) -> Result<Option<String>, MetaError> {
    if q.max_bytes.is_none() {
        return Ok(None);
    }
    let stmt = tx
        .prepare_cached("SELECT owner FROM uploads WHERE id = $1")
        .await?;
    let owner: Option<String> = match tx.query_opt(&stmt, &[&id.as_str()]).await? {
        Some(r) => r.try_get(0)?,
        None => None,
    };
    if let Some(owner) = &owner {
        lock(tx, owner).await?;
    }
    Ok(owner)
}

/// Whether `owner`, one of whose uploads just had its length set in `tx`, still holds no more
/// than `q.max_bytes` (its lock taken by `length_owner`).
pub(super) async fn length_fits(tx: &impl Db, owner: &str, q: &Quota) -> Result<(), MetaError> {
    let Some(limit) = q.max_bytes else {
        return Ok(());
    };
    // The upload's new length is among the held bytes already.
    Ok(quota::bytes(limit, held_bytes(tx, owner).await?, 0)?)
}

/// What `owner`'s active uploads hold: each its length, or its offset while the length is
/// deferred.
async fn held_bytes(tx: &impl Db, owner: &str) -> Result<i64, MetaError> {
    let stmt = tx.prepare_cached(HELD).await?;
    Ok(tx.query_one(&stmt, &[&owner]).await?.try_get(0)?)
}
