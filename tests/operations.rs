//! What operators run tuskd with: JSON logs with one access line per request (and nothing a
//! client sent in them but the method and the request id), `X-Request-Id`, `/healthz` and
//! `/readyz` (503 naming the store while the S3 server is down, 200 once it is back), and the
//! `tuskd health` command a container health check runs.

use base64::Engine as _;
use serde_json::Value;
use testkit::S3Server;

mod common;
use common::*;

fn access_lines(t: &Tuskd) -> Vec<Value> {
    t.log
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v["target"] == "tuskd::access")
        .collect()
}

#[test]
fn json_access_lines_carry_what_operators_need_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let t = spawn(dir.path(), &["--log-format", "json"]);
    let secret_name = "passport-scan-of-alice.pdf";
    let meta = format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode(secret_name)
    );
    let (code, head, _) = request(
        &t.addr,
        "POST",
        "/files/",
        &[
            ("Upload-Length", "5"),
            ("Upload-Metadata", &meta),
            ("Authorization", "Bearer hunter2-token"),
            ("X-Request-Id", "req-from-the-proxy-1"),
        ],
        b"",
    );
    assert_eq!(code, 201);
    assert_eq!(
        header(&head, "x-request-id").as_deref(),
        Some("req-from-the-proxy-1")
    );
    let path = header(&head, "location").unwrap();
    let path = format!("/files/{}", path.rsplit('/').next().unwrap());
    let id = path.rsplit('/').next().unwrap().to_owned();
    let (code, head, _) = request(
        &t.addr,
        "PATCH",
        &path,
        &[
            ("Upload-Offset", "0"),
            ("Content-Type", "application/offset+octet-stream"),
            ("Cookie", "session=cookie-secret"),
        ],
        b"hello",
    );
    assert_eq!(code, 204);
    let made = header(&head, "x-request-id").unwrap();
    assert_eq!(made.len(), 32, "a request id is made when none is sent");
    let (code, _, _) = request(&t.addr, "HEAD", &path, &[], b"");
    assert_eq!(code, 200);
    let (code, _, _) = request(&t.addr, "GET", "/files/nosuchupload", &[], b"");
    assert_eq!(code, 404);

    wait_for("four access lines", || access_lines(&t).len() >= 4);
    let lines = access_lines(&t);
    let f = |i: usize| &lines[i]["fields"];
    assert_eq!(
        (
            f(0)["method"].as_str(),
            f(0)["route"].as_str(),
            f(0)["status"].as_u64()
        ),
        (Some("POST"), Some("create"), Some(201))
    );
    assert_eq!(f(0)["upload"], id.as_str());
    assert_eq!(f(0)["request_id"], "req-from-the-proxy-1");
    assert_eq!(
        (
            f(1)["route"].as_str(),
            f(1)["status"].as_u64(),
            f(1)["bytes_in"].as_u64()
        ),
        (Some("patch"), Some(204), Some(5))
    );
    assert_eq!(f(1)["upload"], id.as_str());
    assert_eq!(f(1)["request_id"], made.as_str());
    assert!(f(1)["ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        (f(2)["route"].as_str(), f(2)["bytes_out"].as_u64()),
        (Some("head"), Some(0))
    );
    assert_eq!(
        (f(3)["route"].as_str(), f(3)["status"].as_u64()),
        (Some("download"), Some(404))
    );
    let all = t.log.lock().unwrap().join("\n");
    for secret in ["hunter2", "cookie-secret", secret_name, meta.as_str()] {
        assert!(!all.contains(secret), "{secret} reached the log");
    }
}

fn health_cli(addr: &str, extra: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(BIN)
        .args(["health", "--listen", addr])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn readiness_follows_the_store_and_the_health_command_follows_readiness() {
    let mut s3 = S3Server::start();
    s3.create_bucket("ops");
    let dir = tempfile::tempdir().unwrap();
    let t = spawn_with_env(
        dir.path(),
        &[
            "--store",
            "s3://ops/up",
            "--s3-endpoint",
            &s3.endpoint(),
            "--store-timeout",
            "2s",
        ],
        &s3.env(),
    );
    let ready = |t: &Tuskd| {
        let (code, _, body) = request(&t.addr, "GET", "/readyz", &[], b"");
        (code, serde_json::from_slice::<Value>(&body).unwrap())
    };
    let (code, doc) = ready(&t);
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["checks"]["storage"], "ok");
    assert_eq!(health_cli(&t.addr, &[]).0, 0);
    assert_eq!(request(&t.addr, "GET", "/healthz", &[], b"").0, 200);

    s3.stop();
    wait_for("readiness to see the store gone", || ready(&t).0 == 503);
    let (_, doc) = ready(&t);
    assert_eq!(doc["failing"], serde_json::json!(["storage"]), "{doc}");
    assert!(doc["checks"]["storage"].as_str().unwrap() != "ok");
    let (code, out) = health_cli(&t.addr, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("503"), "{out}");
    // Alive all the same: an orchestrator must not restart it for the store's sake.
    assert_eq!(health_cli(&t.addr, &["--live"]).0, 0);

    s3.restart();
    s3.create_bucket("ops");
    wait_for("readiness to see the store back", || ready(&t).0 == 200);

    // Nothing listening: not healthy.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (code, out) = health_cli(&format!("127.0.0.1:{port}"), &[]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn readiness_is_checked_at_most_once_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let t = spawn(dir.path(), &[]);
    let db = rusqlite::Connection::open_with_flags(
        dir.path().join("tuskd.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    // Every check writes the time into the health row: probes in a burst, concurrent and in a
    // row, share one check per second.
    let started = std::time::Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let handles: Vec<_> = (0..5)
            .map(|_| {
                let addr = t.addr.clone();
                std::thread::spawn(move || request(&addr, "GET", "/readyz", &[], b"").0)
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 200);
        }
        let at: i64 = db
            .query_row("SELECT at FROM health WHERE id = 1", [], |r| r.get(0))
            .unwrap();
        seen.insert(at);
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(
        seen.len() as f64 <= secs.ceil() + 1.0,
        "{} checks for 50 probes in {secs:.2}s",
        seen.len()
    );
    let (code, _, _) = request(&t.addr, "POST", "/readyz", &[], b"");
    assert_eq!(code, 405);
}

#[cfg(feature = "media")]
#[test]
fn readiness_includes_the_media_workers() {
    let dir = tempfile::tempdir().unwrap();
    let t = spawn(dir.path(), &["--media", "on", "--media-workers", "2"]);
    let (code, _, body) = request(&t.addr, "GET", "/readyz", &[], b"");
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (code, doc["checks"]["media"].as_str()),
        (200, Some("ok")),
        "{doc}"
    );
}

/// Scrapes `path` on `addr` and parses it with a Prometheus text-format parser.
fn scrape(addr: &str) -> (String, prometheus_parse::Scrape) {
    let (code, head, body) = request(addr, "GET", "/metrics", &[], b"");
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    let text = String::from_utf8(body).unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).unwrap();
    (text, parsed)
}

