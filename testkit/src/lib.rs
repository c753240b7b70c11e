//! Test support shared by tuskd's test suites.
//!
//! `S3Server` runs moto's S3-compatible server (installed from PyPI by `scripts/test.sh`) on
//! 127.0.0.1 and a free port, for one test; dropping it stops the process by its PID. The
//! Python that has moto is `$TUSKD_TEST_PYTHON` (set by the script), else `python3`.
//! `FaultProxy` stands in front of it and fails, delays, cuts or swallows requests on command.
//! `Tmpfs` is a small filesystem of a test's own, to fill.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod clamd;
pub mod faults;
pub mod hdr;
pub mod heif_grid;
pub mod media;
pub mod pictures;
pub mod postgres;
pub mod tmpfs;
pub use faults::{Fault, FaultProxy, Match};

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts moto on `port` and waits until it answers.
fn spawn_moto(port: u16) -> Child {
    let python = std::env::var("TUSKD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(python)
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python runs");
    let client = S3Client { port };
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait on moto") {
            panic!(
                "moto's S3 server exited ({status}); install it with \
                 `python3 -m pip install 'moto[server]'` or run scripts/test.sh"
            );
        }
        if client.request("GET", "/").is_ok() {
            return child;
        }
        assert!(
            started.elapsed() < START_TIMEOUT,
            "moto's S3 server did not answer on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    /// Starts moto's server. Panics with the install command if moto is missing.
    pub fn start() -> S3Server {
        let port = free_port();
        S3Server {
            child: spawn_moto(port),
            port,
        }
    }

    /// Stops the server (its port then refuses connections).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port, empty (moto keeps nothing across a restart).
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn_moto(self.port);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> S3Client {
        S3Client { port: self.port }
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) {
        self.client().create_bucket(name)
    }

    /// Environment for tuskd or object_store to reach this server with dummy credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "tuskd-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "tuskd-test-secret".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }
}

/// Plain requests to moto on 127.0.0.1, which needs no signatures: set-up and inspection.
#[derive(Debug, Clone, Copy)]
pub struct S3Client {
    port: u16,
}

impl S3Client {
    /// A client for moto at `endpoint` (`http://127.0.0.1:PORT`).
    pub fn at(endpoint: &str) -> Option<S3Client> {
        let port = endpoint.strip_prefix("http://127.0.0.1:")?;
        Some(S3Client {
            port: port.trim_end_matches('/').parse().ok()?,
        })
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) {
        let status = self
            .request("PUT", &format!("/{name}"))
            .expect("moto answers");
        assert_eq!(status, 200, "creating bucket {name}");
    }

    /// Keys under `bucket` (up to 1,000).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let body = self
            .get(&format!("/{bucket}?list-type=2"))
            .expect("moto answers");
        tag_values(&body, "Key")
    }

    /// Size of the object `key` in `bucket`, `None` if there is none.
    pub fn size(&self, bucket: &str, key: &str) -> Option<u64> {
        let body = self
            .get(&format!("/{bucket}?list-type=2&prefix={key}"))
            .expect("moto answers");
        tag_values(&body, "Contents").iter().find_map(|c| {
            let k = tag_values(c, "Key").pop()?;
            let size = tag_values(c, "Size").pop()?;
            (k == key).then(|| size.parse().ok()).flatten()
        })
    }

    /// Multipart uploads in progress under `bucket`.
    pub fn multipart_uploads(&self, bucket: &str) -> usize {
        self.multipart_keys(bucket).len()
    }

    /// Ids of the multipart uploads in progress under `bucket`.
    pub fn multipart_ids(&self, bucket: &str) -> Vec<String> {
        let body = self
            .get(&format!("/{bucket}?uploads"))
            .expect("moto answers");
        tag_values(&body, "UploadId")
    }

    /// ETags of the objects under `bucket`.
    pub fn etags(&self, bucket: &str) -> Vec<String> {
        let body = self
            .get(&format!("/{bucket}?list-type=2"))
            .expect("moto answers");
        tag_values(&body, "ETag")
            .into_iter()
            .map(|s| {
                s.replace(['"'], "")
                    .replace("&#34;", "")
                    .replace("&quot;", "")
            })
            .collect()
    }

    /// Keys of the multipart uploads in progress under `bucket`, one per upload.
    pub fn multipart_keys(&self, bucket: &str) -> Vec<String> {
        let body = self
            .get(&format!("/{bucket}?uploads"))
            .expect("moto answers");
        body.split("<Upload>")
            .skip(1)
            .flat_map(|u| tag_values(u, "Key").into_iter().take(1))
            .collect()
    }

    fn request(&self, method: &str, path: &str) -> std::io::Result<u16> {
        let (status, _) = self.exchange(method, path)?;
        Ok(status)
    }

    fn get(&self, path: &str) -> std::io::Result<String> {
        let (_, body) = self.exchange("GET", path)?;
        Ok(body)
    }

    fn exchange(&self, method: &str, path: &str) -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        )?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status line"))?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        Ok((status, body.to_owned()))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of every `<tag>…</tag>` in `xml`, in order.
fn tag_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(open.as_str())
        .skip(1)
        .filter_map(|s| s.split(close.as_str()).next())
        .map(str::to_owned)
        .collect()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Azurite, Azure's storage emulator (installed from npm into tests/js by `scripts/test.sh`),
/// serving blobs on 127.0.0.1 and a free port for one test; dropping it stops the process.
pub struct Azurite {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

/// The emulator's well-known development account and key (public, for local use only).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn js_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/js")
}

impl Azurite {
    /// Starts Azurite's blob service. Panics with the install command if it is missing.
    pub fn start() -> Azurite {
        let bin = js_dir().join("node_modules/.bin/azurite-blob");
        assert!(
            bin.exists(),
            "Azurite is not installed: run `npm install` in tests/js, or scripts/test.sh"
        );
        let port = free_port();
        let data = tempfile::tempdir().expect("temp dir");
        let child = Command::new(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--silent", "--skipApiVersionCheck", "--location"])
            .arg(data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("azurite runs");
        let mut azurite = Azurite {
            child,
            port,
            _data: data,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = azurite.child.try_wait().expect("wait on azurite") {
                panic!("Azurite exited ({status})");
            }
            assert!(started.elapsed() < START_TIMEOUT, "Azurite did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        azurite
    }

    /// `http://127.0.0.1:PORT/devstoreaccount1`, the account's blob endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port)
    }

    /// Creates a blob container (with Azure's own JavaScript client).
    pub fn create_container(&self, name: &str) {
        let status = Command::new("node")
            .arg(js_dir().join("azure-container.mjs"))
            .args([&self.port.to_string(), name])
            .status()
            .expect("node runs");
        assert!(status.success(), "creating container {name}");
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
