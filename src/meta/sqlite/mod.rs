//! `MetaStore` on SQLite: WAL mode, one writer connection and a few readers, each on a thread
//! of its own (`threads`), so that a slow commit never stalls the async workers and
//! body I/O never keeps the store waiting. The schema and its migrations are in `schema`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};

use super::{Effects, MetaError, MetaStore, OutboxEvent, StoredEvent};
use crate::domain::listing::{ListQuery, Listed};
use crate::domain::media::{MediaOutcome, MediaRecord, MediaUpdate, Takes};
use crate::domain::quota::Quota;
use crate::domain::upload::{Upload, UploadId};
use crate::meta::rows::UploadRow;
use schema::migrate;
use threads::Threads;

mod listing;
mod media;
mod outbox;
mod parts;
mod quota;
mod schema;
mod stats;
mod tasks;
#[cfg(test)]
mod tests;
mod threads;

const READERS: usize = 4;

impl From<rusqlite::Error> for MetaError {
    fn from(e: rusqlite::Error) -> MetaError {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return MetaError::Full(format!("sqlite: {e}"));
        }
        MetaError::backend(format!("sqlite: {e}"), e)
    }
}

pub struct SqliteMeta {
    threads: Threads,
}

impl std::fmt::Debug for SqliteMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteMeta").finish_non_exhaustive()
    }
}

impl SqliteMeta {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// `durable` makes every commit reach the disk before it returns (synchronous=FULL).
    pub fn open(path: &Path, durable: bool) -> Result<SqliteMeta, MetaError> {
        let writer = Connection::open(path)?;
        configure(&writer, durable)?;
        migrate(&writer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            r.busy_timeout(Duration::from_secs(10))?;
            readers.push(r);
        }
        let threads = Threads::start(writer, readers)
            .map_err(|e| MetaError::Task(format!("cannot start the database threads: {e}")))?;
        Ok(SqliteMeta { threads })
    }

    pub(super) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        self.threads.write(f).await
    }

    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        self.threads.read(f).await
    }
}

fn configure(c: &Connection, durable: bool) -> Result<(), MetaError> {
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", if durable { "FULL" } else { "NORMAL" })?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    c.busy_timeout(Duration::from_secs(10))?;
    Ok(())
}

/// Writes what the change of upload `id` causes and commits, if the change happened; else
/// rolls back.
fn commit_if(
    tx: rusqlite::Transaction<'_>,
    changed: bool,
    id: &UploadId,
    effects: &Effects,
) -> Result<bool, MetaError> {
    if changed {
        put_effects(&tx, id, effects)?;
        tx.commit()?;
    }
    Ok(changed)
}

/// The outbox events and the media job of a change, in its transaction.
fn put_effects(
    tx: &rusqlite::Transaction<'_>,
    id: &UploadId,
    effects: &Effects,
) -> Result<(), MetaError> {
    let now = ms(SystemTime::now());
    outbox::put(tx, &effects.events, now)?;
    if effects.media_job {
        media::enqueue(tx, id, now)?;
    }
    Ok(())
}

fn put_events(tx: &rusqlite::Transaction<'_>, events: &[OutboxEvent]) -> Result<(), MetaError> {
    outbox::put(tx, events, ms(SystemTime::now()))
}

pub(super) use crate::meta::rows::{from_ms, ms};

const COLUMNS: &str = crate::meta::rows::UPLOAD_COLUMNS;

fn row_to_upload(r: &Row<'_>) -> rusqlite::Result<Result<Upload, MetaError>> {
    Ok(UploadRow::read(r, 0).and_then(UploadRow::into_upload))
}

