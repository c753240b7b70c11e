//! Concatenation: a final upload made of finished partial uploads, in the order listed.
//! The final upload is complete as soon as it is created (no `concatenation-unfinished`).

use http::HeaderMap;
use http::request::Parts;

use super::{completed, events, expiry, load};
use crate::app::App;
use crate::error::Error;
use crate::hooks::HookType;
use crate::lock::Guard;
use crate::upload::{Concat, MAX_LENGTH, Metadata, State, Upload, UploadId};

/// Returns the final upload and headers hooks set for the response.
pub async fn create_final(
    app: &App,
    req: &Parts,
    parts: Vec<UploadId>,
    concat_raw: String,
    metadata: Option<Metadata>,
) -> Result<(Upload, HeaderMap), Error> {
    // Hold every partial while copying so none is changed or deleted under us. Locks are taken
    // in id order so two concurrent finals over the same partials cannot deadlock.
    let mut distinct = parts.clone();
    distinct.sort();
    distinct.dedup();
    let mut _guards: Vec<Guard> = Vec::with_capacity(distinct.len());
    for id in &distinct {
        _guards.push(app.locks.acquire(id).await.ok_or(Error::Locked)?);
    }

    // Each partial is checked once, however often the final names it.
    let mut lengths = std::collections::HashMap::with_capacity(distinct.len());
    for id in &distinct {
        lengths.insert(id, partial_length(app, id).await?);
    }
    let mut sized = Vec::with_capacity(parts.len());
    let mut total: u64 = 0;
    for id in &parts {
        let len = lengths[id];
        total = total
            .checked_add(len)
            .filter(|&t| t <= MAX_LENGTH)
            .ok_or(Error::MaxSizeExceeded)?;
        sized.push((id.clone(), len));
    }
    if app.config.max_size.is_some_and(|max| total > max) {
        return Err(Error::MaxSizeExceeded);
    }

    // Recorded at offset 0 first (and expiring), so a crash mid-copy leaves an upload that
    // refuses PATCH and is swept later, never a final upload that claims bytes it lacks.
    let mut upload = Upload {
        id: UploadId::random(),
        length: Some(total),
        offset: 0,
        metadata,
        concat: Concat::Final(parts),
        concat_raw: Some(concat_raw),
        created_at: app.config.clock.now(),
        expires_at: expiry(app, total == 0),
        state: State::Active,
    };
    let mut extra = events::pre_create(app, req, &mut upload).await?;
    // Held until it is finished: background repair leaves a half-made upload alone.
    _guards.push(app.locks.acquire(&upload.id).await.ok_or(Error::Locked)?);
    app.meta
        .insert(&upload, &events::created(app, req, &upload))
        .await?;
    app.hooks.wake();
    app.storage.concat(&upload.id, &sized).await?;
    if total > 0 {
        let finished = Upload {
            offset: total,
            expires_at: None,
            ..upload.clone()
        };
        let posted = events::post(app, &[HookType::PostFinish], req, &finished);
        if !app
            .meta
            .advance(&upload.id, 0, total, None, &posted)
            .await?
        {
            return Err(Error::Internal(format!(
                "final upload {} changed during concatenation",
                upload.id
            )));
        }
        upload.offset = total;
        upload.expires_at = None;
    }
    tracing::info!(id = %upload.id, length = total, parts = sized.len(), "final upload concatenated");
    extra.extend(completed(app, req, &upload).await?.headers);
    Ok((upload, extra))
}

/// The length of a finished partial upload; an error naming what is wrong otherwise.
async fn partial_length(app: &App, id: &UploadId) -> Result<u64, Error> {
    let part = load(app, id).await.map_err(|e| match e {
        Error::NotFound | Error::Expired => {
            Error::InvalidConcat(format!("partial upload {id} does not exist"))
        }
        e => e,
    })?;
    if part.concat != Concat::Partial {
        return Err(Error::InvalidConcat(format!(
            "upload {id} is not a partial upload"
        )));
    }
    match part.length {
        Some(len) if part.is_complete() => Ok(len),
        _ => Err(Error::NotFinished("a partial upload")),
    }
}
