//! The Postgres schema: numbered migrations applied in order at start-up, tracked in
//! `tuskd_schema`. Nodes that start together take a transaction-scoped advisory lock first, so
//! that exactly one of them migrates and the others see its result.

use deadpool_postgres::Client;

use crate::meta::MetaError;

/// The advisory lock key under which migrations run ("tuskd" in ASCII).
const MIGRATION_LOCK: i64 = 0x74_7573_6b64;

/// Migration `i` takes the schema from version `i` to `i + 1`. Times are unix milliseconds
/// (the nodes' clocks, as on SQLite), except the lock leases, which use the database's clock so
/// that nodes with skewed clocks still agree on when a lease ran out.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's migrations 1-8 built, in Postgres' terms.
    "CREATE TABLE uploads (
        id          TEXT PRIMARY KEY,
        length      BIGINT,
        \"offset\"  BIGINT NOT NULL,
        metadata    TEXT,
        concat      TEXT,
        partials    TEXT,
        created_at  BIGINT NOT NULL,
        expires_at  BIGINT,
        state       TEXT NOT NULL DEFAULT 'active'
    );
    CREATE INDEX uploads_expiry ON uploads (expires_at)
        WHERE expires_at IS NOT NULL AND state = 'active';
    CREATE INDEX uploads_expired ON uploads (expires_at) WHERE state = 'expired';
    CREATE INDEX uploads_pending_finals ON uploads (created_at)
        WHERE partials IS NOT NULL AND state = 'active'
          AND (length IS NULL OR \"offset\" < length);
    CREATE TABLE object_uploads (
        id          TEXT PRIMARY KEY,
        part_size   BIGINT NOT NULL,
        multipart   TEXT
    );
    CREATE TABLE object_parts (
        id          TEXT NOT NULL REFERENCES object_uploads (id) ON DELETE CASCADE,
        idx         BIGINT NOT NULL,
        content_id  TEXT NOT NULL,
        PRIMARY KEY (id, idx)
    );
    CREATE TABLE object_tails (
        id          TEXT NOT NULL REFERENCES object_uploads (id) ON DELETE CASCADE,
        idx         BIGINT NOT NULL,
        PRIMARY KEY (id, idx)
    );
    CREATE TABLE hook_events (
        seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        kind        TEXT NOT NULL,
        upload_id   TEXT NOT NULL,
        payload     TEXT NOT NULL,
        state       TEXT NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        created_at  BIGINT NOT NULL,
        next_at     BIGINT NOT NULL,
        last_error  TEXT
    );
    CREATE INDEX hook_events_due ON hook_events (next_at) WHERE state = 'pending';
    CREATE INDEX hook_events_upload ON hook_events (upload_id, seq);
    CREATE INDEX hook_events_held ON hook_events (created_at) WHERE state = 'held';
    CREATE TABLE media (
        id              TEXT PRIMARY KEY,
        status          TEXT NOT NULL,
        held            BOOLEAN NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_at         BIGINT NOT NULL,
        lease_owner     TEXT,
        lease_until     BIGINT,
        progress        DOUBLE PRECISION NOT NULL DEFAULT 0,
        reason_code     TEXT,
        reason          TEXT,
        detected        TEXT,
        probe           TEXT,
        published       TEXT,
        pending_version TEXT,
        length          BIGINT NOT NULL,
        created_at      BIGINT NOT NULL,
        updated_at      BIGINT NOT NULL,
        scan            TEXT
    );
    CREATE INDEX media_due ON media (next_at)
        WHERE NOT held AND status IN ('RECEIVED', 'VALIDATING', 'SCANNING', 'PROCESSING');
    CREATE INDEX media_held ON media (created_at) WHERE held;
    CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), at BIGINT NOT NULL);
    -- One writer per upload across the nodes (lock::Cluster): the holder's node and a token
    -- of its take, until the lease runs out (the database's clock).
    CREATE TABLE upload_locks (
        id          TEXT PRIMARY KEY,
        owner       TEXT NOT NULL,
        token       BIGINT NOT NULL,
        until       TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX upload_locks_owner ON upload_locks (owner);",
    // 2: SQLite's migration 9: the owner of an upload, the listings' indexes, and what one
    // owner's active uploads hold (the quotas), read from the index alone.
    "ALTER TABLE uploads ADD COLUMN owner TEXT;
    CREATE INDEX uploads_owner_listed ON uploads (owner, created_at DESC, id DESC)
        WHERE state = 'active';
    CREATE INDEX uploads_listed ON uploads (created_at DESC, id DESC) WHERE state = 'active';
    CREATE INDEX uploads_owner_quota ON uploads (owner, state) INCLUDE (length, \"offset\")
        WHERE owner IS NOT NULL;",
    // 3: SQLite's migration 10: the upload's owner on its media record.
    "ALTER TABLE media ADD COLUMN owner TEXT;
    UPDATE media m SET owner = u.owner FROM uploads u WHERE u.id = m.id;",
    // 4: SQLite's migration 11: uploads each owner created per fixed minute.
    "CREATE TABLE owner_rates (
        owner           TEXT NOT NULL,
        window_start_ms BIGINT NOT NULL,
        count           BIGINT NOT NULL,
        PRIMARY KEY (owner, window_start_ms)
    );",
    // 5: SQLite's migration 12: the lane a media job waits in; PLAYABLE is an open status.
    "ALTER TABLE media ADD COLUMN lane TEXT NOT NULL DEFAULT 'fast'
        CHECK (lane IN ('fast', 'slow'));
    DROP INDEX media_due;
    CREATE INDEX media_due ON media (next_at)
        WHERE NOT held
          AND status IN ('RECEIVED', 'VALIDATING', 'SCANNING', 'PROCESSING', 'PLAYABLE');",
    // 6: SQLite's migration 13: a media job's tasks.
    "CREATE TABLE media_tasks (
        upload_id   TEXT NOT NULL,
        name        TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        version     TEXT NOT NULL,
        spec        TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'DONE', 'FAILED')),
        attempts    INTEGER NOT NULL DEFAULT 0,
        worker      TEXT,
        lease_owner TEXT,
        lease_until BIGINT,
        next_at     BIGINT NOT NULL,
        progress    DOUBLE PRECISION NOT NULL DEFAULT 0,
        reason_code TEXT,
        reason      TEXT,
        result      TEXT,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL,
        PRIMARY KEY (upload_id, name)
    );
    CREATE INDEX media_tasks_due ON media_tasks (next_at) WHERE status IN ('QUEUED', 'RUNNING');",
];

pub(super) async fn migrate(c: &mut Client) -> Result<(), MetaError> {
    let tx = c.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS tuskd_schema (version INTEGER NOT NULL)")
        .await?;
    let version: i32 = match tx
        .query_opt("SELECT version FROM tuskd_schema", &[])
        .await?
    {
        Some(r) => r.get(0),
        None => {
            tx.execute("INSERT INTO tuskd_schema (version) VALUES (0)", &[])
                .await?;
            0
        }
    };
    let version = version.max(0) as usize;
    if version > MIGRATIONS.len() {
        return Err(MetaError::Corrupt(format!(
            "database schema version {version} is newer than this tuskd knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.batch_execute(sql).await?;
        tx.execute("UPDATE tuskd_schema SET version = $1", &[&((i + 1) as i32)])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
