//! A video is playable before its ladder is done: a clip long enough (30 s or more, more than
//! one rung) is PLAYABLE with its poster and lowest rung published under `playable.m3u8`,
//! then READY with every rung under `master.m3u8`; the early master stays where a player that
//! loaded it finds it. A short clip goes straight to READY in one pass.
#![cfg(feature = "media")]

use std::time::Duration;

use serde_json::Value;
use testkit::media::Clip;

mod common;
use common::media::*;
use common::{receiver_of_kinds, request, wait_for};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// The master playlist a status document leads with: (its path, the media playlists it lists).
fn master(addr: &str, doc: &Value) -> (String, Vec<String>) {
    let hls = variants(doc, "hls");
    assert_eq!(hls.len(), 1, "{doc}");
    let path = path_of(hls[0]["url"].as_str().unwrap());
    let text = String::from_utf8(get(addr, &path)).unwrap();
    let listed = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    (path, listed)
}

/// Seconds a media playlist lasts (its segments' durations), fetched next to its master.
fn seconds(addr: &str, master: &str, playlist: &str) -> f64 {
    let dir = master.rsplit_once('/').unwrap().0;
    let text = String::from_utf8(get(addr, &format!("{dir}/{playlist}"))).unwrap();
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
    text.lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.split(',').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[test]
fn a_long_clip_is_playable_before_its_ladder_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let hook = receiver_of_kinds(
        Arc::new(Mutex::new(true)),
        Arc::new(Mutex::new(Vec::new())),
        kinds.clone(),
    );
    // 720p: two rungs (360p, 720p). Heartbeats (which record progress) every second. One
    // slot: the tasks run one after the other, the first first (with two, the chunk may end
    // with it, and the video is READY without a PLAYABLE moment).
    let args = [
        "--media-workers",
        "1",
        "--media-fast-workers",
        "0",
        "--media-lease",
        "3s",
        "--hooks-http",
        hook.as_str(),
        "--hooks-enabled-events",
        "media-playable,media-ready",
    ];
    let t = start(dir.path(), &args);
    // Uploaded by `tuskd upload --wait`, which prints the upload's URL, then follows it.
    let long = Clip::new(1280, 720, 32).make(clips.path(), "long.mp4");
    let mut cli = Command::new(common::BIN)
        .arg("upload")
        .arg(&long)
        .args(["--url", &format!("http://{}/files/", t.addr), "--state"])
        .arg(clips.path().join("state.json"))
        .arg("--wait")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut said = BufReader::new(cli.stdout.take().unwrap()).lines();
    let url = said.next().unwrap().unwrap();
    let id = url.rsplit('/').next().unwrap().to_owned();
    // The status pushed as Server-Sent Events, read beside the polling until it closes.
    let pushed = {
        let (addr, path) = (t.addr.clone(), format!("/media/{id}"));
        std::thread::spawn(move || {
            request(&addr, "GET", &path, &[("Accept", "text/event-stream")], b"")
        })
    };
    let (early, done) = follow(&t.addr, &id, Duration::from_secs(300));
    let early = early.unwrap_or_else(|| panic!("never PLAYABLE: {done}"));
    assert_eq!(done["status"], "READY", "{done}");

    // Playable: the lowest rung, the poster and thumbnails, under their own master.
    let (early_master, listed) = master(&t.addr, &early);
    assert!(early_master.ends_with("/playable.m3u8"), "{early_master}");
    assert_eq!(listed, ["r0/index.m3u8"], "{early}");
    let rungs: Vec<_> = variants(&early, "rendition")
        .iter()
        .map(|v| v["height"].as_u64())
        .collect();
    assert_eq!(rungs, [Some(360)], "{early}");
    assert!(!variants(&early, "poster").is_empty(), "{early}");
    let p = early["progress"].as_f64().unwrap();
    assert!((0.0..100.0).contains(&p), "{early}");
    let low = seconds(&t.addr, &early_master, "r0/index.m3u8");
    assert!((low - 32.0).abs() < 0.1, "the lowest rung is whole: {low}s");

    // Ready: every rung under master.m3u8, in the same version as the early outputs.
    let (final_master, listed) = master(&t.addr, &done);
    assert!(final_master.ends_with("/master.m3u8"), "{final_master}");
    assert_eq!(listed, ["r0/index.m3u8", "r1/index.m3u8"], "{done}");
    let version = |path: &str| path.rsplit('/').nth(1).unwrap().to_owned();
    assert_eq!(version(&early_master), version(&final_master));
    for rung in &listed {
        let s = seconds(&t.addr, &final_master, rung);
        assert!(
            (s - low).abs() < 1.0 / 30.0 + 1e-6,
            "{rung}: {s}s against {low}s"
        );
    }
    // A player that loaded the early master goes on finding it.
    let (code, _, _) = request(&t.addr, "GET", &early_master, &[], b"");
    assert_eq!(code, 200);
    assert_eq!(done["attempts"], 1, "{done}");
    // Its work ran as two tasks, each once: the lowest rung with the stills and the sound,
    // then 720p in one chunk (32 s is not long enough for two); the early status had the
    // first done.
    let tasks = |doc: &Value| -> Vec<(String, String, u64)> {
        doc["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let s = |k: &str| t[k].as_str().unwrap().to_owned();
                (s("name"), s("status"), t["attempts"].as_u64().unwrap())
            })
            .collect()
    };
    let all_done = [("360p", "DONE", 1), ("chunk1 0:00-end", "DONE", 1)]
        .map(|(n, s, a)| (n.into(), s.into(), a));
    assert_eq!(tasks(&done), all_done, "{done}");
    assert_eq!(tasks(&early)[0], all_done[0].clone(), "{early}");
    assert_eq!(done["tasks"][0]["stills"], true, "{done}");
    assert!(done["tasks"][1]["worker"].is_string(), "{done}");
    let (code, listed) = media_cli(dir.path(), &["list"]);
    assert_eq!(code, 0, "{listed}");
    for name in ["360p", "chunk1 0:00-end"] {
        assert!(
            listed
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("task {name}")) && l.contains("DONE")),
            "{listed}"
        );
    }
    // The command said where to play as soon as it could, then where everything is.
    let said: Vec<String> = said.map(Result::unwrap).collect();
    assert!(cli.wait().unwrap().success(), "{said:?}");
    let line = |kind: &str, file: &str| {
        said.iter()
            .position(|l| l.trim_start().starts_with(&format!("{kind} http")) && l.ends_with(file))
    };
    let (playable, hls) = (
        line("playable", "/playable.m3u8"),
        line("hls", "/master.m3u8"),
    );
    assert!(playable.is_some() && playable < hls, "{said:?}");
    // The stream said each change, PLAYABLE among them, and closed after READY.
    let (code, head, body) = pushed.join().unwrap();
    assert_eq!(code, 200);
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let body = String::from_utf8(body).unwrap();
    let docs: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let statuses: Vec<&str> = docs.iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.last(), Some(&"READY"), "{statuses:?}");
    let at = |s: &str| statuses.iter().position(|x| *x == s);
    assert!(
        at("PLAYABLE").is_some() && at("PLAYABLE") < at("READY"),
        "{statuses:?}"
    );
    assert!(
        docs.windows(2).all(|w| w[0] != w[1]),
        "only changes are sent"
    );
    assert!(body.contains("event: status\n"), "{body}");
    // One event for each, in that order.
    wait_for("the media-ready event", || kinds.lock().unwrap().len() == 2);
    assert_eq!(*kinds.lock().unwrap(), ["media-playable", "media-ready"]);
}

