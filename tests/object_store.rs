//! The real `tuskd` binary on an S3-compatible store (moto, started per test on 127.0.0.1):
//! crash safety of multipart uploads, and start-up checks of the store settings.

use std::io::Write;
use std::process::Command;

use testkit::S3Server;

mod common;
use common::*;

const MIB: usize = 1 << 20;

fn s3_args(s3: &S3Server, url: &str) -> Vec<String> {
    vec![
        "--store".into(),
        url.into(),
        "--s3-endpoint".into(),
        s3.endpoint(),
        "--part-size".into(),
        "5MiB".into(),
    ]
}

fn spawn_s3(s3: &S3Server, dir: &std::path::Path, url: &str) -> Tuskd {
    let args = s3_args(s3, url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_with_env(dir, &args, &s3.env())
}

#[test]
fn kill_9_during_a_multipart_patch_then_restart_resumes_and_completes() {
    let s3 = S3Server::start();
    s3.create_bucket("media");
    let dir = tempfile::tempdir().unwrap();
    let total = 17 * MIB;
    let data = data(total);
    let url = "s3://media/incoming";
    let path;
    let acknowledged;
    {
        let mut t = spawn_s3(&s3, dir.path(), url);
        path = create(&t.addr, total);
        // Two full 5 MiB parts and 2 MiB of a third arrive and are saved ...
        let mut conn = open_patch(&t.addr, &path, 0, total, &data[..12 * MIB]);
        acknowledged = wait_offset(&t.addr, &path, (12 * MIB) as u64);
        assert_eq!(acknowledged, (12 * MIB) as u64);
        let keys = s3.client().keys("media");
        assert!(
            keys.iter().any(|k| k.contains(".tail-")),
            "the partial third part is stored as a tail object: {keys:?}"
        );
        assert_eq!(s3.client().multipart_uploads("media"), 1);
        // The backend's own ids never reach a client.
        let mut secrets = s3.client().multipart_ids("media");
        secrets.extend(s3.client().etags("media"));
        assert!(secrets.iter().all(|s| s.len() >= 8), "{secrets:?}");
        for method in ["HEAD", "GET", "OPTIONS"] {
            let (_, head, body) = request(&t.addr, method, &path, &[], b"");
            let seen = format!("{head}{}", String::from_utf8_lossy(&body));
            for secret in &secrets {
                assert!(!seen.contains(secret.as_str()), "{method} shows {secret}");
            }
        }
        // ... and more is arriving when the process is killed.
        conn.write_all(&data[12 * MIB..15 * MIB]).unwrap();
        t.child.kill().unwrap(); // SIGKILL
        t.child.wait().unwrap();
    }

    let t = spawn_s3(&s3, dir.path(), url);
    let resumed = offset(&t.addr, &path);
    assert!(
        resumed >= acknowledged && resumed <= (15 * MIB) as u64,
        "offset after the crash: {resumed}"
    );
    resume_and_verify(&t.addr, &path, resumed, &data);
    // One finished object; no tails, no multipart upload left behind.
    let id = path.rsplit('/').next().unwrap();
    assert_eq!(s3.client().keys("media"), vec![format!("incoming/{id}")]);
    assert_eq!(s3.client().multipart_uploads("media"), 0);
    // A ranged read across the first part boundary, straight from the object.
    let (status, head, body) = request(
        &t.addr,
        "GET",
        &path,
        &[("Range", "bytes=5242870-5242889")],
        b"",
    );
    assert_eq!(status, 206, "{head}");
    assert_eq!(body, &data[5_242_870..5_242_890]);
}

#[test]
fn store_problems_stop_the_start_with_exit_2_and_a_clear_message() {
    let s3 = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[String], env: &[(&str, String)], clear_aws: bool| {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(args);
        if clear_aws {
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("AWS_") {
                    cmd.env_remove(k);
                }
            }
        }
        let out = cmd.envs(env.iter().map(|(k, v)| (k, v))).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // A bucket that does not exist.
    let (code, stderr) = run(&s3_args(&s3, "s3://no-such-bucket/x"), &s3.env(), false);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot use store s3://no-such-bucket/x")
            && stderr.contains("NoSuchBucket"),
        "{stderr}"
    );

    // No credentials at all.
    let (code, stderr) = run(&s3_args(&s3, "s3://media/x"), &[], true);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no credentials are set"), "{stderr}");

    // URLs that name no supported store, and bad part sizes.
    for (args, needle) in [
        (&["--store", "ftp://host/x"][..], "--store"),
        (&["--store", "s3://"][..], "--store"),
        (&["--part-size", "1MiB"][..], "--part-size"),
        (&["--s3-endpoint", "localhost:9000"][..], "--s3-endpoint"),
    ] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (code, stderr) = run(&args, &[], false);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
