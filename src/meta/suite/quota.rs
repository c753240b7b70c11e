//! Quotas per owner: the rate of new uploads, the unfinished uploads and the bytes held; each
//! refused with what it was, writing nothing, and one owner's never another's.

use std::sync::Arc;
use std::time::Duration;

use super::{NO_QUOTA, id, owned, upload};
use crate::domain::event::{Effects, OutboxEvent};
use crate::domain::quota::{Quota, QuotaExceeded};
use crate::domain::upload::Upload;
use crate::meta::{Meta, MetaError};

/// An upload of `owner` of `length` bytes, none of them received yet, created at `created_ms`.
fn sized(id: &str, owner: &str, created_ms: i64, length: Option<u64>) -> Upload {
    Upload {
        length,
        ..owned(id, owner, created_ms)
    }
}

fn refused(r: Result<impl std::fmt::Debug, MetaError>) -> QuotaExceeded {
    match r {
        Err(MetaError::OverQuota(q)) => q,
        other => panic!("expected a quota refusal, got {other:?}"),
    }
}

/// Minute 2 of the unix clock: the rate's windows are fixed minutes.
const T0: i64 = 120_000;

pub(super) async fn the_rate_counts_accepted_uploads_per_minute(db: &dyn Meta) {
    let q = Quota {
        max_per_minute: Some(3),
        max_bytes: Some(100),
        max_unfinished: None,
    };
    let none = Effects::default();
    db.insert(&sized("r1", "alice", T0 + 5_000, Some(10)), &none, &q)
        .await
        .unwrap();
    db.insert(&sized("r2", "alice", T0 + 5_000, Some(10)), &none, &q)
        .await
        .unwrap();
    // Refused for its bytes: it does not count toward the rate either.
    let big = sized("big", "alice", T0 + 5_000, Some(1_000));
    assert_eq!(
        refused(db.insert(&big, &none, &q).await),
        QuotaExceeded::Bytes { limit: 100 }
    );
    db.insert(&sized("r3", "alice", T0 + 6_000, Some(10)), &none, &q)
        .await
        .unwrap();
    // The fourth in the minute waits for the next one.
    let r4 = sized("r4", "alice", T0 + 5_000, Some(10));
    let retry_after = Duration::from_secs(55);
    assert_eq!(
        refused(db.insert(&r4, &none, &q).await),
        QuotaExceeded::Rate {
            limit: 3,
            retry_after
        }
    );
    let late = Upload {
        created_at: super::from_ms(T0 + 59_500),
        ..r4.clone()
    };
    let retry_after = Duration::from_secs(1);
    assert_eq!(
        refused(db.insert(&late, &none, &q).await),
        QuotaExceeded::Rate {
            limit: 3,
            retry_after
        }
    );
    assert_eq!(db.get(&r4.id).await.unwrap(), None);
    // Another owner's minute is its own; uploads without an owner are never limited.
    for i in 0..3 {
        db.insert(
            &sized(&format!("b{i}"), "bob", T0 + 5_000, Some(10)),
            &none,
            &q,
        )
        .await
        .unwrap();
    }
    for i in 0..5 {
        let anon = Upload {
            created_at: super::from_ms(T0 + 5_000),
            ..upload(&format!("n{i}"))
        };
        db.insert(&anon, &none, &q).await.unwrap();
    }
    // The next minute.
    let next = Upload {
        created_at: super::from_ms(T0 + 60_000),
        ..r4
    };
    db.insert(&next, &none, &q).await.unwrap();
    assert!(db.get(&next.id).await.unwrap().is_some());
}