#[test]
fn a_short_clip_goes_straight_to_ready() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &["--media-lease", "3s"]);
    let short = std::fs::read(Clip::new(1280, 720, 3).make(clips.path(), "short.mp4")).unwrap();
    let id = upload(&t.addr, &short, "short.mp4", "video/mp4");
    let (early, done) = follow(&t.addr, &id, Duration::from_secs(300));
    assert!(early.is_none(), "one pass: {early:?}");
    assert_eq!(done["status"], "READY", "{done}");
    let (path, listed) = master(&t.addr, &done);
    assert!(path.ends_with("/master.m3u8"), "{path}");
    assert_eq!(listed.len(), 2, "{done}");
}

#[test]
fn the_status_stream_follows_an_upload_and_says_when_it_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]);
    let (code, head, _) = request(&t.addr, "POST", "/files/", &[("Upload-Length", "100")], b"");
    assert_eq!(code, 201);
    let location = common::header(&head, "location").unwrap();
    let id = location.rsplit('/').next().unwrap().to_owned();
    let s = common::send_request(
        &t.addr,
        "GET",
        &format!("/media/{id}"),
        &[("Accept", "text/event-stream")],
        b"",
    );
    let mut lines = BufReader::new(s).lines().map(Result::unwrap);
    let mut next_doc = || -> Option<Value> {
        lines.find_map(|l| match l.strip_prefix("data: ") {
            Some("{}") => Some(Value::Null),
            Some(d) => Some(serde_json::from_str(d).unwrap()),
            None => None,
        })
    };
    let first = next_doc().unwrap();
    assert_eq!(
        (first["status"].as_str(), first["offset"].as_u64()),
        (Some("UPLOADING"), Some(0))
    );
    let path = format!("/files/{id}");
    let (code, _, _) = request(
        &t.addr,
        "PATCH",
        &path,
        &[
            ("Upload-Offset", "0"),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        &[7u8; 50],
    );
    assert_eq!(code, 204);
    let moved = next_doc().unwrap();
    assert_eq!(moved["offset"].as_u64(), Some(50), "{moved}");
    let (code, _, _) = request(&t.addr, "DELETE", &path, &[], b"");
    assert_eq!(code, 204);
    // Terminated: a `gone` event, and the stream ends.
    assert_eq!(next_doc(), Some(Value::Null));
    assert_eq!(next_doc(), None);

    // Nobody follows what is not there.
    let (code, _, _) = request(
        &t.addr,
        "GET",
        "/media/nosuchupload",
        &[("Accept", "text/event-stream")],
        b"",
    );
    assert_eq!(code, 404);
}

