//! The hook outbox in SQLite (`hook_events`): written in the transactions of the changes that
//! cause the events, read and updated by the dispatcher and `tuskd hooks`.

use rusqlite::{Connection, Row, Transaction, params};

use crate::domain::upload::UploadId;
use crate::meta::rows::EventRow;
use crate::meta::{MetaError, OutboxEvent, StoredEvent};

const COLUMNS: &str = crate::meta::rows::EVENT_COLUMNS;

pub(super) fn put(tx: &Transaction<'_>, events: &[OutboxEvent], now: i64) -> Result<(), MetaError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO hook_events (id, kind, upload_id, payload, state, created_at, next_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?;
    for e in events {
        let state = if e.held { "held" } else { "pending" };
        stmt.execute(params![
            e.id,
            e.kind,
            e.upload.as_str(),
            e.payload,
            state,
            now
        ])?;
    }
    Ok(())
}

fn row(r: &Row<'_>) -> rusqlite::Result<Result<StoredEvent, MetaError>> {
    Ok(EventRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        upload: r.get(2)?,
        payload: r.get(3)?,
        state: r.get(4)?,
        attempts: r.get(5)?,
        created_at: r.get(6)?,
        next_at: r.get(7)?,
        last_error: r.get(8)?,
    }
    .into_event())
}

fn collect(
    rows: impl Iterator<Item = rusqlite::Result<Result<StoredEvent, MetaError>>>,
) -> Result<Vec<StoredEvent>, MetaError> {
    rows.map(|r| r?).collect()
}

pub(super) fn release(c: &Connection, upload: Option<&UploadId>) -> Result<(), MetaError> {
    match upload {
        Some(u) => c.execute(
            "UPDATE hook_events SET state = 'pending' WHERE upload_id = ?1 AND state = 'held'",
            [u.as_str()],
        )?,
        None => c.execute(
            "UPDATE hook_events SET state = 'pending' WHERE state = 'held'",
            [],
        )?,
    };
    Ok(())
}

pub(super) fn held_uploads(
    c: &Connection,
    before: i64,
    limit: usize,
) -> Result<Vec<UploadId>, MetaError> {
    let mut stmt = c.prepare_cached(
        "SELECT DISTINCT upload_id FROM hook_events
         WHERE state = 'held' AND created_at <= ?1 ORDER BY upload_id LIMIT ?2",
    )?;
    let ids = stmt
        .query_map(params![before, limit as i64], |r| r.get::<_, String>(0))?
        .filter_map(|r| r.ok().and_then(|s| UploadId::parse(&s)))
        .collect();
    Ok(ids)
}

pub(super) fn claim(
    c: &mut Connection,
    now: i64,
    lease_until: i64,
    limit: usize,
) -> Result<Vec<StoredEvent>, MetaError> {
    let tx = c.transaction()?;
    // An event waits while an older one of the same upload is undelivered (held, pending or
    // dead): receivers see an upload's events in order.
    let due = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM hook_events e
             WHERE state = 'pending' AND next_at <= ?1
               AND NOT EXISTS (SELECT 1 FROM hook_events o
                               WHERE o.upload_id = e.upload_id AND o.seq < e.seq)
             ORDER BY seq LIMIT ?2"
        ))?;
        collect(stmt.query_map(params![now, limit as i64], row)?)?
    };
    {
        let mut lease = tx.prepare_cached("UPDATE hook_events SET next_at = ?2 WHERE id = ?1")?;
        for e in &due {
            lease.execute(params![e.event.id, lease_until])?;
        }
    }
    tx.commit()?;
    Ok(due)
}

pub(super) fn delivered(c: &mut Connection, id: &str) -> Result<(), MetaError> {
    c.execute("DELETE FROM hook_events WHERE id = ?1", [id])?;
    Ok(())
}

pub(super) fn failed(
    c: &mut Connection,
    id: &str,
    error: &str,
    retry_at: Option<i64>,
) -> Result<(), MetaError> {
    match retry_at {
        Some(at) => c.execute(
            "UPDATE hook_events SET attempts = attempts + 1, next_at = ?2, last_error = ?3
             WHERE id = ?1",
            params![id, at, error],
        )?,
        None => c.execute(
            "UPDATE hook_events SET attempts = attempts + 1, state = 'dead', last_error = ?2
             WHERE id = ?1",
            params![id, error],
        )?,
    };
    Ok(())
}

pub(super) fn list(c: &Connection, failed_only: bool) -> Result<Vec<StoredEvent>, MetaError> {
    let filter = if failed_only {
        "WHERE state = 'dead'"
    } else {
        ""
    };
    let mut stmt = c.prepare(&format!(
        "SELECT {COLUMNS} FROM hook_events {filter} ORDER BY seq"
    ))?;
    collect(stmt.query_map([], row)?)
}

pub(super) fn retry(c: &mut Connection, id: &str, now: i64) -> Result<bool, MetaError> {
    let n = c.execute(
        "UPDATE hook_events SET state = 'pending', attempts = 0, next_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(n == 1)
}
