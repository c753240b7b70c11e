//! Reading an upload's original for a run: its first bytes (type detection) and, when it is
//! not on local disk, a copy in the run's scratch directory, where the decoders can seek.

use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;

use super::steps::StepError;
use crate::domain::upload::UploadId;
use crate::media::Context;

pub async fn read_head(cx: &Context, id: &UploadId, n: u64) -> Result<Vec<u8>, StepError> {
    let mut out = Vec::with_capacity(n as usize);
    if n == 0 {
        return Ok(out);
    }
    let mut stream = cx.storage.read(id, 0..n).await?;
    while let Some(chunk) = stream.try_next().await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Copies an object-stored original to local disk, where the decoders can seek in it.
pub async fn download(
    cx: &Context,
    id: &UploadId,
    len: u64,
    to: &Path,
) -> Result<PathBuf, StepError> {
    let mut file = tokio::fs::File::create(to).await?;
    let mut stream = cx.storage.read(id, 0..len).await?;
    while let Some(chunk) = stream.try_next().await? {
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(to.to_owned())
}
