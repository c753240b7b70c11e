//! The media pipeline end to end on the real binary: clips made with GStreamer are uploaded
//! through tus, `GET /media/{id}` is polled until the job ends, and the outputs are checked as
//! a player would: the master playlist parses, every rendition decodes to the promised size and
//! the source's duration, posters and thumbnails have their sizes, no source tag leaks.
#![cfg(feature = "media")]

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use serde_json::Value;
use testkit::S3Server;
use testkit::media::Clip;

mod common;
use common::media::*;
use common::*;

/// Decodes an MPEG-TS file's video: (width, height, seconds, frames).
fn decode(path: &Path) -> (u32, u32, f64, usize) {
    gst::init().unwrap();
    let line = format!(
        "filesrc location={} ! tsdemux name=d d. ! queue ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! appsink name=sink sync=false",
        path.display()
    );
    let pipeline = gst::parse::launch(&line)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (mut w, mut h, mut first, mut end, mut frames) = (0, 0, u64::MAX, 0u64, 0);
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
        let s = sample.caps().unwrap().structure(0).unwrap().to_owned();
        w = s.get::<i32>("width").unwrap() as u32;
        h = s.get::<i32>("height").unwrap() as u32;
        let b = sample.buffer().unwrap();
        let pts = b.pts().unwrap().nseconds();
        first = first.min(pts);
        end = end.max(pts + b.duration().map_or(0, |d| d.nseconds()));
        frames += 1;
    }
    let errored = pipeline
        .bus()
        .unwrap()
        .pop_filtered(&[gst::MessageType::Error])
        .is_some();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(!errored, "{} decodes", path.display());
    (w, h, (end - first) as f64 / 1e9, frames)
}

