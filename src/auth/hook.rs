//! `--auth hook`: a pre-access hook, through the hooks' own machinery (a script named
//! `pre-access` or the webhook), asked for every request that needs a caller, for platforms
//! whose users hold session cookies rather than tokens.
//!
//! It receives `{"Type": "pre-access", "Event": {"Access": {"Route", "Upload"}, "HTTPRequest":
//! {"Method", "URI", "RemoteAddr", "Header"}}}`, credentials included (it runs in memory and
//! is never stored), and answers `{"Allow": true, "Owner": "…"}` (optionally `"Admin": true`,
//! `"MaxSize": bytes`, `"MediaKinds": […]`) or `{"Allow": false}` with an optional tusd-style
//! `HTTPResponse` (status, default 401; headers; body). An answer that allows without a usable
//! owner, or that is not JSON, refuses the request (503, `ERR_AUTH_UNAVAILABLE`): the gate fails
//! closed. Decisions are cached for `cache_for`, keyed by the method, the route, the upload and
//! every request header but those that change from one request of an upload to the next
//! (`VOLATILE`), so whatever header a platform's credentials travel in is part of the key.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::cache::Cache;
use super::{Access, AuthError};
use crate::domain::access::{Caller, MEDIA_KINDS, Owner};
use crate::hooks::{HookType, Hooks, HttpRequestInfo, HttpResponse};

/// Headers left out of a decision's cache key: they change from one request of an upload to
/// the next and carry no credential.
const VOLATILE: &[&str] = &[
    "content-length",
    "content-type",
    "upload-offset",
    "upload-length",
    "upload-checksum",
    "upload-metadata",
    "upload-concat",
    "upload-defer-length",
    "x-request-id",
    "range",
    "if-none-match",
    "if-modified-since",
];

/// The pre-access hook and its decisions' cache.
#[derive(Debug)]
pub struct AccessHook {
    hooks: Hooks,
    cache_for: Duration,
    cache: Cache<Result<Caller, AuthError>>,
}

#[derive(Serialize)]
struct Request<'a> {
    #[serde(rename = "Type")]
    kind: HookType,
    #[serde(rename = "Event")]
    event: Event<'a>,
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "Access")]
    access: AccessInfo<'a>,
    #[serde(rename = "HTTPRequest")]
    http_request: HttpRequestInfo,
}

#[derive(Serialize)]
struct AccessInfo<'a> {
    #[serde(rename = "Route")]
    route: &'a str,
    #[serde(rename = "Upload")]
    upload: Option<&'a str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Answer {
    #[serde(rename = "Allow")]
    allow: bool,
    #[serde(rename = "Owner")]
    owner: String,
    #[serde(rename = "Admin")]
    admin: bool,
    #[serde(rename = "MaxSize")]
    max_size: Option<u64>,
    #[serde(rename = "MediaKinds")]
    media_kinds: Option<Vec<String>>,
    #[serde(rename = "HTTPResponse")]
    http_response: HttpResponse,
}

impl AccessHook {
    pub fn new(hooks: Hooks, cache_for: Duration) -> AccessHook {
        AccessHook {
            hooks,
            cache_for,
            cache: Cache::new(),
        }
    }

    pub async fn ask(&self, access: &Access<'_>) -> Result<Caller, AuthError> {
        let mut parts: Vec<&[u8]> = vec![
            access.method.as_str().as_bytes(),
            access.route.as_bytes(),
            access.upload.unwrap_or_default().as_bytes(),
        ];
        let mut headers: Vec<_> = access
            .headers
            .iter()
            .filter(|(n, _)| !VOLATILE.contains(&n.as_str()))
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        headers.sort();
        for (name, value) in headers {
            parts.push(name.as_bytes());
            parts.push(value);
        }
        let key = Cache::<Caller>::key(&parts);
        let now = Instant::now();
        if let Some(decision) = self.cache.get(&key, now) {
            return decision;
        }
        let decision = self.decide(access).await;
        // A hook that failed is asked again next time; its decisions are kept.
        if !matches!(decision, Err(AuthError::Unavailable(_))) {
            self.cache
                .put(key, decision.clone(), now + self.cache_for, now);
        }
        decision
    }

