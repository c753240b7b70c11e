//! Media tasks: planned under the job's lease, claimed one slot at a time in plan order while
//! the job waits for their version, retried alone, waking their job as they settle, and gone
//! with their job.

use std::time::{Duration, SystemTime};

use serde_json::json;

use super::{ANY, NO_QUOTA, upload};
use crate::domain::event::Effects;
use crate::domain::media::{MediaOutcome, MediaStatus, MediaUpdate};
use crate::domain::task::{TaskOutcome, TaskPlan, TaskStatus};
use crate::domain::upload::UploadId;
use crate::meta::Meta;

/// A moment after everything the store did so far (it stamps with its own clock).
fn soon() -> SystemTime {
    SystemTime::now() + Duration::from_millis(5)
}

const LEASE: Duration = Duration::from_secs(30);

/// A finished upload whose job `planner` holds, processing version `v1`.
async fn processing(db: &dyn Meta, id: &str) -> UploadId {
    let mut u = upload(id);
    u.offset = 10;
    let job = Effects {
        events: Vec::new(),
        media_job: true,
    };
    db.insert(&u, &job, &NO_QUOTA).await.unwrap();
    db.release_events(None).await.unwrap();
    let now = soon();
    let claimed = db.claim_media("planner", ANY, now, now + LEASE).await;
    assert!(claimed.unwrap().is_some_and(|j| j.id == u.id));
    let update = MediaUpdate {
        status: Some(MediaStatus::Processing),
        pending_version: Some("v1".into()),
        ..Default::default()
    };
    assert!(db.update_media(&u.id, "planner", &update).await.unwrap());
    u.id
}

fn plans(names: &[&str]) -> Vec<TaskPlan> {
    names
        .iter()
        .map(|n| TaskPlan {
            name: (*n).into(),
            spec: json!({ "rung": n }),
        })
        .collect()
}

async fn due(db: &dyn Meta) -> Option<UploadId> {
    let now = soon();
    let job = db.claim_media("assembler", ANY, now, now + LEASE).await;
    job.unwrap().map(|j| j.id)
}

