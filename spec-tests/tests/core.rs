//! Core protocol: global headers (G*), OPTIONS (O*), HEAD (H*), PATCH (P*).

use bytes::Bytes;
use spec_tests::*;

fn missing(s: &Server) -> String {
    format!("{}0123456789abcdef0123456789abcdef", s.endpoint)
}

#[tokio::test]
async fn g1_upload_offset_is_a_non_negative_integer() {
    let s = start().await;
    let url = s.create(10).await;
    let r = s.patch(&url, 0, &b"abc"[..]).await;
    assert_eq!(r.header("upload-offset"), Some("3"));
    assert!(
        r.header("upload-offset")
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
}

#[tokio::test]
async fn g1_negative_upload_offset_is_rejected() {
    let s = start().await;
    let url = s.create(10).await;
    let r = s.patch(&url, 0, Bytes::new()).await;
    assert_eq!(r.status, 204);
    let r = s
        .send(
            "PATCH",
            &url,
            &[
                ("Tus-Resumable", "1.0.0"),
                ("Upload-Offset", "-1"),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            &b"a"[..],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(s.head(&url).await.offset(), 0);
}

#[tokio::test]
async fn g2_upload_length_must_be_a_non_negative_integer() {
    let s = start().await;
    for bad in ["-5", "abc", "1.5", "", "0x10", "99999999999999999999"] {
        let r = s.post(&[("Upload-Length", bad)], Bytes::new()).await;
        assert_eq!(r.status, 400, "Upload-Length {bad:?}: {}", r.text());
    }
}

#[tokio::test]
async fn g3_tus_version_lists_1_0_0() {
    let s = start().await;
    let r = s.options().await;
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
}

#[tokio::test]
async fn g4_every_response_carries_tus_resumable() {
    let s = start().await;
    let url = s.create(5).await;
    for r in [
        s.options().await,
        s.head(&url).await,
        s.patch(&url, 0, &b"ab"[..]).await,
        s.head(&missing(&s)).await,
    ] {
        assert_eq!(r.header("tus-resumable"), Some("1.0.0"), "{:?}", r.status);
    }
    let r = s.post(&[("Upload-Length", "1")], Bytes::new()).await;
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
    let r = s.delete(&url).await;
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
}

#[tokio::test]
async fn g5_unsupported_version_is_412_with_tus_version() {
    let s = start().await;
    let r = s
        .send(
            "POST",
            &s.endpoint.clone(),
            &[("Tus-Resumable", "0.2.2"), ("Upload-Length", "5")],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 412);
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
}

#[tokio::test]
async fn g5_missing_version_is_412_and_nothing_is_processed() {
    let s = start().await;
    let url = s.create(5).await;
    let r = s
        .send(
            "PATCH",
            &url,
            &[
                ("Upload-Offset", "0"),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            &b"abc"[..],
        )
        .await;
    assert_eq!(r.status, 412);
    assert_eq!(
        s.head(&url).await.offset(),
        0,
        "the request must not be processed"
    );
    let r = s.send("DELETE", &url, &[], Bytes::new()).await;
    assert_eq!(r.status, 412);
    assert_eq!(
        s.head(&url).await.status,
        200,
        "the upload must still exist"
    );
}

#[tokio::test]
async fn g6_tus_extension_lists_what_is_supported() {
    let s = start().await;
    let r = s.options().await;
    let ext: Vec<&str> = r
        .header("tus-extension")
        .unwrap()
        .split(',')
        .map(str::trim)
        .collect();
    for e in [
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "checksum",
        "concatenation",
        "concatenation-unfinished",
        "checksum-trailer",
    ] {
        assert!(ext.contains(&e), "missing {e} in {ext:?}");
    }
}

#[tokio::test]
async fn g7_tus_max_size_is_advertised_when_set() {
    let Some(s) = start_with(|c| c.max_size = Some(12345)).await else {
        return;
    };
    assert_eq!(s.options().await.header("tus-max-size"), Some("12345"));
    let Some(s) = start_with(|c| c.max_size = None).await else {
        return;
    };
    assert!(
        !s.options().await.has("tus-max-size"),
        "no limit, no header"
    );
}

#[tokio::test]
async fn g8_method_override_turns_post_into_patch() {
    let s = start().await;
    let url = s.create(5).await;
    let r = s
        .send(
            "POST",
            &url,
            &[
                ("Tus-Resumable", "1.0.0"),
                ("X-HTTP-Method-Override", "PATCH"),
                ("Upload-Offset", "0"),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            &b"hello"[..],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.offset(), 5);
}

#[tokio::test]
async fn g8_method_override_turns_post_into_delete() {
    let s = start().await;
    let url = s.create(5).await;
    let r = s
        .send(
            "POST",
            &url,
            &[
                ("Tus-Resumable", "1.0.0"),
                ("X-HTTP-Method-Override", "DELETE"),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(s.head(&url).await.status, 404);
}

#[tokio::test]
async fn o1_options_succeeds_with_tus_version() {
    let s = start().await;
    let r = s.options().await;
    assert!(r.status == 200 || r.status == 204);
    assert!(r.has("tus-version"));
}

#[tokio::test]
async fn o1_options_on_an_upload_url_works_too() {
    let s = start().await;
    let url = s.create(1).await;
    let r = s.send("OPTIONS", &url, &[], Bytes::new()).await;
    assert!(r.status.is_success());
    assert!(r.has("tus-version"));
}

#[tokio::test]
async fn o2_options_ignores_tus_resumable() {
    let s = start().await;
    let r = s
        .send(
            "OPTIONS",
            &s.endpoint.clone(),
            &[("Tus-Resumable", "0.0.1")],
            Bytes::new(),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.status);
}

#[tokio::test]
async fn o4_checksum_algorithms_are_listed_with_sha1() {
    let s = start().await;
    let r = s.options().await;
    let algs: Vec<&str> = r
        .header("tus-checksum-algorithm")
        .unwrap()
        .split(',')
        .collect();
    assert!(algs.contains(&"sha1"));
    assert!(
        algs.iter()
            .all(|a| a.chars().all(|c| !c.is_ascii_uppercase()))
    );
}

#[tokio::test]
async fn h1_head_includes_offset_even_when_zero() {
    let s = start().await;
    let url = s.create(10).await;
    let r = s.head(&url).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("upload-offset"), Some("0"));
}

#[tokio::test]
async fn h1_head_includes_offset_when_complete() {
    let s = start().await;
    let url = s.upload(b"done").await;
    let r = s.head(&url).await;
    assert_eq!((r.offset(), r.header("upload-length")), (4, Some("4")));
}

#[tokio::test]
async fn h2_head_includes_length() {
    let s = start().await;
    let url = s.create(42).await;
    assert_eq!(s.head(&url).await.header("upload-length"), Some("42"));
}

#[tokio::test]
async fn h3_unknown_upload_is_404_without_offset() {
    let s = start().await;
    let r = s.head(&missing(&s)).await;
    assert_eq!(r.status, 404);
    assert!(!r.has("upload-offset"));
}

#[tokio::test]
async fn h4_successful_head_is_200_or_204() {
    let s = start().await;
    let url = s.create(1).await;
    let st = s.head(&url).await.status;
    assert!(st == 200 || st == 204);
}

#[tokio::test]
async fn h5_head_is_not_cacheable() {
    let s = start().await;
    let url = s.create(1).await;
    assert_eq!(s.head(&url).await.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn p1_patch_applies_bytes_at_the_offset() {
    let s = start().await;
    let url = s.create(6).await;
    assert_eq!(s.patch(&url, 0, &b"abc"[..]).await.offset(), 3);
    assert_eq!(s.patch(&url, 3, &b"def"[..]).await.offset(), 6);
    assert_eq!(s.get(&url, &[]).await.body, &b"abcdef"[..]);
}

#[tokio::test]
async fn p2_wrong_content_type_is_415() {
    let s = start().await;
    let url = s.create(3).await;
    let r = s
        .send(
            "PATCH",
            &url,
            &[
                ("Tus-Resumable", "1.0.0"),
                ("Upload-Offset", "0"),
                ("Content-Type", "application/octet-stream"),
            ],
            &b"abc"[..],
        )
        .await;
    assert_eq!(r.status, 415);
    assert_eq!(s.head(&url).await.offset(), 0);
}

#[tokio::test]
async fn p2_missing_content_type_is_415() {
    let s = start().await;
    let url = s.create(3).await;
    let r = s
        .send(
            "PATCH",
            &url,
            &[("Tus-Resumable", "1.0.0"), ("Upload-Offset", "0")],
            &b"abc"[..],
        )
        .await;
    assert_eq!(r.status, 415);
}

#[tokio::test]
async fn p3_offset_mismatch_is_409_and_changes_nothing() {
    let s = start().await;
    let url = s.create(10).await;
    s.patch(&url, 0, &b"abc"[..]).await;
    for wrong in [0, 2, 4, 10] {
        let r = s.patch(&url, wrong, &b"zz"[..]).await;
        assert_eq!(r.status, 409, "offset {wrong}");
        // The current offset comes with it (tusd, the IETF draft), so no HEAD is needed.
        assert_eq!(r.header("upload-offset"), Some("3"), "offset {wrong}");
    }
    assert_eq!(s.head(&url).await.offset(), 3);
    assert_eq!(s.patch(&url, 3, &b"defghij"[..]).await.offset(), 10);
    assert_eq!(s.get(&url, &[]).await.body, &b"abcdefghij"[..]);
}

#[tokio::test]
async fn p3_missing_upload_offset_is_400() {
    let s = start().await;
    let url = s.create(3).await;
    let r = s
        .send(
            "PATCH",
            &url,
            &[
                ("Tus-Resumable", "1.0.0"),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            &b"abc"[..],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("ERR_INVALID_OFFSET"));
}

#[tokio::test]
async fn p4_many_small_patches_make_one_file() {
    let s = start().await;
    let data = bytes(10_000, 7);
    let url = s.create(data.len() as u64).await;
    let mut off = 0;
    for piece in data.chunks(997) {
        let r = s.patch(&url, off, piece.to_vec()).await;
        assert_eq!(r.status, 204);
        off = r.offset();
    }
    assert_eq!(s.get(&url, &[]).await.body, data);
}

#[tokio::test]
async fn p5_success_is_204_with_new_offset() {
    let s = start().await;
    let url = s.create(100).await;
    let r = s.patch(&url, 0, vec![1u8; 60]).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.offset(), 60);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn p5_empty_patch_keeps_the_offset() {
    let s = start().await;
    let url = s.create(5).await;
    let r = s.patch(&url, 0, Bytes::new()).await;
    assert_eq!((r.status.as_u16(), r.offset()), (204, 0));
}

#[tokio::test]
async fn p6_patch_to_unknown_upload_is_404() {
    let s = start().await;
    let r = s.patch(&missing(&s), 0, &b"abc"[..]).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn p6_ids_with_path_characters_are_404() {
    let s = start().await;
    let base = s.base_path();
    for id in ["..%2f..%2fetc%2fpasswd", "a.b", "x%00y"] {
        let r = s.head(&format!("{base}{id}")).await;
        assert_eq!(r.status, 404, "{id}");
    }
    let r = s.head(&format!("{base}../tuskd.db")).await;
    assert!(r.status == 404 || r.status == 400, "{}", r.status);
}

#[tokio::test]
async fn patch_beyond_upload_length_is_413_and_writes_nothing() {
    let s = start().await;
    let url = s.create(5).await;
    let r = s.patch(&url, 0, &b"too long"[..]).await;
    assert_eq!(r.status, 413);
    assert_eq!(s.head(&url).await.offset(), 0);
    let r = s.patch(&url, 0, &b"abc"[..]).await;
    assert_eq!(r.status, 204);
    let r = s.patch(&url, 3, &b"def"[..]).await;
    assert_eq!(r.status, 413);
    assert_eq!(s.head(&url).await.offset(), 3);
}

#[tokio::test]
async fn patch_on_a_complete_upload_with_data_is_413() {
    let s = start().await;
    let url = s.upload(b"full").await;
    let r = s.patch(&url, 4, &b"x"[..]).await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn duplicate_upload_offset_headers_are_400() {
    let s = start().await;
    let url = s.create(5).await;
    let r = s
        .patch_with(&url, 0, &[("Upload-Offset", "0")], &b"abc"[..])
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("ERR_DUPLICATE_HEADER"), "{}", r.text());
    assert_eq!(s.head(&url).await.offset(), 0);
}

#[tokio::test]
async fn unknown_methods_are_405_with_allow() {
    let s = start().await;
    let url = s.create(1).await;
    let r = s
        .send("PUT", &url, &[("Tus-Resumable", "1.0.0")], Bytes::new())
        .await;
    assert_eq!(r.status, 405);
    assert!(r.header("allow").unwrap().contains("PATCH"));
}

#[tokio::test]
async fn errors_are_short_text_with_a_code() {
    let s = start().await;
    let r = s.patch(&missing(&s), 0, &b"abc"[..]).await;
    assert!(
        r.text().starts_with("ERR_UPLOAD_NOT_FOUND: "),
        "{}",
        r.text()
    );
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
}

#[tokio::test]
async fn refused_patch_with_unread_body_closes_the_connection() {
    let s = start().await;
    let url = s.create(10).await;
    let r = s.patch(&url, 5, vec![0u8; 5]).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.header("connection"),
        Some("close"),
        "the unread body must not be taken for the next request"
    );
}

#[tokio::test]
async fn header_values_that_are_not_text_are_400() {
    let s = start().await;
    let r = s
        .post(
            &[("Upload-Length", "1"), ("Upload-Metadata", "name \u{e9}")],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let url = s.create(3).await;
    let r = s
        .send(
            "PATCH",
            &url,
            &[
                ("Tus-Resumable", "1.0.0"),
                ("Upload-Offset", "0\u{ff}"),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            &b"abc"[..],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(s.head(&url).await.offset(), 0);
}
