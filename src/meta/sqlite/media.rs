//! Media jobs and records in SQLite (`media`): a job is written in the transaction that
//! finishes its upload (`enqueue`), claimed with a lease by a worker, updated under
//! that lease, and ended with the events its outcome causes.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::ms;
use crate::domain::media::{MediaOutcome, MediaRecord, MediaUpdate, Takes};
use crate::domain::upload::UploadId;
use crate::meta::MetaError;
use crate::meta::rows::{MediaRow, to_json};
use crate::meta::tasks::WAITING_MS;

const COLUMNS: &str = crate::meta::rows::MEDIA_COLUMNS;
const OPEN: &str = crate::meta::rows::OPEN_STATUSES;
/// A job is fast work (`?5`: the largest upload that is).
const FAST: &str = "(lane = 'fast' AND length <= ?5)";

/// Queues the job of upload `id`, held, unless it has one; the upload core asked for it with
/// the change that finished the upload (`Effects::media_job`). The record takes the upload's
/// owner.
pub(super) fn enqueue(tx: &Transaction<'_>, id: &UploadId, now: i64) -> Result<(), MetaError> {
    tx.prepare_cached(
        "INSERT INTO media (id, status, held, next_at, length, created_at, updated_at, owner)
         SELECT id, 'RECEIVED', 1, ?2, offset, ?2, ?2, owner FROM uploads
         WHERE id = ?1
         ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![id.as_str(), now])?;
    Ok(())
}

pub(super) fn release(c: &Connection, upload: Option<&UploadId>) -> Result<(), MetaError> {
    match upload {
        Some(u) => c.execute(
            "UPDATE media SET held = 0 WHERE id = ?1 AND held = 1",
            [u.as_str()],
        )?,
        None => c.execute("UPDATE media SET held = 0 WHERE held = 1", [])?,
    };
    Ok(())
}

pub(super) fn held_before(
    c: &Connection,
    before: i64,
    limit: usize,
) -> Result<Vec<UploadId>, MetaError> {
    let mut stmt = c.prepare_cached(
        "SELECT id FROM media WHERE held = 1 AND created_at <= ?1 ORDER BY id LIMIT ?2",
    )?;
    let ids = stmt
        .query_map(params![before, limit as i64], |r| r.get::<_, String>(0))?
        .filter_map(|r| r.ok().and_then(|s| UploadId::parse(&s)))
        .collect();
    Ok(ids)
}

fn row(r: &Row<'_>) -> rusqlite::Result<Result<MediaRecord, MetaError>> {
    Ok(MediaRow::read(r, 0).and_then(MediaRow::into_record))
}

pub(super) fn get(c: &Connection, id: &UploadId) -> Result<Option<MediaRecord>, MetaError> {
    let mut stmt = c.prepare_cached(&format!("SELECT {COLUMNS} FROM media WHERE id = ?1"))?;
    stmt.query_row([id.as_str()], row).optional()?.transpose()
}

/// Takes the oldest due job that nobody holds a live lease on, of those `takes` allows: fast
/// work first.
pub(super) fn claim(
    c: &Connection,
    owner: &str,
    takes: Takes,
    now: i64,
    lease_until: i64,
) -> Result<Option<MediaRecord>, MetaError> {
    let mut stmt = c.prepare_cached(&format!(
        "UPDATE media SET lease_owner = ?1, lease_until = ?3, attempts = attempts + 1,
            updated_at = ?2
         WHERE id = (SELECT id FROM media INDEXED BY media_due
                     WHERE held = 0 AND status IN {OPEN} AND next_at <= ?2
                       AND (lease_until IS NULL OR lease_until < ?2)
                       AND (?4 OR {FAST})
                     ORDER BY {FAST} DESC, next_at LIMIT 1)
         RETURNING {COLUMNS}"
    ))?;
    stmt.query_row(
        params![
            owner,
            now,
            lease_until,
            takes.slow,
            i64::try_from(takes.fast_max_bytes).unwrap_or(i64::MAX)
        ],
        row,
    )
    .optional()?
    .transpose()
}

/// Records what a run found or where it is, if `owner` still holds the job's lease.
pub(super) fn update(
    c: &Connection,
    id: &UploadId,
    owner: &str,
    u: &MediaUpdate,
    now: i64,
) -> Result<bool, MetaError> {
    let probe = to_json(&u.probe);
    let scan = to_json(&u.scan);
    let published = to_json(&u.published);
    let n = c
        .prepare_cached(&format!(
            "UPDATE media SET status = coalesce(?3, status), progress = coalesce(?4, progress),
                detected = coalesce(?5, detected), probe = coalesce(?6, probe),
                pending_version = coalesce(?7, pending_version),
                lease_until = coalesce(?8, lease_until), updated_at = ?9,
                scan = coalesce(?10, scan), published = coalesce(?11, published)
             WHERE id = ?1 AND lease_owner = ?2 AND status IN {OPEN}"
        ))?
        .execute(params![
            id.as_str(),
            owner,
            u.status.map(|s| s.as_str()),
            u.progress.map(f64::from),
            u.detected,
            probe,
            u.pending_version,
            u.lease_until.map(ms),
            now,
            scan,
            published
        ])?;
    Ok(n == 1)
}

