//! The storage contract suite: every backend runs these same checks.
//!
//! `open` makes a new instance over the same stored state, as a restarted process would; sizes
//! are multiples of `unit` (the backend's part size, or any size for local disk) so that parts,
//! tails and their boundaries are crossed.

use bytes::Bytes;
use futures_util::TryStreamExt;

use super::{Storage, StorageError};
use crate::domain::upload::UploadId;

pub(super) type Open<'a> = &'a (dyn Fn() -> Box<dyn Storage> + Sync);

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

fn pattern(len: u64, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(31).wrapping_add(seed) % 251) as u8)
        .collect()
}

/// Writes `data` in uneven pieces.
async fn write_all(a: &mut dyn super::Append, data: &[u8]) {
    for piece in data.chunks(70_001) {
        a.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
}

pub(super) async fn run(open: Open<'_>, unit: u64) {
    append_resume_in_new_instance(open, unit).await;
    interrupted_append_keeps_committed(open, unit).await;
    reopen_at_an_older_commit(open, unit).await;
    checkpoints_are_resume_points(open, unit).await;
    length_known_after_the_last_byte(open, unit).await;
    rollback_discards_uncommitted(open, unit).await;
    concat_in_order(open, unit).await;
    empty_upload(open).await;
    delete_removes_everything(open, unit).await;
}

async fn append_resume_in_new_instance(open: Open<'_>, unit: u64) {
    let len = unit * 5 / 2 + 3;
    let data = pattern(len, 1);
    let cut = unit * 6 / 10;
    let id = UploadId::random();
    let s = open();
    s.create(&id).await.unwrap();
    let mut a = s.appender(&id, 0, Some(len)).await.unwrap();
    write_all(a.as_mut(), &data[..cut as usize]).await;
    assert_eq!(a.commit().await.unwrap(), cut);
    drop(a);
    drop(s);
    // A new process resumes at the recorded offset.
    let s = open();
    let mut a = s.appender(&id, cut, Some(len)).await.unwrap();
    write_all(a.as_mut(), &data[cut as usize..]).await;
    assert_eq!(a.commit().await.unwrap(), len);
    drop(a);
    s.finish(&id, len).await.unwrap();
    s.finish(&id, len).await.unwrap(); // idempotent
    assert_eq!(read_all(s.as_ref(), &id, 0..len).await, data);
    // Ranges: the start, across a part boundary, the end.
    assert_eq!(read_all(s.as_ref(), &id, 10..20).await, &data[10..20]);
    let (a, b) = (unit - 5, unit + 5);
    assert_eq!(
        read_all(s.as_ref(), &id, a..b).await,
        &data[a as usize..b as usize]
    );
    assert_eq!(
        read_all(s.as_ref(), &id, len - 7..len).await,
        &data[len as usize - 7..]
    );
}

async fn interrupted_append_keeps_committed(open: Open<'_>, unit: u64) {
    let len = unit * 3;
    let data = pattern(len, 2);
    let id = UploadId::random();
    let s = open();
    s.create(&id).await.unwrap();
    let mut a = s.appender(&id, 0, Some(len)).await.unwrap();
    let first = unit * 13 / 10;
    write_all(a.as_mut(), &data[..first as usize]).await;
    assert_eq!(a.commit().await.unwrap(), first);
    // The connection drops: more bytes arrive, but are never committed.
    write_all(a.as_mut(), &data[first as usize..(unit * 2 + 9) as usize]).await;
    drop(a);
    let s = open();
    let mut a = s.appender(&id, first, Some(len)).await.unwrap();
    write_all(a.as_mut(), &data[first as usize..]).await;
    assert_eq!(a.commit().await.unwrap(), len);
    drop(a);
    s.finish(&id, len).await.unwrap();
    assert_eq!(read_all(s.as_ref(), &id, 0..len).await, data);
}

async fn reopen_at_an_older_commit(open: Open<'_>, unit: u64) {
    // A crash between a commit and recording its length: the last recorded offset still works.
    let len = unit * 4;
    let data = pattern(len, 3);
    let id = UploadId::random();
    let s = open();
    s.create(&id).await.unwrap();
    let mut a = s.appender(&id, 0, Some(len)).await.unwrap();
    let recorded = unit / 2;
    write_all(a.as_mut(), &data[..recorded as usize]).await;
    assert_eq!(a.commit().await.unwrap(), recorded);
    let lost = unit * 5 / 2;
    write_all(a.as_mut(), &data[recorded as usize..lost as usize]).await;
    assert_eq!(a.commit().await.unwrap(), lost);
    drop(a);
    let s = open();
    let mut a = s.appender(&id, recorded, Some(len)).await.unwrap();
    write_all(a.as_mut(), &data[recorded as usize..]).await;
    assert_eq!(a.commit().await.unwrap(), len);
    drop(a);
    s.finish(&id, len).await.unwrap();
    assert_eq!(read_all(s.as_ref(), &id, 0..len).await, data);
}

async fn checkpoints_are_resume_points(open: Open<'_>, unit: u64) {
    let len = unit * 4;
    let data = pattern(len, 5);
    let id = UploadId::random();
    let s = open();
    s.create(&id).await.unwrap();
    let mut a = s.appender(&id, 0, Some(len)).await.unwrap();
    let first = unit * 3 / 10;
    write_all(a.as_mut(), &data[..first as usize]).await;
    assert_eq!(a.commit().await.unwrap(), first);
    // A checkpoint saves at least what the last commit did, and at most what was written.
    let written = unit * 5 / 2;
    write_all(a.as_mut(), &data[first as usize..written as usize]).await;
    let saved = a.checkpoint().await.unwrap();
    assert!((first..=written).contains(&saved), "{saved}");
    // More arrives, then the process dies: the checkpoint is where the upload resumes.
    write_all(a.as_mut(), &data[written as usize..(unit * 3) as usize]).await;
    drop(a);
    let s = open();
    let mut a = s.appender(&id, saved, Some(len)).await.unwrap();
    write_all(a.as_mut(), &data[saved as usize..]).await;
    assert_eq!(
        a.checkpoint().await.unwrap(),
        len,
        "the last bytes are always saved"
    );
    drop(a);
    s.finish(&id, len).await.unwrap();
    assert_eq!(read_all(s.as_ref(), &id, 0..len).await, data);
}

async fn length_known_after_the_last_byte(open: Open<'_>, unit: u64) {
    // A deferred length, sent by a PATCH after the last bytes were stored; with a rolled-back
    // chunk that had sent whole parts before it.
    for len in [unit * 2 / 5, unit * 23 / 10, unit * 2] {
        let data = pattern(len, 6);
        let id = UploadId::random();
        let s = open();
        s.create(&id).await.unwrap();
        let mut a = s.appender(&id, 0, None).await.unwrap();
        write_all(a.as_mut(), &vec![b'x'; (unit * 5 / 2) as usize]).await;
        a.rollback().await.unwrap();
        let mut a = s.appender(&id, 0, None).await.unwrap();
        let half = (len / 2) as usize;
        write_all(a.as_mut(), &data[..half]).await;
        assert_eq!(a.commit().await.unwrap(), half as u64);
        write_all(a.as_mut(), &data[half..]).await;
        assert_eq!(a.commit().await.unwrap(), len);
        drop(a);
        s.finish(&id, len).await.unwrap();
        assert_eq!(read_all(s.as_ref(), &id, 0..len).await, data, "{len}");
    }
}

async fn rollback_discards_uncommitted(open: Open<'_>, unit: u64) {
    let id = UploadId::random();
    let s = open();
    s.create(&id).await.unwrap();
    let mut a = s.appender(&id, 0, None).await.unwrap();
    a.write(Bytes::from_static(b"keep")).await.unwrap();
    assert_eq!(a.commit().await.unwrap(), 4);
    // A checksummed chunk bigger than a part that fails verification.
    write_all(a.as_mut(), &vec![b'x'; (unit * 3 / 2) as usize]).await;
    a.rollback().await.unwrap();
    let mut a = s.appender(&id, 4, Some(5)).await.unwrap();
    a.write(Bytes::from_static(b"!")).await.unwrap();
    assert_eq!(a.commit().await.unwrap(), 5);
    drop(a);
    s.finish(&id, 5).await.unwrap();
    assert_eq!(read_all(s.as_ref(), &id, 0..5).await, b"keep!");
}

async fn concat_in_order(open: Open<'_>, unit: u64) {
    let s = open();
    let mut parts = Vec::new();
    let mut expected = Vec::new();
    for (i, len) in [unit + 7, 0, 3, unit * 2].into_iter().enumerate() {
        let data = pattern(len, 10 + i as u32);
        let id = UploadId::random();
        s.create(&id).await.unwrap();
        let mut a = s.appender(&id, 0, Some(len)).await.unwrap();
        write_all(a.as_mut(), &data).await;
        assert_eq!(a.commit().await.unwrap(), len);
        drop(a);
        s.finish(&id, len).await.unwrap();
        parts.push((id, len));
        expected.extend_from_slice(&data);
    }
    parts.push(parts[2].clone());
    expected.extend_from_slice(&pattern(3, 12));
    let total = expected.len() as u64;
    let fin = UploadId::random();
    s.concat(&fin, &parts).await.unwrap();
    s.finish(&fin, total).await.unwrap();
    assert_eq!(read_all(s.as_ref(), &fin, 0..total).await, expected);
    let (a, b) = (unit, unit + 20);
    assert_eq!(
        read_all(s.as_ref(), &fin, a..b).await,
        &expected[a as usize..b as usize]
    );
}

async fn empty_upload(open: Open<'_>) {
    let s = open();
    let id = UploadId::random();
    s.create(&id).await.unwrap();
    s.finish(&id, 0).await.unwrap();
    assert!(read_all(s.as_ref(), &id, 0..0).await.is_empty());
}

async fn delete_removes_everything(open: Open<'_>, unit: u64) {
    let s = open();
    let id = UploadId::random();
    s.create(&id).await.unwrap();
    let mut a = s.appender(&id, 0, None).await.unwrap();
    write_all(a.as_mut(), &pattern(unit * 3 / 2, 4)).await;
    a.commit().await.unwrap();
    drop(a);
    s.delete(&id).await.unwrap();
    s.delete(&id).await.unwrap();
    assert!(matches!(
        s.appender(&id, 0, None).await,
        Err(StorageError::Missing(_))
    ));
    assert!(matches!(
        s.read(&id, 0..1).await,
        Err(StorageError::Missing(_))
    ));
}
