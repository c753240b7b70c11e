//! The real `tuskd` binary on moto's S3 behind a fault proxy (testkit): parts that fail, a
//! completion that fails until the store recovers, a store that stops answering, deletes that
//! fail for one upload. Whatever the store does, no acknowledged byte is lost, every upload
//! ends up whole, post-finish goes out once, and one broken upload never holds up the others.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::{Fault, FaultProxy, Match, S3Server};

mod common;
use common::*;

const MIB: usize = 1 << 20;
const BUCKET: &str = "media";

struct Setup {
    s3: S3Server,
    proxy: FaultProxy,
    dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let proxy = FaultProxy::start(&s3.endpoint());
    Setup {
        s3,
        proxy,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Setup {
    fn spawn(&self, extra: &[&str]) -> Tuskd {
        let endpoint = self.proxy.endpoint();
        let mut args = vec![
            "--store",
            "s3://media/up",
            "--s3-endpoint",
            &endpoint,
            "--part-size",
            "5MiB",
            "--store-timeout",
            "3s",
            "--repair-interval",
            "300ms",
            "--fsync",
            "off",
        ];
        args.extend_from_slice(extra);
        spawn_with_env(self.dir.path(), &args, &self.s3.env())
    }

    /// tuskd with a post-finish webhook, and the kinds of the events delivered to it.
    fn spawn_with_post_finish_hook(&self) -> (Tuskd, Arc<Mutex<Vec<String>>>) {
        let healthy = Arc::new(Mutex::new(true));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let hook = receiver_of_kinds(healthy, Arc::default(), delivered.clone());
        let tuskd = self.spawn(&[
            "--hooks-http",
            &hook,
            "--hooks-enabled-events",
            "post-finish",
        ]);
        (tuskd, delivered)
    }

    fn keys(&self) -> Vec<String> {
        self.s3.client().keys(BUCKET)
    }
}

fn patch_headers(offset: usize) -> [(&'static str, String); 2] {
    [
        ("Upload-Offset", offset.to_string()),
        ("Content-Type", "application/offset+octet-stream".into()),
    ]
}

/// A PATCH on a fresh connection: (status, head lowercased, how long the answer took).
fn patch(addr: &str, path: &str, offset: usize, body: &[u8]) -> (u16, String, Duration) {
    let h = patch_headers(offset);
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let started = Instant::now();
    let (status, head, _) = request(addr, "PATCH", path, &h, body);
    (status, head, started.elapsed())
}

/// The upload at `path` is finished and whole, and its post-finish event went out exactly once.
fn assert_finished_once(
    t: &Setup,
    tuskd: &Tuskd,
    path: &str,
    data: &[u8],
    delivered: &Mutex<Vec<String>>,
) {
    wait_for("post-finish", || !delivered.lock().unwrap().is_empty());
    let (status, _, body) = request(&tuskd.addr, "GET", path, &[], b"");
    assert_eq!(status, 200);
    assert!(body == data, "the finished object is whole");
    // Nothing more can come: the outbox is empty.
    wait_for("an empty outbox", || {
        hooks_cli(t.dir.path(), &["list"]).1.trim().lines().count() <= 1
    });
    assert_eq!(*delivered.lock().unwrap(), ["post-finish"], "exactly once");
}

#[test]
fn a_failing_part_upload_answers_500_and_keeps_what_was_acknowledged() {
    let t = setup();
    let tuskd = t.spawn(&[]);
    let total = 12 * MIB;
    let data = data(total);
    let path = create(&tuskd.addr, total);
    let (status, _, _) = patch(&tuskd.addr, &path, 0, &data[..6 * MIB]);
    assert_eq!(status, 204);

    t.proxy.inject(Match::put_part(), Fault::Status(500), None);
    let (status, head, took) = patch(&tuskd.addr, &path, 6 * MIB, &data[6 * MIB..]);
    assert_eq!(status, 500, "{head}");
    eprintln!("failing put_part answered after {took:?}");
    assert!(t.proxy.faulted(&Match::put_part()) > 0);
    let kept = offset(&tuskd.addr, &path) as usize;
    assert!(kept >= 6 * MIB, "acknowledged bytes kept: {kept}");

    t.proxy.clear();
    resume_and_verify(&tuskd.addr, &path, kept as u64, &data);
    let id = path.rsplit('/').next().unwrap();
    assert_eq!(t.keys(), [format!("up/{id}")], "one object, no tails");
    assert_eq!(t.s3.client().multipart_uploads(BUCKET), 0);
}

#[test]
fn a_store_that_is_full_answers_507_with_what_was_kept_and_the_upload_resumes() {
    let t = setup();
    let tuskd = t.spawn(&[]);
    let total = 12 * MIB;
    let data = data(total);
    let path = create(&tuskd.addr, total);
    assert_eq!(patch(&tuskd.addr, &path, 0, &data[..6 * MIB]).0, 204);

    // MinIO over its free-space threshold, a bucket quota: 507 for every write.
    t.proxy.inject(Match::put_part(), Fault::Status(507), None);
    let (status, head, _) = patch(&tuskd.addr, &path, 6 * MIB, &data[6 * MIB..]);
    assert_eq!(status, 507, "{head}");
    let kept: usize = header(&head, "upload-offset")
        .expect("the 507 says what was kept")
        .parse()
        .unwrap();
    assert!(kept >= 6 * MIB, "acknowledged bytes kept: {kept}");
    assert_eq!(offset(&tuskd.addr, &path) as usize, kept, "HEAD agrees");

    t.proxy.clear();
    resume_and_verify(&tuskd.addr, &path, kept as u64, &data);
}

#[test]
fn a_store_that_is_down_answers_503_in_bounded_time_and_the_upload_resumes() {
    let t = setup();
    let tuskd = t.spawn(&[]);
    let total = 12 * MIB;
    let data = data(total);
    let path = create(&tuskd.addr, total);
    assert_eq!(patch(&tuskd.addr, &path, 0, &data[..6 * MIB]).0, 204);

    t.proxy.down();
    // The answer comes once the store timeout (3 s) has run out for the part and the commit,
    // not after object_store's 3-minute retry budget.
    let (status, head, took) = patch(&tuskd.addr, &path, 6 * MIB, &data[6 * MIB..]);
    eprintln!("PATCH to a store that is down answered {status} after {took:?}");
    assert_eq!(status, 503, "{head}");
    assert_eq!(header(&head, "retry-after").as_deref(), Some("5"));
    assert!(head.contains("err_store_unavailable") || status == 503);
    // HEAD needs only the metadata store: it answers while the store is down.
    let kept = offset(&tuskd.addr, &path) as usize;
    assert!(kept >= 6 * MIB, "acknowledged bytes kept: {kept}");

    t.proxy.clear();
    resume_and_verify(&tuskd.addr, &path, kept as u64, &data);
}

#[test]
fn a_failed_completion_is_finished_by_repair_and_post_finish_goes_out_once() {
    let t = setup();
    let (tuskd, delivered) = t.spawn_with_post_finish_hook();
    let total = 6 * MIB;
    let data = data(total);
    let path = create(&tuskd.addr, total);

    // The store fails every completion until it recovers.
    t.proxy.inject(Match::complete(), Fault::Status(500), None);
    let (status, head, _) = patch(&tuskd.addr, &path, 0, &data);
    assert_eq!(status, 500, "{head}");
    assert_eq!(
        offset(&tuskd.addr, &path) as usize,
        total,
        "every byte is recorded"
    );
    assert!(
        delivered.lock().unwrap().is_empty(),
        "post-finish waits for the object"
    );

    t.proxy.clear();
    assert_finished_once(&t, &tuskd, &path, &data, &delivered);
    assert_eq!(t.s3.client().multipart_uploads(BUCKET), 0);
}

#[test]
fn a_completion_cut_off_once_completes_and_post_finish_goes_out_once() {
    let t = setup();
    let (tuskd, delivered) = t.spawn_with_post_finish_hook();
    let data = data(6 * MIB);
    let path = create(&tuskd.addr, data.len());
    // The first completion's connection is cut before an answer; the store client tries
    // again and the second goes through (a failure that outlasts its retries is repair's:
    // the test above).
    t.proxy.inject(Match::complete(), Fault::Cut, Some(1));
    let (status, head, _) = patch(&tuskd.addr, &path, 0, &data);
    assert_eq!(status, 204, "{head}");
    assert_eq!(t.proxy.faulted(&Match::complete()), 1);
    assert_eq!(t.proxy.forwarded(&Match::complete()), 1);
    assert_finished_once(&t, &tuskd, &path, &data, &delivered);
}

#[test]
fn one_upload_whose_store_calls_fail_does_not_stop_repair_or_expiry_of_the_others() {
    let t = setup();
    let tuskd = t.spawn(&["--expire-after", "1s"]);
    let ids = |paths: &[String]| -> Vec<String> {
        paths
            .iter()
            .map(|p| p.rsplit('/').next().unwrap().to_owned())
            .collect()
    };

    // Repair: two finished uploads whose completion failed; then only the first keeps failing.
    t.proxy.inject(Match::complete(), Fault::Status(500), None);
    let payload = data(6 * MIB);
    let finished: Vec<String> = (0..2)
        .map(|_| {
            let p = create(&tuskd.addr, 6 * MIB);
            assert_eq!(patch(&tuskd.addr, &p, 0, &payload).0, 500);
            p
        })
        .collect();
    let [broken, fine] = &ids(&finished)[..] else {
        unreachable!()
    };
    let broken_key: &'static str = Box::leak(format!("up/{broken}?").into_boxed_str());
    t.proxy.clear();
    t.proxy
        .inject(Match::complete_of(broken_key), Fault::Status(500), None);
    wait_for("the other upload to be finished by repair", || {
        t.keys().contains(&format!("up/{fine}"))
    });
    assert!(!t.keys().contains(&format!("up/{broken}")));

    // Expiry: two unfinished uploads with a tail each; deleting the first one's objects fails.
    let unfinished: Vec<String> = (0..2)
        .map(|_| {
            let p = create(&tuskd.addr, 6 * MIB);
            assert_eq!(patch(&tuskd.addr, &p, 0, &payload[..1024]).0, 204);
            p
        })
        .collect();
    let [stuck, gone] = &ids(&unfinished)[..] else {
        unreachable!()
    };
    let stuck_key: &'static str = Box::leak(format!("up/{stuck}").into_boxed_str());
    t.proxy
        .inject(Match::delete_of(stuck_key), Fault::Status(403), None);
    let has = |id: &str| t.keys().iter().any(|k| k.contains(id));
    assert!(has(stuck) && has(gone));
    wait_for("the other upload to expire", || !has(gone));
    assert!(has(stuck), "its delete keeps failing");

    // Once the store is well again, the broken ones are done too.
    t.proxy.clear();
    wait_for("the broken upload to be finished", || {
        t.keys().contains(&format!("up/{broken}"))
    });
    wait_for("the stuck upload to expire", || !has(stuck));
    let (status, _, body) = request(&tuskd.addr, "GET", &finished[0], &[], b"");
    assert_eq!(status, 200);
    assert!(body == payload);
}

#[test]
fn connections_over_the_limit_are_refused_at_once_with_503() {
    let dir = tempfile::tempdir().unwrap();
    let t = spawn(dir.path(), &["--max-connections", "4"]);
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&t.addr).unwrap())
        .collect();
    // The four are being served (their first request is answered).
    for mut c in &held {
        write!(
            c,
            "OPTIONS /files/ HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n\r\n"
        )
        .unwrap();
        let mut buf = [0u8; 12];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[9..12], b"200");
    }
    let mut over = TcpStream::connect(&t.addr).unwrap();
    over.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    over.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    assert!(answer.contains("ERR_TOO_MANY_CONNECTIONS"), "{answer}");
    drop(held);
    // Room again once they close.
    wait_for("a free connection slot", || {
        let mut c = TcpStream::connect(&t.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let _ = write!(
            c,
            "OPTIONS /files/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut s = String::new();
        let _ = c.read_to_string(&mut s);
        s.starts_with("HTTP/1.1 200")
    });
}
