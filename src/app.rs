//! `App`: everything a request needs, cheap to clone (an `Arc` inside).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::lock::Locks;
use crate::meta::MetaStore;
use crate::meta::sqlite::SqliteMeta;
use crate::storage::Storage;
use crate::storage::local::LocalStorage;

/// How long a request waits for the current holder of an upload to let go.
const LOCK_WAIT: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub struct App(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub meta: Arc<dyn MetaStore>,
    pub storage: Arc<dyn Storage>,
    pub locks: Locks,
    /// Cancelled when the server shuts down; every lock holder's token is a child of it.
    pub shutdown: CancellationToken,
}

impl Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the metadata database: {0}")]
    Meta(#[from] crate::meta::MetaError),
}

impl App {
    /// Opens the embedded defaults: local disk and SQLite under the data directory.
    pub fn open(config: Config) -> Result<App, OpenError> {
        let dir = &config.data_dir;
        let data_dir_err = |source| OpenError::DataDir {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(data_dir_err)?;
        let storage = LocalStorage::open(dir, config.fsync).map_err(data_dir_err)?;
        let meta = SqliteMeta::open(&dir.join("tuskd.db"), config.fsync)?;
        Ok(App::with_parts(config, Arc::new(meta), Arc::new(storage)))
    }

    pub fn with_parts(config: Config, meta: Arc<dyn MetaStore>, storage: Arc<dyn Storage>) -> App {
        let shutdown = CancellationToken::new();
        let locks = Locks::new(shutdown.clone(), LOCK_WAIT);
        App(Arc::new(Inner {
            config,
            meta,
            storage,
            locks,
            shutdown,
        }))
    }
}
