//! A media job's tasks: shares of a video's work (the lowest rendition with the stills and
//! the sound, then the upper renditions' chunks) that any slot taking slow work claims on its own, on any node, under a lease of
//! its own, with attempts of its own. The job plans them and waits; each task publishes its
//! files under the job's pending version; when a task ends, the job is due again and a slot
//! assembles what is done (the playable master, then the master and READY). A failed task
//! fails the job; a task that fails in passing is tried again alone.
//!
//! What a task does (`spec`) and what it left (`result`) are the media layer's JSON: the store
//! keeps them and does not read them.

use std::time::SystemTime;

use crate::domain::upload::UploadId;

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Waiting for a slot (at first, or after a passing failure, from `next_at`).
    Queued,
    /// Claimed, under a lease that may have run out (a dead worker's is claimed again).
    Running,
    Done,
    /// Failed for good; the job fails with it.
    Failed,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "QUEUED",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Done => "DONE",
            TaskStatus::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        Some(match s {
            "QUEUED" => TaskStatus::Queued,
            "RUNNING" => TaskStatus::Running,
            "DONE" => TaskStatus::Done,
            "FAILED" => TaskStatus::Failed,
            _ => return None,
        })
    }

    /// Done or failed: nothing more happens to it.
    pub fn settled(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Failed)
    }
}

/// One task as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaTask {
    /// The upload (and media job) it belongs to.
    pub id: UploadId,
    /// Unique within the job (e.g. `360p`, `chunk2 0:30-1:00`).
    pub name: String,
    /// Its place in the job's plan: claimed in this order.
    pub seq: u32,
    /// The job's version its outputs are published under.
    pub version: String,
    pub spec: serde_json::Value,
    pub status: TaskStatus,
    /// Claims so far.
    pub attempts: u32,
    /// The lease owner of the last claim: the slot (host and process) that ran it last.
    pub worker: Option<String>,
    pub lease_until: Option<SystemTime>,
    pub next_at: SystemTime,
    /// Percent.
    pub progress: f32,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub result: Option<serde_json::Value>,
    pub updated_at: SystemTime,
    /// When the job planned it.
    pub created_at: SystemTime,
}

/// A task as a job plans it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPlan {
    pub name: String,
    pub spec: serde_json::Value,
}

/// How a run of a task ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    Done(serde_json::Value),
    /// A passing failure: queued again from `at`.
    Retry {
        code: String,
        message: String,
        at: SystemTime,
    },
    Failed {
        code: String,
        message: String,
    },
}
