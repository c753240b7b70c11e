//! Helpers for the media suites: a media-enabled tuskd, tus uploads with a name and type,
//! polling `GET /media/{id}` until the job ends, fetching derived files.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use super::{Tuskd, header, request, spawn};

/// Seconds per HLS segment in the media suites.
pub const SEGMENT: f64 = 2.0;

/// The media suites' flags, with `extra` after them; a flag `extra` names replaces the
/// suites' own.
pub fn media_args(extra: &[&str]) -> Vec<String> {
    let defaults = [
        ("--media", "on"),
        ("--media-workers", "2"),
        ("--hls-segment", "2s"),
    ];
    let mut v = Vec::new();
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            v.extend([flag.to_string(), value.to_string()]);
        }
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

pub fn start(dir: &Path, extra: &[&str]) -> Tuskd {
    let args = media_args(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn(dir, &args)
}

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Uploads `bytes` through tus as `name` (of type `filetype`); returns the upload id.
pub fn upload(addr: &str, bytes: &[u8], name: &str, filetype: &str) -> String {
    let meta = format!("filename {},filetype {}", b64(name), b64(filetype));
    let (status, head, _) = request(
        addr,
        "POST",
        "/files/",
        &[
            ("Upload-Length", &bytes.len().to_string()),
            ("Upload-Metadata", &meta),
        ],
        b"",
    );
    assert_eq!(status, 201);
    let id = header(&head, "location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (status, _, _) = request(
        addr,
        "PATCH",
        &format!("/files/{id}"),
        &[
            ("Upload-Offset", "0"),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        bytes,
    );
    assert_eq!(status, 204);
    id
}

pub fn status(addr: &str, id: &str) -> Value {
    let (code, head, body) = request(addr, "GET", &format!("/media/{id}"), &[], b"");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert!(head.contains("content-type: application/json"));
    serde_json::from_slice(&body).unwrap()
}

/// Polls the status until the job ends; returns the last document and how long it took.
pub fn wait_done(addr: &str, id: &str) -> (Value, Duration) {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    loop {
        let doc = status(addr, id);
        let s = doc["status"].as_str().unwrap().to_owned();
        if matches!(s.as_str(), "READY" | "REJECTED" | "FAILED") {
            return (doc, started.elapsed());
        }
        assert!(Instant::now() < deadline, "no end in sight: {doc}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The path part of a variant URL (`http://host/media/...`).
pub fn path_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    format!("/{}", rest.split_once('/').map_or("", |(_, p)| p))
}

pub fn get(addr: &str, path: &str) -> Vec<u8> {
    let (code, head, body) = request(addr, "GET", path, &[], b"");
    assert_eq!(code, 200, "GET {path}");
    assert!(
        head.contains("cache-control: public, max-age=31536000, immutable"),
        "{head}"
    );
    body
}

pub fn variants<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    doc["variants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["kind"] == kind)
        .collect()
}

/// Runs `tuskd media ARGS --data-dir DIR`: (exit code, stdout and stderr).
pub fn media_cli(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(super::BIN)
        .arg("media")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The status documents of `id` from now until it ends (`within` at most): the first
/// PLAYABLE one (if any) and the last.
pub fn follow(addr: &str, id: &str, within: Duration) -> (Option<Value>, Value) {
    let deadline = Instant::now() + within;
    let mut playable = None;
    loop {
        let doc = status(addr, id);
        match doc["status"].as_str().unwrap() {
            "PLAYABLE" if playable.is_none() => playable = Some(doc.clone()),
            "READY" | "REJECTED" | "FAILED" => return (playable, doc),
            _ => {}
        }
        assert!(Instant::now() < deadline, "no end in sight: {doc}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether pixel `p` is within 60 of `want` in each channel (lossy variants of flat colours).
#[cfg(feature = "media")]
pub fn near(p: image::Rgba<u8>, want: [u8; 3]) -> bool {
    p.0[..3]
        .iter()
        .zip(want)
        .all(|(a, b)| (*a as i32 - b as i32).abs() < 60)
}
