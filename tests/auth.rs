//! Authentication and owners against the real binary: every route × every kind of credential
//! (`--auth jwt` with a JWKS of EC, RSA and Ed25519 keys, issuer and audience required), the
//! HMAC secret path, and credentials kept out of the log.
// The matrix reads media status and files, so the whole suite runs with the media pipeline.
#![cfg(feature = "media")]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use common::media::{b64, media_args};
use common::{Tuskd, header, request, spawn};

const ISS: &str = "https://idp.example";
const AUD: &str = "tuskd";

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A signing key, its public half as a JWK and as PEM.
struct Keypair {
    kid: &'static str,
    alg: Algorithm,
    private_pem: Vec<u8>,
    public_pem: Vec<u8>,
    jwk: Value,
}

fn keypair(dir: &Path, kid: &'static str, generate: &[&str], alg: Algorithm) -> Keypair {
    let private = format!("{kid}.key");
    openssl(dir, &[generate, &["-out", &private]].concat());
    let private_pem = std::fs::read(dir.join(&private)).unwrap();
    let public_pem = openssl(dir, &["pkey", "-in", &private, "-pubout"]);
    let der = openssl(
        dir,
        &["pkey", "-in", &private, "-pubout", "-outform", "DER"],
    );
    let b = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let jwk = match alg {
        Algorithm::ES256 => {
            let point = &der[der.len() - 64..];
            json!({"kty": "EC", "crv": "P-256", "x": b(&point[..32]), "y": b(&point[32..])})
        }
        Algorithm::EdDSA => json!({"kty": "OKP", "crv": "Ed25519", "x": b(&der[der.len() - 32..])}),
        _ => {
            let hex = String::from_utf8(openssl(
                dir,
                &["rsa", "-in", &private, "-noout", "-modulus"],
            ))
            .unwrap();
            let hex = hex.trim().trim_start_matches("Modulus=");
            let n: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            json!({"kty": "RSA", "n": b(&n), "e": "AQAB"})
        }
    };
    let mut jwk = jwk;
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    Keypair {
        kid,
        alg,
        private_pem,
        public_pem,
        jwk,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(key: &Keypair, claims: &Value) -> String {
    let mut h = Header::new(key.alg);
    h.kid = Some(key.kid.to_owned());
    let k = match key.alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&key.private_pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&key.private_pem),
        _ => EncodingKey::from_rsa_pem(&key.private_pem),
    }
    .unwrap();
    jsonwebtoken::encode(&h, claims, &k).unwrap()
}

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "iss": ISS, "aud": AUD, "exp": now() + 600, "iat": now()})
}

