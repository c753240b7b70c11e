//! The real `tuskd` binary: crash safety (kill -9 mid-PATCH, restart, resume), graceful
//! shutdown on SIGTERM, and how configuration errors are reported.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

mod common;
use common::*;

#[test]
fn kill_9_mid_patch_then_restart_resumes_with_intact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let total = 8 << 20;
    let data = data(total);
    let path;
    let acknowledged;
    {
        let t = spawn(dir.path(), &[]);
        path = create(&t.addr, total);
        let mut conn = open_patch(&t.addr, &path, 0, total, &data[..3 << 20]);
        // The server has saved these bytes (a timer checkpoint) ...
        acknowledged = wait_offset(&t.addr, &path, 3 << 20);
        assert_eq!(acknowledged, 3 << 20);
        // ... and is receiving more when it dies.
        conn.write_all(&data[3 << 20..5 << 20]).unwrap();
        let mut t = t;
        t.child.kill().unwrap(); // SIGKILL
        t.child.wait().unwrap();
    }
    let t = spawn(dir.path(), &[]);
    let resumed = offset(&t.addr, &path);
    assert!(
        resumed >= acknowledged && resumed <= 5 << 20,
        "offset after crash: {resumed}"
    );
    let id = path.rsplit('/').next().unwrap();
    let on_disk = std::fs::read(dir.path().join("uploads").join(&id[..2]).join(id)).unwrap();
    assert!(on_disk.len() as u64 >= resumed);
    assert!(
        on_disk[..resumed as usize] == data[..resumed as usize],
        "the reported bytes are intact"
    );
    resume_and_verify(&t.addr, &path, resumed, &data);
}

#[test]
fn sigterm_saves_running_patches_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(100_000);
    let t = spawn(dir.path(), &["--shutdown-timeout", "10s"]);
    let path = create(&t.addr, data.len());
    let mut conn = open_patch(&t.addr, &path, 0, data.len(), &data[..40_000]);
    assert_eq!(wait_offset(&t.addr, &path, 40_000), 40_000);
    let mut t = t;
    assert_eq!(sigterm(&mut t), Some(0), "graceful shutdown exits 0");
    let mut resp = String::new();
    let _ = conn.read_to_string(&mut resp);
    assert!(
        resp.starts_with("HTTP/1.1 503") && resp.contains("ERR_SERVER_SHUTDOWN"),
        "{resp}"
    );
    drop(t);
    let t = spawn(dir.path(), &[]);
    assert_eq!(offset(&t.addr, &path), 40_000);
}

fn run_expecting_failure(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn invalid_settings_exit_2_with_a_clear_message() {
    for (args, env, needle) in [
        (&["--max-size", "lots"][..], &[][..], "--max-size"),
        (
            &[][..],
            &[("TUSKD_MAX_SIZE", "12 parsecs")][..],
            "--max-size",
        ),
        (
            &["--expire-after", "tomorrow"][..],
            &[][..],
            "--expire-after",
        ),
        (&["--read-timeout", "0"][..], &[][..], "--read-timeout"),
        (&["--fsync", "maybe"][..], &[][..], "--fsync"),
        (&["--base-path", "files"][..], &[][..], "--base-path"),
    ] {
        let (code, stderr) = run_expecting_failure(args, env);
        assert_eq!(code, 2, "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn env_vars_configure_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("TUSKD_LISTEN", "127.0.0.1:0")
        .env("TUSKD_DATA_DIR", dir.path())
        .env("TUSKD_MAX_SIZE", "1KiB")
        .env("TUSKD_BASE_PATH", "/up/")
        .env("TUSKD_BEHIND_PROXY", "true")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("listening line").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            assert!(rest.contains("/up/"), "{line}");
            break rest.split('/').next().unwrap().to_owned();
        }
    };
    let (status, head, _) = request(&addr, "OPTIONS", "/up/", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(header(&head, "tus-max-size").as_deref(), Some("1024"));
    assert!(dir.path().join("tuskd.db").exists());
    let (status, head, _) = request(
        &addr,
        "POST",
        "/up/",
        &[
            ("Upload-Length", "1"),
            ("X-Forwarded-Host", "cdn.example"),
            ("X-Forwarded-Proto", "https"),
        ],
        b"",
    );
    assert_eq!(status, 201);
    assert!(
        header(&head, "location")
            .unwrap()
            .starts_with("https://cdn.example/up/"),
        "{head}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_busy_port_fails_at_start_with_a_clear_message() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot listen on"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(feature = "media")]
#[test]
fn a_gstreamer_without_the_pipelines_elements_refuses_to_start() {
    // No plugins at all: GStreamer finds none in an empty system path, with a registry of its own.
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_expecting_failure(
        &["--media", "on"],
        &[
            ("GST_PLUGIN_SYSTEM_PATH_1_0", dir.path().to_str().unwrap()),
            ("GST_PLUGIN_PATH_1_0", dir.path().to_str().unwrap()),
            (
                "GST_REGISTRY_1_0",
                dir.path().join("registry.bin").to_str().unwrap(),
            ),
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("x264enc (gstreamer1.0-plugins-ugly)")
            && stderr.contains("hlssink2 (gstreamer1.0-plugins-bad)")
            && stderr.contains("--media off"),
        "{stderr}"
    );
}
