//! Appending a stream of bytes to an upload, shared by every way data arrives.
//!
//! The data goes to storage piece by piece; memory is the storage's one write buffer. Without
//! a checksum, progress is checkpointed every `CHECKPOINT_BYTES` or `CHECKPOINT_INTERVAL` (while
//! bytes flow, storage saves what is cheap: everything on local disk, whole parts on object
//! stores; when the client goes quiet, everything), and whatever arrived before a dropped
//! connection, a read timeout, a takeover or shutdown is committed too: nothing received is
//! lost, and HEAD sees progress during a long PATCH. With a checksum nothing is committed until
//! the whole chunk is in and verified; a mismatch or an incomplete chunk is rolled back.
//!
//! Data stops at the free-space reserve (`space::Allowance`, checked before each write): what
//! arrived until then is committed and the error (507) carries the offset kept. A disk that
//! fills anyway (another writer) is met the same way: storage keeps what it took, which is
//! committed and recorded; if even the record fails, storage is cut back to the recorded
//! offset, so nothing past it holds space.

use std::time::Duration;

use http::request::Parts;
use tokio::time::Instant;

use super::checksum::Verifier;
use super::source::{ByteSource, Read};
use super::{FullReason, Shaped, UploadError, Uploads};
use crate::domain::event::Effects;
use crate::domain::upload::{MAX_LENGTH, Upload};
use crate::hooks::{HookType, HttpResponse};
use crate::lock::Guard;
use crate::space::Allowance;
use crate::storage::{Append, StorageError};

const CHECKPOINT_BYTES: u64 = 64 << 20;
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// What bounds one append: how many bytes it may add, and the error for more than that.
struct Room {
    bytes: u64,
    /// The upload's length is not known yet: more is beyond the server's maximum.
    deferred: bool,
}

impl Room {
    fn too_much(&self) -> UploadError {
        if self.deferred {
            UploadError::MaxSizeExceeded
        } else {
            UploadError::SizeExceeded
        }
    }
}

/// The state of one append while its data streams in.
struct Stream<'a> {
    core: &'a Uploads,
    req: &'a Parts,
    upload: &'a mut Upload,
    progress: Progress,
    /// The offset the append started at.
    start: u64,
    received: u64,
    /// `received` at the last checkpoint.
    at_checkpoint: u64,
    /// Room against the free-space reserve.
    allowance: Allowance,
}

impl Uploads {
    /// Appends `data` to `upload` at its offset. The caller holds the upload's lock (`guard`),
    /// whose token stops the data; `req` is the request, for hooks. On success `upload`
    /// carries the new offset and expiry, and the result is what a pre-finish hook set for the
    /// response.
    pub async fn append(
        &self,
        req: &Parts,
        upload: &mut Upload,
        mut data: Box<dyn ByteSource>,
        verifier: Option<Box<dyn Verifier>>,
        guard: &Guard,
    ) -> Result<Shaped, UploadError> {
        let room = self.room(upload);
        let declared = data.exact_len();
        if declared.is_some_and(|n| n > room.bytes) {
            return Err(room.too_much());
        }
        if declared == Some(0) {
            return Ok(Shaped::default());
        }
        let stop = guard.token();
        if room.bytes == 0 {
            // Nothing may be added (a finished upload): storage is not opened for data that
            // can only be empty or too much.
            let empty = tokio::select! {
                biased;
                () = stop.cancelled() => return Err(self.stopped_holder(guard)),
                empty = data.is_empty() => empty?,
            };
            return match empty {
                true => Ok(Shaped::default()),
                false => Err(room.too_much()),
            };
        }
        // Opening may wait for a part buffer (object stores); a takeover or shutdown ends the
        // wait.
        let append = tokio::select! {
            append = self.storage.appender(&upload.id, upload.offset, upload.length) => append?,
            () = stop.cancelled() => return Err(self.stopped_holder(guard)),
        };
        let start = upload.offset;
        let mut stream = Stream {
            core: self,
            req,
            upload,
            progress: Progress::new(self),
            start,
            received: 0,
            at_checkpoint: 0,
            allowance: self.space.allowance(),
        };
        let outcome = stream
            .run(append, data.as_mut(), verifier, &room, guard)
            .await;
        let Stream { upload, .. } = stream;
        // However the data ended, an upload that is now complete is finished.
        let shaped = match upload.is_complete() {
            true => self.complete(req, upload).await?,
            false => Shaped::default(),
        };
        outcome.map(|()| shaped).map_err(|e| match e {
            // Out of room: the client resumes from what was kept once space returns.
            UploadError::Full { reason, .. } => UploadError::Full {
                reason,
                offset: Some(upload.offset),
            },
            e => e,
        })
    }

