//! The flags of `tuskd upload`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Args)]
pub struct UploadArgs {
    /// The files to upload, one after the other.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The server's upload endpoint, e.g. http://127.0.0.1:1080/files/.
    #[arg(long, env = "TUSKD_UPLOAD_URL")]
    pub url: String,
    /// Where each file's upload URL is remembered, so that a rerun resumes it (default: tuskd's
    /// directory in the user's cache directory).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Bytes per PATCH request (e.g. 8MiB); default: the rest of the file in one request, or
    /// 16MiB with --checksum.
    #[arg(long, value_parser = chunk_size)]
    pub chunk_size: Option<u64>,
    /// Upload N ranges of each file at once and join them (when the server offers concatenation).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Send a checksum of each PATCH's bytes (when the server offers the algorithm).
    #[arg(long, value_enum)]
    pub checksum: Option<ChecksumArg>,
    /// Metadata to send, `key=value` (repeatable); `filename` and `filetype` are sent by default.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// A PEM file of certificate authorities to trust beside the system's, for a server whose
    /// HTTPS certificate a private CA signed.
    #[arg(long, env = "TUSKD_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// A header to send with every request, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// A bearer token sent with every request (`Authorization: Bearer TOKEN`), e.g. from
    /// `tuskd token` or the platform's identity provider. It is never printed, logged or
    /// written to the state file.
    #[arg(long, env = "TUSKD_TOKEN", hide_env_values = true, value_name = "TOKEN", value_parser = token)]
    pub token: Option<Token>,
    /// Attempts per request before giving up on a file (connection errors, 5xx, 409, 423).
    #[arg(long, default_value_t = 10)]
    pub retries: u32,
    /// After each upload, follow its media processing until READY, REJECTED or FAILED, and print
    /// the URLs of what it made.
    #[arg(long)]
    pub wait: bool,
    /// Where the server answers the media status (its --media-path).
    #[arg(long, default_value = "/media/")]
    pub media_path: String,
    /// How long --wait waits for processing at most.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub wait_timeout: std::time::Duration,
    /// Print one JSON document with every file's result on stdout (for scripts).
    #[arg(long)]
    pub json: bool,
}

/// `--token`: kept out of `Debug` (and of clap's messages: it is checked by the command, whose
/// errors never repeat it).
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// The token itself, without a `Bearer ` the user may have put in front.
    pub(super) fn secret(&self) -> &str {
        let t = self.0.trim();
        match t.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => t,
        }
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ChecksumArg {
    Sha256,
    Sha1,
    Md5,
}

impl ChecksumArg {
    pub fn algorithm(self) -> crate::upload::checksum::Algorithm {
        use crate::upload::checksum::Algorithm;
        match self {
            ChecksumArg::Sha256 => Algorithm::Sha256,
            ChecksumArg::Sha1 => Algorithm::Sha1,
            ChecksumArg::Md5 => Algorithm::Md5,
        }
    }
}

/// `--chunk-size`: a size of at least one byte.
fn chunk_size(s: &str) -> Result<u64, String> {
    match crate::domain::upload::parse_size(s) {
        Ok(0) => Err("must be at least 1 byte".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("invalid --chunk-size: {e}")),
    }
}

/// `--token`: taken as it is; the command checks it (clap's own errors would repeat it).
fn token(s: &str) -> Result<Token, std::convert::Infallible> {
    Ok(Token(s.to_owned()))
}
