//! The CRUD routes, errors, auth and the API document, over the in-memory fake backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use http_body_util::BodyExt;
use kubetrain_api::{Phase, TrainingRunStatus};
use kubetrain_gateway::{GatewayConfig, Limits, StaticTokens};
use serde_json::json;

const RUNS: &str = "/v1/namespaces/ml/trainingruns";

#[tokio::test]
async fn create_get_delete() {
    let gw = gateway();
    let (status, created) = gw.json(post_json(RUNS, &run_body("churn"))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["metadata"]["name"], "churn");
    assert_eq!(created["metadata"]["namespace"], "ml");
    assert_eq!(created["spec"]["dataset"]["uri"], "s3://data/churn.csv");

    let (status, run) = gw.json(get(&format!("{RUNS}/churn"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["metadata"]["uid"], created["metadata"]["uid"]);

    let (status, body) = gw.json(post_json(RUNS, &run_body("churn"))).await;
    assert_error(status, &body, StatusCode::CONFLICT);
    assert_eq!(body["reason"], "AlreadyExists");

    let request = Request::delete(format!("{RUNS}/churn"))
        .body(Body::empty())
        .unwrap();
    let (status, deleted) = gw.json(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["metadata"]["name"], "churn");
    let (status, body) = gw.json(get(&format!("{RUNS}/churn"))).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let request = Request::delete(format!("{RUNS}/churn"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = gw.json(request).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn generate_name_and_cancel() {
    let gw = gateway();
    let mut body = run_body("x");
    body["metadata"] = json!({"generateName": "churn-"});
    let (status, created) = gw.json(post_json(RUNS, &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let name = created["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("churn-"), "{name}");
    let request = Request::post(format!("{RUNS}/{name}/cancel"))
        .body(Body::empty())
        .unwrap();
    let (status, run) = gw.json(request).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["spec"]["cancel"], true);
    let request = Request::post(format!("{RUNS}/nope/cancel"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = gw.json(request).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_bodies_name_the_problem() {
    let gw = gateway();
    // Malformed JSON: 400 with the position.
    let request = Request::post(RUNS)
        .header("content-type", "application/json")
        .body(Body::from("{\"metadata\": {\n  \"name\": }"))
        .unwrap();
    let (status, body) = gw.json(request).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("line 2"),
        "{body}"
    );

    // A wrong type: 422 naming the field.
    let mut wrong = run_body("a");
    wrong["spec"]["backoffLimit"] = json!("three");
    let (status, body) = gw.json(post_json(RUNS, &wrong)).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "spec.backoffLimit", "{body}");
    assert_eq!(body["causes"][0]["field"], "spec.backoffLimit", "{body}");

    // A missing required field.
    let mut missing = run_body("a");
    missing["spec"].as_object_mut().unwrap().remove("dataset");
    let (status, body) = gw.json(post_json(RUNS, &missing)).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"].as_str().unwrap().contains("dataset"),
        "{body}"
    );

    // Neither name nor generateName.
    let mut nameless = run_body("a");
    nameless["metadata"] = json!({});
    let (status, body) = gw.json(post_json(RUNS, &nameless)).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "metadata.name");

    // Wrong kind.
    let mut kind = run_body("a");
    kind["kind"] = json!("Job");
    let (status, body) = gw.json(post_json(RUNS, &kind)).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "kind");

    // The backend's validation: 422 with its field.
    let mut invalid = run_body("a");
    invalid["spec"]["backoffLimit"] = json!(1000);
    let (status, body) = gw.json(post_json(RUNS, &invalid)).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "spec.backoffLimit");

    // Not JSON: 415.
    let request = Request::post(RUNS)
        .header("content-type", "text/plain")
        .body(Body::from("hello"))
        .unwrap();
    let (status, body) = gw.json(request).await;
    assert_error(status, &body, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A bad namespace in the path: 400.
    let (status, body) = gw
        .json(post_json(
            "/v1/namespaces/Bad_NS/trainingruns",
            &run_body("a"),
        ))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(gw.runs.count(), 0);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let config = GatewayConfig {
        limits: Limits {
            json_body_bytes: 1024,
            ..Limits::default()
        },
        ..GatewayConfig::default()
    };
    let gw = gateway_with(Arc::new(kubetrain_gateway::NoAuth), config);
    let mut body = run_body("big");
    body["metadata"]["annotations"] = json!({"pad": "x".repeat(4096)});
    let (status, body) = gw.json(post_json(RUNS, &body)).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn idempotency_key_returns_the_same_run_and_refuses_another_body() {
    let gw = gateway();
    let mut body = run_body("x");
    body["metadata"] = json!({"generateName": "churn-"});
    let with_key = |body: &serde_json::Value, key: &str| {
        Request::post(RUNS)
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap()
    };
    let (status, first) = gw.json(with_key(&body, "k-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, second) = gw.json(with_key(&body, "k-1")).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(first["metadata"]["uid"], second["metadata"]["uid"]);
    assert_eq!(gw.runs.count(), 1);
    assert!(
        first["metadata"]["annotations"]["kubetrain.dev/idempotency-key"].is_string(),
        "{first}"
    );

    let mut other = body.clone();
    other["spec"]["backoffLimit"] = json!(7);
    let (status, error) = gw.json(with_key(&other, "k-1")).await;
    assert_error(status, &error, StatusCode::CONFLICT);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{error}"
    );

    let (status, third) = gw.json(with_key(&body, "k-2")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(third["metadata"]["name"], first["metadata"]["name"]);
    assert_eq!(gw.runs.count(), 2);

    // A key on a create whose explicit name belongs to a run made without the key: 409.
    let (status, _) = gw.json(post_json(RUNS, &run_body("fixed"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, error) = gw.json(with_key(&run_body("fixed"), "k-3")).await;
    assert_error(status, &error, StatusCode::CONFLICT);
}

#[tokio::test]
async fn list_filters_and_pages() {
    let gw = gateway();
    for i in 0..5 {
        let mut body = run_body(&format!("run-{i}"));
        body["metadata"]["labels"] = json!({"team": if i % 2 == 0 { "a" } else { "b" }});
        let (status, _) = gw.json(post_json(RUNS, &body)).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    gw.runs.set_status(
        "ml",
        "run-3",
        TrainingRunStatus {
            phase: Some(Phase::Succeeded),
            ..Default::default()
        },
    );
    let (status, all) = gw.json(get(RUNS)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert!(all.get("continue").is_none_or(|c| c.is_null()), "{all}");

    let mut names = Vec::new();
    let mut uri = format!("{RUNS}?limit=2");
    loop {
        let (status, page) = gw.json(get(&uri)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        names.extend(
            items
                .iter()
                .map(|r| r["metadata"]["name"].as_str().unwrap().to_owned()),
        );
        match page["continue"].as_str() {
            Some(token) => uri = format!("{RUNS}?limit=2&continue={token}"),
            None => break,
        }
    }
    assert_eq!(names, ["run-0", "run-1", "run-2", "run-3", "run-4"]);

    let (_, succeeded) = gw.json(get(&format!("{RUNS}?phase=Succeeded"))).await;
    let items = succeeded["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"]["name"], "run-3");

    let (_, team) = gw
        .json(get(&format!("{RUNS}?labelSelector=team%3Db")))
        .await;
    assert_eq!(team["items"].as_array().unwrap().len(), 2);

    let (status, body) = gw.json(get(&format!("{RUNS}?phase=Done"))).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("phase"),
        "{body}"
    );
    let (status, body) = gw.json(get(&format!("{RUNS}?limit=-1"))).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = gw
        .json(get(&format!("{RUNS}?labelSelector=team%20in%20(b")))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn backend_unavailable_is_503_with_retry_after_and_no_detail() {
    let gw = gateway();
    gw.runs.unavailable.store(true, Ordering::SeqCst);
    let response = gw.send(get(&format!("{RUNS}/x"))).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let (status, body) = gw.json(get(&format!("{RUNS}/x"))).await;
    assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !body["message"].as_str().unwrap().contains("fake"),
        "{body}"
    );
}

#[tokio::test]
async fn probes() {
    let gw = gateway();
    assert_eq!(gw.send(get("/healthz")).await.status(), StatusCode::OK);
    assert_eq!(gw.send(get("/readyz")).await.status(), StatusCode::OK);
    gw.runs.not_ready.store(true, Ordering::SeqCst);
    let (status, body) = gw.json(get("/readyz")).await;
    assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE);

    gw.json(get(&format!("{RUNS}/missing"))).await;
    let response = gw.send(get("/metrics")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("route=\"/v1/namespaces/{namespace}/trainingruns/{name}\"")
            && text.contains("status=\"404\""),
        "{text}"
    );
    assert!(
        text.contains("kubetrain_gateway_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let gw = gateway();
    let (status, body) = gw.json(get("/nope")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let response = gw
        .send(Request::put(RUNS).body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().contains_key(header::ALLOW));
    let (status, body) = gw
        .json(Request::put(RUNS).body(Body::empty()).unwrap())
        .await;
    assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn static_tokens_401_and_403() {
    let tokens =
        StaticTokens::from_yaml("tokens:\n- {token: alice-token, user: alice, namespaces: [ml]}\n")
            .unwrap();
    let gw = gateway_with(Arc::new(tokens), GatewayConfig::default());
    let with_token = |uri: &str, token: &str| {
        Request::get(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let response = gw.send(get(RUNS)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (status, body) = gw.json(with_token(RUNS, "wrong")).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = gw.json(with_token(RUNS, "alice-token")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = gw
        .json(with_token(
            "/v1/namespaces/other/trainingruns",
            "alice-token",
        ))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("alice")
            && message.contains("list trainingruns.kubetrain.dev in namespace \"other\""),
        "{message}"
    );
    // A create without permission creates nothing.
    let request = Request::post("/v1/namespaces/other/trainingruns")
        .header("content-type", "application/json")
        .header("authorization", "Bearer alice-token")
        .body(Body::from(serde_json::to_vec(&run_body("x")).unwrap()))
        .unwrap();
    let (status, _) = gw.json(request).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(gw.runs.count(), 0);
}

/// The document says what the CRD's CEL rule says of `spec.algorithm`: exactly one member.
#[tokio::test]
async fn the_document_requires_exactly_one_algorithm() {
    let gw = gateway();
    let (status, document) = gw.json(get("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    let algorithm = &document["components"]["schemas"]["TrainingRun"]["properties"]["spec"]["properties"]
        ["algorithm"];
    let mut required: Vec<&str> = algorithm["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("no oneOf in {algorithm}"))
        .iter()
        .map(|member| member["required"][0].as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(
        required,
        [
            "gradientBoostedTrees",
            "linearRegression",
            "logisticRegression",
            "randomForest"
        ]
    );
}

/// Every path and method of the OpenAPI document is routed (the router never answers 404
/// "no route" or 405 for it), and every documented error status has the error schema.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let gw = gateway();
    let (status, document) = gw.json(get("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 6, "{paths:?}");
    for (path, item) in paths {
        let concrete = path
            .replace("{namespace}", "ml")
            .replace("{name}", "some-run")
            .replace("{task_id}", "train-0123456789");
        for (method, operation) in item.as_object().unwrap() {
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .body(Body::empty())
                .unwrap();
            let response = gw.send(request).await;
            let status = response.status();
            let content_type = content_type(&response);
            // An event stream may stay open (the namespace watch does): its headers say enough.
            let bytes = if content_type.starts_with("text/event-stream") {
                bytes::Bytes::new()
            } else {
                response.into_body().collect().await.unwrap().to_bytes()
            };
            let body: serde_json::Value = if content_type.starts_with("application/json") {
                serde_json::from_slice(&bytes).unwrap()
            } else {
                assert!(
                    status.is_success(),
                    "{method} {path}: {status} {content_type}"
                );
                serde_json::Value::Null
            };
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {body}"
            );
            if status == StatusCode::NOT_FOUND {
                assert!(
                    !body["message"].as_str().unwrap_or("").contains("no route"),
                    "{method} {path} is documented but not routed: {body}"
                );
            }
            let documented = operation["responses"].as_object().unwrap();
            assert!(
                documented.contains_key(status.as_str()),
                "{method} {path} answered {status}, which the document does not list: {body}"
            );
            for (code, answer) in documented {
                if code.starts_with('4') || code.starts_with('5') {
                    assert_eq!(
                        answer["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {code}"
                    );
                }
            }
        }
    }
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for name in ["TrainingRun", "ErrorBody", "RunListBody"] {
        assert!(
            schemas.contains_key(name),
            "missing schema {name}: {:?}",
            schemas.keys()
        );
    }
    let refs = document.to_string();
    for reference in refs.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
}

#[tokio::test]
async fn slow_requests_time_out_with_504() {
    let config = GatewayConfig {
        limits: Limits {
            request_timeout: std::time::Duration::from_millis(100),
            ..Limits::default()
        },
        ..GatewayConfig::default()
    };
    let gw = gateway_with(Arc::new(kubetrain_gateway::NoAuth), config);
    *gw.runs.hold.lock().unwrap() = Some(Arc::new(tokio::sync::Semaphore::new(0)));
    let (status, body) = gw.json(get(&format!("{RUNS}/x"))).await;
    assert_error(status, &body, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["reason"], "Timeout");
}

#[tokio::test]
async fn over_the_concurrency_limit_is_503_with_retry_after() {
    let config = GatewayConfig {
        limits: Limits {
            max_concurrent_requests: 1,
            ..Limits::default()
        },
        ..GatewayConfig::default()
    };
    let gw = Arc::new(gateway_with(Arc::new(kubetrain_gateway::NoAuth), config));
    let (status, _) = gw.json(post_json(RUNS, &run_body("x"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *gw.runs.hold.lock().unwrap() = Some(gate.clone());
    let first = tokio::spawn({
        let gw = gw.clone();
        async move { gw.json(get(&format!("{RUNS}/x"))).await }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gw.runs.entered.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first request never arrived"
        );
        tokio::task::yield_now().await;
    }
    let response = gw.send(get(&format!("{RUNS}/x"))).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    // Probes are not limited.
    assert_eq!(gw.send(get("/healthz")).await.status(), StatusCode::OK);
    gate.add_permits(10);
    let (status, _) = first.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        gw.send(get(&format!("{RUNS}/x"))).await.status(),
        StatusCode::OK
    );
}
