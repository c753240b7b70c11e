use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::path::Path;
use url::Url;

use super::open::{CredentialsSet, S3Options, connect, probe};
use super::*;
use crate::meta::sqlite::SqliteMeta;
use crate::storage::suite;

struct Fixture {
    _dir: tempfile::TempDir,
    backend: Arc<dyn Backend>,
    log: Arc<SqliteMeta>,
    prefix: Path,
    part_size: u64,
}

impl Fixture {
    fn new(backend: Arc<dyn Backend>, prefix: &str, part_size: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(SqliteMeta::open(&dir.path().join("t.db"), false).unwrap());
        Fixture {
            _dir: dir,
            backend,
            log,
            prefix: Path::from(prefix),
            part_size,
        }
    }

    /// A new storage instance over the same objects and bookkeeping, as after a restart.
    fn open(&self) -> Box<dyn Storage> {
        Box::new(ObjectStorage::new(
            self.backend.clone(),
            self.prefix.clone(),
            self.part_size,
            self.part_size * 4,
            self.log.clone(),
            std::time::Duration::from_secs(30),
        ))
    }

    async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .backend
            .list(Some(&self.prefix))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }
}

#[tokio::test]
async fn memory_store_meets_the_contract() {
    let f = Fixture::new(Arc::new(InMemory::new()), "up", 64 * 1024);
    suite::run(&|| f.open(), f.part_size).await;
}

#[tokio::test]
async fn s3_store_meets_the_contract() {
    let s3 = testkit::S3Server::start();
    s3.create_bucket("contract");
    let (backend, prefix) = s3_backend(&s3, "s3://contract/some/prefix");
    let f = Fixture::new(backend, prefix.as_ref(), MIN_PART_SIZE);
    suite::run(&|| f.open(), f.part_size).await;
    // Only finished objects remain: no tails, no multipart uploads in progress.
    let keys = s3.client().keys("contract");
    assert!(!keys.is_empty());
    assert!(
        keys.iter()
            .all(|k| k.starts_with("some/prefix/") && !k.contains(".tail-")),
        "{keys:?}"
    );
    assert_eq!(s3.client().multipart_uploads("contract"), 0);
}

#[tokio::test]
async fn azure_store_meets_the_contract() {
    let azurite = testkit::Azurite::start();
    azurite.create_container("contract");
    let backend = object_store::azure::MicrosoftAzureBuilder::new()
        .with_account(testkit::AZURITE_ACCOUNT)
        .with_access_key(testkit::AZURITE_KEY)
        .with_endpoint(azurite.endpoint())
        .with_allow_http(true)
        .with_container_name("contract")
        .build()
        .unwrap();
    // Azure's blocks have no minimum size: small parts cross many boundaries quickly.
    let f = Fixture::new(Arc::new(backend), "some/prefix", 256 * 1024);
    suite::run(&|| f.open(), f.part_size).await;
    let keys = f.keys().await;
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|k| !k.contains(".tail-")), "{keys:?}");
}

fn s3_backend(s3: &testkit::S3Server, url: &str) -> (Arc<dyn Backend>, Path) {
    let url = Url::parse(url).unwrap();
    let backend = object_store::aws::AmazonS3Builder::new()
        .with_url(url.as_str())
        .with_endpoint(s3.endpoint())
        .with_allow_http(true)
        .with_access_key_id("tuskd-test")
        .with_secret_access_key("tuskd-test-secret")
        .with_region("us-east-1")
        .build()
        .unwrap();
    let (_, prefix) = object_store::ObjectStoreScheme::parse(&url).unwrap();
    (Arc::new(backend), prefix)
}

#[tokio::test]
async fn finish_and_delete_leave_no_objects_behind() {
    let f = Fixture::new(Arc::new(InMemory::new()), "up", 64 * 1024);
    let s = f.open();
    let p = f.part_size;

    // Several PATCHes of an upload of 3.5 parts: parts, tails, then the finished object.
    let id = UploadId::random();
    let len = p * 7 / 2;
    s.create(&id).await.unwrap();
    let mut offset = 0;
    for step in [p / 3, p, p * 3 / 2, len - p / 3 - p - p * 3 / 2] {
        let mut a = s.appender(&id, offset, Some(len)).await.unwrap();
        a.write(Bytes::from(vec![7u8; step as usize]))
            .await
            .unwrap();
        offset = a.commit().await.unwrap();
        assert_eq!(
            offset % p == 0,
            f.keys().await.iter().all(|k| !k.contains(".tail-"))
        );
        let tails = f
            .keys()
            .await
            .iter()
            .filter(|k| k.contains(".tail-"))
            .count();
        assert!(tails <= 2, "superseded tails are deleted");
    }
    assert_eq!(offset, len);
    s.finish(&id, len).await.unwrap();
    assert_eq!(f.keys().await, vec![format!("up/{id}")]);
    assert!(f.log.state(&id).await.unwrap().is_none());

    // An unfinished one with parts and a tail: delete removes it all.
    let gone = UploadId::random();
    s.create(&gone).await.unwrap();
    let mut a = s.appender(&gone, 0, None).await.unwrap();
    a.write(Bytes::from(vec![1u8; (p * 3 / 2) as usize]))
        .await
        .unwrap();
    a.commit().await.unwrap();
    drop(a);
    assert!(
        f.keys()
            .await
            .iter()
            .any(|k| k.contains(&format!("{gone}.tail-")))
    );
    s.delete(&gone).await.unwrap();
    assert_eq!(f.keys().await, vec![format!("up/{id}")]);
    assert!(f.log.all().await.unwrap().is_empty());
}

