//! Harness for the tus conformance suite.
//!
//! `start()` runs tuskd in-process on 127.0.0.1:0 with a fresh data directory, unless
//! `TUSKD_SPEC_URL` names the creation URL of a running server (e.g.
//! `http://127.0.0.1:1080/files/`), in which case every test talks to that server instead.
//! Tests that need a particular server setting ask for it with `start_with` and are skipped
//! (with a note on stderr) against an external server.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tuskd::storage::object::open::StoreLocation;

pub use base64::Engine as _;
pub use base64::engine::general_purpose::STANDARD as B64;

/// A server under test.
pub struct Server {
    /// The creation URL, ending in `/`.
    pub endpoint: String,
    client: Client<HttpConnector, Full<Bytes>>,
    _tmp: Option<tempfile::TempDir>,
    /// Where an in-process server keeps upload bytes.
    store: Option<StoreLocation>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A response, body read in full.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn has(&self, name: &str) -> bool {
        self.headers.contains_key(name)
    }

    pub fn offset(&self) -> u64 {
        self.header("upload-offset")
            .and_then(|v| v.parse().ok())
            .expect("Upload-Offset")
    }

    pub fn location(&self) -> &str {
        self.header("location").expect("Location")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The in-process server's settings unless a test says otherwise.
pub fn default_config(dir: &std::path::Path) -> tuskd::Config {
    let mut c = tuskd::Config::new(dir);
    c.listen = "127.0.0.1:0".into();
    c.max_size = Some(1 << 30);
    c.read_timeout = Duration::from_secs(10);
    c.shutdown_timeout = Duration::from_secs(5);
    c.fsync = false;
    // The protocol tests don't depend on how much free space the machine's disk has left.
    c.min_free_space = tuskd::space::Reserve::Bytes(0);
    // Protocol tests upload bytes that are no media: the pipeline would reject and delete them.
    c.media = None;
    // TUSKD_SPEC_STORE runs the in-process servers on another store, e.g. s3://bucket/prefix
    // (with the AWS_* variables naming the endpoint and credentials).
    if let Some(store) = std::env::var("TUSKD_SPEC_STORE")
        .ok()
        .filter(|s| !s.is_empty())
    {
        c.store = StoreLocation::parse(&store).expect("TUSKD_SPEC_STORE is a --store value");
        c.part_size = tuskd::storage::object::MIN_PART_SIZE;
    }
    c
}

pub fn external_url() -> Option<String> {
    std::env::var("TUSKD_SPEC_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The server every test uses by default.
pub async fn start() -> Server {
    match external_url() {
        Some(url) => Server::external(url),
        None => start_in_process(|_| {}).await,
    }
}

/// An in-process server with adjusted settings; `None` (skip) against an external server.
pub async fn start_with(adjust: impl FnOnce(&mut tuskd::Config)) -> Option<Server> {
    if external_url().is_some() {
        eprintln!("skipped: needs an in-process server with particular settings");
        return None;
    }
    Some(start_in_process(adjust).await)
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn start_in_process(adjust: impl FnOnce(&mut tuskd::Config)) -> Server {
    start_in_dir(tempfile::tempdir().expect("temp dir"), adjust).await
}

/// An in-process server on an existing data directory (e.g. one `stop` handed back).
pub async fn start_in_dir(
    tmp: tempfile::TempDir,
    adjust: impl FnOnce(&mut tuskd::Config),
) -> Server {
    let mut config = default_config(tmp.path());
    adjust(&mut config);
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let endpoint = format!("http://{addr}{}", config.base_path);
    let store = Some(config.store.clone());
    let app = tuskd::App::open(config).await.expect("open app");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tuskd::run(listener, app, async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    Server {
        endpoint,
        client: client(),
        _tmp: Some(tmp),
        store,
        shutdown: Some(tx),
        task: Some(task),
    }
}

impl Server {
    fn external(endpoint: String) -> Server {
        let endpoint = if endpoint.ends_with('/') {
            endpoint
        } else {
            format!("{endpoint}/")
        };
        Server {
            endpoint,
            client: client(),
            _tmp: None,
            store: None,
            shutdown: None,
            task: None,
        }
    }

    /// The data directory of an in-process server.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self._tmp.as_ref().map(|t| t.path())
    }

    /// Whether an in-process server's storage holds upload `id` finished, `len` bytes long: its
    /// file on local disk, or its object (not a tail, not a multipart upload) on moto.
    pub fn stores_finished(&self, id: &str, len: u64) -> bool {
        match self.store.as_ref().expect("an in-process server") {
            StoreLocation::Local(root) => {
                let file = root.join("uploads").join(&id[..2]).join(id);
                std::fs::metadata(file).is_ok_and(|m| m.len() == len)
            }
            StoreLocation::Object(url) => {
                let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
                let moto = testkit::S3Client::at(&endpoint)
                    .expect("AWS_ENDPOINT_URL names a moto server on 127.0.0.1");
                let prefix = url.path().trim_matches('/');
                let key = if prefix.is_empty() {
                    id.to_owned()
                } else {
                    format!("{prefix}/{id}")
                };
                moto.size(url.host_str().expect("a bucket"), &key) == Some(len)
            }
        }
    }

    /// Whether an in-process server's storage holds anything of upload `id`: its file on local
    /// disk, or objects named after it in the bucket of a local moto server (AWS_ENDPOINT_URL).
    pub fn stores_bytes_of(&self, id: &str) -> bool {
        match self.store.as_ref().expect("an in-process server") {
            StoreLocation::Local(root) => root.join("uploads").join(&id[..2]).join(id).exists(),
            StoreLocation::Object(url) => {
                let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
                let moto = testkit::S3Client::at(&endpoint)
                    .expect("AWS_ENDPOINT_URL names a moto server on 127.0.0.1");
                let bucket = url.host_str().expect("a bucket");
                let mut keys = moto.keys(bucket);
                keys.extend(moto.multipart_keys(bucket));
                keys.iter().any(|k| k.contains(id))
            }
        }
    }

    /// Stops an in-process server the way SIGTERM does, waits for it to finish, and hands
    /// back its data directory.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
        self._tmp.take()
    }

    /// An absolute URL for a path or URL the server handed out.
    pub fn url(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            return location.to_owned();
        }
        let origin_end = self.endpoint.find("://").map(|i| i + 3).unwrap_or(0);
        let host_end = self.endpoint[origin_end..]
            .find('/')
            .map(|i| i + origin_end)
            .unwrap_or(self.endpoint.len());
        format!("{}{}", &self.endpoint[..host_end], location)
    }

    pub fn host_port(&self) -> String {
        let rest = self.endpoint.split("://").nth(1).expect("scheme");
        rest.split('/').next().expect("host").to_owned()
    }

    /// The path of the creation URL.
    pub fn base_path(&self) -> String {
        let rest = self.endpoint.split("://").nth(1).expect("scheme");
        rest[rest.find('/').unwrap_or(rest.len())..].to_owned()
    }

    /// Sends a request; headers are appended, so a name may repeat.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).expect("method"))
            .uri(self.url(url))
            .body(Full::new(body.into()))
            .expect("request");
        for (k, v) in headers {
            req.headers_mut().append(
                HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                HeaderValue::from_bytes(v.as_bytes()).expect("header value"),
            );
        }
        let resp = self.client.request(req).await.expect("response");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn options(&self) -> Resp {
        self.send("OPTIONS", &self.endpoint.clone(), &[], Bytes::new())
            .await
    }

    /// POST with `Tus-Resumable` and the given extra headers.
    pub async fn post(&self, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Resp {
        let mut h = vec![("Tus-Resumable", "1.0.0")];
        h.extend_from_slice(headers);
        self.send("POST", &self.endpoint.clone(), &h, body).await
    }

    /// Creates an upload of `length` bytes and returns its absolute URL.
    pub async fn create(&self, length: u64) -> String {
        let r = self
            .post(&[("Upload-Length", &length.to_string())], Bytes::new())
            .await;
        assert_eq!(r.status, 201, "create: {}", r.text());
        self.url(r.location())
    }

    pub async fn head(&self, url: &str) -> Resp {
        self.send("HEAD", url, &[("Tus-Resumable", "1.0.0")], Bytes::new())
            .await
    }

    pub async fn patch(&self, url: &str, offset: u64, data: impl Into<Bytes>) -> Resp {
        self.patch_with(url, offset, &[], data).await
    }

    pub async fn patch_with(
        &self,
        url: &str,
        offset: u64,
        extra: &[(&str, &str)],
        data: impl Into<Bytes>,
    ) -> Resp {
        let off = offset.to_string();
        let mut h = vec![
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Offset", off.as_str()),
            ("Content-Type", "application/offset+octet-stream"),
        ];
        h.extend_from_slice(extra);
        self.send("PATCH", url, &h, data).await
    }

    pub async fn delete(&self, url: &str) -> Resp {
        self.send("DELETE", url, &[("Tus-Resumable", "1.0.0")], Bytes::new())
            .await
    }

    pub async fn get(&self, url: &str, extra: &[(&str, &str)]) -> Resp {
        self.send("GET", url, extra, Bytes::new()).await
    }

    /// Creates an upload and sends all of `data`; returns its URL.
    pub async fn upload(&self, data: &[u8]) -> String {
        let url = self.create(data.len() as u64).await;
        if !data.is_empty() {
            let r = self.patch(&url, 0, Bytes::copy_from_slice(data)).await;
            assert_eq!(r.status, 204, "patch: {}", r.text());
        }
        url
    }

    /// Opens a raw connection and sends the head of a PATCH declaring `content_length` bytes
    /// plus `first` of them, leaving the request unfinished. The stream is returned for the
    /// test to stall, continue or drop.
    pub async fn open_patch(
        &self,
        url: &str,
        offset: u64,
        content_length: u64,
        first: &[u8],
    ) -> TcpStream {
        let mut s = TcpStream::connect(self.host_port()).await.expect("connect");
        let path = path_of(&self.url(url));
        let head = format!(
            "PATCH {path} HTTP/1.1\r\nHost: {}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n\
             Content-Type: application/offset+octet-stream\r\nContent-Length: {content_length}\r\n\r\n",
            self.host_port()
        );
        s.write_all(head.as_bytes()).await.expect("write head");
        s.write_all(first).await.expect("write body");
        s.flush().await.expect("flush");
        s
    }

    /// Polls HEAD until `want` holds, for up to `limit`; returns the last response.
    pub async fn head_until(
        &self,
        url: &str,
        limit: Duration,
        want: impl Fn(&Resp) -> bool,
    ) -> Resp {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let r = self.head(url).await;
            if want(&r) || tokio::time::Instant::now() >= deadline {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Reads a raw HTTP/1.1 response head (and whatever body bytes came with it) from a stream.
pub async fn read_raw_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn path_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest[rest.find('/').unwrap_or(rest.len())..].to_owned()
}

/// Deterministic test bytes.
pub fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

pub fn b64(s: &[u8]) -> String {
    B64.encode(s)
}

pub fn sha1_b64(data: &[u8]) -> String {
    use sha1::Digest;
    B64.encode(sha1::Sha1::digest(data))
}

pub fn sha256_b64(data: &[u8]) -> String {
    use sha2::Digest;
    B64.encode(sha2::Sha256::digest(data))
}
