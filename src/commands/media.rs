//! `tuskd media list [--failed]`, `tuskd media retry ID` and `tuskd media reprocess ID|--kind
//! K|--all`: the media jobs of a data directory, read and changed directly in its database (a
//! running server runs the jobs queued again).

use std::io::Write;

use crate::cli::{KindArg, MediaAction, MediaCliArgs};
use crate::domain::media::{MediaRecord, MediaStatus};
use crate::domain::upload::UploadId;
use crate::media::limits::Kind;
use crate::meta::MetaStore;

/// Runs the command; returns the process exit status.
pub async fn run(args: &MediaCliArgs) -> Result<u8, String> {
    let meta = crate::meta::open_existing(&args.data_dir, args.meta.as_deref()).await?;
    let meta = meta.as_ref();
    match &args.action {
        MediaAction::List { failed } => list(meta, *failed).await,
        MediaAction::Retry { id } => retry(meta, id).await,
        MediaAction::Reprocess { id: Some(id), .. } => reprocess(meta, id).await,
        MediaAction::Reprocess { kind, .. } => reprocess_all(meta, *kind).await,
    }
}

/// `tuskd media list [--failed]`: one line per media record.
async fn list(meta: &dyn MetaStore, failed: bool) -> Result<u8, String> {
    let records = meta.list_media(failed).await.map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<32}  {:<10}  {:<4}  {:<16}  {:>8}  {:<20}  reason",
        "upload", "status", "lane", "type", "attempts", "updated"
    );
    for r in records {
        let reason = match (&r.reason_code, &r.reason) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.clone(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<32}  {:<10}  {:<4}  {:<16}  {:>8}  {:<20}  {}",
            r.id,
            r.status.as_str(),
            r.lane.as_str(),
            r.detected.unwrap_or_else(|| "-".into()),
            r.attempts,
            humantime::format_rfc3339_seconds(r.updated_at),
            reason.replace('\n', " ")
        );
        // A long video's tasks, one line each under it.
        for t in meta.tasks(&r.id).await.map_err(|e| e.to_string())? {
            let _ = writeln!(
                out,
                "  task {:<8}  {:<8}  {:>5.1}%  {:>2} attempts  {}  {}",
                t.name,
                t.status.as_str(),
                t.progress,
                t.attempts,
                t.worker.as_deref().unwrap_or("-"),
                t.reason.as_deref().unwrap_or_default().replace('\n', " ")
            );
        }
    }
    Ok(0)
}

/// `tuskd media retry ID`.
async fn retry(meta: &dyn MetaStore, id: &str) -> Result<u8, String> {
    let parsed = UploadId::parse(id).ok_or_else(|| format!("{id:?} is not an upload id"))?;
    if meta.retry_media(&parsed).await.map_err(|e| e.to_string())? {
        println!("media job {id} is queued again");
        Ok(0)
    } else if meta
        .media(&parsed)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        Err(format!(
            "media job {id} is running or waiting for its upload; try later"
        ))
    } else {
        Err(format!("no media job {id}"))
    }
}

/// `tuskd media reprocess ID`.
async fn reprocess(meta: &dyn MetaStore, id: &str) -> Result<u8, String> {
    let parsed = UploadId::parse(id).ok_or_else(|| format!("{id:?} is not an upload id"))?;
    if meta
        .get(&parsed)
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err(format!(
            "upload {id} is not stored (terminated, expired or rejected): nothing to reprocess"
        ));
    }
    if meta.retry_media(&parsed).await.map_err(|e| e.to_string())? {
        println!("media job {id} is queued to be reprocessed");
        Ok(0)
    } else {
        Err(format!(
            "media job {id} is not finished (or does not exist); try later"
        ))
    }
}

/// `tuskd media reprocess --kind K|--all`: every finished job (of the kind) whose upload is
/// still stored.
async fn reprocess_all(meta: &dyn MetaStore, kind: Option<KindArg>) -> Result<u8, String> {
    let want = kind.map(|k| match k {
        KindArg::Video => Kind::Video,
        KindArg::Audio => Kind::Audio,
        KindArg::Image => Kind::Image,
        KindArg::Document => Kind::Document,
    });
    let mut queued = 0;
    for r in meta.list_media(false).await.map_err(|e| e.to_string())? {
        let finished = matches!(r.status, MediaStatus::Ready | MediaStatus::Failed);
        if !finished || want.is_some_and(|k| kind_of(&r) != Some(k)) {
            continue;
        }
        if meta.get(&r.id).await.map_err(|e| e.to_string())?.is_some()
            && meta.retry_media(&r.id).await.map_err(|e| e.to_string())?
        {
            queued += 1;
        }
    }
    println!("{queued} media jobs queued to be reprocessed");
    Ok(0)
}

/// What a record is: its detected type's kind, video or audio as its probe found.
pub fn kind_of(r: &MediaRecord) -> Option<Kind> {
    let kind = Kind::of(r.detected.as_deref()?);
    Some(match (&r.probe, kind) {
        (Some(p), Kind::Video | Kind::Audio) if p.video.is_some() => Kind::Video,
        (Some(p), Kind::Video | Kind::Audio) if p.audio.is_some() => Kind::Audio,
        _ => kind,
    })
}
