//! The core decides which changes bring a media job: a finished upload when the pipeline is
//! on, never a partial upload of a concatenation (its final upload is the media).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Inner, Limits, NewUpload, Uploads};
use crate::domain::access::{Caller, Owner};
use crate::domain::upload::{Concat, Metadata, Upload};
use crate::hooks::Hooks;
use crate::lock::Locks;
use crate::meta::sqlite::SqliteMeta;
use crate::storage::local::LocalStorage;
use crate::upload::UploadError;

fn open(dir: &std::path::Path, media_jobs: bool) -> Uploads {
    let shutdown = CancellationToken::new();
    Uploads::new(Inner {
        meta: Arc::new(SqliteMeta::open(&dir.join("t.db"), false).unwrap()),
        storage: Arc::new(LocalStorage::open(&dir.join("files"), false).unwrap()),
        locks: Locks::new(shutdown.clone(), Duration::from_secs(1)),
        hooks: Hooks::none(),
        limits: Limits::default(),
        clock: Default::default(),
        metrics: Default::default(),
        media_jobs,
        shutdown,
        space: crate::space::Space::unwatched(Default::default()),
        repair: Default::default(),
        media_wake: Default::default(),
    })
}

/// Creates an empty upload (finished at once) and completes it as a door would.
async fn empty_upload(core: &Uploads, concat: Concat) -> Upload {
    let (req, ()) = http::Request::new(()).into_parts();
    let new = NewUpload {
        length: Some(0),
        metadata: None,
        concat_raw: (concat == Concat::Partial).then(|| "partial".into()),
        concat,
    };
    let created = core.create(&req, &Caller::anyone(), new).await.unwrap();
    core.complete(&req, &created.upload).await.unwrap();
    created.upload
}

#[tokio::test]
async fn a_finished_upload_gets_a_media_job_when_the_pipeline_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path(), true);
    let u = empty_upload(&core, Concat::None).await;
    let job = core.meta.media(&u.id).await.unwrap().expect("a media job");
    assert!(!job.held, "released once the upload is complete");
}

#[tokio::test]
async fn partial_uploads_and_a_pipeline_that_is_off_get_none() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path(), true);
    let p = empty_upload(&core, Concat::Partial).await;
    assert!(core.meta.media(&p.id).await.unwrap().is_none());

    let dir = tempfile::tempdir().unwrap();
    let off = open(dir.path(), false);
    let u = empty_upload(&off, Concat::None).await;
    assert!(off.meta.media(&u.id).await.unwrap().is_none());
}

fn owner(name: &str) -> Caller {
    Caller::owner(Owner::parse(name).unwrap())
}

/// Creates an unfinished upload of `caller`'s.
async fn unfinished(core: &Uploads, caller: &Caller) -> Upload {
    let (req, ()) = http::Request::new(()).into_parts();
    let new = NewUpload {
        length: Some(10),
        metadata: None,
        concat_raw: None,
        concat: Concat::None,
    };
    core.create(&req, caller, new).await.unwrap().upload
}

#[tokio::test]
async fn another_owners_upload_is_not_found_even_once_it_expired() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path(), false);
    let (alice, bob) = (owner("alice"), owner("bob"));
    let u = unfinished(&core, &alice).await;
    assert_eq!(u.owner, alice.owner);
    assert!(core.load(&alice, &u.id).await.is_ok());
    assert!(matches!(
        core.load(&bob, &u.id).await,
        Err(UploadError::NotFound)
    ));
    let admin = Caller {
        sees_all: true,
        ..bob.clone()
    };
    assert!(core.load(&admin, &u.id).await.is_ok());
    // An upload made while authentication was off is no authenticated owner's.
    let open_one = unfinished(&core, &Caller::anyone()).await;
    assert!(matches!(
        core.load(&alice, &open_one.id).await,
        Err(UploadError::NotFound)
    ));
    core.meta
        .mark_expired(&u.id, std::time::SystemTime::now())
        .await
        .unwrap();
    assert!(matches!(
        core.load(&alice, &u.id).await,
        Err(UploadError::Expired)
    ));
    assert!(matches!(
        core.load(&bob, &u.id).await,
        Err(UploadError::NotFound)
    ));
    let (req, ()) = http::Request::new(()).into_parts();
    let other = unfinished(&core, &alice).await;
    assert!(matches!(
        core.terminate(&req, &bob, &other.id).await,
        Err(UploadError::NotFound)
    ));
    assert!(
        core.load(&alice, &other.id).await.is_ok(),
        "bob's DELETE did nothing"
    );
}

#[test]
fn a_callers_limits_narrow_the_servers() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path(), false);
    let mut c = owner("carol");
    assert!(core.check_size(&c, Some(u64::MAX >> 2)).is_ok());
    c.max_size = Some(100);
    assert!(core.check_size(&c, Some(100)).is_ok());
    assert!(matches!(
        core.check_size(&c, Some(101)),
        Err(UploadError::MaxSizeExceeded)
    ));
    c.media_kinds = Some(vec!["image".into(), "document".into()]);
    let m = |s: &str| Metadata::parse(s).unwrap();
    assert!(
        core.check_kind(&c, Some(&m("filetype aW1hZ2UvanBlZw==")))
            .is_ok()
    ); // image/jpeg
    assert!(
        core.check_kind(&c, Some(&m("type YXBwbGljYXRpb24vcGRm")))
            .is_ok()
    ); // application/pdf
    assert!(matches!(
        core.check_kind(&c, Some(&m("filetype dmlkZW8vbXA0"))), // video/mp4
        Err(UploadError::KindNotAllowed(_))
    ));
    assert!(matches!(
        core.check_kind(&c, None),
        Err(UploadError::KindNotAllowed(_))
    ));
}
