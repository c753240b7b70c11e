//! What happens to a body in flight: P7 (timeouts), P8 (keep what arrived), one writer per
//! upload with takeover of a stalled client, HEAD never waiting, racing clients, shutdown.

use std::time::Duration;

use spec_tests::*;
use tokio::io::AsyncWriteExt;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn p8_bytes_of_a_dropped_connection_are_kept() {
    let s = start().await;
    let data = bytes(10_000, 5);
    let url = s.create(10_000).await;
    let conn = s.open_patch(&url, 0, 10_000, &data[..6_000]).await;
    drop(conn);
    let h = s.head_until(&url, WAIT, |r| r.offset() == 6_000).await;
    assert_eq!(
        h.offset(),
        6_000,
        "every byte received before the drop is kept"
    );
    assert_eq!(
        s.patch(&url, 6_000, data[6_000..].to_vec()).await.status,
        204
    );
    assert_eq!(s.get(&url, &[]).await.body, data);
}

#[tokio::test]
async fn p7_a_stalled_body_times_out_keeps_its_bytes_and_closes() {
    let Some(s) = start_with(|c| c.read_timeout = Duration::from_millis(300)).await else {
        return;
    };
    let data = bytes(1000, 8);
    let url = s.create(1000).await;
    let mut conn = s.open_patch(&url, 0, 1000, &data[..400]).await;
    let resp = read_raw_response(&mut conn).await;
    assert!(resp.starts_with("HTTP/1.1 500"), "{resp}");
    assert!(resp.contains("ERR_READ_TIMEOUT"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("connection: close"),
        "{resp}"
    );
    assert_eq!(s.head(&url).await.offset(), 400);
}

#[tokio::test]
async fn stalled_client_is_taken_over_by_a_new_patch() {
    let s = start().await; // read timeout 10 s: the takeover must not wait for it
    let data = bytes(2000, 4);
    let url = s.create(2000).await;
    let mut stalled = s.open_patch(&url, 0, 2000, &data[..700]).await;
    // A stalled client's bytes are saved while it stalls, so the resuming client sees them.
    let h = s.head_until(&url, WAIT, |r| r.offset() == 700).await;
    assert_eq!(h.offset(), 700);
    let r = s.patch(&url, 700, data[700..].to_vec()).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let old = read_raw_response(&mut stalled).await;
    assert!(
        old.contains("ERR_UPLOAD_INTERRUPTED"),
        "the stalled request was told to stop: {old}"
    );
    assert_eq!(s.get(&url, &[]).await.body, data);
}

#[tokio::test]
async fn a_client_that_missed_saved_bytes_gets_409_then_resumes() {
    let s = start().await;
    let data = bytes(2000, 9);
    let url = s.create(2000).await;
    let mut stalled = s.open_patch(&url, 0, 2000, &data[..500]).await;
    s.head_until(&url, WAIT, |r| r.offset() == 500).await;
    let r = s.patch(&url, 0, data.clone()).await;
    assert_eq!(r.status, 409);
    let _ = read_raw_response(&mut stalled).await;
    assert_eq!(s.patch(&url, 500, data[500..].to_vec()).await.status, 204);
    assert_eq!(s.get(&url, &[]).await.body, data);
}

#[tokio::test]
async fn head_never_waits_behind_a_running_patch() {
    let s = start().await;
    let data = bytes(3000, 2);
    let url = s.create(3000).await;
    let mut running = s.open_patch(&url, 0, 3000, &data[..1000]).await;
    // HEAD answers while the PATCH is still open (its body is only finished afterwards).
    let h = s.head(&url).await;
    assert_eq!(h.status, 200);
    assert!(h.offset() <= 1000);
    running.write_all(&data[1000..]).await.unwrap();
    let resp = read_raw_response(&mut running).await;
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");
    assert_eq!(s.head(&url).await.offset(), 3000);
}

#[tokio::test]
async fn racing_clients_never_corrupt_an_upload() {
    let s = std::sync::Arc::new(start().await);
    let data = std::sync::Arc::new(bytes(1 << 20, 6));
    let url = s.create(data.len() as u64).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (s, data, url) = (s.clone(), data.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..10_000 {
                let off = s.head(&url).await.offset();
                if off as usize == data.len() {
                    break;
                }
                let end = (off as usize + 65_536).min(data.len());
                let r = s.patch(&url, off, data[off as usize..end].to_vec()).await;
                statuses.push(r.status.as_u16());
            }
            statuses
        }));
    }
    for t in tasks {
        for st in t.await.unwrap() {
            assert!([204, 409, 423, 400].contains(&st), "unexpected status {st}");
        }
    }
    assert_eq!(s.get(&url, &[]).await.body, *data);
}

#[tokio::test]
async fn shutdown_saves_running_uploads() {
    let Some(s) = start_with(|_| {}).await else {
        return;
    };
    let data = bytes(5000, 3);
    let url = s.create(5000).await;
    let path = path_of(&url);
    let mut running = s.open_patch(&url, 0, 5000, &data[..1234]).await;
    // The server holds the upload and has seen the bytes.
    assert_eq!(
        s.head_until(&url, WAIT, |r| r.offset() == 1234)
            .await
            .offset(),
        1234
    );
    let dir = s.stop().await.expect("in-process");
    let resp = read_raw_response(&mut running).await;
    assert!(
        resp.starts_with("HTTP/1.1 503") && resp.contains("ERR_SERVER_SHUTDOWN"),
        "{resp}"
    );
    let s = start_in_dir(dir, |_| {}).await;
    let url = s.url(&path);
    assert_eq!(
        s.head(&url).await.offset(),
        1234,
        "bytes that arrived before shutdown are kept"
    );
    assert_eq!(s.patch(&url, 1234, data[1234..].to_vec()).await.status, 204);
    assert_eq!(s.get(&url, &[]).await.body, data);
}

#[tokio::test]
async fn chunked_body_beyond_length_keeps_the_length_and_answers_413() {
    let s = start().await;
    let url = s.create(5).await;
    let mut conn = tokio::net::TcpStream::connect(s.host_port()).await.unwrap();
    let head = format!(
        "PATCH {} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n\
         Content-Type: application/offset+octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nabcdefgh\r\n0\r\n\r\n",
        path_of(&url)
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let resp = read_raw_response(&mut conn).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert_eq!(
        s.head(&url).await.offset(),
        5,
        "nothing past the length is written"
    );
    assert_eq!(s.get(&url, &[]).await.body, &b"abcde"[..]);
}

#[tokio::test]
async fn chunked_patch_to_a_finished_upload_is_413_or_a_no_op() {
    let s = start().await;
    let url = s.upload(b"done").await;
    for (chunks, status) in [("3\r\nabc\r\n0\r\n\r\n", "413"), ("0\r\n\r\n", "204")] {
        let mut conn = tokio::net::TcpStream::connect(s.host_port()).await.unwrap();
        let head = format!(
            "PATCH {} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 4\r\n\
             Content-Type: application/offset+octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}",
            path_of(&url)
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        let resp = read_raw_response(&mut conn).await;
        assert!(resp.starts_with(&format!("HTTP/1.1 {status}")), "{resp}");
    }
    assert_eq!(s.get(&url, &[]).await.body, &b"done"[..]);
}
