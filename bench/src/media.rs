//! The media row: a 1080p clip with audio (30 s; 4 s with --quick) through tuskd's full ladder
//! (360/720/1080, poster, thumbnails), beside gst-launch-1.0 running the equivalent pipeline
//! (one decode, three x264 veryfast encoders at the same bitrates and GOP, AAC, three hlssink2)
//! in the same run. Reported: media seconds transcoded per second for both and their ratio,
//! tuskd's time from the last PATCH to READY, and its peak RSS.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use tokio::process::Command;

use super::{Args, Target};

pub async fn run(args: &Args, quick: bool) {
    let seconds = if quick { 4 } else { 30 };
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = dir.path().join("clip.mp4");
    let frames = seconds * 30;
    let line = format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=1920,height=1080,framerate=30/1 \
         ! x264enc speed-preset=ultrafast bitrate=8000 ! video/x-h264,profile=high ! h264parse ! mux. \
         audiotestsrc num-buffers={} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! mux. \
         mp4mux name=mux ! filesink location={}",
        seconds * 48_000 / 1024,
        clip.display()
    );
    let ok = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(line.split_whitespace())
        .status()
        .await
        .is_ok_and(|s| s.success());
    assert!(ok, "gst-launch-1.0 makes the clip (GStreamer installed?)");
    let bytes = Bytes::from(std::fs::read(&clip).expect("clip"));

    println!();
    println!(
        "Media: a {seconds} s 1080p30 clip with audio to a 360/720/1080 HLS ladder (median of {} runs)",
        args.runs
    );
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        theirs.push(reference(&clip, dir.path()).await);
        ours.push(tuskd(args, bytes.clone()).await);
    }
    println!("runs (s, MiB): tuskd {ours:.2?}, gst-launch {theirs:.2?}");
    ours.sort_by(|a, b| a.0.total_cmp(&b.0));
    theirs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (t, rss) = ours[ours.len() / 2];
    let (g, g_rss) = theirs[theirs.len() / 2];
    let speed = |secs: f64| seconds as f64 / secs;
    println!(
        "{:<44} {:>9} {:>9} {:>6}",
        "figure", "tuskd", "gst-launch", "ratio"
    );
    println!(
        "{:<44} {:>9.2} {:>9.2} {:>6.2}",
        "media seconds transcoded per second",
        speed(t),
        speed(g),
        speed(t) / speed(g)
    );
    println!(
        "{:<44} {:>9.2} {:>9.2} {:>6.2}",
        "wall time (s; tuskd: last PATCH answered to READY)",
        t,
        g,
        t / g
    );
    println!(
        "{:<44} {:>9.1} {:>9.1} {:>6.2}",
        "peak RSS (MiB)",
        rss,
        g_rss,
        rss / g_rss
    );
}

/// gst-launch-1.0 with the pipeline tuskd builds for this clip; returns its wall time and peak
/// RSS.
async fn reference(clip: &std::path::Path, dir: &std::path::Path) -> (f64, f64) {
    let out = dir.join(format!("ref-{}", rand_suffix()));
    let mut line = format!(
        "filesrc location={} ! qtdemux name=d d.video_0 ! queue ! decodebin ! videoconvert ! video/x-raw,format=I420 \
         ! videorate ! video/x-raw,framerate=30/1 ! tee name=v \
         d.audio_0 ! queue ! decodebin ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 \
         ! voaacenc bitrate=128000 ! aacparse ! tee name=a",
        clip.display()
    );
    for (i, (w, h, kbps)) in [(640, 360, 800), (1280, 720, 2800), (1920, 1080, 5000)]
        .iter()
        .enumerate()
    {
        let r = out.join(format!("r{i}"));
        std::fs::create_dir_all(&r).expect("dir");
        line.push_str(&format!(
            " v. ! queue max-size-time=3000000000 ! videoscale add-borders=false \
             ! video/x-raw,format=I420,width={w},height={h},pixel-aspect-ratio=1/1 \
             ! x264enc speed-preset=veryfast bitrate={kbps} key-int-max=120 option-string=scenecut=0:min-keyint=120:keyint=120 \
             ! video/x-h264,profile=high ! h264parse ! s{i}.video \
             hlssink2 name=s{i} location={}/seg%05d.ts playlist-location={}/index.m3u8 target-duration=4 \
             max-files=0 playlist-length=0 send-keyframe-requests=false \
             a. ! queue ! s{i}.audio",
            r.display(),
            r.display()
        ));
    }
    let started = Instant::now();
    let mut child = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(line.split_whitespace())
        .spawn()
        .expect("gst-launch-1.0 runs");
    let pid = child.id().expect("pid");
    let mut peak = 0f64;
    let status = loop {
        // VmHWM is the peak so far; read it until the process is gone.
        if let Some(kib) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
        {
            peak = peak.max(kib / 1024.0);
        }
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "the reference pipeline runs");
    (started.elapsed().as_secs_f64(), peak)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// Uploads the clip to a fresh tuskd (one media worker) and waits for READY; returns the time
/// from the PATCH's answer to READY and tuskd's peak RSS.
async fn tuskd(args: &Args, clip: Bytes) -> (f64, f64) {
    let data = tempfile::tempdir().expect("temp dir");
    let mut target = start_media_tuskd(args, data.path()).await;
    let d = &target.driver;
    let url = d.create(clip.len() as u64).await;
    patch(d, &url, clip).await;
    let finished = Instant::now();
    wait_ready(d, &url).await;
    let took = finished.elapsed().as_secs_f64();
    let rss = target.peak_rss_mib();
    target.stop().await;
    (took, rss)
}

/// Sends all of `bytes` to the upload at `url` in one PATCH.
pub async fn patch(d: &super::Driver, url: &str, bytes: Bytes) {
    let req = Request::builder()
        .method(Method::PATCH)
        .uri(url)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(Full::new(bytes).map_err(|e| match e {}).boxed())
        .expect("request");
    let resp = d.client.request(req).await.expect("PATCH");
    assert_eq!(resp.status(), 204, "the file is uploaded");
}

/// Polls the media status of the upload at `url` until it is READY.
pub async fn wait_ready(d: &super::Driver, url: &str) {
    let status_url = url.replace("/files/", "/media/");
    loop {
        let req = Request::builder()
            .uri(&status_url)
            .body(Full::new(Bytes::new()).map_err(|e| match e {}).boxed())
            .expect("request");
        let body = d
            .client
            .request(req)
            .await
            .expect("status")
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        if text.contains("\"status\":\"READY\"") {
            return;
        }
        assert!(
            !text.contains("\"status\":\"FAILED\"") && !text.contains("\"status\":\"REJECTED\""),
            "the file is processed: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh tuskd with the media pipeline on and one worker, storing in `data`.
pub async fn start_media_tuskd(args: &Args, data: &std::path::Path) -> Target {
    let mut cmd = Command::new(&args.tuskd);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--expire-after", "0"])
        .args([
            "--media",
            "on",
            "--media-workers",
            "1",
            "--fsync",
            &args.fsync,
        ])
        .arg("--data-dir")
        .arg(data);
    Target::start("tuskd", &mut cmd).await
}
