//! Records as both backends store them: plain columns (text, integers of unix milliseconds,
//! JSON as text), turned into the metadata contract's types here, once, whatever database
//! read them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{EventState, MetaError, OutboxEvent, StoredEvent};
use crate::domain::access::Owner;
use crate::domain::media::{Lane, MediaRecord, MediaStatus};
use crate::domain::upload::{Concat, Metadata, State, Upload, UploadId};

pub(super) fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(super) fn from_ms(v: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(v.max(0) as u64)
}

/// A result row of either database, read cell by cell (0-based); NULL is `None`.
pub(super) trait Cells {
    fn text(&self, i: usize) -> Result<Option<String>, MetaError>;
    fn int(&self, i: usize) -> Result<Option<i64>, MetaError>;
    fn real(&self, i: usize) -> Result<Option<f64>, MetaError>;
    fn flag(&self, i: usize) -> Result<Option<bool>, MetaError>;
}

impl Cells for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<Option<String>, MetaError> {
        Ok(self.get(i)?)
    }
    fn int(&self, i: usize) -> Result<Option<i64>, MetaError> {
        Ok(self.get(i)?)
    }
    fn real(&self, i: usize) -> Result<Option<f64>, MetaError> {
        Ok(self.get(i)?)
    }
    fn flag(&self, i: usize) -> Result<Option<bool>, MetaError> {
        Ok(self.get(i)?)
    }
}

impl Cells for tokio_postgres::Row {
    fn text(&self, i: usize) -> Result<Option<String>, MetaError> {
        Ok(self.try_get(i)?)
    }
    /// BIGINT, or INTEGER (`attempts`).
    fn int(&self, i: usize) -> Result<Option<i64>, MetaError> {
        if self.columns()[i].type_() == &tokio_postgres::types::Type::INT4 {
            return Ok(self.try_get::<_, Option<i32>>(i)?.map(i64::from));
        }
        Ok(self.try_get(i)?)
    }
    fn real(&self, i: usize) -> Result<Option<f64>, MetaError> {
        Ok(self.try_get(i)?)
    }
    fn flag(&self, i: usize) -> Result<Option<bool>, MetaError> {
        Ok(self.try_get(i)?)
    }
}

/// A cell of a NOT NULL column.
fn required<T>(v: Option<T>, i: usize) -> Result<T, MetaError> {
    v.ok_or_else(|| MetaError::Corrupt(format!("column {i} is NULL")))
}

/// The `uploads` columns, in this order: id, length, offset, metadata, concat, partials,
/// created_at, expires_at, state, owner (`UPLOAD_COLUMNS`).
pub(super) struct UploadRow {
    pub id: String,
    pub length: Option<i64>,
    pub offset: i64,
    pub metadata: Option<String>,
    pub concat: Option<String>,
    pub partials: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub state: String,
    pub owner: Option<String>,
}

impl UploadRow {
    /// The `UPLOAD_COLUMNS` of row `r`, starting at cell `at`.
    pub(super) fn read(r: &impl Cells, at: usize) -> Result<UploadRow, MetaError> {
        Ok(UploadRow {
            id: required(r.text(at)?, at)?,
            length: r.int(at + 1)?,
            offset: required(r.int(at + 2)?, at + 2)?,
            metadata: r.text(at + 3)?,
            concat: r.text(at + 4)?,
            partials: r.text(at + 5)?,
            created_at: required(r.int(at + 6)?, at + 6)?,
            expires_at: r.int(at + 7)?,
            state: required(r.text(at + 8)?, at + 8)?,
            owner: r.text(at + 9)?,
        })
    }

    pub(super) fn of(u: &Upload) -> UploadRow {
        UploadRow {
            id: u.id.as_str().to_owned(),
            length: u.length.map(|l| l as i64),
            offset: u.offset as i64,
            metadata: u.metadata.as_ref().map(|m| m.raw().to_owned()),
            concat: u.concat_raw.clone(),
            partials: match &u.concat {
                Concat::Final(ids) => {
                    Some(ids.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(" "))
                }
                _ => None,
            },
            created_at: ms(u.created_at),
            expires_at: u.expires_at.map(ms),
            state: match u.state {
                State::Active => "active",
                State::Expired => "expired",
            }
            .to_owned(),
            owner: u.owner.as_ref().map(|o| o.as_str().to_owned()),
        }
    }

