//! `tuskd upload` against the real server: a 64 MiB file through a proxy that cuts the
//! connection twice mid-PATCH, SIGINT and a rerun that resumes at the server's offset,
//! `--parallel 4`, `--wait` until READY, the answers 413 and 460, the progress bar in a
//! terminal (tmux), and bearer tokens against `tuskd serve --auth jwt` (tokens from `tuskd
//! token`): uploads with `--token` or `TUSKD_TOKEN`, clear failures without or with a refused
//! token, and another owner's token never resuming the first owner's upload.

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
        self.stored_as(url, None)
    }

    /// The stored bytes of the upload at `url`, read with `token`.
    fn stored_as(&self, url: &str, token: Option<&str>) -> Vec<u8> {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("Authorization", b.as_str()))
            .collect();
        let (status, _, body) = request(&self.server.addr, "GET", &path_of(url), &headers, b"");
        assert_eq!(status, 200, "GET {url}");
        body
    }

    /// A server with `--auth jwt` and a fresh HMAC secret (`jwt-secret`, mode 600).
    fn authenticated() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let secret = write_secret(&dir.path().join("jwt-secret"));
        let server = spawn(
            &dir.path().join("data"),
            &[
                "--auth",
                "jwt",
                "--auth-jwt-secret-file",
                secret.to_str().unwrap(),
            ],
        );
        Setup { dir, server }
    }

    /// A token for `sub` signed with the server's secret, from `tuskd token`.
    fn token(&self, sub: &str) -> String {
        mint(&self.dir.path().join("jwt-secret"), sub, "10m")
    }
}

/// `/files/ID` of an upload URL.
fn path_of(url: &str) -> String {
    format!("/files/{}", url.rsplit('/').next().unwrap())
}

/// A random HMAC secret at `path` (base64 text, as an operator would make one), mode 600.
fn write_secret(path: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let random: [u8; 32] = rand::random();
    let text: String = random.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(path, text + "\n").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_owned()
}

