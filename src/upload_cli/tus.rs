//! The tus requests `tuskd upload` makes: discovery (OPTIONS), creation (POST, also of
//! partial and final uploads), the offset (HEAD) and a PATCH of a range of a file. Each answer
//! becomes a value or a [`Failure`] that says what the caller does next. Every request carries
//! the `--header`s and the `--token` (as `Authorization: Bearer`, marked sensitive); a 401 is
//! [`Failure::Refused`], never retried.

use std::ops::Range;
use std::path::Path;

use base64::Engine as _;
use futures_util::TryStreamExt;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use url::Url;

use super::args::{ChecksumArg, Token};
use crate::upload::checksum::Algorithm;

const TUS: &str = "1.0.0";

/// Why a request did not do what was asked.
#[derive(Debug)]
pub(super) enum Failure {
    /// Worth trying again after a pause (connection errors, 5xx, 409, 423): the caller re-reads
    /// the offset and goes on from there.
    Retry(String),
    /// The upload is not on the server (any more), or with credentials not one they may see
    /// (the server answers another owner's upload as one it does not have): a new one is to be
    /// made.
    Gone,
    /// The server refused the credentials (401): no request with them will do better, so the
    /// command stops. The message is the server's, which never repeats the credential.
    Refused(String),
    /// Trying again will not help; the message says why.
    Fatal(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Retry(m) | Failure::Refused(m) | Failure::Fatal(m) => f.write_str(m),
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
    /// A client sending `headers` (`Name: value`) and the bearer `token` with every request,
    /// trusting the authorities in the PEM file `ca` beside the system's. An error never
    /// repeats the token. HTTP/2 where the server offers it (ALPN), else HTTP/1.1.
    pub(super) fn new(
        headers: &[String],
        token: Option<&Token>,
        ca: Option<&std::path::Path>,
    ) -> Result<Client, String> {
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
        if let Some(token) = token.map(Token::secret).filter(|t| !t.is_empty()) {
            if map.contains_key(reqwest::header::AUTHORIZATION) {
                return Err(
                    "--token (or TUSKD_TOKEN) and --header 'Authorization: …' both set the \
                     Authorization header: give one of them"
                        .into(),
                );
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(
                    "--token (or TUSKD_TOKEN): a bearer token is printable ASCII \
                     without spaces (as a JWT is); this one is not"
                        .into(),
                );
            }
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "--token (or TUSKD_TOKEN): not usable in a header".to_owned())?;
            // Kept out of HTTP/2 header compression tables and of debug output.
            value.set_sensitive(true);
            map.insert(reqwest::header::AUTHORIZATION, value);
        }
        map.insert(
            "Tus-Resumable",
            reqwest::header::HeaderValue::from_static(TUS),
        );
        let mut builder = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(15))
            // A PATCH may take hours; a connection that sends nothing for this long is dead.
            .read_timeout(std::time::Duration::from_secs(120));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|e| format!("--ca-cert {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("--ca-cert {}: not PEM certificates: {e}", ca.display()))?;
            if certs.is_empty() {
                return Err(format!("--ca-cert {}: no certificate in it", ca.display()));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder.build().map_err(|e| e.to_string())?;
        Ok(Client { http, headers: map })
    }

    pub(super) fn request(&self, method: reqwest::Method, url: &Url) -> reqwest::RequestBuilder {
        self.http
            .request(method, url.clone())
            .headers(self.headers.clone())
    }

    /// Whether requests carry credentials (`--token`, or an Authorization `--header`).
    pub(super) fn has_credentials(&self) -> bool {
        self.headers.contains_key(reqwest::header::AUTHORIZATION)
    }

    /// Sends `req`; an answer `expect` does not accept becomes the Failure it means.
    async fn call(
        &self,
        req: reqwest::RequestBuilder,
        expect: impl Fn(StatusCode) -> bool,
        doing: &str,
    ) -> Result<reqwest::Response, Failure> {
        let resp = req.send().await.map_err(connection)?;
        if expect(resp.status()) {
            Ok(resp)
        } else {
            Err(answer(resp, doing, self.has_credentials()).await)
        }
    }

    pub(super) async fn options(&self, endpoint: &Url) -> Result<Server, Failure> {
        let resp = self
            .call(
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
        let resp = self
            .call(req, |s| s == StatusCode::CREATED, "creating the upload")
            .await?;
        let location = header(&resp, "Location").ok_or_else(|| {
            Failure::Fatal("the server created an upload without a Location".into())
        })?;
        endpoint
            .join(&location)
            .map_err(|e| Failure::Fatal(format!("the server's Location {location:?}: {e}")))
    }

    /// The upload's offset and length (none while deferred).
    pub(super) async fn offset(&self, url: &Url) -> Result<(u64, Option<u64>), Failure> {
        let resp = self
            .call(
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
        let resp = self
            .call(
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

pub(super) fn connection(e: reqwest::Error) -> Failure {
    // The source chain says what happened (refused, reset, timed out).
    let mut text = e.to_string();
    let mut tls = false;
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        // rustls' own error, or (when a layer boxed it into one of its own) its words.
        tls |= is_tls_refusal(s) || s.to_string().starts_with("invalid peer certificate");
        source = s.source();
    }
    if tls {
        // The server's certificate is not one to trust (or TLS cannot be agreed): no retry
        // changes that.
        return Failure::Fatal(format!(
            "{text} (a server whose certificate a private authority signed needs --ca-cert)"
        ));
    }
    Failure::Retry(text)
}

/// Whether `e` is rustls refusing the server (its certificate, or the handshake), directly or
/// inside an I/O error (whose own `source` skips what it wraps).
fn is_tls_refusal(e: &(dyn std::error::Error + 'static)) -> bool {
    let inner = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .map(|i| i as &(dyn std::error::Error + 'static));
    [Some(e), inner].into_iter().flatten().any(|e| {
        matches!(
            e.downcast_ref::<rustls::Error>(),
            Some(
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::AlertReceived(_)
                    | rustls::Error::PeerIncompatible(_)
            )
        )
    })
}

/// What an answer other than the expected one means; `credentials`: whether the request carried
/// any (a 401 to a request without says how to give them).
pub(super) async fn answer(resp: reqwest::Response, doing: &str, credentials: bool) -> Failure {
    let status = resp.status();
    let max = header(&resp, "Tus-Max-Size");
    let challenge = header(&resp, "WWW-Authenticate");
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
        401 => Failure::Refused(refused(&body, challenge.as_deref(), credentials)),
        403 => Failure::Fatal(format!(
            "the server does not allow this with these credentials: {said}"
        )),
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

/// What a 401 says: the server's message (its body; a HEAD has none, then the challenge's
/// `error_description`), and how to give credentials when none were sent.
fn refused(body: &str, challenge: Option<&str>, credentials: bool) -> String {
    let description = challenge.and_then(|c| {
        let (_, rest) = c.split_once("error_description=\"")?;
        rest.split_once('"').map(|(d, _)| d.to_owned())
    });
    let why = match (body.is_empty(), description) {
        (false, _) => body.to_owned(),
        (true, Some(d)) => format!("invalid token: {d}"),
        (true, None) if credentials => "401 Unauthorized".to_owned(),
        (true, None) => "authentication required".to_owned(),
    };
    if credentials {
        format!("the server refused the credentials: {why}")
    } else {
        format!(
            "the server needs credentials: {why} (no token was sent: give --token TOKEN or set \
             TUSKD_TOKEN)"
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn token(t: &str) -> Token {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: super::super::args::UploadArgs,
        }
        let cli = Cli::try_parse_from(["x", "f", "--url", "http://h/", "--token", t]).unwrap();
        cli.args.token.unwrap()
    }

    #[test]
    fn the_token_goes_in_a_sensitive_bearer_header_and_errors_never_repeat_it() {
        let c = Client::new(&[], Some(&token("Bearer abc.def-_.ghi")), None).unwrap();
        let v = &c.headers[reqwest::header::AUTHORIZATION];
        assert_eq!(v, "Bearer abc.def-_.ghi");
        assert!(v.is_sensitive());
        assert!(c.has_credentials());
        assert!(!format!("{:?}", token("abc.def")).contains("abc"));

        let e = Client::new(&[], Some(&token("abc def\u{7f}")), None)
            .err()
            .unwrap();
        assert!(e.contains("printable ASCII") && !e.contains("abc"), "{e}");
        let both = ["Authorization: Bearer x".to_owned()];
        let e = Client::new(&both, Some(&token("secret.t")), None)
            .err()
            .unwrap();
        assert!(
            e.contains("give one of them") && !e.contains("secret.t"),
            "{e}"
        );
        // An empty TUSKD_TOKEN is no token.
        assert!(
            !Client::new(&[], Some(&token(" ")), None)
                .unwrap()
                .has_credentials()
        );
    }

    #[test]
    fn a_401_says_why_from_the_body_or_the_challenge() {
        let body = "ERR_INVALID_TOKEN: invalid token: the token has expired";
        assert_eq!(
            refused(body, None, true),
            format!("the server refused the credentials: {body}")
        );
        let challenge = r#"Bearer realm="tuskd", error="invalid_token", error_description="the token has expired""#;
        assert_eq!(
            refused("", Some(challenge), true),
            "the server refused the credentials: invalid token: the token has expired"
        );
        let none = refused("", Some(r#"Bearer realm="tuskd""#), false);
        assert!(
            none.starts_with("the server needs credentials: authentication required")
                && none.contains("--token"),
            "{none}"
        );
    }
}
