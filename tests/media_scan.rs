//! Malware scanning with a real clamd (Debian's clamav-daemon, started here with a signature
//! for the EICAR test string): infected files are rejected and removed, clean ones pass, files
//! the scanner cannot take whole are `skipped` (never `clean`), and a scanner that is down
//! is handled as `--scan-policy` says.
#![cfg(feature = "media")]

use std::path::Path;

use testkit::clamd::{Clamd, EICAR, SIGNATURE};
use testkit::media::Clip;

mod common;
use common::media::*;
use common::*;

fn clip(dir: &Path) -> Vec<u8> {
    let path = Clip {
        audio: false,
        ..Clip::new(160, 120, 1)
    }
    .make(dir, "clean.mp4");
    std::fs::read(path).unwrap()
}

/// Every file under `dir` whose name contains `id`.
fn files_named(dir: &Path, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(id) {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out
}

fn scan(doc: &serde_json::Value) -> (&str, Option<&str>) {
    (
        doc["scan"]["outcome"].as_str().unwrap_or("none"),
        doc["scan"]["signature"].as_str(),
    )
}

#[test]
fn infected_files_are_rejected_and_deleted_clean_ones_pass_large_ones_are_skipped() {
    let clamd = Clamd::start("100M");
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let video = clip(clips.path());
    assert!(video.len() < 200 << 10, "{} bytes", video.len());
    let t = start(
        dir.path(),
        &["--clamd", &clamd.url(), "--scan-max-size", "256KiB"],
    );

    // A clean video passes, scanned whole.
    let id = upload(&t.addr, &video, "clean.mp4", "video/mp4");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    assert_eq!(scan(&doc), ("clean", None), "{doc}");
    assert_eq!(doc["scan"]["bytes"], video.len() as u64);

    // EICAR alone, and EICAR appended to the real video: rejected as infected (not as an
    // unknown type), the original gone from the store.
    let mut appended = video.clone();
    appended.extend_from_slice(EICAR);
    for (bytes, name, filetype) in [
        (EICAR.to_vec(), "eicar.com", "application/octet-stream"),
        (appended, "holiday.mp4", "video/mp4"),
    ] {
        let id = upload(&t.addr, &bytes, name, filetype);
        let (doc, _) = wait_done(&t.addr, &id);
        assert_eq!(doc["status"], "REJECTED", "{name}: {doc}");
        assert_eq!(doc["reason"]["code"], "infected", "{doc}");
        assert!(
            doc["reason"]["message"]
                .as_str()
                .unwrap()
                .contains(SIGNATURE),
            "{doc}"
        );
        assert_eq!(scan(&doc), ("infected", Some(SIGNATURE)), "{doc}");
        let (code, _, _) = request(&t.addr, "HEAD", &format!("/files/{id}"), &[], b"");
        assert_eq!(code, 404, "{name}: the upload is gone");
        assert!(
            files_named(dir.path(), &id).is_empty(),
            "{:?}",
            files_named(dir.path(), &id)
        );
    }

    // Larger than --scan-max-size: not sent, and said so, though EICAR is inside.
    let mut large = video.clone();
    large.resize(300 << 10, 0);
    large.extend_from_slice(EICAR);
    let id = upload(&t.addr, &large, "large.mp4", "video/mp4");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    assert_eq!(scan(&doc), ("skipped", None), "{doc}");
    assert!(
        doc["scan"]["reason"]
            .as_str()
            .unwrap()
            .contains("scan limit"),
        "{doc}"
    );
    drop(t);

    // A clamd whose StreamMaxLength is below --scan-max-size stops reading part-way: that is a
    // skip too, never the `clean` clamd would say of what it read.
    let small = Clamd::start("64K");
    let dir = tempfile::tempdir().unwrap();
    let t = start(
        dir.path(),
        &["--clamd", &small.url(), "--scan-max-size", "1MiB"],
    );
    let id = upload(&t.addr, &large, "large.mp4", "video/mp4");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(scan(&doc), ("skipped", None), "{doc}");
    assert!(
        doc["scan"]["reason"]
            .as_str()
            .unwrap()
            .contains("StreamMaxLength"),
        "{doc}"
    );
}

#[test]
fn quarantine_keeps_infected_originals_out_of_reach() {
    let clamd = Clamd::start("100M");
    let dir = tempfile::tempdir().unwrap();
    // Through clamd's unix socket this time.
    let t = start(dir.path(), &["--clamd", &clamd.unix_url(), "--quarantine"]);
    let id = upload(&t.addr, EICAR, "eicar.txt", "text/plain");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["reason"]["code"], "infected", "{doc}");
    let (code, _, _) = request(&t.addr, "GET", &format!("/files/{id}"), &[], b"");
    assert_eq!(code, 404);
    assert_eq!(files_named(dir.path(), &id), [format!("quarantine/{id}")]);
    let kept = std::fs::read(dir.path().join("quarantine").join(&id)).unwrap();
    assert_eq!(kept, EICAR);
}

