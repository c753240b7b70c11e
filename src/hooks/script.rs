//! Script hooks: `<hooks-dir>/<event>` is run with the event as JSON on stdin and `TUS_ID`,
//! `TUS_SIZE`, `TUS_OFFSET` in its environment, as tusd runs them (and `TUSKD_EVENT_ID` for
//! post-* events, the same on every attempt). Its stdout is the answer,
//! its stderr goes to the log line by line, a non-zero exit is a failure, and at the timeout the
//! process is killed. A missing script means the event is not hooked.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use super::{HookError, MAX_RESPONSE_BYTES};

/// Runs the event's script and returns what it printed; nothing if there is no script.
pub async fn run(
    dir: &Path,
    name: &'static str,
    payload: &[u8],
    event_id: Option<&str>,
    timeout: Duration,
) -> Result<Vec<u8>, HookError> {
    let path = dir.join(name);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let fail = |what: String| HookError::Failed(name, what);
    // tusd's environment: the upload's id, size and offset.
    let upload = serde_json::from_slice::<serde_json::Value>(payload)
        .map(|v| v["Event"]["Upload"].clone())
        .unwrap_or_default();
    let field = |k: &str| match &upload[k] {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let id = field("ID");
    let mut command = Command::new(&path);
    command
        .current_dir(dir)
        .env("TUS_ID", &id)
        .env("TUS_SIZE", field("Size"))
        .env("TUS_OFFSET", field("Offset"));
    if let Some(event) = event_id {
        command.env("TUSKD_EVENT_ID", event);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot run {}: {e}", path.display())))?;

    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let log_stderr = async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(hook = name, %id, "{line}");
        }
    };
    let work = async {
        // A script that does not read its input must not block us: errors here are ignored.
        let feed = async {
            let _ = stdin.write_all(payload).await;
            drop(stdin);
        };
        let mut out = Vec::new();
        let mut limited = (&mut stdout).take(MAX_RESPONSE_BYTES as u64 + 1);
        let read = limited.read_to_end(&mut out);
        let (_, read, ()) = tokio::join!(feed, read, log_stderr);
        read.map_err(|e| fail(format!("reading its output: {e}")))?;
        if out.len() > MAX_RESPONSE_BYTES {
            return Err(fail(format!(
                "printed more than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        let status = child
            .wait()
            .await
            .map_err(|e| fail(format!("waiting for it: {e}")))?;
        if !status.success() {
            let shown: String = String::from_utf8_lossy(&out).chars().take(200).collect();
            return Err(fail(format!("exited with {status}; it printed {shown:?}")));
        }
        Ok(out)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        // Dropping the child kills it (kill_on_drop).
        Err(_) => Err(HookError::TimedOut(name, timeout)),
    }
}
