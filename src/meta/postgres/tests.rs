//! The metadata contract on a real Postgres, and what only a shared database does: nodes that
//! migrate at once, and locks across nodes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::locks::PgCluster;
use super::{PgMeta, schema};
use crate::domain::upload::UploadId;
use crate::lock::{Cluster, Locks};
use crate::meta::suite::{self, NO_QUOTA};
use crate::meta::{Meta, MetaStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_meets_the_contract_and_holds_across_nodes() {
    let pg = testkit::postgres::Postgres::start();
    suite::run(async || Arc::new(PgMeta::open(&pg.database(), 8).await.unwrap()) as Arc<dyn Meta>)
        .await;
    nodes_starting_together_migrate_once(&pg).await;
    leases_are_given_back_asked_for_and_run_out(&pg).await;
    a_request_on_another_node_takes_over_the_upload(&pg).await;
    work_released_on_one_node_is_heard_on_another(&pg).await;
    migrated_media_records_take_their_uploads_owner(&pg).await;
    listings_and_quotas_read_their_indexes(&pg).await;
}

/// Media records from before migration 3 take their upload's owner, or none when the upload
/// is gone.
async fn migrated_media_records_take_their_uploads_owner(pg: &testkit::postgres::Postgres) {
    let url = pg.database();
    let name = url.rsplit('/').next().unwrap();
    let before: String = schema::MIGRATIONS[..2].concat();
    pg.sql(name, &before);
    pg.sql(
        name,
        "CREATE TABLE tuskd_schema (version INTEGER NOT NULL);
         INSERT INTO tuskd_schema VALUES (2);
         INSERT INTO uploads (id, length, \"offset\", created_at, state, owner)
             VALUES ('kept', 10, 10, 1000, 'active', 'alice');
         INSERT INTO media (id, status, held, next_at, length, created_at, updated_at)
             VALUES ('kept', 'READY', false, 0, 10, 1000, 1000),
                    ('gone', 'REJECTED', false, 0, 10, 1000, 1000);",
    );
    let db = PgMeta::open(&url, 2).await.unwrap();
    let kept = db.media(&UploadId::parse("kept").unwrap()).await.unwrap();
    assert_eq!(kept.unwrap().owner.unwrap().as_str(), "alice");
    let gone = db.media(&UploadId::parse("gone").unwrap()).await.unwrap();
    assert_eq!(gone.unwrap().owner, None);
}

/// Over 100,000 uploads of 100 owners (analysed), the listings walk their indexes in the order
/// they return rows, with no sort; the quotas read the owner's quota index.
async fn listings_and_quotas_read_their_indexes(pg: &testkit::postgres::Postgres) {
    use crate::domain::access::Owner;
    use crate::domain::listing::{Cursor, ListQuery};
    use crate::meta::listing::{Arg, Dialect, page};
    use tokio_postgres::types::ToSql;
    let url = pg.database();
    let db = PgMeta::open(&url, 2).await.unwrap();
    pg.sql(
        url.rsplit('/').next().unwrap(),
        "INSERT INTO uploads (id, length, \"offset\", created_at, state, owner)
             SELECT 'u' || lpad(i::text, 7, '0'), 100,
                    CASE WHEN i / 100 % 10 = 0 THEN 40 ELSE 100 END,
                    1700000000000 + i * 10, 'active', 'owner' || (i % 100)
             FROM generate_series(0, 99999) i;
         INSERT INTO media (id, status, held, next_at, length, created_at, updated_at, detected,
                            owner)
             SELECT id, 'READY', false, 0, 100, created_at, created_at,
                    (ARRAY['video/mp4', 'audio/mpeg', 'image/png', 'application/pdf'])
                        [1 + (created_at / 10 / 100 / 4) % 4], owner
             FROM uploads WHERE (created_at / 10) / 100 % 4 = 0;
         ANALYZE uploads; ANALYZE media;",
    );
    let c = db.client().await.unwrap();
    let explain = async |sql: &str, args: &[Arg]| -> String {
        let args: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| match a {
                Arg::Text(s) => s as &(dyn ToSql + Sync),
                Arg::Int(i) => i as &(dyn ToSql + Sync),
            })
            .collect();
        let rows = c.query(&format!("EXPLAIN {sql}"), &args).await.unwrap();
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let alice = ListQuery {
        owner: Owner::parse("owner7"),
        after: Some(Cursor {
            created_ms: 1_700_000_000_000 + 50_000 * 10,
            id: UploadId::parse("u0050000").unwrap(),
        }),
        limit: 50,
        status: None,
        media_kind: None,
    };
    let admin = ListQuery {
        owner: None,
        ..alice.clone()
    };
    let video = ListQuery {
        media_kind: Some("video".into()),
        ..alice.clone()
    };
    let first = ListQuery {
        after: None,
        ..admin.clone()
    };
    for (q, index) in [
        (&alice, "uploads_owner_listed"),
        (&video, "uploads_owner_listed"),
        (&admin, "uploads_listed"),
        (&first, "uploads_listed"),
    ] {
        let p = page(q, Dialect::Postgres);
        let plan = explain(&p.sql, &p.args).await;
        println!("{q:?}\n{plan}\n");
        assert!(
            plan.contains(&format!("Index Scan using {index} on uploads u")),
            "{plan}"
        );
        assert!(!plan.contains("Sort"), "{plan}");
    }
    for sql in [super::quota::UNFINISHED, super::quota::HELD] {
        let plan = explain(sql, &[Arg::Text("owner7".into())]).await;
        println!("{sql}\n{plan}\n");
        assert!(plan.contains("uploads_owner_quota"), "{plan}");
    }
}

/// Due events and runnable media jobs that node A releases wake node B's dispatcher and
/// workers at once (`MetaStore::work`), instead of at their next poll.
async fn work_released_on_one_node_is_heard_on_another(pg: &testkit::postgres::Postgres) {
    use crate::domain::event::{Effects, OutboxEvent, Work};
    let url = pg.database();
    let (a, b) = (
        PgMeta::open(&url, 2).await.unwrap(),
        PgMeta::open(&url, 2).await.unwrap(),
    );
    let mut work = b.work().expect("a shared store relays work");
    let next = async |work: &mut tokio::sync::broadcast::Receiver<Work>, within: Duration| {
        tokio::time::timeout(within, work.recv())
            .await
            .ok()
            .map(Result::unwrap)
    };
    // B's listening connection starts on its own: the first event may go out before it
    // listens, so events are written until B hears one.
    let mut i = 0;
    let heard = loop {
        i += 1;
        assert!(i <= 50, "node B never heard node A's events");
        let mut u = suite::upload(&format!("w{i}"));
        u.id = UploadId::random();
        let event = OutboxEvent {
            id: UploadId::random().to_string(),
            kind: "post-create".into(),
            upload: u.id.clone(),
            payload: "{}".into(),
            held: false,
        };
        a.insert(&u, &Effects::events(vec![event]), &NO_QUOTA)
            .await
            .unwrap();
        if let Some(w) = next(&mut work, Duration::from_millis(200)).await {
            break w;
        }
    };
    assert_eq!(heard, Work::Events);
    // A held media job released on A.
    let mut u = suite::upload("job");
    u.offset = 10;
    let job = Effects {
        events: Vec::new(),
        media_job: true,
    };
    a.insert(&u, &job, &NO_QUOTA).await.unwrap();
    while work.try_recv().is_ok() {}
    a.release_events(Some(&u.id)).await.unwrap();
    assert_eq!(
        next(&mut work, Duration::from_secs(10)).await,
        Some(Work::MediaJobs)
    );
}

async fn nodes_starting_together_migrate_once(pg: &testkit::postgres::Postgres) {
    let url = pg.database();
    let opens = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { PgMeta::open(&url, 2).await.map(|_| ()) })
    });
    for o in opens {
        o.await.unwrap().expect("every node opens");
    }
    let name = url.rsplit('/').next().unwrap();
    assert_eq!(
        pg.sql(name, "SELECT version FROM tuskd_schema"),
        schema::MIGRATIONS.len().to_string()
    );
    assert_eq!(pg.sql(name, "SELECT count(*) FROM tuskd_schema"), "1");
}

