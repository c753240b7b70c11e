//! `tuskd-bench`: runs tuskd and a do-nothing HTTP sink as separate processes in the same run,
//! drives both with the same client load, and prints each figure beside the sink's.
//!
//! The sink answers every tus request the way a server that stores nothing would (it reads and
//! discards bodies), so the ratio tuskd/sink shows what tuskd's own work costs on this machine.
//! Each scenario runs against fresh processes, so the peak RSS (VmHWM in /proc) is its own.
//! With `--baseline PATH`, a second tuskd binary (an earlier build) runs beside both on some
//! rows, runs interleaved, so that a change can be shown within noise or better in one run.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use futures_util::stream;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

mod auth;
mod cluster;
mod hdr;
mod hooks;
mod images;
mod media;
mod observability;
mod s3;
mod stalled;
mod wake;

const MIB: u64 = 1 << 20;

#[derive(Parser)]
#[command(about = "Benchmark tuskd beside a do-nothing HTTP sink")]
struct Args {
    #[command(subcommand)]
    sink: Option<Sub>,
    /// The tuskd binary to measure (build it with --release for real figures).
    #[arg(long, default_value = "target/release/tuskd")]
    tuskd: PathBuf,
    /// tuskd's --fsync setting.
    #[arg(long, default_value = "off")]
    fsync: String,
    /// Small sizes, to check the benchmark itself works.
    #[arg(long)]
    quick: bool,
    /// Run only scenario N (1-5; 6-9 are the S3 rows, with --s3; 10 the hooks row, with --hooks;
    /// 11 the load row, with --stalled; 12 the media row, with --media; 13 the images row,
    /// with --images; 14 the observability row, with --observability; 15 the cluster rows, with
    /// --cluster; 16 the wake row, with --wake; 17 the auth rows, with --auth; 18 the HDR row,
    /// with --hdr).
    #[arg(long)]
    only: Option<usize>,
    /// Runs of each scenario against each server; the median is printed.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also measure 1 KiB uploads with a post-finish webhook beside the same without hooks.
    #[arg(long)]
    hooks: bool,
    /// Also measure HEAD latency, small uploads and memory with many stalled uploads held open,
    /// beside the same with none.
    #[arg(long)]
    stalled: bool,
    /// Also measure uploads to an S3-compatible store (moto's server on 127.0.0.1, started per
    /// run) beside a direct object_store multipart put of the same bytes.
    #[arg(long)]
    s3: bool,
    /// Also measure the media pipeline: a 1080p clip through the full HLS ladder, beside
    /// gst-launch-1.0 running the equivalent pipeline.
    #[arg(long)]
    media: bool,
    /// The media row's clip length, seconds (4 with --quick).
    #[arg(long, default_value_t = 30)]
    media_seconds: u32,
    /// Also measure the tone mapping of HDR video: the same clip as 10-bit HEVC in BT.709 and in
    /// HLG through the ladder, beside ffmpeg doing the same (row 18).
    #[arg(long)]
    hdr: bool,
    /// The HDR row's clip length, seconds (2 with --quick).
    #[arg(long, default_value_t = 20)]
    hdr_seconds: u32,
    /// Also measure what metrics and the access log cost: 1 KiB uploads and HEADs with each on
    /// beside off.
    #[arg(long)]
    observability: bool,
    /// Also measure image variants: 12-megapixel JPEGs to every width in JPEG and WebP, beside
    /// `vips thumbnail` making the same outputs.
    #[arg(long)]
    images: bool,
    /// Also measure several nodes: 1 KiB uploads, HEADs and concurrent uploads on one node with
    /// SQLite, one with Postgres, and three with Postgres behind HAProxy, each beside the sink
    /// (PostgreSQL 15 and HAProxy from Debian, started here).
    #[arg(long)]
    cluster: bool,
    /// Also measure cross-node media job start latency: uploads to a node that runs no media
    /// jobs, until a worker on a second node (same Postgres, shared store) starts each job.
    /// Its reference is --baseline (there is no sink analogue).
    #[arg(long)]
    wake: bool,
    /// Also measure authentication: 1 KiB uploads and HEADs with `--auth jwt` (an HS256 secret,
    /// an ES256 public key) beside `--auth none`, in the same run.
    #[arg(long)]
    auth: bool,
    /// A second tuskd binary (e.g. built from an earlier commit) measured beside --tuskd in the
    /// same run, runs interleaved, on the 1 GiB one-PATCH, 1 KiB uploads and HEADs rows (rows
    /// 1, 4, 5) and the wake row: each prints a second line with its figures and the ratio
    /// tuskd/baseline.
    #[arg(long)]
    baseline: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Sub {
    /// Run the do-nothing sink (used by the benchmark itself).
    Sink,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(Sub::Sink) = args.sink {
        return sink().await;
    }
    let sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    println!(
        "tuskd-bench: {} (--fsync {}) beside a do-nothing sink; {} cores; fresh processes per scenario",
        args.tuskd.display(),
        args.fsync,
        cores()
    );
    if let Some(baseline) = &args.baseline {
        println!(
            "baseline: {} beside it, runs interleaved (tuskd, baseline, sink); rows 1, 4 and 5 \
             add a line with the baseline in the second column and the ratio tuskd/baseline",
            baseline.display()
        );
    }
    println!(
        "{:<44} {:>9} {:>9} {:>6}  {:>10} {:>10}  {:>9} {:>9}",
        "scenario (median of runs)",
        "tuskd",
        "sink",
        "ratio",
        "tuskd RSS",
        "sink RSS",
        "tuskd CPU",
        "sink CPU"
    );
    for (i, scenario) in Scenario::all(&sizes).into_iter().enumerate() {
        if args.only.is_some_and(|only| only != i + 1) {
            continue;
        }
        // The servers of each run, in this order: tuskd, the baseline where the row compares
        // one, and the sink (None).
        let mut servers: Vec<(&str, Option<&Path>)> = vec![("tuskd", Some(args.tuskd.as_path()))];
        let baseline = args
            .baseline
            .as_deref()
            .filter(|_| scenario.beside_baseline());
        if let Some(b) = baseline {
            servers.push(("baseline tuskd", Some(b)));
        }
        servers.push(("sink", None));
        let mut figures: Vec<Vec<Figures>> = vec![Vec::new(); servers.len()];
        for _ in 0..args.runs {
            for (slot, &(name, binary)) in servers.iter().enumerate() {
                // A fresh data directory per run, removed after it: the page cache recycles its
                // pages as on a server in steady state, instead of growing into untouched memory.
                let data = tempfile::tempdir().expect("temp dir");
                let mut target = if let Some(binary) = binary {
                    Target::start(
                        name,
                        Command::new(binary)
                            .args([
                                "serve",
                                "--listen",
                                "127.0.0.1:0",
                                "--expire-after",
                                "0",
                                "--media",
                                "off",
                            ])
                            .args(["--fsync", &args.fsync, "--data-dir"])
                            .arg(data.path()),
                    )
                    .await
                } else {
                    Target::start(
                        name,
                        Command::new(std::env::current_exe().expect("own path")).arg("sink"),
                    )
                    .await
                };
                let rate = scenario.run(&target.driver).await;
                figures[slot].push(Figures {
                    rate,
                    rss_mib: target.peak_rss_mib(),
                    cpu_s: target.cpu_seconds(),
                });
                target.stop().await;
            }
        }
        let sink = figures.pop().expect("the sink's runs");
        print_row(&scenario.label(), &[figures[0].clone(), sink]);
        if baseline.is_some() {
            print_baseline_row(&figures[0], &figures[1]);
        }
    }
    if args.s3 {
        s3::run(&args, &sizes).await;
    }
    if args.hooks && args.only.is_none_or(|n| n == 10) {
        hooks::run(&args, &sizes).await;
    }
    if args.stalled && args.only.is_none_or(|n| n == 11) {
        stalled::run(&args, &sizes).await;
    }
    if args.media && args.only.is_none_or(|n| n == 12) {
        media::run(&args, args.quick).await;
    }
    if args.observability && args.only.is_none_or(|n| n == 14) {
        observability::run(&args, &sizes).await;
    }
    if args.images && args.only.is_none_or(|n| n == 13) {
        images::run(&args, args.quick).await;
    }
    if args.cluster && args.only.is_none_or(|n| n == 15) {
        cluster::run(&args, &sizes).await;
    }
    if args.wake && args.only.is_none_or(|n| n == 16) {
        wake::run(&args, args.quick).await;
    }
    if args.auth && args.only.is_none_or(|n| n == 17) {
        auth::run(&args, &sizes).await;
    }
    if args.hdr && args.only.is_none_or(|n| n == 18) {
        hdr::run(&args, args.quick).await;
    }
}

/// One table row: the medians of tuskd's runs and of the comparison's.
fn print_row(label: &str, figures: &[Vec<Figures>]) {
    let (a, b) = (Figures::median(&figures[0]), Figures::median(&figures[1]));
    // The direct put of the S3 rows has no server process of its own to measure.
    let or_dash = |v: f64, unit: &str| {
        if v.is_nan() {
            "-".to_owned()
        } else {
            format!("{v:.2}{unit}")
        }
    };
    println!(
        "{:<44} {:>9.1} {:>9.1} {:>6.2}  {:>6.1} MiB {:>10}  {:>7.2} s {:>9}",
        label,
        a.rate,
        b.rate,
        a.rate / b.rate,
        a.rss_mib,
        or_dash(b.rss_mib, " MiB"),
        a.cpu_s,
        or_dash(b.cpu_s, " s"),
    );
}

/// The line under a row that --baseline adds: tuskd again, the baseline binary in the second
/// column, the ratio tuskd/baseline, and the range of each one's runs (how noisy they were).
fn print_baseline_row(tuskd: &[Figures], baseline: &[Figures]) {
    let (a, b) = (Figures::median(tuskd), Figures::median(baseline));
    let range = |runs: &[Figures]| {
        let min = runs.iter().map(|f| f.rate).fold(f64::INFINITY, f64::min);
        let max = runs
            .iter()
            .map(|f| f.rate)
            .fold(f64::NEG_INFINITY, f64::max);
        format!("{min:.1}-{max:.1}")
    };
    let runs = if tuskd.len() > 1 {
        format!(
            "  runs: tuskd {}, baseline {}",
            range(tuskd),
            range(baseline)
        )
    } else {
        String::new()
    };
    println!(
        "{:<44} {:>9.1} {:>9.1} {:>6.2}  {:>6.1} MiB {:>6.1} MiB  {:>7.2} s {:>7.2} s{runs}",
        "  beside --baseline (2nd column)",
        a.rate,
        b.rate,
        a.rate / b.rate,
        a.rss_mib,
        b.rss_mib,
        a.cpu_s,
        b.cpu_s,
    );
}

/// What one run of a scenario measured on one server.
#[derive(Clone, Copy)]
struct Figures {
    rate: f64,
    rss_mib: f64,
    /// CPU time (user + system) the server process spent, startup included.
    cpu_s: f64,
}

impl Figures {
    /// The run with the median rate, with its own RSS and CPU figures.
    fn median(runs: &[Figures]) -> Figures {
        let mut sorted = runs.to_vec();
        sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        sorted[sorted.len() / 2]
    }
}

struct Sizes {
    big: u64,
    chunk: u64,
    many: usize,
    many_size: u64,
    small_count: usize,
    heads: usize,
    /// Uploads held stalled in the load row.
    stalled: usize,
}

impl Sizes {
    fn full() -> Sizes {
        Sizes {
            big: 1 << 30,
            chunk: 8 * MIB,
            many: 64,
            many_size: 16 * MIB,
            small_count: 5000,
            heads: 50_000,
            stalled: 2000,
        }
    }
    fn quick() -> Sizes {
        Sizes {
            big: 16 * MIB,
            chunk: 4 * MIB,
            many: 8,
            many_size: MIB,
            small_count: 200,
            heads: 1000,
            stalled: 100,
        }
    }
}

enum Scenario {
    OnePatch(u64),
    Chunked(u64, u64),
    Concurrent(usize, u64),
    Small(usize, usize),
    Heads(usize, usize),
}

impl Scenario {
    fn all(s: &Sizes) -> Vec<Scenario> {
        vec![
            Scenario::OnePatch(s.big),
            Scenario::Chunked(s.big, s.chunk),
            Scenario::Concurrent(s.many, s.many_size),
            Scenario::Small(s.small_count, 32),
            Scenario::Heads(s.heads, 32),
        ]
    }

