//! `tuskd media list [--failed]` and `tuskd media retry ID`: the media jobs of a data directory,
//! read and changed directly in its database (a running server runs retried jobs).

use std::io::Write;

use crate::cli::{MediaAction, MediaCliArgs};
use crate::meta::MetaStore;
use crate::meta::sqlite::SqliteMeta;
use crate::upload::UploadId;

/// Runs the command; returns the process exit status.
pub async fn run(args: &MediaCliArgs) -> Result<u8, String> {
    let db = args.data_dir.join("tuskd.db");
    if !db.is_file() {
        return Err(format!("no tuskd database at {}", db.display()));
    }
    let meta = SqliteMeta::open(&db, true).map_err(|e| e.to_string())?;
    match &args.action {
        MediaAction::List { failed } => {
            let records = meta.list_media(*failed).await.map_err(|e| e.to_string())?;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{:<32}  {:<10}  {:<16}  {:>8}  {:<20}  reason",
                "upload", "status", "type", "attempts", "updated"
            );
            for r in records {
                let reason = match (&r.reason_code, &r.reason) {
                    (Some(c), Some(m)) => format!("{c}: {m}"),
                    (Some(c), None) => c.clone(),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "{:<32}  {:<10}  {:<16}  {:>8}  {:<20}  {}",
                    r.id,
                    r.status.as_str(),
                    r.detected.unwrap_or_else(|| "-".into()),
                    r.attempts,
                    humantime::format_rfc3339_seconds(r.updated_at),
                    reason.replace('\n', " ")
                );
            }
            Ok(0)
        }
        MediaAction::Retry { id } => {
            let parsed =
                UploadId::parse(id).ok_or_else(|| format!("{id:?} is not an upload id"))?;
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
    }
}