/// The value of `name` whose labels include every pair of `labels`.
fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref h) => h.last().map_or(0.0, |b| b.count),
            _ => 0.0,
        })
        .sum()
}

#[test]
fn metrics_count_a_known_workload_with_bounded_labels() {
    let dir = tempfile::tempdir().unwrap();
    let t = spawn(dir.path(), &[]);
    let ids: Vec<String> = (0..3).map(|_| create(&t.addr, 5)).collect();
    for path in &ids[..2] {
        let (code, _, _) = request(
            &t.addr,
            "PATCH",
            path,
            &[
                ("Upload-Offset", "0"),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            b"hello",
        );
        assert_eq!(code, 204);
    }
    assert_eq!(request(&t.addr, "DELETE", &ids[2], &[], b"").0, 204);
    assert_eq!(
        request(
            &t.addr,
            "HEAD",
            "/files/0123456789abcdef0123456789abcdef",
            &[],
            b""
        )
        .0,
        404
    );
    let (code, _, _) = request(&t.addr, "GET", &ids[0], &[], b"");
    assert_eq!(code, 200);

    let (text, s) = scrape(&t.addr);
    let v = |name: &str, labels: &[(&str, &str)]| value(&s, name, labels);
    assert_eq!(v("tuskd_uploads_created_total", &[]), 3.0, "{text}");
    assert_eq!(v("tuskd_uploads_finished_total", &[]), 2.0);
    assert_eq!(v("tuskd_uploads_terminated_total", &[]), 1.0);
    assert_eq!(v("tuskd_bytes_received_total", &[]), 10.0);
    assert_eq!(
        v(
            "tuskd_requests_total",
            &[("method", "PATCH"), ("route", "patch"), ("status", "204")]
        ),
        2.0
    );
    assert_eq!(
        v("tuskd_errors_total", &[("code", "ERR_UPLOAD_NOT_FOUND")]),
        1.0
    );
    assert_eq!(
        v(
            "tuskd_store_written_bytes_total",
            &[("backend", "local"), ("operation", "append")]
        ),
        10.0
    );
    assert_eq!(
        v(
            "tuskd_store_read_bytes_total",
            &[("backend", "local"), ("operation", "read")]
        ),
        5.0
    );
    assert_eq!(v("tuskd_patch_duration_seconds_count", &[]), 2.0, "{text}");
    assert_eq!(v("tuskd_patches_in_progress", &[]), 0.0);
    assert!(
        v("tuskd_connections_open", &[]) >= 1.0,
        "the scrape's own connection"
    );
    assert_eq!(v("tuskd_outbox_pending", &[]), 0.0);
    // No label holds an id.
    for path in &ids {
        let id = path.rsplit('/').next().unwrap();
        assert!(!text.contains(id), "{id} in the metrics");
    }
    for sample in &s.samples {
        for (k, val) in sample.labels.iter() {
            assert!(val.len() < 40, "{k}={val}");
        }
    }
}

#[test]
fn metrics_can_have_a_listener_of_their_own_or_be_off() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let own = format!("127.0.0.1:{port}");
    let t = spawn(dir.path(), &["--metrics-listen", &own]);
    assert_eq!(request(&t.addr, "GET", "/metrics", &[], b"").0, 404);
    create(&t.addr, 1);
    let (_, s) = scrape(&own);
    assert_eq!(value(&s, "tuskd_uploads_created_total", &[]), 1.0);
    drop(t);
    let dir = tempfile::tempdir().unwrap();
    let t = spawn(dir.path(), &["--metrics", "off"]);
    assert_eq!(request(&t.addr, "GET", "/metrics", &[], b"").0, 404);
}
