//! The operators' routes: `GET /healthz` (the process serves requests), `GET /readyz` (the
//! checks of `health::Health`), and `GET /metrics` (the registry of `metrics::Metrics`, with the
//! figures read from the metadata store refreshed first).

use http::{Response, StatusCode};
use serde_json::json;

use crate::app::App;
use crate::domain::media::Lane;
use crate::http::body::{Body, full, json_response};

/// `GET /healthz`: answered while the process serves.
pub(crate) fn healthz() -> Response<Body> {
    json_response(StatusCode::OK, json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when every check passes, else 503 naming the ones that failed.
pub(crate) async fn readyz(app: &App) -> Response<Body> {
    let report = app
        .health
        .ready(
            app.uploads.meta.as_ref(),
            app.uploads.storage.as_ref(),
            &app.uploads.space,
        )
        .await;
    let checks: serde_json::Map<String, serde_json::Value> = report
        .checks
        .iter()
        .map(|(name, e)| {
            let v = match e {
                None => json!("ok"),
                Some(e) => json!(e),
            };
            ((*name).to_owned(), v)
        })
        .chain(
            report
                .notes
                .iter()
                .map(|(name, state)| ((*name).to_owned(), json!(state))),
        )
        .collect();
    let failing: Vec<&str> = report
        .checks
        .iter()
        .filter(|(_, e)| e.is_some())
        .map(|(n, _)| *n)
        .collect();
    if failing.is_empty() {
        json_response(
            StatusCode::OK,
            json!({ "status": "ready", "checks": checks }),
        )
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "unavailable", "failing": failing, "checks": checks }),
        )
    }
}

/// `GET /metrics`: the figures read from the metadata store refreshed, then everything.
pub(crate) async fn metrics(app: &App) -> Response<Body> {
    let m = &app.metrics;
    app.uploads.space.refresh_metrics();
    match app.uploads.meta.stats().await {
        Ok(s) => {
            m.outbox_pending.set(s.outbox_pending as i64);
            m.outbox_dead.set(s.dead_letters as i64);
            let age = s
                .outbox_oldest
                .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
                .map_or(0.0, |d| d.as_secs_f64());
            m.outbox_oldest_seconds.set(age);
            // A label the store did not name counts 0.
            let count = |of: &[(String, u64)], label: &str| {
                of.iter().find(|(l, _)| l == label).map_or(0, |(_, n)| *n)
            };
            for status in crate::domain::media::MediaStatus::ALL {
                let n = count(&s.media, status.as_str());
                m.media_jobs
                    .get_or_create(&crate::metrics::StateLabels {
                        state: status.as_str().to_owned(),
                    })
                    .set(n as i64);
            }
            for lane in [Lane::Fast, Lane::Slow] {
                let n = count(&s.media_due, lane.as_str());
                m.media_queue_depth
                    .get_or_create(&crate::metrics::LaneLabels {
                        lane: lane.as_str().to_owned(),
                    })
                    .set(n as i64);
            }
        }
        Err(e) => tracing::warn!("metrics: cannot read the metadata store's figures: {e}"),
    }
    let mut resp = http::Response::new(full(m.encode()));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    resp
}
