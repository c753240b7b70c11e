//! TLS for the listener (`--tls-cert`, `--tls-key`): rustls, ALPN `h2` then `http/1.1`, and a
//! certificate read again whenever its files change, so a renewed certificate (certbot,
//! cert-manager) is served without a restart. A pair that does not load (a renewal caught half
//! written, a key that does not match) keeps the one being served and is logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The files are looked at no more often than this.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The certificate being served, and the files' times it was read at.
#[derive(Debug)]
struct Served {
    key: Arc<CertifiedKey>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

/// Resolves every handshake to the current certificate, reading the files again when their
/// modification times change.
#[derive(Debug)]
pub struct Reloading {
    files: TlsFiles,
    served: Mutex<Served>,
}

fn stamps(files: &TlsFiles) -> (Option<SystemTime>, Option<SystemTime>) {
    let at = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (at(&files.cert), at(&files.key))
}

/// Reads the pair: the chain (leaf first) and the private key (PKCS#8, PKCS#1 or SEC1 PEM).
pub fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("cannot read {}: {e}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "{} is not a PEM certificate chain: {e}",
                files.cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("{} holds no PEM private key: {e}", files.key.display()))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        format!(
            "{} and {} do not make a pair: {e}",
            files.cert.display(),
            files.key.display()
        )
    })?;
    Ok(Arc::new(certified))
}

impl Reloading {
    /// Loads the pair once (an error here stops the start).
    pub fn new(files: TlsFiles) -> Result<Reloading, String> {
        let key = load(&files)?;
        let served = Served {
            key,
            stamps: stamps(&files),
            checked: Instant::now(),
        };
        Ok(Reloading {
            files,
            served: Mutex::new(served),
        })
    }

    /// The certificate to serve now, read again first if the files changed.
    fn current(&self) -> Arc<CertifiedKey> {
        let mut served = self.served.lock().expect("not poisoned");
        if served.checked.elapsed() >= CHECK_EVERY {
            served.checked = Instant::now();
            let now = stamps(&self.files);
            if now != served.stamps {
                match load(&self.files) {
                    Ok(key) => {
                        tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                        served.key = key;
                        served.stamps = now;
                    }
                    // Kept as it is; read again when the files change again.
                    Err(e) => {
                        tracing::warn!("TLS certificate not reloaded: {e}");
                        served.stamps = now;
                    }
                }
            }
        }
        served.key.clone()
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The server's TLS configuration: the reloading certificate, ALPN h2 then http/1.1.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let resolver = Reloading::new(files.clone())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The handshake side of the listener with `files`, when there are any.
pub fn acceptor(files: Option<&TlsFiles>) -> Result<Option<tokio_rustls::TlsAcceptor>, String> {
    files
        .map(|f| server_config(f).map(tokio_rustls::TlsAcceptor::from))
        .transpose()
}
