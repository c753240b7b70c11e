//! The images rows: 12-megapixel photos (4000×3000 JPEG, then the same as HEIC) to tuskd's
//! variants (4 widths, each JPEG and WebP: 8 outputs a photo), beside Debian's `vips
//! thumbnail` making the same 8 outputs of each (shrink-on-load, metadata stripped; HEIC
//! through the same libheif) in the same run. Reported: variants per second for both, their
//! ratio, and peak RSS (tuskd's process; the largest vips run), also with tuskd taking one
//! picture at a time (no fast slot), as each vips process does.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use tokio::process::Command;

use super::Args;
use super::media::{patch, wait_ready};

const WIDTHS: [u32; 4] = [128, 320, 640, 1280];

pub async fn run(args: &Args, quick: bool) {
    // --quick checks that the row works: two 3-megapixel photos.
    let (photos, (w, h)) = if quick {
        (2, (2000, 1500))
    } else {
        (8, (4000, 3000))
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let files: Vec<(std::path::PathBuf, Bytes)> = (0..photos)
        .map(|i| {
            let bytes = testkit::pictures::photo(w, h, i);
            let path = dir.path().join(format!("p{i}.jpg"));
            std::fs::write(&path, &bytes).expect("write");
            (path, Bytes::from(bytes))
        })
        .collect();
    row(args, &files, dir.path(), &format!("{photos} {w}x{h} JPEGs")).await;
    // The same photos as HEIC (libheif's heif-enc, quality 85), as iPhones save them; vips
    // reads them through the same libheif.
    let heics: Vec<(std::path::PathBuf, Bytes)> = files
        .iter()
        .map(|(jpg, _)| {
            let heic = jpg.with_extension("heic");
            let ok = std::process::Command::new("heif-enc")
                .args(["-q", "85", "-o"])
                .arg(&heic)
                .arg(jpg)
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(ok, "heif-enc (Debian's libheif-examples) makes the HEIC");
            let bytes = std::fs::read(&heic).expect("heic");
            (heic, Bytes::from(bytes))
        })
        .collect();
    row(args, &heics, dir.path(), &format!("{photos} {w}x{h} HEICs")).await;
}

/// One row: every file in `files` through tuskd and through vips, `args.runs` times.
async fn row(args: &Args, files: &[(std::path::PathBuf, Bytes)], dir: &Path, what: &str) {
    let outputs = (files.len() * WIDTHS.len() * 2) as f64;
    println!();
    println!(
        "Images: {what} to {} widths in JPEG and WebP (median of {} runs)",
        WIDTHS.len(),
        args.runs
    );
    let (mut ours, mut single, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut one, mut one_vips) = (Vec::new(), Vec::new());
    let one_slot = ["--media-fast-workers", "0"];
    for _ in 0..args.runs {
        theirs.push(vips(files, dir).await);
        ours.push(tuskd(args, files, &[]).await);
        // One picture at a time, as each vips process works.
        single.push(tuskd(args, files, &one_slot).await);
        // One picture in a fresh process: the memory a picture takes, as vips' for it.
        one.push(tuskd(args, &files[..1], &one_slot).await);
        one_vips.push(vips(&files[..1], dir).await);
    }
    println!("runs (s, MiB): tuskd {ours:.2?}, one at a time {single:.2?}, vips {theirs:.2?}");
    let median = |runs: &mut Vec<(f64, f64)>| {
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        runs[runs.len() / 2]
    };
    let (t, rss) = median(&mut ours);
    let (t1, rss1) = median(&mut single);
    let (v, v_rss) = median(&mut theirs);
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>6} {:>6}",
        "figure", "tuskd", "one slot", "vips", "ratio", "ratio1"
    );
    let rate = |t: f64| outputs / t;
    println!(
        "{:<44} {:>9.2} {:>9.2} {:>9.2} {:>6.2} {:>6.2}",
        "variants per second",
        rate(t),
        rate(t1),
        rate(v),
        rate(t) / rate(v),
        rate(t1) / rate(v)
    );
    println!(
        "{:<44} {:>9.1} {:>9.1} {:>9.1} {:>6.2} {:>6.2}",
        "peak RSS (MiB)",
        rss,
        rss1,
        v_rss,
        rss / v_rss,
        rss1 / v_rss
    );
    let (_, one_rss) = median(&mut one);
    let (_, one_v_rss) = median(&mut one_vips);
    println!(
        "{:<44} {:>9} {:>9.1} {:>9.1} {:>6} {:>6.2}",
        "peak RSS for one picture, fresh process (MiB)",
        "",
        one_rss,
        one_v_rss,
        "",
        one_rss / one_v_rss
    );
}

/// `vips thumbnail` for every output, one after another; returns the wall time and the
/// largest peak RSS of the runs (each under /usr/bin/time).
async fn vips(files: &[(std::path::PathBuf, Bytes)], dir: &Path) -> (f64, f64) {
    let out = dir.join("vips");
    std::fs::create_dir_all(&out).expect("dir");
    let started = Instant::now();
    let mut peak_kib = 0f64;
    for (i, (path, _)) in files.iter().enumerate() {
        for w in WIDTHS {
            for target in [
                format!("{}/{i}-{w}.jpg[Q=82,strip]", out.display()),
                format!("{}/{i}-{w}.webp[Q=80,strip]", out.display()),
            ] {
                let run = Command::new("/usr/bin/time")
                    .args(["-f", "%M", "vips", "thumbnail"])
                    .arg(path)
                    .arg(&target)
                    .arg(w.to_string())
                    .output()
                    .await
                    .expect(
                        "/usr/bin/time and vips (Debian's time and libvips-tools) are installed",
                    );
                assert!(
                    run.status.success(),
                    "vips thumbnail: {}",
                    String::from_utf8_lossy(&run.stderr)
                );
                let kib = String::from_utf8_lossy(&run.stderr)
                    .lines()
                    .last()
                    .and_then(|l| l.trim().parse::<f64>().ok())
                    .unwrap_or(0.0);
                peak_kib = peak_kib.max(kib);
            }
        }
    }
    (started.elapsed().as_secs_f64(), peak_kib / 1024.0)
}

/// Uploads every photo to a fresh tuskd (one media worker and its fast slot, with `extra`
/// flags) and waits until all are READY;
/// returns the time from the first PATCH's answer to the last READY, and tuskd's peak RSS.
async fn tuskd(args: &Args, files: &[(std::path::PathBuf, Bytes)], extra: &[&str]) -> (f64, f64) {
    let data = tempfile::tempdir().expect("temp dir");
    let mut target = super::media::start_media_tuskd(args, data.path(), extra).await;
    let d = &target.driver;
    let mut urls = Vec::new();
    let mut started = None;
    for (_, bytes) in files {
        let url = d.create(bytes.len() as u64).await;
        patch(d, &url, bytes.clone()).await;
        started.get_or_insert_with(Instant::now);
        urls.push(url);
    }
    for url in &urls {
        wait_ready(d, url).await;
    }
    let took = started.expect("photos").elapsed().as_secs_f64();
    let rss = target.peak_rss_mib();
    target.stop().await;
    (took, rss)
}
