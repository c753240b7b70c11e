//! tuskd: a resumable-upload server speaking tus 1.0.0.
//!
//! # Layout
//! - `cli`, `config`: raw flags in, validated `Config` out (`config` builds the plain
//!   settings types of the lower layers and is the only reader of the environment).
//! - `commands`: the administrative subcommands `tuskd hooks list|retry`, `tuskd media
//!   list|retry|reprocess` and `tuskd health`.
//! - `server`: accept loop, connection limit, timeouts, graceful shutdown, and the background
//!   loops; calls `http::handle` per request.
//! - `http`: the edge (`handle`: method override, CORS, common headers, routes to handlers),
//!   routing, typed headers incl. the protocol version, bodies. Parsing, no upload logic.
//! - `tus`: one handler per request kind (`options`, `create`, `head`, `patch`, `delete`,
//!   `get`, `concat`) and the shared body `ingest` loop.
//! - `error`: the protocol error, its status table and the one `into_response`.
//! - `upload`: domain types (ids, metadata, the upload record).
//! - `meta`: the `MetaStore` trait and its SQLite implementation (source of truth for offsets).
//! - `storage`: the `Storage` trait, local disk, object stores (`storage::object`: S3, GCS,
//!   Azure, memory through object_store's multipart API, with its bookkeeping in the metadata
//!   store) and the contract suite every backend runs.
//! - `recover`: repair of work left between two steps by a crash or a failing store, at
//!   start-up and then periodically.
//! - `hooks`: tusd-compatible events to scripts or a webhook; pre-* awaited by requests
//!   (`tus::events` applies their answers), post-* delivered from the outbox in the metadata
//!   store by `hooks::dispatch`.
//! - `media`: the pipeline after an upload finishes: durable jobs run by workers (detect,
//!   scan with clamd, then by kind: video to HLS with previews, images to variants, audio to a
//!   normalised rendition and waveform, a PDF's first page; publish), the status API and
//!   derived files under the media path.
//! - `lock`: one writer per upload, with takeover of stalled holders.
//! - `upload_cli`: `tuskd upload`, a resumable tus client (state file, retries, parallel
//!   ranges, progress bars, `--wait` for the media status).
//! - `expire`: the sweeper for expired unfinished uploads; `clock`: the wall clock it and
//!   the handlers read, which tests move forward.

pub mod app;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod domain;

pub mod health;
pub mod hooks;
pub mod http;
pub mod lock;
pub mod media;
pub mod meta;
pub mod metrics;

pub mod server;
pub mod storage;
pub mod upload;

pub mod upload_cli;
pub mod worker;

pub use app::App;
pub use config::Config;
pub use server::run;
