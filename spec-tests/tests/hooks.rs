//! Hooks with real scripts and a real webhook receiver on 127.0.0.1: pre-create rejects,
//! amends metadata, sets the id; pre-terminate refuses; pre-finish shapes the response; hooks
//! that fail, hang or print garbage turn into 500 without touching an upload. The event is
//! tusd v2's JSON, read here the way a tusd hook script reads it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use spec_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tuskd::hooks::{HookConfig, HookType, Target};
use tuskd::storage::object::open::StoreLocation;

fn script(dir: &Path, event: &str, body: &str) {
    let path = dir.join(event);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An in-process server with these hooks, on local disk whatever TUSKD_SPEC_STORE says: these
/// tests look at the stored files and at `Storage` in the events.
async fn start_local(config: HookConfig) -> Option<Server> {
    start_with(move |c| {
        c.store = StoreLocation::Local(c.data_dir.clone());
        c.hooks = Some(config);
    })
    .await
}

fn scripts_config(dir: &Path, timeout: Duration) -> HookConfig {
    HookConfig {
        timeout,
        ..HookConfig::new(Target::Scripts(dir.to_path_buf()))
    }
}

async fn with_scripts(dir: &Path, timeout: Duration) -> Option<Server> {
    let config = scripts_config(dir, timeout);
    start_local(config).await
}

/// Uploads the server stores, by the files under its data directory (local disk).
fn stored_uploads(s: &Server) -> usize {
    walk(&s.data_dir().unwrap().join("uploads"))
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| match e.path().is_dir() {
                true => walk(&e.path()),
                false => 1,
            })
            .sum()
    })
}

/// A pre-create hook in tusd v2's documented format: the event on stdin, the answer on stdout.
const TOKEN_CHECK: &str = r#"#!/usr/bin/env python3
import json, sys
event = json.load(sys.stdin)["Event"]
auth = event["HTTPRequest"]["Header"].get("Authorization", [""])[0]
meta = event["Upload"]["MetaData"]
if auth != "Bearer letmein":
    print(json.dumps({"RejectUpload": True, "HTTPResponse": {
        "StatusCode": 403, "Body": "no valid token\n", "Header": {"X-Reason": "token"}}}))
elif "filename" in meta:
    print(json.dumps({"ChangeFileInfo": {"MetaData": {
        "filename": "checked-" + meta["filename"], "size": str(event["Upload"]["Size"])}}}))
"#;

#[tokio::test]
async fn pre_create_script_rejects_with_its_status_body_and_headers() {
    let hooks = tempfile::tempdir().unwrap();
    script(hooks.path(), "pre-create", TOKEN_CHECK);
    let Some(s) = with_scripts(hooks.path(), Duration::from_secs(20)).await else {
        return;
    };
    let r = s
        .post(
            &[
                ("Upload-Length", "5"),
                ("Upload-Metadata", &format!("filename {}", b64(b"a.mp4"))),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), "no valid token\n");
    assert_eq!(r.header("x-reason"), Some("token"));
    assert!(!r.has("location"));
    assert_eq!(
        stored_uploads(&s),
        0,
        "nothing is stored for a rejected upload"
    );
}

#[tokio::test]
async fn pre_create_script_amends_metadata() {
    let hooks = tempfile::tempdir().unwrap();
    script(hooks.path(), "pre-create", TOKEN_CHECK);
    let Some(s) = with_scripts(hooks.path(), Duration::from_secs(20)).await else {
        return;
    };
    let r = s
        .post(
            &[
                ("Upload-Length", "5"),
                ("Upload-Metadata", &format!("filename {}", b64(b"a.mp4"))),
                ("Authorization", "Bearer letmein"),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let h = s.head(&s.url(r.location())).await;
    let meta = h.header("upload-metadata").unwrap().to_owned();
    let mut pairs: Vec<&str> = meta.split(',').collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            format!("filename {}", b64(b"checked-a.mp4")),
            format!("size {}", b64(b"5"))
        ]
    );
}

