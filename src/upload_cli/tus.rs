//! The tus requests `tuskd upload` makes: discovery (OPTIONS), creation (POST, also of
//! partial and final uploads), the offset (HEAD) and a PATCH of a range of a file. Each answer
//! becomes a value or a [`Failure`] that says what the caller does next.

use std::ops::Range;
use std::path::Path;

use base64::Engine as _;
use futures_util::TryStreamExt;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use url::Url;

use super::args::ChecksumArg;
use crate::upload::checksum::Algorithm;

const TUS: &str = "1.0.0";

/// Why a request did not do what was asked.
#[derive(Debug)]
pub(super) enum Failure {
    /// Worth trying again after a pause (connection errors, 5xx, 409, 423): the caller re-reads
    /// the offset and goes on from there.
    Retry(String),
    /// The upload is not on the server (any more): a new one is to be made.
    Gone,
    /// Trying again will not help; the message says why.
    Fatal(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Retry(m) | Failure::Fatal(m) => f.write_str(m),
            Failure::Gone => f.write_str("the upload is no longer on the server"),
        }
    }
}

/// What the server's OPTIONS said.
#[derive(Debug, Default)]
pub(super) struct Server {
    pub max_size: Option<u64>,
    pub extensions: Vec<String>,
    pub checksums: Vec<String>,
}

impl Server {
    pub(super) fn has(&self, extension: &str) -> bool {
        self.extensions.iter().any(|e| e == extension)
    }
}

#[derive(Clone)]
pub(super) struct Client {
    http: reqwest::Client,
    headers: reqwest::header::HeaderMap,
}

impl Client {
    /// A client sending `headers` (`Name: value`) with every request.
    pub(super) fn new(headers: &[String]) -> Result<Client, String> {
        let mut map = reqwest::header::HeaderMap::new();
        for h in headers {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| format!("--header {h:?}: expected `Name: value`"))?;
            let name = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|e| format!("--header {h:?}: {e}"))?;
            let value = reqwest::header::HeaderValue::from_str(value.trim())
                .map_err(|e| format!("--header {h:?}: {e}"))?;
            map.append(name, value);
        }
        map.insert(
            "Tus-Resumable",
            reqwest::header::HeaderValue::from_static(TUS),
        );
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(15))
            // A PATCH may take hours; a connection that sends nothing for this long is dead.
            .read_timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Client { http, headers: map })
    }

    fn request(&self, method: reqwest::Method, url: &Url) -> reqwest::RequestBuilder {
        self.http
            .request(method, url.clone())
            .headers(self.headers.clone())
    }

    pub(super) async fn options(&self, endpoint: &Url) -> Result<Server, Failure> {
        let resp = call(
            self.request(reqwest::Method::OPTIONS, endpoint),
            |s| s.is_success(),
            "OPTIONS",
        )
        .await?;
        let list = |name: &str| -> Vec<String> {
            header(&resp, name)
                .map(|v| v.split(',').map(|e| e.trim().to_owned()).collect())
                .unwrap_or_default()
        };
        Ok(Server {
            max_size: header(&resp, "Tus-Max-Size").and_then(|v| v.parse().ok()),
            extensions: list("Tus-Extension"),
            checksums: list("Tus-Checksum-Algorithm"),
        })
    }

    /// Creates an upload of `length` bytes (`concat`: `partial`, or `final;URL URL…` with no
    /// length) and returns its URL.
    pub(super) async fn create(
        &self,
        endpoint: &Url,
        length: Option<u64>,
        metadata: &str,
        concat: Option<&str>,
    ) -> Result<Url, Failure> {
        let mut req = self.request(reqwest::Method::POST, endpoint);
        if let Some(n) = length {
            req = req.header("Upload-Length", n);
        }
        if !metadata.is_empty() {
            req = req.header("Upload-Metadata", metadata);
        }
        if let Some(c) = concat {
            req = req.header("Upload-Concat", c);
        }
        let resp = call(req, |s| s == StatusCode::CREATED, "creating the upload").await?;
        let location = header(&resp, "Location").ok_or_else(|| {
            Failure::Fatal("the server created an upload without a Location".into())
        })?;
        endpoint
            .join(&location)
            .map_err(|e| Failure::Fatal(format!("the server's Location {location:?}: {e}")))
    }

    /// The upload's offset and length (none while deferred).
    pub(super) async fn offset(&self, url: &Url) -> Result<(u64, Option<u64>), Failure> {
        let resp = call(
            self.request(reqwest::Method::HEAD, url),
            |s| s.is_success(),
            "asking for the offset",
        )
        .await?;
        let offset = header(&resp, "Upload-Offset")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Failure::Fatal("the server's HEAD has no Upload-Offset".into()))?;
        Ok((
            offset,
            header(&resp, "Upload-Length").and_then(|v| v.parse().ok()),
        ))
    }

    /// A JSON document (the media status). A 404 is `Gone`; what else went wrong, `Retry`.
    pub(super) async fn get_json(&self, url: &Url) -> Result<serde_json::Value, Failure> {
        let resp = self
            .request(reqwest::Method::GET, url)
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .map_err(connection)?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?;
        match status.as_u16() {
            200..=299 => serde_json::from_slice(&body)
                .map_err(|e| Failure::Retry(format!("{url}: not JSON: {e}"))),
            404 => Err(Failure::Gone),
            _ => Err(Failure::Retry(format!(
                "{url}: the server answered {status}"
            ))),
        }
    }

    /// Sends the bytes `range` of `file` as the upload's bytes from `offset`; `sent` is told of
    /// each piece handed to the connection. Returns the server's new offset.
    pub(super) async fn patch(
        &self,
        url: &Url,
        file: &Path,
        range: Range<u64>,
        offset: u64,
        checksum: Option<ChecksumArg>,
        sent: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<u64, Failure> {
        let len = range.end - range.start;
        let mut req = self
            .request(reqwest::Method::PATCH, url)
            .header("Upload-Offset", offset)
            .header("Content-Type", "application/offset+octet-stream")
            .header("Content-Length", len);
        if let Some(algo) = checksum {
            let digest = digest(file, range.clone(), algo.algorithm())
                .await
                .map_err(|e| Failure::Fatal(format!("reading {}: {e}", file.display())))?;
            req = req.header("Upload-Checksum", digest);
        }
        let bytes = open_range(file, range)
            .await
            .map_err(|e| Failure::Fatal(format!("reading {}: {e}", file.display())))?;
        let body = tokio_util::io::ReaderStream::with_capacity(bytes, 256 * 1024)
            .inspect_ok(move |chunk| sent(chunk.len() as u64));
        let resp = call(
            req.body(reqwest::Body::wrap_stream(body)),
            |s| s == StatusCode::NO_CONTENT,
            "sending bytes",
        )
        .await?;
        header(&resp, "Upload-Offset")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Failure::Fatal("the server's PATCH answer has no Upload-Offset".into()))
    }
}

