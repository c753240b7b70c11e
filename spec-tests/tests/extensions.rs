//! Checksum (K*), termination (T*), expiration (E*) and concatenation (X*).

use std::time::Duration;

use bytes::Bytes;
use spec_tests::*;

fn ext(r: &Resp) -> Vec<String> {
    r.header("tus-extension")
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect()
}

// ---- checksum ----

#[tokio::test]
async fn k1_checksum_is_advertised() {
    let s = start().await;
    assert!(ext(&s.options().await).contains(&"checksum".to_owned()));
}

#[tokio::test]
async fn k2_matching_sha1_is_accepted() {
    let s = start().await;
    let url = s.create(11).await;
    let r = s
        .patch_with(
            &url,
            0,
            &[(
                "Upload-Checksum",
                &format!("sha1 {}", sha1_b64(b"hello world")),
            )],
            &b"hello world"[..],
        )
        .await;
    assert_eq!((r.status.as_u16(), r.offset()), (204, 11));
}

#[tokio::test]
async fn k2_matching_sha256_md5_and_sha512_are_accepted() {
    use sha2::Digest;
    let s = start().await;
    let data = bytes(3000, 1);
    let url = s.create(3000).await;
    let sums = [
        format!("sha256 {}", sha256_b64(&data[..1000])),
        format!("md5 {}", B64.encode(md5_digest(&data[1000..2000]))),
        format!("sha512 {}", B64.encode(sha2::Sha512::digest(&data[2000..]))),
    ];
    for (i, sum) in sums.iter().enumerate() {
        let off = (i * 1000) as u64;
        let r = s
            .patch_with(
                &url,
                off,
                &[("Upload-Checksum", sum)],
                data[i * 1000..(i + 1) * 1000].to_vec(),
            )
            .await;
        assert_eq!(r.status, 204, "{sum}: {}", r.text());
    }
    assert_eq!(s.get(&url, &[]).await.body, data);
}

fn md5_digest(data: &[u8]) -> Vec<u8> {
    use md5::Digest;
    md5::Md5::digest(data).to_vec()
}

#[tokio::test]
async fn k3_mismatch_is_460_and_the_chunk_is_discarded() {
    let s = start().await;
    let url = s.create(10).await;
    s.patch(&url, 0, &b"abc"[..]).await;
    let r = s
        .patch_with(
            &url,
            3,
            &[("Upload-Checksum", &format!("sha1 {}", sha1_b64(b"other")))],
            &b"defg"[..],
        )
        .await;
    assert_eq!(r.status, 460);
    assert_eq!(s.head(&url).await.offset(), 3, "K4: offset unchanged");
    assert_eq!(s.patch(&url, 3, &b"DEFGHIJ"[..]).await.offset(), 10);
    assert_eq!(
        s.get(&url, &[]).await.body,
        &b"abcDEFGHIJ"[..],
        "K4: discarded bytes leave no trace"
    );
}

#[tokio::test]
async fn k3_unsupported_algorithm_is_400_and_nothing_is_stored() {
    let s = start().await;
    let url = s.create(3).await;
    let r = s
        .patch_with(
            &url,
            0,
            &[("Upload-Checksum", "crc32 AAAAAA==")],
            &b"abc"[..],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("ERR_UNSUPPORTED_CHECKSUM_ALGORITHM"));
    assert_eq!(s.head(&url).await.offset(), 0);
}

