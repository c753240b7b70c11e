//! GET downloads (not part of tus, but what a platform needs) and CORS for browser clients.

use bytes::Bytes;
use spec_tests::*;

async fn with_meta(s: &Server, data: &[u8], meta: &[(&str, &str)]) -> String {
    let m = meta
        .iter()
        .map(|(k, v)| format!("{k} {}", b64(v.as_bytes())))
        .collect::<Vec<_>>()
        .join(",");
    let r = s
        .post(
            &[
                ("Upload-Length", &data.len().to_string()),
                ("Upload-Metadata", &m),
            ],
            Bytes::new(),
        )
        .await;
    let url = s.url(r.location());
    s.patch(&url, 0, data.to_vec()).await;
    url
}

#[tokio::test]
async fn get_returns_the_whole_file() {
    let s = start().await;
    let data = bytes(100_000, 3);
    let url = s.upload(&data).await;
    let r = s.get(&url, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("100000"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn get_serves_byte_ranges() {
    let s = start().await;
    let data = bytes(1000, 9);
    let url = s.upload(&data).await;
    let r = s.get(&url, &[("Range", "bytes=100-199")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/1000"));
    assert_eq!(r.body, &data[100..200]);
    let r = s.get(&url, &[("Range", "bytes=-10")]).await;
    assert_eq!(r.body, &data[990..]);
    let r = s.get(&url, &[("Range", "bytes=995-")]).await;
    assert_eq!(r.header("content-range"), Some("bytes 995-999/1000"));
}

#[tokio::test]
async fn get_range_past_the_end_is_416() {
    let s = start().await;
    let url = s.upload(b"short").await;
    let r = s.get(&url, &[("Range", "bytes=5-")]).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */5"));
}

#[tokio::test]
async fn get_of_unfinished_upload_is_refused() {
    let s = start().await;
    let url = s.create(10).await;
    s.patch(&url, 0, &b"abc"[..]).await;
    let r = s.get(&url, &[]).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("ERR_UPLOAD_NOT_FINISHED"));
}

#[tokio::test]
async fn get_uses_safe_filetype_inline() {
    let s = start().await;
    let url = with_meta(
        &s,
        b"\x00\x00\x00\x18ftypmp42",
        &[("filetype", "video/mp4"), ("filename", "clip.mp4")],
    )
    .await;
    let r = s.get(&url, &[]).await;
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    let cd = r.header("content-disposition").unwrap();
    assert!(
        cd.starts_with("inline;") && cd.contains("filename=\"clip.mp4\""),
        "{cd}"
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn get_makes_unsafe_types_octet_stream_attachments() {
    let s = start().await;
    for t in [
        "text/html",
        "image/svg+xml",
        "application/javascript",
        "text/html; charset=utf-8",
        "not a type",
    ] {
        let url = with_meta(&s, b"<script>alert(1)</script>", &[("filetype", t)]).await;
        let r = s.get(&url, &[]).await;
        assert_eq!(
            r.header("content-type"),
            Some("application/octet-stream"),
            "{t}"
        );
        assert!(
            r.header("content-disposition")
                .unwrap()
                .starts_with("attachment"),
            "{t}"
        );
    }
}

#[tokio::test]
async fn get_escapes_the_file_name() {
    let s = start().await;
    let url = with_meta(
        &s,
        b"x",
        &[("filename", "naïve \"quote\"\r\nX-Evil: 1.txt")],
    )
    .await;
    let r = s.get(&url, &[]).await;
    assert!(!r.has("x-evil"), "no header smuggling");
    let cd = r.header("content-disposition").unwrap();
    assert!(
        cd.contains("filename*=UTF-8''na%C3%AFve%20%22quote%22%0D%0AX-Evil%3A%201.txt"),
        "{cd}"
    );
    assert!(
        cd.contains("filename=\"na_ve _quote___X-Evil: 1.txt\""),
        "{cd}"
    );
}

#[tokio::test]
async fn get_works_without_tus_resumable() {
    let s = start().await;
    let url = s.upload(b"browser").await;
    assert_eq!(s.send("GET", &url, &[], Bytes::new()).await.status, 200);
}

// ---- CORS ----

const ORIGIN: (&str, &str) = ("Origin", "https://app.example");

#[tokio::test]
async fn cors_preflight_is_answered_for_tus_headers() {
    let s = start().await;
    let r = s
        .send(
            "OPTIONS",
            &s.endpoint.clone(),
            &[
                ORIGIN,
                ("Access-Control-Request-Method", "PATCH"),
                (
                    "Access-Control-Request-Headers",
                    "tus-resumable,upload-offset,content-type",
                ),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "some browsers accept only 200 for preflights"
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let methods = r.header("access-control-allow-methods").unwrap();
    for m in ["POST", "HEAD", "PATCH", "DELETE", "OPTIONS", "GET"] {
        assert!(methods.contains(m), "{m}");
    }
    let headers = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "tus-resumable",
        "upload-length",
        "upload-offset",
        "upload-metadata",
        "upload-concat",
        "upload-checksum",
        "upload-defer-length",
        "content-type",
        "x-http-method-override",
        "authorization",
        "x-request-id",
    ] {
        assert!(headers.contains(h), "{h}");
    }
    assert!(r.has("access-control-max-age"));
}

#[tokio::test]
async fn cors_actual_responses_expose_tus_headers() {
    let s = start().await;
    let r = s
        .post(&[("Upload-Length", "3"), ORIGIN], Bytes::new())
        .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    let expose = r
        .header("access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "location",
        "upload-offset",
        "upload-length",
        "tus-resumable",
        "upload-metadata",
        "upload-expires",
        "upload-defer-length",
        "upload-concat",
        "tus-version",
        "tus-extension",
        "tus-max-size",
    ] {
        assert!(expose.contains(h), "{h}");
    }
    let url = s.url(r.location());
    let r = s.patch_with(&url, 0, &[ORIGIN], &b"a"[..]).await;
    assert!(r.has("access-control-allow-origin"));
    let r = s
        .send(
            "HEAD",
            &url,
            &[("Tus-Resumable", "1.0.0"), ORIGIN],
            Bytes::new(),
        )
        .await;
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .contains("Upload-Offset")
    );
    let r = s.send("GET", &url, &[ORIGIN], Bytes::new()).await;
    assert!(
        r.has("access-control-allow-origin"),
        "errors carry CORS headers too"
    );
}

#[tokio::test]
async fn cors_disallowed_origin_is_refused() {
    let Some(s) = start_with(|c| {
        c.cors.allow_origin = Some(regex_lite("https://app\\.example"));
        c.cors.allow_credentials = true;
    })
    .await
    else {
        return;
    };
    let r = s
        .post(
            &[
                ("Upload-Length", "1"),
                ("Origin", "https://app.example.evil.test"),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(!r.has("access-control-allow-origin"));
    let r = s
        .post(&[("Upload-Length", "1"), ORIGIN], Bytes::new())
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
}

fn regex_lite(p: &str) -> regex::Regex {
    regex::Regex::new(&format!("^(?:{p})$")).unwrap()
}
