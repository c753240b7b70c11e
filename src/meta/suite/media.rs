//! Media jobs: queued by the change that finishes an upload, claimed under leases.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{NO_QUOTA, id, upload};
use crate::domain::event::Effects;
use crate::domain::media::{MediaOutcome, MediaStatus, MediaUpdate, Published};
use crate::meta::Meta;

pub(super) async fn a_job_is_queued_with_the_change_that_asks_for_it(db: &dyn Meta) {
    let job = with_job();
    let u = upload("a");
    db.insert(&u, &Effects::default(), &NO_QUOTA).await.unwrap();
    assert!(
        db.media(&u.id).await.unwrap().is_none(),
        "not asked for: no job"
    );
    assert!(
        db.advance(&u.id, 0, 4, None, &Effects::default())
            .await
            .unwrap()
    );
    assert!(db.media(&u.id).await.unwrap().is_none());
    // A change that does not happen (the offset moved) writes no job.
    assert!(!db.advance(&u.id, 0, 10, None, &job).await.unwrap());
    assert!(db.media(&u.id).await.unwrap().is_none());
    assert!(db.advance(&u.id, 4, 10, None, &job).await.unwrap());
    let queued = db.media(&u.id).await.unwrap().expect("finished: a job");
    assert_eq!(
        (queued.status, queued.held, queued.length),
        (MediaStatus::Received, true, 10)
    );
    // Held until the request's remaining work is done.
    let now = SystemTime::now();
    assert!(
        db.claim_media("w", super::ANY, now, now)
            .await
            .unwrap()
            .is_none()
    );
    // Repair finds it if the request never comes back to release it.
    let later = now + Duration::from_secs(1);
    assert_eq!(
        db.held_uploads(later, 10).await.unwrap(),
        std::slice::from_ref(&u.id)
    );
    db.release_events(Some(&u.id)).await.unwrap();
    assert!(db.held_uploads(later, 10).await.unwrap().is_empty());
    assert!(!db.media(&u.id).await.unwrap().unwrap().held);

    // An empty upload is finished at once: its job comes with its creation.
    let mut e = upload("e");
    e.length = Some(0);
    db.insert(&e, &job, &NO_QUOTA).await.unwrap();
    assert_eq!(db.media(&e.id).await.unwrap().map(|j| j.length), Some(0));
    // A deferred length that finishes the upload brings its job.
    let mut d = upload("d");
    d.length = None;
    d.offset = 6;
    db.insert(&d, &Effects::default(), &NO_QUOTA).await.unwrap();
    assert!(db.set_length(&d.id, 6, &job, &NO_QUOTA).await.unwrap());
    assert_eq!(db.media(&d.id).await.unwrap().map(|j| j.length), Some(6));
}

pub(super) async fn leases_keep_a_job_to_one_worker_until_they_run_out(db: &dyn Meta) {
    let mut u = upload("b");
    u.offset = 10;
    db.insert(&u, &with_job(), &NO_QUOTA).await.unwrap();
    db.release_events(None).await.unwrap();
    let t0 = SystemTime::now();
    let lease = Duration::from_secs(30);
    let job = db
        .claim_media("w1", super::ANY, t0, t0 + lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.attempts, job.lease_owner.as_deref()), (1, Some("w1")));
    // Nobody else gets it while the lease runs.
    assert!(
        db.claim_media("w2", super::ANY, t0, t0 + lease)
            .await
            .unwrap()
            .is_none()
    );
    let update = MediaUpdate {
        status: Some(MediaStatus::Processing),
        progress: Some(42.0),
        ..Default::default()
    };
    assert!(db.update_media(&u.id, "w1", &update).await.unwrap());
    assert!(!db.update_media(&u.id, "w2", &update).await.unwrap());
    // w1 died: once the lease is over, w2 takes the job (a second attempt) ...
    let later = t0 + lease + Duration::from_secs(1);
    let again = db
        .claim_media("w2", super::ANY, later, later + lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.attempts, again.status), (2, MediaStatus::Processing));
    // ... and w1, come back, can neither record nor end it.
    assert!(!db.update_media(&u.id, "w1", &update).await.unwrap());
    let ready = MediaOutcome::Ready(Published {
        version: "v1".into(),
        variants: vec![],
    });
    assert!(
        db.end_media(&u.id, "w1", &ready, &[])
            .await
            .unwrap()
            .is_none()
    );
    let before = db
        .end_media(&u.id, "w2", &ready, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.published, None);
    let done = db.media(&u.id).await.unwrap().unwrap();
    assert_eq!((done.status, done.lease_owner), (MediaStatus::Ready, None));
    assert_eq!(done.published.unwrap().version, "v1");
    // A finished job is claimed again only after a retry, with its attempts reset.
    assert!(
        db.claim_media("w3", super::ANY, later, later + lease)
            .await
            .unwrap()
            .is_none()
    );
    assert!(db.retry_media(&u.id).await.unwrap());
    let rerun = db
        .claim_media("w3", super::ANY, later, later + lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rerun.attempts, 1);
    assert!(!db.retry_media(&u.id).await.unwrap(), "not while it runs");
}