    /// Whether --baseline is measured beside this row: the big upload in one PATCH, 1 KiB
    /// uploads and HEADs.
    fn beside_baseline(&self) -> bool {
        matches!(
            self,
            Scenario::OnePatch(_) | Scenario::Small(..) | Scenario::Heads(..)
        )
    }

    fn label(&self) -> String {
        match self {
            Scenario::OnePatch(n) => format!("{} upload, one PATCH (MB/s)", human(*n)),
            Scenario::Chunked(n, c) => {
                format!("{} upload, {} PATCHes (MB/s)", human(*n), human(*c))
            }
            Scenario::Concurrent(k, n) => {
                format!("{k} x {} concurrent (aggregate MB/s)", human(*n))
            }
            Scenario::Small(k, c) => format!("{k} x 1 KiB uploads, conc {c} (uploads/s)"),
            Scenario::Heads(k, c) => format!("{k} HEADs, conc {c} (HEAD/s)"),
        }
    }

    async fn run(&self, t: &Driver) -> f64 {
        match *self {
            Scenario::OnePatch(n) => {
                let url = t.create(n).await;
                let start = Instant::now();
                t.patch(&url, 0, n).await;
                mbps(n, start.elapsed())
            }
            Scenario::Chunked(n, c) => {
                let url = t.create(n).await;
                let start = Instant::now();
                let mut off = 0;
                while off < n {
                    let len = c.min(n - off);
                    t.patch(&url, off, len).await;
                    off += len;
                }
                mbps(n, start.elapsed())
            }
            Scenario::Concurrent(k, n) => {
                let start = Instant::now();
                let tasks: Vec<_> = (0..k)
                    .map(|_| {
                        let t = t.clone();
                        tokio::spawn(async move {
                            let url = t.create(n).await;
                            t.patch(&url, 0, n).await;
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("upload task");
                }
                mbps(n * k as u64, start.elapsed())
            }
            Scenario::Small(k, conc) => {
                let start = Instant::now();
                t.fan_out(k, conc, |t| async move {
                    let url = t.create(1024).await;
                    t.patch(&url, 0, 1024).await;
                })
                .await;
                k as f64 / start.elapsed().as_secs_f64()
            }
            Scenario::Heads(k, conc) => {
                let url = Arc::new(t.create(10).await);
                let start = Instant::now();
                t.fan_out(k, conc, move |t| {
                    let url = url.clone();
                    async move { t.head(&url).await }
                })
                .await;
                k as f64 / start.elapsed().as_secs_f64()
            }
        }
    }
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn human(n: u64) -> String {
    if n >= 1 << 30 {
        format!("{} GiB", n >> 30)
    } else if n >= MIB {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

type ReqBody = BoxBody<Bytes, Infallible>;

/// A server under test: its process and a client for it.
struct Target {
    child: Option<Child>,
    pid: u32,
    driver: Driver,
}

#[derive(Clone)]
struct Driver {
    endpoint: Arc<String>,
    client: Client<HttpConnector, ReqBody>,
    block: Bytes,
    /// `Authorization` for every request (the auth row).
    bearer: Option<http::HeaderValue>,
}

impl Target {
    async fn start(name: &str, cmd: &mut Command) -> Target {
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let pid = child.id().expect("pid");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let endpoint = loop {
            let line = lines
                .next_line()
                .await
                .expect("read log")
                .unwrap_or_else(|| panic!("{name} exited before listening"));
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split(' ').next().expect("url").to_owned();
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(http);
        let block = Bytes::from((0..MIB).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>());
        Target {
            child: Some(child),
            pid,
            driver: Driver {
                endpoint: Arc::new(endpoint),
                client,
                block,
                bearer: None,
            },
        }
    }

    /// Resident memory now (VmRSS).
    fn rss_mib(&self) -> f64 {
        self.status_kib("VmRSS:") / 1024.0
    }

    fn status_kib(&self, field: &str) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    }

    fn peak_rss_mib(&self) -> f64 {
        self.status_kib("VmHWM:") / 1024.0
    }

    /// CPU seconds (user + system) the process has used so far.
    fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(self.pid).unwrap_or(f64::NAN)
    }

    async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
}

impl Driver {
    /// Runs `f` `total` times, `conc` at a time.
    async fn fan_out<F, Fut>(&self, total: usize, conc: usize, f: F)
    where
        F: Fn(Driver) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let next = Arc::new(AtomicU64::new(0));
        let f = Arc::new(f);
        let workers: Vec<_> = (0..conc)
            .map(|_| {
                let (t, next, f) = (self.clone(), next.clone(), f.clone());
                tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < total as u64 {
                        f(t.clone()).await;
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.expect("worker");
        }
    }

    async fn send(&self, mut req: Request<ReqBody>) -> Response<Incoming> {
        if let Some(b) = &self.bearer {
            req.headers_mut()
                .insert(http::header::AUTHORIZATION, b.clone());
        }
        self.client.request(req).await.expect("request")
    }

    async fn create(&self, n: u64) -> String {
        let req = Request::post(self.endpoint.as_str())
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", n)
            .body(Empty::new().boxed())
            .expect("request");
        let resp = self.send(req).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "create");
        let loc = resp.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        let _ = resp.into_body().collect().await;
        if loc.starts_with("http") {
            loc
        } else {
            format!("{}{}", origin(&self.endpoint), loc)
        }
    }

    async fn patch(&self, url: &str, off: u64, n: u64) {
        let block = self.block.clone();
        let frames = (0..n.div_ceil(MIB)).map(move |i| {
            let len = MIB.min(n - i * MIB) as usize;
            Ok::<_, Infallible>(Frame::data(block.slice(..len)))
        });
        let req = Request::patch(url)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", off)
            .header("Content-Type", "application/offset+octet-stream")
            .header("Content-Length", n)
            .body(StreamBody::new(stream::iter(frames)).boxed())
            .expect("request");
        let resp = self.send(req).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "patch");
        let _ = resp.into_body().collect().await;
    }

    async fn head(&self, url: &str) {
        let req = Request::head(url)
            .header("Tus-Resumable", "1.0.0")
            .body(Empty::new().boxed())
            .expect("request");
        let resp = self.send(req).await;
        assert_eq!(resp.status(), StatusCode::OK, "head");
        let _ = resp.into_body().collect().await;
    }
}

fn origin(endpoint: &str) -> &str {
    let after = endpoint.find("://").map_or(0, |i| i + 3);
    &endpoint[..endpoint[after..]
        .find('/')
        .map_or(endpoint.len(), |i| i + after)]
}

/// The do-nothing sink: reads and discards bodies, answers like a tus server that stores nothing.
async fn sink() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    eprintln!(
        "listening on http://{}/files/ ",
        listener.local_addr().expect("addr")
    );
    let ids = Arc::new(AtomicU64::new(0));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ids = ids.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let ids = ids.clone();
                async move {
                    let method = req.method().clone();
                    let offset: u64 = req
                        .headers()
                        .get("upload-offset")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = req.into_body();
                    let mut read = 0u64;
                    while let Some(Ok(frame)) = body.frame().await {
                        if let Some(d) = frame.data_ref() {
                            read += d.len() as u64;
                        }
                    }
                    let b = Response::builder().header("Tus-Resumable", "1.0.0");
                    let resp = match method {
                        http::Method::POST => b
                            .status(201)
                            .header(
                                "Location",
                                format!("/files/{}", ids.fetch_add(1, Ordering::Relaxed)),
                            )
                            .header("Upload-Offset", 0),
                        http::Method::PATCH => b.status(204).header("Upload-Offset", offset + read),
                        _ => b
                            .status(200)
                            .header("Upload-Offset", 0)
                            .header("Upload-Length", 10)
                            .header("Cache-Control", "no-store"),
                    };
                    Ok::<_, Infallible>(resp.body(Empty::<Bytes>::new()).expect("response"))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// CPU seconds (user + system) process `pid` has used so far; None once it is gone.
fn cpu_seconds_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at ") ".
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of /proc/PID/stat, i.e. 11 and 12 after the name.
    Some((ticks(11)? + ticks(12)?) / 100.0)
}
