//! Leases: one writer per upload across nodes, as a shared metadata store keeps them
//! (`meta::postgres::locks`); `lock::cluster` is the mechanism built on them.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::domain::upload::UploadId;

/// The lease store failed; its own error is the source.
#[derive(Debug, thiserror::Error)]
#[error("the lease store failed")]
pub struct LeaseError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl LeaseError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> LeaseError {
        LeaseError(Box::new(e))
    }
}

/// The locks across nodes, as a shared metadata store keeps them.
#[async_trait]
pub trait Cluster: std::fmt::Debug + Send + Sync + 'static {
    /// Takes the upload's lease for this node unless another node holds a live one. Returns
    /// the take's token, for `release`.
    async fn take(&self, id: &UploadId) -> Result<Option<i64>, LeaseError>;

    /// Asks the node that holds the upload's lease to let go.
    async fn ask_release(&self, id: &UploadId) -> Result<(), LeaseError>;

    /// Gives back the lease of the take `token` (a later take of the same upload keeps its).
    async fn release(&self, id: &UploadId, token: i64) -> Result<(), LeaseError>;

    /// Gives back every lease this node holds (at shutdown, so that other nodes need not wait
    /// for them to run out).
    async fn release_all(&self) -> Result<(), LeaseError>;

    /// Extends this node's leases of `held`; returns those it no longer holds.
    async fn renew(&self, held: &[UploadId]) -> Result<Vec<UploadId>, LeaseError>;

    /// Uploads other nodes ask this node to let go of.
    fn release_requests(&self) -> broadcast::Receiver<UploadId>;

    /// Uploads whose lease was just given back, by any node.
    fn released(&self) -> broadcast::Receiver<UploadId>;

    /// How long a lease lasts without renewal: the most a node that died keeps an upload.
    fn lease(&self) -> Duration;
}