async fn node(url: &str, lease: Duration) -> Arc<PgCluster> {
    let meta = PgMeta::open(url, 4).await.unwrap();
    let config: tokio_postgres::Config = url.parse().unwrap();
    Arc::new(PgCluster::start(meta.pool.clone(), config, lease))
}

async fn heard(rx: &mut tokio::sync::broadcast::Receiver<UploadId>, id: &UploadId) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while rx.recv().await.unwrap() != *id {}
    })
    .await
    .expect("the notification arrives");
}

async fn leases_are_given_back_asked_for_and_run_out(pg: &testkit::postgres::Postgres) {
    let url = pg.database();
    let lease = Duration::from_millis(1500);
    let (a, b) = (node(&url, lease).await, node(&url, lease).await);
    let id = UploadId::random();
    // Each node hears the other's requests for what it holds. The listening connections (which
    // hear "given back" too) may still be connecting: ask until heard, on an upload of its own,
    // before any lease of `id` runs.
    for (asker, holder, what) in [(&b, &a, "A hears B's request"), (&a, &b, "B hears A's")] {
        let probe = UploadId::random();
        let token = holder.take(&probe).await.unwrap().expect("free");
        let mut asked = holder.release_requests();
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                // Held (renewed) for as long as this takes: only a live lease is asked for.
                assert!(
                    holder
                        .renew(std::slice::from_ref(&probe))
                        .await
                        .unwrap()
                        .is_empty()
                );
                asker.ask_release(&probe).await.unwrap();
                if tokio::time::timeout(Duration::from_millis(200), asked.recv())
                    .await
                    .is_ok_and(|r| r.unwrap() == probe)
                {
                    return;
                }
            }
        })
        .await
        .expect(what);
        holder.release(&probe, token).await.unwrap();
    }
    let ta = a.take(&id).await.unwrap().expect("free");
    assert!(b.take(&id).await.unwrap().is_none(), "A holds it");
    assert!(
        a.take(&id).await.unwrap().is_some(),
        "a node retakes its own"
    );
    // An old take's release gives nothing back; the current one's does, and B hears it.
    let mut given = b.released();
    a.release(&id, ta).await.unwrap();
    assert!(
        b.take(&id).await.unwrap().is_none(),
        "a stale token frees nothing"
    );
    let current = a.take(&id).await.unwrap().unwrap();
    a.release(&id, current).await.unwrap();
    heard(&mut given, &id).await;
    let tb = b.take(&id).await.unwrap().expect("given back");
    // B holds it and renews; A cannot take it until B stops renewing and the lease runs out.
    assert!(b.renew(std::slice::from_ref(&id)).await.unwrap().is_empty());
    let stopped = Instant::now();
    while a.take(&id).await.unwrap().is_none() {
        assert!(
            stopped.elapsed() < lease * 4,
            "the lease of a node that stopped renewing runs out"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stopped.elapsed() >= lease - Duration::from_millis(300),
        "taken over only once the lease ran out ({:?})",
        stopped.elapsed()
    );
    // B, back, learns it lost it; its release frees nothing.
    assert_eq!(
        b.renew(std::slice::from_ref(&id)).await.unwrap(),
        vec![id.clone()]
    );
    b.release(&id, tb).await.unwrap();
    assert!(b.take(&id).await.unwrap().is_none(), "A holds it now");
    // A shuts down: everything it holds is free at once.
    let other = UploadId::random();
    a.take(&other).await.unwrap().unwrap();
    a.release_all().await.unwrap();
    assert!(b.take(&id).await.unwrap().is_some());
    assert!(b.take(&other).await.unwrap().is_some());
}

