//! The core decides which changes bring a media job: a finished upload when the pipeline is
//! on, never a partial upload of a concatenation (its final upload is the media).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Inner, Limits, NewUpload, Uploads};
use crate::domain::upload::{Concat, Upload};
use crate::hooks::Hooks;
use crate::lock::Locks;
use crate::meta::sqlite::SqliteMeta;
use crate::storage::local::LocalStorage;

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
    let created = core.create(&req, new).await.unwrap();
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
