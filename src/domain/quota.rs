//! Quotas per owner: what one owner may hold and start, checked by the metadata store in the
//! same transaction that records a new upload (so two nodes sharing Postgres cannot both let
//! the last upload in), and what a refusal says.

use std::time::Duration;

/// An owner's limits (`--quota-*`); `None`: no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    /// Bytes held at once: the lengths of the owner's active uploads (an unfinished upload
    /// counts its declared length; one whose length is deferred, what it holds so far, until it
    /// declares its length).
    pub max_bytes: Option<u64>,
    /// Unfinished uploads at once.
    pub max_unfinished: Option<u64>,
    /// Uploads created per minute (fixed one-minute windows).
    pub max_per_minute: Option<u64>,
}

impl Quota {
    pub fn is_unlimited(&self) -> bool {
        self.max_bytes.is_none() && self.max_unfinished.is_none() && self.max_per_minute.is_none()
    }
}

/// Which limit a refused change would have passed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuotaExceeded {
    #[error("the owner's uploads would hold more than {limit} bytes")]
    Bytes { limit: u64 },
    #[error("the owner has {limit} unfinished uploads already")]
    Unfinished { limit: u64 },
    #[error("the owner created {limit} uploads in the last minute")]
    Rate {
        limit: u64,
        /// When the next upload may be created.
        retry_after: Duration,
    },
}
