//! The storage contract suite: every backend runs these same checks.

use bytes::Bytes;
use futures_util::TryStreamExt;

use super::{Storage, StorageError};
use crate::upload::UploadId;

async fn read_all(s: &dyn Storage, id: &UploadId, range: std::ops::Range<u64>) -> Vec<u8> {
    let chunks: Vec<Bytes> = s
        .read(id, range)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    chunks.concat()
}

pub async fn run(s: &dyn Storage) {
    append_in_pieces(s).await;
    rollback_discards_uncommitted(s).await;
    concat_in_order(s).await;
    delete_is_idempotent(s).await;
}

async fn append_in_pieces(s: &dyn Storage) {
    let id = UploadId::random();
    s.create(&id).await.unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut a = s.appender(&id, 0).await.unwrap();
    for piece in data[..600_000].chunks(7_001) {
        a.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    assert_eq!(a.commit().await.unwrap(), 600_000);
    drop(a);
    // Resume in a new appender, as a new request would.
    let mut a = s.appender(&id, 600_000).await.unwrap();
    a.write(Bytes::copy_from_slice(&data[600_000..]))
        .await
        .unwrap();
    assert_eq!(a.commit().await.unwrap(), 1_000_000);
    assert_eq!(read_all(s, &id, 0..1_000_000).await, data);
    assert_eq!(read_all(s, &id, 10..20).await, &data[10..20]);
    assert_eq!(read_all(s, &id, 999_990..1_000_000).await, &data[999_990..]);
}

async fn rollback_discards_uncommitted(s: &dyn Storage) {
    let id = UploadId::random();
    s.create(&id).await.unwrap();
    let mut a = s.appender(&id, 0).await.unwrap();
    a.write(Bytes::from_static(b"keep")).await.unwrap();
    assert_eq!(a.commit().await.unwrap(), 4);
    a.write(Bytes::from(vec![b'x'; 500_000])).await.unwrap();
    a.rollback().await.unwrap();
    let mut a = s.appender(&id, 4).await.unwrap();
    a.write(Bytes::from_static(b"!")).await.unwrap();
    assert_eq!(a.commit().await.unwrap(), 5);
    assert_eq!(read_all(s, &id, 0..5).await, b"keep!");
}

async fn concat_in_order(s: &dyn Storage) {
    let mut parts = Vec::new();
    for text in [&b"abc"[..], b"", b"defgh"] {
        let id = UploadId::random();
        s.create(&id).await.unwrap();
        let mut a = s.appender(&id, 0).await.unwrap();
        a.write(Bytes::copy_from_slice(text)).await.unwrap();
        a.commit().await.unwrap();
        parts.push((id, text.len() as u64));
    }
    parts.push(parts[0].clone());
    let fin = UploadId::random();
    s.concat(&fin, &parts).await.unwrap();
    assert_eq!(read_all(s, &fin, 0..11).await, b"abcdefghabc");
}

async fn delete_is_idempotent(s: &dyn Storage) {
    let id = UploadId::random();
    s.create(&id).await.unwrap();
    s.delete(&id).await.unwrap();
    s.delete(&id).await.unwrap();
    assert!(matches!(
        s.appender(&id, 0).await,
        Err(StorageError::Missing(_))
    ));
}
