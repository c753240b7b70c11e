//! tuskd: a resumable-upload server speaking tus 1.0.0.
//!
//! # Layout
//! From the top down; a module imports only those below it (`docs/ARCHITECTURE.md` has the
//! layers, the flows of a PATCH and of a media job, and the contracts).
//! - `main.rs`, `cli`, `config`: raw flags in, validated `Config` out (`config` builds the plain
//!   settings types of the lower layers and is the only reader of the environment).
//! - `server`: accept loop, connection limit, timeouts, graceful shutdown, and the background
//!   loops; calls `http::handle` per request. `worker`: `tuskd worker`, media jobs only.
//!   `commands`: `tuskd hooks list|retry`, `tuskd media list|retry|reprocess`, `tuskd health`,
//!   `tuskd token`.
//!   `upload_cli`: `tuskd upload`, a resumable tus client.
//! - `app`: `App`, the composition root: opens the stores and builds everything once.
//! - `http`: the edge. `handle` (method override, CORS, common headers, the access line,
//!   routing with `route`, the gate's caller), `error` (the one place an error becomes a
//!   response), `body`, `headers`; the front doors: `http::tus` (one handler per tus request
//!   kind), the listing (`http::list`), and the media (`http::media`) and operators' routes
//!   (`http::ops`: health, readiness, metrics).
//! - `auth`: the gate every request passes (`--auth none|jwt|hook`): who is asking, as a
//!   `domain::access::Caller`; signed media URLs (`auth::signed`).
//! - `upload`: the upload core, protocol-neutral: create, append from a `ByteSource` with a
//!   pluggable checksum `Verifier`, declare length, complete, terminate, concatenate, read,
//!   and the expiry (`upload::expire`) and repair (`upload::recover`) loops; `UploadError`.
//! - `hooks`: tusd-compatible events to scripts or a webhook; pre-* awaited by the core,
//!   post-* delivered from the outbox in the metadata store by `hooks::dispatch`.
//! - `media`: the pipeline after an upload finishes, from a `media::Context`: durable jobs run
//!   by workers (detect, scan with clamd, then by kind: video to HLS with previews, images to
//!   variants, audio to a normalised rendition and waveform, a PDF's first page; publish) and
//!   the status document.
//! - `lock`: one writer per upload, with takeover of stalled holders, across nodes through the
//!   leases of `domain::lease`.
//! - `meta`: the `MetaStore` trait, SQLite and Postgres, the contract suite (source of truth
//!   for offsets; a change's events and media job written in its transaction).
//! - `storage`: the `Storage` trait, local disk, object stores (`storage::object`: S3, GCS,
//!   Azure, memory through object_store's multipart API, with its bookkeeping in the metadata
//!   store) and the contract suite every backend runs.
//! - `metrics` (the registry), `health` (readiness checks), `clock` (the wall clock tests move
//!   forward), `space` (free space on the filesystems tuskd writes to, against the
//!   `--min-free-space` reserve).
//! - `domain`: the shared types every layer speaks: callers and owners, uploads, listings,
//!   quotas, media records, outbox events and effects, leases, object-store parts.

#![warn(unreachable_pub, missing_debug_implementations)]

pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod domain;
pub mod health;
pub mod hooks;
pub mod host;
pub mod http;
pub mod lock;
pub mod media;
pub mod meta;
pub mod metrics;
pub mod server;
pub mod space;
pub mod storage;
pub mod tls;
pub mod upload;
pub mod upload_cli;
pub mod worker;

pub use app::App;
pub use config::Config;
pub use server::run;
