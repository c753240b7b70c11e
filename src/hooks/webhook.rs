//! HTTP hooks: the event is POSTed as JSON to one URL, as tusd does; a 2xx answer's body is the
//! hook response, anything else is a failure. Outbox events carry a `Tuskd-Event-Id` header,
//! the same on every attempt, and are retried by the dispatcher; for pre-* events, connection
//! failures and 5xx answers are retried here a few times with a growing pause, within the hook
//! timeout.

use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::{HookError, MAX_RESPONSE_BYTES};

/// Attempts per event, and the pause before the second one (doubled each time).
const ATTEMPTS: u32 = 3;
const FIRST_PAUSE: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct Webhook {
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(url: String, headers: Vec<(HeaderName, HeaderValue)>, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .expect("the HTTP client builds with default TLS settings");
        Webhook {
            url,
            headers,
            timeout,
            client,
        }
    }

    pub async fn post(
        &self,
        hook: &'static str,
        payload: &[u8],
        event_id: Option<&str>,
    ) -> Result<Vec<u8>, HookError> {
        // Outbox events are retried by the dispatcher, with its backoff: one attempt here.
        let most = if event_id.is_some() { 1 } else { ATTEMPTS };
        let attempts = async {
            let mut pause = FIRST_PAUSE;
            let mut attempt = 1;
            loop {
                match self.once(hook, payload, event_id).await {
                    Ok(body) => return Ok(body),
                    Err((retry, e)) if retry && attempt < most => {
                        tracing::warn!(hook, attempt, "webhook failed, retrying: {e}");
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                        attempt += 1;
                    }
                    Err((_, e)) => return Err(e),
                }
            }
        };
        match tokio::time::timeout(self.timeout, attempts).await {
            Ok(result) => result,
            Err(_) => Err(HookError::TimedOut(hook, self.timeout)),
        }
    }

    /// One POST; the error says whether trying again may help.
    async fn once(
        &self,
        hook: &'static str,
        payload: &[u8],
        event_id: Option<&str>,
    ) -> Result<Vec<u8>, (bool, HookError)> {
        let mut req = self
            .client
            .post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(payload.to_vec());
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(id) = event_id {
            req = req.header("Tuskd-Event-Id", id);
        }
        let fail = |retry: bool, what: String| (retry, HookError::Failed(hook, what));
        let mut resp = req.send().await.map_err(|e| fail(true, e.to_string()))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(true, e.to_string()))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_RESPONSE_BYTES {
                return Err(fail(
                    false,
                    format!("answer over {MAX_RESPONSE_BYTES} bytes"),
                ));
            }
        }
        if !status.is_success() {
            let shown: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(fail(
                status.is_server_error(),
                format!("answered {status}: {shown:?}"),
            ));
        }
        Ok(body)
    }
}
