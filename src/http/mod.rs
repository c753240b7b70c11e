//! The HTTP edge: `handle` (every request's way in and out), routing, typed headers, CORS,
//! bodies, the one place errors become responses (`error`), and the handlers of every route:
//! the tus front door (`tus`), the media routes (`media`) and the operators' routes (`ops`:
//! health, readiness, metrics). No upload logic lives here: the doors call the upload core.

pub mod access;
pub mod body;
pub mod cors;
pub mod error;
mod handle;
pub mod headers;
mod list;
pub(crate) mod media;
mod media_events;
pub(crate) mod ops;
pub mod route;
pub mod tus;

pub use handle::handle;