#[tokio::test]
async fn part_buffers_wait_for_the_global_budget() {
    let f = Fixture::new(Arc::new(InMemory::new()), "up", 64 * 1024);
    // A budget of exactly one part buffer.
    let s = ObjectStorage::new(
        f.backend.clone(),
        f.prefix.clone(),
        f.part_size,
        f.part_size,
        f.log.clone(),
        std::time::Duration::from_secs(30),
    );
    let (one, two) = (UploadId::random(), UploadId::random());
    s.create(&one).await.unwrap();
    s.create(&two).await.unwrap();
    let first = s.appender(&one, 0, None).await.unwrap();
    let mut second = Box::pin(s.appender(&two, 0, None));
    tokio::select! {
        _ = &mut second => panic!("a second buffer was granted beyond the budget"),
        () = tokio::time::sleep(Duration::from_millis(200)) => {}
    }
    drop(first);
    second.await.expect("granted once the first append ends");
}

#[tokio::test]
async fn start_up_check_names_a_missing_bucket() {
    let s3 = testkit::S3Server::start();
    let (backend, prefix) = s3_backend(&s3, "s3://no-such-bucket/p");
    let url = Url::parse("s3://no-such-bucket/p").unwrap();
    // The credentials are given to the builder, not through the environment.
    let credentials = CredentialsSet {
        aws: true,
        ..CredentialsSet::default()
    };
    let e = probe(backend.as_ref(), &prefix, &url, &credentials)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no-such-bucket"), "{e}");

    s3.create_bucket("there");
    let (backend, prefix) = s3_backend(&s3, "s3://there/p");
    probe(
        backend.as_ref(),
        &prefix,
        &Url::parse("s3://there/p").unwrap(),
        &credentials,
    )
    .await
    .unwrap();
    assert!(
        s3.client().keys("there").is_empty(),
        "the check cleans up after itself"
    );
}

#[test]
fn memory_urls_connect_without_settings() {
    let url = Url::parse("memory:///pre/fix").unwrap();
    let (_, prefix) = connect(
        &url,
        &S3Options::default(),
        std::time::Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(prefix.as_ref(), "pre/fix");
    let e = connect(
        &Url::parse("az://container/p").unwrap(),
        &S3Options::default(),
        std::time::Duration::from_secs(30),
    )
    .expect_err("no Azure account is configured");
    assert!(e.to_string().contains("az://container/p"), "{e}");
}

/// A store that answers every request 507 with MinIO's error body.
async fn full_store() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error>\
                    <Code>XMinioStorageFull</Code><Message>Storage backend has reached its \
                    minimum free drive threshold.</Message></Error>";
                let mut buf = vec![0u8; 64 << 10];
                // Enough of the request to answer it; the rest is dropped with the connection.
                let _ = c.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 507 Insufficient Storage\r\nContent-Type: application/xml\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = c.write_all(resp.as_bytes()).await;
            });
        }
    });
    endpoint
}

#[tokio::test]
async fn a_store_without_room_is_full_not_a_failure() {
    let endpoint = full_store().await;
    let url = Url::parse("s3://bucket/p").unwrap();
    let backend = object_store::aws::AmazonS3Builder::new()
        .with_url(url.as_str())
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_access_key_id("tuskd-test")
        .with_secret_access_key("tuskd-test-secret")
        .with_region("us-east-1")
        .with_retry(object_store::RetryConfig {
            max_retries: 1,
            retry_timeout: Duration::from_secs(2),
            ..Default::default()
        })
        .build()
        .unwrap();
    let e = backend
        .put(&Path::from("p/x"), Bytes::from_static(b"data").into())
        .await
        .unwrap_err();
    assert!(matches!(remote(e), StorageError::Full));
    // Through the upload core's error, a full store is a 507 with its reason.
    let e = backend
        .put_multipart(&Path::from("p/y"))
        .await
        .err()
        .map(remote)
        .map(crate::upload::UploadError::from)
        .expect("refused");
    assert!(e.is_full(), "{e:?}");
}