pub(super) async fn unfinished_and_bytes_limits(db: &dyn Meta) {
    let none = Effects::default();
    let two = Quota {
        max_unfinished: Some(2),
        ..NO_QUOTA
    };
    db.insert(&sized("u1", "alice", 1_000, Some(10)), &none, &two)
        .await
        .unwrap();
    db.insert(&sized("u2", "alice", 1_000, None), &none, &two)
        .await
        .unwrap();
    let u3 = sized("u3", "alice", 1_000, Some(10));
    assert_eq!(
        refused(db.insert(&u3, &none, &two).await),
        QuotaExceeded::Unfinished { limit: 2 }
    );
    // An empty upload is finished from the start; another owner has uploads of its own.
    db.insert(&sized("empty", "alice", 1_000, Some(0)), &none, &two)
        .await
        .unwrap();
    db.insert(&sized("b1", "bob", 1_000, Some(10)), &none, &two)
        .await
        .unwrap();
    // A finished upload, or an expired one, is not unfinished.
    assert!(db.advance(&id("u1"), 0, 10, None, &none).await.unwrap());
    db.insert(&u3, &none, &two).await.unwrap();
    let u4 = sized("u4", "alice", 1_000, Some(10));
    assert!(matches!(
        refused(db.insert(&u4, &none, &two).await),
        QuotaExceeded::Unfinished { .. }
    ));
    db.mark_expired(&id("u2"), super::from_ms(2_000))
        .await
        .unwrap();
    db.insert(&u4, &none, &two).await.unwrap();

    let hundred = Quota {
        max_bytes: Some(100),
        ..NO_QUOTA
    };
    db.insert(&sized("c1", "carol", 1_000, Some(60)), &none, &hundred)
        .await
        .unwrap();
    let c2 = sized("c2", "carol", 1_000, Some(50));
    assert_eq!(
        refused(db.insert(&c2, &none, &hundred).await),
        QuotaExceeded::Bytes { limit: 100 }
    );
    db.insert(&sized("c2", "carol", 1_000, Some(40)), &none, &hundred)
        .await
        .unwrap();
    // Exactly at the limit: a deferred length holds nothing yet, and may not be declared.
    db.insert(&sized("c3", "carol", 1_000, None), &none, &hundred)
        .await
        .unwrap();
    assert_eq!(
        refused(db.set_length(&id("c3"), 1, &none, &hundred).await),
        QuotaExceeded::Bytes { limit: 100 }
    );
    assert_eq!(db.get(&id("c3")).await.unwrap().unwrap().length, None);
    db.insert(&sized("d1", "dave", 1_000, Some(100)), &none, &hundred)
        .await
        .unwrap();
    assert!(db.remove(&id("c1"), &[]).await.unwrap());
    assert!(db.set_length(&id("c3"), 60, &none, &hundred).await.unwrap());
    assert_eq!(db.get(&id("c3")).await.unwrap().unwrap().length, Some(60));
    // Declared once: a second declaration is not a quota matter.
    assert!(
        !db.set_length(&id("c3"), 500, &none, &hundred)
            .await
            .unwrap()
    );
}

pub(super) async fn a_refused_change_writes_nothing(db: &dyn Meta) {
    let effects = |upload: &str| Effects {
        events: vec![OutboxEvent {
            id: format!("{upload}-e"),
            kind: "post-finish".into(),
            upload: id(upload),
            payload: "{}".into(),
            held: false,
        }],
        media_job: true,
    };
    let five = Quota {
        max_bytes: Some(5),
        ..NO_QUOTA
    };
    let finished = Upload {
        offset: 10,
        ..owned("f", "alice", 1_000)
    };
    assert!(matches!(
        refused(db.insert(&finished, &effects("f"), &five).await),
        QuotaExceeded::Bytes { .. }
    ));
    let no_rate = Quota {
        max_per_minute: Some(0),
        ..NO_QUOTA
    };
    assert!(matches!(
        refused(db.insert(&finished, &effects("f"), &no_rate).await),
        QuotaExceeded::Rate { .. }
    ));
    assert_eq!(db.get(&finished.id).await.unwrap(), None);
    assert!(db.media(&finished.id).await.unwrap().is_none());
    // A declared length that would finish the upload, refused: no length, no event, no job.
    let deferred = Upload {
        length: None,
        offset: 6,
        ..owned("d", "alice", 1_000)
    };
    db.insert(&deferred, &Effects::default(), &NO_QUOTA)
        .await
        .unwrap();
    assert!(matches!(
        refused(db.set_length(&deferred.id, 6, &effects("d"), &five).await),
        QuotaExceeded::Bytes { .. }
    ));
    assert_eq!(db.get(&deferred.id).await.unwrap(), Some(deferred.clone()));
    assert!(db.media(&deferred.id).await.unwrap().is_none());
    assert!(db.list_events(false).await.unwrap().is_empty());
    assert_eq!(db.stats().await.unwrap().outbox_pending, 0);
    // Without limits nothing is refused.
    assert!(
        db.set_length(&deferred.id, 6, &effects("d"), &NO_QUOTA)
            .await
            .unwrap()
    );
    assert!(db.media(&deferred.id).await.unwrap().is_some());
}

/// Inserts of one owner at once (on a shared store: from several nodes) never let more in than
/// the quota allows.
pub(super) async fn concurrent_inserts_of_one_owner_keep_to_the_quota(db: Arc<dyn Meta>) {
    for (owner, q, allowed) in [
        (
            "alice",
            Quota {
                max_unfinished: Some(5),
                ..NO_QUOTA
            },
            5,
        ),
        (
            "bob",
            Quota {
                max_per_minute: Some(7),
                ..NO_QUOTA
            },
            7,
        ),
        (
            "carol",
            Quota {
                max_bytes: Some(35),
                ..NO_QUOTA
            },
            3,
        ),
    ] {
        // All started before any is awaited.
        let tries: Vec<_> = (0..20)
            .map(|i| {
                let (db, q) = (db.clone(), q.clone());
                let u = sized(&format!("{owner}{i}"), owner, 1_000, Some(10));
                tokio::spawn(async move { db.insert(&u, &Effects::default(), &q).await })
            })
            .collect();
        let mut accepted = 0;
        for t in tries {
            match t.await.unwrap() {
                Ok(()) => accepted += 1,
                Err(MetaError::OverQuota(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(accepted, allowed, "{owner}");
    }
}
