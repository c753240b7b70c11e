//! Concatenation: a final upload made of partial uploads, in the order listed, with
//! `concatenation-unfinished`: the final may be created before its partials are finished.
//!
//! A final whose partials are all finished is assembled by the request that creates it. One
//! created earlier is recorded pending (offset 0, its length once every partial's is known) and
//! assembled by `assemble`, which the repair loop runs as soon as a partial finishes (it is
//! woken then) and on every pass; until then HEAD shows no `Upload-Offset` (X7) and GET answers
//! that it is not finished. A pending final whose partial is terminated or expires can never be
//! finished: it expires with it (410).

use std::collections::HashMap;

use http::HeaderMap;
use http::request::Parts;

use super::{Shaped, UploadError, Uploads};
use crate::domain::access::Caller;
use crate::domain::upload::{Concat, MAX_LENGTH, Metadata, State, Upload, UploadId};
use crate::hooks::HookType;
use crate::lock::Guard;

impl Uploads {
    /// Returns the final upload and headers hooks set for the response.
    pub async fn create_final(
        &self,
        req: &Parts,
        caller: &Caller,
        parts: Vec<UploadId>,
        concat_raw: String,
        metadata: Option<Metadata>,
    ) -> Result<(Upload, HeaderMap), UploadError> {
        let distinct = distinct(&parts);
        // Each partial is checked once, however often the final names it. An unfinished one is not
        // locked: that would stop its upload.
        let mut found = HashMap::with_capacity(distinct.len());
        for id in &distinct {
            found.insert(id.clone(), self.partial(caller, id).await?);
        }
        let ready = found.values().all(Upload::is_complete);
        // Finished partials are held while copying so none is deleted under us; locks are taken in
        // id order so two concurrent finals over the same partials cannot deadlock.
        let mut _guards: Vec<Guard> = Vec::new();
        if ready {
            for id in &distinct {
                _guards.push(self.locks.acquire(id).await.ok_or(UploadError::Locked)?);
                found.insert(id.clone(), self.partial(caller, id).await?);
            }
        }
        let length = self.total_length(caller, &parts, &found)?;
        self.check_kind(caller, metadata.as_ref())?;
        self.check_space(length.unwrap_or(0))?;

        // Recorded at offset 0 first, so a crash mid-copy leaves a pending final that repair
        // assembles again, never a final upload that claims bytes it lacks. A pending final does not
        // expire on its own: it goes when one of its partials does.
        let mut upload = Upload {
            id: UploadId::random(),
            length,
            offset: 0,
            metadata,
            concat: Concat::Final(parts),
            concat_raw: Some(concat_raw),
            created_at: self.clock.now(),
            expires_at: if ready {
                self.expiry(length == Some(0))
            } else {
                None
            },
            state: State::Active,
            owner: caller.owner.clone(),
        };
        let mut extra = self.pre_create(req, &mut upload).await?;
        // Held until it is assembled: background repair leaves a half-made upload alone.
        let guard = self
            .locks
            .acquire(&upload.id)
            .await
            .ok_or(UploadError::Locked)?;
        self.meta
            .insert(
                &upload,
                &self.effects(self.created(req, &upload), &upload),
                &self.limits.quota,
            )
            .await?;
        self.hooks.wake();
        if ready {
            let sized = sized(&upload, &found);
            extra.extend(self.concatenate(req, &mut upload, &sized).await?.headers);
        } else {
            tracing::info!(id = %upload.id, parts = found.len(), "final upload waits for its partial uploads");
            // A partial may have finished since it was looked at: repair looks at this final now.
            drop(guard);
            self.repair.notify_one();
        }
        Ok((upload, extra))
    }

    /// Assembles the pending final upload `id` if every partial is finished, or expires it if one
    /// is gone. Returns whether it finished it. Busy uploads (a request holds the final or a
    /// partial) are left for a later pass.
    pub async fn assemble(&self, id: &UploadId) -> Result<bool, UploadError> {
        let Some(_final_guard) = self.locks.try_acquire(id).await else {
            return Ok(false);
        };
        let Some(mut upload) = self.meta.get(id).await? else {
            return Ok(false);
        };
        let Concat::Final(parts) = upload.concat.clone() else {
            return Ok(false);
        };
        if upload.is_complete() || upload.state != State::Active {
            return Ok(false);
        }
        // The partials are the final's owner's, as when it was created.
        let creator = Caller::creator_of(upload.owner.as_ref());
        let distinct = distinct(&parts);
        let mut found = HashMap::with_capacity(distinct.len());
        for pid in &distinct {
            match self.partial(&creator, pid).await {
                Ok(p) if p.is_complete() => {
                    found.insert(pid.clone(), p);
                }
                Ok(_) => return Ok(false),
                Err(UploadError::InvalidConcat(why)) => {
                    // Terminated or expired: this final can never be finished.
                    tracing::info!(%id, "final upload expired with its partial upload: {why}");
                    return self.expire_final(id).await;
                }
                Err(e) => return Err(e),
            }
        }
        // All finished: held while copying (the request that finished the last one may still be
        // answering; it lets go at once), in id order.
        let mut _guards: Vec<Guard> = Vec::with_capacity(distinct.len());
        for pid in &distinct {
            let Some(guard) = self.locks.acquire(pid).await else {
                return Ok(false);
            };
            _guards.push(guard);
            match self.partial(&creator, pid).await {
                Ok(p) if p.is_complete() => {
                    found.insert(pid.clone(), p);
                }
                _ => return Ok(false),
            }
        }
        // The server's size limit holds again now that the partials' lengths are known.
        let total = match self.total_length(&creator, &parts, &found) {
            Ok(Some(total)) => total,
            Ok(None) => return Ok(false),
            Err(e) => {
                tracing::warn!(%id, "final upload cannot be assembled: {e}");
                return self.expire_final(id).await;
            }
        };
        if upload.length.is_none() {
            let sized = Upload {
                length: Some(total),
                ..upload.clone()
            };
            if !self
                .meta
                .set_length(
                    id,
                    total,
                    &self.effects(Vec::new(), &sized),
                    &self.limits.quota,
                )
                .await?
            {
                return Ok(false);
            }
            upload.length = Some(total);
        }
        let (req, ()) = http::Request::new(()).into_parts(); // nobody asked: an empty request
        let sized = sized(&upload, &found);
        self.concatenate(&req, &mut upload, &sized).await?;
        Ok(true)
    }

