//! `--tls-cert` and `--tls-key`.

use super::ConfigError;
use crate::cli::ServeArgs;

/// `--tls-cert` and `--tls-key` (clap has them come together), loaded once to check them.
pub(super) fn files(a: &ServeArgs) -> Result<Option<crate::tls::TlsFiles>, ConfigError> {
    let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) else {
        return Ok(None);
    };
    let files = crate::tls::TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
    };
    crate::tls::load(&files).map_err(|reason| ConfigError {
        flag: "--tls-cert",
        reason,
    })?;
    Ok(Some(files))
}
