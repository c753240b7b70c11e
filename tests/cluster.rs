//! Several tuskd nodes on one Postgres and one S3-compatible store, behind HAProxy balancing
//! round-robin, with media workers on some nodes and a standalone `tuskd worker`: every
//! component real and on 127.0.0.1 (PostgreSQL 15 and HAProxy from Debian, moto's S3 server,
//! tus-js-client under Node), stopped by PID when the test ends.

// The second, media-less run of the tests in scripts/test.sh would repeat these minutes.
#![cfg(feature = "media")]

mod common;
#[path = "common/cluster.rs"]
mod harness;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{data, header, request, wait_for};
use harness::{
    Client, Cluster, ONE_AT_A_TIME, id_of, patch_at, patch_slowly, path_of, sha_through,
    throttled_relay, write_file,
};
use sha2::{Digest, Sha256};

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
        owner = c.lease_owner(&id);
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
    let pid = pid_of(&owner);
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

/// The process id in a worker slot's lease owner (`host-pid-random/slot`).
fn pid_of(owner: &str) -> u32 {
    let node = owner.split('/').next().unwrap();
    node.rsplit('-').nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_long_clips_chunks_run_on_three_hosts_and_a_killed_one_costs_one_retry() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // One slot per process on two nodes and a `tuskd worker`: the first task and the three
    // chunks of a 24 s 720p clip (chunks of 8 s: two 4 s segments) spread over them.
    let worker_flags: &[&str] = &[
        "--media",
        "on",
        "--media-workers",
        "1",
        "--media-fast-workers",
        "0",
        "--media-lease",
        "4s",
        "--media-playable-from",
        "10s",
        "--media-chunk",
        "8s",
    ];
    let mut c = Cluster::start(&[worker_flags, worker_flags]);
    let worker = c.spawn("worker", worker_flags, true);
    c.workers.push(Some(worker));
    let files = tempfile::tempdir().unwrap();
    let clip = testkit::media::Clip::new(1280, 720, 24).make(files.path(), "long.mp4");
    let url = Client::start(&["upload", &c.endpoint(), clip.to_str().unwrap(), "1048576"]).done();
    let id = id_of(&url);
    let running = |c: &Cluster| {
        c.sql(&format!(
            "SELECT string_agg(name || '=' || worker, ';' ORDER BY seq) FROM media_tasks
             WHERE upload_id = '{id}' AND status = 'RUNNING' AND name LIKE 'chunk%'"
        ))
    };
    // Two chunks at once, on two hosts.
    let mut chunks: Vec<(String, u32)> = Vec::new();
    wait_for("two chunks running on two hosts", || {
        chunks = running(&c)
            .split(';')
            .filter_map(|t| t.split_once('='))
            .map(|(n, w)| (n.to_owned(), pid_of(w)))
            .collect();
        chunks.len() >= 2 && chunks[0].1 != chunks[1].1
    });
    let (victim, pid) = chunks[1].clone();
    let killed = c.kill_pid(pid);
    eprintln!("killed {killed} (pid {pid}) while it ran {victim}");
    wait_ready(&c, &id);

    // The killed chunk alone ran again; the job itself ran once.
    let attempts = c.sql(&format!(
        "SELECT string_agg(name || '=' || attempts || ' ' || status, ', ' ORDER BY seq)
         FROM media_tasks WHERE upload_id = '{id}'"
    ));
    let want: Vec<String> = [
        "360p",
        "chunk1 0:00-0:08",
        "chunk2 0:08-0:16",
        "chunk3 0:16-end",
    ]
    .iter()
    .map(|n| format!("{n}={} DONE", if *n == victim { 2 } else { 1 }))
    .collect();
    assert_eq!(attempts, want.join(", "));
    let job = c.sql(&format!("SELECT attempts FROM media WHERE id = '{id}'"));
    assert_eq!(job, "1");
    // The outputs: every rung under the master, the stills, once each, as one job makes them.
    let node = c.nodes.iter().flatten().next().unwrap().addr.clone();
    let (code, _, body) = request(&node, "GET", &format!("/media/{id}"), &[], b"");
    assert_eq!(code, 200);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let kinds: Vec<&str> = doc["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kind"].as_str().unwrap())
        .collect();
    let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
    assert_eq!(
        (count("hls"), count("rendition"), count("poster")),
        (1, 2, 1),
        "{doc}"
    );
    assert_eq!(count("audio-rendition"), 1, "{doc}");
    assert!(count("thumbnail") >= 1, "{doc}");
    let tasks = doc["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4, "{doc}");
    assert_eq!(tasks[0]["stills"], true);
    let master = doc["variants"][0]["url"].as_str().unwrap();
    assert!(master.ends_with("/master.m3u8"), "{master}");
    let path = if master.starts_with('/') {
        master.to_owned()
    } else {
        path_of(master)
    };
    let get = |path: &str| {
        let (code, _, body) = request(&node, "GET", path, &[], b"");
        assert_eq!(code, 200, "{path}");
        String::from_utf8(body).unwrap()
    };
    let text = get(&path);
    let listed: Vec<&str> = text.lines().filter(|l| l.ends_with("index.m3u8")).collect();
    assert_eq!(listed, ["r0/index.m3u8", "r1/index.m3u8"], "{text}");
    // The joined rung has the segments the whole-source rung has: as many, as long (within a
    // frame: a whole-source playlist's last is a frame short).
    let dir = path.rsplit_once('/').unwrap().0;
    let durations = |rung: &str| -> Vec<f64> {
        get(&format!("{dir}/{rung}"))
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|d| d.split(',').next().unwrap().parse().unwrap())
            .collect()
    };
    let (whole, joined) = (durations("r0/index.m3u8"), durations("r1/index.m3u8"));
    assert_eq!(whole.len(), joined.len(), "{whole:?} {joined:?}");
    for (w, j) in whole.iter().zip(&joined) {
        assert!((w - j).abs() <= 1.0 / 30.0 + 1e-3, "{whole:?} {joined:?}");
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
    wait_for("node 1 holds the upload", || !c.lease_owner(&id).is_empty());
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

    // A node stopped with SIGTERM mid-PATCH commits, answers and gives its leases back as it
    // exits: another node goes on at once, without waiting for the lease to run out.
    let bytes = data(12 << 20);
    let path = common::create(&b, bytes.len());
    let writer = {
        let (b, path, bytes) = (b.clone(), path.clone(), bytes.clone());
        std::thread::spawn(move || patch_at(&b, &path, 0, &bytes, 2 << 20))
    };
    let id = id_of(&path);
    wait_for("node 1 holds the upload", || !c.lease_owner(&id).is_empty());
    let mut stopped = c.nodes[1].take().unwrap();
    assert_eq!(common::sigterm(&mut stopped), Some(0), "a clean exit");
    let _ = writer.join().unwrap();
    assert_eq!(
        c.lease_owner(&id),
        "",
        "the lease was given back before the node exited"
    );
    let offset = common::offset(&a, &path);
    assert!(offset > 0, "what node 1 received before it stopped is kept");
    common::resume_and_verify(&a, &path, offset, &bytes);
}
