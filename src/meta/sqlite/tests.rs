//! The metadata contract on SQLite, and what only SQLite does: its migrations, and the query
//! plans of the listings.

use std::sync::Arc;

use super::schema::MIGRATIONS;
use super::*;
use crate::meta::Meta;
use crate::meta::suite::{self, NO_QUOTA, upload};

#[tokio::test]
async fn sqlite_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    suite::run(async || {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.path().join(format!("t{i}.db"));
        Arc::new(SqliteMeta::open(&path, false).unwrap()) as Arc<dyn Meta>
    })
    .await;
}

#[test]
fn the_migration_scrubs_credentials_from_stored_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        // A database as tuskd left it before migration 4, with an event holding secrets.
        let c = Connection::open(&path).unwrap();
        configure(&c, false).unwrap();
        for sql in &MIGRATIONS[..3] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 3).unwrap();
        let payload = r#"{"Type":"post-create","Event":{"HTTPRequest":{"Header":{
            "Authorization":["Bearer sekrit-token-1"],"Cookie":["sid=sekrit-cookie-2"],
            "Proxy-Authorization":["Basic sekrit-proxy-3"],"X-Trace":["kept-4"]}}}}"#;
        c.execute(
            "INSERT INTO hook_events (id, kind, upload_id, payload, state, created_at, next_at)
             VALUES ('e1', 'post-create', 'u1', ?1, 'dead', 0, 0)",
            [payload],
        )
        .unwrap();
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = rt.block_on(async {
        let db = SqliteMeta::open(&path, false).unwrap();
        db.list_events(false).await.unwrap()
    });
    assert_eq!(events.len(), 1);
    assert!(events[0].event.payload.contains("kept-4"));
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        // The connections close on their own threads after the store is dropped, and the
        // last one removes the -wal and -shm files: a file gone by now holds nothing.
        let bytes = match std::fs::read(entry.unwrap().path()) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{e}"),
        };
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("sekrit"), "a secret is left in a file");
    }
}

#[test]
fn reopening_keeps_schema_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        SqliteMeta::open(&path, true)
            .unwrap()
            .insert(&upload("keep"), &Effects::default(), &NO_QUOTA)
            .await
            .unwrap();
        let db = SqliteMeta::open(&path, true).unwrap();
        assert!(
            db.get(&UploadId::parse("keep").unwrap())
                .await
                .unwrap()
                .is_some()
        );
    });
    let c = Connection::open(&path).unwrap();
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v as usize, MIGRATIONS.len());
}
