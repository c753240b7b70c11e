//! Quotas per owner against the real binary: each limit refused with its status, code and
//! `Retry-After`, nothing left behind; per client address with `--auth none`; and the limits
//! held across two nodes sharing Postgres.

mod common;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use common::{header, request, spawn};

const SECRET: &str = "quota-secret-0123456789abcdef0123456789";

fn token(sub: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::default(), &json!({"sub": sub, "exp": exp}), &key).unwrap()
}

fn secret_file(dir: &Path) -> String {
    let p = dir.join("secret");
    std::fs::write(&p, SECRET).unwrap();
    p.to_string_lossy().into_owned()
}

/// POST as `who` (a token, or none): status, head, body.
fn create(addr: &str, who: Option<&str>, length: u64) -> (u16, String, String) {
    let len = length.to_string();
    let bearer = who.map(|t| format!("Bearer {t}"));
    let mut h = vec![("Upload-Length", len.as_str())];
    if let Some(b) = &bearer {
        h.push(("Authorization", b));
    }
    let (s, head, body) = request(addr, "POST", "/files/", &h, b"");
    (s, head, String::from_utf8_lossy(&body).into_owned())
}

/// Files under the local store (sharded into directories by the id's first characters).
fn stored_files(data: &Path) -> usize {
    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| {
            d.map(|e| e.unwrap().path())
                .map(|p| if p.is_dir() { walk(&p) } else { 1 })
                .sum()
        })
    }
    walk(&data.join("uploads"))
}

fn listed(addr: &str, who: &str) -> usize {
    let b = format!("Bearer {who}");
    let (s, _, body) = request(
        addr,
        "GET",
        "/uploads?limit=1000",
        &[("Authorization", &b)],
        b"",
    );
    assert_eq!(s, 200);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    doc["uploads"].as_array().unwrap().len()
}

#[test]
fn each_limit_is_refused_with_its_code_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secret = secret_file(dir.path());
    let server = spawn(
        &data,
        &[
            "--auth",
            "jwt",
            "--auth-jwt-secret-file",
            &secret,
            "--quota-unfinished",
            "2",
            "--quota-bytes",
            "1000",
            "--quota-per-minute",
            "6",
        ],
    );
    let addr = &server.addr;
    let alice = token("alice");
    assert_eq!(create(addr, Some(&alice), 100).0, 201);
    assert_eq!(create(addr, Some(&alice), 100).0, 201);
    let files = stored_files(&data);
    let (s, head, body) = create(addr, Some(&alice), 100);
    assert_eq!(s, 429, "{body}");
    assert!(body.starts_with("ERR_QUOTA_UNFINISHED"), "{body}");
    assert!(header(&head, "retry-after").is_some());
    assert_eq!(
        stored_files(&data),
        files,
        "a refused upload leaves no file"
    );
    assert_eq!(listed(addr, &alice), 2);

    // Bytes: bob holds 900 in a finished upload; 200 more would pass 1000.
    let bob = token("bob");
    let (s, head, _) = create(addr, Some(&bob), 900);
    assert_eq!(s, 201);
    let path = format!(
        "/files/{}",
        header(&head, "location")
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
    );
    let b = format!("Bearer {bob}");
    let (s, _, _) = request(
        addr,
        "PATCH",
        &path,
        &[
            ("Authorization", &b),
            ("Upload-Offset", "0"),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        &[1u8; 900],
    );
    assert_eq!(s, 204);
    let (s, _, body) = create(addr, Some(&bob), 200);
    assert_eq!(s, 413, "{body}");
    assert!(body.starts_with("ERR_QUOTA_BYTES"), "{body}");
    assert_eq!(create(addr, Some(&bob), 100).0, 201, "what fits still fits");
    // Deleting frees bytes.
    assert_eq!(
        request(addr, "DELETE", &path, &[("Authorization", &b)], b"").0,
        204
    );
    assert_eq!(create(addr, Some(&bob), 800).0, 201);

    // Rate: carol's empty uploads finish at once, so only the rate limits her.
    let carol = token("carol");
    for _ in 0..6 {
        assert_eq!(create(addr, Some(&carol), 0).0, 201);
    }
    let (s, head, body) = create(addr, Some(&carol), 0);
    assert_eq!(s, 429, "{body}");
    assert!(body.starts_with("ERR_RATE_LIMITED"), "{body}");
    let wait: u64 = header(&head, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(listed(addr, &carol), 6);
    // Another owner is not limited by carol's rate.
    assert_eq!(create(addr, Some(&token("dave")), 0).0, 201);
}

#[test]
fn without_authentication_each_client_address_has_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(&dir.path().join("data"), &["--quota-unfinished", "1"]);
    let addr = &server.addr;
    assert_eq!(create(addr, None, 10).0, 201);
    let (s, _, body) = create(addr, None, 10);
    assert_eq!(s, 429, "{body}");
    assert!(body.starts_with("ERR_QUOTA_UNFINISHED"));
}

#[test]
fn limits_hold_across_two_nodes_on_postgres() {
    let pg = testkit::postgres::Postgres::start();
    let meta = pg.database();
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let store = dir.path().join("shared");
    let node = |name: &str| {
        spawn(
            &dir.path().join(name),
            &[
                "--meta",
                &meta,
                "--store",
                store.to_str().unwrap(),
                "--store-shared",
                "--auth",
                "jwt",
                "--auth-jwt-secret-file",
                &secret,
                "--quota-unfinished",
                "3",
                "--quota-per-minute",
                "1000",
            ],
        )
    };
    let (a, b) = (node("a"), node("b"));
    let alice = token("alice");
    // Twelve creations at once, half through each node: exactly three get in.
    let results: Vec<u16> = std::thread::scope(|s| {
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let addr = if i % 2 == 0 {
                    a.addr.clone()
                } else {
                    b.addr.clone()
                };
                let t = alice.clone();
                s.spawn(move || create(&addr, Some(&t), 10).0)
            })
            .collect();
        tasks.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|&&s| s == 201).count(),
        3,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|&&s| s == 429).count(),
        9,
        "{results:?}"
    );
    assert_eq!(listed(&a.addr, &alice), 3);
    assert_eq!(
        pg.sql(
            meta.rsplit('/').next().unwrap(),
            "SELECT count(*) FROM uploads"
        ),
        "3"
    );
}

#[test]
fn behind_a_proxy_the_forwarded_address_has_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(
        &dir.path().join("data"),
        &["--quota-unfinished", "1", "--behind-proxy"],
    );
    let addr = &server.addr;
    let from = |ip: &str| {
        request(
            addr,
            "POST",
            "/files/",
            &[("Upload-Length", "5"), ("X-Forwarded-For", ip)],
            b"",
        )
        .0
    };
    assert_eq!(from("203.0.113.7"), 201);
    assert_eq!(from("203.0.113.8, 10.0.0.1"), 201);
    assert_eq!(from("203.0.113.7"), 429);
}
