//! HTTPS: tus over TLS with HTTP/2 (ALPN) and HTTP/1.1, checked with curl against a
//! certificate the test makes with openssl; cleartext h2c with prior knowledge; a certificate
//! replaced on disk served without a restart; a broken replacement keeps the one served.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

/// A certificate pair for 127.0.0.1 named `cn`, signed by an authority of its own, as
/// `name.crt`, `name.key` and `name-ca.crt`: (certificate, key, authority).
fn certificate(dir: &Path, name: &str, cn: &str) -> (String, String, String) {
    let at = |suffix: &str| {
        dir.join(format!("{name}{suffix}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let (crt, key, ca, ca_key, csr, ext) = (
        at(".crt"),
        at(".key"),
        at("-ca.crt"),
        at("-ca.key"),
        at(".csr"),
        at(".ext"),
    );
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let steps: [Vec<String>; 3] = [
        ["req", "-x509"]
            .into_iter()
            .chain(ec)
            .map(str::to_owned)
            .chain(
                [
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN={cn} authority"),
                    "-keyout",
                    &ca_key,
                    "-out",
                    &ca,
                ]
                .map(str::to_owned),
            )
            .collect(),
        ["req"]
            .into_iter()
            .chain(ec)
            .map(str::to_owned)
            .chain(
                ["-subj", &format!("/CN={cn}"), "-keyout", &key, "-out", &csr].map(str::to_owned),
            )
            .collect(),
        [
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (crt, key, ca)
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
    let (crt, key, ca) = certificate(certs.path(), "first", "first");
    let t = common::spawn_tls(dir.path(), &["--tls-cert", &crt, "--tls-key", &key]);
    let base = format!("https://{}", t.addr);
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();

    for proto in ["--http2", "--http1.1"] {
        let url = upload(&base, &ca, proto, &body, certs.path());
        let got = certs.path().join("got");
        let (code, _, err) = curl(&[proto, "--cacert", &ca, "-o", got.to_str().unwrap(), &url]);
        assert_eq!(code, 0, "{err}");
        assert!(
            std::fs::read(&got).unwrap() == body,
            "{proto}: the bytes back"
        );
    }
    // `tuskd health` (the container's health check) asks over https when the server's
    // TUSKD_TLS_CERT is set for it too.
    let health = Command::new(env!("CARGO_BIN_EXE_tuskd"))
        .args(["health", "--listen", &t.addr])
        .env("TUSKD_TLS_CERT", &crt)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&health.stdout);
    assert!(health.status.success() && said.starts_with("200"), "{said}");

    // Plain HTTP on the TLS port is refused, not served.
    let (code, _, _) = curl(&["--http1.1", &format!("http://{}/files/", t.addr)]);
    assert_ne!(code, 0);

    // A broken replacement (a renewal caught half written) keeps the served certificate: the
    // server reads it (handshakes until it logs so) and goes on serving the first.
    std::fs::write(&crt, "-----BEGIN CERTIFICATE-----\nAAAA").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = |what: &str| t.log.lock().unwrap().iter().any(|l| l.contains(what));
    while !seen("TLS certificate not reloaded") {
        let (code, _, err) = curl(&["--cacert", &ca, "-X", "OPTIONS", &format!("{base}/files/")]);
        assert_eq!(code, 0, "the first certificate is still served: {err}");
        assert!(Instant::now() < deadline, "the broken file was never read");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _, err) = curl(&["--cacert", &ca, "-X", "OPTIONS", &format!("{base}/files/")]);
    assert_eq!(code, 0, "the first certificate is still served: {err}");
    let (second_crt, second_key, second_ca) = certificate(certs.path(), "second", "second");

    // The renewal lands: served without a restart.
    std::fs::copy(&second_key, &key).unwrap();
    std::fs::copy(&second_crt, &crt).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, out, err) = curl(&[
            "--http2",
            "--cacert",
            &second_ca,
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
    let (crt, _, _) = certificate(certs.path(), "a", "a");
    let (_, other_key, _) = certificate(certs.path(), "b", "b");
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

#[test]
fn tuskd_upload_over_https_speaks_http2_and_trusts_only_what_it_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (crt, key, ca) = certificate(certs.path(), "server", "server");
    let t = common::spawn_tls(dir.path(), &["--tls-cert", &crt, "--tls-key", &key]);
    let file = certs.path().join("clip.bin");
    let body: Vec<u8> = (0..2_500_000u32).map(|i| (i * 13 % 253) as u8).collect();
    std::fs::write(&file, &body).unwrap();
    let endpoint = format!("https://{}/files/", t.addr);
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tuskd"))
            .arg("upload")
            .arg(&file)
            .args(["--url", &endpoint, "--json", "--state"])
            .arg(certs.path().join("state.json"))
            .args(extra)
            .output()
            .unwrap()
    };
    // A certificate no authority it trusts signed: refused, and said so.
    let out = run(&[]);
    assert!(!out.status.success());
    // At once (no retries: no retry makes a certificate trusted), naming the flag that helps.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("certificate") && err.contains("--ca-cert"),
        "{err}"
    );

    let out = run(&["--ca-cert", &ca]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let url = listed[0]["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("https://"), "{listed}");
    let got = certs.path().join("got");
    let (code, _, err) = curl(&["--cacert", &ca, "-o", got.to_str().unwrap(), &url]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read(&got).unwrap() == body, "the bytes back");
    let log = t.log.lock().unwrap();
    let patches: Vec<&String> = log.iter().filter(|l| l.contains("PATCH")).collect();
    assert!(
        !patches.is_empty() && patches.iter().all(|l| l.contains("HTTP/2.0")),
        "{patches:?}"
    );
}