/// Checks a READY video's outputs: the expected renditions, decodable, of `seconds`.
fn check_video(addr: &str, doc: &Value, sizes: &[(u32, u32)], seconds: f64, audio: bool) {
    assert_eq!(doc["status"], "READY", "{doc}");
    let master_url = variants(doc, "hls")[0]["url"].as_str().unwrap().to_owned();
    let master_path = path_of(&master_url);
    let master = get(addr, &master_path);
    let parsed = m3u8_rs::parse_master_playlist_res(&master).expect("the master playlist parses");
    let got: Vec<(u32, u32)> = parsed
        .variants
        .iter()
        .map(|v| {
            let r = v.resolution.unwrap();
            (r.width as u32, r.height as u32)
        })
        .collect();
    assert_eq!(got, sizes, "renditions of {master_url}");
    let dir = tempfile::tempdir().unwrap();
    let base = master_path.rsplit_once('/').unwrap().0.to_owned();
    let mut cuts: Vec<Vec<f32>> = Vec::new();
    for (i, v) in parsed.variants.iter().enumerate() {
        let codecs = v.codecs.as_deref().unwrap();
        assert!(
            codecs.starts_with("avc1.64"),
            "High profile H.264: {codecs}"
        );
        assert_eq!(codecs.contains("mp4a.40.2"), audio, "{codecs}");
        assert!(
            v.bandwidth > 50_000 && v.bandwidth < 20_000_000,
            "{}",
            v.bandwidth
        );
        assert!(v.average_bandwidth.unwrap() <= v.bandwidth);
        assert!(v.frame_rate.unwrap() > 1.0);
        let playlist_path = format!("{base}/{}", v.uri);
        let (_, head, text) = request(addr, "GET", &playlist_path, &[], b"");
        assert!(head.contains("content-type: application/vnd.apple.mpegurl"));
        let media = m3u8_rs::parse_media_playlist_res(&text).expect("a media playlist");
        assert_eq!(media.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
        assert!(media.end_list);
        let rdir = playlist_path.rsplit_once('/').unwrap().0.to_owned();
        cuts.push(media.segments.iter().map(|s| s.duration).collect());
        let mut ts = Vec::new();
        for seg in &media.segments {
            assert!(
                seg.duration as f64 <= SEGMENT + 0.6,
                "segment of {}s",
                seg.duration
            );
            let (_, head, body) = request(addr, "GET", &format!("{rdir}/{}", seg.uri), &[], b"");
            assert!(head.contains("content-type: video/mp2t"));
            ts.extend_from_slice(&body);
        }
        let file = dir.path().join(format!("r{i}.ts"));
        std::fs::write(&file, &ts).unwrap();
        let (w, h, secs, _) = decode(&file);
        assert_eq!((w, h), sizes[i], "rendition {i} decodes to its size");
        assert!(
            (secs - seconds).abs() <= SEGMENT,
            "rendition {i} lasts {secs}s, the source {seconds}s"
        );
        // Nothing of the source's tags reaches an output.
        assert!(
            !String::from_utf8_lossy(&ts).contains("secret"),
            "a source tag leaked"
        );
    }
    // Keyframes are aligned: every rendition is cut at the same times.
    assert!(
        cuts.windows(2).all(|w| w[0] == w[1]),
        "segment cuts differ: {cuts:?}"
    );
    // A player on another origin may fetch a byte range of a segment.
    let first_segment = format!("{base}/r0/seg00000.ts");
    let (code, head, body) = request(
        addr,
        "GET",
        &first_segment,
        &[
            ("Range", "bytes=0-187"),
            ("Origin", "https://player.example"),
        ],
        b"",
    );
    assert_eq!((code, body.len()), (206, 188), "{head}");
    assert_eq!(body[0], 0x47, "an MPEG-TS packet starts with its sync byte");
    assert!(
        head.contains("access-control-allow-origin: https://player.example"),
        "{head}"
    );
    let top = *sizes.last().unwrap();
    let poster = &variants(doc, "poster")[0];
    assert_eq!(
        (
            poster["width"].as_u64().unwrap() as u32,
            poster["height"].as_u64().unwrap() as u32
        ),
        top
    );
    let jpeg = get(addr, &path_of(poster["url"].as_str().unwrap()));
    let img = image::load_from_memory(&jpeg).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        top,
        "the poster has the top size"
    );
    for t in variants(doc, "thumbnail") {
        let body = get(addr, &path_of(t["url"].as_str().unwrap()));
        let img = image::load_from_memory(&body).unwrap();
        assert_eq!(img.width() as u64, t["width"].as_u64().unwrap());
        assert!([320, 640].contains(&img.width()));
    }
}

