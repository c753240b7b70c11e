//! `tuskd upload FILE… --url URL`: a resumable tus client. Each file's upload URL is remembered
//! (`state`) as soon as it is made, so a rerun after Ctrl-C, a crash or a lost connection asks
//! the server for its offset and goes on from there; connection errors, 5xx, 409 and 423 are
//! retried with exponential backoff, the offset re-read each time. `--parallel N` sends N ranges
//! as partial uploads and joins them (concatenation); `--wait` follows the media processing
//! (`wait`). Progress: `progress`. The requests: `tus`. With `--token` every request carries
//! it; a 401 stops the command (the same credentials will not do better for the next file),
//! and a remembered upload the server answers 404 (gone, or another owner's) is made anew.

pub mod args;
mod metadata;
mod progress;
mod retry;
mod state;
mod status;
mod tus;
mod wait;

use std::path::Path;

use serde_json::{Value, json};
use url::Url;

use args::UploadArgs;
use metadata::{metadata_header, parse_meta};
use progress::{Bar, Display};
use retry::{pause, with_retries};
use state::{Entry, State};
use tus::{Client, Failure, Server};

/// The chunk size with `--checksum` and no `--chunk-size`: a cut PATCH loses its whole chunk
/// (the server cannot check part of it), so chunks stay moderate.
const CHECKSUM_CHUNK: u64 = 16 * 1024 * 1024;

/// Everything one file's upload needs.
struct Ctx<'a> {
    args: &'a UploadArgs,
    client: Client,
    endpoint: Url,
    server: Server,
    display: Display,
    chunk: u64,
    parallel: usize,
}

/// Runs the command until it ends or Ctrl-C (SIGINT) comes, which ends it with status 130: what
/// the server received is kept there, and the same command run again resumes. The handler is
/// installed here, so that an interrupt also ends an upload started with SIGINT ignored (as
/// a background job of a script is).
pub async fn run_until_interrupted(args: &UploadArgs) -> Result<u8, String> {
    tokio::select! {
        r = run(args) => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("tuskd upload: interrupted; run the same command again to resume");
            Ok(130)
        }
    }
}

/// Runs the command; the exit status: 0 when every file was uploaded (and, with `--wait`, is
/// READY), 1 otherwise.
pub async fn run(args: &UploadArgs) -> Result<u8, String> {
    let endpoint = Url::parse(&args.url).map_err(|e| format!("--url {:?}: {e}", args.url))?;
    if !matches!(endpoint.scheme(), "http" | "https") {
        return Err(format!("--url {:?}: not an http(s) URL", args.url));
    }
    let metadata_extra = parse_meta(&args.meta)?;
    let client = Client::new(&args.headers, args.token.as_ref(), args.ca_cert.as_deref())?;
    let state_path = match &args.state {
        Some(p) => p.clone(),
        None => state::default_path()?,
    };
    let mut state = State::load(&state_path)?;
    let server = with_retries(args.retries, None, || client.options(&endpoint))
        .await
        .map_err(|e| format!("asking {endpoint} what it offers: {e}"))?;
    check_checksum(args, &server)?;
    let display = Display::new(args.json);
    let mut parallel = usize::from(args.parallel);
    if parallel > 1 && !server.has("concatenation") {
        display.println("the server does not offer concatenation: uploading each file whole");
        parallel = 1;
    }
    let chunk = args.chunk_size.unwrap_or(if args.checksum.is_some() {
        CHECKSUM_CHUNK
    } else {
        u64::MAX
    });
    let ctx = Ctx {
        args,
        client,
        endpoint,
        server,
        display,
        chunk,
        parallel,
    };

    let mut results = Vec::new();
    let mut ok = true;
    let mut refused = false;
    for file in &args.files {
        if refused {
            let e = "not tried: the server refused the credentials";
            eprintln!("tuskd upload: {}: {e}", file.display());
            results.push(json!({ "file": file.display().to_string(), "error": e }));
            continue;
        }
        let (result, outcome) = report_file(&ctx, &mut state, file, &metadata_extra).await;
        ok &= outcome == Outcome::Ok;
        refused = outcome == Outcome::Refused;
        results.push(result);
    }
    if args.json {
        println!("{}", Value::Array(results));
    }
    Ok(if ok { 0 } else { 1 })
}

