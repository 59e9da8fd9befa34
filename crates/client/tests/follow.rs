//! The client's retry, paging and reconnect logic against a scripted HTTP server on a real
//! loopback socket. The server plays one gateway behaviour per test (a 503 before a create, a
//! stream that drops mid-run); the end-to-end tests against `kubetrain local` live in
//! `crates/kubetrain/tests/client.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kubetrain_api::{Phase, TrainingRun};
use kubetrain_client::events::follow;
use kubetrain_client::{Client, ListFilter};
use serde_json::json;

fn run(name: &str, version: u32, phase: &str) -> TrainingRun {
    let progress =
        json!({"iteration": version * 10, "total": 100, "percent": f64::from(version * 10)});
    TrainingRun::test(name)
        .in_ns("default")
        .at_version(&version.to_string())
        .with_status(&json!({"phase": phase, "progress": progress}).to_string())
}

fn event(run: &TrainingRun) -> Result<Event, std::convert::Infallible> {
    Ok(Event::default()
        .event("run")
        .id(run.metadata.resource_version.clone().unwrap())
        .data(serde_json::to_string(run).unwrap()))
}

#[derive(Default)]
struct Script {
    calls: Mutex<Vec<String>>,
}

async fn serve(app: Router) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Client::new(&format!("http://{address}"), Some("t0k3n".into()))
        .unwrap()
        .with_retry_delays(vec![Duration::from_millis(10); 3])
}

#[tokio::test]
async fn a_create_answered_503_is_retried_with_the_same_idempotency_key() {
    async fn create(State(script): State<Arc<Script>>, headers: HeaderMap) -> Response {
        let key = headers["idempotency-key"].to_str().unwrap().to_owned();
        assert_eq!(headers["authorization"], "Bearer t0k3n");
        let mut calls = script.calls.lock().unwrap();
        calls.push(key);
        if calls.len() == 1 {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"code": 503, "reason": "ServiceUnavailable", "message": "database busy"})),
            )
                .into_response();
        }
        (StatusCode::CREATED, axum::Json(run("r", 1, "Pending"))).into_response()
    }
    let script = Arc::new(Script::default());
    let client = serve(
        Router::new()
            .route("/v1/namespaces/default/trainingruns", post(create))
            .with_state(script.clone()),
    )
    .await;
    let created = client
        .create("default", &run("r", 0, "Pending"), "key-1")
        .await
        .unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("r"));
    assert_eq!(*script.calls.lock().unwrap(), ["key-1", "key-1"]);
}

#[tokio::test]
async fn a_422_is_not_retried_and_names_the_field() {
    async fn create(State(script): State<Arc<Script>>) -> Response {
        script.calls.lock().unwrap().push("create".into());
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"code": 422, "reason": "Invalid",
                "message": "spec.dataset.uri: must match ^(s3://...)$", "field": "spec.dataset.uri",
                "causes": [{"field": "spec.dataset.uri", "message": "must match ^(s3://...)$"}]})),
        )
            .into_response()
    }
    let script = Arc::new(Script::default());
    let client = serve(
        Router::new()
            .route("/v1/namespaces/default/trainingruns", post(create))
            .with_state(script.clone()),
    )
    .await;
    let error = client
        .create("default", &run("r", 0, "Pending"), "k")
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(422));
    assert_eq!(
        error.to_string(),
        "spec.dataset.uri: must match ^(s3://...)$ (field: spec.dataset.uri)"
    );
    assert_eq!(script.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn list_follows_continue_tokens() {
    async fn list(Query(query): Query<std::collections::HashMap<String, String>>) -> Response {
        assert_eq!(query.get("phase").map(String::as_str), Some("Succeeded"));
        assert_eq!(
            query.get("labelSelector").map(String::as_str),
            Some("team=ml")
        );
        let body = match query.get("continue").map(String::as_str) {
            None => json!({"items": [run("a", 1, "Succeeded")], "continue": "page-2"}),
            Some("page-2") => json!({"items": [run("b", 2, "Succeeded")]}),
            Some(other) => panic!("unexpected continue token {other}"),
        };
        axum::Json(body).into_response()
    }
    let client = serve(Router::new().route("/v1/namespaces/default/trainingruns", get(list))).await;
    let runs = client
        .list(
            "default",
            &ListFilter {
                phase: Some(Phase::Succeeded),
                label_selector: Some("team=ml".into()),
            },
        )
        .await
        .unwrap();
    let names: Vec<_> = runs
        .iter()
        .map(|r| r.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
}

#[tokio::test]
async fn follow_reconnects_when_the_stream_drops_and_skips_repeats() {
    async fn events(State(script): State<Arc<Script>>, headers: HeaderMap) -> Response {
        let connection = {
            let mut calls = script.calls.lock().unwrap();
            let last = headers
                .get("last-event-id")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            calls.push(last);
            calls.len()
        };
        let runs = if connection == 1 {
            // Ends (as a restarting gateway would) before the run finished.
            vec![run("r", 1, "Pending"), run("r", 2, "Running")]
        } else {
            vec![
                run("r", 2, "Running"),
                run("r", 3, "Running"),
                run("r", 4, "Succeeded"),
            ]
        };
        Sse::new(futures::stream::iter(
            runs.iter().map(event).collect::<Vec<_>>(),
        ))
        .into_response()
    }
    let script = Arc::new(Script::default());
    let client = serve(
        Router::new()
            .route("/v1/namespaces/default/trainingruns/r/events", get(events))
            .with_state(script.clone()),
    )
    .await;
    let mut seen = Vec::new();
    let finished = follow(&client, "default", "r", |run| {
        seen.push(run.metadata.resource_version.clone().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(finished.status.unwrap().phase, Some(Phase::Succeeded));
    assert_eq!(seen, ["1", "2", "3", "4"]);
    assert_eq!(*script.calls.lock().unwrap(), ["", "2"]);
}

#[tokio::test]
async fn follow_reports_a_run_that_is_gone() {
    async fn events() -> Response {
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"code": 404, "reason": "NotFound",
                "message": "trainingruns \"r\" not found in namespace \"default\""})),
        )
            .into_response()
    }
    let client =
        serve(Router::new().route("/v1/namespaces/default/trainingruns/r/events", get(events)))
            .await;
    let error = follow(&client, "default", "r", |_| {}).await.unwrap_err();
    assert_eq!(error.status(), Some(404));
    assert_eq!(
        error.to_string(),
        "trainingruns \"r\" not found in namespace \"default\""
    );
}