pub(super) async fn tasks_run_alone_and_wake_their_job(db: &dyn Meta) {
    let id = processing(db, "clip").await;
    let two = plans(&["360p", "720p"]);
    assert!(!db.plan_tasks(&id, "other", "v1", &two).await.unwrap());
    assert!(db.tasks(&id).await.unwrap().is_empty(), "no lease, no plan");
    assert!(db.plan_tasks(&id, "planner", "v1", &two).await.unwrap());
    let wait = MediaOutcome::Wait { settled: 0 };
    assert!(
        db.end_media(&id, "planner", &wait, &[])
            .await
            .unwrap()
            .is_some()
    );
    let job = db.media(&id).await.unwrap().unwrap();
    assert_eq!(
        (job.attempts, job.lease_owner),
        (0, None),
        "planning is no attempt"
    );
    assert_eq!(due(db).await, None, "a waiting job is not due");
    let depth = db.stats().await.unwrap().media_due;
    assert_eq!(depth, [("slow".to_owned(), 2)], "its tasks are: {depth:?}");

    // Two slots, one task each, in plan order; nothing more.
    let now = soon();
    let a = db
        .claim_task("w1", now, now + LEASE)
        .await
        .unwrap()
        .unwrap();
    let b = db
        .claim_task("w2", now, now + LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.name.as_str(), b.name.as_str()), ("360p", "720p"));
    assert_eq!(
        (a.status, a.attempts, a.version.as_str()),
        (TaskStatus::Running, 1, "v1")
    );
    assert_eq!(a.worker.as_deref(), Some("w1"));
    assert_eq!(a.spec, json!({ "rung": "360p" }));
    assert!(
        db.claim_task("w3", now, now + LEASE)
            .await
            .unwrap()
            .is_none()
    );
    let depth = db.stats().await.unwrap().media_due;
    assert!(depth.is_empty(), "running tasks are not waiting: {depth:?}");
    assert!(
        !db.update_task(&id, "720p", "w1", 50.0, now + LEASE)
            .await
            .unwrap()
    );
    assert!(
        db.update_task(&id, "720p", "w2", 50.0, now + LEASE)
            .await
            .unwrap()
    );

    // A task done wakes its job, once.
    let left = json!({ "files": ["r0/index.m3u8"] });
    let done = TaskOutcome::Done(left.clone());
    assert!(db.end_task(&id, "360p", "w1", &done).await.unwrap());
    assert!(
        !db.end_task(&id, "360p", "w1", &done).await.unwrap(),
        "ended once"
    );
    assert_eq!(due(db).await.as_ref(), Some(&id), "the job assembles");
    let tasks = db.tasks(&id).await.unwrap();
    assert_eq!(tasks[0].status, TaskStatus::Done);
    assert_eq!(
        (tasks[0].progress, tasks[0].result.as_ref()),
        (100.0, Some(&left))
    );
    assert_eq!(
        (tasks[1].status, tasks[1].progress),
        (TaskStatus::Running, 50.0)
    );
    let wait = MediaOutcome::Wait { settled: 1 };
    assert!(
        db.end_media(&id, "assembler", &wait, &[])
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(due(db).await, None, "nothing settled since");

    // A dead slot's task is claimed again once its lease runs out; it alone is retried.
    let later = soon() + LEASE + Duration::from_secs(1);
    let b = db
        .claim_task("w3", later, later + LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b.name.as_str(), b.attempts), ("720p", 2));
    assert!(
        !db.end_task(&id, "720p", "w2", &done).await.unwrap(),
        "the old lease is gone"
    );
    let retry = TaskOutcome::Retry {
        code: "storage".into(),
        message: "try again".into(),
        at: later,
    };
    assert!(db.end_task(&id, "720p", "w3", &retry).await.unwrap());
    assert_eq!(due(db).await, None, "a retry does not wake the job");
    let tasks = db.tasks(&id).await.unwrap();
    assert_eq!((tasks[0].status, tasks[0].attempts), (TaskStatus::Done, 1));
    assert_eq!(tasks[1].status, TaskStatus::Queued);
    assert_eq!(tasks[1].reason_code.as_deref(), Some("storage"));
    let b = db
        .claim_task("w3", later, later + LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.attempts, 3);
    let failed = TaskOutcome::Failed {
        code: "decode".into(),
        message: "broken".into(),
    };
    assert!(db.end_task(&id, "720p", "w3", &failed).await.unwrap());

    // A run that counted fewer settled tasks than there are is due again at once.
    assert_eq!(due(db).await.as_ref(), Some(&id));
    let stale = MediaOutcome::Wait { settled: 1 };
    assert!(
        db.end_media(&id, "assembler", &stale, &[])
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        due(db).await.as_ref(),
        Some(&id),
        "a task settled meanwhile"
    );
    let end = MediaOutcome::Failed {
        code: "decode".into(),
        message: "task 720p failed".into(),
    };
    assert!(
        db.end_media(&id, "assembler", &end, &[])
            .await
            .unwrap()
            .is_some()
    );
    let settled: Vec<_> = db
        .tasks(&id)
        .await
        .unwrap()
        .iter()
        .map(|t| t.status)
        .collect();
    assert_eq!(
        settled,
        [TaskStatus::Done, TaskStatus::Failed],
        "kept to show why"
    );
    assert!(db.retry_media(&id).await.unwrap());
    assert!(
        db.tasks(&id).await.unwrap().is_empty(),
        "a job queued again plans afresh"
    );
}

pub(super) async fn tasks_go_with_their_job(db: &dyn Meta) {
    // Tasks of a version the job no longer waits for are never claimed.
    let id = processing(db, "clip").await;
    assert!(
        db.plan_tasks(&id, "planner", "v1", &plans(&["a"]))
            .await
            .unwrap()
    );
    let newer = MediaUpdate {
        pending_version: Some("v2".into()),
        ..Default::default()
    };
    assert!(db.update_media(&id, "planner", &newer).await.unwrap());
    let now = soon();
    assert!(
        db.claim_task("w", now, now + LEASE)
            .await
            .unwrap()
            .is_none()
    );
    // A job that fails drops the tasks still to run.
    let end = MediaOutcome::Failed {
        code: "x".into(),
        message: "y".into(),
    };
    assert!(
        db.end_media(&id, "planner", &end, &[])
            .await
            .unwrap()
            .is_some()
    );
    assert!(db.tasks(&id).await.unwrap().is_empty());

    // Planning again replaces the plan; forgetting the upload forgets its tasks.
    let id = processing(db, "other").await;
    assert!(
        db.plan_tasks(&id, "planner", "v1", &plans(&["a", "b"]))
            .await
            .unwrap()
    );
    assert!(
        db.plan_tasks(&id, "planner", "v1", &plans(&["c"]))
            .await
            .unwrap()
    );
    let names: Vec<_> = db
        .tasks(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["c"]);
    assert!(db.remove(&id, &[]).await.unwrap());
    assert!(db.tasks(&id).await.unwrap().is_empty());
}
