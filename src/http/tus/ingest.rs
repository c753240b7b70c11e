//! Streaming a request body into an upload, shared by PATCH and creation-with-upload.
//!
//! The body goes to storage frame by frame; memory is the storage's one write buffer. Without a
//! checksum, progress is checkpointed every `CHECKPOINT_BYTES` or `CHECKPOINT_INTERVAL` (while
//! bytes flow, storage saves what is cheap: everything on local disk, whole parts on object
//! stores; when the client goes quiet, everything), and whatever arrived before a dropped
//! connection, a read timeout, a takeover or shutdown is committed too: nothing received is
//! lost, and HEAD sees progress during a long PATCH. With a checksum nothing is committed until
//! the whole chunk is in and verified; a mismatch or an incomplete chunk is rolled back.

use std::time::Duration;

use hyper::body::Incoming;
use tokio::time::Instant;

use super::checksum::{Source, Verifier};
use super::events::{self, Shaped};
use super::{body_is_empty, completed, expiry};
use crate::app::App;
use crate::domain::upload::{MAX_LENGTH, Upload};
use crate::hooks::{HookType, HttpResponse};
use crate::http::body::{BodyReader, Read};
use crate::http::error::Error;
use crate::lock::Guard;
use crate::storage::Append;
use http::request::Parts;

const CHECKPOINT_BYTES: u64 = 64 << 20;
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Appends `body` to `upload` at its offset. The caller holds the upload's lock (`guard`),
/// whose token stops the body; `req` is the request, for hooks. On success `upload` carries the new offset
/// and expiry, and the result is what a pre-finish hook set for the response.
pub async fn ingest(
    app: &App,
    req: &Parts,
    upload: &mut Upload,
    body: Incoming,
    checksum: Option<Source>,
    guard: &Guard,
) -> Result<Shaped, Error> {
    let stop = guard.token();
    // How many bytes this request may add.
    let room = match (upload.length, app.config.max_size) {
        (Some(len), _) => len - upload.offset,
        (None, Some(max)) => max.saturating_sub(upload.offset),
        (None, None) => MAX_LENGTH - upload.offset,
    };
    let deferred = upload.length.is_none();
    let too_much = move || {
        if deferred {
            Error::MaxSizeExceeded
        } else {
            Error::SizeExceeded
        }
    };
    let declared = http_body::Body::size_hint(&body).exact();
    if declared.is_some_and(|n| n > room) {
        return Err(too_much());
    }
    if declared == Some(0) {
        return Ok(Shaped::default());
    }
    if room == 0 {
        // Nothing may be added (a finished upload): storage is not opened for a body that
        // can only be empty or too much.
        return match body_is_empty(app, body).await? {
            true => Ok(Shaped::default()),
            false => Err(too_much()),
        };
    }

    // Opening may wait for a part buffer (object stores); a takeover or shutdown ends the wait.
    let mut append = tokio::select! {
        append = app.storage.appender(&upload.id, upload.offset, upload.length) => append?,
        () = stop.cancelled() => return Err(stopped(app, guard)),
    };
    let mut reader = BodyReader::new(body, app.config.read_timeout, stop);
    let mut verifier = checksum.map(Verifier::new);
    let mut trailers = None;
    // A checksummed chunk is committed whole or not at all; anything else is saved as it goes.
    let checkpoints = verifier.is_none();
    let start = upload.offset;
    let mut received = 0u64;
    // `received` at the last checkpoint.
    let mut at_checkpoint = 0u64;
    let mut progress = Progress::new(app);
    let timer = tokio::time::sleep(CHECKPOINT_INTERVAL);
    tokio::pin!(timer);

    let stopped_by: Option<Error> = loop {
        // upload.offset is what the last checkpoint recorded.
        let read = tokio::select! {
            read = reader.next() => read,
            () = &mut timer, if checkpoints && start + received > upload.offset => {
                // While bytes flow, storage saves what is cheap to save (object stores: whole
                // parts); a quiet or stalled client's bytes are all saved, so HEAD shows them.
                let save = if received == at_checkpoint { Save::All } else { Save::Cheap };
                checkpoint(app, req, upload, append.as_mut(), save, &mut progress).await?;
                at_checkpoint = received;
                timer.as_mut().reset(Instant::now() + CHECKPOINT_INTERVAL);
                continue;
            }
        };
        match read {
            Read::Data(mut data) => {
                let left = room - received;
                let overflow = data.len() as u64 > left;
                if overflow {
                    data.truncate(left as usize);
                }
                if let Some(v) = verifier.as_mut() {
                    v.update(&data);
                }
                received += data.len() as u64;
                if let Err(e) = append.write(data).await {
                    break Some(e.into());
                }
                if overflow {
                    break Some(too_much());
                }
                if checkpoints && received - at_checkpoint >= CHECKPOINT_BYTES {
                    checkpoint(
                        app,
                        req,
                        upload,
                        append.as_mut(),
                        Save::Cheap,
                        &mut progress,
                    )
                    .await?;
                    at_checkpoint = received;
                    timer.as_mut().reset(Instant::now() + CHECKPOINT_INTERVAL);
                }
            }
            Read::End(t) => {
                trailers = t;
                break None;
            }
            Read::TimedOut => break Some(Error::ReadTimeout),
            Read::Lost => break Some(Error::ConnectionLost),
            Read::Cancelled => break Some(stopped(app, guard)),
        }
    };

    let outcome = match verifier {
        Some(verifier) => {
            // An incomplete chunk cannot be verified: it is discarded like a mismatching one.
            let verdict = match stopped_by {
                Some(e) => Err(e),
                None => verifier.finish(trailers.as_ref()),
            };
            match verdict {
                Ok(()) => {
                    progress.last_call();
                    checkpoint(app, req, upload, append.as_mut(), Save::All, &mut progress).await
                }
                Err(e) => {
                    append.rollback().await?;
                    return Err(e);
                }
            }
        }
        None => {
            // Keep everything that arrived, whatever stopped the body.
            progress.last_call();
            checkpoint(app, req, upload, append.as_mut(), Save::All, &mut progress).await?;
            if let Some(e) = &stopped_by {
                tracing::info!(id = %upload.id, offset = upload.offset, "body stopped early: {e}");
            }
            stopped_by.map_or(Ok(()), Err)
        }
    };
    drop(append);
    // However the body ended, an upload that is now complete is finished.
    let shaped = match upload.is_complete() {
        true => completed(app, req, upload).await?,
        false => Shaped::default(),
    };
    outcome.map(|()| shaped)
}

