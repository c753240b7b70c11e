//! The keys tokens are verified with: an HMAC secret, a public key (PEM), or a JSON Web Key Set
//! from a file or a URL. A URL's set is fetched at start, refreshed in the background when it
//! is older than the refresh interval, and fetched again when a token names a key id it does
//! not hold (an identity provider rotating its keys), at most once per `REFETCH_FLOOR`, so
//! tokens with made-up key ids cannot make tuskd hammer the provider.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use super::AuthError;

/// Least time between two fetches caused by unknown key ids.
const REFETCH_FLOOR: Duration = Duration::from_secs(30);
/// The largest key set accepted.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// One verification key and the algorithms it verifies.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub algorithms: Vec<Algorithm>,
    pub key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// Where the keys come from.
#[derive(Debug)]
pub enum Jwks {
    /// A secret or a public key read at start; a token's `kid` is not needed.
    Fixed(Vec<Key>),
    /// A key set, from a file (read at start) or a URL (kept fresh).
    Set(Arc<Remote>),
}

/// A key set behind a URL (or read once from a file: `url` None).
#[derive(Debug)]
pub struct Remote {
    url: Option<String>,
    client: reqwest::Client,
    refresh: Duration,
    keys: RwLock<(Vec<Key>, Option<Instant>)>,
    /// Serialises fetches.
    fetching: Mutex<()>,
    /// When a token's unknown key id last caused a fetch.
    unknown_kid: Mutex<Option<Instant>>,
    refreshing: AtomicBool,
}

impl Jwks {
    /// An HMAC secret: HS256, HS384, HS512.
    pub fn secret(secret: &[u8]) -> Result<Jwks, String> {
        if secret.len() < 32 {
            return Err("the secret must be at least 32 bytes (256 bits)".into());
        }
        let key = DecodingKey::from_secret(secret).map_err(|e| e.to_string())?;
        Ok(Jwks::Fixed(vec![Key {
            kid: None,
            algorithms: vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
            key,
        }]))
    }

    /// A PEM public key: RSA (RS*, PS*), EC (ES256/384) or Ed25519 (EdDSA).
    pub fn public_pem(pem: &[u8]) -> Result<Jwks, String> {
        let (key, algorithms) = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            (k, rsa_algorithms())
        } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            (k, vec![Algorithm::ES256, Algorithm::ES384])
        } else if let Ok(k) = DecodingKey::from_ed_pem(pem) {
            (k, vec![Algorithm::EdDSA])
        } else {
            return Err("not a PEM RSA, EC or Ed25519 public key".into());
        };
        Ok(Jwks::Fixed(vec![Key {
            kid: None,
            algorithms,
            key,
        }]))
    }

    /// A key set read from a file.
    pub fn file(path: &PathBuf) -> Result<Jwks, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let keys = parse_set(&text)?;
        Ok(Jwks::Set(Arc::new(Remote::new(None, keys, Duration::MAX))))
    }

    /// A key set behind a URL, its first fetch started now when a runtime runs (a failure is
    /// logged and retried on use; the first token fetches it otherwise).
    pub fn url(url: String, refresh: Duration) -> Jwks {
        let remote = Arc::new(Remote::new(Some(url), Vec::new(), refresh));
        if tokio::runtime::Handle::try_current().is_ok() {
            remote.refresh_in_background();
        }
        Jwks::Set(remote)
    }

    /// The key a token's `kid` names.
    pub async fn find(&self, kid: Option<&str>) -> Result<Key, AuthError> {
        match self {
            // One configured key: the token's kid (if any) is not needed to find it.
            Jwks::Fixed(keys) => keys
                .first()
                .cloned()
                .ok_or_else(|| AuthError::Unavailable("no key configured".into())),
            Jwks::Set(remote) => remote.find(kid).await,
        }
    }
}

impl Remote {
    fn new(url: Option<String>, keys: Vec<Key>, refresh: Duration) -> Remote {
        let fetched = url.is_none().then(Instant::now);
        Remote {
            url,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            refresh,
            keys: RwLock::new((keys, fetched)),
            fetching: Mutex::new(()),
            unknown_kid: Mutex::new(None),
            refreshing: AtomicBool::new(false),
        }
    }

