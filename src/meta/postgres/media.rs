//! Media jobs and records in Postgres: queued in the transaction that finishes the upload,
//! claimed by workers on any node with `FOR UPDATE SKIP LOCKED` under a lease, updated under
//! that lease, ended with the events the outcome causes.

use super::Db;
use crate::domain::event::Work;
use crate::domain::media::{MediaOutcome, MediaRecord, MediaUpdate, Takes};
use crate::domain::upload::UploadId;
use crate::meta::MetaError;
use crate::meta::rows::{MEDIA_COLUMNS, MediaRow, OPEN_STATUSES, ms, to_json};
use crate::meta::tasks::WAITING_MS;

/// Queues the job of upload `id`, held, unless it has one; the upload core asked for it with
/// the change that finished the upload (`Effects::media_job`). The record takes the upload's
/// owner.
pub(super) async fn enqueue(c: &impl Db, id: &UploadId, now: i64) -> Result<(), MetaError> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO media (id, status, held, next_at, length, created_at, updated_at, owner)
             SELECT id, 'RECEIVED', true, $2, \"offset\", $2, $2, owner FROM uploads
             WHERE id = $1
             ON CONFLICT (id) DO NOTHING",
        )
        .await?;
    c.execute(&stmt, &[&id.as_str(), &now]).await?;
    Ok(())
}

fn row(r: &tokio_postgres::Row) -> Result<MediaRecord, MetaError> {
    MediaRow::read(r, 0)?.into_record()
}

