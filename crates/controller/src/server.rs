//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kube::runtime::reflector::Store;
use kubetrain_api::TrainingRun;
use prometheus_client::registry::Registry;

use crate::metrics::{Metrics, PhaseLabels};

/// What the HTTP endpoints read.
#[derive(Clone, Debug)]
pub struct Health {
    /// Set once the process either leads (its caches synced) or stands by as a follower.
    pub ready: Arc<AtomicBool>,
    /// The runs cache, for the runs-by-phase gauge; `None` until this replica leads.
    pub runs: Arc<std::sync::RwLock<Option<Store<TrainingRun>>>>,
    /// The metrics registry.
    pub registry: Arc<Registry>,
    /// The metrics themselves.
    pub metrics: Arc<Metrics>,
}

/// The router of the health and metrics server.
pub fn app(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    if health.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    if let Ok(guard) = health.runs.read()
        && let Some(store) = guard.as_ref()
    {
        let mut counts = std::collections::BTreeMap::<&str, i64>::new();
        for run in store.state() {
            let phase = run
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .map_or("Unknown", |p| p.as_str());
            *counts.entry(phase).or_default() += 1;
        }
        health.metrics.runs.clear();
        for (phase, count) in counts {
            health
                .metrics
                .runs
                .get_or_create(&PhaseLabels {
                    phase: phase.to_owned(),
                })
                .set(count);
        }
    }
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &health.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            "cannot encode metrics".to_owned(),
        ),
    }
}