/// The bytes tuskd read from its store for whole-file reads so far (`operation="read"`).
fn bytes_read(addr: &str) -> f64 {
    let (code, _, body) = request(addr, "GET", "/metrics", &[], b"");
    assert_eq!(code, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .filter(|l| {
            l.starts_with("tuskd_store_read_bytes_total{") && l.contains("operation=\"read\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[test]
fn on_an_object_store_a_long_clips_runs_share_one_copy_of_the_original() {
    let s3 = testkit::S3Server::start();
    s3.create_bucket("media");
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    // Two general slots: the two tasks run at once, each needing the original.
    let args = media_args(&[
        "--store",
        "s3://media/up",
        "--s3-endpoint",
        &s3.endpoint(),
        "--part-size",
        "5MiB",
        "--media-playable-from",
        "10s",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = common::spawn_with_env(dir.path(), &args, &s3.env());
    let clip = std::fs::read(Clip::new(1280, 720, 12).make(clips.path(), "long.mp4")).unwrap();
    let before = bytes_read(&t.addr);
    let id = upload(&t.addr, &clip, "long.mp4", "video/mp4");
    let (_, done) = follow(&t.addr, &id, Duration::from_secs(300));
    assert_eq!(done["status"], "READY", "{done}");
    assert_eq!(done["tasks"].as_array().unwrap().len(), 2, "{done}");
    // The media runs read the original once between them (and its first bytes for the type);
    // each run downloading its own copy (the fast slot's probe, the planning run, both tasks)
    // would read it four times.
    let read = bytes_read(&t.addr) - before;
    let len = clip.len() as f64;
    assert!(
        read >= len && read < 1.5 * len,
        "read {read} bytes of a {len}-byte original"
    );
    // The copy goes once no task needs it.
    let copies = dir.path().join("media-work").join("originals");
    wait_for("the copy of the original removed", || {
        std::fs::read_dir(&copies).map_or(true, |mut d| d.next().is_none())
    });
}
