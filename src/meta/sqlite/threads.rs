//! The SQLite connections' own threads: one writer and a few readers, each owning its
//! connection and taking jobs from a queue. The metadata store never shares a thread pool with
//! body I/O or anything else, so no number of slow uploads can keep an offset from being read
//! or recorded; and a job's result comes back through a oneshot channel, so async callers never
//! block.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::meta::MetaError;

type WriteJob = Box<dyn FnOnce(&mut Connection) + Send>;
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// The threads; they end when this is dropped and their queues are empty.
pub(super) struct Threads {
    writer: mpsc::Sender<WriteJob>,
    readers: mpsc::Sender<ReadJob>,
}

fn stopped() -> MetaError {
    MetaError::Task("the database thread stopped".into())
}

/// Runs a job, turning a panic into an error for its caller instead of a dead thread.
fn run_job(job: impl FnOnce()) {
    if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
        tracing::error!("a database job panicked");
    }
}

impl Threads {
    pub(super) fn start(
        mut writer: Connection,
        readers: Vec<Connection>,
    ) -> std::io::Result<Threads> {
        let (wtx, wrx) = mpsc::channel::<WriteJob>();
        std::thread::Builder::new()
            .name("tuskd-db-writer".into())
            .spawn(move || {
                for job in wrx {
                    run_job(|| job(&mut writer));
                }
            })?;
        let (rtx, rrx) = mpsc::channel::<ReadJob>();
        let rrx = Arc::new(Mutex::new(rrx));
        for (i, conn) in readers.into_iter().enumerate() {
            let rrx = rrx.clone();
            std::thread::Builder::new()
                .name(format!("tuskd-db-reader-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let next = rrx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match next {
                            Ok(job) => run_job(|| job(&conn)),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Threads {
            writer: wtx,
            readers: rtx,
        })
    }

    pub(super) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Box::new(move |c| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        let (tx, rx) = oneshot::channel();
        self.readers
            .send(Box::new(move |c| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}