#[test]
fn a_scanner_that_is_down_is_retried_then_the_policy_decides() {
    let clips = tempfile::tempdir().unwrap();
    let video = clip(clips.path());
    let mut clamd = Clamd::start("100M");
    clamd.stop();

    // closed (the default): after the attempts, FAILED; nothing unscanned is published.
    let dir = tempfile::tempdir().unwrap();
    let t = start(
        dir.path(),
        &["--clamd", &clamd.url(), "--media-max-attempts", "1"],
    );
    let id = upload(&t.addr, &video, "v.mp4", "video/mp4");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "FAILED", "{doc}");
    assert_eq!(doc["reason"]["code"], "scanner_unavailable", "{doc}");
    assert!(doc["variants"].as_array().unwrap().is_empty());
    drop(t);

    // open: processed, and the record says it was not scanned.
    let dir = tempfile::tempdir().unwrap();
    let t = start(
        dir.path(),
        &[
            "--clamd",
            &clamd.url(),
            "--media-max-attempts",
            "1",
            "--scan-policy",
            "open",
        ],
    );
    let id = upload(&t.addr, &video, "v.mp4", "video/mp4");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    assert_eq!(scan(&doc), ("unavailable", None), "{doc}");
    assert!(
        doc["scan"]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot reach clamd"),
        "{doc}"
    );
    drop(t);

    // With attempts left, the job waits (RECEIVED, the reason shown) and runs again once the
    // scanner is back.
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &["--clamd", &clamd.url()]);
    let id = upload(&t.addr, &video, "v.mp4", "video/mp4");
    wait_for("the first attempt to fail", || {
        let doc = status(&t.addr, &id);
        doc["status"] == "RECEIVED" && doc["reason"]["code"] == "scanner_unavailable"
    });
    clamd.restart();
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    assert_eq!(scan(&doc), ("clean", None), "{doc}");
    assert_eq!(doc["attempts"], 2, "{doc}");
}

#[test]
fn originals_in_s3_are_scanned_from_the_bucket_and_quarantined_there() {
    let clamd = Clamd::start("100M");
    let s3 = testkit::S3Server::start();
    s3.create_bucket("media");
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let args = media_args(&[
        "--store",
        "s3://media/up",
        "--s3-endpoint",
        &s3.endpoint(),
        "--clamd",
        &clamd.url(),
        "--quarantine",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = spawn_with_env(dir.path(), &args, &s3.env());
    let video = clip(clips.path());
    let id = upload(&t.addr, &video, "clean.mp4", "video/mp4");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(scan(&doc), ("clean", None), "{doc}");
    assert_eq!(doc["scan"]["bytes"], video.len() as u64);

    let mut infected = video.clone();
    infected.extend_from_slice(EICAR);
    let id = upload(&t.addr, &infected, "holiday.mp4", "video/mp4");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(scan(&doc), ("infected", Some(SIGNATURE)), "{doc}");
    let keys = s3.client().keys("media");
    let mine: Vec<&String> = keys.iter().filter(|k| k.contains(&id)).collect();
    assert_eq!(mine, [&format!("up/quarantine/{id}")], "{keys:?}");
    assert_eq!(
        s3.client().size("media", &format!("up/quarantine/{id}")),
        Some(infected.len() as u64)
    );
    assert_eq!(
        request(&t.addr, "HEAD", &format!("/files/{id}"), &[], b"").0,
        404
    );
}

#[test]
fn infected_originals_are_not_kept_even_when_rejected_ones_are() {
    let clamd = Clamd::start("100M");
    let dir = tempfile::tempdir().unwrap();
    let t = start(
        dir.path(),
        &["--clamd", &clamd.url(), "--media-keep-rejected"],
    );
    let id = upload(&t.addr, EICAR, "eicar.txt", "text/plain");
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["reason"]["code"], "infected", "{doc}");
    assert_eq!(
        request(&t.addr, "HEAD", &format!("/files/{id}"), &[], b"").0,
        404
    );
    // A clean file of a refused type is kept, as --media-keep-rejected says.
    let id = upload(
        &t.addr,
        b"just some text, no media",
        "notes.txt",
        "text/plain",
    );
    let (doc, _) = wait_done(&t.addr, &id);
    assert_eq!(doc["reason"]["code"], "unknown_type", "{doc}");
    assert_eq!(scan(&doc), ("clean", None), "scanned first: {doc}");
    assert_eq!(
        request(&t.addr, "HEAD", &format!("/files/{id}"), &[], b"").0,
        200
    );
}

#[test]
fn the_status_says_scanning_while_clamd_reads() {
    let clamd = Clamd::start("100M");
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &["--clamd", &clamd.url()]);
    // 40 MiB: clamd takes a good fraction of a second to read it.
    let mut big = clip(clips.path());
    big.resize(40 << 20, 0);
    let id = upload(&t.addr, &big, "big.mp4", "video/mp4");
    let mut seen = Vec::new();
    let (doc, _) = loop {
        let doc = status(&t.addr, &id);
        let s = doc["status"].as_str().unwrap().to_owned();
        if seen.last() != Some(&s) {
            seen.push(s.clone());
        }
        if matches!(s.as_str(), "READY" | "REJECTED" | "FAILED") {
            break (doc, ());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(doc["status"], "READY", "{doc}");
    assert_eq!(scan(&doc), ("clean", None), "{doc}");
    assert!(
        seen.iter().any(|s| s == "SCANNING"),
        "statuses seen: {seen:?}"
    );
    let at = |name: &str| seen.iter().position(|s| s == name);
    assert!(at("SCANNING") < at("READY"), "{seen:?}");
}