#[tokio::test]
async fn pre_create_script_sets_the_id_and_bad_ids_are_refused() {
    let hooks = tempfile::tempdir().unwrap();
    script(
        hooks.path(),
        "pre-create",
        r#"#!/bin/sh
cat >/dev/null
if [ -e first-done ]; then
  echo '{"ChangeFileInfo": {"ID": "../../etc/passwd"}}'
else
  touch first-done
  echo '{"ChangeFileInfo": {"ID": "video-2026_11"}}'
fi
"#,
    );
    let Some(s) = with_scripts(hooks.path(), Duration::from_secs(20)).await else {
        return;
    };
    let r = s.post(&[("Upload-Length", "3")], Bytes::new()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.location().ends_with("/video-2026_11"), "{}", r.location());
    let url = s.url(r.location());
    assert_eq!(s.patch(&url, 0, &b"abc"[..]).await.status, 204);
    assert_eq!(s.get(&url, &[]).await.body, &b"abc"[..]);

    let r = s.post(&[("Upload-Length", "3")], Bytes::new()).await;
    assert_eq!(r.status, 500);
    assert!(r.text().starts_with("ERR_HOOK_FAILED"), "{}", r.text());
    assert!(!r.text().contains("passwd"), "hook output stays in the log");
    assert_eq!(stored_uploads(&s), 1);
}

#[tokio::test]
async fn failing_garbage_and_hanging_hooks_are_500_and_change_nothing() {
    let hooks = tempfile::tempdir().unwrap();
    let Some(s) = with_scripts(hooks.path(), Duration::from_millis(800)).await else {
        return;
    };
    let pid_file = hooks.path().join("hung.pid");
    for (body, what) in [
        ("#!/bin/sh\ncat >/dev/null\necho 'all good!'\n", "garbage"),
        (
            "#!/bin/sh\ncat >/dev/null\necho boom >&2\nexit 3\n",
            "non-zero exit",
        ),
        (
            &format!(
                "#!/bin/sh\necho $$ > {}\nexec sleep 60\n",
                pid_file.display()
            ) as &str,
            "hang",
        ),
    ] {
        script(hooks.path(), "pre-create", body);
        let r = s.post(&[("Upload-Length", "3")], Bytes::new()).await;
        assert_eq!(r.status, 500, "{what}: {}", r.text());
        assert!(
            r.text().starts_with("ERR_HOOK_FAILED"),
            "{what}: {}",
            r.text()
        );
    }
    assert_eq!(stored_uploads(&s), 0);
    // The hanging script was killed at the timeout.
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let proc = Path::new("/proc").join(pid.trim());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while proc.exists()
        && !std::fs::read_to_string(proc.join("stat")).is_ok_and(|s| s.contains(") Z "))
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let alive = proc.exists()
        && !std::fs::read_to_string(proc.join("stat")).is_ok_and(|s| s.contains(") Z "));
    assert!(!alive, "the hook process is gone");
}

#[tokio::test]
async fn pre_terminate_can_refuse_and_pre_finish_shapes_the_response() {
    let hooks = tempfile::tempdir().unwrap();
    script(
        hooks.path(),
        "pre-terminate",
        "#!/bin/sh\ncat >/dev/null\necho '{\"RejectTermination\": true, \"HTTPResponse\": {\"StatusCode\": 409, \"Body\": \"keep it\"}}'\n",
    );
    script(
        hooks.path(),
        "pre-finish",
        "#!/bin/sh\nid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[\"Event\"][\"Upload\"][\"ID\"])')\necho \"{\\\"HTTPResponse\\\": {\\\"Header\\\": {\\\"X-Finished\\\": \\\"$id\\\"}}}\"\n",
    );
    let Some(s) = with_scripts(hooks.path(), Duration::from_secs(20)).await else {
        return;
    };
    let url = s.create(4).await;
    let id = url.rsplit('/').next().unwrap().to_owned();
    let r = s.patch(&url, 0, &b"ab"[..]).await;
    assert_eq!(r.status, 204);
    assert!(
        !r.has("x-finished"),
        "pre-finish runs only when the upload finishes"
    );
    let r = s.patch(&url, 2, &b"cd"[..]).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("x-finished"), Some(id.as_str()));
    let r = s.delete(&url).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.text(), "keep it");
    assert_eq!(s.get(&url, &[]).await.body, &b"abcd"[..], "still there");
}

