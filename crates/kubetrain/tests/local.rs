//! `kubetrain local` as a user runs it: the built binary serving the REST API, training in real
//! `kubetrain train` processes on the datasets in `tests/data`. Some tests put a small shell
//! wrapper in front of the trainer: it logs when each process starts and ends (to measure
//! concurrency) and, for datasets named `slow*`, waits before exec'ing the real trainer so a
//! run stays Running long enough to be cancelled, time out or be interrupted; for datasets
//! named `flaky*` it fails as the trainer does when storage is unreachable (exit 75).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::data;
use common::server::{KUBETRAIN, Server};
use serde_json::{Value, json};
use sha2::Digest;

fn run(name: &str, dataset: &Path, out: &Path, extra: Value) -> Value {
    let mut spec = json!({
        "algorithm": {"logisticRegression": {"maxIterations": 200}},
        "dataset": {"uri": dataset.to_str().unwrap(), "labelColumn": "label"},
        "output": {"uri": out.join(name).to_str().unwrap()},
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    json!({
        "apiVersion": "kubetrain.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// The trainer wrapper described at the top of this file.
fn wrapper(dir: &Path) -> PathBuf {
    let path = dir.join("trainer.sh");
    std::fs::write(
        &path,
        "#!/bin/sh\n\
         echo \"start $$ $(date +%s%N)\" >> \"${TEST_TRAINER_LOG:-/dev/null}\"\n\
         case \"$*\" in *slow*) sleep 300 ;; esac\n\
         case \"$*\" in *flaky*) echo 'error: storage unreachable (simulated)' >&2; exit 75 ;; esac\n\
         \"$TEST_KUBETRAIN_BIN\" \"$@\"\n\
         rc=$?\n\
         echo \"end $$ $(date +%s%N)\" >> \"${TEST_TRAINER_LOG:-/dev/null}\"\n\
         exit $rc\n",
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&path, permissions).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_up_to_the_backoff_limit() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = wrapper(dir.path());
    let flaky = dir.path().join("flaky.csv");
    std::fs::copy(data("breast_cancer_train.csv"), &flaky).unwrap();
    let server = Server::start(&dir.path().join("state"), 1, Some(&trainer), None);
    server.wait_ready().await;
    server
        .create(run(
            "flaky",
            &flaky,
            &dir.path().join("m"),
            json!({"backoffLimit": 1}),
        ))
        .await;
    let failed = server.wait_phase("flaky", "Failed", 60).await;
    let s = &failed["status"];
    assert_eq!(s["attempts"], 2, "one try and one retry: {failed:#}");
    assert_eq!(s["trainerError"]["reason"], "Transient");
    assert_eq!(s["trainerError"]["exitCode"], 75);
    assert_eq!(
        condition(&failed, "Failed")["reason"],
        "BackoffLimitExceeded"
    );
    assert_eq!(
        s["message"],
        "BackoffLimitExceeded: all attempts failed; the last one: storage unreachable (simulated)"
    );
}

/// A copy of the breast cancer training set named so the wrapper holds it.
fn slow_data(dir: &Path) -> PathBuf {
    let path = dir.join("slow.csv");
    std::fs::copy(data("breast_cancer_train.csv"), &path).unwrap();
    path
}

fn condition<'a>(run: &'a Value, type_: &str) -> &'a Value {
    run["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

/// The process id the pool put in the Running condition's message.
fn trainer_pid(run: &Value) -> i32 {
    let message = condition(run, "Running")["message"].as_str().unwrap();
    message
        .rsplit("process ")
        .next()
        .unwrap()
        .trim_end_matches(')')
        .parse()
        .unwrap()
}

fn alive(pid: i32) -> bool {
    // A zombie is dead for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

fn kill_group(pid: i32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_client_flow_trains_and_the_status_tells_all() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("state"), 2, None, None);
    server.wait_ready().await;

    // The seed client: POST /train/ with inline rows, poll /status/{id} until complete.
    let csv = std::fs::read_to_string(data("breast_cancer_train.csv")).unwrap();
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for line in csv.lines().skip(1) {
        let mut values: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        labels.push(values.pop().unwrap() as i64);
        features.push(values);
    }
    let r = server
        .http
        .post(format!("{}/train/", server.url))
        .json(&json!({"features": features, "labels": labels, "max_iter": 200}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let task: Value = r.json().await.unwrap();
    let id = task["task_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status: Value = server
            .http
            .get(format!("{}/status/{id}", server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["status"] == "complete" || status["status"] == "failure" {
            break status;
        }
        assert!(Instant::now() < deadline, "seed task not done: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["status"], "complete", "{status:#}");
    assert!(
        status["result"]["accuracy"].as_f64().unwrap() > 0.9,
        "{status:#}"
    );

    // The run behind it has the controller's status shape.
    let (_, seeded) = server.get(&id).await;
    let s = &seeded["status"];
    assert_eq!(s["phase"], "Succeeded");
    assert_eq!(s["message"], "Succeeded: the model was trained");
    assert_eq!(s["attempts"], 1);
    assert_eq!(s["algorithm"], "logisticRegression");
    assert_eq!(s["progress"]["percent"], 100.0);
    assert!(s["startTime"].is_string() && s["completionTime"].is_string());
    assert_eq!(condition(&seeded, "Accepted")["status"], "True");
    assert_eq!(condition(&seeded, "Complete")["reason"], "Succeeded");
    assert_eq!(condition(&seeded, "Running")["reason"], "Finished");
    assert_eq!(condition(&seeded, "ModelReady")["reason"], "ModelStored");
    let model_uri = s["model"]["uri"].as_str().unwrap();
    let model_path = model_uri.trim_start_matches("file://");
    let bytes = std::fs::metadata(model_path).unwrap().len();
    assert_eq!(s["model"]["bytes"], bytes, "{model_uri}");
    assert_eq!(s["dataset"]["rows"], features.len());
    assert_eq!(s["dataset"]["features"], 30);

    // Invalid runs are refused with the field named, as the API server would.
    let bad = server
        .http
        .post(format!("{}/v1/namespaces/default/trainingruns", server.url))
        .json(&run_with_backoff("Bad_Name", 101))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let body = bad.text().await.unwrap();
    assert!(body.contains("metadata.name"), "{body}");
    assert!(body.contains("spec.backoffLimit"), "{body}");

    // TTL: the run is deleted one second after it finished; the model stays.
    let out = dir.path().join("models");
    server
        .create(run(
            "short-lived",
            &data("breast_cancer_train.csv"),
            &out,
            json!({"ttlSecondsAfterFinished": 1}),
        ))
        .await;
    let finished = server.wait_phase("short-lived", "Succeeded", 60).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.get("short-lived").await.0 != 404 {
        assert!(Instant::now() < deadline, "TTL did not delete the run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let model = finished["status"]["model"]["uri"].as_str().unwrap();
    assert!(Path::new(model.trim_start_matches("file://")).exists());
}

fn run_with_backoff(name: &str, backoff: i64) -> Value {
    run(
        name,
        &data("breast_cancer_train.csv"),
        Path::new("/tmp/unused"),
        json!({"backoffLimit": backoff}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_data_fails_at_once_without_retry() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "f1,f2,label\n1,2,0\nabc,3,1\n4,5,0\n").unwrap();
    let server = Server::start(&dir.path().join("state"), 1, None, None);
    server.wait_ready().await;
    server
        .create(run(
            "bad",
            &bad,
            &dir.path().join("m"),
            json!({"backoffLimit": 3}),
        ))
        .await;
    let run = server.wait_phase("bad", "Failed", 60).await;
    let s = &run["status"];
    assert_eq!(s["attempts"], 1, "{run:#}");
    assert_eq!(s["trainerError"]["exitCode"], 65);
    assert_eq!(s["trainerError"]["reason"], "BadInput");
    let message = s["message"].as_str().unwrap();
    assert!(message.starts_with("BadInput: "), "{message}");
    assert!(message.contains("'abc' is not a number"), "{message}");
    assert_eq!(condition(&run, "Failed")["reason"], "BadInput");
    assert!(!dir.path().join("m/bad/model.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_trainer_and_deadlines_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = wrapper(dir.path());
    let slow = slow_data(dir.path());
    let out = dir.path().join("m");
    let server = Server::start(&dir.path().join("state"), 2, Some(&trainer), None);
    server.wait_ready().await;

    server
        .create(run("cancel-me", &slow, &out, json!({})))
        .await;
    server
        .create(run(
            "too-slow",
            &slow,
            &out,
            json!({"activeDeadlineSeconds": 2, "backoffLimit": 0}),
        ))
        .await;
    let running = server.wait_phase("cancel-me", "Running", 30).await;
    let pid = trainer_pid(&running);
    let slow_pid = trainer_pid(&server.wait_phase("too-slow", "Running", 30).await);
    assert!(alive(pid));
    let r = server
        .http
        .post(format!(
            "{}/v1/namespaces/default/trainingruns/cancel-me/cancel",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cancelled = server.wait_phase("cancel-me", "Cancelled", 30).await;
    assert_eq!(
        cancelled["status"]["message"],
        "Cancelled: spec.cancel was set"
    );
    assert_eq!(cancelled["spec"]["cancel"], true);
    assert_eq!(condition(&cancelled, "Failed")["reason"], "Cancelled");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "trainer {pid} still alive after cancel"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let timed_out = server.wait_phase("too-slow", "Failed", 30).await;
    assert_eq!(
        condition(&timed_out, "Failed")["reason"],
        "DeadlineExceeded"
    );
    let message = timed_out["status"]["message"].as_str().unwrap();
    assert!(message.starts_with("DeadlineExceeded: "), "{message}");
    assert!(!alive(slow_pid), "trainer {slow_pid} survived its deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_trainers_than_workers() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = wrapper(dir.path());
    let log = dir.path().join("trainers.log");
    let out = dir.path().join("m");
    let server = Server::start(&dir.path().join("state"), 2, Some(&trainer), Some(&log));
    server.wait_ready().await;
    let names: Vec<String> = (0..7).map(|i| format!("run-{i}")).collect();
    for name in &names {
        server
            .create(run(name, &data("breast_cancer_train.csv"), &out, json!({})))
            .await;
    }
    let mut digests = Vec::new();
    for name in &names {
        let run = server.wait_phase(name, "Succeeded", 120).await;
        digests.push(
            run["status"]["dataset"]["sha256"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Every run trained on the same file: one parsed copy in the dataset cache, and every
    // run reports the digest of the file's bytes, also those that loaded the cached copy.
    let bytes = std::fs::read(data("breast_cancer_train.csv")).unwrap();
    let digest = hex::encode(sha2::Sha256::digest(&bytes));
    assert!(
        digests.iter().all(|d| *d == digest),
        "{digests:?} vs {digest}"
    );
    let cached: Vec<_> = std::fs::read_dir(dir.path().join("state/cache/datasets"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".ktds"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    // Replay the wrapper's log: at no instant were more than 2 trainers alive.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut events: Vec<(u128, i32)> = text
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let delta = if parts[0] == "start" { 1 } else { -1 };
            (parts[2].parse().unwrap(), delta)
        })
        .collect();
    assert_eq!(events.len(), 2 * names.len(), "{text}");
    // Ends before starts at the same instant.
    events.sort();
    let (mut alive_now, mut most) = (0, 0);
    for (_, delta) in events {
        alive_now += delta;
        most = most.max(alive_now);
    }
    assert_eq!(
        most, 2,
        "at most 2 trainers at once, and the pool used both: {text}"
    );

    // FIFO: the runs started in the order they were created.
    let mut started: Vec<(String, String)> = Vec::new();
    for name in &names {
        let (_, run) = server.get(name).await;
        started.push((
            run["status"]["startTime"].as_str().unwrap().to_owned(),
            name.clone(),
        ));
    }
    let mut sorted = started.clone();
    sorted.sort();
    assert_eq!(sorted, started, "start order follows creation order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_finished_runs_interrupts_running_ones_and_starts_queued_ones() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = wrapper(dir.path());
    let slow = slow_data(dir.path());
    let state = dir.path().join("state");
    let out = dir.path().join("m");
    let good = data("breast_cancer_train.csv");

    let mut first = Server::start(&state, 1, Some(&trainer), None);
    first.wait_ready().await;
    first.create(run("done", &good, &out, json!({}))).await;
    let done = first.wait_phase("done", "Succeeded", 60).await;
    first.create(run("busy", &slow, &out, json!({}))).await;
    let busy = first.wait_phase("busy", "Running", 30).await;
    let busy_pid = trainer_pid(&busy);
    first.create(run("waiting", &good, &out, json!({}))).await;
    let waiting = first.wait_phase("waiting", "Queued", 10).await;
    assert_eq!(
        waiting["status"]["message"],
        "Queued: waiting for a free worker"
    );
    // A crash: nothing gets to clean up. The orphaned trainer is ours to stop.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    kill_group(busy_pid);

    let mut second = Server::start(&state, 1, Some(&trainer), None);
    second.wait_ready().await;
    let (_, kept) = second.get("done").await;
    assert_eq!(
        kept["status"], done["status"],
        "a finished run is untouched"
    );
    let (_, interrupted) = second.get("busy").await;
    assert_eq!(interrupted["status"]["phase"], "Failed", "{interrupted:#}");
    assert_eq!(condition(&interrupted, "Failed")["reason"], "Interrupted");
    second.wait_phase("waiting", "Succeeded", 60).await;

    // A graceful stop interrupts the running trainer itself and keeps queued runs queued.
    second
        .create(run("busy-again", &slow, &out, json!({})))
        .await;
    let busy_again = second.wait_phase("busy-again", "Running", 30).await;
    let pid = trainer_pid(&busy_again);
    second
        .create(run("queued-over-stop", &good, &out, json!({})))
        .await;
    second.wait_phase("queued-over-stop", "Queued", 10).await;
    second.sigterm();
    assert!(!alive(pid), "SIGTERM left trainer {pid} running");

    let third = Server::start(&state, 1, Some(&trainer), None);
    third.wait_ready().await;
    let (_, stopped) = third.get("busy-again").await;
    assert_eq!(
        condition(&stopped, "Failed")["reason"],
        "Interrupted",
        "{stopped:#}"
    );
    third.wait_phase("queued-over-stop", "Succeeded", 60).await;
}

/// The backend itself, without HTTP: suspend holds a run while later runs train, resuming
/// starts it, and `watch` delivers every phase up to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_holds_a_run_until_resumed_and_watch_sees_every_phase() {
    use futures::StreamExt;
    use kubetrain_gateway::Runs;
    use kubetrain_local::{Config, LocalRuns};

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("state")).unwrap();
    config.trainer = PathBuf::from(KUBETRAIN);
    config.workers = 1;
    let runs = LocalRuns::open(config).await.unwrap();
    let out = dir.path().join("m");
    let good = data("breast_cancer_train.csv");
    let parse = |v: Value| serde_json::from_value::<kubetrain_api::TrainingRun>(v).unwrap();

    let held = runs
        .create(
            "default",
            parse(run("held", &good, &out, json!({"suspend": true}))),
        )
        .await
        .unwrap();
    let status = held.status.unwrap();
    assert_eq!(status.phase, Some(kubetrain_api::Phase::Queued));
    assert_eq!(
        status.message.as_deref(),
        Some("Queued: the run is suspended")
    );
    let mut events = runs.watch("default", "held").await.unwrap();

    runs.create("default", parse(run("later", &good, &out, json!({}))))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let later = runs.get("default", "later").await.unwrap();
        if later.status.and_then(|s| s.phase) == Some(kubetrain_api::Phase::Succeeded) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the unsuspended run did not train"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let still = runs.get("default", "held").await.unwrap();
    assert_eq!(
        still.status.unwrap().phase,
        Some(kubetrain_api::Phase::Queued),
        "a suspended run must not start"
    );

    runs.set_suspend("default", "held", false).await.unwrap();
    let mut phases = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while let Ok(Some(run)) = tokio::time::timeout_at(deadline, events.next()).await {
        let phase = run.status.and_then(|s| s.phase).unwrap();
        if phases.last() != Some(&phase) {
            phases.push(phase);
        }
        if phase.is_terminal() {
            break;
        }
    }
    use kubetrain_api::Phase::{Queued, Running, Succeeded};
    assert_eq!(phases, [Queued, Running, Succeeded]);
    runs.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_regression_trains_reports_r2_and_predicts_values() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("state"), 1, None, None);
    server.wait_ready().await;
    let out = dir.path().join("m");
    let mut ridge = run(
        "ridge",
        &data("diabetes_train.csv"),
        &out,
        json!({"task": "regression"}),
    );
    ridge["spec"]["algorithm"] = json!({"linearRegression": {"l2Penalty": 1.0}});
    ridge["spec"]["dataset"]["labelColumn"] = json!("target");
    ridge["spec"]["dataset"]["validationUri"] = json!(data("diabetes_test.csv"));
    server.create(ridge.clone()).await;
    let done = server.wait_phase("ridge", "Succeeded", 60).await;
    let metrics = &done["status"]["metrics"];
    // scikit-learn's Ridge(alpha=1.0) on the same split: R² 0.3311 (tests/data/README.md).
    assert_eq!(metrics["scoreName"], "r2", "{done:#}");
    assert_eq!(metrics["score"], metrics["r2"]);
    assert!(
        (metrics["r2"].as_f64().unwrap() - 0.3311).abs() < 0.001,
        "{metrics}"
    );
    assert!(metrics["rmse"].as_f64().is_some() && metrics["mae"].as_f64().is_some());
    assert!(metrics.get("accuracy").is_none(), "{metrics}");
    assert_eq!(done["status"]["algorithm"], "linearRegression");
    assert_eq!(done["status"]["dataset"]["classes"], 0);

    let r = server
        .http
        .post(format!(
            "{}/v1/namespaces/default/trainingruns/ridge/predict",
            server.url
        ))
        .json(&json!({"rows": [vec![0.0; 10], vec![0.05; 10]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    let values = answer["values"].as_array().unwrap();
    assert_eq!(values.len(), 2, "{answer}");
    assert!(answer.get("classes").is_none(), "{answer}");
    assert_ne!(values[0], values[1]);

    // The wrong task for the algorithm is refused as the API server refuses it.
    let mut wrong = ridge;
    wrong["metadata"]["name"] = json!("ridge-as-classifier");
    wrong["spec"]["task"] = json!("classification");
    let refused = server
        .http
        .post(format!("{}/v1/namespaces/default/trainingruns", server.url))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let body = refused.text().await.unwrap();
    assert!(body.contains("spec.task"), "{body}");
    assert!(body.contains("set task to regression"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_models_train_report_progress_and_predict() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("state"), 2, None, None);
    server.wait_ready().await;
    let out = dir.path().join("m");
    // Boosted trees as a regressor, a forest as a classifier (the chart's samples train the
    // other two combinations on the real control plane).
    let mut boosted = run(
        "boosted",
        &data("diabetes_train.csv"),
        &out,
        json!({"task": "regression"}),
    );
    boosted["spec"]["algorithm"] =
        json!({"gradientBoostedTrees": {"maxIterations": 60, "earlyStoppingRounds": 10}});
    boosted["spec"]["dataset"]["labelColumn"] = json!("target");
    let mut forest = run("forest", &data("breast_cancer_train.csv"), &out, json!({}));
    forest["spec"]["algorithm"] = json!({"randomForest": {"numTrees": 40, "seed": 2}});
    server.create(boosted).await;
    server.create(forest).await;

    let done = server.wait_phase("boosted", "Succeeded", 120).await;
    assert_eq!(
        done["status"]["algorithm"], "gradientBoostedTrees",
        "{done:#}"
    );
    assert_eq!(done["status"]["metrics"]["scoreName"], "r2");
    assert_eq!(done["status"]["progress"]["total"], 60);
    assert!(
        done["status"]["topFeatures"].as_array().unwrap().len() == 5,
        "{done:#}"
    );
    let done = server.wait_phase("forest", "Succeeded", 120).await;
    let metrics = &done["status"]["metrics"];
    assert!(metrics["accuracy"].as_f64().unwrap() > 0.9, "{done:#}");
    assert_eq!(done["status"]["progress"]["iteration"], 40);

    let predict = |name: &'static str, width: usize| {
        let http = server.http.clone();
        let url = format!(
            "{}/v1/namespaces/default/trainingruns/{name}/predict",
            server.url
        );
        async move {
            let r = http
                .post(url)
                .json(&json!({"rows": [vec![0.0; width], vec![0.05; width]]}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let values = predict("boosted", 10).await;
    assert_eq!(values["values"].as_array().unwrap().len(), 2, "{values}");
    let classes = predict("forest", 30).await;
    assert_eq!(classes["classes"].as_array().unwrap().len(), 2, "{classes}");
    assert_eq!(
        classes["probabilities"][0].as_array().unwrap().len(),
        2,
        "{classes}"
    );

    // Parameters out of bounds are refused with their field path, as by the API server.
    let mut bad = run(
        "bad-rate",
        &data("breast_cancer_train.csv"),
        &out,
        json!({}),
    );
    bad["spec"]["algorithm"] = json!({"gradientBoostedTrees": {"learningRate": 0}});
    let refused = server
        .http
        .post(format!("{}/v1/namespaces/default/trainingruns", server.url))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let body = refused.text().await.unwrap();
    assert!(
        body.contains("spec.algorithm.gradientBoostedTrees.learningRate"),
        "{body}"
    );
}

/// The virtualenv with the scikit-learn example's requirements (tests/run.sh makes it and sets
/// `KUBETRAIN_SKLEARN_VENV`).
fn sklearn_bin() -> PathBuf {
    let venv = std::env::var_os("KUBETRAIN_SKLEARN_VENV").expect(
        "KUBETRAIN_SKLEARN_VENV must name a virtualenv with \
         deploy/examples/custom-sklearn/requirements.txt installed (tests/run.sh makes one)",
    );
    PathBuf::from(venv).join("bin")
}

/// A custom run of `command` (found on the server's PATH) on `dataset`.
fn custom_run(name: &str, dataset: &Path, label: &str, out: &Path, custom: Value) -> Value {
    let mut run = run(name, dataset, out, json!({"custom": custom}));
    let spec = run["spec"].as_object_mut().unwrap();
    spec.remove("algorithm");
    spec["dataset"]["labelColumn"] = json!(label);
    run
}

/// The scikit-learn example as `kubetrain local` runs it: `python` from PATH, the script by
/// its absolute path in the repository.
fn sklearn_example(params: Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/examples/custom-sklearn/train.py")
        .canonicalize()
        .unwrap();
    json!({
        "image": "ghcr.io/kubetrain/example-sklearn:0.1.0",
        "command": ["python", script.to_str().unwrap()],
        "params": params,
    })
}

/// A program that says why on stderr and exits with `code`.
fn failing_program(code: i32, why: &str) -> Value {
    json!({
        "image": "python:3.12-slim",
        "command": ["python", "-c", format!(
            "import sys; print('reading data'); print({why:?}, file=sys.stderr); sys.exit({code})"
        )],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_code_reports_progress_and_metrics_and_stores_its_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let bin = sklearn_bin();
    let server = Server::start_with_path(&dir.path().join("state"), 2, None, None, Some(&bin));
    server.wait_ready().await;
    server
        .create(custom_run(
            "byo",
            &data("adult_numeric_train.csv"),
            "income",
            &out,
            sklearn_example(json!({"n_estimators": "150"})),
        ))
        .await;
    // Progress arrives while it trains, from the program's own JSON lines.
    let running = server
        .wait_for("byo", 120, |r| {
            r["status"]["phase"] == "Running"
                && r["status"]["progress"]["iteration"].as_u64() > Some(0)
        })
        .await;
    assert_eq!(running["status"]["algorithm"], "custom");
    assert_eq!(running["status"]["progress"]["total"], 150);
    assert!(running["status"]["progress"]["loss"].as_f64().unwrap() > 0.0);
    let done = server.wait_phase("byo", "Succeeded", 300).await;
    let status = &done["status"];
    let accuracy = status["metrics"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.8, "{status:#}");
    assert_eq!(status["metrics"]["score"].as_f64(), Some(accuracy));
    assert!(status["metrics"]["reported"]["macro_f1"].as_f64().unwrap() > 0.5);
    assert_eq!(status["progress"]["percent"], 100.0);
    // The model file is in storage with the digest the status gives; the summary lists it.
    let model = &status["model"];
    assert!(
        model["uri"]
            .as_str()
            .unwrap()
            .ends_with("/byo/model.joblib"),
        "{model}"
    );
    let bytes = std::fs::read(model["uri"].as_str().unwrap()).unwrap();
    assert_eq!(model["bytes"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(model["sha256"], hex(&sha2::Sha256::digest(&bytes)));
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("byo/summary.json")).unwrap()).unwrap();
    let files: Vec<&str> = summary["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["features.json", "model.joblib"]);
    assert_eq!(summary["files"][1]["sha256"], model["sha256"]);
    assert_eq!(condition(&done, "ModelReady")["status"], "True");
    // kubetrain does not serve the program's own model format, and says so.
    let r = server
        .http
        .post(format!(
            "{}/v1/namespaces/default/trainingruns/byo/predict",
            server.url
        ))
        .json(&json!({"rows": [[30, 100000, 10, 0, 0, 40]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("spec.custom") && message.contains("model.json"),
        "{message}"
    );
    // The model itself downloads as the program wrote it.
    let r = server
        .http
        .get(format!(
            "{}/v1/namespaces/default/trainingruns/byo/model",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    // Each attempt's working directory (downloaded data, model directory) is gone.
    let work = dir.path().join("state/work");
    let left: Vec<_> = std::fs::read_dir(&work)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_code_exit_codes_decide_retries_and_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let bin = sklearn_bin();
    let server = Server::start_with_path(&dir.path().join("state"), 2, None, None, Some(&bin));
    server.wait_ready().await;
    let data = data("breast_cancer_train.csv");
    let mut bad = custom_run(
        "bad-input",
        &data,
        "label",
        &out,
        failing_program(65, "column 'age' is missing"),
    );
    bad["spec"]["backoffLimit"] = json!(3);
    server.create(bad).await;
    let mut crash = custom_run("crash", &data, "label", &out, failing_program(1, "boom"));
    crash["spec"]["backoffLimit"] = json!(1);
    server.create(crash).await;
    // Usage errors of the program (exit 2) are its own failure, retried like any other.
    let mut usage = custom_run(
        "usage",
        &data,
        "label",
        &out,
        failing_program(2, "bad flag"),
    );
    usage["spec"]["backoffLimit"] = json!(1);
    server.create(usage).await;

    let failed = server.wait_phase("bad-input", "Failed", 60).await;
    assert_eq!(failed["status"]["attempts"], 1, "{failed:#}");
    assert_eq!(condition(&failed, "Failed")["reason"], "BadInput");
    let message = failed["status"]["message"].as_str().unwrap();
    assert!(message.contains("column 'age' is missing"), "{message}");
    for name in ["crash", "usage"] {
        let failed = server.wait_phase(name, "Failed", 60).await;
        assert_eq!(failed["status"]["attempts"], 2, "{failed:#}");
        assert_eq!(
            condition(&failed, "Failed")["reason"],
            "BackoffLimitExceeded"
        );
    }
    let crash = server.get("crash").await.1;
    let message = crash["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("boom (the program exited with code 1)"),
        "{message}"
    );
    // A program that exits 0 without writing its model fails as bad input: nothing to store.
    let silent = custom_run(
        "no-model",
        &data,
        "label",
        &out,
        json!({"image": "x", "command": ["python", "-c", "print('done')"]}),
    );
    server.create(silent).await;
    let failed = server.wait_phase("no-model", "Failed", 60).await;
    let message = failed["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("wrote no files into KUBETRAIN_MODEL_DIR"),
        "{message}"
    );
    assert!(!out.join("no-model").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_custom_code_sends_it_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let marker = dir.path().join("sigterm-received");
    let bin = sklearn_bin();
    let server = Server::start_with_path(&dir.path().join("state"), 2, None, None, Some(&bin));
    server.wait_ready().await;
    server
        .create(custom_run(
            "long",
            &data("adult_numeric_train.csv"),
            "income",
            &out,
            sklearn_example(json!({
                "n_estimators": "5000",
                "sigterm_marker": marker.to_str().unwrap(),
            })),
        ))
        .await;
    let running = server
        .wait_for("long", 120, |r| {
            r["status"]["progress"]["iteration"].as_u64() > Some(0)
        })
        .await;
    let pid = trainer_pid(&running);
    let r = server
        .http
        .post(format!(
            "{}/v1/namespaces/default/trainingruns/long/cancel",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.wait_phase("long", "Cancelled", 60).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "wrapper {pid} alive after cancel"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(marker.exists(), "the program never saw SIGTERM");
    // Nothing of the cancelled attempt reached the output.
    assert!(!out.join("long").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_runs_are_refused_with_the_field_path() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("state"), 1, None, None);
    server.wait_ready().await;
    let out = dir.path().join("m");
    let data = data("breast_cancer_train.csv");
    let mut both = custom_run("both", &data, "label", &out, failing_program(0, ""));
    both["spec"]["algorithm"] = json!({"logisticRegression": {}});
    let mut reserved = custom_run("reserved", &data, "label", &out, failing_program(0, ""));
    reserved["spec"]["custom"]["env"] = json!([{"name": "KUBETRAIN_DATA", "value": "x"}]);
    let mut secret = custom_run("secret", &data, "label", &out, failing_program(0, ""));
    secret["spec"]["custom"]["env"] = json!([
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
    ]);
    let mut neither = custom_run("neither", &data, "label", &out, failing_program(0, ""));
    neither["spec"].as_object_mut().unwrap().remove("custom");
    for (run, field, says) in [
        (both, "spec", "exactly one of algorithm"),
        (reserved, "spec.custom.env", "KUBETRAIN_"),
        (
            secret,
            "spec.custom.env[0].valueFrom",
            "literal values only",
        ),
        (neither, "spec", "exactly one of algorithm"),
    ] {
        let (status, body) = server.post(&run).await;
        assert_eq!(status, 422, "{body}");
        let causes = body["causes"].as_array().unwrap();
        assert!(
            causes
                .iter()
                .any(|c| c["field"] == field && c["message"].as_str().unwrap().contains(says)),
            "{field}: {body:#}"
        );
    }
}
