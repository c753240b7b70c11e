//! The contract of media tasks (`domain::task`), which every metadata backend keeps beside its
//! media jobs. A job's tasks live and die with its record: planned under the job's lease,
//! claimed only while the job is open and still waits for that version, dropped when the job
//! is queued again, ends otherwise than READY, or is forgotten.

use std::time::SystemTime;

use async_trait::async_trait;

use super::MetaError;
use crate::domain::task::{MediaTask, TaskOutcome, TaskPlan};
use crate::domain::upload::UploadId;

/// A waiting job's `next_at` (unix ms, 9999-12-31): due only when a task wakes it.
pub(super) const WAITING_MS: i64 = 253_402_300_799_000;

#[async_trait]
pub trait TaskQueue: Send + Sync {
    /// Replaces the tasks of job `id` with `tasks`, in order, all due now, publishing under
    /// `version`, if `owner` holds the job's lease. Returns whether it did. The job then ends
    /// its run with `MediaOutcome::Wait`.
    async fn plan_tasks(
        &self,
        id: &UploadId,
        owner: &str,
        version: &str,
        tasks: &[TaskPlan],
    ) -> Result<bool, MetaError>;

    /// Takes the first task due at `now` (queued, or running under a lease that ran out) of
    /// a job that still waits for it, under a lease of `owner`'s until `lease_until`,
    /// counting an attempt. Older jobs' tasks first.
    async fn claim_task(
        &self,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
    ) -> Result<Option<MediaTask>, MetaError>;

    /// Records a running task's progress and extends its lease, if `owner` still holds it.
    async fn update_task(
        &self,
        id: &UploadId,
        name: &str,
        owner: &str,
        progress: f32,
        lease_until: SystemTime,
    ) -> Result<bool, MetaError>;

    /// Ends `owner`'s run of a task; a task done or failed makes its job due now. Returns
    /// whether `owner` still held it (false: nothing was written).
    async fn end_task(
        &self,
        id: &UploadId,
        name: &str,
        owner: &str,
        outcome: &TaskOutcome,
    ) -> Result<bool, MetaError>;

    /// The tasks of job `id`, in plan order.
    async fn tasks(&self, id: &UploadId) -> Result<Vec<MediaTask>, MetaError>;
}

/// The `media_tasks` columns a task is read from, in `read`'s order.
pub(super) const TASK_COLUMNS: &str = "upload_id, name, seq, version, spec, status, attempts, \
    worker, lease_until, next_at, progress, reason_code, reason, result, updated_at, created_at";

/// The task in row `r` (`TASK_COLUMNS`).
pub(super) fn read(r: &impl super::rows::Cells) -> Result<MediaTask, MetaError> {
    use super::rows::from_ms;
    let corrupt = |what: &str| MetaError::Corrupt(format!("media task: {what}"));
    let text = |i: usize| r.text(i)?.ok_or_else(|| corrupt("a NULL text"));
    let int = |i: usize| r.int(i)?.ok_or_else(|| corrupt("a NULL number"));
    let json = |v: Option<String>| {
        v.map(|v| serde_json::from_str(&v).map_err(|_| corrupt("JSON")))
            .transpose()
    };
    Ok(MediaTask {
        id: UploadId::parse(&text(0)?).ok_or_else(|| corrupt("id"))?,
        name: text(1)?,
        seq: int(2)? as u32,
        version: text(3)?,
        spec: json(Some(text(4)?))?.unwrap_or_default(),
        status: crate::domain::task::TaskStatus::parse(&text(5)?)
            .ok_or_else(|| corrupt("status"))?,
        attempts: int(6)? as u32,
        worker: r.text(7)?,
        lease_until: r.int(8)?.map(from_ms),
        next_at: from_ms(int(9)?),
        progress: r.real(10)?.unwrap_or(0.0) as f32,
        reason_code: r.text(11)?,
        reason: r.text(12)?,
        result: json(r.text(13)?)?,
        updated_at: from_ms(int(14)?),
        created_at: from_ms(int(15)?),
    })
}

/// A task outcome's columns: status, result (JSON), reason code, reason, next_at (ms).
pub(super) fn outcome_columns(
    o: &TaskOutcome,
) -> (
    &'static str,
    Option<String>,
    Option<&str>,
    Option<&str>,
    Option<i64>,
) {
    match o {
        TaskOutcome::Done(v) => ("DONE", Some(v.to_string()), None, None, None),
        TaskOutcome::Retry { code, message, at } => (
            "QUEUED",
            None,
            Some(code),
            Some(message),
            Some(super::rows::ms(*at)),
        ),
        TaskOutcome::Failed { code, message } => ("FAILED", None, Some(code), Some(message), None),
    }
}
