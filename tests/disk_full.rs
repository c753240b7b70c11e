//! A full disk, on a small filesystem each test mounts (a tmpfs, `testkit::Tmpfs`), with the
//! real binary: upload data stops at the free-space reserve and keeps what arrived (507 with
//! the offset), everything that needs no new space still answers, DELETE and expiry free space
//! on a disk that is completely full, a kill -9 while full is survived, media work that runs out
//! of room is retried once space returns, and local storage keeps what a full disk took.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use testkit::tmpfs::Tmpfs;
use tuskd::domain::upload::UploadId;
use tuskd::storage::Storage;
use tuskd::storage::local::LocalStorage;

mod common;
use common::*;

const MIB: usize = 1 << 20;

fn patch(addr: &str, path: &str, offset: usize, body: &[u8]) -> (u16, String, Vec<u8>) {
    request(
        addr,
        "PATCH",
        path,
        &[
            ("Upload-Offset", &offset.to_string()),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        body,
    )
}

/// The file local storage keeps for the upload at `path`.
fn stored(data_dir: &Path, path: &str) -> PathBuf {
    let id = path.rsplit('/').next().unwrap();
    data_dir.join("uploads").join(&id[..2]).join(id)
}

fn upload_whole(addr: &str, body: &[u8]) -> String {
    let path = create(addr, body.len());
    assert_eq!(patch(addr, &path, 0, body).0, 204);
    path
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_patch_that_fills_the_disk_keeps_what_arrived_and_resumes_when_space_returns() {
    let fs = Tmpfs::mount(64 << 20);
    let tuskd = spawn(fs.path(), &["--min-free-space", "4MiB", "--fsync", "off"]);
    let addr = &tuskd.addr;
    let small = data(MIB);
    let finished = upload_whole(addr, &small);
    // Another program takes half the disk.
    fs.fill(30 << 20);

    let total = 48 * MIB;
    let body = data(total);
    let path = create(addr, total);
    let (status, head, text) = patch(addr, &path, 0, &body);
    assert_eq!(status, 507, "{head}");
    assert!(String::from_utf8_lossy(&text).contains("ERR_STORAGE_FULL"));
    let kept: u64 = header(&head, "upload-offset")
        .expect("the 507 carries the offset kept")
        .parse()
        .unwrap();
    assert!(kept > 16 * MIB as u64 && kept < total as u64, "kept {kept}");
    assert_eq!(offset(addr, &path), kept, "HEAD agrees");
    assert_eq!(
        std::fs::metadata(stored(fs.path(), &path)).unwrap().len(),
        kept,
        "nothing on disk past the recorded offset"
    );
    let free = fs.free();
    assert!(free >= 3 << 20, "the reserve held: {free} bytes free");

    // Below the reserve: what needs no new space answers, new work gets 507.
    let (status, _, body_text) = request(addr, "POST", "/files/", &[("Upload-Length", "10")], b"");
    assert_eq!(status, 507);
    assert!(String::from_utf8_lossy(&body_text).contains("ERR_STORAGE_FULL"));
    let (status, _, got) = request(addr, "GET", &finished, &[], b"");
    assert_eq!((status, got == small), (200, true));
    let (status, head, _) = patch(addr, &path, kept as usize, &body[kept as usize..]);
    assert_eq!(status, 507);
    assert_eq!(header(&head, "upload-offset"), Some(kept.to_string()));
    let (status, _, ready) = request(addr, "GET", "/readyz", &[], b"");
    assert_eq!(status, 200, "a full node stays ready");
    assert!(String::from_utf8_lossy(&ready).contains("\"disk\":\"full:"));
    let (_, _, metrics) = request(addr, "GET", "/metrics", &[], b"");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains("tuskd_storage_full_refusals_total{reason=\"reserve\"}"));
    assert!(metrics.contains("tuskd_disk_free_bytes{dir=\"uploads\"}"));

    // DELETE answers and frees its space.
    let before = fs.free();
    assert_eq!(request(addr, "DELETE", &finished, &[], b"").0, 204);
    assert_eq!(request(addr, "HEAD", &finished, &[], b"").0, 404);
    let after = fs.free();
    assert!(
        after >= before + MIB as u64 - (64 << 10),
        "{before} → {after}"
    );

    // Space returns: the client resumes from what was kept, and the bytes are exact.
    fs.unfill();
    resume_and_verify(addr, &path, kept, &body);
    let log = tuskd.log.lock().unwrap().join("\n");
    assert!(!log.contains("status=500"), "nothing answered 500");
}

#[test]
fn on_a_disk_with_no_byte_free_reads_deletes_expiry_and_a_restart_still_work() {
    let fs = Tmpfs::mount(48 << 20);
    let mut args = vec![
        "--min-free-space",
        "2MiB",
        "--fsync",
        "off",
        "--expire-after",
        "4s",
    ];
    if cfg!(feature = "media") {
        // The test bytes are no media: rejected, and kept, so the status has something to say.
        args.extend(["--media", "on", "--media-keep-rejected"]);
    }
    let mut tuskd = spawn(fs.path(), &args);
    let body = data(4 * MIB);
    let finished = upload_whole(&tuskd.addr, &body);
    let unfinished = create(&tuskd.addr, 8 * MIB);
    assert_eq!(patch(&tuskd.addr, &unfinished, 0, &body).0, 204);
    // Something else takes every byte left, past tuskd's reserve.
    fs.fill(0);
    assert!(fs.free() < 64 << 10);

    // kill -9 while full, and start again on the full disk.
    tuskd.child.kill().unwrap();
    tuskd.child.wait().unwrap();
    let tuskd = spawn(fs.path(), &args);
    let addr = &tuskd.addr;

    assert_eq!(offset(addr, &unfinished), 4 * MIB as u64);
    let (status, _, got) = request(addr, "GET", &finished, &[], b"");
    assert_eq!(status, 200);
    assert!(got == body, "downloads answer while full");
    if cfg!(feature = "media") {
        let id = finished.rsplit('/').next().unwrap();
        let (status, _, doc) = request(addr, "GET", &format!("/media/{id}"), &[], b"");
        assert_eq!(status, 200, "the media status answers while full");
        assert!(String::from_utf8_lossy(&doc).contains(id));
    }
    assert_eq!(
        request(addr, "POST", "/files/", &[("Upload-Length", "1")], b"").0,
        507
    );
    let (status, head, _) = patch(addr, &unfinished, 4 * MIB, &body);
    assert_eq!(status, 507);
    assert_eq!(header(&head, "upload-offset"), Some((4 * MIB).to_string()));

    // DELETE frees the data first, then records the removal in the room it made.
    let before = fs.free();
    assert_eq!(request(addr, "DELETE", &finished, &[], b"").0, 204);
    assert_eq!(request(addr, "GET", &finished, &[], b"").0, 404);
    let after = fs.free();
    assert!(
        after >= before + 4 * MIB as u64 - (64 << 10),
        "{before} → {after}"
    );

    // The unfinished upload expires on the full disk too, and its space returns.
    fs.fill(0);
    let before = fs.free();
    wait_until("the expiry", Duration::from_secs(30), || {
        !stored(fs.path(), &unfinished).exists()
    });
    assert_eq!(request(addr, "HEAD", &unfinished, &[], b"").0, 410);
    let after = fs.free();
    assert!(
        after >= before + 4 * MIB as u64 - (64 << 10),
        "{before} → {after}"
    );
    let log = tuskd.log.lock().unwrap().join("\n");
    assert!(!log.contains("status=500"), "nothing answered 500:\n{log}");
}

#[tokio::test]
async fn local_storage_keeps_what_a_full_disk_took() {
    let fs = Tmpfs::mount(8 << 20);
    let storage = LocalStorage::open(fs.path(), true).unwrap();
    let id = UploadId::random();
    storage.create(&id).await.unwrap();
    let mut a = storage.appender(&id, 0, None).await.unwrap();
    let body = data(16 * MIB);
    let mut refused = None;
    for piece in body.chunks(100_000) {
        if let Err(e) = a.write(Bytes::copy_from_slice(piece)).await {
            refused = Some(e);
            break;
        }
    }
    let first = match refused {
        Some(e) => Err(e),
        None => a.commit().await,
    };
    assert!(
        matches!(first, Err(tuskd::storage::StorageError::Full)),
        "{first:?}"
    );
    let kept = a.commit().await.expect("what the disk took is committed");
    assert!(kept > 4 * MIB as u64, "kept {kept}");
    let path = fs
        .path()
        .join("uploads")
        .join(&id.as_str()[..2])
        .join(id.as_str());
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(on_disk.len() as u64, kept, "nothing past what was kept");
    assert_eq!(
        Sha256::digest(&on_disk),
        Sha256::digest(&body[..kept as usize]),
        "the kept bytes are exact"
    );
    // Cutting back to a recorded offset frees the rest at once.
    a.truncate(MIB as u64).await.unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), MIB as u64);
    assert!(fs.free() > 6 << 20);
}

