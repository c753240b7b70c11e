//! tuskd: a resumable-upload server speaking tus 1.0.0.
//!
//! # Layout
//! - `cli`, `config`: raw flags in, validated `Config` out.
//! - `server`: accept loop, timeouts, graceful shutdown; calls `tus::handle` per request.
//! - `http`: routing, typed headers, CORS, bodies. Pure parsing, no upload logic.
//! - `tus`: one handler per request kind (`options`, `create`, `head`, `patch`, `delete`,
//!   `get`, `concat`) and the shared body `ingest` loop.
//! - `error`: the protocol error and the one place errors become responses.
//! - `upload`: domain types (ids, metadata, the upload record).
//! - `meta`: the `MetaStore` trait and its SQLite implementation (source of truth for offsets).
//! - `storage`: the `Storage` trait, local disk, object stores (`storage::object`: S3, GCS,
//!   Azure, memory through object_store's multipart API, with its bookkeeping in the metadata
//!   store) and the contract suite every backend runs.
//! - `recover`: start-up repair of storage left between two steps by a crash.
//! - `hooks`: tusd-compatible events to scripts or a webhook; pre-* awaited by requests
//!   (`tus::events` applies their answers), post-* delivered from the outbox in the metadata
//!   store by `hooks::dispatch`; `hooks_cli` is `tuskd hooks list|retry`.
//! - `lock`: one writer per upload, with takeover of stalled holders.
//! - `expire`: the sweeper for expired unfinished uploads.

pub mod app;
pub mod cli;
pub mod config;
pub mod error;
pub mod expire;
pub mod hooks;
pub mod hooks_cli;
pub mod http;
pub mod lock;
pub mod meta;
pub mod recover;
pub mod server;
pub mod storage;
pub mod tus;
pub mod upload;

pub use app::App;
pub use config::Config;
pub use server::run;
