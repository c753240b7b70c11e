//! A video's extras through the real binary: the animated WebP preview, the storyboard sprite
//! with the WebVTT that maps its tiles to times (checked to cover the duration and to point
//! inside the sprite), and the progressive MP4 of `--mp4-fallback` (index first, decodable,
//! with its sound).
#![cfg(feature = "media")]

use gstreamer as gst;
use image::AnimationDecoder;
use serde_json::Value;
use testkit::media::Clip;

mod common;
use common::media::*;

fn one<'a>(doc: &'a Value, kind: &str) -> &'a Value {
    let v = variants(doc, kind);
    assert_eq!(v.len(), 1, "one {kind}: {doc}");
    v[0]
}

fn ms(stamp: &str) -> u64 {
    let (hms, frac) = stamp.split_once('.').unwrap();
    let p: Vec<u64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    (p[0] * 3600 + p[1] * 60 + p[2]) * 1000 + frac.parse::<u64>().unwrap()
}

/// Top-level MP4 box names, in order.
fn boxes(mp4: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 8 <= mp4.len() {
        let size = u32::from_be_bytes(mp4[i..i + 4].try_into().unwrap()) as usize;
        out.push(String::from_utf8_lossy(&mp4[i + 4..i + 8]).into_owned());
        if size < 8 {
            break;
        }
        i += size;
    }
    out
}

#[test]
fn previews_storyboards_and_the_mp4_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &["--mp4-fallback"]);
    let clip = Clip::new(640, 360, 5).make(clips.path(), "c.mp4");
    let id = upload(
        &t.addr,
        &std::fs::read(&clip).unwrap(),
        "c.mp4",
        "video/mp4",
    );
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    let fetch = |v: &Value| get(&t.addr, &path_of(v["url"].as_str().unwrap()));

    // The preview: an animated WebP, small, a few seconds at 10 fps.
    let preview = one(&doc, "preview");
    assert_eq!(preview["type"], "image/webp");
    let bytes = fetch(preview);
    let dec = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(&bytes)).unwrap();
    assert!(dec.has_animation(), "animated");
    let frames = dec.into_frames().collect_frames().unwrap();
    assert!((25..=31).contains(&frames.len()), "{} frames", frames.len());
    assert_eq!(frames[0].buffer().dimensions(), (320, 180));
    let shown: u32 = frames
        .iter()
        .map(|f| {
            let (n, d) = f.delay().numer_denom_ms();
            n / d
        })
        .sum();
    assert!((2500..=3300).contains(&shown), "{shown} ms");

    // The storyboard: cues from 0 to the end without gaps, each a tile inside the sprite.
    let sprite = image::load_from_memory(&fetch(one(&doc, "storyboard"))).unwrap();
    let (sw, sh) = (sprite.width(), sprite.height());
    let text = String::from_utf8(fetch(one(&doc, "storyboard-vtt"))).unwrap();
    assert!(text.starts_with("WEBVTT\n"), "{text}");
    let mut expect_from = 0;
    let mut cues = 0;
    for block in text.split("\n\n").skip(1) {
        let mut lines = block.lines();
        let (from, to) = lines.next().unwrap().split_once(" --> ").unwrap();
        assert_eq!(ms(from), expect_from, "{text}");
        expect_from = ms(to);
        let target = lines.next().unwrap();
        let xywh: Vec<u32> = target
            .strip_prefix("storyboard.jpg#xywh=")
            .unwrap()
            .split(',')
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!((xywh[2], xywh[3]), (160, 90), "{target}");
        assert!(
            xywh[0] + xywh[2] <= sw && xywh[1] + xywh[3] <= sh,
            "{target} in {sw}x{sh}"
        );
        cues += 1;
    }
    assert!(
        (4900..=5100).contains(&expect_from),
        "cues end at {expect_from} ms"
    );
    assert_eq!(cues, 3, "a tile every 2 s");
    assert_eq!((sw, sh), (480, 90));

    // The MP4: index first, the largest rendition up to 720p, with its sound, the whole length.
    let mp4 = one(&doc, "mp4");
    assert_eq!(
        (mp4["width"].as_u64(), mp4["height"].as_u64()),
        (Some(640), Some(360))
    );
    let bytes = fetch(mp4);
    let order = boxes(&bytes);
    let (moov, mdat) = (
        order.iter().position(|b| b == "moov").unwrap(),
        order.iter().position(|b| b == "mdat").unwrap(),
    );
    assert!(moov < mdat, "faststart: {order:?}");
    let file = clips.path().join("fallback.mp4");
    std::fs::write(&file, &bytes).unwrap();
    gst::init().unwrap();
    let info = gstreamer_pbutils::Discoverer::new(gst::ClockTime::from_seconds(10))
        .unwrap()
        .discover_uri(&format!("file://{}", file.display()))
        .unwrap();
    let secs = info.duration().unwrap().seconds_f64();
    assert!((secs - 5.0).abs() < 0.3, "{secs}s");
    assert_eq!(info.audio_streams().len(), 1);
    let v = &info.video_streams()[0];
    assert_eq!((v.width(), v.height()), (640, 360));
}
