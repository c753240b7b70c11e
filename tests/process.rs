//! The real `tuskd` binary: crash safety (kill -9 mid-PATCH, restart, resume), graceful
//! shutdown on SIGTERM, and how configuration errors are reported.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_tuskd");

struct Tuskd {
    child: Child,
    addr: String,
}

impl Drop for Tuskd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(data_dir: &Path, extra: &[&str]) -> Tuskd {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("TUSKD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tuskd");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("tuskd exited before listening")
            .unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split('/').next().unwrap().to_owned();
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Tuskd { child, addr }
}

/// One HTTP/1.1 request on a fresh connection; returns (status, headers lowercased, body).
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nTus-Resumable: 1.0.0\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        out[split + 4..].to_vec()
    };
    (status, head, body)
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
}

fn offset(addr: &str, path: &str) -> u64 {
    let (status, head, _) = request(addr, "HEAD", path, &[], b"");
    assert_eq!(status, 200);
    header(&head, "upload-offset").unwrap().parse().unwrap()
}

fn wait_offset(addr: &str, path: &str, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = offset(addr, path);
        if o == want || Instant::now() > deadline {
            return o;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn create(addr: &str, len: usize) -> String {
    let (status, head, _) = request(
        addr,
        "POST",
        "/files/",
        &[("Upload-Length", &len.to_string())],
        b"",
    );
    assert_eq!(status, 201);
    let loc = header(&head, "location").unwrap();
    format!("/files/{}", loc.rsplit('/').next().unwrap())
}

fn open_patch(addr: &str, path: &str, offset: u64, total: usize, first: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {total}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(first).unwrap();
    s
}

fn data(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e3779b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn kill_9_mid_patch_then_restart_resumes_with_intact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let total = 8 << 20;
    let data = data(total);
    let path;
    let acknowledged;
    {
        let t = spawn(dir.path(), &[]);
        path = create(&t.addr, total);
        let mut conn = open_patch(&t.addr, &path, 0, total, &data[..3 << 20]);
        // The server has saved these bytes (a timer checkpoint) ...
        acknowledged = wait_offset(&t.addr, &path, 3 << 20);
        assert_eq!(acknowledged, 3 << 20);
        // ... and is receiving more when it dies.
        conn.write_all(&data[3 << 20..5 << 20]).unwrap();
        let mut t = t;
        t.child.kill().unwrap(); // SIGKILL
        t.child.wait().unwrap();
    }
    let t = spawn(dir.path(), &[]);
    let resumed = offset(&t.addr, &path);
    assert!(
        resumed >= acknowledged && resumed <= 5 << 20,
        "offset after crash: {resumed}"
    );
    let id = path.rsplit('/').next().unwrap();
    let on_disk = std::fs::read(dir.path().join("uploads").join(&id[..2]).join(id)).unwrap();
    assert!(on_disk.len() as u64 >= resumed);
    assert!(
        on_disk[..resumed as usize] == data[..resumed as usize],
        "the reported bytes are intact"
    );
    let (status, _, _) = request(
        &t.addr,
        "PATCH",
        &path,
        &[
            ("Upload-Offset", &resumed.to_string()),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        &data[resumed as usize..],
    );
    assert_eq!(status, 204);
    let (status, _, body) = request(&t.addr, "GET", &path, &[], b"");
    assert_eq!(status, 200);
    assert_eq!(
        Sha256::digest(&body),
        Sha256::digest(&data),
        "final file matches by SHA-256"
    );
}

#[test]
fn sigterm_saves_running_patches_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(100_000);
    let t = spawn(dir.path(), &["--shutdown-timeout", "10s"]);
    let path = create(&t.addr, data.len());
    let mut conn = open_patch(&t.addr, &path, 0, data.len(), &data[..40_000]);
    assert_eq!(wait_offset(&t.addr, &path, 40_000), 40_000);
    let mut t = t;
    let pid = t.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = t.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
    let mut resp = String::new();
    let _ = conn.read_to_string(&mut resp);
    assert!(
        resp.starts_with("HTTP/1.1 503") && resp.contains("ERR_SERVER_SHUTDOWN"),
        "{resp}"
    );
    drop(t);
    let t = spawn(dir.path(), &[]);
    assert_eq!(offset(&t.addr, &path), 40_000);
}

fn run_expecting_failure(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn invalid_settings_exit_2_with_a_clear_message() {
    for (args, env, needle) in [
        (&["--max-size", "lots"][..], &[][..], "--max-size"),
        (
            &[][..],
            &[("TUSKD_MAX_SIZE", "12 parsecs")][..],
            "--max-size",
        ),
        (
            &["--expire-after", "tomorrow"][..],
            &[][..],
            "--expire-after",
        ),
        (&["--read-timeout", "0"][..], &[][..], "--read-timeout"),
        (&["--fsync", "maybe"][..], &[][..], "--fsync"),
        (&["--base-path", "files"][..], &[][..], "--base-path"),
    ] {
        let (code, stderr) = run_expecting_failure(args, env);
        assert_eq!(code, 2, "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn env_vars_configure_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("TUSKD_LISTEN", "127.0.0.1:0")
        .env("TUSKD_DATA_DIR", dir.path())
        .env("TUSKD_MAX_SIZE", "1KiB")
        .env("TUSKD_BASE_PATH", "/up/")
        .env("TUSKD_BEHIND_PROXY", "true")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("listening line").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            assert!(rest.contains("/up/"), "{line}");
            break rest.split('/').next().unwrap().to_owned();
        }
    };
    let (status, head, _) = request(&addr, "OPTIONS", "/up/", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(header(&head, "tus-max-size").as_deref(), Some("1024"));
    assert!(dir.path().join("tuskd.db").exists());
    let (status, head, _) = request(
        &addr,
        "POST",
        "/up/",
        &[
            ("Upload-Length", "1"),
            ("X-Forwarded-Host", "cdn.example"),
            ("X-Forwarded-Proto", "https"),
        ],
        b"",
    );
    assert_eq!(status, 201);
    assert!(
        header(&head, "location")
            .unwrap()
            .starts_with("https://cdn.example/up/"),
        "{head}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_busy_port_fails_at_start_with_a_clear_message() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot listen on"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
