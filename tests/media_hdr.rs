//! HDR phone video looks right in SDR: a colour chart coded as HLG and as PQ (10-bit HEVC,
//! BT.2020, made with ffmpeg) goes through the real binary; the probe says what it was and
//! that it was tone-mapped; every rendition is tagged BT.709; the rendition's and the poster's
//! patches are within a mean ΔE2000 of 6 of ffmpeg's reference tone map with the same operator
//! (`zscale` + `tonemap=hable`), as saturated within 15 %, greys neutral, highlights still
//! apart.
#![cfg(feature = "media")]

use std::process::Command;

use palette::color_difference::Ciede2000;
use palette::{FromColor, Lab, Srgb};
use serde_json::Value;
use testkit::hdr::{self, COLS, HEIGHT, Kind, WIDTH};

mod common;
use common::media::*;

/// The mean colour of each patch's middle in an RGB frame of `width` (the chart's height
/// scaled alike), as CIELAB (D65), the frame read as sRGB.
fn patch_colours(rgb: &[u8], width: u32) -> Vec<Lab> {
    let scale = width as f32 / WIDTH as f32;
    let height = (HEIGHT as f32 * scale).round() as u32;
    assert_eq!(
        rgb.len(),
        (width * height * 3) as usize,
        "a {width}-wide frame"
    );
    (0..hdr::patches().len() as u32)
        .map(|i| {
            let (x0, y0, x1, y1) = hdr::patch_box(i % COLS, i / COLS);
            let (w, h) = (x1 - x0, y1 - y0);
            let inner = |a: u32, len: u32| {
                ((a as f32 + len as f32 * 0.3) * scale) as u32
                    ..((a as f32 + len as f32 * 0.7) * scale) as u32
            };
            let (mut sum, mut n) = ([0f32; 3], 0.0);
            for y in inner(y0, h) {
                for x in inner(x0, w) {
                    let p = ((y * width + x) * 3) as usize;
                    for c in 0..3 {
                        sum[c] += rgb[p + c] as f32 / 255.0;
                    }
                    n += 1.0;
                }
            }
            let srgb = Srgb::new(sum[0] / n, sum[1] / n, sum[2] / n);
            Lab::from_color(srgb.into_linear())
        })
        .collect()
}

fn chroma(c: &Lab) -> f32 {
    c.a.hypot(c.b)
}

/// Holds `got` (one frame's patches) against `reference`'s: mean ΔE2000, mean chroma of the
/// colours, neutral greys, highlights apart.
fn assert_close(got: &[Lab], reference: &[Lab], what: &str) {
    let kinds: Vec<Kind> = hdr::patches().iter().map(|p| p.1).collect();
    let de: Vec<f32> = got
        .iter()
        .zip(reference)
        .map(|(g, r)| g.difference(*r))
        .collect();
    let mean = de.iter().sum::<f32>() / de.len() as f32;
    eprintln!(
        "{what}: mean ΔE2000 {mean:.2}, worst {:.2}",
        de.iter().cloned().fold(0.0, f32::max)
    );
    assert!(mean < 6.0, "{what}: mean ΔE2000 {mean} (each: {de:?})");

    let colours = |set: &[Lab]| {
        let c: Vec<f32> = set
            .iter()
            .zip(&kinds)
            .filter(|(_, k)| **k == Kind::Colour)
            .map(|(l, _)| chroma(l))
            .collect();
        c.iter().sum::<f32>() / c.len() as f32
    };
    let (ours, theirs) = (colours(got), colours(reference));
    assert!(
        (ours / theirs - 1.0).abs() < 0.15,
        "{what}: mean chroma {ours} against the reference's {theirs}"
    );

    for (i, (lab, kind)) in got.iter().zip(&kinds).enumerate() {
        if *kind != Kind::Colour {
            assert!(
                chroma(lab) < 3.0,
                "{what}: grey patch {i} is tinted: {lab:?}"
            );
        }
    }
    let lights: Vec<f32> = got
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| **k == Kind::Highlight)
        .map(|(l, _)| l.l)
        .collect();
    assert!(
        lights.windows(2).all(|w| w[1] > w[0] + 1.0) && lights[0] < 99.0,
        "{what}: highlights clipped flat: L* {lights:?}"
    );
}

