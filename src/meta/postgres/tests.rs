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
    let ta = a.take(&id).await.unwrap().expect("free");
    assert!(b.take(&id).await.unwrap().is_none(), "A holds it");
    assert!(
        a.take(&id).await.unwrap().is_some(),
        "a node retakes its own"
    );
    // B asks; A hears it.
    let mut asked = a.release_requests();
    // The listener may still be connecting: ask until A hears.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            b.ask_release(&id).await.unwrap();
            if tokio::time::timeout(Duration::from_millis(200), asked.recv())
                .await
                .is_ok_and(|r| r.unwrap() == id)
            {
                return;
            }
        }
    })
    .await
    .expect("A hears B's request");
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
