//! The HTTP edge: routing, typed headers, CORS and bodies. No upload logic lives here.

pub mod body;
pub mod cors;
pub mod headers;
pub mod route;