/// Every video stream at `url` (a master playlist's every rendition, an MP4) is tagged BT.709.
fn assert_bt709(url: &str) {
    let t = tags(url);
    assert!(
        !t.is_empty() && t.iter().all(|l| l == "bt709,bt709,bt709"),
        "{url}: {t:?}"
    );
}

/// ffprobe's colour tags of every video stream at `url`, `transfer,primaries,matrix` each.
fn tags(url: &str) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v"])
        .args([
            "-show_entries",
            "stream=color_transfer,color_primaries,color_space",
            "-of",
            "csv=p=0",
            url,
        ])
        .output()
        .expect("ffprobe runs (scripts/test.sh installs ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// The chart coded as `transfer` (with a MaxCLL of `peak` when given) through tuskd with a
/// ladder of `ladder`: tagged, probed and mapped like the reference.
fn one_transfer(transfer: &str, peak: Option<u64>, ladder: &str) {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let tuskd = start(dir.path(), &["--hls-ladder", ladder, "--mp4-fallback"]);
    let addr = tuskd.addr.as_str();
    let chart = hdr::chart(files.path(), transfer, 2);
    let reference = patch_colours(
        &hdr::reference_rgb(files.path(), &chart, peak.unwrap_or(1000) as f32),
        WIDTH,
    );

    let id = upload(
        addr,
        &std::fs::read(&chart).unwrap(),
        "hdr.mp4",
        "video/mp4",
    );
    let (doc, _) = wait_done(addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    let color = &doc["probe"]["video"]["color"];
    assert_eq!(color["transfer"], transfer, "{doc}");
    assert_eq!(color["primaries"], "bt2020", "{doc}");
    assert_eq!(color["tone_mapped"], true, "{doc}");
    assert_eq!(color["peak_nits"].as_u64(), peak, "{doc}");

    // Every rendition (and the MP4) says BT.709.
    let master = format!(
        "http://{addr}{}",
        path_of(variants(&doc, "hls")[0]["url"].as_str().unwrap())
    );
    let mp4 = format!(
        "http://{addr}{}",
        path_of(variants(&doc, "mp4")[0]["url"].as_str().unwrap())
    );
    assert_bt709(&master);
    assert_bt709(&mp4);

    let video = patch_colours(&hdr::first_frame_rgb(&master), WIDTH);
    assert_close(&video, &reference, &format!("{transfer} rendition"));

    let poster = &variants(&doc, "poster")[0];
    let jpeg = get(addr, &path_of(poster["url"].as_str().unwrap()));
    let img = image::load_from_memory(&jpeg).unwrap().to_rgb8();
    assert_close(
        &patch_colours(img.as_raw(), img.width()),
        &reference,
        &format!("{transfer} poster"),
    );
}

#[test]
fn an_hlg_chart_is_tone_mapped_like_the_reference() {
    one_transfer("hlg", None, "360");
}

#[test]
fn a_pq_chart_is_tone_mapped_like_the_reference_after_scaling_down_to_its_top_rung() {
    // A ladder whose top is smaller than the source: the picture is scaled before the tone
    // mapping, as a 4K phone video would be.
    one_transfer("pq", Some(1000), "240");
}

#[test]
fn an_sdr_clip_is_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let tuskd = start(dir.path(), &["--hls-ladder", "144"]);
    let clip = hdr::moving(files.path(), None, 1, (256, 144));
    let id = upload(
        &tuskd.addr,
        &std::fs::read(&clip).unwrap(),
        "sdr.mp4",
        "video/mp4",
    );
    let (doc, _): (Value, _) = wait_done(&tuskd.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    let color = &doc["probe"]["video"]["color"];
    assert_eq!(color["transfer"], "bt709", "{doc}");
    assert_eq!(color["tone_mapped"], false, "{doc}");
    assert!(color.get("peak_nits").is_none(), "{doc}");
    let master = format!(
        "http://{}{}",
        tuskd.addr,
        path_of(variants(&doc, "hls")[0]["url"].as_str().unwrap())
    );
    assert_bt709(&master);
}
