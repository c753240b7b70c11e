//! An append to a local file: the request task hands the body's frames over as they are (no
//! copy), in batches of `WRITE_BATCH`, to a queue of `QUEUED_BATCHES`; a writer on the blocking
//! pool writes each batch with one vectored write while the queue has work, and returns the
//! thread when it is empty: reading the socket and writing the file overlap without a thread
//! hand-off per batch while bytes flow, and a stalled client's upload holds no thread
//! (thousands of them cannot exhaust the pool). Memory per append is bounded (the batch being
//! gathered and the queued ones), whatever the body size. With `fsync` on,
//! `commit` also flushes the file. A write the disk refuses (full) keeps what was written
//! whole: later writes are refused at once, the next flush cuts the file back to that length
//! and syncs it, and the commit after the failure returns it.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::{Append, StorageError};

/// Bytes gathered before one write to the file.
pub const WRITE_BATCH: usize = 64 * 1024;
/// Batches queued for the writer (or being written) before the reader waits.
const QUEUED_BATCHES: usize = 3;

/// Work for an append's writer.
enum Job {
    /// Frames to write, with the queue room they take (given back once written).
    Write(Vec<Bytes>, OwnedSemaphorePermit),
    /// Reply once everything queued before is written (and synced if asked), with the file's
    /// length. After a failed write the file is cut back to what was written whole, synced, and
    /// the reply is the write's error with that length.
    Flush {
        sync: bool,
        done: oneshot::Sender<(io::Result<()>, u64)>,
    },
    /// Cut the file back to this length.
    Truncate {
        len: u64,
        done: oneshot::Sender<(io::Result<()>, u64)>,
    },
}

/// An append's file and its queue of jobs. A writer runs on the blocking pool only while the
/// queue has jobs: it takes them in order until the queue is empty, then returns the thread.
/// An append whose client has gone quiet so holds no thread, however long it stays open.
struct Writer {
    queue: Mutex<Queue>,
    file: Mutex<FileState>,
    /// Set when a write failed, until a flush or truncate reports it: later writes are refused
    /// at once rather than queued.
    broken: Mutex<Option<io::ErrorKind>>,
}

struct Queue {
    jobs: VecDeque<Job>,
    /// A writer is running (or about to): it will see jobs pushed now.
    running: bool,
}

struct FileState {
    file: File,
    /// The file's length: where the next write goes.
    len: u64,
    /// The first write error since the last flush or truncate.
    failed: Option<io::Error>,
}

impl Writer {
    /// Queues a job, starting a writer if none runs.
    fn push(self: &Arc<Self>, job: Job) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.jobs.push_back(job);
        if !q.running {
            q.running = true;
            let me = self.clone();
            tokio::task::spawn_blocking(move || me.drain());
        }
    }

    fn drain(&self) {
        // Only one writer runs at a time (`running`), so this lock is never contended.
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let job = {
                let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                match q.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        q.running = false;
                        return;
                    }
                }
            };
            let FileState { file, len, failed } = &mut *f;
            match job {
                Job::Write(batch, _room) => {
                    if failed.is_none() {
                        let (written, r) = write_all_vectored(file, &batch);
                        *len += written;
                        if let Err(e) = r {
                            *self.broken.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.kind());
                            *failed = Some(e);
                        }
                    }
                }
                Job::Flush { sync, done } => {
                    let r = match failed.take() {
                        // What was written whole is kept (a full disk): the rest of a partial
                        // write goes, and the kept part is made durable before the error is told.
                        Some(e) => file
                            .set_len(*len)
                            .and_then(|()| file.seek(SeekFrom::Start(*len)).map(drop))
                            .and_then(|()| if sync { file.sync_data() } else { Ok(()) })
                            .and(Err(e)),
                        None if sync => file.sync_data(),
                        None => Ok(()),
                    };
                    *self.broken.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    let _ = done.send((r, *len));
                }
                Job::Truncate { len: to, done } => {
                    *failed = None;
                    *self.broken.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    let r = file
                        .set_len(to)
                        .and_then(|()| file.seek(SeekFrom::Start(to)).map(drop));
                    if r.is_ok() {
                        *len = to;
                    }
                    let _ = done.send((r, *len));
                }
            }
        }
    }
}

pub(super) struct LocalAppend {
    writer: Arc<Writer>,
    /// Room in the writer's queue, in batches: the reader waits when it is full.
    room: Arc<Semaphore>,
    /// Frames gathered for the next write.
    batch: Vec<Bytes>,
    batched: usize,
    written: u64,
    committed: u64,
    fsync: bool,
    /// A write was refused for a failed one: the next flush's report of it is not news.
    told: bool,
}