    async fn decide(&self, access: &Access<'_>) -> Result<Caller, AuthError> {
        let remote = access.remote.map(|a| a.to_string()).unwrap_or_default();
        let request = Request {
            kind: HookType::PreAccess,
            event: Event {
                access: AccessInfo {
                    route: access.route,
                    upload: access.upload,
                },
                http_request: HttpRequestInfo::of(
                    access.method,
                    access.uri,
                    access.headers,
                    &remote,
                    &[],
                ),
            },
        };
        let payload = serde_json::to_vec(&request)
            .map_err(|e| AuthError::Unavailable(format!("cannot encode the request: {e}")))?;
        let unavailable = |e: String| {
            self.hooks.failed(HookType::PreAccess);
            tracing::warn!("pre-access hook failed: {e}");
            AuthError::Unavailable("the pre-access hook failed".into())
        };
        let raw = self
            .hooks
            .exchange(HookType::PreAccess, &payload, None)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let answer: Answer =
            serde_json::from_slice(&raw).map_err(|e| unavailable(e.to_string()))?;
        caller(answer).map_err(|e| match e {
            AuthError::Unavailable(why) => unavailable(why),
            e => e,
        })
    }
}

/// The caller an answer allows, or its refusal.
fn caller(answer: Answer) -> Result<Caller, AuthError> {
    if !answer.allow {
        let (status, headers, body) = answer
            .http_response
            .validated("pre-access")
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        return Err(AuthError::Denied {
            status: status.unwrap_or(StatusCode::UNAUTHORIZED),
            headers,
            message: match body.is_empty() {
                true => "the pre-access hook refused the request".into(),
                false => body,
            },
        });
    }
    let owner = Owner::parse(&answer.owner).ok_or_else(|| {
        AuthError::Unavailable("the hook allowed the request without a usable Owner".into())
    })?;
    if let Some(bad) = answer
        .media_kinds
        .iter()
        .flatten()
        .find(|k| !MEDIA_KINDS.contains(&k.as_str()))
    {
        return Err(AuthError::Unavailable(format!("MediaKinds names {bad:?}")));
    }
    Ok(Caller {
        owner: Some(owner),
        sees_all: answer.admin,
        max_size: answer.max_size,
        media_kinds: answer.media_kinds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Answer {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn answers_allow_with_an_owner_or_deny_with_the_hooks_response() {
        let c = caller(parse(r#"{"Allow": true, "Owner": "u1", "MaxSize": 10}"#)).unwrap();
        assert_eq!(c.owner.unwrap().as_str(), "u1");
        assert_eq!(c.max_size, Some(10));
        assert!(!c.sees_all);
        assert!(
            caller(parse(r#"{"Allow": true, "Owner": "a", "Admin": true}"#))
                .unwrap()
                .sees_all
        );
        match caller(parse(r#"{"Allow": false}"#)) {
            Err(AuthError::Denied { status, .. }) => assert_eq!(status, StatusCode::UNAUTHORIZED),
            other => panic!("{other:?}"),
        }
        let denied = caller(parse(
            r#"{"HTTPResponse": {"StatusCode": 403, "Body": "banned", "Header": {"X-Why": "b"}}}"#,
        ));
        match denied {
            Err(AuthError::Denied {
                status,
                headers,
                message,
            }) => {
                assert_eq!(status, StatusCode::FORBIDDEN);
                assert_eq!(headers["x-why"], "b");
                assert_eq!(message, "banned");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_allow_without_an_owner_fails_closed() {
        for a in [
            r#"{"Allow": true}"#,
            r#"{"Allow": true, "Owner": "a\nb"}"#,
            r#"{"Allow": true, "Owner": "a", "MediaKinds": ["exe"]}"#,
        ] {
            assert!(
                matches!(caller(parse(a)), Err(AuthError::Unavailable(_))),
                "{a}"
            );
        }
    }
}
