//! The metadata contract on SQLite, and what only SQLite does: its migrations, and the query
//! plans of the listings.

use std::sync::Arc;

use super::schema::MIGRATIONS;
use super::*;
use crate::domain::quota::Quota;
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

/// `EXPLAIN QUERY PLAN` of `sql` with `args`: its steps' details, one a line.
fn plan(c: &Connection, sql: &str, args: &[crate::meta::listing::Arg]) -> String {
    use crate::meta::listing::Arg;
    use rusqlite::types::Value;
    let args = args.iter().map(|a| match a {
        Arg::Text(s) => Value::Text(s.clone()),
        Arg::Int(i) => Value::Integer(*i),
    });
    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let details = stmt
        .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
        .unwrap();
    details.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

/// The listings walk their indexes in the order they return rows (no sort, no scan of the
/// table), from the cursor on; the quotas read their figures from an index alone.
#[test]
fn listings_and_quotas_read_their_indexes() {
    use crate::domain::access::Owner;
    use crate::domain::listing::{Cursor, ListQuery, ListStatus};
    use crate::meta::listing::{Arg, Dialect, page};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(SqliteMeta::open(&path, false).unwrap());
    let c = Connection::open(&path).unwrap();
    let alice = ListQuery {
        owner: Some(Owner::parse("alice").unwrap()),
        after: None,
        limit: 50,
        status: None,
        media_kind: None,
    };
    let after = Some(Cursor {
        created_ms: 5,
        id: UploadId::parse("x").unwrap(),
    });
    let admin = ListQuery {
        owner: None,
        ..alice.clone()
    };
    let owner_index = "USING INDEX uploads_owner_listed (owner=?";
    let admin_index = "u USING INDEX uploads_listed";
    let cases = [
        (alice.clone(), owner_index),
        (
            ListQuery {
                after: after.clone(),
                ..alice.clone()
            },
            "(owner=? AND (created_at,id)<(?,?))",
        ),
        (admin.clone(), admin_index),
        (
            ListQuery {
                after: after.clone(),
                ..admin.clone()
            },
            "uploads_listed ((created_at,id)<(?,?))",
        ),
        (
            ListQuery {
                status: Some(ListStatus::Uploading),
                ..alice.clone()
            },
            owner_index,
        ),
        (
            ListQuery {
                status: Some(ListStatus::Finished),
                ..admin.clone()
            },
            admin_index,
        ),
        (
            ListQuery {
                media_kind: Some("video".into()),
                after,
                ..alice.clone()
            },
            owner_index,
        ),
        (
            ListQuery {
                media_kind: Some("document".into()),
                ..admin.clone()
            },
            admin_index,
        ),
    ];
    for (q, index) in cases {
        let p = page(&q, Dialect::Sqlite);
        let plan = plan(&c, &p.sql, &p.args);
        println!("{q:?}\n{plan}\n");
        let first = plan.lines().next().unwrap();
        assert!(
            first.starts_with("SEARCH u ") || first.starts_with("SCAN u "),
            "{plan}"
        );
        assert!(first.contains(index), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        assert!(
            plan.contains("SEARCH m USING INDEX sqlite_autoindex_media_1 (id=?)"),
            "{plan}"
        );
    }
    for sql in [super::quota::UNFINISHED, super::quota::HELD] {
        let plan = plan(&c, sql, &[Arg::Text("alice".into())]);
        println!("{sql}\n{plan}\n");
        assert!(
            plan.starts_with(
                "SEARCH uploads USING COVERING INDEX uploads_owner_quota (owner=? AND state=?"
            ),
            "{plan}"
        );
    }
}

/// Media records from before migration 10 take their upload's owner, or none when the upload
/// is gone (a rejected upload's record outlives it).
#[test]
fn migrated_media_records_take_their_uploads_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let c = Connection::open(&path).unwrap();
        configure(&c, false).unwrap();
        for sql in &MIGRATIONS[..9] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 9).unwrap();
        c.execute_batch(
            "INSERT INTO uploads (id, length, offset, created_at, state, owner)
                 VALUES ('kept', 10, 10, 1000, 'active', 'alice');
             INSERT INTO media (id, status, held, next_at, length, created_at, updated_at)
                 VALUES ('kept', 'READY', 0, 0, 10, 1000, 1000),
                        ('gone', 'REJECTED', 0, 0, 10, 1000, 1000);",
        )
        .unwrap();
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = SqliteMeta::open(&path, false).unwrap();
        let kept = db.media(&UploadId::parse("kept").unwrap()).await.unwrap();
        assert_eq!(kept.unwrap().owner.unwrap().as_str(), "alice");
        let gone = db.media(&UploadId::parse("gone").unwrap()).await.unwrap();
        assert_eq!(gone.unwrap().owner, None);
    });
}

const MILLION: i64 = 1_000_000;
const OWNERS: i64 = 1_000;
const START_MS: i64 = 1_700_000_000_000;

/// Upload `i` of the million: owner `i % OWNERS`, created 10 ms after upload `i - 1`; of each
/// owner's, every tenth unfinished.
fn million_row(i: i64) -> (String, String, i64, i64) {
    let offset = if i / OWNERS % 10 == 0 { 40 } else { 100 };
    (
        format!("u{i:07}"),
        format!("owner{}", i % OWNERS),
        START_MS + i * 10,
        offset,
    )
}

