//! Several tuskd nodes on one Postgres and one S3-compatible store, behind HAProxy balancing
//! round-robin, with media workers on some nodes and a standalone `tuskd worker`: every
//! component real and on 127.0.0.1 (PostgreSQL 15 and HAProxy from Debian, moto's S3 server,
//! tus-js-client under Node), stopped by PID when the test ends.

// The second, media-less run of the tests in scripts/test.sh would repeat these minutes.
#![cfg(feature = "media")]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Tuskd, data, header, request, wait_for};
use sha2::{Digest, Sha256};
use testkit::S3Server;
use testkit::postgres::Postgres;

/// The cluster tests start many processes each: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A hook event as the receiver got it: kind, event id, upload id.
type Delivered = Arc<Mutex<Vec<(String, String, String)>>>;

struct Cluster {
    dir: tempfile::TempDir,
    pg: Postgres,
    s3: S3Server,
    meta: String,
    hooks: String,
    nodes: Vec<Option<Tuskd>>,
    workers: Vec<Option<Tuskd>>,
    haproxy: Child,
    /// HAProxy's address: what clients use.
    lb: String,
    events: Delivered,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.haproxy.kill();
        let _ = self.haproxy.wait();
    }
}

impl Cluster {
    /// `nodes[i]`: the extra flags of node i.
    fn start(nodes: &[&[&str]]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let pg = Postgres::start();
        let meta = pg.database();
        let s3 = S3Server::start();
        s3.create_bucket("tuskd");
        let events: Delivered = Arc::default();
        let kept = events.clone();
        let hooks =
            common::receive_events(Arc::new(Mutex::new(true)), move |kind, id, body, ok| {
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
            haproxy: Command::new("true").spawn().unwrap(),
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

    fn flags(&self) -> Vec<String> {
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

    fn spawn(&self, name: &str, extra: &[&str], worker: bool) -> Tuskd {
        let data_dir = self.dir.path().join(name);
        std::fs::create_dir_all(&data_dir).unwrap();
        let flags = self.flags();
        let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        let env = self.s3.env();
        if worker {
            common::spawn_worker(&data_dir, &args, &env)
        } else {
            common::spawn_with_env(&data_dir, &args, &env)
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
        self.haproxy = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("haproxy is installed (Debian's haproxy; scripts/test.sh installs it)");
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

    fn endpoint(&self) -> String {
        format!("http://{}/files/", self.lb)
    }

    fn db(&self) -> &str {
        self.meta.rsplit('/').next().unwrap()
    }

    fn sql(&self, sql: &str) -> String {
        self.pg.sql(self.db(), sql)
    }

    /// PATCH requests each node logged for `id`.
    fn patches_per_node(&self, id: &str) -> Vec<usize> {
        self.patches_logged(id, "")
    }

    /// PATCH requests each node logged for `id` whose access line contains `with`.
    fn patches_logged(&self, id: &str, with: &str) -> Vec<usize> {
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
    fn kill_pid(&mut self, pid: u32) -> String {
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
    fn delivered(&self, kind: &str, upload: &str) -> Vec<String> {
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
struct Client {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Client {
    fn start(args: &[&str]) -> Client {
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
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(l);
            }
        });
        Client { child, lines }
    }

    /// The value of the first `KEY value` line, once there is one.
    fn wait_line(&mut self, key: &str, within: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(v) = self.line(key) {
                return v;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread may not have caught up with the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return self.line(key).unwrap_or_else(|| {
                    panic!("the client exited ({status}) before printing {key}")
                });
            }
            assert!(start.elapsed() < within, "no {key} line within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn line(&self, key: &str) -> Option<String> {
        let prefix = format!("{key} ");
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
    }

    fn count(&self, key: &str) -> usize {
        let prefix = format!("{key} ");
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .count()
    }

    /// Waits for the upload to finish; returns its URL.
    fn done(&mut self) -> String {
        let url = self.wait_line("done", Duration::from_secs(180));
        let status = self.child.wait().unwrap();
        assert!(status.success(), "tus-js-client failed: {status}");
        url
    }
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn path_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap();
    rest[rest.find('/').unwrap()..].to_owned()
}

fn id_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

fn sha_through(addr: &str, url: &str) -> Vec<u8> {
    let (status, _, body) = request(addr, "GET", &path_of(url), &[], b"");
    assert_eq!(status, 200, "GET {url}");
    Sha256::digest(&body).to_vec()
}

#[test]
fn uploads_through_haproxy_land_on_every_node_and_survive_a_node_killed_mid_patch() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Cluster::start(&[
        &["--media", "off"],
        &["--media", "off"],
        &["--media", "off"],
    ]);
    let files = tempfile::tempdir().unwrap();

    // Chunks of one upload go to different nodes.
    let bytes = data(12 << 20);
    let file = write_file(files.path(), "chunks.bin", &bytes);
    let chunks =
        Client::start(&["upload", &c.endpoint(), file.to_str().unwrap(), "1048576"]).done();
    assert_eq!(sha_through(&c.lb, &chunks), Sha256::digest(&bytes).to_vec());
    let per_node = c.patches_per_node(&id_of(&chunks));
    assert_eq!(per_node.iter().sum::<usize>(), 12, "{per_node:?}");
    assert!(
        per_node.iter().all(|&n| n > 0),
        "round-robin spreads the PATCHes over the nodes: {per_node:?}"
    );

    // parallelUploads: partial uploads on several nodes, the final one assembled by one.
    let bytes = data(9 << 20);
    let file = write_file(files.path(), "parallel.bin", &bytes);
    let parallel = Client::start(&["parallel", &c.endpoint(), file.to_str().unwrap(), "4"]).done();
    assert_eq!(
        sha_through(&c.lb, &parallel),
        Sha256::digest(&bytes).to_vec()
    );

    // Two clients race on one upload from two nodes.
    let raced = race(&c);

    // A node killed while it serves a PATCH: the client resumes through HAProxy elsewhere.
    let bytes = data(24 << 20);
    let file = write_file(files.path(), "killed.bin", &bytes);
    let uplink = throttled_relay(&c.lb, 6 << 20);
    let mut slow = Client::start(&[
        "upload",
        &format!("http://{uplink}/files/"),
        file.to_str().unwrap(),
        &(8 << 20).to_string(),
    ]);
    let url = slow.wait_line("url", Duration::from_secs(30));
    let id = id_of(&url);
    let lb = c.lb.clone();
    wait_for("the first chunk is stored", || {
        let (_, head, _) = request(&lb, "HEAD", &path_of(&url), &[], b"");
        header(&head, "upload-offset").is_some_and(|o| o.parse::<u64>().unwrap() >= 8 << 20)
    });
    let mut owner = String::new();
    wait_for("a node holds the upload for a PATCH", || {
        owner = c.sql(&format!("SELECT owner FROM upload_locks WHERE id = '{id}'"));
        !owner.is_empty()
    });
    let offset_before: u64 = c
        .sql(&format!("SELECT \"offset\" FROM uploads WHERE id = '{id}'"))
        .parse()
        .unwrap();
    // owner: host-pid-random.
    let pid: u32 = owner.rsplit('-').nth(1).unwrap().parse().unwrap();
    let killed = c.kill_pid(pid);
    eprintln!("killed {killed} (pid {pid}) mid-PATCH at offset {offset_before}");
    let url = slow.done();
    assert_eq!(sha_through(&c.lb, &url), Sha256::digest(&bytes).to_vec());
    assert!(
        slow.count("retry") > 0,
        "the client saw its PATCH fail with the node and retried"
    );

    // Every post-finish event went out exactly once, though three dispatchers ran.
    wait_for("the outbox is empty", || {
        c.sql("SELECT count(*) FROM hook_events") == "0"
    });
    let all = c.events.lock().unwrap().clone();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (_, id, _) in &all {
        *ids.entry(id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "events delivered more than once: {twice:?}"
    );
    for url in [&chunks, &parallel, &raced, &url] {
        assert_eq!(
            c.delivered("post-finish", &id_of(url)).len(),
            1,
            "one post-finish for {url}"
        );
    }
}

/// Two clients send the same file to one upload, one through node 0 and one through node 1,
/// each resuming from the server's offset whenever the other takes over. Returns its URL.
fn race(c: &Cluster) -> String {
    let bytes = Arc::new(data(16 << 20));
    let a = c.nodes[0].as_ref().unwrap().addr.clone();
    let b = c.nodes[1].as_ref().unwrap().addr.clone();
    let path = common::create(&a, bytes.len());
    let runner = |addr: String, delay: Duration| {
        let (bytes, path) = (bytes.clone(), path.clone());
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                assert!(Instant::now() < deadline, "the race does not end");
                let (status, head, _) = request(&addr, "HEAD", &path, &[], b"");
                assert_eq!(status, 200);
                let offset: usize = header(&head, "upload-offset").unwrap().parse().unwrap();
                if offset == bytes.len() {
                    return;
                }
                patch_slowly(&addr, &path, offset, &bytes[offset..]);
            }
        })
    };
    let first = runner(a.clone(), Duration::ZERO);
    let second = runner(b, Duration::from_millis(700));
    first.join().unwrap();
    second.join().unwrap();
    // They took the upload over from each other: a node asked to let go commits what it has
    // and answers 400 (ERR_UPLOAD_INTERRUPTED, as tusd), the other goes on from there.
    let id = id_of(&path);
    let (all, interrupted) = (c.patches_per_node(&id), c.patches_logged(&id, "status=400"));
    assert!(
        all[0] > 0 && all[1] > 0 && interrupted.iter().sum::<usize>() > 0,
        "PATCHes per node {all:?}, of them interrupted by the other node {interrupted:?}"
    );
    let (status, _, body) = request(&a, "GET", &path, &[], b"");
    assert_eq!(status, 200);
    assert_eq!(
        Sha256::digest(&body),
        Sha256::digest(&bytes[..]),
        "exact bytes"
    );
    format!("http://{a}{path}")
}

/// A TCP relay to `upstream` whose uplink carries at most `rate` bytes/s (a slow client's
/// network); returns its address.
fn throttled_relay(upstream: &str, rate: usize) -> String {
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
fn patch_slowly(addr: &str, path: &str, offset: usize, body: &[u8]) -> Option<String> {
    patch_at(addr, path, offset, body, 8 << 20)
}

/// A PATCH whose body goes out at about `rate` bytes/s; the server's answer, if one came.
fn patch_at(addr: &str, path: &str, offset: usize, body: &[u8], rate: usize) -> Option<String> {
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

#[test]
fn media_jobs_run_once_with_workers_on_two_hosts_also_when_one_is_killed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let worker_flags: &[&str] = &[
        "--media",
        "on",
        "--media-workers",
        "1",
        "--media-lease",
        "4s",
    ];
    let ingest: &[&str] = &["--media", "on", "--media-workers", "0"];
    let mut c = Cluster::start(&[worker_flags, ingest, ingest]);
    let worker = c.spawn("worker", worker_flags, true);
    c.workers.push(Some(worker));
    let files = tempfile::tempdir().unwrap();

    let mut urls = Vec::new();
    for i in 0..3 {
        let clip = testkit::media::Clip::new(320, 240, 2).make(files.path(), &format!("c{i}.mp4"));
        let url =
            Client::start(&["upload", &c.endpoint(), clip.to_str().unwrap(), "262144"]).done();
        urls.push(url);
    }
    for url in &urls {
        wait_ready(&c, &id_of(url));
    }
    for url in &urls {
        let id = id_of(url);
        assert_eq!(
            c.sql(&format!("SELECT attempts FROM media WHERE id = '{id}'")),
            "1",
            "the job of {id} ran once"
        );
    }

    // A longer job; whichever worker process runs it is killed mid-run; the other takes it
    // over when the lease runs out.
    let clip = testkit::media::Clip::new(1280, 720, 8).make(files.path(), "long.mp4");
    let url = Client::start(&["upload", &c.endpoint(), clip.to_str().unwrap(), "1048576"]).done();
    let id = id_of(&url);
    let mut owner = String::new();
    wait_for("a worker runs the job", || {
        owner = c.sql(&format!(
            "SELECT coalesce(lease_owner, '') FROM media WHERE id = '{id}' AND status = 'PROCESSING'"
        ));
        !owner.is_empty()
    });
    // owner: pid-worker-random.
    let pid: u32 = owner.split('-').next().unwrap().parse().unwrap();
    let killed = c.kill_pid(pid);
    eprintln!("killed {killed} (pid {pid}) while it ran the media job");
    wait_ready(&c, &id);
    assert_eq!(
        c.sql(&format!("SELECT attempts FROM media WHERE id = '{id}'")),
        "2",
        "run again once, by the other worker"
    );

    // Each media-ready went out exactly once.
    wait_for("the outbox is empty", || {
        c.sql("SELECT count(*) FROM hook_events") == "0"
    });
    for u in urls.iter().chain([&url]) {
        let ready = c.delivered("media-ready", &id_of(u));
        assert_eq!(ready.len(), 1, "one media-ready for {u}: {ready:?}");
    }
}

fn wait_ready(c: &Cluster, id: &str) {
    let start = Instant::now();
    loop {
        let status = c.sql(&format!("SELECT status FROM media WHERE id = '{id}'"));
        match status.as_str() {
            "READY" => return,
            "REJECTED" | "FAILED" => panic!(
                "media job of {id} ended {status}: {}",
                c.sql(&format!("SELECT reason FROM media WHERE id = '{id}'"))
            ),
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "media job of {id} not READY ({status})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn expiry_and_start_up_repair_on_every_node_leave_an_upload_being_written_alone() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let flags: &[&str] = &["--media", "off", "--expire-after", "2s"];
    let mut c = Cluster::start(&[flags, flags, flags]);
    let (a, b) = (
        c.nodes[0].as_ref().unwrap().addr.clone(),
        c.nodes[1].as_ref().unwrap().addr.clone(),
    );
    // An idle upload expires once, whichever sweeper gets to it: 410 from every node.
    let idle = common::create(&a, 10);
    let (status, _, _) = request(
        &a,
        "PATCH",
        &idle,
        &[
            ("Upload-Offset", "0"),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        b"abc",
    );
    assert_eq!(status, 204);
    // An upload written through node 1 slower than one part (8 MiB) per expiry period: between
    // two parts its expiry passes, so the sweepers of every node find it due; a node starting
    // now repairs at start-up. It is node 1's all along.
    let bytes = data(12 << 20);
    let busy = common::create(&b, bytes.len());
    let writer = {
        let (b, busy, bytes) = (b.clone(), busy.clone(), bytes.clone());
        std::thread::spawn(move || patch_at(&b, &busy, 0, &bytes, 2 << 20))
    };
    let id = id_of(&busy);
    wait_for("node 1 holds the upload", || {
        !c.sql(&format!("SELECT owner FROM upload_locks WHERE id = '{id}'"))
            .is_empty()
    });
    let late = c.spawn("late", flags, false);
    c.nodes.push(Some(late));
    let answer = writer.join().unwrap().expect("an answer to the long PATCH");
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    let (status, _, body) = request(&c.lb, "GET", &busy, &[], b"");
    assert_eq!(status, 200, "the upload written past its expiry is whole");
    assert_eq!(Sha256::digest(&body), Sha256::digest(&bytes));
    for n in c.nodes.iter().flatten() {
        let addr = n.addr.clone();
        wait_for("the idle upload expired", || {
            request(&addr, "HEAD", &idle, &[], b"").0 == 410
        });
    }
    let idle_id = id_of(&idle);
    assert_eq!(
        c.sql(&format!("SELECT state FROM uploads WHERE id = '{idle_id}'")),
        "expired"
    );
    assert_eq!(
        c.sql(&format!(
            "SELECT count(*) FROM object_uploads WHERE id = '{idle_id}'"
        )),
        "0",
        "its objects are gone"
    );
}
