//! The figures the metrics read from Postgres at each scrape (`MetaStore::stats`).

use std::time::SystemTime;

use super::Db;
use crate::meta::rows::{from_ms, ms};
use crate::meta::{MetaError, MetaStats};

pub(super) async fn read(c: &impl Db) -> Result<MetaStats, MetaError> {
    let outbox = c
        .query_one(
            "SELECT count(*) FILTER (WHERE state IN ('held', 'pending')),
                    min(created_at) FILTER (WHERE state IN ('held', 'pending')),
                    count(*) FILTER (WHERE state = 'dead')
             FROM hook_events",
            &[],
        )
        .await?;
    let media = c
        .query("SELECT status, count(*) FROM media GROUP BY status", &[])
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)? as u64)))
        .collect::<Result<Vec<_>, MetaError>>()?;
    let now = ms(SystemTime::now());
    let media_due = c
        .query(
            &format!(
                // A long video's tasks are slow work.
                "SELECT lane, sum(n)::BIGINT FROM (
                    SELECT lane, count(*) AS n FROM media
                    WHERE NOT held AND status IN {} AND next_at <= $1
                      AND (lease_until IS NULL OR lease_until < $1)
                    GROUP BY lane
                    UNION ALL
                    SELECT 'slow', count(*) FROM media_tasks
                    WHERE (status = 'QUEUED' AND next_at <= $1)
                       OR (status = 'RUNNING' AND lease_until < $1)) AS due
                 GROUP BY lane HAVING sum(n) > 0",
                crate::meta::rows::OPEN_STATUSES
            ),
            &[&now],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)? as u64)))
        .collect::<Result<Vec<_>, MetaError>>()?;
    Ok(MetaStats {
        outbox_pending: outbox.try_get::<_, i64>(0)? as u64,
        outbox_oldest: outbox.try_get::<_, Option<i64>>(1)?.map(from_ms),
        dead_letters: outbox.try_get::<_, i64>(2)? as u64,
        media,
        media_due,
    })
}
