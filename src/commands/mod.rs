//! The administrative subcommands, run against a data directory or a running server rather
//! than serving: `tuskd hooks list|retry` (`hooks`, the outbox), `tuskd media
//! list|retry|reprocess` (`media`, the media jobs), `tuskd health` (`health`, a container
//! health check) and `tuskd token` (`token`, an HS256 token for `--auth jwt`). Each takes its raw `cli` arguments and returns the process exit status; they
//! sit on top of the layers they read (`meta`, `media`), which know nothing of them.

pub mod health;
pub mod hooks;
pub mod media;
pub mod token;