    pub(super) fn into_upload(self) -> Result<Upload, MetaError> {
        let raw_id = self.id;
        let corrupt = |what: &str| MetaError::Corrupt(format!("upload {raw_id}: {what}"));
        let id = UploadId::parse(&raw_id).ok_or_else(|| corrupt("id"))?;
        let metadata = self
            .metadata
            .map(|m| Metadata::parse(&m).map_err(|e| corrupt(&e.to_string())))
            .transpose()?;
        let concat = match (self.concat.as_deref(), self.partials) {
            (None, _) => Concat::None,
            (Some("partial"), _) => Concat::Partial,
            (Some(_), Some(p)) => Concat::Final(
                p.split(' ')
                    .map(|s| UploadId::parse(s).ok_or_else(|| corrupt("partials")))
                    .collect::<Result<_, _>>()?,
            ),
            (Some(_), None) => return Err(corrupt("final upload without partials")),
        };
        let state = match self.state.as_str() {
            "active" => State::Active,
            "expired" => State::Expired,
            _ => return Err(corrupt("state")),
        };
        let owner = self
            .owner
            .map(|o| Owner::parse(&o).ok_or_else(|| corrupt("owner")))
            .transpose()?;
        Ok(Upload {
            id,
            length: self.length.map(|l| l as u64),
            offset: self.offset as u64,
            metadata,
            concat,
            concat_raw: self.concat,
            created_at: from_ms(self.created_at),
            expires_at: self.expires_at.map(from_ms),
            state,
            owner,
        })
    }
}

/// The `hook_events` columns: id, kind, upload_id, payload, state, attempts, created_at,
/// next_at, last_error.
pub(super) struct EventRow {
    pub id: String,
    pub kind: String,
    pub upload: String,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub created_at: i64,
    pub next_at: i64,
    pub last_error: Option<String>,
}

impl EventRow {
    pub(super) fn into_event(self) -> Result<StoredEvent, MetaError> {
        let corrupt = |what: &str| MetaError::Corrupt(format!("event {}: {what}", self.id));
        let upload = UploadId::parse(&self.upload).ok_or_else(|| corrupt("upload id"))?;
        let state = match self.state.as_str() {
            "held" => EventState::Held,
            "pending" => EventState::Pending,
            "dead" => EventState::Dead,
            _ => return Err(corrupt("state")),
        };
        Ok(StoredEvent {
            event: OutboxEvent {
                id: self.id,
                kind: self.kind,
                upload,
                payload: self.payload,
                held: state == EventState::Held,
            },
            state,
            attempts: self.attempts as u32,
            created_at: from_ms(self.created_at),
            next_at: from_ms(self.next_at),
            last_error: self.last_error,
        })
    }
}

/// The `media` columns: id, status, held, attempts, next_at, lease_owner, lease_until,
/// progress, reason_code, reason, detected, probe, published, pending_version, length,
/// created_at, updated_at, scan, owner, lane (`MEDIA_COLUMNS`).
pub(super) struct MediaRow {
    pub id: String,
    pub status: String,
    pub held: bool,
    pub attempts: i64,
    pub next_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub progress: f64,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub detected: Option<String>,
    pub probe: Option<String>,
    pub published: Option<String>,
    pub pending_version: Option<String>,
    pub length: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub scan: Option<String>,
    pub owner: Option<String>,
    pub lane: String,
}

