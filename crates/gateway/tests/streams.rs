//! Routes that stream or touch storage: SSE, model download, predict, dataset upload, the seed
//! API, and graceful shutdown on a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use kubetrain_api::{Metrics, ModelRef, Phase, SecretReference, StorageSpec, TrainingRunStatus};
use kubetrain_gateway::{GatewayConfig, Limits, NoAuth};
use kubetrain_storage::Location;
use serde_json::json;

const RUN: &str = "/v1/namespaces/ml/trainingruns/churn";

fn in_phase(phase: Phase) -> TrainingRunStatus {
    TrainingRunStatus {
        phase: Some(phase),
        ..Default::default()
    }
}

/// The `data:` of every SSE event in `text`.
fn sse_runs(text: &str) -> Vec<serde_json::Value> {
    text.split("\n\n")
        .filter(|block| block.lines().any(|l| l == "event: run"))
        .map(|block| {
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            serde_json::from_str(&data).unwrap()
        })
        .collect()
}

async fn read_to_end(body: Body) -> String {
    let bytes = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .expect("the stream ends")
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn create(gw: &Gateway, name: &str) {
    let (status, body) = gw
        .json(post_json("/v1/namespaces/ml/trainingruns", &run_body(name)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn events_start_with_the_current_state_and_end_at_the_terminal_phase() {
    let gw = gateway();
    create(&gw, "churn").await;
    let response = gw.send(get(&format!("{RUN}/events"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with("text/event-stream"));
    // The handler has subscribed before answering, so these changes reach the stream.
    gw.runs.set_status("ml", "churn", in_phase(Phase::Running));
    gw.runs
        .set_status("ml", "churn", in_phase(Phase::Succeeded));
    let text = read_to_end(response.into_body()).await;
    let runs = sse_runs(&text);
    let phases: Vec<&str> = runs
        .iter()
        .map(|r| r["status"]["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["Pending", "Running", "Succeeded"], "{text}");
    let last = runs.last().unwrap();
    let id = format!(
        "id: {}",
        last["metadata"]["resourceVersion"].as_str().unwrap()
    );
    assert!(text.lines().any(|l| l == id), "{text}");

    // A late client gets the final state at once, and the stream ends.
    let response = gw.send(get(&format!("{RUN}/events"))).await;
    let runs = sse_runs(&read_to_end(response.into_body()).await);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"]["phase"], "Succeeded");

    let (status, body) = gw
        .json(get("/v1/namespaces/ml/trainingruns/nope/events"))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn events_end_when_the_run_is_deleted() {
    let gw = gateway();
    create(&gw, "churn").await;
    let response = gw.send(get(&format!("{RUN}/events"))).await;
    let deleted = gw
        .send(Request::delete(RUN).body(Body::empty()).unwrap())
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let runs = sse_runs(&read_to_end(response.into_body()).await);
    assert_eq!(runs.len(), 1);
}

/// A trained model in a temporary directory, and the CSV of rows to predict.
struct Trained {
    _dir: tempfile::TempDir,
    model: ModelRef,
    rows: Vec<Vec<f64>>,
    test_csv: String,
}

fn train_three_classes() -> Trained {
    let dir = tempfile::tempdir().unwrap();
    let mut train = String::from("a,b,c,label\n");
    let mut test = String::from("a,b,c\n");
    let mut rows = Vec::new();
    for i in 0..120 {
        let class = ["red", "green", "blue"][i % 3];
        let (x, y) = [(0.0, 0.0), (3.0, 0.5), (0.5, 3.0)][i % 3];
        let jitter = ((i * 37) % 17) as f64 / 10.0 - 0.8;
        let row = [x + jitter, y - jitter / 2.0, (i % 7) as f64 * 0.25];
        train.push_str(&format!("{},{},{},{class}\n", row[0], row[1], row[2]));
        if i % 4 == 0 {
            test.push_str(&format!("{},{},{}\n", row[0], row[1], row[2]));
            rows.push(row.to_vec());
        }
    }
    std::fs::write(dir.path().join("train.csv"), train).unwrap();
    let test_csv = dir.path().join("test.csv");
    std::fs::write(&test_csv, test).unwrap();
    let config = kubetrain_trainer::TrainConfig {
        data: format!("file://{}/train.csv", dir.path().display()),
        label_column: "label".into(),
        feature_columns: None,
        validation: kubetrain_trainer::Validation::Fraction {
            fraction: 0.0,
            seed: 1,
        },
        output: format!("file://{}/out/", dir.path().display()),
        task: kubetrain_api::Task::Classification,
        algorithm: kubetrain_trainer::AlgorithmConfig::LogisticRegression {
            solver: Default::default(),
            params: kubetrain_trainer::FitParams {
                max_iterations: 100,
                l2_penalty: 1.0,
                tolerance: 1e-4,
            },
        },
        threads: Some(1),
        dataset_cache: None,
    };
    let summary =
        kubetrain_trainer::train(&config, &kubetrain_trainer::progress::NoProgress).unwrap();
    Trained {
        model: ModelRef {
            uri: summary.model.uri.clone(),
            sha256: summary.model.sha256.clone(),
            bytes: summary.model.bytes,
        },
        rows,
        test_csv: test_csv.display().to_string(),
        _dir: dir,
    }
}

fn succeeded_with(model: &ModelRef) -> TrainingRunStatus {
    TrainingRunStatus {
        phase: Some(Phase::Succeeded),
        model: Some(model.clone()),
        ..Default::default()
    }
}

#[tokio::test]
async fn model_download_streams_the_file_with_its_sha256() {
    let trained = train_three_classes();
    let gw = gateway();
    create(&gw, "churn").await;
    let (status, body) = gw.json(get(&format!("{RUN}/model"))).await;
    assert_error(status, &body, StatusCode::CONFLICT);
    assert!(
        body["message"].as_str().unwrap().contains("no model yet"),
        "{body}"
    );

    gw.runs
        .set_status("ml", "churn", succeeded_with(&trained.model));
    let response = gw.send(get(&format!("{RUN}/model"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["content-length"],
        trained.model.bytes.to_string().as_str()
    );
    assert_eq!(headers["x-model-sha256"], trained.model.sha256.as_str());
    assert_eq!(
        headers["etag"],
        format!("\"sha256:{}\"", trained.model.sha256).as_str()
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let on_disk = std::fs::read(trained.model.uri.strip_prefix("file://").unwrap()).unwrap();
    assert_eq!(&bytes[..], &on_disk[..]);
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&bytes)),
        trained.model.sha256
    );

    // A status that does not match the stored object: 502, never the wrong bytes.
    let wrong = ModelRef {
        bytes: trained.model.bytes + 1,
        ..trained.model.clone()
    };
    gw.runs.set_status("ml", "churn", succeeded_with(&wrong));
    let (status, body) = gw.json(get(&format!("{RUN}/model"))).await;
    assert_error(status, &body, StatusCode::BAD_GATEWAY);
    let missing = ModelRef {
        uri: format!("{}.missing", trained.model.uri),
        ..trained.model.clone()
    };
    gw.runs.set_status("ml", "churn", succeeded_with(&missing));
    let (status, body) = gw.json(get(&format!("{RUN}/model"))).await;
    assert_error(status, &body, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn predict_matches_the_trainer() {
    let trained = train_three_classes();
    let gw = gateway();
    create(&gw, "churn").await;
    let uri = format!("{RUN}/predict");
    let (status, body) = gw
        .json(post_json(&uri, &json!({"rows": trained.rows})))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);

    gw.runs
        .set_status("ml", "churn", succeeded_with(&trained.model));
    let (status, answer) = gw
        .json(post_json(&uri, &json!({"rows": trained.rows})))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let expected = kubetrain_trainer::predict(&kubetrain_trainer::PredictConfig {
        model: trained.model.uri.clone(),
        data: trained.test_csv.clone(),
        label_column: None,
        threads: Some(1),
    })
    .unwrap();
    assert_eq!(answer["classLabels"], json!(expected.classes));
    let kubetrain_model::Prediction::Probabilities(expected_probabilities) = &expected.prediction
    else {
        panic!("a classifier predicts probabilities")
    };
    let classes: Vec<String> = kubetrain_model::argmax_rows(expected_probabilities)
        .iter()
        .map(|&k| expected.classes[k].clone())
        .collect();
    assert_eq!(answer["classes"], json!(classes));
    let probabilities: Vec<Vec<f64>> = expected_probabilities
        .rows()
        .into_iter()
        .map(|r| r.to_vec())
        .collect();
    assert_eq!(answer["probabilities"], json!(probabilities));
    assert!(classes.iter().any(|c| c == "blue") && classes.iter().any(|c| c == "red"));

    let (status, body) = gw
        .json(post_json(
            &uri,
            &json!({"rows": [[1.0, 2.0, 3.0], [1.0, 2.0]]}),
        ))
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "rows[1]");
    assert!(
        body["message"].as_str().unwrap().contains("expects 3"),
        "{body}"
    );
    let (status, body) = gw.json(post_json(&uri, &json!({"rows": [["x"]]}))).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "rows[0][0]");

    // A model whose bytes do not hash to the status' sha256 is refused.
    let tampered = ModelRef {
        sha256: "ab".repeat(32),
        ..trained.model.clone()
    };
    gw.runs.set_status("ml", "churn", succeeded_with(&tampered));
    let (status, body) = gw
        .json(post_json(&uri, &json!({"rows": trained.rows})))
        .await;
    assert_error(status, &body, StatusCode::BAD_GATEWAY);
}

fn staged_gateway(dir: &std::path::Path, upload_bytes: u64) -> Gateway {
    gateway_with(Arc::new(NoAuth), staged_config(dir, upload_bytes))
}

fn staged_config(dir: &std::path::Path, upload_bytes: u64) -> GatewayConfig {
    GatewayConfig {
        staging: Some(
            Location::parse(
                "--staging-uri",
                &format!("file://{}/staging/", dir.display()),
            )
            .unwrap(),
        ),
        seed_namespace: "seed".into(),
        seed_storage: None,
        limits: Limits {
            upload_bytes,
            ..Limits::default()
        },
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(files_under(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[tokio::test]
async fn datasets_are_streamed_to_staging_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let gw = staged_gateway(dir.path(), 64);
    let csv = "a,b,label\n1,2,0\n3,4,1\n";
    let request = Request::post("/v1/namespaces/ml/datasets")
        .header("content-type", "text/csv")
        .body(Body::from(csv))
        .unwrap();
    let (status, body) = gw.json(request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["bytes"], csv.len());
    let uri = body["uri"].as_str().unwrap();
    assert!(
        uri.contains("/staging/datasets/") && uri.ends_with(".csv"),
        "{uri}"
    );
    let stored = std::fs::read_to_string(uri.strip_prefix("file://").unwrap()).unwrap();
    assert_eq!(stored, csv);

    // Over the limit without a Content-Length: the stream is cut off and nothing is kept.
    let chunks =
        (0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"0123456789\n")));
    let request = Request::post("/v1/namespaces/ml/datasets")
        .header("content-type", "text/csv")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let (status, body) = gw.json(request).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    // With a Content-Length over the limit: refused before reading.
    let request = Request::post("/v1/namespaces/ml/datasets")
        .header("content-type", "text/csv")
        .body(Body::from("x".repeat(100)))
        .unwrap();
    let (status, body) = gw.json(request).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    let request = Request::post("/v1/namespaces/ml/datasets")
        .body(Body::empty())
        .unwrap();
    let (status, body) = gw.json(request).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let files = files_under(&dir.path().join("staging"));
    assert_eq!(files.len(), 1, "{files:?}");

    // No staging location: 501 with a message saying what to do.
    let gw = gateway();
    let request = Request::post("/v1/namespaces/ml/datasets")
        .body(Body::from(csv))
        .unwrap();
    let (status, body) = gw.json(request).await;
    assert_error(status, &body, StatusCode::NOT_IMPLEMENTED);
    assert!(
        body["message"].as_str().unwrap().contains("--staging-uri"),
        "{body}"
    );
}

#[tokio::test]
async fn datasets_larger_than_a_part_are_uploaded_in_parts() {
    use kubetrain_gateway::PART_BYTES;
    let dir = tempfile::tempdir().unwrap();
    let limit = 3 * PART_BYTES as u64;
    let gw = staged_gateway(dir.path(), limit);
    let line = b"1.5,2.5,0\n";
    let lines = 2 * PART_BYTES / line.len() + 7;
    let chunk = bytes::Bytes::from(line.repeat(1000));
    let chunks = (0..lines / 1000 + 1).map(move |i| {
        let take = if i == lines / 1000 {
            (lines % 1000) * line.len()
        } else {
            chunk.len()
        };
        Ok::<_, std::io::Error>(chunk.slice(..take))
    });
    let request = Request::post("/v1/namespaces/ml/datasets")
        .header("content-type", "text/csv")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let (status, body) = gw.json(request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["bytes"], (lines * line.len()) as u64);
    let uri = body["uri"].as_str().unwrap();
    let stored = std::fs::read(uri.strip_prefix("file://").unwrap()).unwrap();
    assert_eq!(stored.len(), lines * line.len());
    assert!(stored.chunks(line.len()).all(|l| l == line));

    // Over the limit after several parts went out: aborted, only the first upload is left.
    let over = (0..4 * PART_BYTES / (1 << 20))
        .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'7'; 1 << 20])));
    let request = Request::post("/v1/namespaces/ml/datasets")
        .header("content-type", "text/csv")
        .body(Body::from_stream(futures::stream::iter(over)))
        .unwrap();
    let (status, body) = gw.json(request).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    let files = files_under(&dir.path().join("staging"));
    assert_eq!(files.len(), 1, "{files:?}");
}

#[tokio::test]
async fn seed_runs_carry_the_configured_storage() {
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageSpec {
        secret_ref: Some(SecretReference {
            name: "staging-s3".into(),
        }),
        endpoint: Some("http://seaweedfs.storage:8333".into()),
        region: Some("eu-west-1".into()),
    };
    let config = GatewayConfig {
        seed_storage: Some(storage.clone()),
        ..staged_config(dir.path(), 1 << 20)
    };
    let gw = gateway_with(Arc::new(NoAuth), config);
    let request = json!({"features": [[0.1], [0.2], [0.3]], "labels": [0, 1, 1]});
    let (status, answer) = gw.json(post_json("/train/", &request)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let task = answer["task_id"].as_str().unwrap();
    let run = gw.runs.get_now("seed", task).unwrap();
    assert_eq!(run.spec.storage, Some(storage));
    // Runs created through the Kubernetes-style route keep their own (here: no) storage.
    let (status, created) = gw
        .json(post_json(
            "/v1/namespaces/ml/trainingruns",
            &run_body("own-storage"),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        gw.runs.get_now("ml", "own-storage").unwrap().spec.storage,
        None
    );
}

#[tokio::test]
async fn large_inline_data_is_staged_whole() {
    // Over the cells the gateway writes as CSV on the request's task: the blocking-pool path.
    let dir = tempfile::tempdir().unwrap();
    let gw = staged_gateway(dir.path(), 1 << 20);
    let (rows, width) = (2_000, 10);
    let features: Vec<Vec<f64>> = (0..rows)
        .map(|i| (0..width).map(|j| f64::from(i * width + j) / 4.0).collect())
        .collect();
    let labels: Vec<u32> = (0..rows).map(|i| i % 3).collect();
    let request = json!({"features": features, "labels": labels});
    let (status, answer) = gw.json(post_json("/train/", &request)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let run = gw
        .runs
        .get_now("seed", answer["task_id"].as_str().unwrap())
        .unwrap();
    let csv = Location::parse("data", &run.spec.dataset.uri)
        .unwrap()
        .read()
        .await
        .unwrap();
    let text = std::str::from_utf8(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), rows as usize + 1);
    assert_eq!(lines[0], "f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,label");
    assert_eq!(lines[1], "0,0.25,0.5,0.75,1,1.25,1.5,1.75,2,2.25,0");
    assert_eq!(
        lines[rows as usize],
        "4997.5,4997.75,4998,4998.25,4998.5,4998.75,4999,4999.25,4999.5,4999.75,1"
    );
}

#[tokio::test]
async fn seed_train_then_status() {
    let dir = tempfile::tempdir().unwrap();
    let gw = staged_gateway(dir.path(), 1 << 20);
    let request = json!({
        "features": [[0.1, 1.0], [0.2, 2.0], [0.3, 3.0], [0.4, 4.0], [0.5, 5.0]],
        "labels": [0, 1, 0, 1, 1],
        "test_size": 0.4,
        "random_state": 7,
        "C": 4.0,
        "max_iter": 50
    });
    for path in ["/train/", "/train"] {
        let (status, answer) = gw.json(post_json(path, &request)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(
            answer["task_id"].as_str().unwrap().starts_with("train-"),
            "{answer}"
        );
    }
    let (_, answer) = gw.json(post_json("/train/", &request)).await;
    let task = answer["task_id"].as_str().unwrap().to_owned();
    assert_eq!(task.len(), "train-".len() + 10);
    let run = gw.runs.get_now("seed", &task).unwrap();
    let lr = run.spec.algorithm.logistic_regression.clone().unwrap();
    assert_eq!(lr.l2_penalty, 0.25);
    assert_eq!(lr.max_iterations, 50);
    assert_eq!(run.spec.dataset.validation_fraction, Some(0.4));
    assert_eq!(run.spec.dataset.seed, Some(7));
    assert_eq!(run.spec.dataset.label_column, "label");
    assert_eq!(run.spec.storage, None, "no seed storage configured");
    assert!(
        run.spec
            .output
            .uri
            .ends_with(&format!("/staging/models/{task}/")),
        "{}",
        run.spec.output.uri
    );
    let data = Location::parse("data", &run.spec.dataset.uri).unwrap();
    let csv = data.read().await.unwrap();
    assert_eq!(
        std::str::from_utf8(&csv).unwrap(),
        "f0,f1,label\n0.1,1,0\n0.2,2,1\n0.3,3,0\n0.4,4,1\n0.5,5,1\n"
    );

    let status_uri = format!("/status/{task}");
    let (status, answer) = gw.json(get(&status_uri)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["status"], "pending", "{answer}");
    assert_eq!(answer["task_id"], task.as_str());
    gw.runs.set_status("seed", &task, in_phase(Phase::Running));
    assert_eq!(gw.json(get(&status_uri)).await.1["status"], "running");
    gw.runs.set_status(
        "seed",
        &task,
        TrainingRunStatus {
            phase: Some(Phase::Succeeded),
            metrics: Some(Metrics {
                accuracy: Some(0.5),
                validation_rows: Some(2),
                ..Default::default()
            }),
            model: Some(ModelRef {
                uri: "file:///m/model.json".into(),
                sha256: "ab".repeat(32),
                bytes: 10,
            }),
            ..Default::default()
        },
    );
    let (_, answer) = gw.json(get(&status_uri)).await;
    assert_eq!(answer["status"], "complete", "{answer}");
    assert_eq!(answer["state"], "Succeeded");
    assert_eq!(answer["result"]["accuracy"], 0.5);
    assert_eq!(answer["result"]["model_uri"], "file:///m/model.json");
    assert_eq!(answer["result"]["model_sha256"], "ab".repeat(32));
    gw.runs.set_status(
        "seed",
        &task,
        TrainingRunStatus {
            phase: Some(Phase::Failed),
            message: Some("BadInput: one class".into()),
            ..Default::default()
        },
    );
    let (_, answer) = gw.json(get(&status_uri)).await;
    assert_eq!(answer["status"], "failure");
    assert_eq!(answer["error"], "BadInput: one class");

    let (status, body) = gw.json(get("/status/train-unknown000")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = gw.json(get("/status/NOT_A_NAME")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    let (status, body) = gw
        .json(post_json("/train/", &json!({"dataset": "iris"})))
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "dataset");
    assert!(
        body["message"].as_str().unwrap().contains("/datasets"),
        "{body}"
    );
    let (status, body) = gw
        .json(post_json(
            "/train/",
            &json!({"features": [[1.0], [2.0]], "labels": [0, 1], "test_size": 2}),
        ))
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "test_size");
    let (status, body) = gw
        .json(post_json(
            "/train/",
            &json!({"features": "nope", "labels": [0, 1]}),
        ))
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "features");
}

/// On a real socket: shutdown ends open SSE streams, so the server drains and returns.
#[tokio::test]
async fn shutdown_ends_open_event_streams() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = gateway();
    create(&gw, "churn").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kubetrain_gateway::serve(
        listener,
        gw.router.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("GET {RUN}/events HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains("event: run") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("the first event arrives")
            .unwrap();
        assert!(
            n > 0,
            "closed early: {}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buffer[..n]);
    }
    assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"));
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server drains within 10 s although an SSE stream was open");
    result.unwrap().unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
        .await
        .expect("the connection closes");
    rest.unwrap();
}

#[tokio::test]
async fn the_summary_is_served_once_the_run_has_a_model() {
    let trained = train_three_classes();
    let gw = gateway();
    let mut body = run_body("churn");
    let out = trained.model.uri.trim_end_matches("model.json").to_owned();
    body["spec"]["output"]["uri"] = json!(out);
    let (status, created) = gw
        .json(post_json("/v1/namespaces/ml/trainingruns", &body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, body) = gw.json(get(&format!("{RUN}/summary"))).await;
    assert_error(status, &body, StatusCode::CONFLICT);

    gw.runs
        .set_status("ml", "churn", succeeded_with(&trained.model));
    let (status, content_type, bytes) = gw.raw(get(&format!("{RUN}/summary"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");
    let summary: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(summary["model"]["sha256"], trained.model.sha256.as_str());
    let matrix = summary["metrics"]["confusionMatrix"].as_array().unwrap();
    assert_eq!(matrix.len(), 3);
    let history = summary["lossHistory"].as_array().unwrap();
    assert_eq!(
        history.last().unwrap()["iteration"],
        summary["fit"]["iterations"],
        "the history ends at the last iteration"
    );

    // A summary that is not what a trainer writes is refused, not passed on.
    let path = format!("{}summary.json", out.strip_prefix("file://").unwrap());
    std::fs::write(&path, "[1, 2]").unwrap();
    let (status, body) = gw.json(get(&format!("{RUN}/summary"))).await;
    assert_error(status, &body, StatusCode::BAD_GATEWAY);
    std::fs::remove_file(&path).unwrap();
    let (status, body) = gw.json(get(&format!("{RUN}/summary"))).await;
    assert_error(status, &body, StatusCode::BAD_GATEWAY);
}

/// The next SSE event of a stream that does not end: `(event, data)`.
async fn next_event(body: &mut Body) -> (String, serde_json::Value) {
    let mut text = String::new();
    loop {
        if let Some(end) = text.find("\n\n") {
            let block = &text[..end];
            if block.lines().all(|l| l.starts_with(':')) {
                text.drain(..end + 2);
                continue;
            }
            let field = |name: &str| -> String {
                block.lines().filter_map(|l| l.strip_prefix(name)).collect()
            };
            return (
                field("event: "),
                serde_json::from_str(&field("data: ")).unwrap(),
            );
        }
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("an event within 10 s")
            .expect("the stream goes on")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
}

#[tokio::test]
async fn the_namespace_watch_resyncs_first_then_follows_the_runs_it_selects() {
    let gw = gateway();
    let response = gw
        .send(get(
            "/v1/watch/namespaces/ml/trainingruns?labelSelector=team%3Dfraud",
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with("text/event-stream"));
    let mut body = response.into_body();
    let labelled = |name: &str, namespace: &str| {
        let mut run = run_body(name);
        run["metadata"]["labels"] = json!({"team": "fraud"});
        (format!("/v1/namespaces/{namespace}/trainingruns"), run)
    };
    for (path, run) in [
        labelled("churn", "ml"),
        (
            "/v1/namespaces/ml/trainingruns".to_owned(),
            run_body("other"),
        ),
        labelled("elsewhere", "prod"),
    ] {
        let (status, created) = gw.json(post_json(&path, &run)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
    }
    gw.runs.set_status("ml", "churn", in_phase(Phase::Running));
    let deleted = gw
        .send(Request::delete(RUN).body(Body::empty()).unwrap())
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);

    let mut seen = Vec::new();
    for _ in 0..5 {
        let (event, data) = next_event(&mut body).await;
        let name = data["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let phase = data["status"]["phase"].as_str().unwrap_or("").to_owned();
        seen.push(format!("{event} {name} {phase}").trim().to_owned());
    }
    assert_eq!(
        seen,
        [
            "resync",
            "run churn Pending",
            // Not selected: sent as gone, so a client holding it (labels changed) drops it.
            "deleted other Pending",
            "run churn Running",
            "deleted churn Running",
        ]
    );

    let (status, body) = gw
        .json(get(
            "/v1/watch/namespaces/ml/trainingruns?labelSelector=%3D%3D",
        ))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = gw.json(get("/v1/watch/namespaces/ML/trainingruns")).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
}
