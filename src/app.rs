//! `App`: everything a request needs, cheap to clone (an `Arc` inside).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::auth::signed::Signer;
use crate::config::Config;
use crate::hooks::Hooks;
use crate::lock::{Cluster, Locks};
use crate::meta::{Meta, MetaStore};
use crate::storage::Storage;
use crate::storage::local::LocalStorage;
use crate::storage::object::ObjectStorage;
use crate::storage::object::open::{self, ConnectError, StoreLocation};
use crate::upload::{Limits, Uploads};

/// How long a request waits for the current holder of an upload to let go.
const LOCK_WAIT: Duration = Duration::from_secs(20);

#[derive(Clone, Debug)]
pub struct App(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub config: Config,
    /// The gate in front of every request (`--auth`).
    pub auth: Auth,
    /// Signs and checks media URLs (`--media-access signed`).
    pub signer: Option<Signer>,
    /// The upload core every front door calls; it holds the stores, the locks, the hooks, the
    /// shutdown signal (every lock holder's token is a child of it) and the media workers'
    /// wake-up, which the rest of the process shares.
    pub uploads: Uploads,
    /// Readiness checks and the media workers' signs of life.
    pub health: Arc<crate::health::Health>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The store's kind, for metric labels: local, s3, gcs, azure, memory.
    pub store_backend: &'static str,
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
    #[error("{0}")]
    Store(#[from] ConnectError),
    #[error("--auth: {0}")]
    Auth(String),
}

impl App {
    /// Opens the metadata store (`--meta`; SQLite under the data directory by default) and the
    /// configured store (local disk under the data directory by default). An object store is
    /// checked with a test write first.
    pub async fn open(config: Config) -> Result<App, OpenError> {
        let dir_err = |dir: &std::path::Path| {
            let path = dir.display().to_string();
            move |source| OpenError::DataDir { path, source }
        };
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(dir_err(dir))?;
        let opened = crate::meta::open(
            &config.meta,
            &crate::meta::OpenOptions {
                durable: config.fsync,
                pool_size: config.meta_pool,
            },
        )
        .await?;
        let meta: Arc<dyn Meta> = opened.meta;
        let storage: Arc<dyn Storage> = match &config.store {
            StoreLocation::Local(root) => {
                Arc::new(LocalStorage::open(root, config.fsync).map_err(dir_err(root))?)
            }
            StoreLocation::Object(url) => {
                let (backend, prefix) = open::connect(url, &config.s3, config.store_timeout)?;
                open::probe(backend.as_ref(), &prefix, url, &config.credentials).await?;
                let kind = match url.scheme() {
                    "s3" | "s3a" => "s3store",
                    "gs" => "gcsstore",
                    "memory" => "memorystore",
                    _ => "azurestore",
                };
                Arc::new(
                    ObjectStorage::new(
                        backend,
                        prefix,
                        config.part_size,
                        config.max_buffered,
                        meta.clone() as Arc<dyn crate::storage::object::PartLog>,
                        config.store_timeout,
                    )
                    .labelled(kind, url.host_str().unwrap_or_default()),
                )
            }
        };
        App::assemble(config, meta, storage, opened.cluster)
    }

    pub fn with_parts(
        config: Config,
        meta: Arc<dyn MetaStore>,
        storage: Arc<dyn Storage>,
    ) -> Result<App, OpenError> {
        App::assemble(config, meta, storage, None)
    }

    /// `cluster`: the locks across nodes, when the metadata store is shared.
    fn assemble(
        config: Config,
        meta: Arc<dyn MetaStore>,
        storage: Arc<dyn Storage>,
        cluster: Option<Arc<dyn Cluster>>,
    ) -> Result<App, OpenError> {
        let shutdown = CancellationToken::new();
        let mut locks = Locks::new(shutdown.clone(), LOCK_WAIT);
        if let Some(cluster) = cluster {
            locks = locks.with_cluster(cluster);
        }
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let hooks = Hooks::new(config.hooks.clone(), metrics.clone());
        let auth = Auth::build(&config.access.auth, &hooks).map_err(OpenError::Auth)?;
        let signer = match &config.access.media_access {
            crate::config::MediaAccess::Signed { key_file, ttl } => {
                let text = std::fs::read(key_file)
                    .map_err(|e| OpenError::Auth(format!("{}: {e}", key_file.display())))?;
                let signer = Signer::from_file_text(&text, *ttl).map_err(|e| {
                    OpenError::Auth(format!(
                        "--media-signing-key-file {}: {e}",
                        key_file.display()
                    ))
                })?;
                Some(signer)
            }
            _ => None,
        };
        let store_backend = match &config.store {
            StoreLocation::Local(_) => "local",
            StoreLocation::Object(url) => match url.scheme() {
                "s3" => "s3",
                "gs" => "gcs",
                "az" | "azure" => "azure",
                "memory" => "memory",
                _ => "object",
            },
        };
        let workers = config.media.as_ref().map_or(0, |m| m.slots().len());
        // Every store call is counted for the metrics, whoever makes it.
        let storage: Arc<dyn Storage> = Arc::new(crate::storage::metered::Metered::new(
            storage,
            metrics.clone(),
            store_backend,
        ));
        let space =
            crate::space::Space::new(config.min_free_space, watched(&config), metrics.clone());
        let uploads = Uploads::new(crate::upload::Inner {
            meta,
            storage,
            locks,
            hooks,
            limits: Limits {
                max_size: config.max_size,
                expire_after: config.expire_after,
                repair_interval: config.repair_interval,
                quota: config.access.quota.clone(),
            },
            clock: config.clock.clone(),
            metrics: metrics.clone(),
            media_jobs: config.media.is_some(),
            shutdown,
            space,
            repair: tokio::sync::Notify::new(),
            media_wake: Default::default(),
        });
        Ok(App(Arc::new(Inner {
            config,
            auth,
            signer,
            uploads,
            health: Arc::new(crate::health::Health::new(workers)),
            metrics,
            store_backend,
        })))
    }
}

impl App {
    /// What the media workers work with, when the media pipeline is on.
    pub fn media(&self) -> Option<crate::media::Context> {
        let core = &self.uploads;
        Some(crate::media::Context {
            meta: core.meta.clone(),
            storage: core.storage.clone(),
            hooks: core.hooks.clone(),
            config: self.config.media.clone()?,
            data_dir: self.config.data_dir.clone(),
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            shutdown: core.shutdown.clone(),
            wake: core.media_wake.clone(),
            space: core.space.clone(),
        })
    }
}

/// The directories on local disk that tuskd writes to, for the free-space reserve: the
/// uploads (local storage), the SQLite database, the media workers' scratch files.
fn watched(config: &Config) -> Vec<(crate::space::Role, std::path::PathBuf)> {
    use crate::space::Role;
    let mut dirs = Vec::new();
    if let StoreLocation::Local(root) = &config.store {
        dirs.push((Role::Uploads, root.join("uploads")));
    }
    if let crate::meta::MetaLocation::Sqlite(db) = &config.meta {
        let dir = db.parent().filter(|p| !p.as_os_str().is_empty());
        dirs.push((
            Role::Metadata,
            dir.unwrap_or(std::path::Path::new(".")).to_owned(),
        ));
    }
    if config.media.is_some() {
        dirs.push((
            Role::Work,
            crate::media::config::MediaConfig::work_dir(&config.data_dir),
        ));
    }
    dirs
}

/// Wakes this process's background loops when another process that shares the metadata store
/// released work (events due: the hook dispatcher; media jobs: an idle media worker), so they
/// start it at once instead of at their next poll. Runs until shutdown; a store no other process
/// shares has nothing to relay.
pub async fn relay_work(app: App) {
    let Some(mut heard) = app.uploads.meta.work() else {
        return;
    };
    loop {
        let work = tokio::select! {
            () = app.uploads.shutdown.cancelled() => return,
            w = heard.recv() => w,
        };
        match work {
            Ok(crate::meta::Work::Events) => app.uploads.hooks.wake(),
            Ok(crate::meta::Work::MediaJobs) => app.uploads.media_wake.notify_one(),
            // Missed some: wake both, they look for themselves.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                app.uploads.hooks.wake();
                app.uploads.media_wake.notify_one();
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
