//! `tuskd worker`: media jobs only, with no HTTP listener, for transcoding hosts beside the
//! ingest nodes. It shares their metadata store (Postgres) and object store, claims jobs with
//! leases as every node's workers do, and stops on SIGINT/SIGTERM after letting running jobs
//! record what they can (a job cut short is run again once its lease runs out).

use std::future::Future;

use crate::app::App;

/// Why the settings cannot make a worker.
pub fn check(config: &crate::Config) -> Result<(), String> {
    match &config.media {
        None => return Err("tuskd worker runs media jobs: it needs --media on".into()),
        Some(m) if m.workers == 0 => {
            return Err("tuskd worker needs --media-workers of at least 1".into());
        }
        Some(_) => {}
    }
    if !config.meta.is_shared() {
        return Err(
            "tuskd worker takes its jobs from the servers' shared metadata store: pass \
             --meta postgres://… (with SQLite, `tuskd serve` runs the media jobs itself)"
                .into(),
        );
    }
    Ok(())
}

/// Runs the media workers until `shutdown` resolves, then gives them the shutdown timeout.
pub async fn run(app: App, shutdown: impl Future<Output = ()>) {
    let workers = tokio::spawn(crate::media::worker::run_if_on(app.media()));
    tokio::spawn(crate::app::relay_work(app.clone()));
    tokio::spawn(
        app.uploads
            .space
            .clone()
            .watch(app.uploads.shutdown.clone(), app.uploads.media_wake.clone()),
    );
    shutdown.await;
    tracing::info!("shutting down: stopping media jobs");
    app.uploads.shutdown.cancel();
    if tokio::time::timeout(app.config.shutdown_timeout, workers)
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout reached with media jobs still running");
    }
}
