//! Media tasks (`meta::TaskQueue`) in SQLite: the `media_tasks` table beside the jobs.

use std::time::SystemTime;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{SqliteMeta, ms};
use crate::domain::task::{MediaTask, TaskOutcome, TaskPlan};
use crate::domain::upload::UploadId;
use crate::meta::MetaError;
use crate::meta::rows::OPEN_STATUSES;
use crate::meta::tasks::{TASK_COLUMNS, TaskQueue, outcome_columns, read};

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<MediaTask, MetaError>> {
    Ok(read(r))
}

#[async_trait]
impl TaskQueue for SqliteMeta {
    async fn plan_tasks(
        &self,
        id: &UploadId,
        owner: &str,
        version: &str,
        tasks: &[TaskPlan],
    ) -> Result<bool, MetaError> {
        let (id, owner, version, tasks) = (
            id.clone(),
            owner.to_owned(),
            version.to_owned(),
            tasks.to_vec(),
        );
        self.write(move |c| {
            let now = ms(SystemTime::now());
            let tx = c.transaction()?;
            let held = tx
                .prepare_cached(&format!(
                    "SELECT 1 FROM media WHERE id = ?1 AND lease_owner = ?2 AND status IN {OPEN_STATUSES}"
                ))?
                .exists(params![id.as_str(), owner])?;
            if !held {
                return Ok(false);
            }
            tx.execute("DELETE FROM media_tasks WHERE upload_id = ?1", [id.as_str()])?;
            for (seq, t) in tasks.iter().enumerate() {
                tx.prepare_cached(
                    "INSERT INTO media_tasks (upload_id, name, seq, version, spec, status,
                        next_at, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'QUEUED', ?6, ?6, ?6)",
                )?
                .execute(params![
                    id.as_str(),
                    t.name,
                    seq as i64,
                    version,
                    t.spec.to_string(),
                    now
                ])?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn claim_task(
        &self,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
    ) -> Result<Option<MediaTask>, MetaError> {
        let owner = owner.to_owned();
        self.write(move |c| {
            c.prepare_cached(&format!(
                "UPDATE media_tasks SET status = 'RUNNING', lease_owner = ?1, worker = ?1,
                    lease_until = ?3, attempts = attempts + 1, updated_at = ?2
                 WHERE rowid = (
                    SELECT t.rowid FROM media_tasks t JOIN media m ON m.id = t.upload_id
                    WHERE ((t.status = 'QUEUED' AND t.next_at <= ?2)
                           OR (t.status = 'RUNNING' AND t.lease_until < ?2))
                      AND m.status IN ('PROCESSING', 'PLAYABLE')
                      AND m.pending_version = t.version
                    ORDER BY t.next_at, t.created_at, t.seq LIMIT 1)
                 RETURNING {TASK_COLUMNS}"
            ))?
            .query_row(params![owner, ms(now), ms(lease_until)], row)
            .optional()?
            .transpose()
        })
        .await
    }

    async fn update_task(
        &self,
        id: &UploadId,
        name: &str,
        owner: &str,
        progress: f32,
        lease_until: SystemTime,
    ) -> Result<bool, MetaError> {
        let (id, name, owner) = (id.clone(), name.to_owned(), owner.to_owned());
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE media_tasks SET progress = ?4, lease_until = ?5, updated_at = ?6
                     WHERE upload_id = ?1 AND name = ?2 AND lease_owner = ?3
                       AND status = 'RUNNING'",
                )?
                .execute(params![
                    id.as_str(),
                    name,
                    owner,
                    f64::from(progress),
                    ms(lease_until),
                    ms(SystemTime::now())
                ])?;
            Ok(n == 1)
        })
        .await
    }

    async fn end_task(
        &self,
        id: &UploadId,
        name: &str,
        owner: &str,
        outcome: &TaskOutcome,
    ) -> Result<bool, MetaError> {
        let (id, name, owner, outcome) = (
            id.clone(),
            name.to_owned(),
            owner.to_owned(),
            outcome.clone(),
        );
        self.write(move |c| {
            let now = ms(SystemTime::now());
            let (status, result, code, reason, at) = outcome_columns(&outcome);
            let tx = c.transaction()?;
            let n = tx
                .prepare_cached(
                    "UPDATE media_tasks SET status = ?4, result = ?5, reason_code = ?6,
                        reason = ?7, next_at = coalesce(?8, next_at),
                        progress = CASE WHEN ?4 = 'DONE' THEN 100 ELSE progress END,
                        lease_owner = NULL, lease_until = NULL, updated_at = ?9
                     WHERE upload_id = ?1 AND name = ?2 AND lease_owner = ?3
                       AND status = 'RUNNING'",
                )?
                .execute(params![
                    id.as_str(),
                    name,
                    owner,
                    status,
                    result,
                    code,
                    reason,
                    at,
                    now
                ])?;
            if n == 1 && status != "QUEUED" {
                // The job assembles what is done.
                tx.prepare_cached(&format!(
                    "UPDATE media SET next_at = ?2 WHERE id = ?1 AND status IN {OPEN_STATUSES}
                       AND next_at > ?2"
                ))?
                .execute(params![id.as_str(), now])?;
            }
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn tasks(&self, id: &UploadId) -> Result<Vec<MediaTask>, MetaError> {
        let id = id.clone();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM media_tasks WHERE upload_id = ?1 ORDER BY seq"
            ))?;
            stmt.query_map([id.as_str()], row)?.map(|r| r?).collect()
        })
        .await
    }
}
