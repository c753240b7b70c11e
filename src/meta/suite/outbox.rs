//! The hook outbox: events written with their change, claimed in order per upload, under a
//! lease.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{NO_QUOTA, id, upload};
use crate::domain::event::Effects;
use crate::meta::{EventState, Meta, OutboxEvent};

fn event(id: &str, upload: &str, held: bool) -> OutboxEvent {
    OutboxEvent {
        id: id.into(),
        kind: "post-finish".into(),
        upload: super::id(upload),
        payload: "{}".into(),
        held,
    }
}

pub(super) async fn events_exist_exactly_when_their_change_does(db: &dyn Meta) {
    let u = upload("up1");
    db.insert(
        &u,
        &Effects::events(vec![event("e1", "up1", false)]),
        &NO_QUOTA,
    )
    .await
    .unwrap();
    // A second insert of the same id fails, and so does its event.
    assert!(
        db.insert(
            &u,
            &Effects::events(vec![event("e2", "up1", false)]),
            &NO_QUOTA
        )
        .await
        .is_err()
    );
    // A compare-and-set that does not happen writes no event.
    assert!(
        !db.advance(
            &u.id,
            5,
            10,
            None,
            &Effects::events(vec![event("e3", "up1", false)])
        )
        .await
        .unwrap()
    );
    assert!(
        db.advance(
            &u.id,
            0,
            10,
            None,
            &Effects::events(vec![event("e4", "up1", true)])
        )
        .await
        .unwrap()
    );
    assert!(
        !db.remove(&id("nope"), &[event("e5", "nope", false)])
            .await
            .unwrap()
    );
    let ids: Vec<String> = db
        .list_events(false)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.id)
        .collect();
    assert_eq!(ids, vec!["e1", "e4"]);
    let stats = db.stats().await.unwrap();
    assert_eq!((stats.outbox_pending, stats.dead_letters), (2, 0));
}

/// Claims at `now` with a lease that ends at once: what is due, as a dispatcher sees it.
async fn due_at(db: &dyn Meta, now: SystemTime) -> Vec<String> {
    let due = db.claim_events(now, now, 10).await.unwrap();
    due.into_iter().map(|e| e.event.id).collect()
}

pub(super) async fn delivery_order_retries_dead_letters_and_release(db: &dyn Meta) {
    db.insert(
        &upload("a"),
        &Effects::events(vec![event("a1", "a", false)]),
        &NO_QUOTA,
    )
    .await
    .unwrap();
    db.advance(
        &id("a"),
        0,
        10,
        None,
        &Effects::events(vec![event("a2", "a", true)]),
    )
    .await
    .unwrap();
    db.insert(
        &upload("b"),
        &Effects::events(vec![event("b1", "b", false)]),
        &NO_QUOTA,
    )
    .await
    .unwrap();
    let now = SystemTime::now() + Duration::from_secs(1);
    assert_eq!(
        due_at(db, now).await,
        vec!["a1", "b1"],
        "one per upload, oldest first"
    );
    db.event_delivered("a1").await.unwrap();
    assert_eq!(due_at(db, now).await, vec!["b1"], "a2 is held");
    assert_eq!(
        db.held_uploads(now, 10).await.unwrap(),
        vec![id("a")],
        "repair finds the held event"
    );
    db.release_events(Some(&id("b"))).await.unwrap();
    assert_eq!(
        due_at(db, now).await,
        vec!["b1"],
        "another upload's release does not free a2"
    );
    db.release_events(Some(&id("a"))).await.unwrap();
    assert_eq!(due_at(db, now).await, vec!["a2", "b1"]);
    db.event_failed("a2", "503", Some(now + Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        due_at(db, now).await,
        vec!["b1"],
        "a2 waits for its retry time"
    );
    db.event_failed("b1", "gave up", None).await.unwrap();
    let dead = db.list_events(true).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].state, dead[0].attempts), (EventState::Dead, 1));
    assert_eq!(dead[0].last_error.as_deref(), Some("gave up"));
    assert_eq!(db.stats().await.unwrap().dead_letters, 1);
    assert!(db.retry_event("b1").await.unwrap());
    assert!(!db.retry_event("zz").await.unwrap());
    assert_eq!(due_at(db, now).await, vec!["b1"]);
}

/// Many dispatchers claiming at once (on a shared store: on several nodes) never take the same
/// event twice, and an upload's later event waits while its earlier one is out.
pub(super) async fn a_claimed_event_is_taken_once_until_its_lease_ends(db: Arc<dyn Meta>) {
    const UPLOADS: usize = 24;
    for i in 0..UPLOADS {
        let u = format!("u{i}");
        db.insert(
            &upload(&u),
            &Effects::events(vec![event(&format!("{u}-1"), &u, false)]),
            &NO_QUOTA,
        )
        .await
        .unwrap();
        db.advance(
            &id(&u),
            0,
            10,
            None,
            &Effects::events(vec![event(&format!("{u}-2"), &u, false)]),
        )
        .await
        .unwrap();
    }
    let now = SystemTime::now();
    let lease_until = now + Duration::from_secs(60);
    let claims = (0..8).map(|_| {
        let db = db.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = db.claim_events(now, lease_until, 3).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|e| e.event.id));
            }
        })
    });
    let mut all = Vec::new();
    for c in claims {
        all.extend(c.await.unwrap());
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(
        unique.len(),
        all.len(),
        "an event was claimed twice: {all:?}"
    );
    assert_eq!(all.len(), UPLOADS, "the first event of each upload only");
    assert!(all.iter().all(|e| e.ends_with("-1")), "{all:?}");
    // Delivered: the second events come due; a dispatcher that died keeps its claims until the
    // lease ends, then they are taken again.
    for e in &all {
        db.event_delivered(e).await.unwrap();
    }
    let second = db.claim_events(now, lease_until, 100).await.unwrap();
    assert_eq!(second.len(), UPLOADS);
    assert!(
        db.claim_events(now, lease_until, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let after = lease_until + Duration::from_millis(1);
    assert_eq!(
        db.claim_events(after, after, 100).await.unwrap().len(),
        UPLOADS
    );
}
