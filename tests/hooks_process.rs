//! Hooks with the real binary: an event that keeps failing becomes a dead letter, `tuskd hooks
//! list --failed` shows it, `tuskd hooks retry ID` re-drives it; the scripts and the receiver
//! in examples/hooks work as documented; hook settings are checked at start.

use std::process::Command;
use std::sync::{Arc, Mutex};

mod common;
use common::*;

#[test]
fn dead_letters_are_listed_and_retried_from_the_command_line() {
    let healthy = Arc::new(Mutex::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = receiver(healthy.clone(), seen.clone());
    let dir = tempfile::tempdir().unwrap();
    let t = spawn(
        dir.path(),
        &[
            "--hooks-http",
            &url,
            "--hooks-enabled-events",
            "post-create",
            "--hook-max-attempts",
            "2",
        ],
    );
    let path = create(&t.addr, 10);
    let id = path.rsplit('/').next().unwrap().to_owned();

    // Two failed deliveries (the second a backoff later), then a dead letter.
    let mut listed = String::new();
    wait_for("a dead letter", || {
        listed = hooks_cli(dir.path(), &["list", "--failed"]).1;
        listed.contains(&id)
    });
    let line = listed.lines().find(|l| l.contains(&id)).unwrap();
    let event = line.split_whitespace().next().unwrap().to_owned();
    assert!(
        line.contains("post-create") && line.contains(" dead "),
        "{line}"
    );
    assert!(line.contains("500"), "the last error is shown: {line}");
    assert_eq!(*seen.lock().unwrap(), vec![event.clone(), event.clone()]);

    // The receiver is fixed; the operator re-drives the event.
    *healthy.lock().unwrap() = true;
    let (code, out) = hooks_cli(dir.path(), &["retry", &event]);
    assert_eq!(code, 0, "{out}");
    wait_for("the redelivery", || seen.lock().unwrap().len() == 3);
    assert_eq!(seen.lock().unwrap()[2], event, "the same event id");
    wait_for("an empty outbox", || {
        !hooks_cli(dir.path(), &["list"]).1.contains(&event)
    });

    let (code, out) = hooks_cli(dir.path(), &["retry", "no-such-event"]);
    assert_ne!(code, 0);
    assert!(out.contains("no event no-such-event"), "{out}");
    drop(t);
}

#[test]
fn hook_settings_are_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (
            &["--hooks-dir", ".", "--hooks-http", "http://127.0.0.1:9/"][..],
            "not both",
        ),
        (&["--hooks-http", "127.0.0.1:9"][..], "--hooks-http"),
        (
            &[
                "--hooks-http",
                "http://127.0.0.1:9/",
                "--hooks-enabled-events",
                "post-upload",
            ][..],
            "post-upload",
        ),
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hooks");

fn post(addr: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut h = vec![("Upload-Length", "4")];
    h.extend_from_slice(headers);
    let (status, head, _) = request(addr, "POST", "/files/", &h, b"");
    (status, head)
}

#[test]
fn example_scripts_check_the_token_and_notify() {
    let healthy = Arc::new(Mutex::new(true));
    let notified = Arc::new(Mutex::new(Vec::new()));
    let notify_url = receiver(healthy, notified.clone());
    let dir = tempfile::tempdir().unwrap();
    let t = spawn_with_env(
        dir.path(),
        &["--hooks-dir", EXAMPLES],
        &[
            ("HOOK_BEARER_TOKEN", "s3cret".into()),
            ("NOTIFY_URL", notify_url),
        ],
    );
    let (status, head) = post(&t.addr, &[("Authorization", "Bearer guess")]);
    assert_eq!(status, 401, "{head}");
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    let (status, head) = post(
        &t.addr,
        &[
            ("Authorization", "Bearer s3cret"),
            ("Upload-Metadata", "filename YS5tcDQ="),
        ],
    );
    assert_eq!(status, 201, "{head}");
    let path = format!(
        "/files/{}",
        header(&head, "location")
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
    );
    let (_, head, _) = request(&t.addr, "HEAD", &path, &[], b"");
    let meta = header(&head, "upload-metadata").unwrap();
    // The helper lowercases response heads: compare likewise.
    assert!(
        meta.contains(&"checked_by cHJlLWNyZWF0ZQ==".to_ascii_lowercase()),
        "{meta}"
    );
    let (status, _, _) = request(
        &t.addr,
        "PATCH",
        &path,
        &[
            ("Upload-Offset", "0"),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        b"abcd",
    );
    assert_eq!(status, 204);
    wait_for("the post-finish notification", || {
        notified.lock().unwrap().len() == 1
    });
    assert_eq!(notified.lock().unwrap()[0].len(), 32, "with the event id");
}

#[test]
fn example_receiver_checks_the_token() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let python = std::env::var("TUSKD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(python)
        .arg(format!("{EXAMPLES}/receiver.py"))
        .args(["--port", &port.to_string()])
        .env("HOOK_BEARER_TOKEN", "s3cret")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the receiver", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let dir = tempfile::tempdir().unwrap();
    let t = spawn(
        dir.path(),
        &["--hooks-http", &format!("http://127.0.0.1:{port}/")],
    );
    let (status, _) = post(&t.addr, &[]);
    assert_eq!(status, 401);
    let (status, _) = post(&t.addr, &[("Authorization", "Bearer s3cret")]);
    assert_eq!(status, 201);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn shutdown_keeps_to_its_timeout_while_a_hook_delivery_hangs() {
    // A receiver that takes the event and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let taken = Arc::new(Mutex::new(Vec::new()));
    let held = taken.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            held.lock().unwrap().push(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut t = spawn(
        dir.path(),
        &[
            "--hooks-http",
            &url,
            "--hooks-enabled-events",
            "post-create",
            "--hook-timeout",
            "120s",
            "--shutdown-timeout",
            "1s",
        ],
    );
    create(&t.addr, 10);
    wait_for("the delivery to start", || {
        !taken.lock().unwrap().is_empty()
    });
    let started = std::time::Instant::now();
    let code = sigterm(&mut t);
    let took = started.elapsed();
    eprintln!("shutdown with a hanging hook delivery took {took:?}");
    assert_eq!(code, Some(0));
    // Bounded by --shutdown-timeout, not by the 120 s the hook may take (generous margin).
    assert!(
        took < std::time::Duration::from_secs(60),
        "shutdown took {took:?}"
    );
    // The event was not delivered: it waits in the outbox for the next start.
    let (code, out) = hooks_cli(dir.path(), &["list"]);
    assert_eq!(code, 0);
    assert!(out.contains("post-create"), "{out}");
}
