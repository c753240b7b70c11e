//! Lanes through the real binary: with the only general slot transcoding a long video, a photo
//! and a song uploaded after it are READY long before it, taken by the fast slot; a second
//! video the fast slot checks and probes is handed to the slow lane and READY after the first,
//! its checks not repeated.
#![cfg(feature = "media")]

use std::time::{Duration, Instant};

use testkit::media::Clip;
use testkit::pictures;

mod common;
use common::media::*;
use common::spawn;

/// Polls until the transcode of `id` is under way (progress reported).
fn wait_transcoding(addr: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let doc = status(addr, id);
        if doc["status"] == "PROCESSING" && doc["progress"].as_f64().unwrap_or(0.0) > 0.0 {
            return;
        }
        assert_ne!(
            doc["status"], "READY",
            "the clip was too short to hold the slot"
        );
        assert!(Instant::now() < deadline, "no transcode in sight: {doc}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn photos_and_songs_do_not_wait_behind_a_long_video() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let args = [
        "--media",
        "on",
        "--media-workers",
        "1",
        "--media-fast-workers",
        "1",
        "--hls-segment",
        "2s",
        // Heartbeats (which record progress) every second.
        "--media-lease",
        "3s",
        // One pass: the clip stays PROCESSING until READY.
        "--media-playable-from",
        "off",
    ];
    let t = spawn(dir.path(), &args);
    let long = std::fs::read(Clip::new(1280, 720, 40).make(files.path(), "long.mp4")).unwrap();
    let short = std::fs::read(Clip::new(320, 240, 2).make(files.path(), "short.mp4")).unwrap();
    let photo = pictures::phone_jpeg(1600, 1200, 1);
    let song = testkit::media::tone(files.path(), "song.wav", 3.0, "wavenc");

    let video = upload(&t.addr, &long, "long.mp4", "video/mp4");
    wait_transcoding(&t.addr, &video);
    let uploaded = Instant::now();
    let photo = upload(&t.addr, &photo, "IMG_0002.JPG", "image/jpeg");
    let song = upload(&t.addr, &song, "song.wav", "audio/wav");
    let second = upload(&t.addr, &short, "short.mp4", "video/mp4");
    for (id, what) in [(&photo, "photo"), (&song, "song")] {
        let (doc, _) = wait_done(&t.addr, id);
        assert_eq!(doc["status"], "READY", "{what}: {doc}");
        println!("{what} READY {:?} after its upload", uploaded.elapsed());
    }
    let busy = status(&t.addr, &video);
    assert_eq!(
        busy["status"], "PROCESSING",
        "the photo and the song came first: {busy}"
    );
    // The second video is checked and probed by the fast slot, then left to the general one.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = status(&t.addr, &second);
        assert_ne!(waiting["status"], "READY", "{waiting}");
        if waiting["lane"] == "slow" {
            assert_eq!(waiting["type"], "video/mp4", "{waiting}");
            assert!(waiting["probe"]["video"].is_object(), "{waiting}");
            break;
        }
        assert!(Instant::now() < deadline, "not handed over: {waiting}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let busy = status(&t.addr, &video);
    assert_eq!(busy["status"], "PROCESSING", "{busy}");

    let (first, _) = wait_done(&t.addr, &video);
    assert_eq!(first["status"], "READY", "{first}");
    let (after, _) = wait_done(&t.addr, &second);
    assert_eq!(after["status"], "READY", "{after}");
    assert_eq!(variants(&after, "rendition").len(), 1, "{after}");
    assert!(!variants(&after, "poster").is_empty(), "{after}");
    let attempts = after["attempts"].as_u64();
    assert_eq!(attempts, Some(1), "the handoff is not an attempt: {after}");
    let (code, listed) = media_cli(dir.path(), &["list"]);
    assert_eq!(code, 0, "{listed}");
    let row = listed.lines().find(|l| l.starts_with(second.as_str()));
    let row = row.unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains(" READY ") && row.contains(" slow "), "{row}");
}
