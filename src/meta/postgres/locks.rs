//! Locks across nodes (`domain::lease::Cluster`) as lease rows in `upload_locks`, with
//! LISTEN/NOTIFY for "let go" and "given back"; the same listening connection hears the
//! work other nodes release (`Work`: due events, runnable media jobs).
//!
//! Lease rows rather than session advisory locks: an advisory lock lives as long as the
//! connection that took it, so every upload being written would pin one pooled connection for
//! as long as its PATCH streams (hours, for a large file on a slow link); the pool, not the
//! bandwidth, would bound the uploads a node can take. A lease row costs one statement to take,
//! one to give back, and one per node every few seconds to renew all of a node's leases; a node
//! that died loses its uploads after at most `LEASE`. Leases are timed by the database's clock.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

use crate::domain::event::Work;
use crate::domain::lease::{Cluster, LeaseError};
use crate::domain::upload::UploadId;

/// How long a lease lasts without renewal (renewed every quarter of it).
pub(super) const LEASE: Duration = Duration::from_secs(12);
/// "Let go of this upload": payload `node upload`.
const RELEASE: &str = "tuskd_release";
/// "This upload's lease was given back": payload `upload`.
const RELEASED: &str = "tuskd_released";
/// "Work was released" (`Work`): payload `events` or `media`.
pub(super) const WORK: &str = "tuskd_work";

pub(super) struct PgCluster {
    pool: Pool,
    node: String,
    requests: broadcast::Sender<UploadId>,
    released: broadcast::Sender<UploadId>,
    work: broadcast::Sender<Work>,
    stop: CancellationToken,
    lease: Duration,
}

impl std::fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCluster")
            .field("node", &self.node)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl PgCluster {
    /// Starts listening on a connection of its own (reconnecting if it breaks). `lease`: how
    /// long a lease lasts without renewal.
    pub(super) fn start(pool: Pool, config: tokio_postgres::Config, lease: Duration) -> PgCluster {
        let (requests, _) = broadcast::channel(256);
        let (released, _) = broadcast::channel(1024);
        let (work, _) = broadcast::channel(256);
        let node = crate::host::node_name();
        let stop = CancellationToken::new();
        let heard = Heard {
            node: node.clone(),
            requests: requests.clone(),
            released: released.clone(),
            work: work.clone(),
        };
        tokio::spawn(listen(config, heard, stop.clone()));
        PgCluster {
            pool,
            node,
            requests,
            released,
            work,
            stop,
            lease,
        }
    }

    /// Work any node released, as it is heard.
    pub(super) fn work(&self) -> broadcast::Receiver<Work> {
        self.work.subscribe()
    }
}

/// Where the listener passes on what it hears.
struct Heard {
    /// This node's name: release requests for other nodes are not passed on.
    node: String,
    requests: broadcast::Sender<UploadId>,
    released: broadcast::Sender<UploadId>,
    work: broadcast::Sender<Work>,
}

impl Heard {
    fn pass_on(&self, channel: &str, payload: &str) {
        match channel {
            RELEASE => {
                if let Some((to, id)) = payload.split_once(' ')
                    && to == self.node
                    && let Some(id) = UploadId::parse(id)
                {
                    let _ = self.requests.send(id);
                }
            }
            WORK => {
                if let Some(w) = Work::parse(payload) {
                    let _ = self.work.send(w);
                }
            }
            _ => {
                if let Some(id) = UploadId::parse(payload) {
                    let _ = self.released.send(id);
                }
            }
        }
    }
}