/// A token made by hand: header and claims as given, signature as given.
fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let e = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        e(header),
        e(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

fn hs256(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
}

/// The kinds of credential the matrix tries, and their tokens (`None`: no header).
fn credentials(ec: &Keypair, rsa: &Keypair, ed: &Keypair) -> Vec<(&'static str, Option<String>)> {
    let mut expired = claims("alice");
    expired["exp"] = json!(now() - 3600);
    let mut early = claims("alice");
    early["nbf"] = json!(now() + 3600);
    let mut aud = claims("alice");
    aud["aud"] = json!("another-service");
    let mut iss = claims("alice");
    iss["iss"] = json!("https://evil.example");
    let mut forged = sign(ec, &claims("alice"));
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let none = raw_token(&json!({"alg": "none", "typ": "JWT"}), &claims("alice"), b"");
    // Algorithm confusion: HMAC over the public key a verifier holds.
    let confused = hs256(&rsa.public_pem, Some(rsa.kid), &claims("alice"));
    let mut unknown = Header::new(Algorithm::ES256);
    unknown.kid = Some("no-such-key".into());
    let unknown = jsonwebtoken::encode(
        &unknown,
        &claims("alice"),
        &EncodingKey::from_ec_pem(&ec.private_pem).unwrap(),
    )
    .unwrap();
    let mut admin = claims("root");
    admin["scope"] = json!("openid tuskd:admin");
    vec![
        ("no token", None),
        ("expired", Some(sign(ec, &expired))),
        ("not yet valid", Some(sign(rsa, &early))),
        ("wrong audience", Some(sign(ed, &aud))),
        ("wrong issuer", Some(sign(ec, &iss))),
        ("forged signature", Some(forged)),
        ("alg none", Some(none)),
        ("hmac with public key", Some(confused)),
        ("unknown kid", Some(unknown)),
        ("another owner", Some(sign(rsa, &claims("bob")))),
        ("owner", Some(sign(ed, &claims("alice")))),
        ("admin", Some(sign(ec, &admin))),
    ]
}

fn call(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = extra.to_vec();
    if let Some(b) = &bearer {
        headers.push(("Authorization", b));
    }
    request(addr, method, path, &headers, body)
}

/// Creates an upload of `data.len()` bytes as `token`'s owner, optionally sending the bytes.
fn upload(addr: &str, token: &str, data: &[u8], send: bool, name: &str) -> String {
    let meta = format!("filename {},filetype {}", b64(name), b64("image/png"));
    let len = data.len().to_string();
    let (s, head, body) = call(
        addr,
        "POST",
        "/files/",
        Some(token),
        &[("Upload-Length", &len), ("Upload-Metadata", &meta)],
        b"",
    );
    assert_eq!(s, 201, "{}", String::from_utf8_lossy(&body));
    let path = format!(
        "/files/{}",
        header(&head, "location")
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
    );
    if send {
        let (s, _, _) = call(
            addr,
            "PATCH",
            &path,
            Some(token),
            &[
                ("Upload-Offset", "0"),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            data,
        );
        assert_eq!(s, 204);
    }
    path
}

fn wait_ready(addr: &str, id: &str, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (s, _, body) = call(addr, "GET", &format!("/media/{id}"), Some(token), &[], b"");
        assert_eq!(s, 200);
        let doc: Value = serde_json::from_slice(&body).unwrap();
        match doc["status"].as_str().unwrap() {
            "READY" => return doc,
            "REJECTED" | "FAILED" => panic!("{doc}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "not READY: {doc}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Jwks {
    _dir: tempfile::TempDir,
    server: Tuskd,
    ec: Keypair,
    rsa: Keypair,
    ed: Keypair,
}

fn jwks_server() -> Jwks {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let ec = keypair(
        &keys,
        "ec1",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
        Algorithm::ES256,
    );
    let rsa = keypair(
        &keys,
        "rsa1",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        Algorithm::RS256,
    );
    let ed = keypair(
        &keys,
        "ed1",
        &["genpkey", "-algorithm", "ED25519"],
        Algorithm::EdDSA,
    );
    let set = json!({"keys": [ec.jwk, rsa.jwk, ed.jwk]});
    let jwks = keys.join("jwks.json");
    std::fs::write(&jwks, set.to_string()).unwrap();
    let args = media_args(&[
        "--auth",
        "jwt",
        "--auth-jwks",
        jwks.to_str().unwrap(),
        "--auth-jwt-issuer",
        ISS,
        "--auth-jwt-audience",
        AUD,
        "--auth-metrics",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = spawn(&dir.path().join("data"), &args);
    Jwks {
        _dir: dir,
        server,
        ec,
        rsa,
        ed,
    }
}

/// A request of the matrix: method, path, headers, body, the status an owner gets.
type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, Vec<u8>, u16);

#[test]
fn every_route_answers_every_kind_of_credential_as_it_should() {
    let j = jwks_server();
    let addr = j.server.addr.clone();
    let alice = sign(&j.ed, &claims("alice"));
    let png = testkit::pictures::alpha_png(64, 48);
    // A finished upload with its media, alice's.
    let done = upload(&addr, &alice, &png, true, "a.png");
    let id = done.rsplit('/').next().unwrap().to_owned();
    let doc = wait_ready(&addr, &id, &alice);
    let file = doc["variants"][0]["url"].as_str().unwrap();
    let file = format!(
        "/{}",
        file.split("://").nth(1).unwrap().split_once('/').unwrap().1
    );

    let refused = |status: u16, head: &str, what: &str| {
        assert_eq!(status, 401, "{what}");
        assert!(
            head.contains("www-authenticate: bearer realm=\"tuskd\""),
            "{what}: {head}"
        );
    };
    for (cell, token) in credentials(&j.ec, &j.rsa, &j.ed) {
        let t = token.as_deref();
        let valid = matches!(cell, "another owner" | "owner" | "admin");
        let sees = matches!(cell, "owner" | "admin");
        // Fresh uploads of alice's for the routes that change them.
        let unfinished = upload(&addr, &alice, &[7u8; 10], false, "u.png");
        let doomed = upload(&addr, &alice, &[7u8; 10], false, "d.png");
        let cases: Vec<Case> = vec![
            (
                "POST",
                "/files/".into(),
                vec![("Upload-Length", "5")],
                vec![],
                201,
            ),
            (
                "HEAD",
                unfinished.clone(),
                vec![],
                vec![],
                if sees { 200 } else { 404 },
            ),
            (
                "PATCH",
                unfinished.clone(),
                vec![
                    ("Upload-Offset", "0"),
                    ("Content-Type", "application/offset+octet-stream"),
                ],
                vec![1, 2, 3],
                if sees { 204 } else { 404 },
            ),
            (
                "DELETE",
                doomed,
                vec![],
                vec![],
                if sees { 204 } else { 404 },
            ),
            (
                "GET",
                done.clone(),
                vec![],
                vec![],
                if sees { 200 } else { 404 },
            ),
            (
                "GET",
                format!("/media/{id}"),
                vec![],
                vec![],
                if sees { 200 } else { 404 },
            ),
            // The status as events: the same gate (a READY upload's stream ends at once).
            (
                "GET",
                format!("/media/{id}"),
                vec![("Accept", "text/event-stream")],
                vec![],
                if sees { 200 } else { 404 },
            ),
            (
                "GET",
                file.clone(),
                vec![],
                vec![],
                if sees { 200 } else { 404 },
            ),
            ("GET", "/uploads".into(), vec![], vec![], 200),
            (
                "GET",
                "/metrics".into(),
                vec![],
                vec![],
                if cell == "admin" { 200 } else { 403 },
            ),
        ];
        for (method, path, extra, body, want) in cases {
            let (status, head, resp) = call(&addr, method, &path, t, &extra, &body);
            let what = format!(
                "{cell}: {method} {path}: {}",
                String::from_utf8_lossy(&resp)
            );
            if valid {
                assert_eq!(status, want, "{what}");
            } else {
                refused(status, &head, &what);
            }
        }
        // Discovery and the probes need no credential.
        for (method, path) in [
            ("OPTIONS", "/files/"),
            ("GET", "/healthz"),
            ("GET", "/readyz"),
        ] {
            let (status, _, _) = call(&addr, method, path, t, &[], b"");
            assert!(
                status == 204 || status == 200,
                "{cell}: {method} {path}: {status}"
            );
        }
    }
    // What another owner's refusal looks like is what a missing upload's looks like.
    let bob = sign(&j.rsa, &claims("bob"));
    let (_, _, theirs) = call(&addr, "HEAD", &done, Some(&bob), &[], b"");
    let (_, _, missing) = call(
        &addr,
        "HEAD",
        "/files/0123456789abcdef0123456789abcdef",
        Some(&bob),
        &[],
        b"",
    );
    assert_eq!(theirs, missing);
    let (_, _, theirs) = call(&addr, "GET", &done, Some(&bob), &[], b"");
    let (_, _, missing) = call(
        &addr,
        "GET",
        "/files/0123456789abcdef0123456789abcdef",
        Some(&bob),
        &[],
        b"",
    );
    assert_eq!(theirs, missing);
    // No credential reaches the log.
    let log = j.server.log.lock().unwrap().join("\n");
    for (cell, token) in credentials(&j.ec, &j.rsa, &j.ed) {
        if let Some(t) = token {
            let signature = t.rsplit('.').next().unwrap();
            assert!(
                signature.is_empty() || !log.contains(signature),
                "{cell}'s token is in the log"
            );
        }
    }
    assert!(!log.contains(&alice));
}

#[test]
fn a_final_upload_may_name_only_its_owners_partial_uploads() {
    let j = jwks_server();
    let addr = j.server.addr.clone();
    let alice = sign(&j.ed, &claims("alice"));
    let bob = sign(&j.rsa, &claims("bob"));
    let partial = |token: &str| {
        let (s, head, _) = call(
            &addr,
            "POST",
            "/files/",
            Some(token),
            &[("Upload-Length", "3"), ("Upload-Concat", "partial")],
            b"",
        );
        assert_eq!(s, 201);
        let path = format!(
            "/files/{}",
            header(&head, "location")
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
        );
        let (s, _, _) = call(
            &addr,
            "PATCH",
            &path,
            Some(token),
            &[
                ("Upload-Offset", "0"),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            b"abc",
        );
        assert_eq!(s, 204);
        path
    };
    let (a, b) = (partial(&alice), partial(&bob));
    let concat = format!("final;{a} {b}");
    let (s, _, body) = call(
        &addr,
        "POST",
        "/files/",
        Some(&alice),
        &[("Upload-Concat", &concat)],
        b"",
    );
    assert_eq!(s, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("does not exist"));
    let concat = format!("final;{a} {a}");
    let (s, _, _) = call(
        &addr,
        "POST",
        "/files/",
        Some(&alice),
        &[("Upload-Concat", &concat)],
        b"",
    );
    assert_eq!(s, 201);
}

#[test]
fn tokens_narrow_what_may_be_uploaded() {
    let j = jwks_server();
    let addr = j.server.addr.clone();
    let mut c = claims("carol");
    c["max_size"] = json!(1000);
    c["media_kinds"] = json!(["image"]);
    let t = sign(&j.ec, &c);
    let image = format!("filetype {}", b64("image/jpeg"));
    let video = format!("filetype {}", b64("video/mp4"));
    let post = |len: &str, meta: &str| {
        call(
            &addr,
            "POST",
            "/files/",
            Some(&t),
            &[("Upload-Length", len), ("Upload-Metadata", meta)],
            b"",
        )
        .0
    };
    assert_eq!(post("1000", &image), 201);
    assert_eq!(post("1001", &image), 413);
    assert_eq!(post("10", &video), 415);
    let mut bad = claims("carol");
    bad["media_kinds"] = json!(["executable"]);
    let (s, _, _) = call(
        &addr,
        "POST",
        "/files/",
        Some(&sign(&j.ec, &bad)),
        &[("Upload-Length", "1")],
        b"",
    );
    assert_eq!(s, 401);
}

#[test]
fn hmac_secrets_verify_hs_tokens_only() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
    let server = spawn(
        &dir.path().join("data"),
        &[
            "--auth",
            "jwt",
            "--auth-jwt-secret-file",
            secret.to_str().unwrap(),
        ],
    );
    let addr = &server.addr;
    let key = b"0123456789abcdef0123456789abcdef";
    let c = json!({"sub": "alice", "exp": now() + 60});
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let t = jsonwebtoken::encode(
            &Header::new(alg),
            &c,
            &EncodingKey::from_secret(key).unwrap(),
        )
        .unwrap();
        let (s, _, _) = call(
            addr,
            "POST",
            "/files/",
            Some(&t),
            &[("Upload-Length", "1")],
            b"",
        );
        assert_eq!(s, 201, "{alg:?}");
    }
    let wrong = hs256(b"another secret of at least 32 bytes!", None, &c);
    assert_eq!(
        call(
            addr,
            "POST",
            "/files/",
            Some(&wrong),
            &[("Upload-Length", "1")],
            b""
        )
        .0,
        401
    );
    let no_exp = hs256(key, None, &json!({"sub": "alice"}));
    assert_eq!(
        call(
            addr,
            "POST",
            "/files/",
            Some(&no_exp),
            &[("Upload-Length", "1")],
            b""
        )
        .0,
        401
    );
    let none = raw_token(&json!({"alg": "none"}), &c, b"");
    assert_eq!(
        call(
            addr,
            "POST",
            "/files/",
            Some(&none),
            &[("Upload-Length", "1")],
            b""
        )
        .0,
        401
    );
    // `tuskd token` mints what this server takes.
    let out = Command::new(common::BIN)
        .args([
            "token",
            "--secret-file",
            secret.to_str().unwrap(),
            "--sub",
            "dave",
            "--ttl",
            "5m",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let t = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        call(
            addr,
            "POST",
            "/files/",
            Some(t.trim()),
            &[("Upload-Length", "1")],
            b""
        )
        .0,
        201
    );
    // Azure AD's `scp` is one string; some providers send a fractional `exp`.
    let admin = hs256(
        key,
        None,
        &json!({"sub": "root", "exp": now() as f64 + 60.5, "scp": "user.read tuskd:admin"}),
    );
    let (s, _, body) = call(addr, "GET", "/uploads?limit=1000", Some(&admin), &[], b"");
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        doc["uploads"].as_array().unwrap().len() >= 4,
        "an admin lists every owner's: {doc}"
    );
    // Listing is served only with authentication; here it is.
    let (s, _, body) = call(addr, "GET", "/uploads", Some(t.trim()), &[], b"");
    assert_eq!(s, 200);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["uploads"].as_array().unwrap().len(), 1);
}

#[test]
fn a_server_refuses_to_start_with_unusable_keys() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "too short").unwrap();
    for args in [
        vec!["--auth", "jwt"],
        vec![
            "--auth",
            "jwt",
            "--auth-jwt-secret-file",
            short.to_str().unwrap(),
        ],
        vec![
            "--auth",
            "jwt",
            "--auth-jwt-public-key-file",
            short.to_str().unwrap(),
        ],
        vec!["--auth", "jwt", "--auth-jwks", short.to_str().unwrap()],
        vec!["--auth", "hook"],
        vec!["--auth-jwt-secret-file", short.to_str().unwrap()],
    ] {
        let out = Command::new(common::BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--media",
                "off",
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("auth"), "{args:?}: {err}");
        assert!(
            !err.contains("too short"),
            "a key file's content is never printed"
        );
    }
}

/// The path of an absolute URL.
fn path_of(url: &str) -> String {
    format!(
        "/{}",
        url.split("://").nth(1).unwrap().split_once('/').unwrap().1
    )
}

#[test]
fn signed_media_urls_open_one_uploads_files_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef").unwrap();
    let keys = dir.path().join("media-keys");
    std::fs::write(&keys, "media-key-0123456789abcdef0123456789\n").unwrap();
    let args = media_args(&[
        "--auth",
        "jwt",
        "--auth-jwt-secret-file",
        secret.to_str().unwrap(),
        "--media-access",
        "signed",
        "--media-signing-key-file",
        keys.to_str().unwrap(),
        "--media-url-ttl",
        "3s",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = spawn(&dir.path().join("data"), &args);
    let addr = &server.addr;
    let token = hs256(
        b"0123456789abcdef0123456789abcdef",
        None,
        &json!({"sub": "alice", "exp": now() + 600}),
    );
    let png = testkit::pictures::alpha_png(64, 48);
    let a = upload(addr, &token, &png, true, "a.png");
    let b = upload(
        addr,
        &token,
        &testkit::pictures::alpha_png(32, 32),
        true,
        "b.png",
    );
    let (a, b) = (a.rsplit('/').next().unwrap(), b.rsplit('/').next().unwrap());
    wait_ready(addr, b, &token);
    let doc = wait_ready(addr, a, &token);
    let url = path_of(doc["variants"][0]["url"].as_str().unwrap());
    assert!(url.contains(&format!("/media/{a}/~")), "{url}");
    // No credential needed.
    let (s, head, body) = call(addr, "GET", &url, None, &[], b"");
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert!(head.contains("cache-control: public, max-age="), "{head}");
    // Another upload's files under this signature.
    let other = url.replacen(a, b, 1);
    assert_eq!(call(addr, "GET", &other, None, &[], b"").0, 403);
    // One character of the signature changed.
    let sig_end =
        url.find("/~").unwrap() + 2 + url[url.find("/~").unwrap() + 2..].find('/').unwrap();
    let mut bad = url.clone();
    let c = bad.as_bytes()[sig_end - 1];
    bad.replace_range(sig_end - 1..sig_end, if c == b'A' { "B" } else { "A" });
    assert_eq!(call(addr, "GET", &bad, None, &[], b"").0, 403);
    // Unsigned, a file still needs the owner.
    let unsigned = format!("/media/{a}/{}", url.split_at(sig_end + 1).1);
    assert_eq!(call(addr, "GET", &unsigned, None, &[], b"").0, 401);
    assert_eq!(call(addr, "GET", &unsigned, Some(&token), &[], b"").0, 200);
    // After the expiry.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, _, body) = call(addr, "GET", &url, None, &[], b"");
        if s == 403 {
            assert!(String::from_utf8_lossy(&body).contains("ERR_SIGNATURE_EXPIRED"));
            break;
        }
        assert_eq!(s, 200);
        assert!(Instant::now() < deadline, "the signed URL never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A small HTTP/1.1 server on 127.0.0.1: `answer` gets the request's head (lowercased) and
/// body and returns the status and a JSON body. Returns its base URL.
fn serve(answer: impl Fn(&str, &[u8]) -> (u16, String) + Send + Sync + 'static) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head, body) = loop {
                    let n = conn.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap_or(0));
                        while buf.len() < end + 4 + len {
                            let n = conn.read(&mut chunk).unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        break (head, buf[end + 4..end + 4 + len].to_vec());
                    }
                };
                let (status, text) = answer(&head, &body);
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            });
        }
    });
    url
}

