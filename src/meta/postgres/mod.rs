//! `MetaStore` on Postgres, for several nodes sharing one database: a pool of connections
//! (deadpool-postgres over tokio-postgres); the schema's migrations applied under an advisory
//! lock (`schema`); the outbox and media jobs claimed with `FOR UPDATE SKIP LOCKED` under
//! leases, so that each is taken by one node at a time (`outbox`, `media`); the object store's
//! parts (`parts`); and one writer per upload across the nodes (`locks`).
//!
//! Statements are prepared once per connection (`prepare_cached`); every change and the events
//! it causes share one transaction, as on SQLite.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use deadpool_postgres::{Client, GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use super::rows::{UPLOAD_COLUMNS, UploadRow, ms};
use super::{Effects, MetaError, MetaStats, MetaStore, OutboxEvent, StoredEvent, Work};
use crate::domain::lease::Cluster;
use crate::domain::listing::{ListQuery, Listed};
use crate::domain::media::{MediaOutcome, MediaRecord, MediaUpdate, Takes};
use crate::domain::quota::Quota;
use crate::domain::upload::{Upload, UploadId};

mod listing;
mod locks;
mod media;
mod outbox;
mod parts;
mod quota;
mod schema;
mod stats;
mod tasks;
#[cfg(test)]
mod tests;

/// How long a request waits for a free connection before it fails.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PgMeta {
    pool: Pool,
    cluster: Arc<locks::PgCluster>,
}

impl std::fmt::Debug for PgMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgMeta").finish_non_exhaustive()
    }
}

impl From<tokio_postgres::Error> for MetaError {
    fn from(e: tokio_postgres::Error) -> MetaError {
        let what = match e.as_db_error() {
            Some(db) => format!("postgres: {} ({})", db.message(), db.code().code()),
            None => match std::error::Error::source(&e) {
                // "error connecting to server" alone does not say why.
                Some(cause) => format!("postgres: {e}: {cause}"),
                None => format!("postgres: {e}"),
            },
        };
        // 53100 disk_full: the server could not extend a file.
        if e.code() == Some(&tokio_postgres::error::SqlState::DISK_FULL) {
            return MetaError::Full(what);
        }
        MetaError::backend(what, e)
    }
}

impl From<deadpool_postgres::PoolError> for MetaError {
    fn from(e: deadpool_postgres::PoolError) -> MetaError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            e => MetaError::backend(format!("postgres pool: {e}"), e),
        }
    }
}

impl PgMeta {
    /// Connects to `url` with a pool of `pool_size` connections, migrates the schema, and
    /// starts the locks across nodes (a listening connection and the lease renewal).
    pub async fn open(url: &str, pool_size: usize) -> Result<PgMeta, MetaError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| MetaError::backend(format!("not a usable Postgres URL: {e}"), e))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("tuskd");
        }
        // A node that vanishes without closing its connections (a host lost) is noticed.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(2))
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| MetaError::backend(format!("postgres pool: {e}"), e))?;
        let mut c = pool.get().await?;
        schema::migrate(&mut c).await?;
        drop(c);
        let cluster = Arc::new(locks::PgCluster::start(pool.clone(), config, locks::LEASE));
        Ok(PgMeta { pool, cluster })
    }

    /// The locks across the nodes that share this database.
    pub fn cluster(&self) -> Arc<dyn Cluster> {
        self.cluster.clone()
    }

    async fn client(&self) -> Result<Client, MetaError> {
        Ok(self.pool.get().await?)
    }

    /// A statement that changes rows; returns how many.
    async fn exec(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, MetaError> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(sql).await?;
        Ok(c.execute(&stmt, params).await?)
    }

    /// Upload ids a query returns in its first column.
    async fn ids(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<UploadId>, MetaError> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(sql).await?;
        let rows = c.query(&stmt, params).await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .filter_map(|s| UploadId::parse(&s))
            .collect())
    }

    /// Writes what the change of upload `id` causes (its events, the media job the core asked
    /// for) with it and commits, if the change happened; rolls back if it did not.
    async fn commit_if(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
        changed: bool,
        id: &UploadId,
        effects: &Effects,
    ) -> Result<bool, MetaError> {
        if changed {
            let now = ms(SystemTime::now());
            outbox::put(&tx, &effects.events, now).await?;
            if effects.media_job {
                media::enqueue(&tx, id, now).await?;
            }
            tx.commit().await?;
        }
        Ok(changed)
    }
}

