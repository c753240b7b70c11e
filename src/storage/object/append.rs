//! One open append to an object-stored upload: a part buffer that becomes a part whenever it
//! holds `part_size` bytes, and a tail object at each commit when it holds less.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStoreExt, PutPayload};
use tokio::sync::OwnedSemaphorePermit;

use super::{ObjectState, Shared, remote};
use crate::domain::upload::UploadId;
use crate::storage::{Append, StorageError};

pub(super) struct ObjectAppend {
    shared: Arc<Shared>,
    id: UploadId,
    data: Path,
    part_size: u64,
    length: Option<u64>,
    multipart: Option<String>,
    /// Full parts before the buffer: the buffer holds the bytes from `full * part_size` on.
    full: u64,
    /// Body frames as received (no copy); a frame is split where a part ends.
    buffer: VecDeque<Bytes>,
    buffered: u64,
    /// How much of the buffer tail `full` already holds.
    saved: u64,
    /// The length the last commit returned.
    committed: u64,
    /// Tails that may exist.
    tails: BTreeSet<u64>,
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for ObjectAppend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectAppend")
            .field("id", &self.id)
            .field("part_size", &self.part_size)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl ObjectAppend {
    /// Opens the upload at `offset`, reading back the tail that holds its last, partial part.
    pub(super) async fn open(
        shared: Arc<Shared>,
        id: UploadId,
        state: ObjectState,
        offset: u64,
        length: Option<u64>,
        permit: OwnedSemaphorePermit,
    ) -> Result<ObjectAppend, StorageError> {
        let part_size = state.part_size;
        let full = offset / part_size;
        let rest = offset % part_size;
        if full > 0 && state.multipart.is_none() {
            return Err(StorageError::Backend(format!(
                "upload {id} is recorded at offset {offset} but has no stored parts"
            )));
        }
        let mut buffer = VecDeque::new();
        if rest > 0 {
            let options = GetOptions {
                range: Some(GetRange::Bounded(0..rest)),
                ..Default::default()
            };
            let bytes = match shared
                .call(shared.store.get_opts(&shared.tail(&id, full), options))
                .await
            {
                Ok(got) => got.bytes().await.map_err(remote)?,
                Err(object_store::Error::NotFound { .. }) => Bytes::new(),
                Err(e) => return Err(remote(e)),
            };
            if bytes.len() as u64 != rest {
                return Err(StorageError::Backend(format!(
                    "tail {full} of upload {id} holds {} bytes, {rest} were recorded",
                    bytes.len()
                )));
            }
            buffer.push_back(bytes);
        }
        let mut append = ObjectAppend {
            data: shared.data(&id),
            shared,
            id,
            part_size,
            length,
            multipart: state.multipart,
            full,
            buffer,
            buffered: rest,
            saved: rest,
            committed: offset,
            tails: state.tails,
            _permit: permit,
        };
        // Any other tail is superseded, or a leftover past the recorded offset.
        append.prune_tails(&[full]).await?;
        Ok(append)
    }

    /// The first `n` buffered bytes, without taking them: a part whose upload fails stays in
    /// the buffer, so what a later commit stores is still the bytes at their offsets.
    fn front(&self, n: u64) -> PutPayload {
        let mut need = n as usize;
        let mut out = Vec::new();
        for frame in &self.buffer {
            if need == 0 {
                break;
            }
            let piece = frame.slice(..frame.len().min(need));
            need -= piece.len();
            out.push(piece);
        }
        out.into_iter().collect()
    }

    /// Drops the first `n` buffered bytes (a part the store has), splitting a frame if a part
    /// ends inside it.
    fn advance(&mut self, n: u64) {
        let mut need = n as usize;
        while need > 0 {
            let Some(front) = self.buffer.front_mut() else {
                break;
            };
            if front.len() <= need {
                need -= front.len();
                self.buffer.pop_front();
            } else {
                let _ = front.split_to(need);
                need = 0;
            }
        }
        self.buffered -= n;
    }

    fn buffered_payload(&self) -> PutPayload {
        self.buffer.iter().cloned().collect()
    }

    /// Sends part `idx`, starting the multipart upload first if this is the first part.
    async fn put_part(&mut self, idx: u64, payload: PutPayload) -> Result<(), StorageError> {
        let s = &self.shared;
        let multipart = match &self.multipart {
            Some(m) => m.clone(),
            None => {
                let m = s
                    .call(s.store.create_multipart(&self.data))
                    .await
                    .map_err(remote)?;
                s.log.set_multipart(&self.id, &m).await?;
                self.multipart = Some(m.clone());
                m
            }
        };
        let part = s
            .call(
                s.store
                    .put_part(&self.data, &multipart, idx as usize, payload),
            )
            .await
            .map_err(remote)?;
        Ok(s.log.add_part(&self.id, idx, &part.content_id).await?)
    }

    /// Sends every whole part in the buffer, in order.
    async fn send_full_parts(&mut self) -> Result<(), StorageError> {
        while self.buffered >= self.part_size {
            let part = self.front(self.part_size);
            self.put_part(self.full, part).await?;
            self.advance(self.part_size);
            self.full += 1;
            self.saved = 0;
        }
        Ok(())
    }

    /// Deletes every known tail but those in `keep`.
    async fn prune_tails(&mut self, keep: &[u64]) -> Result<(), StorageError> {
        let stale: Vec<u64> = self
            .tails
            .iter()
            .copied()
            .filter(|k| !keep.contains(k))
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        self.shared.delete_tails(&self.id, &stale).await?;
        self.shared.log.remove_tails(&self.id, &stale).await?;
        for k in stale {
            self.tails.remove(&k);
        }
        Ok(())
    }
}

#[async_trait]
impl Append for ObjectAppend {
    async fn write(&mut self, data: Bytes) -> Result<(), StorageError> {
        if data.is_empty() {
            return Ok(());
        }
        self.buffered += data.len() as u64;
        self.buffer.push_back(data);
        self.send_full_parts().await
    }

