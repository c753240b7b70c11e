//! The listener loop: HTTP/1.1 and h2c on one port (or HTTPS with HTTP/2 and HTTP/1.1 by ALPN,
//! `tls`), a bound on open connections, header read timeout, graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

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
    let builder = connection_builder(app.config.read_timeout);
    let tls = crate::tls::acceptor(app.config.tls.as_ref()).map_err(io::Error::other)?;
    // Before the first request: a create in flight would look like an orphan.
    if let Err(e) = crate::upload::recover::run(&app.uploads).await {
        tracing::warn!("start-up repair failed: {e}");
    }
    let graceful = GracefulShutdown::new();
    let background = [
        tokio::spawn(crate::upload::expire::run(app.uploads.clone())),
        tokio::spawn(
            crate::hooks::dispatch::Dispatcher {
                meta: app.uploads.meta.clone(),
                hooks: app.uploads.hooks.clone(),
                locks: app.uploads.locks.clone(),
                shutdown: app.uploads.shutdown.clone(),
            }
            .run(),
        ),
        tokio::spawn(crate::upload::recover::run_periodically(
            app.uploads.clone(),
        )),
        tokio::spawn(crate::media::worker::run_if_on(app.media())),
        tokio::spawn(crate::app::relay_work(app.clone())),
        tokio::spawn(
            app.uploads
                .space
                .clone()
                .watch(app.uploads.shutdown.clone(), app.uploads.media_wake.clone()),
        ),
    ];
    let slots = Arc::new(Semaphore::new(app.config.max_connections));
    let metrics_listener = spawn_metrics_listener(&app).await?;
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refuse(stream);
            continue;
        };
        serve_connection(stream, peer, slot, &app, &builder, &graceful, tls.clone());
    }

    drop(listener);
    tracing::info!("shutting down: saving running uploads");
    app.uploads.shutdown.cancel();
    // Connections and background loops together get the shutdown timeout, no more.
    let everything = async {
        graceful.shutdown().await;
        for task in background {
            let _ = task.await;
        }
    };
    match tokio::time::timeout(app.config.shutdown_timeout, everything).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!("shutdown timeout reached with connections still open"),
    }
    app.uploads.locks.give_back().await;
    if let Some(m) = metrics_listener {
        m.abort();
    }
    Ok(())
}

/// HTTP/1.1 and h2c on one port, HTTP/1.1 with the header read timeout and the bounded read
/// buffer.
fn connection_builder(read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .max_buf_size(READ_BUFFER_MAX);
    builder.http2().timer(TokioTimer::new());
    builder
}

/// Serves one accepted connection in a task of its own, which holds `slot` until it ends:
/// through TLS first when `tls` is set (HTTP/2 or HTTP/1.1 as ALPN and the preface say).
fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    app: &App,
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let _ = stream.set_nodelay(true);
    let (first_bytes, stop) = (app.config.read_timeout, app.uploads.shutdown.clone());
    let app = app.clone();
    let metrics = app.metrics.clone();
    let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(crate::hooks::RemoteAddr(peer));
        let app = app.clone();
        async move { Ok::<_, Infallible>(crate::http::handle(app, req).await) }
    });
    let (builder, watcher) = (builder.clone(), graceful.watcher());
    tokio::spawn(async move {
        // hyper's header timeout starts with the first byte: a client that connects and
        // sends nothing would hold its slot for ever.
        let mut first = [0u8; 1];
        tokio::select! {
            ready = tokio::time::timeout(first_bytes, stream.peek(&mut first)) => {
                if !matches!(ready, Ok(Ok(1..))) {
                    tracing::debug!(%peer, "connection closed: nothing sent within the read timeout");
                    return;
                }
            }
            () = stop.cancelled() => return,
        }
        let _open = crate::metrics::InFlight::new(&metrics.connections_open);
        let result = match tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                watcher.watch(conn.into_owned()).await
            }
            Some(acceptor) => {
                // The handshake gets the read timeout too.
                let stream = match tokio::time::timeout(first_bytes, acceptor.accept(stream)).await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                watcher.watch(conn.into_owned()).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, "connection ended: {e}");
        }
        drop(slot);
    });
}

/// Binds and serves the listener of `--metrics-listen`, if metrics have one of their own.
async fn spawn_metrics_listener(app: &App) -> io::Result<Option<JoinHandle<()>>> {
    let crate::config::MetricsAt::Own(addr) = &app.config.metrics else {
        return Ok(None);
    };
    let l = TcpListener::bind(addr).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} for metrics: {e}"),
        )
    })?;
    tracing::info!("metrics on http://{}/metrics", l.local_addr()?);
    Ok(Some(tokio::spawn(metrics_only(l, app.clone()))))
}

/// The metrics listener of `--metrics-listen`: `GET /metrics` and nothing else.
async fn metrics_only(listener: TcpListener, app: App) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let app = app.clone();
        let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            async move {
                let resp = if req.uri().path() == "/metrics" && req.method() == hyper::Method::GET {
                    crate::http::ops::metrics(&app).await
                } else {
                    let mut r = hyper::Response::new(crate::http::body::full("not found\n"));
                    *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                    r
                };
                Ok::<_, Infallible>(resp)
            }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Answers a connection over `--max-connections` at once, without reading its request: 503
/// with Retry-After, which tus clients retry, then closed. The answer is written in a task of
/// its own that gives up after a second, so a flood of refused connections costs no waiting.
fn refuse(stream: TcpStream) {
    const BODY: &str = "ERR_TOO_MANY_CONNECTIONS: the server has too many open connections\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n\
         Tus-Resumable: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\r\n{BODY}",
        crate::http::headers::VERSION,
        BODY.len()
    );
    tracing::debug!("connection refused: --max-connections reached");
    tokio::spawn(async move {
        let mut stream = stream;
        let write = async {
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
    });
}