async fn listen(config: tokio_postgres::Config, heard: Heard, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let session = async {
            let (client, mut conn) = config.connect(NoTls).await?;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let drive = tokio::spawn(async move {
                while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                    match m {
                        Ok(AsyncMessage::Notification(n)) => {
                            if tx
                                .send((n.channel().to_owned(), n.payload().to_owned()))
                                .is_err()
                            {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!("the lock listener's connection failed: {e}");
                            return;
                        }
                    }
                }
            });
            client
                .batch_execute(&format!(
                    "LISTEN {RELEASE}; LISTEN {RELEASED}; LISTEN {WORK}"
                ))
                .await?;
            while let Some((channel, payload)) = rx.recv().await {
                heard.pass_on(&channel, &payload);
            }
            drive.abort();
            Ok::<(), tokio_postgres::Error>(())
        };
        tokio::select! {
            () = stop.cancelled() => return,
            r = session => {
                if let Err(e) = r {
                    tracing::warn!("the lock listener cannot reach Postgres: {e}");
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

impl From<tokio_postgres::Error> for LeaseError {
    fn from(e: tokio_postgres::Error) -> LeaseError {
        LeaseError::new(e)
    }
}

impl From<deadpool_postgres::PoolError> for LeaseError {
    fn from(e: deadpool_postgres::PoolError) -> LeaseError {
        LeaseError::new(e)
    }
}

#[async_trait]
impl Cluster for PgCluster {
    async fn take(&self, id: &UploadId) -> Result<Option<i64>, LeaseError> {
        let token: i64 = rand::random();
        let c = self.pool.get().await?;
        let stmt = c
            .prepare_cached(
                "INSERT INTO upload_locks (id, owner, token, until)
                 VALUES ($1, $2, $3, clock_timestamp() + make_interval(secs => $4))
                 ON CONFLICT (id) DO UPDATE
                     SET owner = excluded.owner, token = excluded.token, until = excluded.until
                     WHERE upload_locks.owner = excluded.owner
                        OR upload_locks.until < clock_timestamp()
                 RETURNING token",
            )
            .await?;
        let row = c
            .query_opt(
                &stmt,
                &[&id.as_str(), &self.node, &token, &self.lease.as_secs_f64()],
            )
            .await?;
        Ok(row.map(|_| token))
    }

    async fn ask_release(&self, id: &UploadId) -> Result<(), LeaseError> {
        let c = self.pool.get().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT pg_notify('{RELEASE}', owner || ' ' || id) FROM upload_locks
                 WHERE id = $1 AND owner <> $2 AND until >= clock_timestamp()"
            ))
            .await?;
        c.query(&stmt, &[&id.as_str(), &self.node]).await?;
        Ok(())
    }

    async fn release(&self, id: &UploadId, token: i64) -> Result<(), LeaseError> {
        let c = self.pool.get().await?;
        let stmt = c
            .prepare_cached(&format!(
                "WITH gone AS (DELETE FROM upload_locks WHERE id = $1 AND token = $2 RETURNING id)
                 SELECT pg_notify('{RELEASED}', id) FROM gone"
            ))
            .await?;
        c.query(&stmt, &[&id.as_str(), &token]).await?;
        Ok(())
    }

    async fn release_all(&self) -> Result<(), LeaseError> {
        let c = self.pool.get().await?;
        c.query(
            &format!(
                "WITH gone AS (DELETE FROM upload_locks WHERE owner = $1 RETURNING id)
                 SELECT pg_notify('{RELEASED}', id) FROM gone"
            ),
            &[&self.node],
        )
        .await?;
        Ok(())
    }

    async fn renew(&self, held: &[UploadId]) -> Result<Vec<UploadId>, LeaseError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = held.iter().map(|i| i.as_str()).collect();
        let c = self.pool.get().await?;
        let stmt = c
            .prepare_cached(
                "UPDATE upload_locks SET until = clock_timestamp() + make_interval(secs => $3)
                 WHERE owner = $1 AND id = ANY($2) RETURNING id",
            )
            .await?;
        let kept: std::collections::HashSet<String> = c
            .query(&stmt, &[&self.node, &ids, &self.lease.as_secs_f64()])
            .await?
            .iter()
            .filter_map(|r| r.try_get(0).ok())
            .collect();
        Ok(held
            .iter()
            .filter(|i| !kept.contains(i.as_str()))
            .cloned()
            .collect())
    }

    fn release_requests(&self) -> broadcast::Receiver<UploadId> {
        self.requests.subscribe()
    }

    fn released(&self) -> broadcast::Receiver<UploadId> {
        self.released.subscribe()
    }

    fn lease(&self) -> Duration {
        self.lease
    }
}
