//! The shared domain: the types every layer below the front doors speaks (callers and owners, uploads, listings, media
//! records, object-store parts, leases, outbox events). Pure types and parsers, no I/O; the
//! layers that keep or act on them (meta, storage, lock, hooks, media, the upload core) import
//! this module and not each other's internals.

pub mod access;
pub mod event;
pub mod lease;
pub mod listing;
pub mod media;
pub mod parts;
pub mod quota;
pub mod task;
pub mod upload;