    /// How many bytes an append to `upload` may add.
    fn room(&self, upload: &Upload) -> Room {
        let bytes = match (upload.length, self.limits.max_size) {
            (Some(len), _) => len - upload.offset,
            (None, Some(max)) => max.saturating_sub(upload.offset),
            (None, None) => MAX_LENGTH - upload.offset,
        };
        Room {
            bytes,
            deferred: upload.length.is_none(),
        }
    }

    /// Why a request's lock token was cancelled.
    fn stopped_holder(&self, guard: &Guard) -> UploadError {
        if let Some(response) = guard.take_reason::<HttpResponse>() {
            // A post-receive hook stopped the upload: its response, as far as it is valid.
            let shaped = response.validated("post-receive").unwrap_or_default();
            return UploadError::rejected("post-receive", shaped);
        }
        self.stopped()
    }
}

impl Stream<'_> {
    /// Streams the data into storage with checkpoints (or, with a verifier, whole or not at
    /// all), then commits what it keeps.
    async fn run(
        &mut self,
        mut append: Box<dyn Append>,
        data: &mut dyn ByteSource,
        mut verifier: Option<Box<dyn Verifier>>,
        room: &Room,
        guard: &Guard,
    ) -> Result<(), UploadError> {
        let (stopped_by, trailers) = self
            .receive(append.as_mut(), data, &mut verifier, room, guard)
            .await?;
        let Some(verifier) = verifier else {
            // Keep everything that arrived, whatever stopped the data.
            self.progress.last_call();
            self.checkpoint(append.as_mut(), Save::All).await?;
            if let Some(e) = &stopped_by {
                tracing::info!(id = %self.upload.id, offset = self.upload.offset, "data stopped early: {e}");
            }
            return stopped_by.map_or(Ok(()), Err);
        };
        // An incomplete chunk cannot be verified: it is discarded like a mismatching one.
        let verdict = match stopped_by {
            Some(e) => Err(e),
            None => verifier
                .finish(trailers.as_ref())
                .map_err(UploadError::from),
        };
        match verdict {
            Ok(()) => {
                self.progress.last_call();
                self.checkpoint(append.as_mut(), Save::All).await
            }
            Err(e) => {
                append.rollback().await?;
                Err(e)
            }
        }
    }

    /// Reads the data until it ends or stops, writing it to storage (and checkpointing, unless
    /// a verifier needs the chunk whole). Returns what stopped it early, if anything, and the
    /// trailers.
    async fn receive(
        &mut self,
        append: &mut dyn Append,
        data: &mut dyn ByteSource,
        verifier: &mut Option<Box<dyn Verifier>>,
        room: &Room,
        guard: &Guard,
    ) -> Result<(Option<UploadError>, Option<http::HeaderMap>), UploadError> {
        // A checksummed chunk is committed whole or not at all; anything else is saved as it
        // goes.
        let checkpoints = verifier.is_none();
        let stop = guard.token();
        let timer = tokio::time::sleep(CHECKPOINT_INTERVAL);
        tokio::pin!(timer);
        loop {
            // upload.offset is what the last checkpoint recorded.
            let unsaved = self.start + self.received > self.upload.offset;
            let read = tokio::select! {
                biased;
                () = stop.cancelled() => {
                    return Ok((Some(self.core.stopped_holder(guard)), None));
                }
                read = data.next() => read,
                () = &mut timer, if checkpoints && unsaved => {
                    // While bytes flow, storage saves what is cheap to save (object stores:
                    // whole parts); a quiet or stalled client's bytes are all saved, so HEAD
                    // shows them.
                    let save = match self.received == self.at_checkpoint {
                        true => Save::All,
                        false => Save::Cheap,
                    };
                    self.checkpoint(append, save).await?;
                    timer.as_mut().reset(Instant::now() + CHECKPOINT_INTERVAL);
                    continue;
                }
            };
            let mut piece = match read {
                Read::Data(piece) => piece,
                Read::End(trailers) => return Ok((None, trailers)),
                Read::TimedOut => return Ok((Some(UploadError::ReadTimeout), None)),
                Read::Lost => return Ok((Some(UploadError::ConnectionLost), None)),
                Read::Cancelled => return Ok((Some(self.core.stopped_holder(guard)), None)),
            };
            let left = room.bytes - self.received;
            let overflow = piece.len() as u64 > left;
            if overflow {
                piece.truncate(left as usize);
            }
            // The reserve: what fits is written, then the data stops.
            let allowed = self.allowance.take(piece.len() as u64) as usize;
            let short = allowed < piece.len();
            if short {
                piece.truncate(allowed);
            }
            if let Some(v) = verifier.as_mut() {
                v.update(&piece);
            }
            self.received += piece.len() as u64;
            if let Err(e) = append.write(piece).await {
                return Ok((Some(e.into()), None));
            }
            if short {
                return Ok((Some(UploadError::full(FullReason::Reserve)), None));
            }
            if overflow {
                return Ok((Some(room.too_much()), None));
            }
            if checkpoints && self.received - self.at_checkpoint >= CHECKPOINT_BYTES {
                self.checkpoint(append, Save::Cheap).await?;
                timer.as_mut().reset(Instant::now() + CHECKPOINT_INTERVAL);
            }
        }
    }

    /// Makes what was written durable, then records the new offset (compare-and-set), with
    /// the post-receive or post-finish event it causes. Storage that filled keeps what it took:
    /// that is recorded, then the error returned.
    async fn checkpoint(&mut self, append: &mut dyn Append, save: Save) -> Result<(), UploadError> {
        let saved = match save {
            Save::All => append.commit().await,
            Save::Cheap => append.checkpoint().await,
        };
        let (new_offset, full) = match saved {
            Ok(n) => (n, false),
            Err(StorageError::Full) => (append.commit().await?, true),
            Err(e) => return Err(e.into()),
        };
        self.at_checkpoint = self.received;
        let recorded = self.record(new_offset).await;
        if let Some(e) = recorded.as_ref().err().filter(|e| e.is_full()) {
            // The metadata store is full too: nothing past the recorded offset may hold space
            // (a full disk must not stay full of bytes nobody can resume from).
            let upload = &self.upload;
            if let Err(t) = append.truncate(upload.offset).await {
                tracing::warn!(id = %upload.id, "cannot cut storage back to the recorded offset after {e}: {t}");
            }
        }
        recorded?;
        match full {
            true => Err(UploadError::full(FullReason::Storage)),
            false => Ok(()),
        }
    }

    /// Records `new_offset` (compare-and-set), with the post-receive or post-finish event it
    /// causes.
    async fn record(&mut self, new_offset: u64) -> Result<(), UploadError> {
        let core = self.core;
        let upload = &mut *self.upload;
        if new_offset == upload.offset {
            return Ok(());
        }
        let complete = upload.length == Some(new_offset);
        let expires_at = core.expiry(complete);
        let kind = match complete {
            true => Some(HookType::PostFinish),
            false => self.progress.due().then_some(HookType::PostReceive),
        };
        // Only a checkpoint that causes something needs the upload as it will be (a media job
        // comes with post-finish: both follow from finishing the upload).
        let effects = match kind {
            Some(kind) => {
                let after = Upload {
                    offset: new_offset,
                    expires_at,
                    ..upload.clone()
                };
                core.effects(core.post(&[kind], self.req, &after), &after)
            }
            None => Effects::default(),
        };
        let wake_hooks = !effects.events.is_empty();
        if !core
            .meta
            .advance(&upload.id, upload.offset, new_offset, expires_at, &effects)
            .await?
        {
            return Err(UploadError::changed_under_lock(&upload.id, "the offset"));
        }
        upload.offset = new_offset;
        upload.expires_at = expires_at;
        if wake_hooks {
            core.hooks.wake();
        }
        Ok(())
    }
}

/// When post-receive events go out: at most one per progress interval while the data flows,
/// and one at the last checkpoint of the request.
struct Progress {
    interval: Option<Duration>,
    last: Option<Instant>,
    last_call: bool,
}

impl Progress {
    fn new(core: &Uploads) -> Progress {
        Progress {
            interval: core
                .hooks
                .config()
                .filter(|_| core.hooks.is_enabled(HookType::PostReceive))
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