pub(super) async fn get(c: &impl Db, id: &UploadId) -> Result<Option<MediaRecord>, MetaError> {
    let stmt = c
        .prepare_cached(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE id = $1"))
        .await?;
    c.query_opt(&stmt, &[&id.as_str()])
        .await?
        .map(|r| row(&r))
        .transpose()
}

/// Takes the oldest due job that nobody holds a live lease on; a claim running at the same
/// time on another node skips it.
pub(super) async fn claim(
    c: &impl Db,
    owner: &str,
    takes: Takes,
    now: i64,
    lease_until: i64,
) -> Result<Option<MediaRecord>, MetaError> {
    // Fast work first ($5: the largest upload that is); fast-only slots take nothing else.
    let fast = "(lane = 'fast' AND length <= $5)";
    let stmt = c
        .prepare_cached(&format!(
            "UPDATE media SET lease_owner = $1, lease_until = $3, attempts = attempts + 1,
                updated_at = $2
             WHERE id = (SELECT id FROM media
                         WHERE NOT held AND status IN {OPEN_STATUSES} AND next_at <= $2
                           AND (lease_until IS NULL OR lease_until < $2)
                           AND ($4 OR {fast})
                         ORDER BY {fast} DESC, next_at LIMIT 1
                         FOR UPDATE SKIP LOCKED)
               AND (lease_until IS NULL OR lease_until < $2)
             RETURNING {MEDIA_COLUMNS}"
        ))
        .await?;
    let fast_max = i64::try_from(takes.fast_max_bytes).unwrap_or(i64::MAX);
    c.query_opt(&stmt, &[&owner, &now, &lease_until, &takes.slow, &fast_max])
        .await?
        .map(|r| row(&r))
        .transpose()
}

pub(super) async fn update(
    c: &impl Db,
    id: &UploadId,
    owner: &str,
    u: &MediaUpdate,
    now: i64,
) -> Result<bool, MetaError> {
    let stmt = c
        .prepare_cached(&format!(
            "UPDATE media SET status = coalesce($3, status), progress = coalesce($4, progress),
                detected = coalesce($5, detected), probe = coalesce($6, probe),
                pending_version = coalesce($7, pending_version),
                lease_until = coalesce($8, lease_until), updated_at = $9,
                scan = coalesce($10, scan), published = coalesce($11, published)
             WHERE id = $1 AND lease_owner = $2 AND status IN {OPEN_STATUSES}"
        ))
        .await?;
    let n = c
        .execute(
            &stmt,
            &[
                &id.as_str(),
                &owner,
                &u.status.map(|s| s.as_str()),
                &u.progress.map(f64::from),
                &u.detected,
                &to_json(&u.probe),
                &u.pending_version,
                &u.lease_until.map(ms),
                &now,
                &to_json(&u.scan),
                &to_json(&u.published),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Ends a run of `owner`'s (see the SQLite twin); the row stays locked until the transaction
/// ends, so a claim elsewhere cannot take it half-way.
pub(super) async fn done(
    tx: &impl Db,
    id: &UploadId,
    owner: &str,
    outcome: &MediaOutcome,
    now: i64,
) -> Result<Option<MediaRecord>, MetaError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {MEDIA_COLUMNS} FROM media
             WHERE id = $1 AND lease_owner = $2 AND status IN {OPEN_STATUSES} FOR UPDATE"
        ))
        .await?;
    let before = match tx.query_opt(&stmt, &[&id.as_str(), &owner]).await? {
        Some(r) => row(&r)?,
        None => return Ok(None),
    };
    let set = "lease_owner = NULL, lease_until = NULL, pending_version = NULL, updated_at = $2";
    let id = id.as_str();
    match outcome {
        MediaOutcome::Ready(published) => {
            let json = to_json(&Some(published));
            tx.execute(
                &format!(
                    "UPDATE media SET status = 'READY', progress = 100, reason_code = NULL,
                        reason = NULL, published = $3, {set} WHERE id = $1"
                ),
                &[&id, &now, &json],
            )
            .await?;
        }
        MediaOutcome::Rejected {
            code,
            message,
            forget_upload,
        } => {
            terminal(tx, id, "REJECTED", code, message, now).await?;
            if *forget_upload {
                tx.execute("DELETE FROM uploads WHERE id = $1", &[&id])
                    .await?;
            }
        }
        MediaOutcome::Failed { code, message } => {
            terminal(tx, id, "FAILED", code, message, now).await?;
        }
        MediaOutcome::Retry { code, message, at } => {
            tx.execute(
                &format!(
                    "UPDATE media SET status = 'RECEIVED', progress = 0, reason_code = $3,
                        reason = $4, next_at = $5, {set} WHERE id = $1"
                ),
                &[&id, &now, code, message, &ms(*at)],
            )
            .await?;
        }
        MediaOutcome::Handoff => {
            tx.execute(
                &format!(
                    "UPDATE media SET lane = 'slow', attempts = greatest(attempts - 1, 0),
                        progress = 0, next_at = $2, {set} WHERE id = $1"
                ),
                &[&id, &now],
            )
            .await?;
            // General slots on any node take it.
            super::notify(tx, Work::MediaJobs).await?;
        }
        MediaOutcome::Wait { settled } => wait(tx, id, *settled, now).await?,
    }
    if outcome.drops_tasks() {
        // The job's tasks still to run: their slots lose their leases and stop.
        tx.execute(
            "DELETE FROM media_tasks WHERE upload_id = $1 AND status IN ('QUEUED', 'RUNNING')",
            &[&id],
        )
        .await?;
    }
    Ok(Some(before))
}

/// Leaves a job waiting for its tasks (see the SQLite twin).
async fn wait(tx: &impl Db, id: &str, settled: u32, now: i64) -> Result<(), MetaError> {
    tx.execute(
        "UPDATE media SET attempts = greatest(attempts - 1, 0), lease_owner = NULL,
            lease_until = NULL, updated_at = $2,
            next_at = CASE WHEN (SELECT count(*) FROM media_tasks
                                 WHERE upload_id = $1 AND status IN ('DONE', 'FAILED'))
                                = $3 THEN $4::BIGINT ELSE $2::BIGINT END
         WHERE id = $1",
        &[&id, &now, &i64::from(settled), &WAITING_MS],
    )
    .await?;
    Ok(())
}

async fn terminal(
    tx: &impl Db,
    id: &str,
    status: &str,
    code: &str,
    message: &str,
    now: i64,
) -> Result<(), MetaError> {
    tx.execute(
        "UPDATE media SET status = $3, reason_code = $4, reason = $5, lease_owner = NULL,
            lease_until = NULL, updated_at = $2 WHERE id = $1",
        &[&id, &now, &status, &code, &message],
    )
    .await?;
    Ok(())
}

pub(super) async fn list(c: &impl Db, failed_only: bool) -> Result<Vec<MediaRecord>, MetaError> {
    let filter = if failed_only {
        "WHERE status = 'FAILED'"
    } else {
        ""
    };
    let rows = c
        .query(
            &format!("SELECT {MEDIA_COLUMNS} FROM media {filter} ORDER BY created_at, id"),
            &[],
        )
        .await?;
    rows.iter().map(row).collect()
}

pub(super) async fn retry(c: &impl Db, id: &UploadId, now: i64) -> Result<bool, MetaError> {
    let n = c
        .execute(
            "UPDATE media SET status = 'RECEIVED', attempts = 0, next_at = $2, progress = 0,
                reason_code = NULL, reason = NULL, updated_at = $2
             WHERE id = $1 AND NOT held
               AND (status IN ('READY', 'REJECTED', 'FAILED')
                    OR (status = 'RECEIVED' AND lease_owner IS NULL))",
            &[&id.as_str(), &now],
        )
        .await?;
    if n == 1 {
        c.execute(
            "DELETE FROM media_tasks WHERE upload_id = $1",
            &[&id.as_str()],
        )
        .await?;
        super::notify(c, Work::MediaJobs).await?;
    }
    Ok(n == 1)
}
