//! A clamd client: the INSTREAM command over TCP or a unix socket. The stream is sent in
//! chunks (each prefixed with its length, a zero length ends it) as it is read, so a file is
//! never held whole.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `host:port`.
    Tcp(String),
    Unix(std::path::PathBuf),
}

impl Address {
    /// `tcp://host:port` or `unix:/path`.
    pub fn parse(s: &str) -> Result<Address, String> {
        if let Some(rest) = s.strip_prefix("tcp://") {
            let rest = rest.trim_end_matches('/');
            let ok = rest
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            return if ok {
                Ok(Address::Tcp(rest.to_owned()))
            } else {
                Err(format!("{s:?}: expected tcp://host:port"))
            };
        }
        if let Some(rest) = s.strip_prefix("unix:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.starts_with('/') {
                return Ok(Address::Unix(path.into()));
            }
            return Err(format!("{s:?}: expected unix:/absolute/path"));
        }
        Err(format!("{s:?}: expected tcp://host:port or unix:/path"))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "tcp://{a}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// What clamd answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    Found(String),
    /// Not scanned whole: clamd's StreamMaxLength (or its MaxScanSize / MaxFileSize, reported
    /// with `AlertExceedsMax yes`) is below the file's size.
    TooLarge(String),
}

/// Why no verdict came.
#[derive(Debug, thiserror::Error)]
pub enum ClamdError {
    #[error("cannot reach clamd at {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("clamd at {0} did not answer within {1:?}")]
    Timeout(String, Duration),
    #[error("talking to clamd: {0}")]
    Io(#[from] std::io::Error),
    #[error("clamd answered {0:?}")]
    Reply(String),
    #[error("reading the file to scan: {0}")]
    Source(String),
}

/// The largest chunk sent in one piece.
const CHUNK: usize = 256 << 10;

/// Sends `body` to clamd and returns its verdict, all within `budget`.
pub async fn instream<S, E>(
    addr: &Address,
    body: S,
    budget: Duration,
) -> Result<Verdict, ClamdError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let name = addr.to_string();
    let work = async {
        match addr {
            Address::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(|e| ClamdError::Connect(name.clone(), e))?;
                converse(s, body).await
            }
            Address::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| ClamdError::Connect(name.clone(), e))?;
                converse(s, body).await
            }
        }
    };
    tokio::time::timeout(budget, work)
        .await
        .map_err(|_| ClamdError::Timeout(name, budget))?
}

async fn converse<C, S, E>(mut conn: C, mut body: S) -> Result<Verdict, ClamdError>
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    conn.write_all(b"zINSTREAM\0").await?;
    // clamd closes the stream once it has had more than StreamMaxLength; what it said then is
    // still to be read.
    let mut cut = false;
    'send: while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| ClamdError::Source(e.to_string()))?
    {
        for piece in chunk.chunks(CHUNK) {
            let len = (piece.len() as u32).to_be_bytes();
            if conn.write_all(&len).await.is_err() || conn.write_all(piece).await.is_err() {
                cut = true;
                break 'send;
            }
        }
    }
    if !cut {
        // A write error here is clamd having closed early too; its reply says why.
        let _ = conn.write_all(&[0, 0, 0, 0]).await;
        let _ = conn.flush().await;
    }
    let mut reply = Vec::new();
    (&mut conn).take(4096).read_to_end(&mut reply).await?;
    parse_reply(&reply)
}

/// `stream: OK`, `stream: NAME FOUND`, `INSTREAM size limit exceeded. ERROR`, each ended by a
/// NUL (the `z` form of the command).
pub fn parse_reply(raw: &[u8]) -> Result<Verdict, ClamdError> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end_matches(['\0', '\n', '\r', ' ']).trim();
    if text.contains("size limit exceeded") {
        return Ok(Verdict::TooLarge(
            "clamd stopped reading at its StreamMaxLength".into(),
        ));
    }
    let Some(result) = text.strip_prefix("stream:").map(str::trim) else {
        return Err(ClamdError::Reply(text.chars().take(200).collect()));
    };
    if result == "OK" {
        return Ok(Verdict::Clean);
    }
    if let Some(name) = result.strip_suffix(" FOUND") {
        let name = name.trim();
        if name.starts_with("Heuristics.Limits.Exceeded") {
            return Ok(Verdict::TooLarge(format!(
                "clamd did not scan it whole ({name})"
            )));
        }
        // A signature name is printable and short; anything else is not trusted as one.
        let clean: String = name.chars().filter(|c| !c.is_control()).take(200).collect();
        return Ok(Verdict::Found(clean));
    }
    Err(ClamdError::Reply(text.chars().take(200).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            Address::parse("tcp://127.0.0.1:3310").unwrap(),
            Address::Tcp("127.0.0.1:3310".into())
        );
        assert_eq!(
            Address::parse("unix:/run/clamd.sock").unwrap(),
            Address::Unix("/run/clamd.sock".into())
        );
        assert_eq!(
            Address::parse("unix:///run/clamd.sock").unwrap(),
            Address::Unix("/run/clamd.sock".into())
        );
        for bad in [
            "127.0.0.1:3310",
            "tcp://host",
            "tcp://:1",
            "tcp://h:0",
            "unix:rel",
            "http://x:1",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replies() {
        assert_eq!(parse_reply(b"stream: OK\0").unwrap(), Verdict::Clean);
        assert_eq!(
            parse_reply(b"stream: Eicar-Substring.UNOFFICIAL FOUND\0").unwrap(),
            Verdict::Found("Eicar-Substring.UNOFFICIAL".into())
        );
        assert!(matches!(
            parse_reply(b"INSTREAM size limit exceeded. ERROR\0").unwrap(),
            Verdict::TooLarge(_)
        ));
        assert!(matches!(
            parse_reply(b"stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND\0").unwrap(),
            Verdict::TooLarge(_)
        ));
        assert!(parse_reply(b"").is_err());
        assert!(parse_reply(b"UNKNOWN COMMAND\0").is_err());
    }
}