async fn a_request_on_another_node_takes_over_the_upload(pg: &testkit::postgres::Postgres) {
    let url = pg.database();
    let lease = Duration::from_secs(3);
    let shutdown = CancellationToken::new();
    let locks = |c: Arc<PgCluster>| {
        Locks::new(shutdown.clone(), Duration::from_secs(10)).with_cluster(c as Arc<dyn Cluster>)
    };
    let a = locks(node(&url, lease).await);
    let b = locks(node(&url, lease).await);
    let id = UploadId::random();
    let held = a.acquire(&id).await.expect("free");
    assert!(
        b.try_acquire(&id).await.is_none(),
        "background work does not wait"
    );
    // A's holder lets go when asked, as a PATCH does: it notices, commits, returns.
    let token = held.token();
    let holder = tokio::spawn(async move {
        token.cancelled().await;
        drop(held);
    });
    let took = Instant::now();
    let g = b.acquire(&id).await.expect("A let go");
    holder.await.unwrap();
    assert!(
        took.elapsed() < lease,
        "taken on request, not by waiting for the lease ({:?})",
        took.elapsed()
    );
    // A node that dies keeps nothing: B's guard is dropped without a release reaching the
    // database (its lease stays), and A takes the upload once the lease ran out.
    std::mem::forget(g);
    shutdown.cancel();
    let a2 = Locks::new(CancellationToken::new(), Duration::from_secs(10))
        .with_cluster(node(&url, lease).await as Arc<dyn Cluster>);
    drop(a);
    let waited = Instant::now();
    let _g = a2
        .acquire(&id)
        .await
        .expect("taken once the dead node's lease ran out");
    assert!(waited.elapsed() <= lease * 2, "{:?}", waited.elapsed());
}