impl MediaRow {
    /// The `MEDIA_COLUMNS` of row `r`, starting at cell `at`.
    pub(super) fn read(r: &impl Cells, at: usize) -> Result<MediaRow, MetaError> {
        Ok(MediaRow {
            id: required(r.text(at)?, at)?,
            status: required(r.text(at + 1)?, at + 1)?,
            held: required(r.flag(at + 2)?, at + 2)?,
            attempts: required(r.int(at + 3)?, at + 3)?,
            next_at: required(r.int(at + 4)?, at + 4)?,
            lease_owner: r.text(at + 5)?,
            lease_until: r.int(at + 6)?,
            progress: required(r.real(at + 7)?, at + 7)?,
            reason_code: r.text(at + 8)?,
            reason: r.text(at + 9)?,
            detected: r.text(at + 10)?,
            probe: r.text(at + 11)?,
            published: r.text(at + 12)?,
            pending_version: r.text(at + 13)?,
            length: required(r.int(at + 14)?, at + 14)?,
            created_at: required(r.int(at + 15)?, at + 15)?,
            updated_at: required(r.int(at + 16)?, at + 16)?,
            scan: r.text(at + 17)?,
            owner: r.text(at + 18)?,
            lane: required(r.text(at + 19)?, at + 19)?,
        })
    }

    /// The record in row `r` from cell `at`, or `None` if its id is NULL (an outer join that
    /// found none).
    pub(super) fn read_joined(r: &impl Cells, at: usize) -> Result<Option<MediaRecord>, MetaError> {
        match r.text(at)? {
            None => Ok(None),
            Some(_) => MediaRow::read(r, at)?.into_record().map(Some),
        }
    }

    pub(super) fn into_record(self) -> Result<MediaRecord, MetaError> {
        let corrupt = |what: &str| MetaError::Corrupt(format!("media {}: {what}", self.id));
        fn json<T: serde::de::DeserializeOwned>(
            v: Option<String>,
            bad: impl Fn() -> MetaError,
        ) -> Result<Option<T>, MetaError> {
            v.map(|p| serde_json::from_str(&p).map_err(|_| bad()))
                .transpose()
        }
        Ok(MediaRecord {
            id: UploadId::parse(&self.id).ok_or_else(|| corrupt("id"))?,
            owner: self
                .owner
                .as_deref()
                .map(|o| Owner::parse(o).ok_or_else(|| corrupt("owner")))
                .transpose()?,
            status: MediaStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?,
            held: self.held,
            lane: Lane::parse(&self.lane).ok_or_else(|| corrupt("lane"))?,
            attempts: self.attempts as u32,
            next_at: from_ms(self.next_at),
            lease_owner: self.lease_owner.clone(),
            lease_until: self.lease_until.map(from_ms),
            progress: self.progress as f32,
            reason_code: self.reason_code.clone(),
            reason: self.reason.clone(),
            detected: self.detected.clone(),
            probe: json(self.probe.clone(), || corrupt("probe"))?,
            scan: json(self.scan.clone(), || corrupt("scan"))?,
            published: json(self.published.clone(), || corrupt("published"))?,
            pending_version: self.pending_version.clone(),
            length: self.length as u64,
            created_at: from_ms(self.created_at),
            updated_at: from_ms(self.updated_at),
        })
    }
}

/// A JSON column's text.
pub(super) fn to_json<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref()
        .map(|v| serde_json::to_string(v).expect("a record serialises"))
}

/// Media statuses of a job that is not over: queued, or running (under a lease that may have
/// run out).
pub(super) const OPEN_STATUSES: &str =
    "('RECEIVED', 'VALIDATING', 'SCANNING', 'PROCESSING', 'PLAYABLE')";

pub(super) const UPLOAD_COLUMNS: &str =
    "id, length, \"offset\", metadata, concat, partials, created_at, expires_at, state, owner";
/// How many `UPLOAD_COLUMNS` there are: where a joined row's next table starts.
pub(super) const UPLOAD_COLUMN_COUNT: usize = 10;
pub(super) const EVENT_COLUMNS: &str =
    "id, kind, upload_id, payload, state, attempts, created_at, next_at, last_error";
pub(super) const MEDIA_COLUMNS: &str = "id, status, held, attempts, next_at, lease_owner, lease_until, \
    progress, reason_code, reason, detected, probe, published, pending_version, length, \
    created_at, updated_at, scan, owner, lane";

/// `columns` (a list above) with each name qualified by the table alias `table`.
pub(super) fn qualified(table: &str, columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}