/// Why a request's lock token was cancelled.
fn stopped(app: &App, guard: &Guard) -> Error {
    if let Some(response) = guard.take_reason::<HttpResponse>() {
        // A post-receive hook stopped the upload: its response, as far as it is valid.
        let shaped = response.validated("post-receive").unwrap_or_default();
        return Error::rejected("post-receive", shaped);
    }
    if app.shutdown.is_cancelled() {
        Error::ShuttingDown
    } else {
        Error::Interrupted
    }
}

/// When post-receive events go out: at most one per progress interval while the body flows,
/// and one at the last checkpoint of the request.
struct Progress {
    interval: Option<Duration>,
    last: Option<Instant>,
    last_call: bool,
}

impl Progress {
    fn new(app: &App) -> Progress {
        Progress {
            interval: app
                .hooks
                .config()
                .filter(|_| app.hooks.is_enabled(HookType::PostReceive))
                .map(|c| c.progress_interval),
            last: None,
            last_call: false,
        }
    }

    fn last_call(&mut self) {
        self.last_call = true;
    }

    /// Whether a checkpoint now should carry a post-receive event (and notes that it does).
    fn due(&mut self) -> bool {
        let Some(interval) = self.interval else {
            return false;
        };
        let now = Instant::now();
        let due = self.last_call || self.last.is_none_or(|t| now - t >= interval);
        if due {
            self.last = Some(now);
        }
        due
    }
}

/// How much a checkpoint saves.
enum Save {
    /// Everything written so far.
    All,
    /// What storage can save cheaply; the rest at a later checkpoint.
    Cheap,
}

/// Makes what was written durable, then records the new offset (compare-and-set), with the
/// post-receive or post-finish event it causes.
async fn checkpoint(
    app: &App,
    req: &Parts,
    upload: &mut Upload,
    append: &mut dyn Append,
    save: Save,
    progress: &mut Progress,
) -> Result<(), Error> {
    let new_offset = match save {
        Save::All => append.commit().await?,
        Save::Cheap => append.checkpoint().await?,
    };
    if new_offset == upload.offset {
        return Ok(());
    }
    let complete = upload.length == Some(new_offset);
    let expires_at = expiry(app, complete);
    let kind = match complete {
        true => Some(HookType::PostFinish),
        false => progress.due().then_some(HookType::PostReceive),
    };
    let posted = match kind {
        Some(kind) => {
            let after = Upload {
                offset: new_offset,
                expires_at,
                ..upload.clone()
            };
            events::post(app, &[kind], req, &after)
        }
        None => Vec::new(),
    };
    if !app
        .meta
        .advance(&upload.id, upload.offset, new_offset, expires_at, &posted)
        .await?
    {
        return Err(Error::Internal(format!(
            "offset of {} changed under its lock (expected {})",
            upload.id, upload.offset
        )));
    }
    upload.offset = new_offset;
    upload.expires_at = expires_at;
    if !posted.is_empty() {
        app.hooks.wake();
    }
    Ok(())
}
