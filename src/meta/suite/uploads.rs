//! Uploads and the object store's bookkeeping.

use std::time::{Duration, SystemTime};

use super::{NO_QUOTA, id, owned, upload};
use crate::domain::event::Effects;
use crate::domain::media::MediaOutcome;
use crate::domain::upload::{Concat, State, UploadId};
use crate::meta::rows::from_ms;
use crate::meta::{Meta, MetaError};

pub(super) async fn round_trip_and_compare_and_set(db: &dyn Meta) {
    let u = upload("abc");
    db.insert(&u, &Effects::default(), &NO_QUOTA).await.unwrap();
    assert!(matches!(
        db.insert(&u, &Effects::default(), &NO_QUOTA).await,
        Err(MetaError::Exists(_))
    ));
    assert_eq!(db.get(&u.id).await.unwrap().unwrap(), u);
    assert!(
        db.advance(&u.id, 0, 4, None, &Effects::default())
            .await
            .unwrap()
    );
    assert!(
        !db.advance(&u.id, 0, 8, None, &Effects::default())
            .await
            .unwrap(),
        "stale expected offset"
    );
    let got = db.get(&u.id).await.unwrap().unwrap();
    assert_eq!((got.offset, got.expires_at), (4, None));
    // A final upload keeps its partial uploads, in order.
    let mut f = upload("fin");
    f.concat = Concat::Final(vec![id("p2"), id("p1")]);
    f.concat_raw = Some("final;/files/p2 /files/p1".into());
    f.length = None;
    f.metadata = None;
    db.insert(&f, &Effects::default(), &NO_QUOTA).await.unwrap();
    assert_eq!(db.get(&f.id).await.unwrap().unwrap(), f);
    assert_eq!(db.pending_finals(10).await.unwrap(), vec![f.id.clone()]);
    assert!(db.remove(&u.id, &[]).await.unwrap());
    assert_eq!(db.get(&u.id).await.unwrap(), None);
    assert!(!db.remove(&u.id, &[]).await.unwrap());
    db.ping().await.unwrap();
}

pub(super) async fn deferred_length_is_set_once(db: &dyn Meta) {
    let mut u = upload("def");
    u.length = None;
    db.insert(&u, &Effects::default(), &NO_QUOTA).await.unwrap();
    assert!(
        db.set_length(&u.id, 7, &Effects::default(), &NO_QUOTA)
            .await
            .unwrap()
    );
    assert!(
        !db.set_length(&u.id, 9, &Effects::default(), &NO_QUOTA)
            .await
            .unwrap()
    );
    assert_eq!(db.get(&u.id).await.unwrap().unwrap().length, Some(7));
}

pub(super) async fn expiry_queries(db: &dyn Meta) {
    db.insert(&upload("old"), &Effects::default(), &NO_QUOTA)
        .await
        .unwrap();
    let mut fresh = upload("fresh");
    fresh.expires_at = Some(from_ms(50_000));
    db.insert(&fresh, &Effects::default(), &NO_QUOTA)
        .await
        .unwrap();
    let due = db.due_to_expire(from_ms(10_000), 10).await.unwrap();
    assert_eq!(due, vec![UploadId::parse("old").unwrap()]);
    db.mark_expired(&due[0], from_ms(10_000)).await.unwrap();
    assert_eq!(
        db.get(&due[0]).await.unwrap().unwrap().state,
        State::Expired
    );
    assert!(
        db.due_to_expire(from_ms(10_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.purge_expired(from_ms(20_000)).await.unwrap(), 1);
    assert_eq!(db.get(&due[0]).await.unwrap(), None);
}

pub(super) async fn records_parts_and_tails_until_forgotten(db: &dyn Meta) {
    let id = UploadId::parse("obj").unwrap();
    assert_eq!(db.state(&id).await.unwrap(), None);
    db.begin(&id, 5 << 20).await.unwrap();
    db.set_multipart(&id, "mp-1").await.unwrap();
    db.add_part(&id, 0, "etag-a").await.unwrap();
    db.add_part(&id, 0, "etag-b").await.unwrap();
    db.add_part(&id, 1, "etag-c").await.unwrap();
    db.add_tail(&id, 1).await.unwrap();
    db.add_tail(&id, 2).await.unwrap();
    db.add_tail(&id, 2).await.unwrap();
    db.remove_tails(&id, &[1]).await.unwrap();
    let s = db.state(&id).await.unwrap().unwrap();
    assert_eq!(s.part_size, 5 << 20);
    assert_eq!(s.multipart.as_deref(), Some("mp-1"));
    assert_eq!(s.parts.get(&0).map(String::as_str), Some("etag-b"));
    assert_eq!(s.parts.len(), 2);
    assert_eq!(s.tails.iter().copied().collect::<Vec<_>>(), vec![2]);
    assert_eq!(db.all().await.unwrap(), vec![id.clone()]);
    db.forget(&id).await.unwrap();
    assert_eq!(db.state(&id).await.unwrap(), None);
    assert!(db.all().await.unwrap().is_empty());
}

/// An upload's owner, or its lack of one, is kept; its media record takes the upload's owner
/// and keeps it after the upload is forgotten.
pub(super) async fn owners_are_kept(db: &dyn Meta) {
    let job = Effects {
        events: Vec::new(),
        media_job: true,
    };
    let mine = owned("mine", "alice@example.com", 2_000);
    let anon = upload("anon");
    for u in [&mine, &anon] {
        db.insert(u, &Effects::default(), &NO_QUOTA).await.unwrap();
        assert_eq!(db.get(&u.id).await.unwrap().as_ref(), Some(u));
        assert!(db.advance(&u.id, 0, 10, None, &job).await.unwrap());
        let record = db.media(&u.id).await.unwrap().expect("finished: a job");
        assert_eq!(record.owner, u.owner);
    }
    db.release_events(None).await.unwrap();
    let now = SystemTime::now();
    let lease_until = now + Duration::from_secs(60);
    while let Some(job) = db
        .claim_media("w", super::ANY, now, lease_until)
        .await
        .unwrap()
    {
        let rejected = MediaOutcome::Rejected {
            code: "type_mismatch".into(),
            message: "no".into(),
            forget_upload: true,
        };
        db.end_media(&job.id, "w", &rejected, &[]).await.unwrap();
    }
    assert_eq!(db.get(&mine.id).await.unwrap(), None);
    let kept = db.media(&mine.id).await.unwrap().unwrap();
    assert_eq!(
        kept.owner.map(|o| o.to_string()).as_deref(),
        Some("alice@example.com")
    );
    let mut owners: Vec<_> = db
        .list_media(false)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.owner)
        .collect();
    owners.sort();
    assert_eq!(owners, [None, mine.owner.clone()]);
}
