//! The media row: a camera-like 1080p clip with audio (a moving picture under sensor-like
//! noise, which is what makes x264 work; `--media-seconds`, 30 by default, 4 with --quick)
//! through tuskd's full ladder (360/720/1080, poster, thumbnails) in one pass
//! (`--media-playable-from off`) and made playable first (the default: the lowest rung, the
//! stills and the sound, then the upper rungs in chunks of 30 s), beside gst-launch-1.0
//! running the equivalent pipeline (one decode, three x264 veryfast encoders at the same
//! bitrates and GOP, AAC, three hlssink2) and ffmpeg doing the same ladder (one decode split
//! three ways, libx264 veryfast, AAC, HLS) in the same run. Reported: media seconds
//! transcoded per second, the time from the last PATCH to PLAYABLE and to READY, CPU seconds
//! per media second (and the chunked path's overhead over one pass), and peak RSS.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use tokio::process::Command;

use super::{Args, Target};

/// One run's figures: seconds to PLAYABLE (if it was) and to READY from the last PATCH, CPU
/// seconds, peak RSS in MiB.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub playable: Option<f64>,
    pub ready: f64,
    pub cpu: f64,
    pub rss: f64,
}

pub fn median(runs: &mut [Run], key: impl Fn(&Run) -> f64) -> f64 {
    runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    key(&runs[runs.len() / 2])
}

pub async fn run(args: &Args, quick: bool) {
    let seconds = if quick { 4 } else { args.media_seconds.max(1) };
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = dir.path().join("clip.mp4");
    let frames = seconds * 30;
    // A moving ball with a layer of snow at 12% over it: grain that changes every frame.
    let line = format!(
        "videotestsrc num-buffers={frames} pattern=snow ! video/x-raw,width=1920,height=1080,framerate=30/1 \
         ! c.sink_1 \
         videotestsrc num-buffers={frames} pattern=ball background-color=0xff305080 \
         ! video/x-raw,width=1920,height=1080,framerate=30/1 ! c.sink_0 \
         compositor name=c sink_1::alpha=0.12 ! videoconvert ! video/x-raw,format=I420 \
         ! x264enc speed-preset=ultrafast bitrate=12000 ! video/x-h264,profile=high ! h264parse ! mux. \
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
        "Media: a {seconds} s camera-like 1080p30 clip with audio to a 360/720/1080 HLS ladder \
         (median of {} runs)",
        args.runs
    );
    let (mut one, mut first, mut theirs, mut ff) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        theirs.push(reference(&clip, dir.path()).await);
        ff.push(ffmpeg(&clip, dir.path()).await);
        one.push(tuskd(args, bytes.clone(), &["--media-playable-from", "off"]).await);
        first.push(tuskd(args, bytes.clone(), &["--media-playable-from", "1s"]).await);
    }
    println!(
        "runs: one pass {one:.2?}, playable first and chunked {first:.2?}, gst-launch {theirs:.2?}, ffmpeg {ff:.2?}"
    );
    let media = seconds as f64;
    let f = median(&mut ff, |r| r.ready);
    let f_cpu = median(&mut ff, |r| r.cpu) / media;
    println!(
        "ffmpeg (the same ladder, one decode, three libx264 veryfast, HLS): {f:.2} s, {f_cpu:.2} CPU s per media s"
    );
    let g = median(&mut theirs, |r| r.ready);
    let g_cpu = median(&mut theirs, |r| r.cpu) / media;
    let g_rss = median(&mut theirs, |r| r.rss);
    let t1 = median(&mut one, |r| r.ready);
    let t1_cpu = median(&mut one, |r| r.cpu) / media;
    let t1_rss = median(&mut one, |r| r.rss);
    let t2 = median(&mut first, |r| r.ready);
    let t2_playable = median(&mut first, |r| r.playable.unwrap_or(f64::NAN));
    let t2_cpu = median(&mut first, |r| r.cpu) / media;
    println!(
        "{:<52} {:>9} {:>9} {:>10} {:>6}",
        "figure", "one pass", "playable", "gst-launch", "ratio"
    );
    let row = |name: &str, a: f64, b: f64, reference: f64, ratio: f64| {
        println!("{name:<52} {a:>9.2} {b:>9.2} {reference:>10.2} {ratio:>6.2}");
    };
    row(
        "media seconds transcoded per second (one pass : ref)",
        media / t1,
        media / t2,
        media / g,
        g / t1,
    );
    row(
        "s from the last PATCH to PLAYABLE (playable : ref)",
        f64::NAN,
        t2_playable,
        g,
        t2_playable / g,
    );
    row(
        "s from the last PATCH to READY (one pass : ref)",
        t1,
        t2,
        g,
        t1 / g,
    );
    row(
        "CPU s per media s (one pass : ref)",
        t1_cpu,
        t2_cpu,
        g_cpu,
        t1_cpu / g_cpu,
    );
    println!(
        "{:<52} {:>9.2} {:>9.2} {:>10.2} {:>6.2}",
        "ffmpeg ratios (one pass, chunked : ffmpeg): READY",
        t1 / f,
        t2 / f,
        f,
        t2 / f
    );
    println!(
        "{:<52} {:>9.2} {:>9.2} {:>10.2} {:>6.2}",
        "  PLAYABLE : ffmpeg's READY",
        f64::NAN,
        t2_playable / f,
        f,
        t2_playable / f
    );
    println!(
        "{:<52} {:>9.2} {:>9.2} {:>10.2} {:>6.2}",
        "  CPU s per media s",
        t1_cpu / f_cpu,
        t2_cpu / f_cpu,
        f_cpu,
        t2_cpu / f_cpu
    );
    println!(
        "{:<52} {:>9} {:>9.2} {:>10} {:>6.2}",
        "  playable first's CPU over one pass",
        "",
        t2_cpu / t1_cpu,
        "",
        t2_cpu / t1_cpu
    );
    row(
        "peak RSS, MiB (one pass : ref)",
        t1_rss,
        median(&mut first, |r| r.rss),
        g_rss,
        t1_rss / g_rss,
    );
}

