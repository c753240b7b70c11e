//! Audio through the real binary: tones in MP3 (with cover art) and FLAC become an AAC
//! rendition normalised to the loudness target (measured here with EBU R128 on what
//! GStreamer decodes from the outputs), as audio-only HLS (played through GStreamer's HLS
//! demuxer from the server) and as an M4A file, with a waveform and the cover as the poster.
#![cfg(feature = "media")]

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use serde_json::Value;
use testkit::pictures;

mod common;
use common::media::*;

const SECONDS: f64 = 4.0;
const TARGET: f64 = -16.0;

/// The test's tone, encoded by `encoder`.
fn tone(dir: &Path, name: &str, encoder: &str) -> Vec<u8> {
    testkit::media::tone(dir, name, SECONDS, encoder)
}

/// Decodes `uri` to 48 kHz stereo f32: (samples, seconds).
fn decode(uri: &str) -> (Vec<f32>, f64) {
    gst::init().unwrap();
    let line = format!(
        "uridecodebin uri={uri} ! audioconvert ! audioresample \
         ! audio/x-raw,format=F32LE,layout=interleaved,rate=48000,channels=2 ! appsink name=sink sync=false"
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
    let mut samples = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
        let map = sample.buffer().unwrap().map_readable().unwrap();
        samples.extend(
            map.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
    let errored = pipeline
        .bus()
        .unwrap()
        .pop_filtered(&[gst::MessageType::Error])
        .map(|m| format!("{m:?}"));
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(errored, None, "{uri} decodes");
    let seconds = samples.len() as f64 / 2.0 / 48_000.0;
    (samples, seconds)
}

fn loudness(samples: &[f32]) -> f64 {
    let mut m = ebur128::EbuR128::new(2, 48_000, ebur128::Mode::I).unwrap();
    m.add_frames_f32(samples).unwrap();
    m.loudness_global().unwrap()
}

fn one<'a>(doc: &'a Value, kind: &str) -> &'a Value {
    let v = variants(doc, kind);
    assert_eq!(v.len(), 1, "one {kind}: {doc}");
    v[0]
}

fn check(addr: &str, doc: &Value, dir: &Path) {
    assert_eq!(doc["status"], "READY", "{doc}");
    // The source was measured and brought up to the target.
    let measured = &doc["probe"]["audio"]["loudness"];
    let source = measured["integrated_lufs"].as_f64().unwrap();
    assert!((source - -20.0).abs() < 1.5, "{measured}");
    let gain = measured["gain_db"].as_f64().unwrap();
    assert!((gain - (TARGET - source)).abs() < 0.01, "{measured}");
    // The M4A: AAC, as long as the source, at the target loudness.
    let m4a = one(doc, "audio");
    assert_eq!(m4a["type"], "audio/mp4");
    let bytes = get(addr, &path_of(m4a["url"].as_str().unwrap()));
    let file = dir.join("out.m4a");
    std::fs::write(&file, &bytes).unwrap();
    let (samples, secs) = decode(&format!("file://{}", file.display()));
    assert!((secs - SECONDS).abs() < 0.15, "M4A lasts {secs}s");
    let lufs = loudness(&samples);
    println!("M4A: {secs:.3}s at {lufs:.2} LUFS (target {TARGET})");
    assert!((lufs - TARGET).abs() <= 1.0, "{lufs} LUFS");

    // The HLS: a master listing one audio-only rendition, played from the server.
    let master = one(doc, "hls");
    let text = String::from_utf8(get(addr, &path_of(master["url"].as_str().unwrap()))).unwrap();
    assert!(text.contains("CODECS=\"mp4a.40.2\""), "{text}");
    assert!(!text.contains("RESOLUTION"), "{text}");
    assert!(one(doc, "rendition")["width"].is_null());
    let (samples, secs) = decode(master["url"].as_str().unwrap());
    assert!((secs - SECONDS).abs() < 0.2, "HLS plays {secs}s");
    let lufs = loudness(&samples);
    assert!((lufs - TARGET).abs() <= 1.0, "HLS at {lufs} LUFS");

    // The waveform, as a picture and as data.
    let png = one(doc, "waveform");
    let img = image::load_from_memory(&get(addr, &path_of(png["url"].as_str().unwrap()))).unwrap();
    assert_eq!((img.width(), img.height()), (1280, 200));
    let ink = img.to_rgba8().pixels().filter(|p| p.0[3] > 0).count();
    // A steady tone fills a steady band around the middle, not the whole picture.
    assert!(ink > 1280 * 20 && ink < 1280 * 180, "{ink} pixels drawn");
    let data: Value = serde_json::from_slice(&get(
        addr,
        &path_of(one(doc, "waveform-data")["url"].as_str().unwrap()),
    ))
    .unwrap();
    assert_eq!(data["length"], 1280);
    assert_eq!(data["data"].as_array().unwrap().len(), 2 * 1280);
}

#[test]
fn tones_in_mp3_and_flac_become_normalised_aac_hls_and_m4a() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]);

    // MP3 with a cover: the cover becomes the poster.
    let cover = pictures::phone_jpeg(300, 300, 1);
    let mut mp3 = pictures::id3_cover(&cover);
    mp3.extend(tone(clips.path(), "t.mp3", "lamemp3enc bitrate=128"));
    let id = upload(&t.addr, &mp3, "tone.mp3", "audio/mpeg");
    let (doc, took) = wait_done(&t.addr, &id);
    println!("MP3 processed in {took:?}");
    check(&t.addr, &doc, clips.path());
    let poster = one(&doc, "poster");
    assert_eq!(
        (poster["width"].as_u64(), poster["height"].as_u64()),
        (Some(300), Some(300))
    );
    let bytes = get(&t.addr, &path_of(poster["url"].as_str().unwrap()));
    assert_eq!(pictures::metadata_blocks(&bytes), Vec::<String>::new());

    // FLAC, no cover: no poster.
    let flac = tone(clips.path(), "t.flac", "flacenc");
    let id = upload(&t.addr, &flac, "tone.flac", "audio/flac");
    let (doc, _) = wait_done(&t.addr, &id);
    check(&t.addr, &doc, clips.path());
    assert!(variants(&doc, "poster").is_empty(), "{doc}");
}

#[test]
fn wav_opus_and_m4a_are_audio_too() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]);
    for (name, filetype, encoder, detected) in [
        ("t.wav", "audio/wav", "wavenc", "audio/x-wav"),
        ("t.opus", "audio/ogg", "opusenc ! oggmux", "audio/opus"),
        (
            "t.m4a",
            "audio/mp4",
            "voaacenc ! aacparse ! mp4mux",
            "video/mp4",
        ),
    ] {
        let bytes = tone(clips.path(), name, encoder);
        let id = upload(&t.addr, &bytes, name, filetype);
        let (doc, _) = wait_done(&t.addr, &id);
        assert_eq!(doc["type"], detected, "{name}: {doc}");
        check(&t.addr, &doc, clips.path());
    }
}
