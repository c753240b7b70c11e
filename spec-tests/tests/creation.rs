//! Creation (C*), Upload-Metadata (M*), creation-with-upload (CW*), creation-defer-length (D*).

use bytes::Bytes;
use spec_tests::*;

#[tokio::test]
async fn c1_creation_is_advertised() {
    let s = start().await;
    assert!(
        s.options()
            .await
            .header("tus-extension")
            .unwrap()
            .split(',')
            .any(|e| e == "creation")
    );
}

#[tokio::test]
async fn c2_creation_needs_length_or_defer() {
    let s = start().await;
    let r = s.post(&[], Bytes::new()).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn c3_defer_length_other_than_1_is_400() {
    let s = start().await;
    for v in ["0", "2", "true", ""] {
        let r = s.post(&[("Upload-Defer-Length", v)], Bytes::new()).await;
        assert_eq!(r.status, 400, "Upload-Defer-Length: {v:?}");
    }
}

#[tokio::test]
async fn c3_length_and_defer_together_are_400() {
    let s = start().await;
    let r = s
        .post(
            &[("Upload-Length", "5"), ("Upload-Defer-Length", "1")],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn c4_zero_length_upload_is_complete_at_once() {
    let s = start().await;
    let url = s.create(0).await;
    let r = s.head(&url).await;
    assert_eq!((r.offset(), r.header("upload-length")), (0, Some("0")));
    assert!(
        !r.has("upload-expires"),
        "a complete upload does not expire"
    );
    let g = s.get(&url, &[]).await;
    assert_eq!(g.status, 200);
    assert!(g.body.is_empty());
}

#[tokio::test]
async fn c6_length_over_the_maximum_is_413() {
    let Some(s) = start_with(|c| c.max_size = Some(1000)).await else {
        return;
    };
    let r = s.post(&[("Upload-Length", "1001")], Bytes::new()).await;
    assert_eq!(r.status, 413);
    let r = s.post(&[("Upload-Length", "1000")], Bytes::new()).await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn c7_creation_is_201_with_location() {
    let s = start().await;
    let r = s.post(&[("Upload-Length", "10")], Bytes::new()).await;
    assert_eq!(r.status, 201);
    let loc = r.location();
    assert!(loc.contains(&s.base_path()), "{loc}");
    let id = loc.rsplit('/').next().unwrap();
    assert_eq!(id.len(), 32, "128-bit hex id");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[tokio::test]
async fn c7_every_upload_gets_its_own_url() {
    let s = start().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        assert!(seen.insert(s.create(1).await));
    }
}

#[tokio::test]
async fn c7_location_honours_forwarded_headers_only_behind_a_proxy() {
    let Some(s) = start_with(|c| c.behind_proxy = true).await else {
        return;
    };
    let r = s
        .post(
            &[
                ("Upload-Length", "1"),
                ("X-Forwarded-Host", "uploads.example.com"),
                ("X-Forwarded-Proto", "https"),
            ],
            Bytes::new(),
        )
        .await;
    assert!(
        r.location()
            .starts_with("https://uploads.example.com/files/"),
        "{}",
        r.location()
    );
    let r = s
        .post(
            &[
                ("Upload-Length", "1"),
                ("Forwarded", "for=1.2.3.4;host=cdn.example.org;proto=https"),
            ],
            Bytes::new(),
        )
        .await;
    assert!(
        r.location().starts_with("https://cdn.example.org/files/"),
        "{}",
        r.location()
    );
    let Some(s) = start_with(|_| {}).await else {
        return;
    };
    let r = s
        .post(
            &[("Upload-Length", "1"), ("X-Forwarded-Host", "evil.example")],
            Bytes::new(),
        )
        .await;
    assert!(!r.location().contains("evil"), "{}", r.location());
}

#[tokio::test]
async fn c8_new_upload_starts_at_offset_0() {
    let s = start().await;
    let url = s.create(3).await;
    assert_eq!(s.head(&url).await.offset(), 0);
}

#[tokio::test]
async fn m1_m8_metadata_is_echoed_byte_for_byte() {
    let s = start().await;
    let meta = format!(
        "filename {},filetype {},is_confidential",
        b64(b"world_domination_plan.pdf"),
        b64(b"application/pdf")
    );
    let r = s
        .post(
            &[("Upload-Length", "1"), ("Upload-Metadata", &meta)],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 201);
    let h = s.head(&s.url(r.location())).await;
    assert_eq!(h.header("upload-metadata"), Some(meta.as_str()));
}

#[tokio::test]
async fn m2_m3_key_with_space_or_empty_key_is_400() {
    let s = start().await;
    for bad in ["a\tb YQ==", "a b c", ",", "k dmFs,"] {
        let r = s
            .post(
                &[("Upload-Length", "1"), ("Upload-Metadata", bad)],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, 400, "{bad:?}");
    }
}

#[tokio::test]
async fn m4_value_that_is_not_base64_is_400() {
    let s = start().await;
    for bad in ["name !!!", "name abc", "name YQ"] {
        let r = s
            .post(
                &[("Upload-Length", "1"), ("Upload-Metadata", bad)],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, 400, "{bad:?}");
        assert!(r.text().starts_with("ERR_INVALID_METADATA"), "{}", r.text());
    }
}

#[tokio::test]
async fn m5_duplicate_keys_are_400() {
    let s = start().await;
    let r = s
        .post(
            &[("Upload-Length", "1"), ("Upload-Metadata", "a YQ==,a Yg==")],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn m6_empty_values_and_empty_header_are_accepted() {
    let s = start().await;
    // tus-js-client sends `key ` for an empty value; tuspy sends an empty header.
    for ok in ["empty ", "flag", ""] {
        let r = s
            .post(
                &[("Upload-Length", "1"), ("Upload-Metadata", ok)],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, 201, "{ok:?}: {}", r.text());
    }
}

#[tokio::test]
async fn m7_oversized_metadata_is_rejected() {
    let s = start().await;
    let big = format!("blob {}", b64(&vec![b'x'; 20_000]));
    let r = s
        .post(
            &[("Upload-Length", "1"), ("Upload-Metadata", &big)],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("longer than"), "{}", r.text());
}

#[tokio::test]
async fn m7_binary_metadata_values_round_trip() {
    let s = start().await;
    let meta = format!("bin {}", b64(&[0, 13, 10, 255, 0x7f]));
    let r = s
        .post(
            &[("Upload-Length", "1"), ("Upload-Metadata", &meta)],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        s.head(&s.url(r.location())).await.header("upload-metadata"),
        Some(meta.as_str())
    );
}

#[tokio::test]
async fn cw1_creation_with_upload_is_advertised() {
    let s = start().await;
    assert!(
        s.options()
            .await
            .header("tus-extension")
            .unwrap()
            .contains("creation-with-upload")
    );
}

#[tokio::test]
async fn cw2_cw3_post_with_data_stores_it_and_reports_offset() {
    let s = start().await;
    let r = s
        .post(
            &[
                ("Upload-Length", "11"),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            &b"hello"[..],
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.offset(), 5);
    let url = s.url(r.location());
    assert_eq!(s.patch(&url, 5, &b" world"[..]).await.offset(), 11);
    assert_eq!(s.get(&url, &[]).await.body, &b"hello world"[..]);
}

#[tokio::test]
async fn cw2_post_with_the_whole_file_completes_it() {
    let s = start().await;
    let r = s
        .post(
            &[
                ("Upload-Length", "3"),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            &b"abc"[..],
        )
        .await;
    assert_eq!(r.offset(), 3);
    assert!(!r.has("upload-expires"));
}

#[tokio::test]
async fn cw2_post_data_beyond_length_is_413() {
    let s = start().await;
    let r = s
        .post(
            &[
                ("Upload-Length", "2"),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            &b"abc"[..],
        )
        .await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn cw2_post_body_without_the_tus_content_type_is_415() {
    let s = start().await;
    let r = s
        .post(
            &[("Upload-Length", "3"), ("Content-Type", "text/plain")],
            &b"abc"[..],
        )
        .await;
    assert_eq!(r.status, 415);
}

#[tokio::test]
async fn cw2_post_with_data_and_checksum() {
    let s = start().await;
    let sum = format!("sha1 {}", sha1_b64(b"abc"));
    let r = s
        .post(
            &[
                ("Upload-Length", "6"),
                ("Content-Type", "application/offset+octet-stream"),
                ("Upload-Checksum", &sum),
            ],
            &b"abc"[..],
        )
        .await;
    assert_eq!((r.status.as_u16(), r.offset()), (201, 3));
}

#[tokio::test]
async fn cw3_a_post_whose_data_fails_still_says_where_the_upload_is() {
    // The upload exists once the POST is under way: a chunk that fails its checksum is
    // discarded, but the answer carries Location and Upload-Offset so the client resumes it.
    let s = start().await;
    let wrong = format!("sha1 {}", sha1_b64(b"xyz"));
    let r = s
        .post(
            &[
                ("Upload-Length", "6"),
                ("Content-Type", "application/offset+octet-stream"),
                ("Upload-Checksum", &wrong),
            ],
            &b"abc"[..],
        )
        .await;
    assert_eq!(r.status.as_u16(), 460);
    assert_eq!(r.offset(), 0);
    let url = s.url(r.location());
    assert_eq!(s.head(&url).await.offset(), 0);
    assert_eq!(s.patch(&url, 0, &b"abcdef"[..]).await.offset(), 6);
    assert_eq!(s.get(&url, &[]).await.body, &b"abcdef"[..]);
}

#[tokio::test]
async fn d1_defer_length_is_advertised() {
    let s = start().await;
    assert!(
        s.options()
            .await
            .header("tus-extension")
            .unwrap()
            .contains("creation-defer-length")
    );
}

#[tokio::test]
async fn d2_length_is_sent_with_a_later_patch() {
    let s = start().await;
    let r = s.post(&[("Upload-Defer-Length", "1")], Bytes::new()).await;
    assert_eq!(r.status, 201);
    let url = s.url(r.location());
    assert_eq!(s.patch(&url, 0, &b"abc"[..]).await.offset(), 3);
    let r = s
        .patch_with(&url, 3, &[("Upload-Length", "6")], &b"def"[..])
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let h = s.head(&url).await;
    assert_eq!((h.offset(), h.header("upload-length")), (6, Some("6")));
    assert!(!h.has("upload-defer-length"));
    assert_eq!(s.get(&url, &[]).await.body, &b"abcdef"[..]);
}

#[tokio::test]
async fn d2_a_length_equal_to_the_offset_finishes_the_upload() {
    let Some(s) = start_with(|_| {}).await else {
        return;
    };
    let url = s.url(
        s.post(&[("Upload-Defer-Length", "1")], Bytes::new())
            .await
            .location(),
    );
    assert_eq!(s.patch(&url, 0, &b"abc"[..]).await.offset(), 3);
    let id = url.rsplit('/').next().unwrap().to_owned();
    // The last PATCH only names the length: no bytes, and the upload is done.
    let r = s
        .patch_with(&url, 3, &[("Upload-Length", "3")], Bytes::new())
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(!r.has("upload-expires"));
    assert!(
        s.stores_finished(&id, 3),
        "the finished object is stored without waiting for a download"
    );
    assert_eq!(s.get(&url, &[]).await.body, &b"abc"[..]);
}

#[tokio::test]
async fn d2_length_cannot_change_once_set() {
    let s = start().await;
    let url = s.url(
        s.post(&[("Upload-Defer-Length", "1")], Bytes::new())
            .await
            .location(),
    );
    assert_eq!(
        s.patch_with(&url, 0, &[("Upload-Length", "10")], &b"ab"[..])
            .await
            .status,
        204
    );
    let r = s
        .patch_with(&url, 2, &[("Upload-Length", "12")], &b"cd"[..])
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(s.head(&url).await.header("upload-length"), Some("10"));
    assert_eq!(
        s.patch_with(&url, 2, &[("Upload-Length", "10")], &b"cd"[..])
            .await
            .status,
        204,
        "repeating it is fine"
    );
}

#[tokio::test]
async fn d2_length_smaller_than_offset_is_400() {
    let s = start().await;
    let url = s.url(
        s.post(&[("Upload-Defer-Length", "1")], Bytes::new())
            .await
            .location(),
    );
    s.patch(&url, 0, &b"abcdef"[..]).await;
    let r = s
        .patch_with(&url, 6, &[("Upload-Length", "3")], Bytes::new())
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn d2_deferred_length_over_the_maximum_is_413() {
    let Some(s) = start_with(|c| c.max_size = Some(100)).await else {
        return;
    };
    let url = s.url(
        s.post(&[("Upload-Defer-Length", "1")], Bytes::new())
            .await
            .location(),
    );
    let r = s
        .patch_with(&url, 0, &[("Upload-Length", "101")], Bytes::new())
        .await;
    assert_eq!(r.status, 413);
    let r = s.patch(&url, 0, vec![0u8; 101]).await;
    assert_eq!(
        r.status, 413,
        "bytes past the maximum are refused while the length is unknown"
    );
    assert_eq!(s.head(&url).await.offset(), 0);
}

#[tokio::test]
async fn d3_head_says_defer_length_while_unknown() {
    let s = start().await;
    let url = s.url(
        s.post(&[("Upload-Defer-Length", "1")], Bytes::new())
            .await
            .location(),
    );
    let h = s.head(&url).await;
    assert_eq!(h.header("upload-defer-length"), Some("1"));
    assert!(!h.has("upload-length"));
}

#[tokio::test]
async fn c2_empty_chunked_post_body_is_fine_and_a_non_empty_one_is_415() {
    use tokio::io::AsyncWriteExt;
    let s = start().await;
    for (chunks, want) in [
        ("0\r\n\r\n", "HTTP/1.1 201"),
        ("3\r\nabc\r\n0\r\n\r\n", "HTTP/1.1 415"),
    ] {
        let mut conn = tokio::net::TcpStream::connect(s.host_port()).await.unwrap();
        let req = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 3\r\n\
             Transfer-Encoding: chunked\r\n\r\n{chunks}",
            s.base_path()
        );
        conn.write_all(req.as_bytes()).await.unwrap();
        let resp = read_raw_response(&mut conn).await;
        assert!(resp.starts_with(want), "{chunks:?}: {resp}");
    }
}
