//! The hooks row: 1 KiB uploads with a post-finish webhook (a receiver in this process that
//! answers at once), beside the same tuskd and load without hooks, in the same run. Also how
//! long after the last upload the last event was delivered.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::process::Command;

use super::{Args, Figures, Scenario, Sizes, Target, print_row};

pub async fn run(args: &Args, sizes: &Sizes) {
    let (count, conc) = (sizes.small_count, 32);
    let scenario = Scenario::Small(count, conc);
    println!();
    println!("Hooks: tuskd with a post-finish webhook beside tuskd without hooks");
    let mut figures: Vec<Vec<Figures>> = vec![Vec::new(), Vec::new()];
    let mut drains = Vec::new();
    for _ in 0..args.runs {
        let (hooked, drain) = with_webhook(args, &scenario, count).await;
        figures[0].push(hooked);
        drains.push(drain);
        figures[1].push(plain(args, &scenario).await);
    }
    print_row(
        &format!("{count} x 1 KiB + post-finish webhook (uploads/s)"),
        &figures,
    );
    drains.sort();
    println!(
        "  all {count} post-finish events delivered {:.2} s after the last upload (median)",
        drains[drains.len() / 2].as_secs_f64()
    );
}

/// tuskd as the rows beside the main table start it (media off).
pub fn tuskd(args: &Args, data: &std::path::Path) -> Command {
    let mut cmd = Command::new(&args.tuskd);
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--expire-after",
        "0",
        "--media",
        "off",
    ])
    .args(["--fsync", &args.fsync, "--data-dir"])
    .arg(data);
    cmd
}

async fn plain(args: &Args, scenario: &Scenario) -> Figures {
    with_args(args, scenario, &[]).await
}

/// One run of `scenario` against a fresh tuskd started with `extra` flags.
pub async fn with_args(args: &Args, scenario: &Scenario, extra: &[&str]) -> Figures {
    let data = tempfile::tempdir().expect("temp dir");
    let mut cmd = tuskd(args, data.path());
    cmd.args(extra);
    let mut target = Target::start("tuskd", &mut cmd).await;
    let rate = scenario.run(&target.driver).await;
    let f = Figures {
        rate,
        rss_mib: target.peak_rss_mib(),
        cpu_s: target.cpu_seconds(),
    };
    target.stop().await;
    f
}

async fn with_webhook(args: &Args, scenario: &Scenario, count: usize) -> (Figures, Duration) {
    let (url, delivered) = receiver().await;
    let data = tempfile::tempdir().expect("temp dir");
    let mut cmd = tuskd(args, data.path());
    cmd.args([
        "--hooks-http",
        &url,
        "--hooks-enabled-events",
        "post-finish",
    ]);
    let mut target = Target::start("tuskd", &mut cmd).await;
    let rate = scenario.run(&target.driver).await;
    let done = Instant::now();
    let deadline = done + Duration::from_secs(300);
    while delivered.load(Ordering::Relaxed) < count as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        delivered.load(Ordering::Relaxed),
        count as u64,
        "every post-finish event is delivered"
    );
    let drain = done.elapsed();
    let f = Figures {
        rate,
        rss_mib: target.peak_rss_mib(),
        cpu_s: target.cpu_seconds(),
    };
    target.stop().await;
    (f, drain)
}

/// A webhook receiver that counts post-finish events and accepts each at once.
async fn receiver() -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let delivered = Arc::new(AtomicU64::new(0));
    let count = delivered.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let count = count.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let count = count.clone();
                    async move {
                        let _ = req.into_body().collect().await;
                        count.fetch_add(1, Ordering::Relaxed);
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, delivered)
}
