//! The hook outbox in Postgres. Dispatchers on every node claim events with
//! `FOR UPDATE SKIP LOCKED`: two claims that run at once take different events, and a claimed
//! event is due again only when its lease runs out. An event is claimable only while no older
//! event of its upload is undelivered (held, pending, leased or dead), so an upload's events go
//! out in order whichever node delivers them.

use super::Db;
use crate::domain::event::Work;
use crate::meta::rows::{EVENT_COLUMNS, EventRow};
use crate::meta::{MetaError, OutboxEvent, StoredEvent};

pub(super) async fn put(c: &impl Db, events: &[OutboxEvent], now: i64) -> Result<(), MetaError> {
    if events.is_empty() {
        return Ok(());
    }
    let stmt = c
        .prepare_cached(
            "INSERT INTO hook_events (id, kind, upload_id, payload, state, created_at, next_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .await?;
    for e in events {
        let state = if e.held { "held" } else { "pending" };
        c.execute(
            &stmt,
            &[&e.id, &e.kind, &e.upload.as_str(), &e.payload, &state, &now],
        )
        .await?;
    }
    if events.iter().any(|e| !e.held) {
        super::notify(c, Work::Events).await?;
    }
    Ok(())
}

fn row(r: &tokio_postgres::Row) -> Result<StoredEvent, MetaError> {
    EventRow {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        upload: r.try_get(2)?,
        payload: r.try_get(3)?,
        state: r.try_get(4)?,
        attempts: r.try_get::<_, i32>(5)? as i64,
        created_at: r.try_get(6)?,
        next_at: r.try_get(7)?,
        last_error: r.try_get(8)?,
    }
    .into_event()
}

pub(super) async fn claim(
    c: &impl Db,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, MetaError> {
    // The inner query locks the candidates it can (skipping those another claim holds); the
    // condition is checked again on each row's newest version, so an event another node just
    // leased is not taken twice.
    let stmt = c
        .prepare_cached(&format!(
            "WITH due AS (
                 SELECT e.seq FROM hook_events e
                 WHERE e.state = 'pending' AND e.next_at <= $1
                   AND NOT EXISTS (SELECT 1 FROM hook_events o
                                   WHERE o.upload_id = e.upload_id AND o.seq < e.seq)
                 ORDER BY e.seq LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             UPDATE hook_events h SET next_at = $2 FROM due
             WHERE h.seq = due.seq AND h.state = 'pending' AND h.next_at <= $1
             RETURNING {}, h.seq",
            EVENT_COLUMNS
                .split(", ")
                .map(|c| format!("h.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .await?;
    let mut rows = c.query(&stmt, &[&now, &lease_until, &limit]).await?;
    // RETURNING gives no order; deliveries are started oldest first.
    rows.sort_by_key(|r| r.try_get::<_, i64>(9).unwrap_or(0));
    rows.iter().map(row).collect()
}

pub(super) async fn list(c: &impl Db, failed_only: bool) -> Result<Vec<StoredEvent>, MetaError> {
    let filter = if failed_only {
        "WHERE state = 'dead'"
    } else {
        ""
    };
    let rows = c
        .query(
            &format!("SELECT {EVENT_COLUMNS} FROM hook_events {filter} ORDER BY seq"),
            &[],
        )
        .await?;
    rows.iter().map(row).collect()
}