/// A clip, what it is called, and the renditions it must come out as.
type Case = (&'static str, Clip, Vec<(u32, u32)>);

#[test]
fn videos_become_hls_ladders() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]);
    let cases: Vec<Case> = vec![
        (
            "1080p with audio and tags",
            Clip {
                tags: true,
                ..Clip::new(1920, 1080, 3)
            },
            vec![(640, 360), (1280, 720), (1920, 1080)],
        ),
        (
            "no audio",
            Clip {
                audio: false,
                ..Clip::new(640, 360, 2)
            },
            vec![(640, 360)],
        ),
        (
            "portrait phone video (display matrix)",
            Clip {
                rotation: Some(90),
                ..Clip::new(640, 360, 2)
            },
            vec![(360, 640)],
        ),
        (
            "odd dimensions, 4:4:4",
            Clip {
                codec: "h264-444",
                ..Clip::new(427, 241, 2)
            },
            vec![(426, 240)],
        ),
        (
            "MPEG-4 part 2",
            Clip {
                codec: "mpeg4",
                ..Clip::new(640, 360, 2)
            },
            vec![(640, 360)],
        ),
        (
            "VP9 in WebM",
            Clip {
                codec: "vp9",
                audio: false,
                ..Clip::new(320, 240, 2)
            },
            vec![(320, 240)],
        ),
        (
            "variable frame rate",
            Clip {
                variable_rate: true,
                ..Clip::new(640, 360, 3)
            },
            vec![(640, 360)],
        ),
        (
            "interlaced",
            Clip {
                interlaced: true,
                ..Clip::new(640, 360, 2)
            },
            vec![(640, 360)],
        ),
        (
            "10-bit HEVC",
            Clip {
                codec: "hevc-10",
                audio: false,
                ..Clip::new(640, 360, 2)
            },
            vec![(640, 360)],
        ),
    ];
    let mut ids = Vec::new();
    for (i, (name, clip, _)) in cases.iter().enumerate() {
        let (ext, mime) = match clip.codec {
            "vp9" => ("webm", "video/webm"),
            "mpeg4" => ("avi", "video/x-msvideo"),
            _ => ("mp4", "video/mp4"),
        };
        let name_on_disk = format!("clip{i}.{ext}");
        let file = clip.make(clips.path(), &name_on_disk);
        ids.push(upload(
            &t.addr,
            &std::fs::read(file).unwrap(),
            &name_on_disk,
            mime,
        ));
        eprintln!("uploaded {name}");
    }
    for (id, (name, clip, sizes)) in ids.iter().zip(&cases) {
        let (doc, took) = wait_done(&t.addr, id);
        eprintln!("{name}: {} after {took:?}", doc["status"]);
        let probe = &doc["probe"]["video"];
        if clip.rotation.is_some() {
            assert_eq!(probe["rotation"], 90, "{doc}");
            assert_eq!(
                (
                    probe["display_width"].as_u64(),
                    probe["display_height"].as_u64()
                ),
                (Some(360), Some(640))
            );
        }
        if clip.codec == "hevc-10" {
            assert_eq!(probe["codec"], "hevc");
            assert_eq!(probe["bit_depth"], 10, "{doc}");
        }
        assert_eq!(doc["probe"]["audio"].is_object(), clip.audio, "{doc}");
        assert_eq!(probe["variable_frame_rate"], clip.variable_rate, "{doc}");
        assert_eq!(probe["interlaced"], clip.interlaced, "{doc}");
        check_video(&t.addr, &doc, sizes, clip.seconds as f64, clip.audio);
    }
}

#[test]
fn a_zip_named_mp4_is_rejected_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let kinds = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let hook = receiver_of_kinds(
        std::sync::Arc::new(std::sync::Mutex::new(true)),
        Default::default(),
        kinds.clone(),
    );
    let t = start(dir.path(), &["--hooks-http", &hook]);
    let mut zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    zip.extend(data(4096));
    let id = upload(&t.addr, &zip, "holiday.mp4", "video/mp4");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "REJECTED", "{doc}");
    assert_eq!(doc["reason"]["code"], "type_mismatch");
    assert!(
        doc["reason"]["message"]
            .as_str()
            .unwrap()
            .contains("application/zip")
    );
    let (code, _, _) = request(&t.addr, "HEAD", &format!("/files/{id}"), &[], b"");
    assert_eq!(code, 404, "the rejected original is gone");
    let leftovers: Vec<_> = walk(&dir.path().join("uploads"));
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The platform is told, after the upload's own events.
    wait_for("the media-rejected event", || {
        kinds
            .lock()
            .unwrap()
            .iter()
            .any(|k: &String| k == "media-rejected")
    });
    let delivered: Vec<String> = kinds
        .lock()
        .unwrap()
        .iter()
        .filter(|k| k.starts_with("post-") && *k != "post-receive" || k.starts_with("media-"))
        .cloned()
        .collect();
    assert_eq!(delivered, ["post-create", "post-finish", "media-rejected"]);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn truncated_mp4s_fail_at_once_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &["--media-max-attempts", "5"]);
    // Cut in half: with the index at the end (a phone's recording that was cut off), and with
    // the index first (a streaming-friendly file whose media data stops half way).
    let late = std::fs::read(Clip::new(640, 360, 10).make(clips.path(), "late.mp4")).unwrap();
    let early = Clip {
        faststart: true,
        audio: false,
        ..Clip::new(640, 360, 10)
    };
    let early = std::fs::read(early.make(clips.path(), "early.mp4")).unwrap();
    for (name, whole, code) in [
        ("index at the end", late, "probe_failed"),
        ("index first", early, "truncated"),
    ] {
        let cut = &whole[..whole.len() / 2];
        let id = upload(&t.addr, cut, "cut.mp4", "video/mp4");
        let (doc, took) = wait_done(&t.addr, &id);
        eprintln!(
            "{name}: {} after {took:?}: {}",
            doc["status"], doc["reason"]
        );
        assert_eq!(doc["status"], "FAILED", "{name}: {doc}");
        assert_eq!(doc["reason"]["code"], code, "{name}: {doc}");
        assert!(!doc["reason"]["message"].as_str().unwrap().is_empty());
        assert_eq!(doc["attempts"], 1, "a broken file is not retried: {doc}");
        // The original is kept as it was.
        let (status, _, body) = request(&t.addr, "GET", &format!("/files/{id}"), &[], b"");
        assert_eq!((status, body.len()), (200, cut.len()));
        let (status, out) = media_cli(dir.path(), &["list", "--failed"]);
        assert_eq!(status, 0);
        assert!(out.contains(&id) && out.contains("FAILED"), "{out}");
    }
}

