//! The cluster tests' harness (tests/cluster.rs): PostgreSQL 15, moto's S3, tuskd nodes on
//! them, HAProxy in front, a webhook receiver, tus-js-client runs and slow clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use testkit::S3Server;
use testkit::postgres::Postgres;

use crate::common::{Tuskd, request};

/// The cluster tests start many processes each: one at a time.
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A hook event as the receiver got it: kind, event id, upload id.
pub type Delivered = Arc<Mutex<Vec<(String, String, String)>>>;

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub pg: Postgres,
    pub s3: S3Server,
    pub meta: String,
    pub hooks: String,
    pub nodes: Vec<Option<Tuskd>>,
    pub workers: Vec<Option<Tuskd>>,
    pub haproxy: Option<Child>,
    /// HAProxy's address: what clients use.
    pub lb: String,
    pub events: Delivered,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(h) = &mut self.haproxy {
            let _ = h.kill();
            let _ = h.wait();
        }
    }
}

impl Cluster {
    /// `nodes[i]`: the extra flags of node i.
    pub fn start(nodes: &[&[&str]]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let pg = Postgres::start();
        let meta = pg.database();
        let s3 = S3Server::start();
        s3.create_bucket("tuskd");
        let events: Delivered = Arc::default();
        let kept = events.clone();
        let hooks =
            crate::common::receive_events(Arc::new(Mutex::new(true)), move |kind, id, body, ok| {
                let upload = serde_json::from_str::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v["Event"]["Upload"]["ID"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                if ok {
                    kept.lock().unwrap().push((
                        kind.to_owned(),
                        id.unwrap_or_default().to_owned(),
                        upload,
                    ));
                }
            });
        let mut c = Cluster {
            haproxy: None,
            dir,
            pg,
            s3,
            meta,
            hooks,
            nodes: Vec::new(),
            workers: Vec::new(),
            lb: String::new(),
            events,
        };
        for (i, extra) in nodes.iter().enumerate() {
            let node = c.spawn(&format!("node{i}"), extra, false);
            c.nodes.push(Some(node));
        }
        c.start_haproxy();
        c
    }

    pub fn flags(&self) -> Vec<String> {
        [
            "--meta",
            &self.meta,
            "--store",
            "s3://tuskd/uploads",
            "--s3-endpoint",
            &self.s3.endpoint(),
            "--hooks-http",
            &self.hooks,
            "--hooks-enabled-events",
            "post-finish,media-ready,media-rejected,media-failed",
            "--fsync",
            "off",
            "--meta-pool",
            "8",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    pub fn spawn(&self, name: &str, extra: &[&str], worker: bool) -> Tuskd {
        let data_dir = self.dir.path().join(name);
        std::fs::create_dir_all(&data_dir).unwrap();
        let flags = self.flags();
        let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        let env = self.s3.env();
        if worker {
            crate::common::spawn_worker(&data_dir, &args, &env)
        } else {
            crate::common::spawn_with_env(&data_dir, &args, &env)
        }
    }

    fn start_haproxy(&mut self) {
        let port = testkit::free_port();
        let servers: String = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let addr = &n.as_ref().unwrap().addr;
                format!("    server n{i} {addr} check inter 300ms fall 1 rise 1\n")
            })
            .collect();
        // Every request balanced on its own (server connections closed after each), dead
        // nodes skipped: a refused connection is sent to another node.
        let config = format!(
            "global\n    maxconn 2000\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 120s\n    \
             timeout server 120s\n    timeout http-request 60s\n    retries 3\n    \
             option redispatch\n    option http-server-close\n\
             frontend tus\n    bind 127.0.0.1:{port}\n    default_backend tuskd\n\
             backend tuskd\n    balance roundrobin\n    option httpchk GET /healthz\n{servers}"
        );
        let path = self.dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(self.dir.path().join("haproxy.log")).unwrap();
        self.haproxy = Some(
            Command::new("haproxy")
                .args(["-db", "-f"])
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("haproxy is installed (Debian's haproxy; scripts/test.sh installs it)"),
        );
        self.lb = format!("127.0.0.1:{port}");
        let lb = self.lb.clone();
        let start = Instant::now();
        while !(TcpStream::connect(&lb).is_ok()
            && request(&lb, "OPTIONS", "/files/", &[], b"").0 == 200)
        {
            let log = std::fs::read_to_string(self.dir.path().join("haproxy.log"));
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "HAProxy does not answer: {log:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}/files/", self.lb)
    }

    pub fn db(&self) -> &str {
        self.meta.rsplit('/').next().unwrap()
    }

    pub fn sql(&self, sql: &str) -> String {
        self.pg.sql(self.db(), sql)
    }

    /// The node holding upload `id`'s lease (`host-pid-random`), or "" if none does.
    pub fn lease_owner(&self, id: &str) -> String {
        self.sql(&format!("SELECT owner FROM upload_locks WHERE id = '{id}'"))
    }

    /// PATCH requests each node logged for `id`.
    pub fn patches_per_node(&self, id: &str) -> Vec<usize> {
        self.patches_logged(id, "")
    }

    /// PATCH requests each node logged for `id` whose access line contains `with`.
    pub fn patches_logged(&self, id: &str, with: &str) -> Vec<usize> {
        self.nodes
            .iter()
            .map(|n| {
                n.as_ref().map_or(0, |n| {
                    let upload = format!("upload=\"{id}\"");
                    n.log
                        .lock()
                        .unwrap()
                        .iter()
                        .filter(|l| {
                            l.contains("method=PATCH") && l.contains(&upload) && l.contains(with)
                        })
                        .count()
                })
            })
            .collect()
    }

    /// The node or worker process whose pid is `pid`, killed with SIGKILL.
    pub fn kill_pid(&mut self, pid: u32) -> String {
        for (kind, list) in [("node", &mut self.nodes), ("worker", &mut self.workers)] {
            for (i, slot) in list.iter_mut().enumerate() {
                if slot.as_ref().is_some_and(|t| t.child.id() == pid) {
                    let mut t = slot.take().unwrap();
                    t.child.kill().unwrap();
                    t.child.wait().unwrap();
                    return format!("{kind} {i}");
                }
            }
        }
        panic!("no process of the cluster has pid {pid}");
    }

    /// Delivered events of `kind` for `upload`.
    pub fn delivered(&self, kind: &str, upload: &str) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _, u)| k == kind && u == upload)
            .map(|(_, id, _)| id.clone())
            .collect()
    }
}