fn upload_row(r: &tokio_postgres::Row) -> Result<Upload, MetaError> {
    UploadRow::read(r, 0)?.into_upload()
}

/// Records upload `u` in `tx`; `Exists` if its id is taken.
async fn put_upload(tx: &impl Db, u: &Upload) -> Result<(), MetaError> {
    let row = UploadRow::of(u);
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO uploads ({UPLOAD_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .await?;
    let r = tx
        .execute(
            &stmt,
            &[
                &row.id,
                &row.length,
                &row.offset,
                &row.metadata,
                &row.concat,
                &row.partials,
                &row.created_at,
                &row.expires_at,
                &row.state,
                &row.owner,
            ],
        )
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            Err(MetaError::Exists(u.id.clone()))
        }
        Err(e) => Err(e.into()),
    }
}

fn limit(n: usize) -> i64 {
    n.min(i64::MAX as usize) as i64
}

#[async_trait]
impl MetaStore for PgMeta {
    async fn insert(&self, u: &Upload, effects: &Effects, quota: &Quota) -> Result<(), MetaError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // An error returns before the commit, and dropping `tx` rolls everything back.
        quota::admit(&tx, u, quota).await?;
        put_upload(&tx, u).await?;
        self.commit_if(tx, true, &u.id, effects).await?;
        Ok(())
    }

    async fn list_uploads(&self, query: &ListQuery) -> Result<Vec<Listed>, MetaError> {
        let c = self.client().await?;
        listing::page(&c, query).await
    }

    async fn get(&self, id: &UploadId) -> Result<Option<Upload>, MetaError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1"
            ))
            .await?;
        c.query_opt(&stmt, &[&id.as_str()])
            .await?
            .map(|r| upload_row(&r))
            .transpose()
    }

    async fn advance(
        &self,
        id: &UploadId,
        expected: u64,
        new: u64,
        expires_at: Option<SystemTime>,
        effects: &Effects,
    ) -> Result<bool, MetaError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let stmt = tx
            .prepare_cached(
                "UPDATE uploads SET \"offset\" = $3, expires_at = $4
                 WHERE id = $1 AND \"offset\" = $2 AND state = 'active'",
            )
            .await?;
        let n = tx
            .execute(
                &stmt,
                &[
                    &id.as_str(),
                    &(expected as i64),
                    &(new as i64),
                    &expires_at.map(ms),
                ],
            )
            .await?;
        self.commit_if(tx, n == 1, id, effects).await
    }

    async fn set_length(
        &self,
        id: &UploadId,
        length: u64,
        effects: &Effects,
        quota: &Quota,
    ) -> Result<bool, MetaError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let owner = quota::length_owner(&tx, id, quota).await?;
        let stmt = tx
            .prepare_cached(
                "UPDATE uploads SET length = $2
                 WHERE id = $1 AND length IS NULL AND \"offset\" <= $2",
            )
            .await?;
        let n = tx.execute(&stmt, &[&id.as_str(), &(length as i64)]).await?;
        if let Some(owner) = owner.filter(|_| n == 1) {
            // Refused: `tx` is dropped, the length is not set.
            quota::length_fits(&tx, &owner, quota).await?;
        }
        self.commit_if(tx, n == 1, id, effects).await
    }

    async fn remove(&self, id: &UploadId, events: &[OutboxEvent]) -> Result<bool, MetaError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute("DELETE FROM uploads WHERE id = $1", &[&id.as_str()])
            .await?;
        tx.execute(
            "DELETE FROM media_tasks WHERE upload_id = $1",
            &[&id.as_str()],
        )
        .await?;
        tx.execute("DELETE FROM media WHERE id = $1", &[&id.as_str()])
            .await?;
        self.commit_if(tx, n == 1, id, &Effects::events(events.to_vec()))
            .await
    }

    fn work(&self) -> Option<tokio::sync::broadcast::Receiver<Work>> {
        Some(self.cluster.work())
    }

    async fn ping(&self) -> Result<(), MetaError> {
        self.exec(
            "INSERT INTO health (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = $1",
            &[&ms(SystemTime::now())],
        )
        .await?;
        Ok(())
    }

    async fn stats(&self) -> Result<MetaStats, MetaError> {
        stats::read(&self.client().await?).await
    }

    async fn release_events(&self, upload: Option<&UploadId>) -> Result<(), MetaError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let (events, jobs) = match upload {
            Some(u) => (
                tx.execute(
                    "UPDATE hook_events SET state = 'pending' WHERE upload_id = $1 AND state = 'held'",
                    &[&u.as_str()],
                )
                .await?,
                tx.execute(
                    "UPDATE media SET held = false WHERE id = $1 AND held",
                    &[&u.as_str()],
                )
                .await?,
            ),
            None => (
                tx.execute(
                    "UPDATE hook_events SET state = 'pending' WHERE state = 'held'",
                    &[],
                )
                .await?,
                tx.execute("UPDATE media SET held = false WHERE held", &[])
                    .await?,
            ),
        };
        // Delivered when the transaction commits, to every node listening.
        if events > 0 {
            notify(&tx, Work::Events).await?;
        }
        if jobs > 0 {
            notify(&tx, Work::MediaJobs).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn held_uploads(&self, before: SystemTime, n: usize) -> Result<Vec<UploadId>, MetaError> {
        self.ids(
            "SELECT id FROM (
                 SELECT upload_id AS id FROM hook_events WHERE state = 'held' AND created_at <= $1
                 UNION
                 SELECT id FROM media WHERE held AND created_at <= $1
             ) held ORDER BY id LIMIT $2",
            &[&ms(before), &limit(n)],
        )
        .await
    }

    async fn pending_finals(&self, n: usize) -> Result<Vec<UploadId>, MetaError> {
        self.ids(
            "SELECT id FROM uploads WHERE partials IS NOT NULL AND state = 'active'
               AND (length IS NULL OR \"offset\" < length)
             ORDER BY created_at LIMIT $1",
            &[&limit(n)],
        )
        .await
    }

    async fn claim_events(
        &self,
        now: SystemTime,
        lease_until: SystemTime,
        n: usize,
    ) -> Result<Vec<StoredEvent>, MetaError> {
        let c = self.client().await?;
        outbox::claim(&c, ms(now), ms(lease_until), limit(n)).await
    }

    async fn event_delivered(&self, id: &str) -> Result<(), MetaError> {
        self.exec("DELETE FROM hook_events WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    async fn event_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<SystemTime>,
    ) -> Result<(), MetaError> {
        match retry_at {
            Some(at) => {
                self.exec(
                    "UPDATE hook_events SET attempts = attempts + 1, next_at = $2, last_error = $3
                     WHERE id = $1",
                    &[&id, &ms(at), &error],
                )
                .await?
            }
            None => {
                self.exec(
                    "UPDATE hook_events SET attempts = attempts + 1, state = 'dead', last_error = $2
                     WHERE id = $1",
                    &[&id, &error],
                )
                .await?
            }
        };
        Ok(())
    }

    async fn list_events(&self, failed_only: bool) -> Result<Vec<StoredEvent>, MetaError> {
        let c = self.client().await?;
        outbox::list(&c, failed_only).await
    }

    async fn retry_event(&self, id: &str) -> Result<bool, MetaError> {
        let n = self
            .exec(
                "UPDATE hook_events SET state = 'pending', attempts = 0, next_at = $2 WHERE id = $1",
                &[&id, &ms(SystemTime::now())],
            )
            .await?;
        Ok(n == 1)
    }

    async fn due_to_expire(&self, now: SystemTime, n: usize) -> Result<Vec<UploadId>, MetaError> {
        self.ids(
            "SELECT id FROM uploads WHERE state = 'active' AND expires_at IS NOT NULL
               AND expires_at <= $1 AND (length IS NULL OR \"offset\" < length)
             ORDER BY expires_at LIMIT $2",
            &[&ms(now), &limit(n)],
        )
        .await
    }

    async fn mark_expired(&self, id: &UploadId, at: SystemTime) -> Result<(), MetaError> {
        self.exec(
            "UPDATE uploads SET state = 'expired', expires_at = $2 WHERE id = $1",
            &[&id.as_str(), &ms(at)],
        )
        .await?;
        Ok(())
    }

    async fn purge_expired(&self, before: SystemTime) -> Result<usize, MetaError> {
        let n = self
            .exec(
                "DELETE FROM uploads WHERE state = 'expired' AND expires_at < $1",
                &[&ms(before)],
            )
            .await?;
        Ok(n as usize)
    }

    async fn media(&self, id: &UploadId) -> Result<Option<MediaRecord>, MetaError> {
        let c = self.client().await?;
        media::get(&c, id).await
    }

    async fn claim_media(
        &self,
        owner: &str,
        takes: Takes,
        now: SystemTime,
        lease_until: SystemTime,
    ) -> Result<Option<MediaRecord>, MetaError> {
        let c = self.client().await?;
        media::claim(&c, owner, takes, ms(now), ms(lease_until)).await
    }

    async fn update_media(
        &self,
        id: &UploadId,
        owner: &str,
        update: &MediaUpdate,
    ) -> Result<bool, MetaError> {
        let mut c = self.client().await?;
        let now = ms(SystemTime::now());
        if update.events.is_empty() {
            return media::update(&c, id, owner, update, now).await;
        }
        let tx = c.transaction().await?;
        let updated = media::update(&tx, id, owner, update, now).await?;
        if updated {
            outbox::put(&tx, &update.events, now).await?;
            tx.commit().await?;
        }
        Ok(updated)
    }

    async fn end_media(
        &self,
        id: &UploadId,
        owner: &str,
        outcome: &MediaOutcome,
        events: &[OutboxEvent],
    ) -> Result<Option<MediaRecord>, MetaError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let now = ms(SystemTime::now());
        let before = media::done(&tx, id, owner, outcome, now).await?;
        if before.is_some() {
            outbox::put(&tx, events, now).await?;
            tx.commit().await?;
        }
        Ok(before)
    }

    async fn list_media(&self, failed_only: bool) -> Result<Vec<MediaRecord>, MetaError> {
        let c = self.client().await?;
        media::list(&c, failed_only).await
    }

    async fn retry_media(&self, id: &UploadId) -> Result<bool, MetaError> {
        let c = self.client().await?;
        media::retry(&c, id, ms(SystemTime::now())).await
    }
}

/// Tells every node that `work` is there, when the transaction of `c` commits (at once outside
/// one). Postgres folds repeats within a transaction into one.
pub(super) async fn notify(c: &impl Db, work: Work) -> Result<(), MetaError> {
    let stmt = c
        .prepare_cached(&format!("SELECT pg_notify('{}', $1)", locks::WORK))
        .await?;
    c.query(&stmt, &[&work.name()]).await?;
    Ok(())
}

/// The statement runner both a pooled connection and a transaction are.
pub(super) trait Db: GenericClient + Sync {}
impl<T: GenericClient + Sync> Db for T {}