    async fn find(self: &Arc<Self>, kid: Option<&str>) -> Result<Key, AuthError> {
        if let Some(key) = self.lookup(kid).await? {
            return Ok(key);
        }
        if self.url.is_some() {
            self.refetch().await;
            if let Some(key) = self.lookup(kid).await? {
                return Ok(key);
            }
        }
        let have = self.keys.read().await.0.len();
        Err(match (kid, have) {
            (_, 0) => AuthError::Unavailable("no key set could be fetched".into()),
            (Some(_), _) => AuthError::Invalid("the token's key id (kid) is not known".into()),
            (None, _) => AuthError::Invalid("the token names no key id (kid)".into()),
        })
    }

    /// The key for `kid` among the keys held (a token without kid: the only key, if there is
    /// one). Starts a background refresh when the set is stale.
    async fn lookup(self: &Arc<Self>, kid: Option<&str>) -> Result<Option<Key>, AuthError> {
        let guard = self.keys.read().await;
        let (keys, fetched) = &*guard;
        if self.url.is_some() && fetched.is_some_and(|t| t.elapsed() >= self.refresh) {
            self.refresh_in_background();
        }
        Ok(match kid {
            Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)).cloned(),
            None if keys.len() == 1 => keys.first().cloned(),
            None => None,
        })
    }

    fn refresh_in_background(self: &Arc<Self>) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.fetch().await {
                tracing::warn!("JWKS refresh failed (the keys held are kept): {e}");
            }
            me.refreshing.store(false, Ordering::Release);
        });
    }

    /// Fetches again for an unknown key id, unless one did within `REFETCH_FLOOR`.
    async fn refetch(&self) {
        {
            let mut last = self.unknown_kid.lock().await;
            if last.is_some_and(|t| t.elapsed() < REFETCH_FLOOR) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(e) = self.fetch().await {
            tracing::warn!("JWKS fetch failed: {e}");
        }
    }

    async fn fetch(&self) -> Result<(), String> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        let _one_at_a_time = self.fetching.lock().await;
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: {}", resp.status()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(format!("GET {url}: the key set is larger than 1 MiB"));
        }
        let body = resp.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("GET {url}: the key set is larger than 1 MiB"));
        }
        let keys = parse_set(&body)?;
        tracing::info!(keys = keys.len(), "JWKS fetched");
        *self.keys.write().await = (keys, Some(Instant::now()));
        Ok(())
    }
}

/// The usable public keys of a JWKS document. Symmetric (`oct`) keys are refused: a key set is
/// public, and an HMAC key in it would let anyone who reads it sign tokens.
fn parse_set(text: &[u8]) -> Result<Vec<Key>, String> {
    let set: JwkSet = serde_json::from_slice(text).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        match key_of(jwk) {
            Ok(k) => keys.push(k),
            Err(e) => tracing::warn!(kid = ?jwk.common.key_id, "JWKS key skipped: {e}"),
        }
    }
    if keys.is_empty() {
        return Err("the key set holds no usable public key".into());
    }
    Ok(keys)
}

fn key_of(jwk: &Jwk) -> Result<Key, String> {
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => rsa_algorithms(),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err("unsupported curve".into()),
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            vec![Algorithm::EdDSA]
        }
        AlgorithmParameters::OctetKey(_) => return Err("symmetric keys are refused".into()),
        _ => return Err("unsupported key type".into()),
    };
    let algorithms = match jwk.common.key_algorithm {
        Some(a) => {
            let a = Algorithm::try_from(a).map_err(|e| e.to_string())?;
            if !family.contains(&a) {
                return Err(format!("alg {a:?} does not match the key's type"));
            }
            vec![a]
        }
        None => family,
    };
    Ok(Key {
        kid: jwk.common.key_id.clone(),
        algorithms,
        key: DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?,
    })
}

fn rsa_algorithms() -> Vec<Algorithm> {
    vec![
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ]
}
