//! The HTTP edge: routing, typed headers, CORS and bodies. No upload logic lives here.

pub mod body;
pub mod cors;
pub mod headers;
pub mod route;

/// The client's address, put on every request by the server.
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub std::net::SocketAddr);
