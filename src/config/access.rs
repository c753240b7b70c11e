//! Who may do what (`--auth*`, `--quota-*`, `--list-path`): the gate's settings
//! (`auth::AuthSettings`), the owners' quota and where listings are served.

use crate::auth::{AuthSettings, JwtSettings, KeySource};
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{AccessArgs, AuthArg, MediaAccessArg};
use crate::domain::quota::Quota;

use super::{ConfigError, bad, duration, size};

/// Validated access settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    pub auth: AuthSettings,
    /// `/metrics` needs an admin caller.
    pub metrics_need_admin: bool,
    pub quota: Quota,
    /// Where listings are served (starts with `/`, no trailing `/`).
    pub list_path: String,
    pub media_access: MediaAccess,
}

/// Who may read derived media files (`--media-access`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaAccess {
    /// Anyone with the URL.
    Public,
    /// The owner's credentials (or an admin's).
    Private,
    /// An expiring signature in the URL, or the owner's credentials.
    Signed { key_file: PathBuf, ttl: Duration },
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            auth: AuthSettings::None,
            metrics_need_admin: false,
            quota: Quota::default(),
            list_path: "/uploads".into(),
            media_access: MediaAccess::Public,
        }
    }
}

pub(super) fn from_args(a: &AccessArgs) -> Result<AccessConfig, ConfigError> {
    let auth = match a.auth {
        AuthArg::None | AuthArg::Hook => {
            for (set, flag) in [
                (a.auth_jwt_secret_file.is_some(), "--auth-jwt-secret-file"),
                (
                    a.auth_jwt_public_key_file.is_some(),
                    "--auth-jwt-public-key-file",
                ),
                (a.auth_jwks.is_some(), "--auth-jwks"),
                (a.auth_jwt_issuer.is_some(), "--auth-jwt-issuer"),
                (a.auth_jwt_audience.is_some(), "--auth-jwt-audience"),
            ] {
                if set {
                    return Err(bad(flag, "needs --auth jwt"));
                }
            }
            match a.auth {
                AuthArg::Hook => {
                    AuthSettings::Hook(duration("--auth-hook-cache", &a.auth_hook_cache)?)
                }
                _ => AuthSettings::None,
            }
        }
        AuthArg::Jwt => AuthSettings::Jwt(jwt(a)?),
    };
    if a.auth_metrics && auth == AuthSettings::None {
        return Err(bad("--auth-metrics", "needs --auth jwt or hook"));
    }
    let list_path = a.list_path.trim_end_matches('/').to_owned();
    if !list_path.starts_with('/') || list_path.len() < 2 {
        return Err(bad("--list-path", "must be a path such as /uploads"));
    }
    let media_access = match (a.media_access, &a.media_signing_key_file) {
        (Some(MediaAccessArg::Signed), Some(f)) => MediaAccess::Signed {
            key_file: f.clone(),
            ttl: duration("--media-url-ttl", &a.media_url_ttl)?,
        },
        (Some(MediaAccessArg::Signed), None) => {
            return Err(bad(
                "--media-access",
                "signed needs --media-signing-key-file",
            ));
        }
        (_, Some(_)) => {
            return Err(bad(
                "--media-signing-key-file",
                "needs --media-access signed",
            ));
        }
        (Some(MediaAccessArg::Public), None) => MediaAccess::Public,
        (Some(MediaAccessArg::Private), None) if auth == AuthSettings::None => {
            return Err(bad("--media-access", "private needs --auth jwt or hook"));
        }
        (Some(MediaAccessArg::Private), None) => MediaAccess::Private,
        (None, None) if auth == AuthSettings::None => MediaAccess::Public,
        (None, None) => MediaAccess::Private,
    };
    if let MediaAccess::Signed { ttl, .. } = &media_access
        && ttl.is_zero()
    {
        return Err(bad("--media-url-ttl", "must be more than 0"));
    }
    let positive = |n: u64| (n > 0).then_some(n);
    Ok(AccessConfig {
        auth,
        metrics_need_admin: a.auth_metrics,
        quota: Quota {
            max_bytes: positive(size("--quota-bytes", &a.quota_bytes)?),
            max_unfinished: positive(a.quota_unfinished),
            max_per_minute: positive(a.quota_per_minute),
        },
        list_path,
        media_access,
    })
}

fn jwt(a: &AccessArgs) -> Result<JwtSettings, ConfigError> {
    let keys = match (
        &a.auth_jwt_secret_file,
        &a.auth_jwt_public_key_file,
        a.auth_jwks.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(p), None, None) => KeySource::SecretFile(p.clone()),
        (None, Some(p), None) => KeySource::PublicKeyFile(p.clone()),
        (None, None, Some(j)) if j.starts_with("https://") || j.starts_with("http://") => {
            url::Url::parse(j).map_err(|e| bad("--auth-jwks", format!("{j:?}: {e}")))?;
            KeySource::JwksUrl(
                j.to_owned(),
                duration("--auth-jwks-refresh", &a.auth_jwks_refresh)?,
            )
        }
        (None, None, Some(j)) => KeySource::JwksFile(j.into()),
        (None, None, None) => {
            return Err(bad(
                "--auth",
                "jwt needs one of --auth-jwt-secret-file, --auth-jwt-public-key-file, --auth-jwks",
            ));
        }
        _ => {
            return Err(bad(
                "--auth",
                "give one of --auth-jwt-secret-file, --auth-jwt-public-key-file, --auth-jwks",
            ));
        }
    };
    if a.auth_admin_scope.trim().is_empty() || a.auth_admin_scope.contains(' ') {
        return Err(bad("--auth-admin-scope", "must be one word"));
    }
    Ok(JwtSettings {
        keys,
        issuer: a.auth_jwt_issuer.clone().filter(|s| !s.is_empty()),
        audience: a.auth_jwt_audience.clone().filter(|s| !s.is_empty()),
        leeway: duration("--auth-jwt-leeway", &a.auth_jwt_leeway)?,
        admin_scope: a.auth_admin_scope.clone(),
    })
}