#[test]
fn kill_9_mid_transcode_loses_nothing_and_one_media_ready_goes_out() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kinds = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let hook = receiver_of_kinds(
        std::sync::Arc::new(std::sync::Mutex::new(true)),
        seen,
        kinds.clone(),
    );
    let hook_args = [
        "--hooks-http",
        hook.as_str(),
        "--hooks-enabled-events",
        "media-ready,media-failed",
    ];
    let clip = std::fs::read(Clip::new(1280, 720, 10).make(clips.path(), "k.mp4")).unwrap();
    let id;
    {
        let mut t = start(dir.path(), &hook_args);
        id = upload(&t.addr, &clip, "k.mp4", "video/mp4");
        wait_for("the transcode to start", || {
            status(&t.addr, &id)["status"] == "PROCESSING"
        });
        t.child.kill().unwrap();
        t.child.wait().unwrap();
    }
    // The dead worker's lease (30 s) runs out; the restarted server claims the job again.
    let t = start(dir.path(), &hook_args);
    let (doc, took) = wait_done(&t.addr, &id);
    eprintln!("after the restart: {} in {took:?}", doc["status"]);
    assert_eq!(doc["status"], "READY", "{doc}");
    assert_eq!(doc["attempts"], 2);
    check_video(&t.addr, &doc, &[(640, 360), (1280, 720)], 10.0, true);
    wait_for("the media-ready event", || {
        kinds
            .lock()
            .unwrap()
            .iter()
            .any(|k: &String| k == "media-ready")
    });
    // Delivered once (no second attempt's event), and nothing else is waiting.
    let (_, out) = hooks_cli(dir.path(), &["list"]);
    assert_eq!(out.lines().count(), 1, "outbox empty: {out}");
    let ready = kinds
        .lock()
        .unwrap()
        .iter()
        .filter(|k| *k == "media-ready")
        .count();
    assert_eq!(ready, 1);
    // Only the published version's files are stored, and no work files are left behind.
    let versions = std::fs::read_dir(dir.path().join("media").join(&id))
        .unwrap()
        .count();
    assert_eq!(versions, 1);
    assert!(walk(&dir.path().join("media-work")).is_empty());
}