    /// A final upload that can never be finished: it answers 410 from now on. Returns false (it was
    /// not assembled), for `assemble`.
    async fn expire_final(&self, id: &UploadId) -> Result<bool, UploadError> {
        self.storage.delete(id).await?;
        self.meta.mark_expired(id, self.clock.now()).await?;
        Ok(false)
    }

    /// Tells the repair loop that `upload` finished, was terminated or expired, if it is a partial
    /// upload: a final upload waiting for it may now be assembled, or expire with it.
    pub(crate) fn partial_changed(&self, upload: &Upload) {
        if upload.concat == Concat::Partial {
            self.repair.notify_one();
        }
    }

    /// Copies the partials into the final upload, records its offset and completes it.
    async fn concatenate(
        &self,
        req: &Parts,
        upload: &mut Upload,
        sized: &[(UploadId, u64)],
    ) -> Result<Shaped, UploadError> {
        let total: u64 = sized.iter().map(|(_, len)| len).sum();
        self.storage.concat(&upload.id, sized).await?;
        if total > 0 {
            let finished = Upload {
                offset: total,
                length: Some(total),
                expires_at: None,
                ..upload.clone()
            };
            let posted = self.post(&[HookType::PostFinish], req, &finished);
            if !self
                .meta
                .advance(&upload.id, 0, total, None, &self.effects(posted, &finished))
                .await?
            {
                return Err(UploadError::changed_under_lock(&upload.id, "the offset"));
            }
            upload.offset = total;
            upload.expires_at = None;
        }
        tracing::info!(id = %upload.id, length = total, parts = sized.len(), "final upload concatenated");
        self.complete(req, upload).await
    }

    /// The final's length: the sum of its partials' (each counted as often as it is named), if
    /// every one is known. Too large for the server is refused.
    fn total_length(
        &self,
        caller: &Caller,
        parts: &[UploadId],
        found: &HashMap<UploadId, Upload>,
    ) -> Result<Option<u64>, UploadError> {
        let mut total: u64 = 0;
        for id in parts {
            let Some(len) = found[id].length else {
                return Ok(None);
            };
            total = total
                .checked_add(len)
                .filter(|&t| t <= MAX_LENGTH)
                .ok_or(UploadError::MaxSizeExceeded)?;
        }
        self.check_size(caller, Some(total))?;
        Ok(Some(total))
    }

    /// A partial upload a final names, the caller's own; an error naming what is wrong
    /// otherwise (another owner's partial does not exist).
    async fn partial(&self, caller: &Caller, id: &UploadId) -> Result<Upload, UploadError> {
        let part = self.load(caller, id).await.map_err(|e| match e {
            UploadError::NotFound | UploadError::Expired => {
                UploadError::InvalidConcat(format!("partial upload {id} does not exist"))
            }
            e => e,
        })?;
        if part.concat != Concat::Partial {
            return Err(UploadError::InvalidConcat(format!(
                "upload {id} is not a partial upload"
            )));
        }
        Ok(part)
    }

    /// The length a pending final will have, if every partial's is known (X9).
    pub async fn pending_length(&self, upload: &Upload) -> Result<Option<u64>, UploadError> {
        if let Some(len) = upload.length {
            return Ok(Some(len));
        }
        let Concat::Final(parts) = &upload.concat else {
            return Ok(None);
        };
        let mut total: u64 = 0;
        for id in parts {
            match self.meta.get(id).await?.and_then(|p| p.length) {
                Some(len) => total = total.saturating_add(len),
                None => return Ok(None),
            }
        }
        Ok(Some(total))
    }
}

/// The partial uploads a final names, each once, in id order (the order their locks are taken
/// in, so two finals over the same partials cannot deadlock).
fn distinct(parts: &[UploadId]) -> Vec<UploadId> {
    let mut distinct = parts.to_vec();
    distinct.sort();
    distinct.dedup();
    distinct
}

/// Each partial of `upload` with its length, in order.
fn sized(upload: &Upload, found: &HashMap<UploadId, Upload>) -> Vec<(UploadId, u64)> {
    let Concat::Final(parts) = &upload.concat else {
        return Vec::new();
    };
    parts
        .iter()
        .map(|id| (id.clone(), found[id].offset))
        .collect()
}