/// A webhook receiver on 127.0.0.1: records each request and answers from a script of
/// (status, body) replies, the last one repeated.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Receiver {
    async fn start(replies: Vec<(u16, &'static str)>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                let (head, body) = read_request(&mut conn).await;
                let (status, reply) = replies[n.min(replies.len() - 1)];
                n += 1;
                log.lock()
                    .unwrap()
                    .push((head, serde_json::from_slice(&body).unwrap_or_default()));
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            }
        });
        Receiver { url, seen }
    }
}

async fn read_request(conn: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).await.unwrap();
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < end + 4 + len {
                let n = conn.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return (head, buf[end + 4..end + 4 + len].to_vec());
        }
        if n == 0 {
            return (String::from_utf8_lossy(&buf).into_owned(), Vec::new());
        }
    }
}

async fn with_webhook(r: &Receiver, events: &[HookType]) -> Option<Server> {
    let config = HookConfig {
        enabled: events.iter().copied().collect(),
        timeout: Duration::from_secs(20),
        ..HookConfig::new(Target::Http {
            url: r.url.clone(),
            headers: vec![(
                http::HeaderName::from_static("authorization"),
                http::HeaderValue::from_static("Bearer hook-secret"),
            )],
        })
    };
    start_local(config).await
}

#[tokio::test]
async fn webhook_gets_tusd_events_and_can_reject() {
    let receiver = Receiver::start(vec![(
        200,
        r#"{"RejectUpload": true, "HTTPResponse": {"StatusCode": 422, "Body": "too big for you"}}"#,
    )])
    .await;
    let Some(s) = with_webhook(&receiver, &[HookType::PreCreate]).await else {
        return;
    };
    let r = s
        .post(
            &[
                ("Upload-Length", "1000"),
                ("Upload-Metadata", &format!("filename {}", b64(b"clip.mov"))),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.text(), "too big for you");
    let seen = receiver.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (head, event) = &seen[0];
    assert!(head.starts_with("post /hooks "), "{head}");
    assert!(head.contains("authorization: bearer hook-secret"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(event["Type"], "pre-create");
    let upload = &event["Event"]["Upload"];
    assert_eq!(upload["Size"], 1000);
    assert_eq!(upload["SizeIsDeferred"], false);
    assert_eq!(upload["Offset"], 0);
    assert_eq!(upload["MetaData"]["filename"], "clip.mov");
    assert_eq!(upload["IsPartial"], false);
    assert_eq!(upload["IsFinal"], false);
    assert_eq!(upload["Storage"]["Type"], "filestore");
    let request = &event["Event"]["HTTPRequest"];
    assert_eq!(request["Method"], "POST");
    assert_eq!(request["URI"], "/files/");
    assert_eq!(request["Header"]["Upload-Length"][0], "1000");
    assert!(
        request["RemoteAddr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(stored_uploads(&s), 0);
}

#[tokio::test]
async fn webhook_failures_are_retried_then_reported() {
    // Two 503s, then an answer that accepts.
    let receiver = Receiver::start(vec![(503, "busy"), (503, "busy"), (200, "{}")]).await;
    let Some(s) = with_webhook(&receiver, &[HookType::PreCreate]).await else {
        return;
    };
    let r = s.post(&[("Upload-Length", "3")], Bytes::new()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(receiver.seen.lock().unwrap().len(), 3);

    // A 4xx is the receiver's answer, not a hiccup: no retry, and the request fails.
    let receiver = Receiver::start(vec![(401, "who are you")]).await;
    let Some(s) = with_webhook(&receiver, &[HookType::PreCreate]).await else {
        return;
    };
    let r = s.post(&[("Upload-Length", "3")], Bytes::new()).await;
    assert_eq!(r.status, 500);
    assert!(r.text().starts_with("ERR_HOOK_FAILED"), "{}", r.text());
    assert_eq!(receiver.seen.lock().unwrap().len(), 1);
}

/// Waits (on the condition, with a deadline) until the receiver has seen `n` requests.
async fn seen_at_least(r: &Receiver, n: usize) -> Vec<(String, serde_json::Value)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen = r.seen.lock().unwrap().clone();
        if seen.len() >= n || tokio::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn event_id(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("tuskd-event-id: "))
        .expect("an event id header")
        .to_owned()
}

#[tokio::test]
async fn post_events_arrive_in_order_and_failures_are_redelivered_with_one_id() {
    // post-create fails twice, then everything is accepted.
    let receiver = Receiver::start(vec![(500, "down"), (502, "still down"), (200, "")]).await;
    let Some(s) = with_webhook(
        &receiver,
        &[
            HookType::PostCreate,
            HookType::PostReceive,
            HookType::PostFinish,
        ],
    )
    .await
    else {
        return;
    };
    let url = s.create(6).await;
    s.patch(&url, 0, &b"abc"[..]).await;
    s.patch(&url, 3, &b"def"[..]).await;
    // post-create x3, post-receive (3 bytes), post-finish.
    let seen = seen_at_least(&receiver, 5).await;
    let kinds: Vec<&str> = seen
        .iter()
        .map(|(_, e)| e["Type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "post-create",
            "post-create",
            "post-create",
            "post-receive",
            "post-finish"
        ]
    );
    let ids: Vec<String> = seen.iter().map(|(h, _)| event_id(h)).collect();
    assert!(
        ids[0] == ids[1] && ids[1] == ids[2],
        "one id for one event: {ids:?}"
    );
    assert_ne!(ids[2], ids[3]);
    assert_eq!(seen[3].1["Event"]["Upload"]["Offset"], 3);
    let finished = &seen[4].1["Event"]["Upload"];
    assert_eq!(
        (finished["Offset"].as_i64(), finished["Size"].as_i64()),
        (Some(6), Some(6))
    );
    assert_eq!(
        finished["ID"].as_str().unwrap(),
        url.rsplit('/').next().unwrap()
    );
}

#[tokio::test]
async fn undelivered_events_are_delivered_after_a_restart() {
    // Nobody listens at first: every attempt fails.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/hooks", gone.local_addr().unwrap());
    drop(gone);
    let config = HookConfig {
        enabled: [HookType::PostCreate, HookType::PostFinish]
            .into_iter()
            .collect(),
        ..HookConfig::new(Target::Http {
            url: dead_url,
            headers: vec![],
        })
    };
    let Some(s) = start_local(config).await else {
        return;
    };
    let url = s.create(2).await;
    assert_eq!(s.patch(&url, 0, &b"ok"[..]).await.status, 204);
    let dir = s.stop().await.unwrap();

    let receiver = Receiver::start(vec![(200, "")]).await;
    let config = HookConfig {
        enabled: [HookType::PostCreate, HookType::PostFinish]
            .into_iter()
            .collect(),
        ..HookConfig::new(Target::Http {
            url: receiver.url.clone(),
            headers: vec![],
        })
    };
    let _s = start_in_dir(dir, move |c| {
        c.store = StoreLocation::Local(c.data_dir.clone());
        c.hooks = Some(config);
    })
    .await;
    let seen = seen_at_least(&receiver, 2).await;
    let kinds: Vec<&str> = seen
        .iter()
        .map(|(_, e)| e["Type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["post-create", "post-finish"], "none lost, in order");
}

#[tokio::test]
async fn post_finish_script_gets_the_event_and_its_id() {
    let hooks = tempfile::tempdir().unwrap();
    let out = hooks.path().join("finished.json");
    script(
        hooks.path(),
        "post-finish",
        &format!(
            "#!/bin/sh\ncat > {out}.tmp\necho \"$TUSKD_EVENT_ID $TUS_ID $TUS_SIZE\" > {out}.env\nmv {out}.tmp {out}\n",
            out = out.display()
        ),
    );
    let Some(s) = with_scripts(hooks.path(), Duration::from_secs(20)).await else {
        return;
    };
    let url = s.upload(b"four").await;
    let id = url.rsplit('/').next().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !out.exists() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let event: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(event["Type"], "post-finish");
    assert_eq!(event["Event"]["Upload"]["ID"], id.as_str());
    let env = std::fs::read_to_string(format!("{}.env", out.display())).unwrap();
    let parts: Vec<&str> = env.split_whitespace().collect();
    assert_eq!(parts.len(), 3, "{env}");
    assert_eq!(parts[0].len(), 32, "an event id");
    assert_eq!(&parts[1..], [id.as_str(), "4"]);
}

#[tokio::test]
async fn a_post_receive_answer_can_stop_the_upload() {
    let receiver = Receiver::start(vec![(
        200,
        r#"{"StopUpload": true, "HTTPResponse": {"StatusCode": 400, "Body": "over quota\n"}}"#,
    )])
    .await;
    let config = HookConfig {
        enabled: [HookType::PostReceive].into_iter().collect(),
        progress_interval: Duration::ZERO,
        ..HookConfig::new(Target::Http {
            url: receiver.url.clone(),
            headers: vec![],
        })
    };
    let Some(s) = start_local(config).await else {
        return;
    };
    let url = s.create(100).await;
    // The client sends 10 bytes and stalls: the bytes are saved, post-receive goes out, and
    // its answer stops the PATCH.
    let mut conn = tokio::net::TcpStream::connect(s.host_port()).await.unwrap();
    let head = format!(
        "PATCH {} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: 100\r\n\r\n0123456789",
        path_of(&url)
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let resp = read_raw_response(&mut conn).await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.ends_with("over quota\n"), "{resp}");
    assert_eq!(s.head(&url).await.offset(), 10, "what arrived is kept");
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir).map_or(Vec::new(), |entries| {
        entries
            .flatten()
            .flat_map(|e| match e.path().is_dir() {
                true => files(&e.path()),
                false => vec![e.path()],
            })
            .collect()
    })
}

#[tokio::test]
async fn credentials_never_reach_the_data_directory() {
    // The receiver is down, so the events wait in the outbox on disk.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/hooks", gone.local_addr().unwrap());
    drop(gone);
    let config = |url: String| HookConfig {
        enabled: [HookType::PostCreate, HookType::PostFinish]
            .into_iter()
            .collect(),
        redact: [
            tuskd::hooks::ALWAYS_REDACTED.to_vec(),
            vec![http::HeaderName::from_static("x-api-key")],
        ]
        .concat(),
        ..HookConfig::new(Target::Http {
            url,
            headers: vec![],
        })
    };
    let secrets = [
        ("Authorization", "Bearer sekrit-bearer-1"),
        ("Cookie", "session=sekrit-cookie-2"),
        ("Proxy-Authorization", "Basic sekrit-proxy-3"),
        ("X-Api-Key", "sekrit-key-4"),
    ];
    let dead = config(dead_url);
    let Some(s) = start_local(dead).await else {
        return;
    };
    let mut headers = secrets.to_vec();
    headers.extend([("Upload-Length", "2"), ("X-Trace", "trace-kept")]);
    let r = s.post(&headers, Bytes::new()).await;
    assert_eq!(r.status, 201);
    let url = s.url(r.location());
    let mut patch = secrets.to_vec();
    patch.push(("X-Trace", "trace-kept"));
    let r = s.patch_with(&url, 0, &patch, &b"ok"[..]).await;
    assert_eq!(r.status, 204);
    let dir = s.stop().await.unwrap();
    // The metadata store may still be closing (its log file goes away when it does): read the
    // files once a listing of them can be read whole.
    let stored = loop {
        let listed = files(dir.path());
        let read: Result<Vec<_>, _> = listed
            .iter()
            .map(|p| std::fs::read(p).map(|bytes| (p.clone(), bytes)))
            .collect();
        match read {
            Ok(all) => break all,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => tokio::task::yield_now().await,
            Err(e) => panic!("reading the data directory: {e}"),
        }
    };
    assert!(stored.iter().any(|(p, _)| p.ends_with("tuskd.db")));
    for (path, bytes) in &stored {
        assert!(
            !String::from_utf8_lossy(bytes).contains("sekrit"),
            "a credential is in {}",
            path.display()
        );
    }

    let receiver = Receiver::start(vec![(200, "")]).await;
    let live = config(receiver.url.clone());
    let _s = start_in_dir(dir, move |c| {
        c.store = StoreLocation::Local(c.data_dir.clone());
        c.hooks = Some(live);
    })
    .await;
    let seen = seen_at_least(&receiver, 2).await;
    assert_eq!(seen.len(), 2);
    for (_, event) in &seen {
        let header = &event["Event"]["HTTPRequest"]["Header"];
        assert_eq!(header["X-Trace"][0], "trace-kept", "{header}");
        for (name, _) in secrets {
            assert!(header[name].is_null(), "{name} in {header}");
        }
    }
}