/// `tuskd token --secret-file SECRET --sub SUB --ttl TTL`.
fn mint(secret: &Path, sub: &str, ttl: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "--secret-file"])
        .arg(secret)
        .args(["--sub", sub, "--ttl", ttl])
        .output()
        .unwrap();
    assert!(out.status.success(), "tuskd token: {:?}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// HEAD of the upload at `url` with `token`: its status and offset.
fn head_as(addr: &str, url: &str, token: &str) -> (u16, Option<u64>) {
    let bearer = format!("Bearer {token}");
    let (status, head, _) = request(
        addr,
        "HEAD",
        &path_of(url),
        &[("Authorization", &bearer)],
        b"",
    );
    (
        status,
        header(&head, "upload-offset").and_then(|o| o.parse().ok()),
    )
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

#[test]
fn a_token_uploads_and_a_missing_or_refused_one_fails_clearly() {
    let s = Setup::authenticated();
    let alice = s.token("alice");
    let endpoint = format!("http://{}/files/", s.server.addr);
    let bytes = data(3 * MIB + 7);
    let file = s.file("holiday.bin", &bytes);
    let leaks = |out: &Output, token: &str| {
        let (stdout, stderr) = text(out);
        assert!(
            !stdout.contains(token) && !stderr.contains(token),
            "the token is never printed: {stdout} {stderr}"
        );
    };

    // Without a token: a clear failure, at once (a 401 is no transient error).
    let out = s
        .upload(&endpoint, &[&file], &[])
        .env_remove("TUSKD_TOKEN")
        .output()
        .unwrap();
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the server needs credentials") && stderr.contains("no token was sent"),
        "{stderr}"
    );
    assert!(!stderr.contains("retrying"), "not retried: {stderr}");

    // With one: the upload works, and the token is in neither the output nor the state file.
    let out = s
        .upload(
            &endpoint,
            &[&file],
            &["--token", &alice, "--chunk-size", "1MiB"],
        )
        .output()
        .unwrap();
    leaks(&out, &alice);
    let url = printed_url(&out);
    assert_eq!(sha(&s.stored_as(&url, Some(&alice))), sha(&bytes));
    let state = std::fs::read_to_string(s.state()).unwrap();
    assert!(state.contains(&path_of(&url)), "{state}");
    assert!(
        !state.contains(&alice),
        "no token in the state file: {state}"
    );
    // The same from TUSKD_TOKEN; a rerun finds the upload done.
    let out = s
        .upload(&endpoint, &[&file], &[])
        .env("TUSKD_TOKEN", &alice)
        .output()
        .unwrap();
    leaks(&out, &alice);
    assert_eq!(printed_url(&out), url);
    // --help names the variable, not its value.
    let out = Command::new(BIN)
        .args(["upload", "--help"])
        .env("TUSKD_TOKEN", &alice)
        .output()
        .unwrap();
    assert!(text(&out).0.contains("TUSKD_TOKEN"), "{:?}", text(&out));
    leaks(&out, &alice);

    // A token the server refuses (signed with another secret): the server's reason, no retry,
    // and the remembered upload is not given up for a new one (its HEAD got a 401, not a 404).
    let forged = mint(
        &write_secret(&s.dir.path().join("other-secret")),
        "alice",
        "10m",
    );
    let other = s.file("other.bin", &data(1000));
    let out = s
        .upload(&endpoint, &[&file, &other], &["--token", &forged])
        .output()
        .unwrap();
    leaks(&out, &forged);
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "the server refused the credentials: invalid token: the signature does not verify"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("retrying"), "not retried: {stderr}");
    assert!(
        stderr.contains("other.bin: not tried: the server refused the credentials"),
        "the next file is not tried with the same credentials: {stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(s.state()).unwrap(),
        state,
        "the state is as it was"
    );

    // A refused token on a new upload's POST: the server's message from the body.
    let out = s
        .upload(&endpoint, &[&other], &["--token", &forged])
        .output()
        .unwrap();
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the server refused the credentials: ")
            && stderr.contains("the signature does not verify"),
        "{stderr}"
    );

    // --token and an Authorization --header are one too many.
    let out = s
        .upload(
            &endpoint,
            &[&file],
            &["--token", &alice, "--header", "Authorization: Bearer x"],
        )
        .output()
        .unwrap();
    leaks(&out, &alice);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("give one of them"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn another_owners_token_does_not_resume_the_first_owners_upload() {
    let s = Setup::authenticated();
    let (alice, bob) = (s.token("alice"), s.token("bob"));
    let proxy = FaultProxy::start(&format!("http://{}", s.server.addr));
    let endpoint = format!("{}/files/", proxy.endpoint());
    let bytes = data(4 * MIB + 99);
    let file = s.file("talk.mov", &bytes);

    // Alice's upload breaks off after 1 MiB, and she gives up for now (--retries 0).
    proxy.inject(patches(), Fault::CutAfter(MIB), Some(1));
    let out = s
        .upload(&endpoint, &[&file], &["--token", &alice, "--retries", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    wait_for("the proxy to go quiet", || proxy.busy() == 0);
    proxy.clear();
    let doc: Value = serde_json::from_slice(&std::fs::read(s.state()).unwrap()).unwrap();
    let first = doc["uploads"].as_object().unwrap().values().next().unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    // Every byte that reached the server before the cut is kept.
    let at = MIB as u64;
    wait_for("alice's first MiB on the server", || {
        head_as(&s.server.addr, &first, &alice).1 == Some(at)
    });

    // For Bob, Alice's upload does not exist.
    assert_eq!(head_as(&s.server.addr, &first, &bob), (404, None));
    let bearer = format!("Bearer {bob}");
    let (status, _, _) = request(
        &s.server.addr,
        "PATCH",
        &path_of(&first),
        &[
            ("Authorization", &bearer),
            ("Upload-Offset", &at.to_string()),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        b"bob",
    );
    assert_eq!(status, 404, "Bob cannot write into Alice's upload");

    // Bob with the same file and Alice's state: the remembered upload answers 404, so his is
    // a new one, and Alice's stays as it was.
    let bobs_state = s.dir.path().join("bob-state.json");
    std::fs::copy(s.state(), &bobs_state).unwrap();
    let mut c = Command::new(BIN);
    c.arg("upload")
        .arg(&file)
        .args(["--url", &endpoint, "--token", &bob, "--state"])
        .arg(&bobs_state);
    let out = c.output().unwrap();
    let bobs = printed_url(&out);
    assert_ne!(bobs, first, "Bob's upload is not Alice's");
    assert!(
        text(&out)
            .1
            .contains("not for these credentials; starting a new one"),
        "{:?}",
        text(&out)
    );
    assert_eq!(sha(&s.stored_as(&bobs, Some(&bob))), sha(&bytes));
    assert_eq!(head_as(&s.server.addr, &first, &alice), (200, Some(at)));
    assert_eq!(head_as(&s.server.addr, &bobs, &alice), (404, None));

    // Alice, with a fresh token (same owner), resumes her own upload where it stopped.
    let fresh = mint(&s.dir.path().join("jwt-secret"), "alice", "20m");
    assert_ne!(fresh, alice);
    let out = s
        .upload(&endpoint, &[&file], &["--token", &fresh])
        .output()
        .unwrap();
    assert_eq!(printed_url(&out), first);
    let stderr = text(&out).1;
    assert!(
        stderr.contains(&format!("resuming at {at} bytes")),
        "{stderr}"
    );
    assert_eq!(sha(&s.stored_as(&first, Some(&alice))), sha(&bytes));
}
