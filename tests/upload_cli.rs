//! `tuskd upload` against the real server: a 64 MiB file through a proxy that cuts the
//! connection twice mid-PATCH, SIGINT and a rerun that resumes at the server's offset,
//! `--parallel 4`, `--wait` until READY, the answers 413 and 460, and the progress bar in a
//! terminal (tmux).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{BIN, Tuskd, data, header, request, spawn, wait_for};
use serde_json::Value;
use sha2::{Digest, Sha256};
use testkit::faults::{Fault, FaultProxy, Match};

const MIB: usize = 1024 * 1024;

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn patches() -> Match {
    Match {
        method: Some("PATCH"),
        ..Match::default()
    }
}

struct Setup {
    dir: tempfile::TempDir,
    server: Tuskd,
}

impl Setup {
    fn new(extra: &[&str]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let server = spawn(&dir.path().join("data"), extra);
        Setup { dir, server }
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    fn upload(&self, endpoint: &str, files: &[&Path], extra: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("upload")
            .args(files)
            .args(["--url", endpoint, "--state"])
            .arg(self.state())
            .args(extra);
        c
    }

    /// The stored bytes of the upload at `url`.
    fn stored(&self, url: &str) -> Vec<u8> {
        let path = url
            .split_once("/files/")
            .map(|(_, id)| format!("/files/{id}"));
        let (status, _, body) = request(&self.server.addr, "GET", &path.unwrap(), &[], b"");
        assert_eq!(status, 200, "GET {url}");
        body
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The upload URL printed last on stdout.
fn printed_url(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("http"))
        .unwrap_or_else(|| panic!("no URL in {stdout:?}"))
        .trim()
        .to_owned()
}

#[test]
fn a_64_mib_file_arrives_whole_through_two_cuts_mid_patch() {
    let s = Setup::new(&[]);
    let proxy = FaultProxy::start(&format!("http://{}", s.server.addr));
    proxy.inject(patches(), Fault::CutAfter(20 * MIB), Some(2));
    let bytes = data(64 * MIB);
    let file = s.file("big.bin", &bytes);
    let out = s
        .upload(&format!("{}/files/", proxy.endpoint()), &[&file], &[])
        .output()
        .unwrap();
    let url = printed_url(&out);
    assert_eq!(proxy.faulted(&patches()), 2, "both cuts happened");
    assert!(text(&out).1.contains("retrying in"), "{}", text(&out).1);
    assert_eq!(sha(&s.stored(&url)), sha(&bytes));
}

#[test]
fn after_sigint_a_rerun_resumes_at_the_servers_offset() {
    let s = Setup::new(&[]);
    let proxy = FaultProxy::start(&format!("http://{}", s.server.addr));
    // 1 MiB chunks, each held back a little: slow enough to interrupt midway.
    proxy.inject(patches(), Fault::Delay(Duration::from_millis(150)), None);
    let bytes = data(24 * MIB);
    let file = s.file("clip.bin", &bytes);
    let endpoint = format!("{}/files/", proxy.endpoint());
    let mut child = s
        .upload(&endpoint, &[&file], &["--chunk-size", "1MiB"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The state names the upload as soon as it is made; wait for some of its bytes.
    let mut path = String::new();
    wait_for("the upload in the state file", || {
        let Ok(doc) = std::fs::read(s.state()) else {
            return false;
        };
        let doc: Value = serde_json::from_slice(&doc).unwrap();
        let url = doc["uploads"]
            .as_object()
            .and_then(|m| m.values().next())
            .and_then(|e| e["url"].as_str());
        if let Some(u) = url {
            path = format!("/files/{}", u.rsplit('/').next().unwrap());
        }
        url.is_some()
    });
    wait_for("4 MiB on the server", || {
        common::offset(&s.server.addr, &path) >= 4 * MIB as u64
    });
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted: {status:?}");
    // What the proxy still holds reaches the server or not; then the offset stays.
    wait_for("the proxy to go quiet", || proxy.busy() == 0);
    let at = common::offset(&s.server.addr, &path);
    assert!(at < bytes.len() as u64, "interrupted before the end: {at}");

    proxy.clear();
    let out = s
        .upload(&endpoint, &[&file], &["--chunk-size", "1MiB"])
        .output()
        .unwrap();
    let url = printed_url(&out);
    assert!(
        url.ends_with(path.rsplit('/').next().unwrap()),
        "{url} {path}"
    );
    let stderr = text(&out).1;
    assert!(
        stderr.contains(&format!("resuming at {at} bytes")),
        "the rerun starts at the server's offset {at}: {stderr}"
    );
    assert_eq!(sha(&s.stored(&url)), sha(&bytes));
}

#[test]
fn parallel_ranges_are_joined_into_the_exact_file() {
    let s = Setup::new(&[]);
    let bytes = data(9 * MIB + 12345);
    let file = s.file("par.bin", &bytes);
    let endpoint = format!("http://{}/files/", s.server.addr);
    let out = s
        .upload(&endpoint, &[&file], &["--parallel", "4"])
        .output()
        .unwrap();
    let url = printed_url(&out);
    let id = url.rsplit('/').next().unwrap();
    let (_, head, _) = request(&s.server.addr, "HEAD", &format!("/files/{id}"), &[], b"");
    let concat = header(&head, "upload-concat").unwrap_or_default();
    assert!(concat.starts_with("final;"), "{head}");
    assert_eq!(concat.split(' ').count(), 4, "{concat}");
    assert_eq!(sha(&s.stored(&url)), sha(&bytes));

    // A rerun finds it done: the same URL, nothing sent again.
    let again = s
        .upload(&endpoint, &[&file], &["--parallel", "4"])
        .output()
        .unwrap();
    assert_eq!(printed_url(&again), url);
}

#[cfg(feature = "media")]
#[test]
fn wait_follows_processing_to_ready_and_prints_the_variants() {
    let s = Setup::new(
        &common::media::media_args(&[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let clip = testkit::media::Clip::new(320, 240, 2).make(s.dir.path(), "clip.mp4");
    let endpoint = format!("http://{}/files/", s.server.addr);
    let out = s
        .upload(&endpoint, &[&clip], &["--wait", "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let doc: Value = serde_json::from_str(stdout.trim()).unwrap();
    let media = &doc[0]["media"];
    assert_eq!(media["status"], "READY", "{doc}");
    let hls = media["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["kind"] == "hls")
        .expect("an HLS master playlist");
    let url = hls["url"].as_str().unwrap();
    let path = &url[url.find("/media/").unwrap()..];
    let (status, _, body) = request(&s.server.addr, "GET", path, &[], b"");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).starts_with("#EXTM3U"));

    // For people: the URL, then a line per variant.
    let out = s.upload(&endpoint, &[&clip], &["--wait"]).output().unwrap();
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("hls http")),
        "{stdout}"
    );
}

#[test]
fn a_refusing_server_gives_a_clear_message_and_a_failing_status() {
    let s = Setup::new(&["--max-size", "1KiB"]);
    let file = s.file("two-k.bin", &data(2048));
    let direct = format!("http://{}/files/", s.server.addr);
    let out = s.upload(&direct, &[&file], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out)
            .1
            .contains("more than the server accepts (1024 bytes)"),
        "{:?}",
        text(&out)
    );

    // 413 and 460 as the server's answers.
    let proxy = FaultProxy::start(&format!("http://{}", s.server.addr));
    let endpoint = format!("{}/files/", proxy.endpoint());
    let small = s.file("small.bin", &data(100));
    proxy.inject(
        Match {
            method: Some("POST"),
            ..Match::default()
        },
        Fault::Status(413),
        Some(1),
    );
    let out = s.upload(&endpoint, &[&small], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("refuses a request this large"),
        "{:?}",
        text(&out)
    );

    proxy.inject(patches(), Fault::Status(460), Some(1));
    let out = s
        .upload(&endpoint, &[&small], &["--checksum", "sha256"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("checksum of the bytes wrong"),
        "{:?}",
        text(&out)
    );
    // The same file goes through once the server takes it.
    let out = s
        .upload(&endpoint, &[&small], &["--checksum", "sha256"])
        .output()
        .unwrap();
    let url = printed_url(&out);
    assert_eq!(s.stored(&url), data(100));
}

#[test]
fn the_progress_bar_moves_in_a_terminal() {
    let s = Setup::new(&[]);
    let proxy = FaultProxy::start(&format!("http://{}", s.server.addr));
    proxy.inject(patches(), Fault::Delay(Duration::from_millis(200)), None);
    let file = s.file("movie.bin", &data(12 * MIB));
    let session = format!("tuskd-upload-{}", std::process::id());
    let cmd = format!(
        "{BIN} upload {} --url {}/files/ --state {} --chunk-size 1MiB; sleep 30",
        file.display(),
        proxy.endpoint(),
        s.state().display()
    );
    let started = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "10",
            "-s",
            &session,
            &cmd,
        ])
        .status()
        .unwrap();
    assert!(started.success(), "tmux runs");
    struct Kill<'a>(&'a str);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["kill-session", "-t", self.0])
                .status();
        }
    }
    let _kill = Kill(&session);
    let capture = || {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let bar_line = |screen: &str| {
        screen
            .lines()
            .find(|l| l.contains("movie.bin") && l.contains("MiB"))
            .map(str::to_owned)
    };
    let mut first = String::new();
    wait_for("a bar with bytes on it", || {
        first = bar_line(&capture()).unwrap_or_default();
        first.contains('[') && !first.contains(" 0 B/")
    });
    let mut later = String::new();
    wait_for("the bar to move", || {
        later = bar_line(&capture()).unwrap_or_default();
        !later.is_empty() && later != first
    });
    eprintln!("terminal, then:\n{first}\n{later}");
    assert!(later.contains("ETA"), "{later}");
}

#[test]
fn wait_on_a_server_without_media_says_so_at_once() {
    let s = Setup::new(&[]);
    let file = s.file("notes.bin", &data(1000));
    let endpoint = format!("http://{}/files/", s.server.addr);
    let out = s.upload(&endpoint, &[&file], &["--wait"]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.contains("/files/"),
        "the upload itself is done: {stdout}"
    );
    assert!(stderr.contains("no media status"), "{stderr}");
}