impl std::fmt::Debug for LocalAppend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAppend")
            .field("written", &self.written)
            .field("committed", &self.committed)
            .finish_non_exhaustive()
    }
}

impl LocalAppend {
    pub(super) fn start(file: File, offset: u64, fsync: bool) -> LocalAppend {
        LocalAppend {
            writer: Arc::new(Writer {
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    running: false,
                }),
                file: Mutex::new(FileState {
                    file,
                    len: offset,
                    failed: None,
                }),
                broken: Mutex::new(None),
            }),
            room: Arc::new(Semaphore::new(QUEUED_BATCHES)),
            batch: Vec::new(),
            batched: 0,
            written: offset,
            committed: offset,
            fsync,
            told: false,
        }
    }

    /// Hands the gathered frames to the writer, once there is room in its queue. Refused once
    /// a write failed (a full disk): the caller commits what was kept.
    async fn send_batch(&mut self) -> Result<(), StorageError> {
        if let Some(kind) = *self.writer.broken.lock().unwrap_or_else(|p| p.into_inner()) {
            self.batch.clear();
            self.batched = 0;
            self.told = true;
            return Err(io::Error::from(kind).into());
        }
        let room = self
            .room
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StorageError::Io(io::Error::other("file writer stopped")))?;
        self.batched = 0;
        let batch = std::mem::take(&mut self.batch);
        self.writer.push(Job::Write(batch, room));
        Ok(())
    }

    /// Runs a flush or truncate; on success the file's length, else the error with the length
    /// the file was left at (which this append then stands at: written and committed).
    async fn ask(
        &mut self,
        job: impl FnOnce(oneshot::Sender<(io::Result<()>, u64)>) -> Job,
    ) -> Result<u64, StorageError> {
        let (tx, rx) = oneshot::channel();
        self.writer.push(job(tx));
        let (r, len) = rx
            .await
            .map_err(|_| StorageError::Io(io::Error::other("file writer stopped")))?;
        if let Err(e) = r {
            self.batch.clear();
            self.batched = 0;
            self.written = len;
            self.committed = len;
            return Err(e.into());
        }
        Ok(len)
    }
}

/// Writes the frames with as few system calls as possible; returns how many bytes were
/// written (all of them, unless it failed). The slices live on the stack: the writer threads
/// never allocate, so the allocator keeps no per-thread arenas for them.
fn write_all_vectored(file: &mut File, frames: &[Bytes]) -> (u64, io::Result<()>) {
    const MAX_SLICES: usize = 64;
    let mut written = 0u64;
    for group in frames.chunks(MAX_SLICES) {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        for (slot, frame) in slices.iter_mut().zip(group) {
            *slot = IoSlice::new(frame);
        }
        let mut rest = &mut slices[..group.len()];
        while !rest.is_empty() {
            match file.write_vectored(rest) {
                Ok(0) => return (written, Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    written += n as u64;
                    IoSlice::advance_slices(&mut rest, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (written, Err(e)),
            }
        }
    }
    (written, Ok(()))
}

#[async_trait]
impl Append for LocalAppend {
    async fn write(&mut self, data: Bytes) -> Result<(), StorageError> {
        if data.is_empty() {
            return Ok(());
        }
        self.written += data.len() as u64;
        self.batched += data.len();
        self.batch.push(data);
        if self.batched >= WRITE_BATCH {
            self.send_batch().await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<u64, StorageError> {
        if !self.batch.is_empty() {
            // A refused batch (a failed write) is reported by the flush.
            let _ = self.send_batch().await;
        }
        let sync = self.fsync;
        let told = std::mem::take(&mut self.told);
        match self.ask(|done| Job::Flush { sync, done }).await {
            Ok(_) => {}
            // The write that failed was reported: what was kept (`ask` stands the append at
            // it) is durable now.
            Err(StorageError::Full) if told => return Ok(self.committed),
            Err(e) => return Err(e),
        }
        self.committed = self.written;
        Ok(self.committed)
    }

    async fn rollback(mut self: Box<Self>) -> Result<(), StorageError> {
        self.batch.clear();
        let len = self.committed;
        self.ask(|done| Job::Truncate { len, done }).await.map(drop)
    }

    async fn truncate(&mut self, len: u64) -> Result<(), StorageError> {
        self.told = false;
        self.batch.clear();
        self.batched = 0;
        self.ask(|done| Job::Truncate { len, done }).await?;
        self.written = len;
        self.committed = len;
        Ok(())
    }
}
