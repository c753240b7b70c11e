//! Media lanes: fast-only slots never take slow work, general slots take fast work first, and
//! a job handed to the slow lane keeps what was found without using up an attempt.

use std::time::{Duration, SystemTime};

use super::{ANY, NO_QUOTA, upload};
use crate::domain::event::Effects;
use crate::domain::media::{
    Lane, MediaOutcome, MediaStatus, MediaUpdate, Probe, Takes, VideoFacts,
};
use crate::domain::upload::Upload;
use crate::meta::Meta;

const FAST_MAX: u64 = 100;
const FAST: Takes = Takes {
    slow: false,
    fast_max_bytes: FAST_MAX,
};
const GENERAL: Takes = Takes {
    slow: true,
    fast_max_bytes: FAST_MAX,
};

/// A finished upload of `len` bytes with its job queued and released.
async fn finished(db: &dyn Meta, id: &str, len: u64) -> Upload {
    let mut u = upload(id);
    u.length = Some(len);
    u.offset = len;
    let job = Effects {
        events: Vec::new(),
        media_job: true,
    };
    db.insert(&u, &job, &NO_QUOTA).await.unwrap();
    db.release_events(None).await.unwrap();
    u
}

pub(super) async fn fast_slots_take_fast_work_and_general_slots_take_it_first(db: &dyn Meta) {
    // The large upload is queued first: older, yet a general slot takes the small one first.
    let big = finished(db, "big", FAST_MAX + 1).await;
    let small = finished(db, "small", FAST_MAX).await;
    let now = SystemTime::now() + Duration::from_millis(5);
    let lease = now + Duration::from_secs(30);
    assert!(
        db.claim_media("fast", FAST, now, lease)
            .await
            .unwrap()
            .is_some_and(|j| j.id == small.id),
        "a fast slot takes the small upload"
    );
    assert!(
        db.claim_media("fast", FAST, now, lease)
            .await
            .unwrap()
            .is_none(),
        "and never the large one"
    );
    let job = db
        .claim_media("general", GENERAL, now, lease)
        .await
        .unwrap();
    assert_eq!(job.map(|j| j.id), Some(big.id.clone()));

    // With both free again, the general slot's first choice is the fast job.
    for (id, owner) in [(&small.id, "fast"), (&big.id, "general")] {
        let retry = MediaOutcome::Retry {
            code: "x".into(),
            message: "again".into(),
            at: now,
        };
        assert!(
            db.end_media(id, owner, &retry, &[])
                .await
                .unwrap()
                .is_some()
        );
    }
    let later = now + Duration::from_millis(5);
    let first = db
        .claim_media("general", GENERAL, later, lease)
        .await
        .unwrap();
    assert_eq!(first.map(|j| j.id), Some(small.id));
    let second = db.claim_media("general", ANY, later, lease).await.unwrap();
    assert_eq!(second.map(|j| j.id), Some(big.id));
}

pub(super) async fn a_handoff_moves_a_job_to_the_slow_lane_uncounted(db: &dyn Meta) {
    let clip = finished(db, "clip", 10).await;
    let now = SystemTime::now() + Duration::from_millis(5);
    let lease = now + Duration::from_secs(30);
    let job = db
        .claim_media("fast", FAST, now, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.lane, job.attempts), (Lane::Fast, 1));
    let probe = Probe {
        duration_ms: Some(60_000),
        video: Some(VideoFacts::default()),
        ..Default::default()
    };
    let found = MediaUpdate {
        status: Some(MediaStatus::Processing),
        detected: Some("video/mp4".into()),
        probe: Some(probe.clone()),
        ..Default::default()
    };
    assert!(db.update_media(&clip.id, "fast", &found).await.unwrap());
    let before = db.end_media(&clip.id, "fast", &MediaOutcome::Handoff, &[]);
    assert!(before.await.unwrap().is_some());

    let handed = db.media(&clip.id).await.unwrap().unwrap();
    assert_eq!(handed.lane, Lane::Slow);
    assert_eq!(handed.attempts, 0, "a handoff is not an attempt");
    assert_eq!(handed.lease_owner, None);
    assert_eq!(handed.detected.as_deref(), Some("video/mp4"));
    assert_eq!(handed.probe, Some(probe));
    assert!(
        db.claim_media("fast", FAST, now, lease)
            .await
            .unwrap()
            .is_none(),
        "slow work is not a fast slot's"
    );
    let depth = db.stats().await.unwrap().media_due;
    assert_eq!(depth, [("slow".to_owned(), 1)], "the queue's depth by lane");
    // Due from the handoff on (the store's clock).
    let after = SystemTime::now() + Duration::from_millis(5);
    let taken = db
        .claim_media("general", GENERAL, after, lease)
        .await
        .unwrap();
    let taken = taken.expect("a general slot takes it at once");
    assert_eq!(
        (taken.id, taken.lane, taken.attempts),
        (clip.id, Lane::Slow, 1)
    );
    let depth = db.stats().await.unwrap().media_due;
    assert!(depth.is_empty(), "a held job is not waiting: {depth:?}");
}
