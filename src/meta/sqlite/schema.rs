//! The SQLite schema: numbered migrations applied in order at start-up, tracked by
//! `PRAGMA user_version`.

use rusqlite::Connection;

use crate::meta::MetaError;

/// Migration `i` takes the schema from user_version `i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: uploads.
    "CREATE TABLE uploads (
        id          TEXT PRIMARY KEY NOT NULL,
        length      INTEGER,              -- NULL while deferred
        offset      INTEGER NOT NULL,
        metadata    TEXT,                 -- Upload-Metadata as received
        concat      TEXT,                 -- Upload-Concat as received
        partials    TEXT,                 -- final uploads: partial ids, space-separated
        created_at  INTEGER NOT NULL,     -- unix ms
        expires_at  INTEGER,              -- unix ms; NULL = never
        state       TEXT NOT NULL DEFAULT 'active'
    ) STRICT;
    CREATE INDEX uploads_expiry ON uploads (state, expires_at) WHERE expires_at IS NOT NULL;",
    // 2: object storage bookkeeping (storage::object), kept apart from `uploads` because it
    // outlives an upload's row until the objects are deleted.
    "CREATE TABLE object_uploads (
        id          TEXT PRIMARY KEY NOT NULL,
        part_size   INTEGER NOT NULL,
        multipart   TEXT                  -- the backend's multipart upload id
    ) STRICT;
    CREATE TABLE object_parts (
        id          TEXT NOT NULL REFERENCES object_uploads (id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        content_id  TEXT NOT NULL,        -- S3's ETag, Azure's block id
        PRIMARY KEY (id, idx)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE object_tails (
        id          TEXT NOT NULL REFERENCES object_uploads (id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        PRIMARY KEY (id, idx)
    ) STRICT, WITHOUT ROWID;",
    // 3: the hook outbox.
    "CREATE TABLE hook_events (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        id          TEXT NOT NULL UNIQUE,  -- stable event id, sent with every attempt
        kind        TEXT NOT NULL,         -- post-create, post-finish, ...
        upload_id   TEXT NOT NULL,
        payload     TEXT NOT NULL,         -- the hook request JSON
        state       TEXT NOT NULL,         -- held | pending | dead
        attempts    INTEGER NOT NULL DEFAULT 0,
        created_at  INTEGER NOT NULL,      -- unix ms
        next_at     INTEGER NOT NULL,      -- unix ms: due from then on
        last_error  TEXT
    ) STRICT;
    CREATE INDEX hook_events_due ON hook_events (state, next_at);
    CREATE INDEX hook_events_upload ON hook_events (upload_id, seq);",
    // 4: credentials out of stored events (tuskd stores none since; tusd's names are Go's).
    "UPDATE hook_events SET payload = json_remove(payload,
        '$.Event.HTTPRequest.Header.Authorization',
        '$.Event.HTTPRequest.Header.Cookie',
        '$.Event.HTTPRequest.Header.\"Proxy-Authorization\"')
     WHERE json_valid(payload);",
    // 5: final uploads waiting for their partial uploads (concatenation-unfinished).
    "CREATE INDEX uploads_pending_finals ON uploads (created_at)
        WHERE partials IS NOT NULL AND state = 'active' AND (length IS NULL OR offset < length);",
    // 6: media jobs and records (media::record), one per finished upload, kept after a
    // rejection forgets the upload, so its status can still be asked for.
    "CREATE TABLE media (
        id              TEXT PRIMARY KEY NOT NULL,  -- the upload's id
        status          TEXT NOT NULL,              -- RECEIVED ... READY | REJECTED | FAILED
        held            INTEGER NOT NULL,           -- 1 until the upload's storage is finished
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_at         INTEGER NOT NULL,           -- unix ms: claimable from then on
        lease_owner     TEXT,
        lease_until     INTEGER,                    -- unix ms
        progress        REAL NOT NULL DEFAULT 0,
        reason_code     TEXT,
        reason          TEXT,
        detected        TEXT,
        probe           TEXT,                       -- JSON (crate::domain::media::Probe)
        published       TEXT,                       -- JSON (crate::domain::media::Published)
        pending_version TEXT,
        length          INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX media_due ON media (next_at)
        WHERE held = 0 AND status IN ('RECEIVED', 'VALIDATING', 'PROCESSING');
    CREATE INDEX media_held ON media (created_at) WHERE held = 1;",
    // 7: the malware scan's result (crate::domain::media::Scan), and SCANNING among a job's open
    // statuses.
    "ALTER TABLE media ADD COLUMN scan TEXT;
    DROP INDEX media_due;
    CREATE INDEX media_due ON media (next_at)
        WHERE held = 0 AND status IN ('RECEIVED', 'VALIDATING', 'SCANNING', 'PROCESSING');",
    // 8: one row that readiness checks write (/readyz: the database takes writes).
    "CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL) STRICT;",
    // 9: who created an upload (crate::domain::access::Owner; NULL: made while authentication
    // was off); the listings of one owner's and of every owner's active uploads, newest first
    // (meta::listing); what one owner's active uploads hold, for the quotas (meta::quota),
    // read from the index alone.
    "ALTER TABLE uploads ADD COLUMN owner TEXT;
    CREATE INDEX uploads_owner_listed ON uploads (owner, created_at DESC, id DESC)
        WHERE state = 'active';
    CREATE INDEX uploads_listed ON uploads (created_at DESC, id DESC) WHERE state = 'active';
    CREATE INDEX uploads_owner_quota ON uploads (owner, state, length, offset)
        WHERE owner IS NOT NULL;",
    // 10: the upload's owner on its media record, which can outlive the upload; records from
    // before take their upload's owner if the upload is still there.
    "ALTER TABLE media ADD COLUMN owner TEXT;
    UPDATE media SET owner = (SELECT u.owner FROM uploads u WHERE u.id = media.id);",
    // 11: uploads each owner created per fixed minute (window_start_ms: unix ms, a multiple of
    // 60000), for the rate quota; an owner's past windows are deleted by its next upload.
    "CREATE TABLE owner_rates (
        owner           TEXT NOT NULL,
        window_start_ms INTEGER NOT NULL,
        count           INTEGER NOT NULL,
        PRIMARY KEY (owner, window_start_ms)
    ) STRICT, WITHOUT ROWID;",
    // 12: the lane a media job waits in (crate::domain::media::Lane): every job starts fast;
    // a video found by a fast-only slot moves to the slow lane. PLAYABLE is an open status.
    "ALTER TABLE media ADD COLUMN lane TEXT NOT NULL DEFAULT 'fast'
        CHECK (lane IN ('fast', 'slow'));
    DROP INDEX media_due;
    CREATE INDEX media_due ON media (next_at)
        WHERE held = 0
          AND status IN ('RECEIVED', 'VALIDATING', 'SCANNING', 'PROCESSING', 'PLAYABLE');",
    // 13: a media job's tasks (crate::domain::task), due in `next_at` order while queued or
    // running (a running one's lease may run out).
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
        lease_until INTEGER,
        next_at     INTEGER NOT NULL,
        progress    REAL NOT NULL DEFAULT 0,
        reason_code TEXT,
        reason      TEXT,
        result      TEXT,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (upload_id, name)
    ) STRICT;
    CREATE INDEX media_tasks_due ON media_tasks (next_at) WHERE status IN ('QUEUED', 'RUNNING');",
];

/// Migrations after which the pages they changed are overwritten and the log emptied, so that
/// what they removed (credentials) is gone from the files, not only from the tables.
const SCRUBBING: &[usize] = &[4];

pub(super) fn migrate(c: &Connection) -> Result<(), MetaError> {
    let version: usize =
        c.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    if version > MIGRATIONS.len() {
        return Err(MetaError::Corrupt(format!(
            "database schema version {version} is newer than this tuskd knows ({})",
            MIGRATIONS.len()
        )));
    }
    let mut scrub = false;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        scrub |= SCRUBBING.contains(&(i + 1));
        if scrub {
            c.pragma_update(None, "secure_delete", "ON")?;
        }
        let tx = c.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    if scrub {
        c.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
        c.pragma_update(None, "secure_delete", "OFF")?;
    }
    Ok(())
}
