//! HTTPS: tus over TLS with HTTP/2 (ALPN) and HTTP/1.1, checked with curl against a
//! certificate the test makes with openssl; cleartext h2c with prior knowledge; a certificate
//! replaced on disk served without a restart; a broken replacement keeps the one served.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

/// A self-signed certificate for 127.0.0.1 named `cn`, written as `name.crt` and `name.key`.
fn certificate(dir: &Path, name: &str, cn: &str) -> (String, String) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={cn}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        crt.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
    )
}

/// curl with `args`: (exit code, stdout, stderr).
fn curl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The header `name` in curl's `-D -` output, lowercased names.
fn header(out: &str, name: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// Creates an upload of `body` over `proto` (`--http2` or `--http1.1`) and sends it in two
/// PATCHes; returns the upload's URL.
fn upload(base: &str, cacert: &str, proto: &str, body: &[u8], dir: &Path) -> String {
    let (code, out, err) = curl(&[
        proto,
        "--cacert",
        cacert,
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        "-H",
        "Tus-Resumable: 1.0.0",
        "-H",
        &format!("Upload-Length: {}", body.len()),
        &format!("{base}/files/"),
    ]);
    assert_eq!(code, 0, "{err}");
    let want = if proto == "--http2" {
        "HTTP/2 201"
    } else {
        "HTTP/1.1 201"
    };
    assert!(out.starts_with(want), "{out}");
    let url = header(&out, "location").expect("a Location");
    let half = body.len() / 2;
    for (offset, part) in [(0, &body[..half]), (half, &body[half..])] {
        let file = dir.join("part");
        std::fs::write(&file, part).unwrap();
        let (code, out, err) = curl(&[
            proto,
            "--cacert",
            cacert,
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "PATCH",
            "-H",
            "Tus-Resumable: 1.0.0",
            "-H",
            &format!("Upload-Offset: {offset}"),
            "-H",
            "Content-Type: application/offset+octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
            &url,
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(" 204"), "{out}");
        assert_eq!(
            header(&out, "upload-offset"),
            Some((offset + part.len()).to_string())
        );
    }
    url
}

#[test]
fn tus_over_https_with_http2_and_http11_and_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (crt, key) = certificate(certs.path(), "first", "first");
    let t = common::spawn_tls(dir.path(), &["--tls-cert", &crt, "--tls-key", &key]);
    let base = format!("https://{}", t.addr);
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();

    for proto in ["--http2", "--http1.1"] {
        let url = upload(&base, &crt, proto, &body, certs.path());
        let got = certs.path().join("got");
        let (code, _, err) = curl(&[proto, "--cacert", &crt, "-o", got.to_str().unwrap(), &url]);
        assert_eq!(code, 0, "{err}");
        assert!(
            std::fs::read(&got).unwrap() == body,
            "{proto}: the bytes back"
        );
    }
    // Plain HTTP on the TLS port is refused, not served.
    let (code, _, _) = curl(&["--http1.1", &format!("http://{}/files/", t.addr)]);
    assert_ne!(code, 0);

    // A broken replacement (a renewal caught half written) keeps the served certificate: the
    // server reads it (handshakes until it logs so) and goes on serving the first.
    let first = certs.path().join("first-copy.crt");
    std::fs::copy(&crt, &first).unwrap();
    let first = first.to_str().unwrap().to_owned();
    std::fs::write(&crt, "-----BEGIN CERTIFICATE-----\nAAAA").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = |what: &str| t.log.lock().unwrap().iter().any(|l| l.contains(what));
    while !seen("TLS certificate not reloaded") {
        let (code, _, err) = curl(&[
            "--cacert",
            &first,
            "-X",
            "OPTIONS",
            &format!("{base}/files/"),
        ]);
        assert_eq!(code, 0, "the first certificate is still served: {err}");
        assert!(Instant::now() < deadline, "the broken file was never read");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _, err) = curl(&[
        "--cacert",
        &first,
        "-X",
        "OPTIONS",
        &format!("{base}/files/"),
    ]);
    assert_eq!(code, 0, "the first certificate is still served: {err}");
    let (second_crt, second_key) = certificate(certs.path(), "second", "second");

    // The renewal lands: served without a restart.
    std::fs::copy(&second_key, &key).unwrap();
    std::fs::copy(&second_crt, &crt).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, out, err) = curl(&[
            "--http2",
            "--cacert",
            &second_crt,
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "OPTIONS",
            &format!("{base}/files/"),
        ]);
        if code == 0 {
            assert!(
                out.starts_with("HTTP/2 204") || out.starts_with("HTTP/2 200"),
                "{out}"
            );
            assert_eq!(
                header(&out, "tus-resumable").as_deref(),
                Some("1.0.0"),
                "{out}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served: {err}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        t.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("TLS certificate reloaded")),
        "the reload is logged"
    );
}

#[test]
fn cleartext_h2c_with_prior_knowledge() {
    let dir = tempfile::tempdir().unwrap();
    let t = common::spawn(dir.path(), &[]);
    let (code, out, err) = curl(&[
        "--http2-prior-knowledge",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        "-H",
        "Tus-Resumable: 1.0.0",
        "-H",
        "Upload-Length: 5",
        &format!("http://{}/files/", t.addr),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/2 201"), "{out}");
}

#[test]
fn a_key_that_does_not_match_its_certificate_stops_the_start() {
    let certs = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (crt, _) = certificate(certs.path(), "a", "a");
    let (_, other_key) = certificate(certs.path(), "b", "b");
    let out = Command::new(env!("CARGO_BIN_EXE_tuskd"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &crt,
            "--tls-key",
            &other_key,
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-cert") && err.contains("pair"), "{err}");
}
