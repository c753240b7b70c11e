//! `ByteSource`: the data of an append as the core reads it, whatever carries it (a tus PATCH or
//! POST body today). The door that owns the connection applies its read timeout; the core stops
//! reading when the upload's holder is asked to let go.

use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderMap;

use super::UploadError;

/// One step of reading the data.
#[derive(Debug)]
pub enum Read {
    Data(Bytes),
    /// The data ended; trailers, if the client sent any (a checksum may come in one).
    End(Option<HeaderMap>),
    /// No byte arrived within the door's read timeout.
    TimedOut,
    /// The connection failed or the client aborted mid-body.
    Lost,
    /// The door stopped reading (the server is shutting down).
    Cancelled,
}

/// The data of one append. `next` must be cancel-safe: the core drops it inside a `select!`
/// when the upload's holder is asked to stop, and calls it again for a checkpoint.
#[async_trait]
pub trait ByteSource: std::fmt::Debug + Send {
    /// The exact number of bytes the client declared, if it did.
    fn exact_len(&self) -> Option<u64>;

    /// Whether the data is known to be empty without reading it.
    fn is_end(&self) -> bool;

    /// The next piece of the data. After `End`, `Lost` or `TimedOut` it keeps returning
    /// `End(None)`.
    async fn next(&mut self) -> Read;

    /// Whether the data is empty: an undeclared length is read until its first piece.
    async fn is_empty(&mut self) -> Result<bool, UploadError> {
        match self.exact_len() {
            _ if self.is_end() => return Ok(true),
            Some(n) => return Ok(n == 0),
            None => {}
        }
        match self.next().await {
            Read::End(_) => Ok(true),
            Read::Data(_) => Ok(false),
            Read::TimedOut => Err(UploadError::ReadTimeout),
            Read::Lost => Err(UploadError::ConnectionLost),
            Read::Cancelled => Err(UploadError::ShuttingDown),
        }
    }
}

/// The data of an append and the check a door plugs in for it.
#[derive(Debug)]
pub struct Data {
    pub source: Box<dyn ByteSource>,
    pub verifier: Option<Box<dyn super::checksum::Verifier>>,
}