/// A database of `MILLION` uploads, written in one transaction; of each owner's, every fourth
/// with a media record (in turn a video, a sound, a picture, a PDF).
fn fill_million(path: &std::path::Path) {
    drop(SqliteMeta::open(path, false).unwrap());
    let mut c = Connection::open(path).unwrap();
    let tx = c.transaction().unwrap();
    {
        let mut upload = tx
            .prepare(
                "INSERT INTO uploads (id, length, offset, created_at, state, owner)
                 VALUES (?1, 100, ?4, ?3, 'active', ?2)",
            )
            .unwrap();
        let mut media = tx
            .prepare(
                "INSERT INTO media (id, status, held, next_at, length, created_at, updated_at,
                     detected, owner)
                 VALUES (?1, 'READY', 0, 0, 100, ?3, ?3, ?4, ?2)",
            )
            .unwrap();
        let types = ["video/mp4", "audio/mpeg", "image/png", "application/pdf"];
        for i in 0..MILLION {
            let (id, owner, created, offset) = million_row(i);
            upload.execute(params![id, owner, created, offset]).unwrap();
            let k = i / OWNERS;
            if k % 4 == 0 {
                let detected = types[(k / 4 % 4) as usize];
                media
                    .execute(params![id, owner, created, detected])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

/// Runs `page` 5 times; prints the first run's time and the fastest, and the rows returned.
async fn timed(what: &str, page: impl AsyncFn() -> Vec<crate::domain::listing::Listed>) {
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        rows = page().await.len();
        times.push(t.elapsed());
    }
    let best = times.iter().min().unwrap();
    println!(
        "{what:<52} {rows:>3} rows  first {:>9.3?}  best {best:>9.3?}",
        times[0]
    );
}

/// Pages over a million uploads of a thousand owners (run by hand: `cargo test --release
/// --lib listing_one_million -- --ignored --nocapture`).
#[test]
#[ignore]
fn listing_one_million() {
    use crate::domain::access::Owner;
    use crate::domain::listing::{Cursor, ListQuery, ListStatus};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("million.db");
    let t = std::time::Instant::now();
    fill_million(&path);
    println!(
        "{MILLION} uploads of {OWNERS} owners written in {:?}",
        t.elapsed()
    );
    let cursor = |i: i64| {
        let (id, _, created_ms, _) = million_row(i);
        Some(Cursor {
            created_ms,
            id: UploadId::parse(&id).unwrap(),
        })
    };
    let owner = |n: i64| Some(Owner::parse(&format!("owner{n}")).unwrap());
    let q = |owner, after, status, kind: Option<&str>| ListQuery {
        owner,
        after,
        limit: 50,
        status,
        media_kind: kind.map(str::to_owned),
    };
    // owner 7's uploads are 7, 1007, 2007, …: after its 900th newest, 100 are left.
    let deep_owner = cursor(7 + (MILLION / OWNERS - 900) * OWNERS);
    let deep_admin = cursor(MILLION / 10);
    let cases = [
        ("owner 7: first page", q(owner(7), None, None, None)),
        (
            "owner 7: after its 900th newest",
            q(owner(7), deep_owner.clone(), None, None),
        ),
        (
            "owner 7: video, after its 900th newest",
            q(owner(7), deep_owner.clone(), None, Some("video")),
        ),
        (
            "owner 7: uploading, first page",
            q(owner(7), None, Some(ListStatus::Uploading), None),
        ),
        ("every owner: first page", q(None, None, None, None)),
        (
            "every owner: after the 900,000th newest",
            q(None, deep_admin.clone(), None, None),
        ),
        (
            "every owner: documents, after the 900,000th",
            q(None, deep_admin, None, Some("document")),
        ),
    ];
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = SqliteMeta::open(&path, false).unwrap();
        for (what, query) in &cases {
            timed(what, async || db.list_uploads(query).await.unwrap()).await;
        }
        // Owner 7 paged to its end, 50 at a time.
        let t = std::time::Instant::now();
        let mut page = q(owner(7), None, None, None);
        let mut seen = 0;
        loop {
            let listed = db.list_uploads(&page).await.unwrap();
            let Some(last) = listed.last() else { break };
            page.after = Some(Cursor::after(&last.upload));
            seen += listed.len();
        }
        assert_eq!(seen as i64, MILLION / OWNERS);
        println!("owner 7: all {seen} in pages of 50 in {:?}", t.elapsed());
        // A quota checked against an owner with a thousand uploads.
        let quota = Quota {
            max_bytes: Some(1 << 40),
            max_unfinished: Some(1_000),
            max_per_minute: Some(1_000),
        };
        let t = std::time::Instant::now();
        for i in 0..100 {
            let mut u = suite::owned(&format!("q{i}"), "owner7", START_MS + MILLION * 10);
            u.expires_at = None;
            db.insert(&u, &Effects::default(), &quota).await.unwrap();
        }
        println!(
            "owner 7: 100 inserts under every quota in {:?}",
            t.elapsed()
        );
    });
    // The plans as tuskd finds them (it gathers no statistics), then after ANALYZE.
    let c = Connection::open(&path).unwrap();
    for analyzed in [false, true] {
        if analyzed {
            c.execute_batch("ANALYZE").unwrap();
        }
        for (what, query) in &cases {
            let p = crate::meta::listing::page(query, crate::meta::listing::Dialect::Sqlite);
            let plan = plan(&c, &p.sql, &p.args);
            println!("{what} (analyzed: {analyzed}):\n{plan}");
            assert!(!plan.contains("TEMP B-TREE"));
        }
    }
}
