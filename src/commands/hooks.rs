//! `tuskd hooks list [--failed]` and `tuskd hooks retry ID`: the outbox of a data directory,
//! read and changed directly in its database (a running server picks retried events up).

use std::io::Write;

use crate::cli::{HooksAction, HooksArgs};
use crate::domain::event::EventState;

/// Runs the command; returns the process exit status.
pub async fn run(args: &HooksArgs) -> Result<u8, String> {
    let meta = crate::meta::open_existing(&args.data_dir, args.meta.as_deref()).await?;
    match &args.action {
        HooksAction::List { failed } => {
            let events = meta.list_events(*failed).await.map_err(|e| e.to_string())?;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{:<32}  {:<14}  {:<32}  {:<7}  {:>8}  {:<20}  last error",
                "id", "event", "upload", "state", "attempts", "created"
            );
            for e in events {
                let state = match e.state {
                    EventState::Held => "held",
                    EventState::Pending => "pending",
                    EventState::Dead => "dead",
                };
                let created = humantime::format_rfc3339_seconds(e.created_at);
                let _ = writeln!(
                    out,
                    "{:<32}  {:<14}  {:<32}  {:<7}  {:>8}  {:<20}  {}",
                    e.event.id,
                    e.event.kind,
                    e.event.upload,
                    state,
                    e.attempts,
                    created,
                    e.last_error.unwrap_or_default().replace('\n', " ")
                );
            }
            Ok(0)
        }
        HooksAction::Retry { id } => {
            if meta.retry_event(id).await.map_err(|e| e.to_string())? {
                println!("event {id} is due again");
                Ok(0)
            } else {
                Err(format!("no event {id} in the outbox"))
            }
        }
    }
}
