//! Hooks: tusd v2-compatible events sent to executable scripts (`script`) or a webhook
//! (`webhook`), with tusd's JSON request and response, so hook scripts and receivers written
//! for tusd work unchanged.
//!
//! pre-* hooks are awaited by the request that causes them and may reject it, change the new
//! upload's id or metadata (validated like a client's), or shape the response. A hook that
//! fails, times out or answers something that is not a hook response is logged and turns into a
//! 500 for pre-* events; it never changes an upload.

use std::collections::HashSet;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

pub mod dispatch;
pub mod script;
pub mod webhook;
mod wire;

pub use wire::*;

/// Where hooks go.
#[derive(Debug, Clone)]
pub enum Target {
    /// Executables named after the events in this directory.
    Scripts(std::path::PathBuf),
    /// A webhook URL, with extra headers (e.g. authorization).
    Http {
        url: String,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
}

/// Validated hook settings.
#[derive(Debug, Clone)]
pub struct HookConfig {
    pub target: Target,
    pub enabled: HashSet<HookType>,
    pub timeout: Duration,
    /// Least time between two post-receive events of one request.
    pub progress_interval: Duration,
    /// Delivery attempts of a post-* event before it becomes a dead letter.
    pub max_attempts: u32,
    /// Request headers removed from post-* events before they are stored (credentials).
    pub redact: Vec<HeaderName>,
}

/// Credentials that never reach the outbox, whatever is configured: post-* events are stored
/// on disk and kept as dead letters. pre-* hooks, which run in memory, still see them (a
/// pre-create hook that checks a token needs it), as in tusd.
pub const ALWAYS_REDACTED: [HeaderName; 3] = [
    http::header::AUTHORIZATION,
    http::header::COOKIE,
    http::header::PROXY_AUTHORIZATION,
];

impl HookConfig {
    /// Every event, tusd's timeout, 1 s progress, 12 attempts.
    pub fn new(target: Target) -> HookConfig {
        HookConfig {
            target,
            enabled: HookType::ALL.into_iter().collect(),
            timeout: Duration::from_secs(30),
            progress_interval: Duration::from_secs(1),
            max_attempts: 12,
            redact: ALWAYS_REDACTED.to_vec(),
        }
    }
}

/// The hook system: sends events to the configured target. Clones share the dispatcher's
/// wake-up signal.
#[derive(Clone)]
pub struct Hooks {
    config: Option<HookConfig>,
    http: Option<webhook::Webhook>,
    /// Wakes the dispatcher when events were written.
    ready: std::sync::Arc<tokio::sync::Notify>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Hooks {
    pub fn new(
        config: Option<HookConfig>,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Hooks {
        let http = match &config {
            Some(HookConfig {
                target: Target::Http { url, headers },
                timeout,
                ..
            }) => Some(webhook::Webhook::new(
                url.clone(),
                headers.clone(),
                *timeout,
            )),
            _ => None,
        };
        Hooks {
            config,
            http,
            ready: std::sync::Arc::new(tokio::sync::Notify::new()),
            metrics,
        }
    }

    pub fn config(&self) -> Option<&HookConfig> {
        self.config.as_ref()
    }

    /// Tells the dispatcher that events may be due.
    pub fn wake(&self) {
        self.ready.notify_one();
    }

    pub async fn woken(&self) {
        self.ready.notified().await
    }

    pub fn none() -> Hooks {
        Hooks::new(None, Default::default())
    }

    pub fn is_enabled(&self, kind: HookType) -> bool {
        self.config
            .as_ref()
            .is_some_and(|c| c.enabled.contains(&kind))
    }

    /// Sends the event and waits for the answer. An event that is not enabled answers the
    /// empty response (carry on) without being sent.
    pub async fn invoke(&self, request: &HookRequest) -> Result<HookResponse, HookError> {
        if !self.is_enabled(request.kind) {
            return Ok(HookResponse::default());
        }
        let name = request.kind.name();
        let payload = serde_json::to_vec(request)
            .map_err(|e| HookError::Failed(name, format!("cannot encode the event: {e}")))?;
        self.send(request.kind, &payload, None).await
    }

    /// Sends an encoded event (from the outbox), with its id for de-duplication: the
    /// `Tuskd-Event-Id` header of a webhook, `TUSKD_EVENT_ID` for a script.
    pub async fn send(
        &self,
        kind: HookType,
        payload: &[u8],
        event_id: Option<&str>,
    ) -> Result<HookResponse, HookError> {
        if self.config.is_none() {
            return Ok(HookResponse::default());
        }
        let answer = self.exchange(kind, payload, event_id).await;
        let parsed = answer.and_then(|a| parse_response(kind.name(), &a));
        if parsed.is_err() {
            self.failed(kind);
        }
        parsed
    }

    /// Sends an event and returns the hook's answer as it is (the pre-access hook reads its
    /// own fields from it). An unconfigured target answers nothing.
    pub async fn exchange(
        &self,
        kind: HookType,
        payload: &[u8],
        event_id: Option<&str>,
    ) -> Result<Vec<u8>, HookError> {
        let Some(config) = self.config.as_ref() else {
            return Ok(Vec::new());
        };
        let name = kind.name();
        let label = crate::metrics::EventLabels {
            event: name.to_owned(),
        };
        self.metrics.hook_invocations.get_or_create(&label).inc();
        match (&config.target, &self.http) {
            (Target::Scripts(dir), _) => {
                script::run(dir, name, payload, event_id, config.timeout).await
            }
            (Target::Http { .. }, Some(http)) => http.post(name, payload, event_id).await,
            (Target::Http { .. }, None) => unreachable!("webhook client built with the config"),
        }
    }

    /// Counts a failed hook call.
    pub fn failed(&self, kind: HookType) {
        let label = crate::metrics::EventLabels {
            event: kind.name().to_owned(),
        };
        self.metrics.hook_failures.get_or_create(&label).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::wire::canonical;
    use super::*;
    use http::StatusCode;

    #[test]
    fn header_names_are_canonical_like_go() {
        assert_eq!(canonical("upload-length"), "Upload-Length");
        assert_eq!(
            canonical("x-http-method-override"),
            "X-Http-Method-Override"
        );
        assert_eq!(canonical("authorization"), "Authorization");
    }

    #[test]
    fn responses_parse_like_tusd() {
        let r = parse_response(
            "pre-create",
            br#"{"RejectUpload": true, "HTTPResponse": {"StatusCode": 403, "Body": "no",
                "Header": {"X-Reason": "token"}}, "Future": 1}"#,
        )
        .unwrap();
        assert!(r.reject_upload);
        assert_eq!(r.http_response.status_code, 403);
        let (status, headers, body) = r.http_response.validated("pre-create").unwrap();
        assert_eq!(status, Some(StatusCode::FORBIDDEN));
        assert_eq!(headers["x-reason"], "token");
        assert_eq!(body, "no");
        assert!(!parse_response("x", b"  \n").unwrap().reject_upload);
        assert!(matches!(
            parse_response("pre-create", b"OK, go ahead"),
            Err(HookError::Garbage(..))
        ));
        let bad = HttpResponse {
            status_code: 1000,
            ..Default::default()
        };
        assert!(bad.validated("pre-create").is_err());
    }
}