/// Ends a run of `owner`'s. Returns the record as it was before, or None if the lease was lost
/// (another worker took the job over, or the upload was terminated).
pub(super) fn done(
    tx: &Transaction<'_>,
    id: &UploadId,
    owner: &str,
    outcome: &MediaOutcome,
    now: i64,
) -> Result<Option<MediaRecord>, MetaError> {
    let before = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM media WHERE id = ?1 AND lease_owner = ?2 AND status IN {OPEN}"
        ))?;
        match stmt
            .query_row(params![id.as_str(), owner], row)
            .optional()?
        {
            Some(r) => r?,
            None => return Ok(None),
        }
    };
    let set = "lease_owner = NULL, lease_until = NULL, pending_version = NULL, updated_at = ?2";
    match outcome {
        MediaOutcome::Ready(published) => {
            let json = serde_json::to_string(published).expect("outputs serialise");
            tx.execute(
                &format!(
                    "UPDATE media SET status = 'READY', progress = 100, reason_code = NULL,
                        reason = NULL, published = ?3, {set} WHERE id = ?1"
                ),
                params![id.as_str(), now, json],
            )?;
        }
        MediaOutcome::Rejected {
            code,
            message,
            forget_upload,
        } => {
            terminal(tx, id, "REJECTED", code, message, now)?;
            if *forget_upload {
                tx.execute("DELETE FROM uploads WHERE id = ?1", [id.as_str()])?;
            }
        }
        MediaOutcome::Failed { code, message } => {
            terminal(tx, id, "FAILED", code, message, now)?;
        }
        MediaOutcome::Retry { code, message, at } => {
            tx.execute(
                &format!(
                    "UPDATE media SET status = 'RECEIVED', progress = 0, reason_code = ?3,
                        reason = ?4, next_at = ?5, {set} WHERE id = ?1"
                ),
                params![id.as_str(), now, code, message, ms(*at)],
            )?;
        }
        MediaOutcome::Handoff => {
            tx.execute(
                &format!(
                    "UPDATE media SET lane = 'slow', attempts = max(attempts - 1, 0),
                        progress = 0, next_at = ?2, {set} WHERE id = ?1"
                ),
                params![id.as_str(), now],
            )?;
        }
        MediaOutcome::Wait { settled } => wait(tx, id, *settled, now)?,
    }
    if outcome.drops_tasks() {
        // The job's tasks still to run: their slots lose their leases and stop.
        tx.execute(
            "DELETE FROM media_tasks WHERE upload_id = ?1 AND status IN ('QUEUED', 'RUNNING')",
            [id.as_str()],
        )?;
    }
    Ok(Some(before))
}

/// Leaves a job waiting for its tasks: due again at once if a task settled after the run
/// counted `settled` of them.
fn wait(tx: &Transaction<'_>, id: &UploadId, settled: u32, now: i64) -> Result<(), MetaError> {
    tx.execute(
        "UPDATE media SET attempts = max(attempts - 1, 0), lease_owner = NULL,
            lease_until = NULL, updated_at = ?2,
            next_at = CASE WHEN (SELECT count(*) FROM media_tasks
                                 WHERE upload_id = ?1 AND status IN ('DONE', 'FAILED'))
                                = ?3 THEN ?4 ELSE ?2 END
         WHERE id = ?1",
        params![id.as_str(), now, i64::from(settled), WAITING_MS],
    )?;
    Ok(())
}

fn terminal(
    tx: &Transaction<'_>,
    id: &UploadId,
    status: &str,
    code: &str,
    message: &str,
    now: i64,
) -> Result<(), MetaError> {
    tx.execute(
        "UPDATE media SET status = ?3, reason_code = ?4, reason = ?5, lease_owner = NULL,
            lease_until = NULL, updated_at = ?2 WHERE id = ?1",
        params![id.as_str(), now, status, code, message],
    )?;
    Ok(())
}

pub(super) fn list(c: &Connection, failed_only: bool) -> Result<Vec<MediaRecord>, MetaError> {
    let filter = if failed_only {
        "WHERE status = 'FAILED'"
    } else {
        ""
    };
    let mut stmt = c.prepare(&format!(
        "SELECT {COLUMNS} FROM media {filter} ORDER BY created_at, id"
    ))?;
    stmt.query_map([], row)?.map(|r| r?).collect()
}

/// Queues a job again, attempts reset, unless it is running. Returns whether it did.
pub(super) fn retry(c: &Connection, id: &UploadId, now: i64) -> Result<bool, MetaError> {
    let n = c.execute(
        "UPDATE media SET status = 'RECEIVED', attempts = 0, next_at = ?2, progress = 0,
            reason_code = NULL, reason = NULL, updated_at = ?2
         WHERE id = ?1 AND held = 0
           AND (status IN ('READY', 'REJECTED', 'FAILED')
                OR (status = 'RECEIVED' AND lease_owner IS NULL))",
        params![id.as_str(), now],
    )?;
    if n == 1 {
        c.execute(
            "DELETE FROM media_tasks WHERE upload_id = ?1",
            [id.as_str()],
        )?;
    }
    Ok(n == 1)
}

pub(super) fn forget(tx: &Transaction<'_>, id: &UploadId) -> Result<(), MetaError> {
    tx.execute(
        "DELETE FROM media_tasks WHERE upload_id = ?1",
        [id.as_str()],
    )?;
    tx.execute("DELETE FROM media WHERE id = ?1", [id.as_str()])?;
    Ok(())
}