#[test]
fn outputs_go_to_the_s3_bucket() {
    let s3 = S3Server::start();
    s3.create_bucket("media");
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let args = media_args(&[
        "--store",
        "s3://media/up",
        "--s3-endpoint",
        &s3.endpoint(),
        "--part-size",
        "5MiB",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = spawn_with_env(dir.path(), &args, &s3.env());
    let clip = std::fs::read(Clip::new(640, 360, 2).make(clips.path(), "s.mp4")).unwrap();
    let id = upload(&t.addr, &clip, "s.mp4", "video/mp4");
    let (doc, _) = wait_done(&t.addr, &id);
    check_video(&t.addr, &doc, &[(640, 360)], 2.0, true);
    let keys = s3.client().keys("media");
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("up/media/{id}/v")) && k.ends_with("master.m3u8")),
        "{keys:?}"
    );
    assert!(
        !dir.path().join("media").exists(),
        "nothing derived on local disk"
    );
    // Termination takes the derived files with it.
    let (code, _, _) = request(&t.addr, "DELETE", &format!("/files/{id}"), &[], b"");
    assert_eq!(code, 204);
    let keys = s3.client().keys("media");
    assert!(!keys.iter().any(|k| k.contains("/media/")), "{keys:?}");
}

#[test]
fn a_retry_regenerates_the_outputs_into_a_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]);
    let clip = std::fs::read(Clip::new(320, 240, 2).make(clips.path(), "r.mp4")).unwrap();
    let id = upload(&t.addr, &clip, "r.mp4", "video/mp4");
    let (first, _) = wait_done(&t.addr, &id);
    assert_eq!(first["status"], "READY");
    let old_master = variants(&first, "hls")[0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, out) = media_cli(dir.path(), &["retry", &id]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = media_cli(dir.path(), &["retry", "nosuchupload"]);
    assert_ne!(code, 0);
    assert!(out.contains("no media job"), "{out}");
    // The retried job runs again (attempts reset, so it is 1 again) into a new version.
    wait_for("the new version", || {
        let doc = status(&t.addr, &id);
        doc["status"] == "READY" && variants(&doc, "hls")[0]["url"].as_str() != Some(&old_master)
    });
    let (second, _) = wait_done(&t.addr, &id);
    check_video(&t.addr, &second, &[(320, 240)], 2.0, true);
    // The superseded version is gone; the original upload is untouched.
    let (code, _, _) = request(&t.addr, "GET", &path_of(&old_master), &[], b"");
    assert_eq!(code, 404);
    let versions = std::fs::read_dir(dir.path().join("media").join(&id))
        .unwrap()
        .count();
    assert_eq!(versions, 1);
    let (code, _, body) = request(&t.addr, "GET", &format!("/files/{id}"), &[], b"");
    assert_eq!((code, body), (200, clip));
}

#[test]
fn progress_is_reported_and_uploading_is_a_status() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]);
    // An upload still receiving bytes is UPLOADING, with its offset.
    let (code, head, _) = request(&t.addr, "POST", "/files/", &[("Upload-Length", "100")], b"");
    assert_eq!(code, 201);
    let id = header(&head, "location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let doc = status(&t.addr, &id);
    assert_eq!(
        (
            doc["status"].as_str(),
            doc["offset"].as_u64(),
            doc["length"].as_u64()
        ),
        (Some("UPLOADING"), Some(0), Some(100))
    );
    let (code, _, body) = request(&t.addr, "GET", "/media/nosuchupload", &[], b"");
    assert_eq!(code, 404);
    assert!(String::from_utf8_lossy(&body).starts_with("ERR_MEDIA_NOT_FOUND"));
    let (code, _, _) = request(
        &t.addr,
        "GET",
        &format!("/media/{id}/../../tuskd.db"),
        &[],
        b"",
    );
    assert_eq!(code, 404);
    // A player on another origin may ask for byte ranges of derived files (hls.js does).
    let (code, head, _) = request(
        &t.addr,
        "OPTIONS",
        &format!("/media/{id}/v1/r0/seg00000.ts"),
        &[
            ("Origin", "https://player.example"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "range"),
        ],
        b"",
    );
    assert!(code == 200 || code == 204, "{head}");
    let allowed = header(&head, "access-control-allow-headers").unwrap();
    assert!(allowed.to_ascii_lowercase().contains("range"), "{allowed}");
}

