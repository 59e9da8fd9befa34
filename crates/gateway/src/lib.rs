//! The kubetrain REST API: `app(state) -> Router` over a [`Runs`] backend and an
//! [`Authorizer`]. The Kubernetes backend and the local backend live in their own crates and
//! serve these same routes.
//!
//! # Expected flow
//! A backend implements [`Runs`]; its `list` is [`listing::page`] over the runs it holds (label
//! selector, phase, `limit` and `continue` the same in every backend).
//! A binary builds a backend and an authorizer (for `--auth static` [`StaticTokens`], for
//! `--auth none` [`NoAuth`] after [`check_no_auth_address`]), then
//! `serve(listener, app(AppState::new(backend, auth, config)), shutdown).await`.
//!
//! # Routes (JSON unless said otherwise; `/openapi.json` documents every status and body)
//! - `POST|GET /v1/namespaces/{ns}/trainingruns`, `GET|DELETE .../{name}`,
//!   `POST .../{name}/cancel`: TrainingRun objects as Kubernetes writes them; lists are
//!   [`RunListBody`] `{"items": [...], "continue": "..."}` (`continue` absent on the last page),
//!   query `phase`, `labelSelector`, `limit`, `continue`. `Idempotency-Key` makes a create
//!   retry-safe (see [`IDEMPOTENCY_KEY_ANNOTATION`]).
//! - `GET .../{name}/events`: `text/event-stream`, events `event: run`, `id: <resourceVersion>`,
//!   `data: <TrainingRun>`; current state first, ends after a terminal phase or deletion.
//! - `GET .../{name}/model`: the model file, streamed; `ETag: "sha256:<hex>"`,
//!   `X-Model-Sha256: <hex>`; 409 while there is no model.
//! - `POST .../{name}/predict`: [`PredictRequest`] `{"rows": [[f64...]...]}` (the model's
//!   `featureNames` order) → [`PredictResponse`]: `{"classes", "probabilities", "classLabels"}`
//!   from a classifier, `{"values"}` from a regressor.
//! - `POST /v1/namespaces/{ns}/datasets`: the body (CSV) is stored at
//!   `<staging>/datasets/<uuid>.csv` → 201 [`DatasetUploaded`] `{"uri", "bytes"}`.
//! - `POST /train/`, `POST /train`, `GET /status/{task_id}`: the seed API ([`SeedTrainRequest`],
//!   [`SeedTask`], [`SeedStatus`]).
//! - `GET .../{name}/summary`: the run's `summary.json` (409 while there is no model).
//! - `GET /v1/watch/namespaces/{ns}/trainingruns`: every change of the namespace's runs as
//!   Server-Sent Events (`resync`, `run`, `deleted`; see the route's documentation).
//! - `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.
//! - `/ui/`: the web UI (static pages calling this API; see the `ui` module).
//!
//! # Guarantees
//! Every non-2xx answer has a JSON [`ErrorBody`]
//! `{"code", "reason", "message", "field"?, "causes"?: [{"field", "message"}]}`; internal
//! error text is logged, never returned. The OpenAPI document is generated from the same route
//! table the router is built from.

pub mod auth;
pub mod backend;
pub mod error;
pub mod extract;
pub mod listing;
pub mod metrics;
mod models;
mod openapi;
mod routes;
mod server;
mod state;
mod ui;
pub mod watch;

use std::any::Any;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{BoxError, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use auth::{
    NoAuth, StaticTokens, TokenEntry, TokenFile, TokenFileError, check_no_auth_address,
};
pub use backend::{
    Access, AuthError, Authorizer, BackendError, Caller, FieldError, ListQuery, RunList, Runs,
};
pub use error::{ApiError, ErrorBody, Fault, LogDetail};
pub use listing::LabelSelector;
pub use routes::datasets::{DatasetUploaded, PART_BYTES};
pub use routes::events::EVENT_NAME;
pub use routes::model::MODEL_SHA256_HEADER;
pub use routes::predict::{PredictRequest, PredictResponse};
pub use routes::runs::{
    IDEMPOTENCY_KEY_ANNOTATION, IDEMPOTENCY_KEY_HEADER, REQUEST_HASH_ANNOTATION, RunListBody,
};
pub use routes::seed::{SEED_LABEL, SeedLabel, SeedResult, SeedStatus, SeedTask, SeedTrainRequest};
pub use server::{DEFAULT_DRAIN_TIMEOUT, serve, serve_with_drain};
pub use state::{AppState, GatewayConfig, Limits};
pub use ui::UI_PATH;

use routes::Class;

/// The router of the whole API, with its limits, metrics and error mapping.
pub fn app(state: AppState) -> Router {
    let limits = state.config.limits.clone();
    let mut limited = Router::new();
    let mut probes = Router::new();
    for endpoint in routes::endpoints() {
        let path = endpoint.operation.path;
        match endpoint.class {
            Class::Bounded => {
                let timeout = ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(middleware_error))
                    .timeout(limits.request_timeout);
                limited = limited.route(path, endpoint.handler.layer(timeout));
            }
            Class::Streaming => limited = limited.route(path, endpoint.handler),
            Class::Probe => probes = probes.route(path, endpoint.handler),
        }
    }
    // The UI's files are static and small: served like the probes, outside the limits.
    let probes = probes.merge(ui::routes());
    let limited = limited.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(middleware_error))
            .load_shed()
            .layer(GlobalConcurrencyLimitLayer::new(
                limits.max_concurrent_requests.max(1),
            )),
    );
    limited
        .merge(probes)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits.json_body_bytes))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::record,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The OpenAPI 3.1 document of [`app`]'s routes.
pub fn openapi_document() -> serde_json::Value {
    let endpoints = routes::endpoints();
    openapi::document(endpoints.iter().map(|e| &e.operation))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}; the API is described at /openapi.json",
        request.method(),
        request.uri().path()
    ))
}

async fn middleware_error(error: BoxError) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            "the request took longer than the server's request timeout; retry later",
        )
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::unavailable("the server is at its concurrency limit; retry later", 1)
    } else {
        ApiError::internal(error)
    }
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a handler panicked".to_owned());
    // Outside `json_errors`, so the panic's answer is logged here (inside the request's span).
    let response = ApiError::internal(format!("panic: {detail}")).into_response();
    log_error(&response);
    response
}

/// Log what an error answer's [`error::LogDetail`] says, once, inside the request's span.
fn log_error(response: &Response) {
    if let Some(log) = response.extensions().get::<error::LogDetail>() {
        let status = response.status().as_u16();
        match log.fault {
            error::Fault::Server => tracing::error!(status, error = %log.detail, "request failed"),
            error::Fault::Dependency => {
                tracing::warn!(status, error = %log.detail, "request failed")
            }
        }
    }
}

/// Answers axum produces itself (405, extractor rejections) carry plain text; give every
/// error answer the JSON error body, keeping headers such as `Allow`. Every error answer's log
/// detail is written here, once (one middleware pass per request serves both).
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    log_error(&response);
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 16 * 1024).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned(),
    };
    let text = if status == StatusCode::METHOD_NOT_ALLOWED {
        let allowed = parts
            .headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        format!("this path does not support this method; allowed: {allowed}")
    } else {
        text
    };
    let mut answer = error::ApiError::from_status(status, text).into_response();
    log_error(&answer);
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}