/// Refuses `--checksum` with an algorithm the server does not take.
fn check_checksum(args: &UploadArgs, server: &Server) -> Result<(), String> {
    if let Some(algo) = args.checksum {
        let name = algo.algorithm().name();
        if !server.has("checksum") || !server.checksums.iter().any(|c| c == name) {
            return Err(format!(
                "the server does not take {name} checksums (it offers: {})",
                if server.checksums.is_empty() {
                    "none".to_owned()
                } else {
                    server.checksums.join(", ")
                }
            ));
        }
    }
    Ok(())
}

/// How one file went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Failed,
    /// The server refused the credentials: the files after it are not tried.
    Refused,
}

/// Uploads one file and reports it (its URL, with `--wait` its media, or its error); returns
/// its JSON result and how it went.
async fn report_file(
    ctx: &Ctx<'_>,
    state: &mut State,
    file: &Path,
    extra: &[(String, String)],
) -> (Value, Outcome) {
    let args = ctx.args;
    let mut outcome = Outcome::Ok;
    let mut result = json!({ "file": file.display().to_string() });
    match upload_file(ctx, state, file, extra).await {
        Ok(url) => {
            result["url"] = json!(url.as_str());
            if !args.json {
                ctx.display.println(url.as_str());
            }
            if args.wait {
                let doc = wait::follow(ctx, file, &url).await;
                if doc["reason"]["code"] == wait::REFUSED {
                    outcome = Outcome::Refused;
                } else if doc.get("status").and_then(Value::as_str) != Some("READY") {
                    outcome = Outcome::Failed;
                }
                if !args.json {
                    wait::print(&ctx.display, file, &doc);
                }
                result["media"] = doc;
            }
        }
        Err(e) => {
            outcome = match e {
                Failure::Refused(_) => Outcome::Refused,
                _ => Outcome::Failed,
            };
            eprintln!("tuskd upload: {}: {e}", file.display());
            result["error"] = json!(e.to_string());
        }
    }
    (result, outcome)
}

/// Uploads one file (or finds it uploaded) and returns its upload URL.
async fn upload_file(
    ctx: &Ctx<'_>,
    state: &mut State,
    file: &Path,
    extra: &[(String, String)],
) -> Result<Url, Failure> {
    let fatal = Failure::Fatal;
    let meta = std::fs::metadata(file).map_err(|e| fatal(e.to_string()))?;
    if !meta.is_file() {
        return Err(fatal("not a regular file".into()));
    }
    let size = meta.len();
    if let Some(max) = ctx.server.max_size.filter(|&m| m > 0 && size > m) {
        return Err(fatal(format!(
            "{size} bytes is more than the server accepts ({max} bytes)"
        )));
    }
    let fp = state::fingerprint(ctx.endpoint.as_str(), file).map_err(|e| fatal(e.to_string()))?;
    let metadata = metadata_header(file, extra).map_err(fatal)?;
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    // At least 1 MiB per range: smaller ranges cost more requests than they save.
    let parts = ctx.parallel.min((size / (1024 * 1024)).max(1) as usize);
    let bar = ctx.display.bytes(&name, size, parts);
    // A remembered upload that the server no longer has (or, with credentials, that is not
    // theirs to see: another owner's answers 404) is made again, once.
    let gone = if ctx.client.has_credentials() {
        "the server does not have the upload (any more), or not for these credentials; \
         starting a new one"
    } else {
        "the server no longer has the upload; starting again"
    };
    for _ in 0..2 {
        let outcome = if parts > 1 {
            parallel(ctx, state, &fp, file, size, parts, &metadata, &bar).await
        } else {
            whole(ctx, state, &fp, file, size, &metadata, &bar).await
        };
        match outcome {
            Ok(url) => {
                bar.finish("done");
                return Ok(url);
            }
            Err(Failure::Gone) => {
                bar.note(gone);
                state.set(&fp, None).map_err(fatal)?;
            }
            Err(e) => {
                bar.finish("failed");
                return Err(e);
            }
        }
    }
    Err(fatal("the server lost the upload twice".into()))
}

/// One upload for the whole file.
async fn whole(
    ctx: &Ctx<'_>,
    state: &mut State,
    fp: &str,
    file: &Path,
    size: u64,
    metadata: &str,
    bar: &Bar,
) -> Result<Url, Failure> {
    let url = match state.get(fp).and_then(|e| e.url.clone()) {
        Some(u) => Url::parse(&u).map_err(|e| Failure::Fatal(e.to_string()))?,
        None => {
            let url = with_retries(ctx.args.retries, Some(bar), || {
                ctx.client.create(&ctx.endpoint, Some(size), metadata, None)
            })
            .await?;
            remember(state, fp, Some(url.to_string()), vec![])?;
            url
        }
    };
    send(ctx, &url, file, 0..size, 0, bar).await?;
    Ok(url)
}