    async fn commit(&mut self) -> Result<u64, StorageError> {
        // Parts a failed write left in the buffer go first: a tail is never more than a part.
        self.send_full_parts().await?;
        let written = self.full * self.part_size + self.buffered;
        if written == self.committed {
            return Ok(written);
        }
        if self.length == Some(written) {
            // The last bytes: the last part, or the whole object if it is smaller than a part.
            // Tails stay until `finish`, after this length is recorded.
            if self.full > 0 {
                if self.buffered > 0 {
                    let last = self.buffered_payload();
                    self.put_part(self.full, last).await?;
                }
            } else {
                let s = &self.shared;
                s.call(s.store.put(&self.data, self.buffered_payload()))
                    .await
                    .map_err(remote)?;
            }
        } else {
            if self.saved < self.buffered {
                if self.tails.insert(self.full) {
                    self.shared.log.add_tail(&self.id, self.full).await?;
                }
                let tail = self.shared.tail(&self.id, self.full);
                self.shared
                    .call(self.shared.store.put(&tail, self.buffered_payload()))
                    .await
                    .map_err(remote)?;
                self.saved = self.buffered;
            }
            // The tail behind the previous commit is needed until this one is recorded.
            let keep = [self.full, self.committed / self.part_size];
            self.prune_tails(&keep).await?;
        }
        self.committed = written;
        Ok(written)
    }

    async fn checkpoint(&mut self) -> Result<u64, StorageError> {
        if self.length == Some(self.full * self.part_size + self.buffered) {
            return self.commit().await;
        }
        // Whole parts are stored as soon as they fill; the tail waits for a commit, so a
        // flowing upload does not upload its tail again every second.
        let aligned = self.full * self.part_size;
        if aligned > self.committed {
            let keep = [self.full, self.committed / self.part_size];
            self.prune_tails(&keep).await?;
            self.committed = aligned;
        }
        Ok(self.committed)
    }

    async fn rollback(self: Box<Self>) -> Result<(), StorageError> {
        // Nothing past the last commit is recorded: parts sent since are overwritten when the
        // upload gets there again, and the tail of the last commit was never touched.
        Ok(())
    }
}
