//! Listings: one owner's active uploads or every owner's, newest first, in keyset pages, with
//! their media records, filtered by where they stand and by the kind of media detected.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use super::{NO_QUOTA, id, owned, upload};
use crate::domain::access::Owner;
use crate::domain::event::Effects;
use crate::domain::listing::{Cursor, ListQuery, ListStatus, Listed};
use crate::domain::media::MediaUpdate;
use crate::domain::upload::Upload;
use crate::meta::Meta;
use crate::meta::rows::ms;

/// The first page of `owner`'s uploads (every owner's for `None`), at most `limit`.
fn query(owner: Option<&str>, limit: usize) -> ListQuery {
    ListQuery {
        owner: owner.map(|o| Owner::parse(o).unwrap()),
        after: None,
        limit,
        status: None,
        media_kind: None,
    }
}

fn ids(page: &[Listed]) -> Vec<String> {
    page.iter().map(|l| l.upload.id.to_string()).collect()
}

async fn list(db: &dyn Meta, q: &ListQuery) -> Vec<String> {
    ids(&db.list_uploads(q).await.unwrap())
}

async fn put(db: &dyn Meta, u: &Upload) {
    db.insert(u, &Effects::default(), &NO_QUOTA).await.unwrap();
}

pub(super) async fn owners_see_their_own_newest_first(db: &dyn Meta) {
    for u in [
        owned("a1", "alice", 1_000),
        owned("a2", "alice", 3_000),
        owned("a3", "alice", 2_000),
        owned("a4", "alice", 3_000),
        owned("b1", "bob", 2_500),
        owned("b2", "bob", 500),
        Upload {
            created_at: super::from_ms(1_500),
            ..upload("n1")
        },
    ] {
        put(db, &u).await;
    }
    // Newest first; the same creation time in descending id order.
    let alice = db.list_uploads(&query(Some("alice"), 10)).await.unwrap();
    assert_eq!(ids(&alice), ["a4", "a2", "a3", "a1"]);
    assert!(alice.iter().all(|l| l.media.is_none()));
    assert!(
        alice
            .iter()
            .all(|l| l.upload.owner.as_ref().unwrap().as_str() == "alice")
    );
    assert_eq!(list(db, &query(Some("bob"), 10)).await, ["b1", "b2"]);
    assert!(list(db, &query(Some("carol"), 10)).await.is_empty());
    let everyone = ["a4", "a2", "b1", "a3", "n1", "a1", "b2"];
    assert_eq!(list(db, &query(None, 10)).await, everyone);
    // The limit, and the next page strictly after the cursor (a tie on created_at included).
    let first = db.list_uploads(&query(None, 2)).await.unwrap();
    assert_eq!(ids(&first), ["a4", "a2"]);
    let next = ListQuery {
        after: Some(Cursor::after(&first[1].upload)),
        ..query(None, 2)
    };
    assert_eq!(list(db, &next).await, ["b1", "a3"]);
    let after_a4 = ListQuery {
        after: Some(Cursor::after(&first[0].upload)),
        ..query(Some("alice"), 10)
    };
    assert_eq!(list(db, &after_a4).await, ["a2", "a3", "a1"]);
    // Expired and removed uploads are not listed.
    db.mark_expired(&id("a3"), super::from_ms(9_000))
        .await
        .unwrap();
    assert!(db.remove(&id("b2"), &[]).await.unwrap());
    assert_eq!(
        list(db, &query(Some("alice"), 10)).await,
        ["a4", "a2", "a1"]
    );
    assert_eq!(
        list(db, &query(None, 10)).await,
        ["a4", "a2", "b1", "n1", "a1"]
    );
}

/// Pages through `q` to the end, `between` called after each page; returns every upload in
/// the order listed.
async fn all_pages(
    db: &dyn Meta,
    q: ListQuery,
    mut between: impl AsyncFnMut(usize),
) -> Vec<Upload> {
    let mut seen = Vec::new();
    let mut q = q;
    for page in 0.. {
        let listed = db.list_uploads(&q).await.unwrap();
        assert!(listed.len() <= q.limit);
        let Some(last) = listed.last() else { break };
        q.after = Some(Cursor::after(&last.upload));
        seen.extend(listed.into_iter().map(|l| l.upload));
        between(page).await;
    }
    seen
}

