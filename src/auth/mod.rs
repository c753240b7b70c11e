//! The gate every front door puts in front of every request (`--auth`): who is asking, as a
//! `Caller`, or why nobody may. Three ways:
//! - `none`: anyone, as before authentication existed (the default);
//! - `jwt`: a bearer token verified here (`jwt`), with keys from a secret, a public key or a
//!   JWKS (`jwks`), its verdict cached until the token expires (`cache`);
//! - `hook`: a pre-access hook (`hook`) asked with the request, its decision cached briefly.
//!
//! The gate knows requests only as a method, a route kind, an upload id and headers: it never
//! sees a protocol's syntax, and what it says is turned into a response at the edge. Credentials
//! are never logged, stored or put in an error message.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};

use crate::domain::access::Caller;
use crate::hooks::Hooks;

mod cache;
pub mod hook;
pub mod jwks;
pub mod jwt;
pub mod signed;

/// A request as the gate sees it.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub method: &'a Method,
    /// What the request is for (`create`, `head`, `patch`, `download`, `media-file`, `list`…).
    pub route: &'static str,
    /// The upload it names, if any.
    pub upload: Option<&'a str>,
    pub uri: &'a http::Uri,
    pub headers: &'a HeaderMap,
    pub remote: Option<IpAddr>,
}

/// Why a request may not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential: 401 with a challenge.
    #[error("authentication required: send a bearer token in the Authorization header")]
    Missing,
    /// A credential that does not hold (expired, forged, for another audience…): 401. The
    /// reason is safe to show: it never repeats the credential.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// A valid caller that may not do this (the admin-only metrics): 403.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The pre-access hook refused: its status (401 if it set none), headers and message.
    #[error("access denied: {message}")]
    Denied {
        status: StatusCode,
        headers: HeaderMap,
        message: String,
    },
    /// Credentials cannot be checked now (the JWKS cannot be fetched, the hook failed): 503 or
    /// 500, never a pass.
    #[error("cannot check credentials: {0}")]
    Unavailable(String),
}

/// The configured gate. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Jwt(Arc<jwt::Verifier>),
    Hook(Arc<hook::AccessHook>),
}

impl Auth {
    /// Who is asking, or why the request may not pass.
    pub async fn check(&self, access: &Access<'_>) -> Result<Caller, AuthError> {
        match self {
            Auth::None => Ok(Caller::anyone()),
            Auth::Jwt(v) => v.verify(bearer(access.headers)?).await,
            Auth::Hook(h) => h.ask(access).await,
        }
    }

    /// Whether requests are authenticated at all (`--auth` is not `none`).
    pub fn is_on(&self) -> bool {
        !matches!(self, Auth::None)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Jwt(_) => "jwt",
            Auth::Hook(_) => "hook",
        }
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case, RFC 7235).
fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthError::Missing);
    };
    if values.next().is_some() {
        return Err(AuthError::Invalid(
            "more than one Authorization header".into(),
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::Invalid("the Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.is_empty() {
                return Err(AuthError::Missing);
            }
            Ok(token)
        }
        _ => Err(AuthError::Invalid(
            "the Authorization header is not a bearer token".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn bearer_tokens_are_read_from_one_authorization_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), Err(AuthError::Missing));
        h.insert(
            "authorization",
            HeaderValue::from_static("bearer abc.def.ghi"),
        );
        assert_eq!(bearer(&h), Ok("abc.def.ghi"));
        h.insert(
            "authorization",
            HeaderValue::from_static("Basic dXNlcjpwdw=="),
        );
        assert!(matches!(bearer(&h), Err(AuthError::Invalid(_))));
        h.insert("authorization", HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), Err(AuthError::Missing));
        h.insert("authorization", HeaderValue::from_static("Bearer a"));
        h.append("authorization", HeaderValue::from_static("Bearer b"));
        assert!(matches!(bearer(&h), Err(AuthError::Invalid(_))));
    }
}

/// An HMAC secret from a file (`--auth-jwt-secret-file`, `tuskd token`): a trailing newline
/// from `echo` or an editor is not part of it.
pub fn read_secret(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let mut secret =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        secret.pop();
    }
    Ok(secret)
}

/// What `--auth` is configured with (read and checked by `Auth::build`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSettings {
    None,
    Jwt(JwtSettings),
    /// The pre-access hook, its decisions kept this long.
    Hook(Duration),
}

/// `--auth jwt`'s settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    pub keys: KeySource,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: Duration,
    pub admin_scope: String,
}

/// Where token keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    SecretFile(PathBuf),
    PublicKeyFile(PathBuf),
    JwksFile(PathBuf),
    /// A JWKS URL and how often it is fetched again.
    JwksUrl(String, Duration),
}

impl Auth {
    /// The gate `settings` describe: key files read and checked, a JWKS URL's first fetch
    /// started (a failure there is retried on use). Errors name what is wrong, never a key.
    pub fn build(settings: &AuthSettings, hooks: &Hooks) -> Result<Auth, String> {
        Ok(match settings {
            AuthSettings::None => Auth::None,
            AuthSettings::Hook(cache_for) => {
                if hooks.config().is_none() {
                    return Err("--auth hook needs --hooks-dir or --hooks-http".into());
                }
                Auth::Hook(Arc::new(hook::AccessHook::new(hooks.clone(), *cache_for)))
            }
            AuthSettings::Jwt(s) => {
                let read = |p: &PathBuf| {
                    std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
                };
                let keys = match &s.keys {
                    KeySource::SecretFile(p) => jwks::Jwks::secret(&read_secret(p)?)
                        .map_err(|e| format!("{}: {e}", p.display()))?,
                    KeySource::PublicKeyFile(p) => jwks::Jwks::public_pem(&read(p)?)
                        .map_err(|e| format!("{}: {e}", p.display()))?,
                    KeySource::JwksFile(p) => jwks::Jwks::file(p)?,
                    KeySource::JwksUrl(url, refresh) => jwks::Jwks::url(url.clone(), *refresh),
                };
                Auth::Jwt(Arc::new(jwt::Verifier::new(jwt::JwtConfig {
                    keys,
                    issuer: s.issuer.clone(),
                    audience: s.audience.clone(),
                    leeway: s.leeway,
                    admin_scope: s.admin_scope.clone(),
                })))
            }
        })
    }
}
