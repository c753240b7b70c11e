//! The load row: tuskd holding many stalled uploads (phones that started a PATCH, sent 1 KiB of
//! a 1 MiB body and went quiet), beside the same tuskd with none, in the same run: HEAD latency
//! (p50, p99), the rate of small uploads, and the server's memory under that load.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::process::Command;

use super::{Args, Driver, Scenario, Sizes, Target};

const HEADS: usize = 2000;
const HEAD_CONCURRENCY: usize = 8;

struct Measured {
    p50_ms: f64,
    p99_ms: f64,
    uploads_per_s: f64,
    rss_mib: f64,
}

pub async fn run(args: &Args, sizes: &Sizes) {
    let stalled = sizes.stalled;
    println!();
    println!(
        "Load: tuskd holding {stalled} stalled uploads beside tuskd holding none (median of {} runs)",
        args.runs
    );
    let (mut loaded, mut idle) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        loaded.push(measure(args, sizes, stalled).await);
        idle.push(measure(args, sizes, 0).await);
    }
    let (a, b) = (median(loaded), median(idle));
    println!(
        "{:<44} {:>9} {:>9} {:>6}",
        "figure",
        format!("{stalled} stalled"),
        "none",
        "ratio"
    );
    let row = |label: &str, x: f64, y: f64| {
        println!("{label:<44} {x:>9.2} {y:>9.2} {:>6.2}", x / y);
    };
    row("HEAD latency p50 (ms)", a.p50_ms, b.p50_ms);
    row("HEAD latency p99 (ms)", a.p99_ms, b.p99_ms);
    row(
        &format!(
            "{} x 1 KiB uploads, conc 32 (uploads/s)",
            sizes.small_count / 4
        ),
        a.uploads_per_s,
        b.uploads_per_s,
    );
    row("tuskd RSS under that load (MiB)", a.rss_mib, b.rss_mib);
}

fn median(mut runs: Vec<Measured>) -> Measured {
    runs.sort_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms));
    runs.swap_remove(runs.len() / 2)
}

async fn measure(args: &Args, sizes: &Sizes, stalled: usize) -> Measured {
    let data = tempfile::tempdir().expect("temp dir");
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
    .args([
        "--read-timeout",
        "10m",
        "--fsync",
        &args.fsync,
        "--data-dir",
    ])
    .arg(data.path());
    let mut target = Target::start("tuskd", &mut cmd).await;
    let t = &target.driver;
    let mut held = Vec::with_capacity(stalled);
    for _ in 0..stalled {
        held.push(stall(t).await);
    }
    let url = t.create(10).await;
    let mut latencies = Vec::with_capacity(HEADS);
    let per_worker = HEADS / HEAD_CONCURRENCY;
    let workers: Vec<_> = (0..HEAD_CONCURRENCY)
        .map(|_| {
            let (t, url) = (t.clone(), url.clone());
            tokio::spawn(async move {
                let mut mine = Vec::with_capacity(per_worker);
                for _ in 0..per_worker {
                    let start = Instant::now();
                    t.head(&url).await;
                    mine.push(start.elapsed());
                }
                mine
            })
        })
        .collect();
    for w in workers {
        latencies.extend(w.await.expect("HEAD worker"));
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let uploads_per_s = Scenario::Small(sizes.small_count / 4, 32).run(t).await;
    let rss_mib = target.rss_mib();
    drop(held);
    target.stop().await;
    Measured {
        p50_ms: ms(at(0.50)),
        p99_ms: ms(at(0.99)),
        uploads_per_s,
        rss_mib,
    }
}

/// An upload whose client sent 1 KiB of a 1 MiB PATCH body and went quiet: its connection.
async fn stall(t: &Driver) -> TcpStream {
    let url = t.create(1 << 20).await;
    let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let (host, path) = after_scheme.split_once('/').expect("an upload URL");
    let mut conn = TcpStream::connect(host).await.expect("connect");
    let head = format!(
        "PATCH /{path} HTTP/1.1\r\nHost: {host}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
        1 << 20
    );
    conn.write_all(head.as_bytes()).await.expect("send");
    conn.write_all(&[7u8; 1024]).await.expect("send");
    conn
}