/// Every upload that existed when paging began is listed exactly once, in order, while other
/// uploads (newer, older, another owner's) arrive between the pages.
pub(super) async fn pages_return_every_upload_once_while_uploads_arrive(db: &dyn Meta) {
    let mut everyone: HashSet<String> = HashSet::new();
    let mut alices = HashSet::new();
    for i in 0..10_000 {
        // Four at each millisecond: the id breaks the ties.
        let owner = if i % 5 == 0 {
            "pager-bob"
        } else {
            "pager-alice"
        };
        let u = owned(&format!("p{i:05}"), owner, 100_000 + (i / 4) * 1_000);
        put(db, &u).await;
        everyone.insert(u.id.to_string());
        if owner == "pager-alice" {
            alices.insert(u.id.to_string());
        }
    }
    let added = std::cell::RefCell::new(Vec::new());
    let arrive = async |_page: usize| {
        let n = added.borrow().len() as i64;
        for (owner, created_ms) in [
            ("pager-alice", 900_000_000 + 2 * n),
            ("pager-alice", 50_000 + n),
            ("pager-bob", 900_000_000 + 2 * n + 1),
        ] {
            let u = owned(&format!("n{:04}", added.borrow().len()), owner, created_ms);
            put(db, &u).await;
            added.borrow_mut().push(u.id.to_string());
        }
    };
    let alice = all_pages(db, query(Some("pager-alice"), 37), arrive).await;
    everyone.extend(added.borrow().iter().cloned());
    let admin = all_pages(db, query(None, 101), arrive).await;
    for (seen, existed) in [(alice, &alices), (admin, &everyone)] {
        let keys: Vec<(i64, String)> = seen
            .iter()
            .map(|u| (ms(u.created_at), u.id.to_string()))
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] > w[1]),
            "newest first, no repeats"
        );
        let listed: HashSet<String> = keys.into_iter().map(|(_, id)| id).collect();
        assert_eq!(
            listed.intersection(existed).count(),
            existed.len(),
            "every one that existed"
        );
        // Of the arrivals, only those older than the cursor can be reached.
        let arrived: HashSet<String> = added.borrow().iter().cloned().collect();
        assert!(
            listed
                .difference(existed)
                .filter(|id| arrived.contains(*id))
                .all(|id| {
                    seen.iter()
                        .any(|u| u.id.as_str() == id && ms(u.created_at) < 100_000)
                })
        );
    }
}

/// Statuses and media kinds, each alone and together, and with an owner.
pub(super) async fn filters_by_status_and_media_kind(db: &dyn Meta) {
    let detected = [
        ("v1", "video/mp4"),
        ("au", "audio/mpeg"),
        ("im", "image/png"),
        ("dc", "application/pdf"),
        ("nd", ""),
    ];
    let mut unfinished = owned("s1", "alice", 1_000);
    unfinished.offset = 3;
    let deferred = Upload {
        length: None,
        ..owned("s2", "alice", 2_000)
    };
    let no_record = Upload {
        offset: 10,
        ..owned("s3", "alice", 3_000)
    };
    for u in [&unfinished, &deferred, &no_record] {
        put(db, u).await;
    }
    let job = Effects {
        events: Vec::new(),
        media_job: true,
    };
    let mut finished: Vec<(Upload, &str)> = detected
        .iter()
        .enumerate()
        .map(|(i, (id, mime))| {
            (
                Upload {
                    offset: 10,
                    ..owned(id, "alice", 4_000 + i as i64)
                },
                *mime,
            )
        })
        .collect();
    finished.push((
        Upload {
            offset: 10,
            ..owned("bv", "bob", 4_500)
        },
        "video/webm",
    ));
    for (u, _) in &finished {
        db.insert(u, &job, &NO_QUOTA).await.unwrap();
    }
    db.release_events(None).await.unwrap();
    let now = SystemTime::now();
    let until = now + Duration::from_secs(60);
    while let Some(j) = db.claim_media("w", super::ANY, now, until).await.unwrap() {
        let mime = finished.iter().find(|(u, _)| u.id == j.id).unwrap().1;
        let update = MediaUpdate {
            detected: (!mime.is_empty()).then(|| mime.to_owned()),
            ..Default::default()
        };
        assert!(db.update_media(&j.id, "w", &update).await.unwrap());
    }
    let filtered =
        |owner: Option<&str>, status: Option<ListStatus>, kind: Option<&str>| ListQuery {
            status,
            media_kind: kind.map(str::to_owned),
            ..query(owner, 50)
        };
    let alice = Some("alice");
    assert_eq!(
        list(db, &filtered(alice, Some(ListStatus::Uploading), None)).await,
        ["s2", "s1"]
    );
    assert_eq!(
        list(db, &filtered(alice, Some(ListStatus::Finished), None)).await,
        ["nd", "dc", "im", "au", "v1", "s3"]
    );
    assert_eq!(
        list(db, &filtered(alice, None, Some("video"))).await,
        ["v1"]
    );
    assert_eq!(
        list(db, &filtered(None, None, Some("video"))).await,
        ["bv", "v1"]
    );
    assert_eq!(
        list(db, &filtered(alice, None, Some("audio"))).await,
        ["au"]
    );
    assert_eq!(
        list(db, &filtered(alice, None, Some("image"))).await,
        ["im"]
    );
    assert_eq!(
        list(db, &filtered(alice, None, Some("document"))).await,
        ["dc"]
    );
    assert!(
        list(db, &filtered(alice, None, Some("spreadsheet")))
            .await
            .is_empty()
    );
    assert!(
        list(
            db,
            &filtered(alice, Some(ListStatus::Uploading), Some("video"))
        )
        .await
        .is_empty()
    );
    assert_eq!(
        list(
            db,
            &filtered(None, Some(ListStatus::Finished), Some("video"))
        )
        .await,
        ["bv", "v1"]
    );
    // The media record comes with its upload, in the same page.
    let page = db
        .list_uploads(&filtered(alice, Some(ListStatus::Finished), None))
        .await
        .unwrap();
    let media = |id: &str| {
        page.iter()
            .find(|l| l.upload.id.as_str() == id)
            .unwrap()
            .media
            .clone()
    };
    let v1 = media("v1").expect("a record");
    assert_eq!(v1.detected.as_deref(), Some("video/mp4"));
    assert_eq!(v1.owner.map(|o| o.to_string()).as_deref(), Some("alice"));
    assert_eq!(media("nd").map(|m| m.detected), Some(None));
    assert!(media("s3").is_none());
}
