//! The HTTP edge: `handle` (every request's way in and out), routing, typed headers, CORS and
//! bodies. No upload logic lives here.

pub mod access;
pub mod body;
pub mod cors;
mod handle;
pub mod headers;
pub mod route;

pub use handle::handle;

/// The client's address, put on every request by the server.
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub std::net::SocketAddr);
