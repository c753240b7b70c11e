//! Bearer tokens (JWT, RFC 7519) verified locally. The keys decide the algorithms: a secret
//! verifies HS256/384/512 only, a public key only its own family (RSA: RS*/PS*, EC: ES256/384,
//! Ed25519: EdDSA), a JWKS key only its `alg` (or its type's family), so a token signed with
//! HMAC over a public key (algorithm confusion) and `alg: none` never verify. `exp` and `sub`
//! are required; `nbf`, `iss` and `aud` are checked (issuer and audience required when
//! configured), with a small leeway for clocks.
//!
//! Claims: `sub` is the owner; `max_size` (bytes) and `media_kinds` (`["image", …]`) narrow
//! what the token may upload; a `scope` (space-separated) or `scp` (list) holding the admin
//! scope lets it list and read every owner's uploads.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde::Deserialize;

use super::AuthError;
use super::cache::Cache;
use super::jwks::{Jwks, Key};
use crate::domain::access::{Caller, MEDIA_KINDS, Owner};

/// How long a verified token's verdict is kept at most (its expiry comes first).
const CACHE_FOR: Duration = Duration::from_secs(300);

/// What `--auth jwt` is configured with.
#[derive(Debug)]
pub struct JwtConfig {
    pub keys: Jwks,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: Duration,
    /// The scope that makes a token an admin's.
    pub admin_scope: String,
}

/// Verifies tokens and remembers verdicts.
#[derive(Debug)]
pub struct Verifier {
    config: JwtConfig,
    cache: Cache<Caller>,
}

/// A claim that providers send either as one space-separated string or as a list (`scp`: a
/// string from Azure AD, a list from Okta).
#[derive(Deserialize)]
#[serde(untagged)]
enum Words {
    One(String),
    Many(Vec<String>),
}

impl Words {
    fn contains(&self, word: &str) -> bool {
        match self {
            Words::One(s) => s.split(' ').any(|w| w == word),
            Words::Many(v) => v.iter().any(|w| w == word),
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    /// Seconds since the epoch; some providers send a fraction.
    exp: f64,
    #[serde(default)]
    max_size: Option<u64>,
    #[serde(default)]
    media_kinds: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<Words>,
    #[serde(default)]
    scp: Option<Words>,
}

impl Verifier {
    pub fn new(config: JwtConfig) -> Verifier {
        Verifier {
            config,
            cache: Cache::new(),
        }
    }

    /// The caller a token names, or why it does not hold.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let now = Instant::now();
        let key = Cache::<Caller>::key(&[token.as_bytes()]);
        if let Some(caller) = self.cache.get(&key, now) {
            return Ok(caller);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            AuthError::Invalid("malformed token or unsupported algorithm (none is refused)".into())
        })?;
        let found = self.config.keys.find(header.kid.as_deref()).await?;
        let claims = self.check(token, header.alg, &found)?;
        let caller = self.caller(&claims)?;
        // Kept no longer than the token is valid (to the instant of `exp`), nor than CACHE_FOR.
        let exp = Duration::try_from_secs_f64(claims.exp).unwrap_or_default();
        let left = (UNIX_EPOCH + exp)
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        let until = now + left.min(CACHE_FOR);
        self.cache.put(key, caller.clone(), until, now);
        Ok(caller)
    }

    /// The signature and the registered claims, with `alg` fixed by the key.
    fn check(&self, token: &str, alg: Algorithm, key: &Key) -> Result<Claims, AuthError> {
        if !key.algorithms.contains(&alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {alg:?} is not accepted for this key"
            )));
        }
        let mut v = Validation::new(alg);
        v.leeway = self.config.leeway.as_secs();
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &self.config.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        match &self.config.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &v)
            .map_err(|e| AuthError::Invalid(reason(e.kind())))?;
        Ok(data.claims)
    }

    fn caller(&self, claims: &Claims) -> Result<Caller, AuthError> {
        let owner = Owner::parse(&claims.sub)
            .ok_or_else(|| AuthError::Invalid("sub is not a usable owner".into()))?;
        if let Some(kinds) = &claims.media_kinds
            && let Some(bad) = kinds.iter().find(|k| !MEDIA_KINDS.contains(&k.as_str()))
        {
            return Err(AuthError::Invalid(format!(
                "media_kinds names {bad:?}; known kinds: {}",
                MEDIA_KINDS.join(", ")
            )));
        }
        let admin = &self.config.admin_scope;
        let sees_all = [&claims.scope, &claims.scp]
            .iter()
            .any(|w| w.as_ref().is_some_and(|w| w.contains(admin)));
        Ok(Caller {
            owner: Some(owner),
            sees_all,
            max_size: claims.max_size,
            media_kinds: claims.media_kinds.clone(),
        })
    }
}

/// What went wrong, in words safe to show (never the token).
fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "the token is for another audience".into(),
        ErrorKind::InvalidIssuer => "the token is from another issuer".into(),
        ErrorKind::InvalidSignature => "the signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "the token's algorithm is not accepted".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("the token has no {c} claim"),
        ErrorKind::InvalidClaimFormat(c) => format!("the token's {c} claim is malformed"),
        _ => "malformed token".into(),
    }
}
