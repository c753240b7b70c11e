//! Start-up repair for crashes between two steps of a state change, run before the first
//! request: storage of uploads that completed is finished, storage of uploads the metadata
//! store no longer knows (terminated before their objects were deleted) is deleted, and hook
//! events held for work a request did not get to finish are let go.

use crate::app::App;
use crate::error::Error;

/// Returns how many uploads it finished and deleted.
pub async fn run(app: &App) -> Result<(usize, usize), Error> {
    let (mut finished, mut deleted) = (0, 0);
    for id in app.storage.unfinished().await? {
        match app.meta.get(&id).await? {
            Some(u) if u.is_complete() => {
                app.storage.finish(&id, u.offset).await?;
                finished += 1;
            }
            Some(_) => {}
            None => {
                app.storage.delete(&id).await?;
                deleted += 1;
            }
        }
    }
    // After the storage repair, so that post-finish goes out with the object finished.
    app.meta.release_events(None).await?;
    if finished + deleted > 0 {
        tracing::info!(
            finished,
            deleted,
            "repaired storage left by an interrupted run"
        );
    }
    Ok((finished, deleted))
}