#[tokio::test]
async fn k5_sha1_is_supported_and_names_are_lowercase() {
    let s = start().await;
    let url = s.create(3).await;
    let r = s
        .patch_with(
            &url,
            0,
            &[("Upload-Checksum", &format!("SHA1 {}", sha1_b64(b"abc")))],
            &b"abc"[..],
        )
        .await;
    assert_eq!(r.status, 400, "algorithm names are lowercase");
    let r = s
        .patch_with(
            &url,
            0,
            &[("Upload-Checksum", &format!("sha1 {}", sha1_b64(b"abc")))],
            &b"abc"[..],
        )
        .await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn k7_malformed_checksum_header_is_400() {
    let s = start().await;
    let url = s.create(3).await;
    for bad in ["sha1", "sha1 not-base64!"] {
        let r = s
            .patch_with(&url, 0, &[("Upload-Checksum", bad)], &b"abc"[..])
            .await;
        assert_eq!(r.status, 400, "{bad}");
    }
    assert_eq!(s.head(&url).await.offset(), 0);
}

#[tokio::test]
async fn k3_a_digest_of_the_wrong_length_is_a_mismatch_460() {
    // Valid base64, but 3 bytes where sha1 has 20, or a sha1 digest sent as sha256: a checksum
    // that does not match, not a malformed header.
    let s = start().await;
    let url = s.create(3).await;
    for wrong in [
        "sha1 YWJj".to_owned(),
        format!("sha256 {}", sha1_b64(b"abc")),
    ] {
        let r = s
            .patch_with(&url, 0, &[("Upload-Checksum", &wrong)], &b"abc"[..])
            .await;
        assert_eq!(r.status, 460, "{wrong}");
    }
    assert_eq!(s.head(&url).await.offset(), 0, "the chunk was discarded");
}

// ---- termination ----

#[tokio::test]
async fn t1_termination_is_advertised() {
    let s = start().await;
    assert!(ext(&s.options().await).contains(&"termination".to_owned()));
}

#[tokio::test]
async fn t2_delete_unfinished_upload_is_204() {
    let s = start().await;
    let url = s.create(10).await;
    s.patch(&url, 0, &b"abc"[..]).await;
    let r = s.delete(&url).await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn t2_delete_completed_upload_is_204() {
    let s = start().await;
    let url = s.upload(b"complete").await;
    assert_eq!(s.delete(&url).await.status, 204);
}

#[tokio::test]
async fn t2_delete_frees_the_storage() {
    let Some(s) = start_with(|_| {}).await else {
        return;
    };
    let url = s.upload(b"some bytes").await;
    let id = url.rsplit('/').next().unwrap().to_owned();
    assert!(s.stores_bytes_of(&id));
    s.delete(&url).await;
    assert!(!s.stores_bytes_of(&id));
    // An unfinished upload with bytes in it too.
    let url = s.create(10).await;
    s.patch(&url, 0, &b"abc"[..]).await;
    let id = url.rsplit('/').next().unwrap().to_owned();
    assert!(s.stores_bytes_of(&id));
    s.delete(&url).await;
    assert!(!s.stores_bytes_of(&id));
}

#[tokio::test]
async fn t3_after_delete_requests_are_404() {
    let s = start().await;
    let url = s.create(5).await;
    s.delete(&url).await;
    assert_eq!(s.head(&url).await.status, 404);
    assert_eq!(s.patch(&url, 0, &b"a"[..]).await.status, 404);
    assert_eq!(s.delete(&url).await.status, 404);
    assert_eq!(s.get(&url, &[]).await.status, 404);
}

// ---- expiration ----

#[tokio::test]
async fn e1_expiration_is_advertised_when_enabled() {
    let Some(s) = start_with(|c| c.expire_after = Some(Duration::from_secs(60))).await else {
        return;
    };
    assert!(ext(&s.options().await).contains(&"expiration".to_owned()));
    let Some(s) = start_with(|c| c.expire_after = None).await else {
        return;
    };
    assert!(!ext(&s.options().await).contains(&"expiration".to_owned()));
    let url = s.create(5).await;
    assert!(!s.head(&url).await.has("upload-expires"));
}

fn is_imf_fixdate(v: &str) -> bool {
    // e.g. "Wed, 25 Jun 2014 16:00:00 GMT"
    let parts: Vec<&str> = v.split(' ').collect();
    parts.len() == 6 && parts[0].ends_with(',') && parts[5] == "GMT" && parts[4].len() == 8
}

#[tokio::test]
async fn e2_e3_upload_expires_on_post_patch_and_head() {
    let s = start().await;
    let r = s.post(&[("Upload-Length", "10")], Bytes::new()).await;
    let v = r
        .header("upload-expires")
        .expect("POST carries Upload-Expires");
    assert!(is_imf_fixdate(v), "{v}");
    let url = s.url(r.location());
    let p = s.patch(&url, 0, &b"abc"[..]).await;
    assert!(is_imf_fixdate(
        p.header("upload-expires")
            .expect("PATCH carries Upload-Expires")
    ));
    assert!(is_imf_fixdate(
        s.head(&url)
            .await
            .header("upload-expires")
            .expect("HEAD carries it")
    ));
}

#[tokio::test]
async fn e3_finished_uploads_do_not_expire() {
    let s = start().await;
    let url = s.create(3).await;
    let r = s.patch(&url, 0, &b"abc"[..]).await;
    assert!(!r.has("upload-expires"));
    assert!(!s.head(&url).await.has("upload-expires"));
}

/// An in-process server whose uploads expire after a day, and its clock, to move past that.
async fn expiring_in_a_day() -> Option<(Server, tuskd::clock::Clock)> {
    let clock = tuskd::clock::Clock::default();
    let theirs = clock.clone();
    let s = start_with(move |c| {
        c.expire_after = Some(Duration::from_secs(24 * 3600));
        c.clock = theirs;
    })
    .await?;
    Some((s, clock))
}

#[tokio::test]
async fn e4_expired_upload_answers_410_and_its_storage_is_reclaimed() {
    let Some((s, clock)) = expiring_in_a_day().await else {
        return;
    };
    let url = s.create(10).await;
    s.patch(&url, 0, &b"abc"[..]).await;
    let id = url.rsplit('/').next().unwrap().to_owned();
    assert!(s.stores_bytes_of(&id));
    clock.advance(Duration::from_secs(23 * 3600));
    assert_eq!(s.head(&url).await.status, 200, "not a day yet");
    clock.advance(Duration::from_secs(2 * 3600));
    let r = s
        .head_until(&url, Duration::from_secs(10), |r| r.status == 410)
        .await;
    assert_eq!(r.status, 410);
    assert!(!r.has("upload-offset"));
    // The sweeper reclaims the bytes in the background (an upload a request holds meanwhile
    // is left for its next pass).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.stores_bytes_of(&id) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !s.stores_bytes_of(&id),
        "storage of the expired upload is reclaimed"
    );
    assert_eq!(s.patch(&url, 3, &b"d"[..]).await.status, 410);
}

#[tokio::test]
async fn e4_finished_uploads_survive_the_sweeper() {
    let Some((s, clock)) = expiring_in_a_day().await else {
        return;
    };
    let done = s.upload(b"keep me").await;
    let unfinished = s.create(10).await;
    clock.advance(Duration::from_secs(25 * 3600));
    let r = s
        .head_until(&unfinished, Duration::from_secs(10), |r| r.status == 410)
        .await;
    assert_eq!(r.status, 410);
    assert_eq!(s.get(&done, &[]).await.body, &b"keep me"[..]);
}

// ---- concatenation ----

async fn partial(s: &Server, data: &[u8]) -> String {
    let r = s
        .post(
            &[
                ("Upload-Length", &data.len().to_string()),
                ("Upload-Concat", "partial"),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let url = s.url(r.location());
    if !data.is_empty() {
        assert_eq!(s.patch(&url, 0, data.to_vec()).await.status, 204);
    }
    url
}

/// Creates a final upload from an `Upload-Concat` value; returns its URL.
async fn final_of(s: &Server, concat: &str) -> String {
    let r = s.post(&[("Upload-Concat", concat)], Bytes::new()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    s.url(r.location())
}

#[tokio::test]
async fn x1_concatenation_is_advertised() {
    let s = start().await;
    assert!(ext(&s.options().await).contains(&"concatenation".to_owned()));
}

#[tokio::test]
async fn x2_x3_final_is_the_partials_in_order() {
    let s = start().await;
    let a = partial(&s, b"hello ").await;
    let b = partial(&s, b"tus ").await;
    let c = partial(&s, b"world").await;
    let header = format!("final;{} {} {}", a, path_of(&b), c);
    let r = s.post(&[("Upload-Concat", &header)], Bytes::new()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let fin = s.url(r.location());
    assert_eq!(s.get(&fin, &[]).await.body, &b"hello tus world"[..]);
}

#[tokio::test]
async fn x3_final_length_is_the_sum() {
    let s = start().await;
    let a = partial(&s, &bytes(1000, 1)).await;
    let b = partial(&s, &bytes(234, 2)).await;
    let h = s.head(&final_of(&s, &format!("final;{a} {b}")).await).await;
    assert_eq!(h.header("upload-length"), Some("1234"));
}

#[tokio::test]
async fn x3_final_with_upload_length_is_400() {
    // The client MUST NOT send Upload-Length for a final upload: its length is the partials'.
    let s = start().await;
    let a = partial(&s, b"abc").await;
    for length in [("Upload-Length", "3"), ("Upload-Defer-Length", "1")] {
        let r = s
            .post(
                &[length, ("Upload-Concat", &format!("final;{a}"))],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, 400, "{length:?}");
        assert!(!r.has("location"), "nothing was created");
    }
}

#[tokio::test]
async fn x4_concatenation_unfinished_is_advertised() {
    let s = start().await;
    assert!(ext(&s.options().await).contains(&"concatenation-unfinished".to_owned()));
}

/// A partial upload of `length` bytes holding `data` so far.
async fn unfinished_partial(s: &Server, length: &str, data: &[u8]) -> String {
    let len_header = match length {
        "deferred" => ("Upload-Defer-Length", "1"),
        n => ("Upload-Length", n),
    };
    let r = s
        .post(&[len_header, ("Upload-Concat", "partial")], Bytes::new())
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let url = s.url(r.location());
    if !data.is_empty() {
        assert_eq!(s.patch(&url, 0, data.to_vec()).await.status, 204);
    }
    url
}

#[tokio::test]
async fn x4_x7_x9_a_final_of_unfinished_partials_finishes_when_they_do() {
    let s = start().await;
    let a = partial(&s, b"hello ").await;
    let b = unfinished_partial(&s, "5", b"wo").await;
    let concat = format!("final;{a} {b} {a}");
    let fin = final_of(&s, &concat).await;

    // X7: no offset before the partials are done; X9: the length is known; X10: the header.
    let h = s.head(&fin).await;
    assert_eq!(h.status, 200);
    assert!(!h.has("upload-offset"), "{:?}", h.headers);
    assert_eq!(h.header("upload-length"), Some("17"));
    assert_eq!(h.header("upload-concat"), Some(concat.as_str()));
    assert_eq!(s.get(&fin, &[]).await.status, 400, "not finished yet");
    assert_eq!(s.patch(&fin, 0, &b"x"[..]).await.status, 403);

    assert_eq!(s.patch(&b, 2, &b"rld"[..]).await.status, 204);
    let h = s
        .head_until(&fin, Duration::from_secs(30), |r| r.has("upload-offset"))
        .await;
    assert_eq!(h.header("upload-offset"), Some("17"));
    assert_eq!(h.header("upload-length"), Some("17"));
    assert_eq!(s.get(&fin, &[]).await.body, &b"hello worldhello "[..]);
}

#[tokio::test]
async fn x9_a_final_of_a_deferred_partial_has_no_length_until_it_is_known() {
    let s = start().await;
    let a = unfinished_partial(&s, "deferred", b"abc").await;
    let fin = final_of(&s, &format!("final;{a}")).await;
    let h = s.head(&fin).await;
    assert!(
        !h.has("upload-length") && !h.has("upload-offset"),
        "{:?}",
        h.headers
    );
    let r = s
        .patch_with(&a, 3, &[("Upload-Length", "5")], &b"de"[..])
        .await;
    assert_eq!(r.status, 204);
    let h = s
        .head_until(&fin, Duration::from_secs(30), |r| r.has("upload-offset"))
        .await;
    assert_eq!(
        (h.header("upload-offset"), h.header("upload-length")),
        (Some("5"), Some("5"))
    );
    assert_eq!(s.get(&fin, &[]).await.body, &b"abcde"[..]);
}

#[tokio::test]
async fn x4_a_final_whose_partial_is_terminated_goes_with_it() {
    let s = start().await;
    let a = unfinished_partial(&s, "10", b"abc").await;
    let fin = final_of(&s, &format!("final;{a}")).await;
    assert_eq!(s.delete(&a).await.status, 204);
    let h = s
        .head_until(&fin, Duration::from_secs(60), |r| r.status != 200)
        .await;
    assert!(matches!(h.status.as_u16(), 404 | 410), "{}", h.status);
}

#[tokio::test]
async fn x5_a_partial_may_be_used_twice() {
    let s = start().await;
    let a = partial(&s, b"ab").await;
    let twice = final_of(&s, &format!("final;{a} {a}")).await;
    assert_eq!(s.get(&twice, &[]).await.body, &b"abab"[..]);
    let again = final_of(&s, &format!("final;{a}")).await;
    assert_eq!(
        s.get(&again, &[]).await.body,
        &b"ab"[..],
        "reused in another final"
    );
}

#[tokio::test]
async fn x5_unknown_or_non_partial_uploads_are_rejected() {
    let s = start().await;
    let plain = s.upload(b"plain").await;
    let r = s
        .post(
            &[("Upload-Concat", &format!("final;{plain}"))],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = s
        .post(
            &[(
                "Upload-Concat",
                &format!("final;{}ffffffffffffffffffffffffffffffff", s.base_path()),
            )],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = s.post(&[("Upload-Concat", "final;")], Bytes::new()).await;
    assert_eq!(r.status, 400);
    let r = s
        .post(&[("Upload-Concat", "final;/elsewhere/abc")], Bytes::new())
        .await;
    assert_eq!(r.status, 400);
    let r = s
        .post(
            &[("Upload-Length", "1"), ("Upload-Concat", "bogus")],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn x6_patch_to_a_final_upload_is_403() {
    let s = start().await;
    let a = partial(&s, b"abc").await;
    let fin = final_of(&s, &format!("final;{a}")).await;
    let r = s.patch(&fin, 3, &b"x"[..]).await;
    assert_eq!(r.status, 403);
    assert_eq!(s.get(&a, &[]).await.body, &b"abc"[..], "partials untouched");
}

#[tokio::test]
async fn x6_final_creation_with_data_is_403() {
    let s = start().await;
    let a = partial(&s, b"abc").await;
    let r = s
        .post(
            &[
                ("Upload-Concat", &format!("final;{a}")),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            &b"x"[..],
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn x7_x9_head_on_final_has_equal_offset_and_length() {
    let s = start().await;
    let a = partial(&s, b"12345").await;
    let fin = final_of(&s, &format!("final;{a}")).await;
    let h = s.head(&fin).await;
    assert_eq!(h.header("upload-offset"), Some("5"));
    assert_eq!(h.header("upload-length"), Some("5"));
}

#[tokio::test]
async fn x8_x10_head_on_partial_has_offset_and_concat() {
    let s = start().await;
    let r = s
        .post(
            &[("Upload-Length", "4"), ("Upload-Concat", "partial")],
            Bytes::new(),
        )
        .await;
    let url = s.url(r.location());
    s.patch(&url, 0, &b"ab"[..]).await;
    let h = s.head(&url).await;
    assert_eq!(h.offset(), 2);
    assert_eq!(h.header("upload-concat"), Some("partial"));
}

#[tokio::test]
async fn x10_head_on_final_echoes_upload_concat() {
    let s = start().await;
    let a = partial(&s, b"x").await;
    let header = format!("final;{}", path_of(&a));
    let fin = final_of(&s, &header).await;
    assert_eq!(
        s.head(&fin).await.header("upload-concat"),
        Some(header.as_str())
    );
}

#[tokio::test]
async fn m9_final_takes_its_own_metadata_not_the_partials() {
    let s = start().await;
    let r = s
        .post(
            &[
                ("Upload-Length", "1"),
                ("Upload-Concat", "partial"),
                ("Upload-Metadata", "part YQ=="),
            ],
            Bytes::new(),
        )
        .await;
    let a = s.url(r.location());
    s.patch(&a, 0, &b"z"[..]).await;
    let r = s
        .post(
            &[
                ("Upload-Concat", &format!("final;{a}")),
                ("Upload-Metadata", "filename Zi50eHQ="),
            ],
            Bytes::new(),
        )
        .await;
    let h = s.head(&s.url(r.location())).await;
    assert_eq!(h.header("upload-metadata"), Some("filename Zi50eHQ="));
}

#[tokio::test]
async fn final_over_the_maximum_is_413() {
    let Some(s) = start_with(|c| c.max_size = Some(10)).await else {
        return;
    };
    let a = partial(&s, b"123456").await;
    let r = s
        .post(
            &[("Upload-Concat", &format!("final;{a} {a}"))],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 413);
}

// ---- checksum-trailer ----

/// A chunked PATCH whose last chunk is followed by `trailer` lines (e.g. `Upload-Checksum: …`).
async fn patch_with_trailer(
    s: &Server,
    url: &str,
    offset: u64,
    announce: bool,
    data: &[u8],
    trailer: &str,
) -> String {
    use tokio::io::AsyncWriteExt;
    let mut conn = tokio::net::TcpStream::connect(s.host_port()).await.unwrap();
    let announce = if announce {
        "Trailer: Upload-Checksum\r\n"
    } else {
        ""
    };
    let head = format!(
        "PATCH {} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n\
         Content-Type: application/offset+octet-stream\r\nTransfer-Encoding: chunked\r\n{announce}\r\n{:x}\r\n",
        path_of(url),
        data.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(data).await.unwrap();
    conn.write_all(format!("\r\n0\r\n{trailer}\r\n").as_bytes())
        .await
        .unwrap();
    read_raw_response(&mut conn).await
}

#[tokio::test]
async fn kt1_checksum_trailer_is_advertised() {
    let s = start().await;
    assert!(ext(&s.options().await).contains(&"checksum-trailer".to_owned()));
}

#[tokio::test]
async fn kt1_matching_trailer_checksum_is_accepted() {
    let s = start().await;
    let url = s.create(11).await;
    let trailer = format!("Upload-Checksum: sha256 {}\r\n", sha256_b64(b"hello"));
    let resp = patch_with_trailer(&s, &url, 0, true, b"hello", &trailer).await;
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");
    let trailer = format!("Upload-Checksum: sha1 {}\r\n", sha1_b64(b" world"));
    let resp = patch_with_trailer(&s, &url, 5, true, b" world", &trailer).await;
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");
    assert_eq!(s.get(&url, &[]).await.body, &b"hello world"[..]);
}

#[tokio::test]
async fn kt1_mismatching_trailer_checksum_is_460_and_discarded() {
    let s = start().await;
    let url = s.create(10).await;
    let trailer = format!("Upload-Checksum: sha1 {}\r\n", sha1_b64(b"something else"));
    let resp = patch_with_trailer(&s, &url, 0, true, b"abcde", &trailer).await;
    assert!(resp.starts_with("HTTP/1.1 460"), "{resp}");
    assert_eq!(s.head(&url).await.offset(), 0);
}

#[tokio::test]
async fn kt1_announced_trailer_that_never_comes_is_400_and_discarded() {
    let s = start().await;
    let url = s.create(10).await;
    let resp = patch_with_trailer(&s, &url, 0, true, b"abcde", "").await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("ERR_INVALID_CHECKSUM"), "{resp}");
    assert_eq!(s.head(&url).await.offset(), 0);
    let trailer = "Upload-Checksum: crc32 AAAAAA==\r\n";
    let resp = patch_with_trailer(&s, &url, 0, true, b"abcde", trailer).await;
    assert!(
        resp.starts_with("HTTP/1.1 400"),
        "unsupported algorithm in a trailer: {resp}"
    );
    assert_eq!(s.head(&url).await.offset(), 0);
}

#[tokio::test]
async fn kt1_checksum_as_header_and_trailer_at_once_is_400() {
    let s = start().await;
    let url = s.create(3).await;
    let r = s
        .patch_with(
            &url,
            0,
            &[
                ("Upload-Checksum", &format!("sha1 {}", sha1_b64(b"abc"))),
                ("Trailer", "Upload-Checksum"),
            ],
            &b"abc"[..],
        )
        .await;
    assert_eq!(r.status, 400);
}
