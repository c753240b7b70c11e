//! The object storage's bookkeeping (`domain::parts::PartLog`) in Postgres, so that any node
//! can go on with an upload another node began.

use async_trait::async_trait;

use super::PgMeta;
use crate::domain::parts::{ObjectState, PartLog, PartsError};
use crate::domain::upload::UploadId;
use crate::meta::MetaError;

fn failed(e: MetaError) -> PartsError {
    PartsError::new(e)
}

#[async_trait]
impl PartLog for PgMeta {
    async fn begin(&self, id: &UploadId, part_size: u64) -> Result<(), PartsError> {
        self.exec(
            "INSERT INTO object_uploads (id, part_size) VALUES ($1, $2)",
            &[&id.as_str(), &(part_size as i64)],
        )
        .await
        .map_err(failed)?;
        Ok(())
    }

    async fn state(&self, id: &UploadId) -> Result<Option<ObjectState>, PartsError> {
        async {
            let c = self.client().await?;
            let Some(head) = c
                .query_opt(
                    "SELECT part_size, multipart FROM object_uploads WHERE id = $1",
                    &[&id.as_str()],
                )
                .await?
            else {
                return Ok(None);
            };
            let mut state = ObjectState {
                part_size: head.try_get::<_, i64>(0)? as u64,
                multipart: head.try_get(1)?,
                ..Default::default()
            };
            for r in c
                .query(
                    "SELECT idx, content_id FROM object_parts WHERE id = $1",
                    &[&id.as_str()],
                )
                .await?
            {
                state
                    .parts
                    .insert(r.try_get::<_, i64>(0)? as u64, r.try_get(1)?);
            }
            for r in c
                .query(
                    "SELECT idx FROM object_tails WHERE id = $1",
                    &[&id.as_str()],
                )
                .await?
            {
                state.tails.insert(r.try_get::<_, i64>(0)? as u64);
            }
            if state.part_size == 0 {
                return Err(MetaError::Corrupt(format!("upload {id}: part size 0")));
            }
            Ok(Some(state))
        }
        .await
        .map_err(failed)
    }

    async fn set_multipart(&self, id: &UploadId, multipart: &str) -> Result<(), PartsError> {
        self.exec(
            "UPDATE object_uploads SET multipart = $2 WHERE id = $1",
            &[&id.as_str(), &multipart],
        )
        .await
        .map_err(failed)?;
        Ok(())
    }

    async fn add_part(&self, id: &UploadId, idx: u64, content_id: &str) -> Result<(), PartsError> {
        self.exec(
            "INSERT INTO object_parts (id, idx, content_id) VALUES ($1, $2, $3)
             ON CONFLICT (id, idx) DO UPDATE SET content_id = excluded.content_id",
            &[&id.as_str(), &(idx as i64), &content_id],
        )
        .await
        .map_err(failed)?;
        Ok(())
    }

    async fn add_tail(&self, id: &UploadId, idx: u64) -> Result<(), PartsError> {
        self.exec(
            "INSERT INTO object_tails (id, idx) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&id.as_str(), &(idx as i64)],
        )
        .await
        .map_err(failed)?;
        Ok(())
    }

    async fn remove_tails(&self, id: &UploadId, idxs: &[u64]) -> Result<(), PartsError> {
        let idxs: Vec<i64> = idxs.iter().map(|&i| i as i64).collect();
        self.exec(
            "DELETE FROM object_tails WHERE id = $1 AND idx = ANY($2)",
            &[&id.as_str(), &idxs],
        )
        .await
        .map_err(failed)?;
        Ok(())
    }

    async fn forget(&self, id: &UploadId) -> Result<(), PartsError> {
        self.exec("DELETE FROM object_uploads WHERE id = $1", &[&id.as_str()])
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn all(&self) -> Result<Vec<UploadId>, PartsError> {
        self.ids("SELECT id FROM object_uploads ORDER BY id", &[])
            .await
            .map_err(failed)
    }
}
