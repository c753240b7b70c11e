//! `tuskd upload --wait`: follows an upload's media status (`GET {media-path}{id}`) with a bar
//! of its own until READY, REJECTED or FAILED, then prints what it made. A video that becomes
//! PLAYABLE first has its early master playlist printed at once (`playable URL`).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use url::Url;

use super::Ctx;
use super::progress::{Bar, Display};
use super::status::Status;
use super::tus::Failure;

const FINAL: [&str; 3] = ["READY", "REJECTED", "FAILED"];

/// The reason code of a status the server would not show for the credentials (401).
pub(super) const REFUSED: &str = "unauthorized";

/// The last status document of `upload`'s media (with absolute variant URLs), or a document
/// with `status` `TIMEOUT` when processing did not end within `--wait-timeout`. The status is
/// read as it is pushed (`status::Events`), or asked for again each second from a server that
/// answers one document at a time.
pub(super) async fn follow(ctx: &Ctx<'_>, file: &Path, upload: &Url) -> Value {
    let id = upload
        .path_segments()
        .and_then(|mut s| s.rfind(|p| !p.is_empty()))
        .unwrap_or_default()
        .to_owned();
    let path = format!("{}/{id}", ctx.args.media_path.trim_end_matches('/'));
    let Ok(status_url) = upload.join(&path) else {
        return json!({ "status": "UNKNOWN", "error": format!("no media status URL from {path:?}") });
    };
    let name = file
        .file_name()
        .map_or_else(|| id.clone(), |n| n.to_string_lossy().into_owned());
    let mut seen = Seen {
        ctx,
        bar: ctx.display.percent(&format!("{name} (processing)")),
        base: status_url.clone(),
        last: json!({ "status": "UNKNOWN" }),
        said: String::new(),
        played: false,
    };
    let deadline = tokio::time::Instant::now() + ctx.args.wait_timeout;
    while tokio::time::Instant::now() < deadline {
        match ctx.client.status(&status_url).await {
            Ok(Status::Document(doc)) => {
                if seen.see(doc) {
                    return seen.last;
                }
            }
            Ok(Status::Stream(mut events)) => {
                while let Ok(Some(doc)) = tokio::time::timeout_at(deadline, events.next()).await {
                    if seen.see(doc) {
                        return seen.last;
                    }
                }
            }
            Err(Failure::Gone) => {
                seen.bar.finish("no media status");
                return json!({
                    "status": "UNKNOWN",
                    "reason": { "code": "no_status", "message": format!(
                        "the server has no media status at {status_url} (is its media pipeline on, \
                         and --media-path its media path?)") },
                });
            }
            Err(Failure::Refused(m)) => {
                seen.bar.finish("credentials refused");
                return json!({
                    "status": "UNKNOWN",
                    "reason": { "code": REFUSED, "message": m },
                });
            }
            // The server restarting, or a moment's trouble: ask again.
            Err(e) => seen.bar.note(&e.to_string()),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    seen.bar.finish("still processing");
    seen.last["status"] = json!("TIMEOUT");
    seen.last
}

/// What `follow` saw so far, shown as it comes.
struct Seen<'c, 'a> {
    ctx: &'c Ctx<'a>,
    bar: Bar,
    base: Url,
    last: Value,
    said: String,
    played: bool,
}

impl Seen<'_, '_> {
    /// Shows `doc` (the bar, a new status, the early master once); true when it is final.
    fn see(&mut self, doc: Value) -> bool {
        let status = doc
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN")
            .to_owned();
        let pct = doc.get("progress").and_then(Value::as_f64).unwrap_or(0.0);
        self.bar.set(0, pct.clamp(0.0, 100.0) as u64);
        if status != self.said {
            self.bar.note(&status);
            self.said.clone_from(&status);
        }
        self.last = absolute(doc, &self.base);
        // Said once.
        if status == "PLAYABLE" && !self.ctx.args.json && !std::mem::replace(&mut self.played, true)
        {
            let hls = self.last["variants"].as_array().into_iter().flatten();
            if let Some(url) = hls
                .filter(|v| v["kind"] == "hls")
                .find_map(|v| v["url"].as_str())
            {
                self.ctx.display.println(&format!("  playable {url}"));
            }
        }
        if FINAL.contains(&status.as_str()) {
            self.bar.finish(&status);
            return true;
        }
        false
    }
}

/// The document with each variant's URL made absolute against the status URL.
fn absolute(mut doc: Value, base: &Url) -> Value {
    if let Some(vs) = doc.get_mut("variants").and_then(Value::as_array_mut) {
        for v in vs {
            if let Some(u) = v.get("url").and_then(Value::as_str)
                && let Ok(abs) = base.join(u)
            {
                v["url"] = json!(abs.as_str());
            }
        }
    }
    doc
}

/// The outcome for people: the variants' URLs, or why there are none.
pub(super) fn print(display: &Display, file: &Path, doc: &Value) {
    let status = doc
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("UNKNOWN");
    match status {
        "READY" => {
            for v in doc
                .get("variants")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let kind = v.get("kind").and_then(Value::as_str).unwrap_or("file");
                let url = v.get("url").and_then(Value::as_str).unwrap_or("");
                display.println(&format!("  {kind} {url}"));
            }
        }
        _ => {
            let reason = doc
                .get("reason")
                .and_then(|r| r.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            eprintln!("tuskd upload: {}: media {status}: {reason}", file.display());
        }
    }
}
