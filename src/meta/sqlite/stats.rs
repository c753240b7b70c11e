//! The figures the metrics read from SQLite at each scrape (`MetaStore::stats`).

use std::time::SystemTime;

use rusqlite::Connection;

use super::{from_ms, ms};
use crate::meta::{MetaError, MetaStats};

pub(super) fn read(c: &Connection) -> Result<MetaStats, MetaError> {
    let (pending, oldest): (i64, Option<i64>) = c
        .prepare_cached(
            "SELECT count(*), min(created_at) FROM hook_events
             WHERE state IN ('held', 'pending')",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let dead: i64 = c
        .prepare_cached("SELECT count(*) FROM hook_events WHERE state = 'dead'")?
        .query_row([], |r| r.get(0))?;
    let mut stmt = c.prepare_cached("SELECT status, count(*) FROM media GROUP BY status")?;
    let media = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = c.prepare_cached(&format!(
        // A long video's tasks are slow work.
        "SELECT lane, sum(n) FROM (
            SELECT lane, count(*) AS n FROM media INDEXED BY media_due
            WHERE held = 0 AND status IN {} AND next_at <= ?1
              AND (lease_until IS NULL OR lease_until < ?1)
            GROUP BY lane
            UNION ALL
            SELECT 'slow', count(*) FROM media_tasks
            WHERE (status = 'QUEUED' AND next_at <= ?1)
               OR (status = 'RUNNING' AND lease_until < ?1))
         GROUP BY lane HAVING sum(n) > 0",
        crate::meta::rows::OPEN_STATUSES
    ))?;
    let media_due = stmt
        .query_map([ms(SystemTime::now())], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MetaStats {
        outbox_pending: pending as u64,
        outbox_oldest: oldest.map(from_ms),
        dead_letters: dead as u64,
        media,
        media_due,
    })
}