#[test]
fn a_pre_access_hook_names_the_owner_and_its_decisions_are_cached() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let owners = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = owners.clone();
    let url = serve(move |head, body| {
        assert!(head.starts_with("post /hooks"), "{head}");
        let event: Value = serde_json::from_slice(body).unwrap();
        if event["Type"] == "post-create" {
            let owner = event["Event"]["Upload"]["Owner"].as_str().unwrap_or("none");
            seen.lock().unwrap().push(owner.to_owned());
        }
        if event["Type"] != "pre-access" {
            return (200, "{}".into());
        }
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let cookie = event["Event"]["HTTPRequest"]["Header"]["Cookie"][0]
            .as_str()
            .unwrap_or("");
        let answer = match cookie.strip_prefix("session=") {
            Some(user) if !user.is_empty() => json!({"Allow": true, "Owner": user}),
            _ => {
                json!({"Allow": false, "HTTPResponse": {"StatusCode": 401, "Body": "sign in first"}})
            }
        };
        (200, answer.to_string())
    });
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(
        &dir.path().join("data"),
        &[
            "--auth",
            "hook",
            "--hooks-http",
            &format!("{url}/hooks"),
            "--auth-hook-cache",
            "60s",
        ],
    );
    let addr = &server.addr;
    let create = |cookie: Option<&str>| {
        let mut h = vec![("Upload-Length", "3")];
        if let Some(c) = cookie {
            h.push(("Cookie", c));
        }
        request(addr, "POST", "/files/", &h, b"")
    };
    let (s, head, body) = create(None);
    assert_eq!(s, 401);
    assert!(head.contains("www-authenticate"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("sign in first"));
    let (s, head, _) = create(Some("session=alice"));
    assert_eq!(s, 201);
    let path = format!(
        "/files/{}",
        header(&head, "location")
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
    );
    assert_eq!(
        request(addr, "HEAD", &path, &[("Cookie", "session=alice")], b"").0,
        200
    );
    assert_eq!(
        request(addr, "HEAD", &path, &[("Cookie", "session=bob")], b"").0,
        404
    );
    // The same cookie, method, route and upload again: answered from the cache.
    let before = calls.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..5 {
        assert_eq!(
            request(addr, "HEAD", &path, &[("Cookie", "session=alice")], b"").0,
            200
        );
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), before);
    // Any other header may carry a credential: it is part of the decision's key.
    let h = [("Cookie", "session=alice"), ("X-Api-Key", "k2")];
    assert_eq!(request(addr, "HEAD", &path, &h, b"").0, 200);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), before + 1);
    // Events carry the owner (post-create is delivered from the outbox: wait for it).
    let deadline = Instant::now() + Duration::from_secs(30);
    while owners.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no post-create event");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(*owners.lock().unwrap(), ["alice"]);
}