/// tus-js-client, run by tests/js/cluster-client.mjs; its stdout lines as they come.
pub struct Client {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
    /// Reads the client's stdout until it closes.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    pub fn start(args: &[&str]) -> Client {
        let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
        let mut child = Command::new("node")
            .arg(js.join("cluster-client.mjs"))
            .args(args)
            .current_dir(&js)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (scripts/test.sh installs it and tus-js-client)");
        let out = child.stdout.take().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let kept = lines.clone();
        let reader = std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(l);
            }
        });
        Client {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// The value of the first `KEY value` line, once there is one.
    pub fn wait_line(&mut self, key: &str, within: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(v) = self.line(key) {
                return v;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                // Every line it printed, once the reader has seen its stdout close.
                if let Some(reader) = self.reader.take() {
                    reader.join().unwrap();
                }
                return self.line(key).unwrap_or_else(|| {
                    panic!("the client exited ({status}) before printing {key}")
                });
            }
            assert!(start.elapsed() < within, "no {key} line within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn line(&self, key: &str) -> Option<String> {
        let prefix = format!("{key} ");
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
    }

    pub fn count(&self, key: &str) -> usize {
        let prefix = format!("{key} ");
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .count()
    }

    /// Waits for the upload to finish; returns its URL.
    pub fn done(&mut self) -> String {
        let url = self.wait_line("done", Duration::from_secs(180));
        let status = self.child.wait().unwrap();
        assert!(status.success(), "tus-js-client failed: {status}");
        url
    }
}

pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

pub fn path_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap();
    rest[rest.find('/').unwrap()..].to_owned()
}

pub fn id_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

pub fn sha_through(addr: &str, url: &str) -> Vec<u8> {
    let (status, _, body) = request(addr, "GET", &path_of(url), &[], b"");
    assert_eq!(status, 200, "GET {url}");
    Sha256::digest(&body).to_vec()
}

/// A TCP relay to `upstream` whose uplink carries at most `rate` bytes/s (a slow client's
/// network); returns its address.
pub fn throttled_relay(upstream: &str, rate: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let upstream = upstream.to_owned();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut client_r, mut server_w) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n @ 1..) = client_r.read(&mut buf) {
                    if server_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
                }
                let _ = server_w.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
                let _ = client.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    addr
}

/// A PATCH whose body goes out at about 8 MiB/s; the server's answer, if one came.
pub fn patch_slowly(addr: &str, path: &str, offset: usize, body: &[u8]) -> Option<String> {
    patch_at(addr, path, offset, body, 8 << 20)
}

/// A PATCH whose body goes out at about `rate` bytes/s; the server's answer, if one came.
pub fn patch_at(addr: &str, path: &str, offset: usize, body: &[u8], rate: usize) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    for piece in body.chunks(64 << 10) {
        // The server stops reading when another node takes the upload over.
        if s.write_all(piece).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_secs_f64(piece.len() as f64 / rate as f64));
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Some(String::from_utf8_lossy(&out).into_owned()).filter(|t| !t.is_empty())
}