/// gst-launch-1.0 with the pipeline tuskd builds for this clip; returns its wall time and peak
/// RSS.
async fn reference(clip: &std::path::Path, dir: &std::path::Path) -> Run {
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
    let child = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(line.split_whitespace())
        .spawn()
        .expect("gst-launch-1.0 runs");
    measure(child, started, "the reference pipeline").await
}

/// Waits for `child` (started at `started`) to exit, keeping its CPU time and peak RSS.
pub async fn measure(mut child: tokio::process::Child, started: Instant, what: &str) -> Run {
    let pid = child.id().expect("pid");
    let mut peak = 0f64;
    let mut cpu = 0f64;
    let status = loop {
        // Its CPU time so far (the last 50 ms before it exits are not seen).
        if let Some(s) = super::cpu_seconds_of(pid) {
            cpu = s;
        }
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
    assert!(status.success(), "{what} runs");
    Run {
        playable: None,
        ready: started.elapsed().as_secs_f64(),
        cpu,
        rss: peak,
    }
}

/// ffmpeg doing the same ladder: one decode split three ways, libx264 veryfast at the same
/// bitrates and GOP (scene cuts off), AAC at 128 kbit/s, HLS of 4 s segments per rung.
async fn ffmpeg(clip: &std::path::Path, dir: &std::path::Path) -> Run {
    let out = dir.join(format!("ff-{}", rand_suffix()));
    std::fs::create_dir_all(&out).expect("dir");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-i"]).arg(clip).args([
        "-filter_complex",
        "[0:v]fps=30,format=yuv420p,split=3[a][b][c];[a]scale=640:360[v0];[b]scale=1280:720[v1];[c]scale=1920:1080[v2]",
        "-map", "[v0]", "-map", "0:a", "-map", "[v1]", "-map", "0:a", "-map", "[v2]", "-map", "0:a",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
        "-b:v:0", "800k", "-b:v:1", "2800k", "-b:v:2", "5000k",
        "-g", "120", "-keyint_min", "120", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "128k",
        "-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod",
        "-var_stream_map", "v:0,a:0 v:1,a:1 v:2,a:2",
        "-hls_segment_filename",
    ]);
    cmd.arg(out.join("r%v_seg%05d.ts"))
        .arg(out.join("r%v.m3u8"));
    let started = Instant::now();
    let child = cmd
        .spawn()
        .expect("ffmpeg runs (scripts/test.sh installs it)");
    measure(child, started, "the ffmpeg reference").await
}

pub fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// Uploads the clip to a fresh tuskd (one media worker, `extra` flags) and waits for READY;
/// returns the times from the PATCH's answer to PLAYABLE and READY, the CPU time tuskd spent
/// meanwhile and its peak RSS.
pub async fn tuskd(args: &Args, clip: Bytes, extra: &[&str]) -> Run {
    let data = tempfile::tempdir().expect("temp dir");
    let mut target = start_media_tuskd(args, data.path(), extra).await;
    let d = &target.driver;
    let url = d.create(clip.len() as u64).await;
    patch(d, &url, clip).await;
    let cpu = target.cpu_seconds();
    let finished = Instant::now();
    let playable = wait_ready(d, &url).await;
    let ready = finished.elapsed().as_secs_f64();
    let run = Run {
        playable: playable.map(|at| at.duration_since(finished).as_secs_f64()),
        ready,
        cpu: target.cpu_seconds() - cpu,
        rss: target.peak_rss_mib(),
    };
    target.stop().await;
    run
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

/// Polls the media status of the upload at `url` until it is READY; returns when it was first
/// seen PLAYABLE, if it was.
pub async fn wait_ready(d: &super::Driver, url: &str) -> Option<Instant> {
    let status_url = url.replace("/files/", "/media/");
    let mut playable = None;
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
            return playable;
        }
        if playable.is_none() && text.contains("\"status\":\"PLAYABLE\"") {
            playable = Some(Instant::now());
        }
        assert!(
            !text.contains("\"status\":\"FAILED\"") && !text.contains("\"status\":\"REJECTED\""),
            "the file is processed: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh tuskd with the media pipeline on and one worker, storing in `data`.
pub async fn start_media_tuskd(args: &Args, data: &std::path::Path, extra: &[&str]) -> Target {
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
        .args(extra)
        .arg("--data-dir")
        .arg(data);
    Target::start("tuskd", &mut cmd).await
}