#[test]
fn a_jwks_url_is_fetched_again_when_a_key_rotates_but_not_for_every_unknown_kid() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let ec = |kid| {
        keypair(
            &keys,
            kid,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
            Algorithm::ES256,
        )
    };
    let (old, new) = (ec("old"), ec("new"));
    let published = std::sync::Arc::new(std::sync::Mutex::new(json!({"keys": [old.jwk]})));
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (p, f) = (published.clone(), fetches.clone());
    let url = serve(move |_, _| {
        f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (200, p.lock().unwrap().to_string())
    });
    let server = spawn(
        &dir.path().join("data"),
        &[
            "--auth",
            "jwt",
            "--auth-jwks",
            &format!("{url}/.well-known/jwks.json"),
        ],
    );
    let addr = &server.addr;
    let c = json!({"sub": "alice", "exp": now() + 600});
    let post = |t: &str| {
        call(
            addr,
            "POST",
            "/files/",
            Some(t),
            &[("Upload-Length", "1")],
            b"",
        )
        .0
    };
    assert_eq!(post(&sign(&old, &c)), 201);
    // The provider rotates: the new kid is fetched on first sight.
    *published.lock().unwrap() = json!({"keys": [old.jwk, new.jwk]});
    assert_eq!(post(&sign(&new, &c)), 201);
    // Made-up kids: at most one fetch however many there are.
    let before = fetches.load(std::sync::atomic::Ordering::SeqCst);
    for i in 0..20 {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some(format!("made-up-{i}"));
        let t = jsonwebtoken::encode(&h, &c, &EncodingKey::from_ec_pem(&new.private_pem).unwrap())
            .unwrap();
        assert_eq!(post(&t), 401);
    }
    assert!(fetches.load(std::sync::atomic::Ordering::SeqCst) <= before + 1);
}