/// `parts` partial uploads of equal ranges, sent at once, then the final upload joining them.
#[allow(clippy::too_many_arguments)]
async fn parallel(
    ctx: &Ctx<'_>,
    state: &mut State,
    fp: &str,
    file: &Path,
    size: u64,
    parts: usize,
    metadata: &str,
    bar: &Bar,
) -> Result<Url, Failure> {
    let ranges: Vec<std::ops::Range<u64>> = (0..parts as u64)
        .map(|i| size * i / parts as u64..size * (i + 1) / parts as u64)
        .collect();
    let mut entry = state.get(fp).cloned().unwrap_or_default();
    if let Some(done) = &entry.url {
        // The final upload exists: the file is there.
        let url = Url::parse(done).map_err(|e| Failure::Fatal(e.to_string()))?;
        with_retries(ctx.args.retries, Some(bar), || ctx.client.offset(&url)).await?;
        bar.set(0, size);
        return Ok(url);
    }
    if entry.parts.len() != parts {
        entry.parts.clear();
        for r in &ranges {
            let url = with_retries(ctx.args.retries, Some(bar), || {
                ctx.client
                    .create(&ctx.endpoint, Some(r.end - r.start), "", Some("partial"))
            })
            .await?;
            entry.parts.push(url.to_string());
            remember(state, fp, None, entry.parts.clone())?;
        }
    }
    let urls: Vec<Url> = entry
        .parts
        .iter()
        .map(|u| Url::parse(u).map_err(|e| Failure::Fatal(e.to_string())))
        .collect::<Result<_, _>>()?;
    let sends = urls
        .iter()
        .zip(&ranges)
        .enumerate()
        .map(|(i, (url, r))| send(ctx, url, file, r.clone(), i, bar));
    for r in futures_util::future::join_all(sends).await {
        r?;
    }
    let concat = format!(
        "final;{}",
        urls.iter().map(Url::as_str).collect::<Vec<_>>().join(" ")
    );
    let url = with_retries(ctx.args.retries, Some(bar), || {
        ctx.client
            .create(&ctx.endpoint, None, metadata, Some(&concat))
    })
    .await?;
    remember(state, fp, Some(url.to_string()), entry.parts)?;
    Ok(url)
}

fn remember(
    state: &mut State,
    fp: &str,
    url: Option<String>,
    parts: Vec<String>,
) -> Result<(), Failure> {
    state
        .set(fp, Some(Entry { url, parts }))
        .map_err(Failure::Fatal)
}

/// Sends the bytes `range` of `file` to the upload at `url` (whose offset 0 is `range.start`),
/// from the server's offset on, PATCH by PATCH, retrying what can be retried.
async fn send(
    ctx: &Ctx<'_>,
    url: &Url,
    file: &Path,
    range: std::ops::Range<u64>,
    part: usize,
    bar: &Bar,
) -> Result<(), Failure> {
    let len = range.end - range.start;
    let mut attempt = 0;
    let mut offset = None;
    let mut first = true;
    loop {
        let at = match offset {
            Some(o) => o,
            None => match ctx.client.offset(url).await {
                Ok((o, _)) => o,
                Err(Failure::Retry(m)) => {
                    attempt += 1;
                    pause(ctx.args.retries, attempt, &m, bar).await?;
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        bar.set(part, at);
        if std::mem::take(&mut first) && at > 0 && at < len {
            bar.note(&format!("resuming at {at} bytes"));
        }
        if at >= len {
            return Ok(());
        }
        let end = len.min(at.saturating_add(ctx.chunk));
        let b = bar.clone();
        match ctx
            .client
            .patch(
                url,
                file,
                range.start + at..range.start + end,
                at,
                ctx.args.checksum,
                move |n| b.add(part, n),
            )
            .await
        {
            Ok(new) => {
                attempt = 0;
                offset = Some(new);
            }
            Err(Failure::Retry(m)) => {
                offset = None;
                attempt += 1;
                pause(ctx.args.retries, attempt, &m, bar).await?;
            }
            Err(e) => return Err(e),
        }
    }
}
