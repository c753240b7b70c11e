//! The wake row: cross-node media job start latency. Node A takes the uploads and runs no media
//! jobs (`--media-workers 0`); node B runs one media worker; both share one Postgres database
//! and one store directory (`--store-shared`). Each of N small PNGs is uploaded to A on its own,
//! and the time from the answer to the PATCH that finished it to the moment B's worker starts
//! its job is measured: A's media status is polled every 2 ms and the first answer whose status
//! is no longer RECEIVED ends the wait. Each upload waits until the previous job has ended and
//! then a further 0.1–2.1 s (a fixed spread, the same for every binary), so B's worker is idle
//! and the uploads land at every point of an idle poller's cycle. The reference is the
//! --baseline binary, run the same way in the same invocation (there is no sink analogue).
//! PostgreSQL 15 is started here, on 127.0.0.1.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use testkit::postgres::Postgres;
use tokio::process::Command;

use super::media::patch;
use super::{Args, Driver, Target};

/// The longest wait for a job to start, and then for it to end.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two polls of the media status while waiting for the job to start.
const POLL: Duration = Duration::from_millis(2);
/// The least and the span of the idle time before each upload.
const GAP_MIN_MS: f64 = 100.0;
const GAP_SPAN_MS: f64 = 2000.0;

/// What one binary measured over all its runs.
#[derive(Default)]
struct Measured {
    /// Job start latencies, in ms.
    starts: Vec<f64>,
    /// Round trips of the status polls, in ms.
    polls: Vec<f64>,
    /// Jobs that ended other than READY, by final status.
    not_ready: Vec<String>,
}

pub async fn run(args: &Args, quick: bool) {
    let jobs = if quick { 5 } else { 20 };
    let pg = Postgres::start();
    let png = Bytes::from(testkit::pictures::alpha_png(64, 48));
    println!();
    println!(
        "Wake: cross-node media job start. Node A (--media-workers 0) takes {jobs} PNG uploads a \
         run, one at a time, each 0.1-2.1 s after the previous job ended; node B (--media-workers \
         1) runs the jobs; one Postgres, shared store. Latency: from the answer to the PATCH that \
         finished the upload to the first poll of A's media status (every 2 ms) that is no longer \
         RECEIVED ({} runs, all jobs pooled)",
        args.runs
    );
    let mut binaries = vec![("tuskd", args.tuskd.as_path())];
    if let Some(b) = &args.baseline {
        binaries.push(("baseline", b.as_path()));
    }
    let mut measured: Vec<Measured> = binaries.iter().map(|_| Measured::default()).collect();
    for _ in 0..args.runs {
        // Interleaved: tuskd, baseline, tuskd, baseline ...
        for (i, &(_, binary)) in binaries.iter().enumerate() {
            one_run(args, binary, &pg, &png, jobs, &mut measured[i]).await;
        }
    }
    for m in &mut measured {
        m.starts.sort_by(f64::total_cmp);
        m.polls.sort_by(f64::total_cmp);
    }
    let figures = [
        ("job start latency, median (ms)", 0.5),
        ("job start latency, p90 (ms)", 0.9),
        ("job start latency, max (ms)", 1.0),
    ];
    if let [ours, theirs] = &measured[..] {
        println!(
            "{:<44} {:>9} {:>9} {:>6}",
            "figure", "tuskd", "baseline", "ratio"
        );
        for (label, q) in figures {
            let (a, b) = (quantile(&ours.starts, q), quantile(&theirs.starts, q));
            println!("{label:<44} {a:>9.1} {b:>9.1} {:>6.3}", a / b);
        }
        println!(
            "  reference: the --baseline binary ({}) on both nodes, run the same way in this \
             invocation; ratio = tuskd/baseline, lower is better",
            binaries[1].1.display()
        );
    } else {
        println!("{:<44} {:>9}", "figure", "tuskd");
        for (label, q) in figures {
            println!("{label:<44} {:>9.1}", quantile(&measured[0].starts, q));
        }
        println!(
            "  no reference: this row has no sink analogue; give --baseline PATH to measure \
             another tuskd binary beside it"
        );
    }
    for ((name, _), m) in binaries.iter().zip(&measured) {
        println!(
            "  {name}: {} jobs; status poll round trip median {:.2} ms (the resolution is that \
             plus the 2 ms between polls){}",
            m.starts.len(),
            quantile(&m.polls, 0.5),
            if m.not_ready.is_empty() {
                String::new()
            } else {
                format!("; jobs that did not end READY: {:?}", m.not_ready)
            }
        );
    }
}

