//! Media tasks (`meta::TaskQueue`) in Postgres: claimed by slots on any node with
//! `FOR UPDATE SKIP LOCKED` under a lease; planning one and settling one tell every node.

use std::time::SystemTime;

use async_trait::async_trait;

use super::{PgMeta, notify};
use crate::domain::event::Work;
use crate::domain::task::{MediaTask, TaskOutcome, TaskPlan};
use crate::domain::upload::UploadId;
use crate::meta::MetaError;
use crate::meta::rows::{OPEN_STATUSES, ms};
use crate::meta::tasks::{TASK_COLUMNS, TaskQueue, outcome_columns, read};

#[async_trait]
impl TaskQueue for PgMeta {
    async fn plan_tasks(
        &self,
        id: &UploadId,
        owner: &str,
        version: &str,
        tasks: &[TaskPlan],
    ) -> Result<bool, MetaError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let now = ms(SystemTime::now());
        let held = tx
            .query_opt(
                &format!(
                    "SELECT 1 FROM media WHERE id = $1 AND lease_owner = $2
                       AND status IN {OPEN_STATUSES} FOR UPDATE"
                ),
                &[&id.as_str(), &owner],
            )
            .await?
            .is_some();
        if !held {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM media_tasks WHERE upload_id = $1",
            &[&id.as_str()],
        )
        .await?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO media_tasks (upload_id, name, seq, version, spec, status, next_at,
                    created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 'QUEUED', $6, $6, $6)",
            )
            .await?;
        for (seq, t) in tasks.iter().enumerate() {
            let seq = seq as i32;
            tx.execute(
                &insert,
                &[
                    &id.as_str(),
                    &t.name,
                    &seq,
                    &version,
                    &t.spec.to_string(),
                    &now,
                ],
            )
            .await?;
        }
        notify(&tx, Work::MediaJobs).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn claim_task(
        &self,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
    ) -> Result<Option<MediaTask>, MetaError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "UPDATE media_tasks SET status = 'RUNNING', lease_owner = $1, worker = $1,
                    lease_until = $3, attempts = attempts + 1, updated_at = $2
                 WHERE (upload_id, name) = (
                    SELECT t.upload_id, t.name FROM media_tasks t JOIN media m ON m.id = t.upload_id
                    WHERE ((t.status = 'QUEUED' AND t.next_at <= $2)
                           OR (t.status = 'RUNNING' AND t.lease_until < $2))
                      AND m.status IN ('PROCESSING', 'PLAYABLE')
                      AND m.pending_version = t.version
                    ORDER BY t.next_at, t.created_at, t.seq LIMIT 1
                    FOR UPDATE OF t SKIP LOCKED)
                   AND (status = 'QUEUED' OR lease_until < $2)
                 RETURNING {TASK_COLUMNS}"
            ))
            .await?;
        c.query_opt(&stmt, &[&owner, &ms(now), &ms(lease_until)])
            .await?
            .map(|r| read(&r))
            .transpose()
    }

    async fn update_task(
        &self,
        id: &UploadId,
        name: &str,
        owner: &str,
        progress: f32,
        lease_until: SystemTime,
    ) -> Result<bool, MetaError> {
        let n = self
            .exec(
                "UPDATE media_tasks SET progress = $4, lease_until = $5, updated_at = $6
                 WHERE upload_id = $1 AND name = $2 AND lease_owner = $3 AND status = 'RUNNING'",
                &[
                    &id.as_str(),
                    &name,
                    &owner,
                    &f64::from(progress),
                    &ms(lease_until),
                    &ms(SystemTime::now()),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn end_task(
        &self,
        id: &UploadId,
        name: &str,
        owner: &str,
        outcome: &TaskOutcome,
    ) -> Result<bool, MetaError> {
        let (status, result, code, reason, at) = outcome_columns(outcome);
        let now = ms(SystemTime::now());
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "UPDATE media_tasks SET status = $4, result = $5, reason_code = $6, reason = $7,
                    next_at = coalesce($8, next_at),
                    progress = CASE WHEN $4::TEXT = 'DONE' THEN 100 ELSE progress END,
                    lease_owner = NULL, lease_until = NULL, updated_at = $9
                 WHERE upload_id = $1 AND name = $2 AND lease_owner = $3 AND status = 'RUNNING'",
                &[
                    &id.as_str(),
                    &name,
                    &owner,
                    &status,
                    &result,
                    &code,
                    &reason,
                    &at,
                    &now,
                ],
            )
            .await?;
        if n == 1 && status != "QUEUED" {
            // The job assembles what is done, on whichever node claims it.
            tx.execute(
                &format!(
                    "UPDATE media SET next_at = $2 WHERE id = $1 AND status IN {OPEN_STATUSES}
                       AND next_at > $2"
                ),
                &[&id.as_str(), &now],
            )
            .await?;
            notify(&tx, Work::MediaJobs).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn tasks(&self, id: &UploadId) -> Result<Vec<MediaTask>, MetaError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {TASK_COLUMNS} FROM media_tasks WHERE upload_id = $1 ORDER BY seq"
                ),
                &[&id.as_str()],
            )
            .await?;
        rows.iter().map(read).collect()
    }
}