pub(super) async fn outcomes_backoff_and_rejection(db: &dyn Meta) {
    let mut u = upload("c");
    u.offset = 10;
    db.insert(&u, &with_job(), &NO_QUOTA).await.unwrap();
    db.release_events(None).await.unwrap();
    let t0 = SystemTime::now();
    let lease = Duration::from_secs(30);
    db.claim_media("w", super::ANY, t0, t0 + lease)
        .await
        .unwrap()
        .unwrap();
    let retry = MediaOutcome::Retry {
        code: "storage".into(),
        message: "store down".into(),
        at: t0 + Duration::from_secs(60),
    };
    db.end_media(&u.id, "w", &retry, &[])
        .await
        .unwrap()
        .unwrap();
    let waiting = db.media(&u.id).await.unwrap().unwrap();
    assert_eq!(waiting.status, MediaStatus::Received);
    assert_eq!(waiting.reason_code.as_deref(), Some("storage"));
    // Not before its time.
    assert!(
        db.claim_media("w", super::ANY, t0, t0 + lease)
            .await
            .unwrap()
            .is_none()
    );
    let due = t0 + Duration::from_secs(61);
    db.claim_media("w", super::ANY, due, due + lease)
        .await
        .unwrap()
        .unwrap();
    let rejected = MediaOutcome::Rejected {
        code: "type_mismatch".into(),
        message: "a zip".into(),
        forget_upload: true,
    };
    db.end_media(&u.id, "w", &rejected, &[])
        .await
        .unwrap()
        .unwrap();
    // The upload is forgotten in the same transaction; the record stays to be asked for.
    assert!(db.get(&u.id).await.unwrap().is_none());
    let r = db.media(&u.id).await.unwrap().unwrap();
    assert_eq!(
        (r.status, r.reason_code.as_deref()),
        (MediaStatus::Rejected, Some("type_mismatch"))
    );
    assert_eq!(
        db.list_media(true).await.unwrap().len(),
        0,
        "rejected is not failed"
    );
    assert_eq!(db.list_media(false).await.unwrap().len(), 1);
    // Terminating an upload forgets its media record.
    let mut v = upload("d");
    v.offset = 10;
    db.insert(&v, &with_job(), &NO_QUOTA).await.unwrap();
    assert!(db.remove(&v.id, &[]).await.unwrap());
    assert!(db.media(&id("d")).await.unwrap().is_none());
}

/// Workers on several nodes claiming at once run each job once.
pub(super) async fn concurrent_claims_take_each_job_once(db: Arc<dyn Meta>) {
    const JOBS: usize = 16;
    for i in 0..JOBS {
        let mut u = upload(&format!("j{i}"));
        u.offset = 10;
        db.insert(&u, &with_job(), &NO_QUOTA).await.unwrap();
    }
    db.release_events(None).await.unwrap();
    let now = SystemTime::now();
    let lease_until = now + Duration::from_secs(60);
    let workers = (0..6).map(|w| {
        let db = db.clone();
        tokio::spawn(async move {
            let owner = format!("w{w}");
            let mut mine = Vec::new();
            while let Some(job) = db
                .claim_media(&owner, super::ANY, now, lease_until)
                .await
                .unwrap()
            {
                mine.push(job.id);
            }
            mine
        })
    });
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a job was claimed twice: {all:?}");
    assert_eq!(all.len(), JOBS);
    assert!(
        db.claim_media("late", super::ANY, now, lease_until)
            .await
            .unwrap()
            .is_none()
    );
    let stats = db.stats().await.unwrap();
    assert_eq!(stats.media, vec![("RECEIVED".to_string(), JOBS as u64)]);
}

/// The effects of a change that finishes an upload the media pipeline processes.
fn with_job() -> Effects {
    Effects {
        events: Vec::new(),
        media_job: true,
    }
}
