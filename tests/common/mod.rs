//! Helpers for tests that run the real `tuskd` binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub const BIN: &str = env!("CARGO_BIN_EXE_tuskd");

pub struct Tuskd {
    pub child: Child,
    pub addr: String,
    /// Every line tuskd logged after it started listening.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Tuskd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn(data_dir: &Path, extra: &[&str]) -> Tuskd {
    spawn_with_env(data_dir, extra, &[])
}

/// `tuskd serve` with `--tls-cert` and `--tls-key` among `extra`: ready once it listens on
/// https.
pub fn spawn_tls(data_dir: &Path, extra: &[&str]) -> Tuskd {
    spawn_command(
        &["serve", "--listen", "127.0.0.1:0"],
        data_dir,
        extra,
        &[],
        "listening on https://",
    )
}

pub fn spawn_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, String)]) -> Tuskd {
    spawn_command(
        &["serve", "--listen", "127.0.0.1:0"],
        data_dir,
        extra,
        env,
        "listening on http://",
    )
}

/// `tuskd worker`, once it runs jobs (`addr` is empty: it listens on nothing).
pub fn spawn_worker(data_dir: &Path, extra: &[&str], env: &[(&str, String)]) -> Tuskd {
    spawn_command(&["worker"], data_dir, extra, env, "running media jobs")
}

/// Starts `tuskd COMMAND… --data-dir DIR EXTRA…` and waits for the log line containing `ready`;
/// `addr` is what follows `listening on http://` in it, if anything.
fn spawn_command(
    command: &[&str],
    data_dir: &Path,
    extra: &[&str],
    env: &[(&str, String)],
    ready: &str,
) -> Tuskd {
    let mut child = Command::new(BIN)
        .args(command)
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env("TUSKD_LOG", "info")
        // The media pipeline would reject (and delete) test bytes; media tests pass --media on.
        .env("TUSKD_MEDIA", "off")
        // Only tests/disk_full.rs is about free space (its --min-free-space wins over this).
        .env("TUSKD_MIN_FREE_SPACE", "0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tuskd");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("tuskd exited before {ready:?}"))
            .unwrap();
        if let Some(rest) = line.split(ready).nth(1) {
            break rest.split('/').next().unwrap_or_default().to_owned();
        }
    };
    // Keep draining the log so the child never blocks on a full pipe; TUSKD_TEST_LOG=1 shows it.
    let show = std::env::var_os("TUSKD_TEST_LOG").is_some();
    let log = Arc::new(Mutex::new(Vec::new()));
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if show {
                eprintln!("tuskd: {line}");
            }
            kept.lock().unwrap().push(line);
        }
    });
    Tuskd { child, addr, log }
}

/// Sends one HTTP/1.1 request (with `Tus-Resumable` and `Connection: close`) on a fresh
/// connection, whose answer is then read from the stream returned.
pub fn send_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> TcpStream {
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
    // A server may answer before the whole body is in (an error) and close: read its answer.
    let _ = s.write_all(body);
    s
}

/// One HTTP/1.1 request on a fresh connection; returns (status, headers lowercased, body).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = send_request(addr, method, path, headers, body);
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

pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
}

pub fn offset(addr: &str, path: &str) -> u64 {
    let (status, head, _) = request(addr, "HEAD", path, &[], b"");
    assert_eq!(status, 200);
    header(&head, "upload-offset").unwrap().parse().unwrap()
}

pub fn wait_offset(addr: &str, path: &str, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = offset(addr, path);
        if o == want || Instant::now() > deadline {
            return o;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn create(addr: &str, len: usize) -> String {
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

pub fn open_patch(addr: &str, path: &str, offset: u64, total: usize, first: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {total}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(first).unwrap();
    s
}

pub fn data(n: usize) -> Vec<u8> {
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

/// Sends the rest of `data` from `offset`, downloads the upload and checks it by SHA-256.
pub fn resume_and_verify(addr: &str, path: &str, offset: u64, data: &[u8]) {
    let (status, _, _) = request(
        addr,
        "PATCH",
        path,
        &[
            ("Upload-Offset", &offset.to_string()),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        &data[offset as usize..],
    );
    assert_eq!(status, 204);
    let (status, _, body) = request(addr, "GET", path, &[], b"");
    assert_eq!(status, 200);
    assert_eq!(
        Sha256::digest(&body),
        Sha256::digest(data),
        "the finished upload matches by SHA-256"
    );
}

/// A webhook receiver that answers 500 until `healthy` is set, then 200; records event ids.
pub fn receiver(healthy: Arc<Mutex<bool>>, seen: Arc<Mutex<Vec<String>>>) -> String {
    receiver_of_kinds(healthy, seen, Arc::default())
}

/// `receiver`, also recording the kind of each event delivered (answered 200).
pub fn receiver_of_kinds(
    healthy: Arc<Mutex<bool>>,
    seen: Arc<Mutex<Vec<String>>>,
    delivered: Arc<Mutex<Vec<String>>>,
) -> String {
    receive_events(healthy, move |kind, id, _body, ok| {
        if let Some(id) = id {
            seen.lock().unwrap().push(id.to_owned());
        }
        if ok {
            delivered.lock().unwrap().push(kind.to_owned());
        }
    })
}

/// A webhook receiver that answers 500 until `healthy` is set, then 200, and tells `on` of
/// every request: the event's kind, its Tuskd-Event-Id, the body, and whether it answered 200.
pub fn receive_events(
    healthy: Arc<Mutex<bool>>,
    on: impl Fn(&str, Option<&str>, &str, bool) + Send + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            // Read the head and the announced body.
            let (head, body_len) = loop {
                let n = conn.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break (String::new(), 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap_or(0));
                    while buf.len() < end + 4 + len {
                        let n = conn.read(&mut chunk).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break (head, len);
                }
            };
            let body = String::from_utf8_lossy(&buf[buf.len() - body_len.min(buf.len())..]);
            let kind = body
                .split("\"Type\":\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned();
            let id = head
                .lines()
                .find_map(|l| l.strip_prefix("tuskd-event-id: "));
            let status = if *healthy.lock().unwrap() { 200 } else { 500 };
            on(&kind, id, &body, status == 200);
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    url
}

pub fn hooks_cli(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("hooks")
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

pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM to tuskd and waits for it to exit; returns its exit code.
pub fn sigterm(t: &mut Tuskd) -> Option<i32> {
    let pid = t.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -TERM {pid}");
    t.child.wait().unwrap().code()
}
pub mod media;
