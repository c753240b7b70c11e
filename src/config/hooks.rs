//! The hook settings (`hooks::HookConfig`) from the `--hooks-*` and `--hook-*` flags: where
//! events go (scripts or a webhook with its headers), which events, which request headers are
//! redacted before post-* events are stored, timeouts and delivery attempts.

use std::collections::HashSet;

use http::{HeaderName, HeaderValue};

use super::{ConfigError, bad, duration, positive};
use crate::cli::ServeArgs;
use crate::hooks::{ALWAYS_REDACTED, HookConfig, HookType, Target};

/// None when no hook target is configured.
pub(super) fn from_args(a: &ServeArgs) -> Result<Option<HookConfig>, ConfigError> {
    let Some(target) = target(a)? else {
        return Ok(None);
    };
    let enabled = enabled_events(&a.hooks_enabled_events)?;
    let redact = redacted_headers(&a.hooks_redact_header)?;
    if a.hook_max_attempts == 0 {
        return Err(bad("--hook-max-attempts", "must be at least 1"));
    }
    Ok(Some(HookConfig {
        target,
        enabled,
        timeout: positive("--hook-timeout", &a.hook_timeout)?,
        progress_interval: duration("--progress-interval", &a.progress_interval)?,
        max_attempts: a.hook_max_attempts,
        redact,
    }))
}

/// `--hooks-dir` or `--hooks-http` (not both); None when neither is given, in which case the
/// flags that only make sense with one are refused.
fn target(a: &ServeArgs) -> Result<Option<Target>, ConfigError> {
    match (
        &a.hooks_dir,
        a.hooks_http.as_deref().filter(|u| !u.is_empty()),
    ) {
        (Some(_), Some(_)) => Err(bad(
            "--hooks-http",
            "use either --hooks-dir or --hooks-http, not both",
        )),
        (None, None) => {
            if !a.hooks_http_header.is_empty() {
                return Err(bad("--hooks-http-header", "needs --hooks-http"));
            }
            if !a.hooks_redact_header.is_empty() {
                return Err(bad(
                    "--hooks-redact-header",
                    "needs --hooks-dir or --hooks-http",
                ));
            }
            Ok(None)
        }
        (Some(dir), None) => {
            if !dir.is_dir() {
                return Err(bad(
                    "--hooks-dir",
                    format!("{} is not a directory", dir.display()),
                ));
            }
            let dir = dir
                .canonicalize()
                .map_err(|e| bad("--hooks-dir", e.to_string()))?;
            Ok(Some(Target::Scripts(dir)))
        }
        (None, Some(url)) => {
            let ok = url::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if !ok {
                return Err(bad(
                    "--hooks-http",
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
            Ok(Some(Target::Http {
                url: url.to_owned(),
                headers: webhook_headers(&a.hooks_http_header)?,
            }))
        }
    }
}

/// `--hooks-http-header "Name: value"`, each marked sensitive.
fn webhook_headers(given: &[String]) -> Result<Vec<(HeaderName, HeaderValue)>, ConfigError> {
    let mut headers = Vec::new();
    for h in given {
        let parsed = h.split_once(':').and_then(|(k, v)| {
            let mut value = HeaderValue::from_str(v.trim()).ok()?;
            // Webhook credentials: never shown by Debug, never indexed by HTTP/2.
            value.set_sensitive(true);
            Some((HeaderName::from_bytes(k.trim().as_bytes()).ok()?, value))
        });
        headers.push(parsed.ok_or_else(|| {
            bad(
                "--hooks-http-header",
                format!("{h:?} is not \"Name: value\""),
            )
        })?);
    }
    Ok(headers)
}

/// `--hooks-enabled-events`, comma-separated event names.
fn enabled_events(names: &str) -> Result<HashSet<HookType>, ConfigError> {
    let mut enabled = HashSet::new();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        enabled.insert(
            HookType::parse(name)
                .ok_or_else(|| bad("--hooks-enabled-events", format!("unknown event {name:?}")))?,
        );
    }
    Ok(enabled)
}

/// The headers always redacted, then those of `--hooks-redact-header`.
fn redacted_headers(names: &[String]) -> Result<Vec<HeaderName>, ConfigError> {
    let mut redact = ALWAYS_REDACTED.to_vec();
    for name in names.iter().map(|n| n.trim()) {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            bad(
                "--hooks-redact-header",
                format!("{name:?} is not a header name"),
            )
        })?;
        if !redact.contains(&name) {
            redact.push(name);
        }
    }
    Ok(redact)
}