/// The nearest-rank quantile `q` of `sorted` (NaN when empty).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Idle time before upload `i`: spread evenly over the gap's span (golden-ratio steps), the
/// same sequence for every binary.
fn gap(i: usize) -> Duration {
    let frac = (i as f64 * 0.618_033_988_75).fract();
    Duration::from_secs_f64((GAP_MIN_MS + frac * GAP_SPAN_MS) / 1000.0)
}

/// One run: a fresh database and fresh nodes A and B of `binary`; one warm-up job (not
/// counted), then `jobs` measured ones.
async fn one_run(
    args: &Args,
    binary: &Path,
    pg: &Postgres,
    png: &Bytes,
    jobs: usize,
    m: &mut Measured,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let meta = pg.database();
    let node = |name: &str, workers: &str| {
        let mut cmd = Command::new(binary);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--expire-after", "0"])
            .args(["--media", "on", "--media-workers", workers])
            .args(["--fsync", &args.fsync, "--meta", &meta, "--store-shared"])
            .arg("--store")
            .arg(dir.path().join("store"))
            .arg("--data-dir")
            .arg(dir.path().join(name));
        cmd
    };
    // A first, so that it creates the schema before B starts.
    let mut a = Target::start("tuskd node A", &mut node("a", "0")).await;
    let mut b = Target::start("tuskd node B", &mut node("b", "1")).await;
    for i in 0..=jobs {
        tokio::time::sleep(gap(i)).await;
        let (status, start_ms, polls) = one_job(&a.driver, png).await;
        let end = wait_ended(&a.driver, &status).await;
        if i == 0 {
            // The warm-up: the first job also pays for connections and the pipeline's start.
            continue;
        }
        m.starts.push(start_ms);
        m.polls.extend(polls);
        if end != "READY" {
            m.not_ready.push(end);
        }
    }
    b.stop().await;
    a.stop().await;
}

/// Uploads `png` to node A and waits until its job has started; returns the URL of its media
/// status, the latency (ms) and the round trips of the status polls (ms).
async fn one_job(d: &Driver, png: &Bytes) -> (String, f64, Vec<f64>) {
    let url = d.create(png.len() as u64).await;
    patch(d, &url, png.clone()).await;
    let finished = Instant::now();
    let status = status_url(d, &url);
    let mut polls = Vec::new();
    loop {
        let sent = Instant::now();
        let now = media_status(d, &status).await;
        let seen = Instant::now();
        polls.push((seen - sent).as_secs_f64() * 1000.0);
        // UPLOADING would be a status read before the upload's completion was committed.
        if !matches!(now.as_str(), "RECEIVED" | "UPLOADING") {
            return (status, (seen - finished).as_secs_f64() * 1000.0, polls);
        }
        assert!(
            finished.elapsed() < JOB_TIMEOUT,
            "node B did not start the media job of {url} within {JOB_TIMEOUT:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// `{origin}/media/{id}` for the upload at `url`.
fn status_url(d: &Driver, url: &str) -> String {
    let id = url.trim_end_matches('/').rsplit('/').next().expect("an id");
    format!("{}/media/{id}", super::origin(&d.endpoint))
}

/// Waits until the job of the status document at `status` has ended; returns its final status.
async fn wait_ended(d: &Driver, status: &str) -> String {
    let start = Instant::now();
    loop {
        let now = media_status(d, status).await;
        if matches!(now.as_str(), "READY" | "REJECTED" | "FAILED") {
            return now;
        }
        assert!(
            start.elapsed() < JOB_TIMEOUT,
            "the media job of {status} did not end within {JOB_TIMEOUT:?} (last: {now})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The "status" field of the media status document at `url`.
async fn media_status(d: &Driver, url: &str) -> String {
    let req = Request::get(url)
        .body(Empty::new().boxed())
        .expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(10), d.client.request(req))
        .await
        .expect("the media status answers within 10 s")
        .expect("media status");
    let code = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert_eq!(code, StatusCode::OK, "media status of {url}: {text}");
    // The document's own "status" (not one inside "probe"): the first that is a media status.
    text.split("\"status\":")
        .skip(1)
        .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split_once('"'))
        .map(|(status, _)| status)
        .find(|status| STATUSES.contains(status))
        .unwrap_or_else(|| panic!("a status in the media status document: {text}"))
        .to_owned()
}

const STATUSES: [&str; 8] = [
    "UPLOADING",
    "RECEIVED",
    "VALIDATING",
    "SCANNING",
    "PROCESSING",
    "READY",
    "REJECTED",
    "FAILED",
];
