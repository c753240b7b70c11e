//! The object storage's bookkeeping (`domain::parts::PartLog`) in the SQLite database, beside
//! the uploads it belongs to.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::SqliteMeta;
use crate::domain::parts::{ObjectState, PartLog, PartsError};
use crate::domain::upload::UploadId;
use crate::meta::MetaError;

fn failed(e: MetaError) -> PartsError {
    PartsError::new(e)
}

impl SqliteMeta {
    async fn change(
        &self,
        id: &UploadId,
        sql: &'static str,
        extra: impl rusqlite::ToSql + Send + 'static,
    ) -> Result<(), PartsError> {
        let id = id.clone();
        self.write(move |c| {
            c.prepare_cached(sql)?
                .execute(params![id.as_str(), extra])?;
            Ok(())
        })
        .await
        .map_err(failed)
    }
}

#[async_trait]
impl PartLog for SqliteMeta {
    async fn begin(&self, id: &UploadId, part_size: u64) -> Result<(), PartsError> {
        self.change(
            id,
            "INSERT INTO object_uploads (id, part_size) VALUES (?1, ?2)",
            part_size as i64,
        )
        .await
    }

    async fn state(&self, id: &UploadId) -> Result<Option<ObjectState>, PartsError> {
        let id = id.clone();
        self.read(move |c| {
            let head = c
                .prepare_cached("SELECT part_size, multipart FROM object_uploads WHERE id = ?1")?
                .query_row([id.as_str()], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
                })
                .optional()?;
            let Some((part_size, multipart)) = head else {
                return Ok(None);
            };
            let mut state = ObjectState {
                part_size: part_size as u64,
                multipart,
                ..Default::default()
            };
            let mut parts =
                c.prepare_cached("SELECT idx, content_id FROM object_parts WHERE id = ?1")?;
            for row in parts.query_map([id.as_str()], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
            })? {
                let (idx, content_id) = row?;
                state.parts.insert(idx, content_id);
            }
            let mut tails = c.prepare_cached("SELECT idx FROM object_tails WHERE id = ?1")?;
            for row in tails.query_map([id.as_str()], |r| r.get::<_, i64>(0))? {
                state.tails.insert(row? as u64);
            }
            if state.part_size == 0 {
                return Err(MetaError::Corrupt(format!("upload {id}: part size 0")));
            }
            Ok(Some(state))
        })
        .await
        .map_err(failed)
    }

    async fn set_multipart(&self, id: &UploadId, multipart: &str) -> Result<(), PartsError> {
        self.change(
            id,
            "UPDATE object_uploads SET multipart = ?2 WHERE id = ?1",
            multipart.to_owned(),
        )
        .await
    }

    async fn add_part(&self, id: &UploadId, idx: u64, content_id: &str) -> Result<(), PartsError> {
        let id = id.clone();
        let content_id = content_id.to_owned();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO object_parts (id, idx, content_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![id.as_str(), idx as i64, content_id])?;
            Ok(())
        })
        .await
        .map_err(failed)
    }

    async fn add_tail(&self, id: &UploadId, idx: u64) -> Result<(), PartsError> {
        self.change(
            id,
            "INSERT OR IGNORE INTO object_tails (id, idx) VALUES (?1, ?2)",
            idx as i64,
        )
        .await
    }

    async fn remove_tails(&self, id: &UploadId, idxs: &[u64]) -> Result<(), PartsError> {
        let id = id.clone();
        let idxs = idxs.to_vec();
        self.write(move |c| {
            let tx = c.transaction()?;
            {
                let mut stmt =
                    tx.prepare_cached("DELETE FROM object_tails WHERE id = ?1 AND idx = ?2")?;
                for idx in idxs {
                    stmt.execute(params![id.as_str(), idx as i64])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(failed)
    }

    async fn forget(&self, id: &UploadId) -> Result<(), PartsError> {
        let id = id.clone();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM object_uploads WHERE id = ?1")?
                .execute([id.as_str()])?;
            Ok(())
        })
        .await
        .map_err(failed)
    }

    async fn all(&self) -> Result<Vec<UploadId>, PartsError> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT id FROM object_uploads ORDER BY id")?;
            let ids = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok().and_then(|s| UploadId::parse(&s)))
                .collect();
            Ok(ids)
        })
        .await
        .map_err(failed)
    }
}