#[cfg(feature = "media")]
#[test]
fn media_work_that_runs_out_of_room_is_retried_once_space_returns() {
    use common::media::*;
    use testkit::media::Clip;

    // The work files' filesystem is small; uploads and the database live elsewhere.
    let fs = Tmpfs::mount(24 << 20);
    let elsewhere = tempfile::tempdir().unwrap();
    let clip = std::fs::read(Clip::new(1920, 1080, 6).make(elsewhere.path(), "clip.mp4")).unwrap();
    let store = elsewhere.path().join("store");
    let db = elsewhere.path().join("tuskd.db");
    let args = media_args(&[
        "--store",
        store.to_str().unwrap(),
        "--meta",
        db.to_str().unwrap(),
        "--min-free-space",
        "1MiB",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let tuskd = spawn(fs.path(), &args);
    let addr = &tuskd.addr;
    // Room to start (above twice the reserve), not to finish: the ladder's outputs (1080p,
    // 720p, 360p) take more than the disk has at all, so the run fails on a full disk if the
    // low-mark watch has not stopped it first.
    fs.fill((2 << 20) + (64 << 10));

    let id = upload(addr, &clip, "clip.mp4", "video/mp4");
    wait_until("a retry for lack of room", Duration::from_secs(120), || {
        status(addr, &id)["reason"]["code"] == "no_space"
    });
    let doc = status(addr, &id);
    assert_ne!(doc["status"], "FAILED", "{doc}");
    assert_ne!(doc["status"], "READY", "{doc}");
    let work = fs.path().join("media-work");
    wait_until("the work files removed", Duration::from_secs(10), || {
        std::fs::read_dir(&work).map_or(true, |mut d| d.next().is_none())
    });

    fs.unfill();
    let (doc, _) = wait_done(addr, &id);
    assert_eq!(doc["status"], "READY", "{doc}");
    assert!(!variants(&doc, "hls").is_empty(), "{doc}");
    assert!(std::fs::read_dir(&work).map_or(true, |mut d| d.next().is_none()));
}