/// Records upload `u` in `tx`; `Exists` if its id is taken.
fn put_upload(tx: &rusqlite::Transaction<'_>, u: &Upload) -> Result<(), MetaError> {
    let row = UploadRow::of(u);
    let r = tx
        .prepare_cached(&format!(
            "INSERT INTO uploads ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ))?
        .execute(params![
            row.id,
            row.length,
            row.offset,
            row.metadata,
            row.concat,
            row.partials,
            row.created_at,
            row.expires_at,
            row.state,
            row.owner,
        ]);
    match r {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(MetaError::Exists(u.id.clone()))
        }
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl MetaStore for SqliteMeta {
    async fn insert(&self, u: &Upload, effects: &Effects, quota: &Quota) -> Result<(), MetaError> {
        let (u, effects, quota) = (u.clone(), effects.clone(), quota.clone());
        self.write(move |c| {
            // Immediate: the quota's figures are read under the write lock (see `quota`). An
            // error returns before the commit, and dropping `tx` rolls everything back.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            quota::admit(&tx, &u, &quota)?;
            put_upload(&tx, &u)?;
            put_effects(&tx, &u.id, &effects)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn list_uploads(&self, query: &ListQuery) -> Result<Vec<Listed>, MetaError> {
        let query = query.clone();
        self.read(move |c| listing::page(c, &query)).await
    }

    async fn get(&self, id: &UploadId) -> Result<Option<Upload>, MetaError> {
        let id = id.clone();
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {COLUMNS} FROM uploads WHERE id = ?1"))?;
            stmt.query_row([id.as_str()], row_to_upload)
                .optional()?
                .transpose()
        })
        .await
    }

    async fn advance(
        &self,
        id: &UploadId,
        expected: u64,
        new: u64,
        expires_at: Option<SystemTime>,
        effects: &Effects,
    ) -> Result<bool, MetaError> {
        let id = id.clone();
        let effects = effects.clone();
        self.write(move |c| {
            let tx = c.transaction()?;
            let n = tx
                .prepare_cached(
                    "UPDATE uploads SET offset = ?3, expires_at = ?4
                     WHERE id = ?1 AND offset = ?2 AND state = 'active'",
                )?
                .execute(params![
                    id.as_str(),
                    expected as i64,
                    new as i64,
                    expires_at.map(ms)
                ])?;
            commit_if(tx, n == 1, &id, &effects)
        })
        .await
    }

    async fn set_length(
        &self,
        id: &UploadId,
        length: u64,
        effects: &Effects,
        quota: &Quota,
    ) -> Result<bool, MetaError> {
        let (id, effects, quota) = (id.clone(), effects.clone(), quota.clone());
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "UPDATE uploads SET length = ?2 WHERE id = ?1 AND length IS NULL AND offset <= ?2",
                params![id.as_str(), length as i64],
            )?;
            if n == 1 {
                // Refused: `tx` is dropped, the length is not set.
                quota::length_fits(&tx, &id, &quota)?;
            }
            commit_if(tx, n == 1, &id, &effects)
        })
        .await
    }

    async fn remove(&self, id: &UploadId, events: &[OutboxEvent]) -> Result<bool, MetaError> {
        let id = id.clone();
        let events = events.to_vec();
        self.write(move |c| {
            let tx = c.transaction()?;
            let n = tx.execute("DELETE FROM uploads WHERE id = ?1", [id.as_str()])?;
            media::forget(&tx, &id)?;
            commit_if(tx, n == 1, &id, &Effects::events(events))
        })
        .await
    }

    async fn ping(&self) -> Result<(), MetaError> {
        let now = ms(SystemTime::now());
        self.write(move |c| {
            c.prepare_cached("INSERT OR REPLACE INTO health (id, at) VALUES (1, ?1)")?
                .execute([now])?;
            Ok(())
        })
        .await
    }

    async fn stats(&self) -> Result<crate::meta::MetaStats, MetaError> {
        self.read(stats::read).await
    }

    async fn release_events(&self, upload: Option<&UploadId>) -> Result<(), MetaError> {
        let upload = upload.cloned();
        self.write(move |c| {
            let tx = c.transaction()?;
            outbox::release(&tx, upload.as_ref())?;
            media::release(&tx, upload.as_ref())?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn held_uploads(
        &self,
        before: SystemTime,
        limit: usize,
    ) -> Result<Vec<UploadId>, MetaError> {
        self.read(move |c| {
            let mut ids = outbox::held_uploads(c, ms(before), limit)?;
            ids.extend(media::held_before(c, ms(before), limit)?);
            ids.sort();
            ids.dedup();
            ids.truncate(limit);
            Ok(ids)
        })
        .await
    }

    async fn pending_finals(&self, limit: usize) -> Result<Vec<UploadId>, MetaError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id FROM uploads INDEXED BY uploads_pending_finals
                 WHERE partials IS NOT NULL AND state = 'active'
                   AND (length IS NULL OR offset < length)
                 ORDER BY created_at LIMIT ?1",
            )?;
            let ids = stmt
                .query_map([limit as i64], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok().and_then(|s| UploadId::parse(&s)))
                .collect();
            Ok(ids)
        })
        .await
    }

    async fn claim_events(
        &self,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, MetaError> {
        self.write(move |c| outbox::claim(c, ms(now), ms(lease_until), limit))
            .await
    }

    async fn event_delivered(&self, id: &str) -> Result<(), MetaError> {
        let id = id.to_owned();
        self.write(move |c| outbox::delivered(c, &id)).await
    }

    async fn event_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<SystemTime>,
    ) -> Result<(), MetaError> {
        let (id, error) = (id.to_owned(), error.to_owned());
        self.write(move |c| outbox::failed(c, &id, &error, retry_at.map(ms)))
            .await
    }

    async fn list_events(&self, failed_only: bool) -> Result<Vec<StoredEvent>, MetaError> {
        self.read(move |c| outbox::list(c, failed_only)).await
    }

    async fn retry_event(&self, id: &str) -> Result<bool, MetaError> {
        let id = id.to_owned();
        self.write(move |c| outbox::retry(c, &id, ms(SystemTime::now())))
            .await
    }

    async fn due_to_expire(
        &self,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<UploadId>, MetaError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id FROM uploads WHERE state = 'active' AND expires_at IS NOT NULL
                 AND expires_at <= ?1 AND (length IS NULL OR offset < length)
                 ORDER BY expires_at LIMIT ?2",
            )?;
            let ids = stmt
                .query_map(params![ms(now), limit as i64], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok().and_then(|s| UploadId::parse(&s)))
                .collect();
            Ok(ids)
        })
        .await
    }

    async fn mark_expired(&self, id: &UploadId, at: SystemTime) -> Result<(), MetaError> {
        let id = id.clone();
        self.write(move |c| {
            c.execute(
                "UPDATE uploads SET state = 'expired', expires_at = ?2 WHERE id = ?1",
                params![id.as_str(), ms(at)],
            )?;
            Ok(())
        })
        .await
    }

    async fn purge_expired(&self, before: SystemTime) -> Result<usize, MetaError> {
        self.write(move |c| {
            Ok(c.execute(
                "DELETE FROM uploads WHERE state = 'expired' AND expires_at < ?1",
                [ms(before)],
            )?)
        })
        .await
    }

    async fn media(&self, id: &UploadId) -> Result<Option<MediaRecord>, MetaError> {
        let id = id.clone();
        self.read(move |c| media::get(c, &id)).await
    }

    async fn claim_media(
        &self,
        owner: &str,
        takes: Takes,
        now: SystemTime,
        lease_until: SystemTime,
    ) -> Result<Option<MediaRecord>, MetaError> {
        let owner = owner.to_owned();
        self.write(move |c| media::claim(c, &owner, takes, ms(now), ms(lease_until)))
            .await
    }

    async fn update_media(
        &self,
        id: &UploadId,
        owner: &str,
        update: &MediaUpdate,
    ) -> Result<bool, MetaError> {
        let (id, owner, update) = (id.clone(), owner.to_owned(), update.clone());
        self.write(move |c| {
            let tx = c.transaction()?;
            let updated = media::update(&tx, &id, &owner, &update, ms(SystemTime::now()))?;
            if updated {
                put_events(&tx, &update.events)?;
                tx.commit()?;
            }
            Ok(updated)
        })
        .await
    }

    async fn end_media(
        &self,
        id: &UploadId,
        owner: &str,
        outcome: &MediaOutcome,
        events: &[OutboxEvent],
    ) -> Result<Option<MediaRecord>, MetaError> {
        let (id, owner, outcome) = (id.clone(), owner.to_owned(), outcome.clone());
        let events = events.to_vec();
        self.write(move |c| {
            let tx = c.transaction()?;
            let before = media::done(&tx, &id, &owner, &outcome, ms(SystemTime::now()))?;
            if before.is_some() {
                put_events(&tx, &events)?;
                tx.commit()?;
            }
            Ok(before)
        })
        .await
    }

    async fn list_media(&self, failed_only: bool) -> Result<Vec<MediaRecord>, MetaError> {
        self.read(move |c| media::list(c, failed_only)).await
    }

    async fn retry_media(&self, id: &UploadId) -> Result<bool, MetaError> {
        let id = id.clone();
        self.write(move |c| media::retry(c, &id, ms(SystemTime::now())))
            .await
    }
}
