//! The listener loop: HTTP/1.1 and h2c on one port, header read timeout, graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::app::App;

/// The most a connection buffers from the socket. Body frames handed to storage pin the buffer
/// they were read into until written, so this bounds memory per upload: with hyper's default
/// (about 400 KiB) 64 concurrent uploads peaked at 60-74 MiB RSS in the benchmark, with 256 KiB at
/// 39-45 MiB, for a single-upload throughput within the benchmark's noise.
const READ_BUFFER_MAX: usize = 256 * 1024;

/// Serves `listener` until `shutdown` resolves, then stops accepting, asks running requests to
/// save what they have (PATCHes commit and answer), and waits up to the shutdown timeout.
pub async fn run(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.read_timeout)
        .max_buf_size(READ_BUFFER_MAX);
    builder.http2().timer(TokioTimer::new());
    // Before the first request: a create in flight would look like an orphan.
    if let Err(e) = crate::recover::run(&app).await {
        tracing::warn!("start-up repair failed: {e}");
    }
    let graceful = GracefulShutdown::new();
    let sweeper = tokio::spawn(crate::expire::run(app.clone()));
    let dispatcher = tokio::spawn(crate::hooks::dispatch::run(app.clone()));
    tokio::pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: log, breathe, go on.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(crate::http::RemoteAddr(peer));
            let app = app.clone();
            async move {
                let method = req.method().clone();
                let path = req.uri().path().to_owned();
                let resp = crate::tus::handle(app, req).await;
                tracing::debug!(%peer, %method, %path, status = resp.status().as_u16(), "request");
                Ok::<_, Infallible>(resp)
            }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }

    drop(listener);
    tracing::info!("shutting down: saving running uploads");
    app.shutdown.cancel();
    let _ = sweeper.await;
    let _ = dispatcher.await;
    match tokio::time::timeout(app.config.shutdown_timeout, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!("shutdown timeout reached with connections still open"),
    }
    Ok(())
}