#[test]
fn with_media_off_nothing_is_processed() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let t = spawn(dir.path(), &["--media", "off"]);
    let clip = std::fs::read(Clip::new(320, 240, 1).make(clips.path(), "o.mp4")).unwrap();
    let id = upload(&t.addr, &clip, "o.mp4", "video/mp4");
    let (code, _, _) = request(&t.addr, "GET", &format!("/media/{id}"), &[], b"");
    assert_eq!(code, 404, "no media routes");
    let (code, out) = media_cli(dir.path(), &["list"]);
    assert_eq!((code, out.lines().count()), (0, 1), "no media jobs: {out}");
}

#[test]
fn limits_refuse_before_decoding_and_kept_originals_stay() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let t = start(
        dir.path(),
        &[
            "--media-max-pixels",
            "100000",
            "--media-max-duration",
            "2s",
            "--media-keep-rejected",
        ],
    );
    let long = std::fs::read(Clip::new(320, 240, 3).make(clips.path(), "long.mp4")).unwrap();
    let big = std::fs::read(Clip::new(640, 360, 1).make(clips.path(), "big.mp4")).unwrap();
    for (bytes, code) in [(long, "too_long"), (big, "too_large")] {
        let id = upload(&t.addr, &bytes, "x.mp4", "video/mp4");
        let (doc, _) = wait_done(&t.addr, &id);
        assert_eq!(doc["status"], "REJECTED", "{doc}");
        assert_eq!(doc["reason"]["code"], code, "{doc}");
        assert!(
            doc["probe"].is_object(),
            "the probe's facts are kept: {doc}"
        );
        assert!(doc["variants"].as_array().unwrap().is_empty());
        // --media-keep-rejected: the original stays downloadable.
        let (status, _, body) = request(&t.addr, "GET", &format!("/files/{id}"), &[], b"");
        assert_eq!((status, body), (200, bytes));
    }
}

#[test]
fn a_store_failing_while_publishing_is_retried_with_backoff() {
    let s3 = S3Server::start();
    s3.create_bucket("bucket");
    let proxy = testkit::FaultProxy::start(&s3.endpoint());
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let endpoint = proxy.endpoint();
    let args = media_args(&[
        "--store",
        "s3://bucket/up",
        "--s3-endpoint",
        &endpoint,
        "--part-size",
        "5MiB",
        "--store-timeout",
        "2s",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = spawn_with_env(dir.path(), &args, &s3.env());
    // Every write of a derived file fails until the store recovers.
    let derived = testkit::Match {
        method: Some("PUT"),
        target_contains: Some("/up/media/"),
        ..Default::default()
    };
    proxy.inject(derived.clone(), testkit::Fault::Status(500), None);
    let clip = std::fs::read(Clip::new(320, 240, 2).make(clips.path(), "f.mp4")).unwrap();
    let id = upload(&t.addr, &clip, "f.mp4", "video/mp4");
    wait_for("a retry to be scheduled", || {
        let doc = status(&t.addr, &id);
        doc["status"] == "RECEIVED" && doc["reason"]["code"] == "storage"
    });
    assert!(proxy.faulted(&derived) > 0);
    proxy.clear();
    let (doc, took) = wait_done(&t.addr, &id);
    eprintln!("READY {took:?} after the store recovered");
    assert_eq!(doc["status"], "READY", "{doc}");
    assert_eq!(doc["attempts"], 2, "{doc}");
    check_video(&t.addr, &doc, &[(320, 240)], 2.0, true);
    // The failed attempt's files are gone: only the published version is in the bucket.
    let versions: std::collections::BTreeSet<String> = s3
        .client()
        .keys("bucket")
        .iter()
        .filter_map(|k| k.strip_prefix(&format!("up/media/{id}/")))
        .map(|rest| rest.split('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(versions.len(), 1, "{versions:?}");
}