/// Sends `req`; an answer `expect` does not accept becomes the Failure it means.
async fn call(
    req: reqwest::RequestBuilder,
    expect: impl Fn(StatusCode) -> bool,
    doing: &str,
) -> Result<reqwest::Response, Failure> {
    let resp = req.send().await.map_err(connection)?;
    if expect(resp.status()) {
        Ok(resp)
    } else {
        Err(answer(resp, doing).await)
    }
}

/// The bytes `range` of `file`, to read once.
async fn open_range(
    file: &Path,
    range: Range<u64>,
) -> std::io::Result<tokio::io::Take<tokio::fs::File>> {
    let mut f = tokio::fs::File::open(file).await?;
    f.seek(std::io::SeekFrom::Start(range.start)).await?;
    Ok(f.take(range.end - range.start))
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn connection(e: reqwest::Error) -> Failure {
    // The source chain says what happened (refused, reset, timed out).
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    Failure::Retry(text)
}

/// What an answer other than the expected one means.
async fn answer(resp: reqwest::Response, doing: &str) -> Failure {
    let status = resp.status();
    let max = header(&resp, "Tus-Max-Size");
    let body: String = resp
        .text()
        .await
        .unwrap_or_default()
        .trim()
        .chars()
        .take(300)
        .collect();
    let said = if body.is_empty() {
        format!("{doing}: the server answered {status}")
    } else {
        format!("{doing}: the server answered {status}: {body}")
    };
    match status.as_u16() {
        404 | 410 => Failure::Gone,
        409 | 423 => Failure::Retry(said),
        s if s >= 500 => Failure::Retry(said),
        413 => Failure::Fatal(match max {
            Some(m) => format!("the file is larger than the server accepts ({m} bytes): {said}"),
            None => format!("the server refuses a request this large: {said}"),
        }),
        460 => Failure::Fatal(format!(
            "the server found the checksum of the bytes wrong (damaged on the way, or the file \
             changed while it was read): {said}"
        )),
        _ => Failure::Fatal(said),
    }
}

/// `ALGO BASE64` of the bytes `range` of `file`, as Upload-Checksum carries it.
async fn digest(file: &Path, range: Range<u64>, algo: Algorithm) -> std::io::Result<String> {
    let mut hasher = algo.hasher();
    let mut f = open_range(file, range).await?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!(
        "{} {}",
        algo.name(),
        base64::engine::general_purpose::STANDARD.encode(hasher.finish())
    ))
}
