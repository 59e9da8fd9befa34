//! The controller against the real control plane: TrainingRun -> Job -> process node ->
//! `kubetrain train` -> model in the real S3 -> status, as a user sees it.
//!
//! One controller process serves every scenario (controllers are cluster-wide), so the
//! scenarios run inside one test, concurrently, each in its own namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kubetrain_api::spec::{ALGORITHM_RULE, LINEAR_NEEDS_REGRESSION, LOGISTIC_NEEDS_CLASSIFICATION};
use kubetrain_api::{Phase, TrainingRun};
use kubetrain_e2e::{TestEnv, TestNamespace, wait_for};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::json;
use sha2::{Digest, Sha256};

const TRAINING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The controller as a child process, stopped when the test ends (also on failure).
struct ControllerProcess(Child);

impl ControllerProcess {
    /// SIGKILL, as a crash or an OOM kill would.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn kubetrain_bin() -> PathBuf {
    std::env::var_os("KUBETRAIN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/kubetrain")
        })
}

fn start_controller(env: &TestEnv) -> Result<ControllerProcess> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(env.state_dir.join("controller-e2e.log"))?;
    let child = Command::new(kubetrain_bin())
        .args([
            "controller",
            "--trainer-image",
            "ghcr.io/kubetrain/kubetrain:e2e",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "info,kubetrain_controller=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting `kubetrain controller` (build it with `cargo build -p kubetrain`)")?;
    Ok(ControllerProcess(child))
}

fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run_manifest(name: &str, bucket: &str, prefix: &str, extra: serde_json::Value) -> TrainingRun {
    let spec = json!({
        "algorithm": {"logisticRegression": {"maxIterations": 200, "l2Penalty": 1.0}},
        "dataset": {"uri": format!("s3://{bucket}/{prefix}/train.csv"), "labelColumn": "label", "validationFraction": 0.2, "seed": 7},
        "output": {"uri": format!("s3://{bucket}/{prefix}/model/")},
        "storage": {"secretRef": {"name": "s3"}},
        "backoffLimit": 2,
    });
    // JSON is YAML: the fixture merges both mappings key by key.
    TrainingRun::test(name)
        .for_create()
        .with_spec(&spec.to_string())
        .with_spec(&extra.to_string())
}

async fn wait_phase(runs: &Api<TrainingRun>, name: &str, phase: Phase) -> Result<TrainingRun> {
    wait_for(
        &format!("run {name} to be {phase:?}"),
        TRAINING_TIMEOUT,
        || async {
            let run = runs.get(name).await?;
            let now = run.status.as_ref().and_then(|s| s.phase);
            ensure!(
                now == Some(phase) || !now.is_some_and(Phase::is_terminal),
                "run {name} ended {now:?} instead of {phase:?}: {:?}",
                run.status.as_ref().and_then(|s| s.message.clone())
            );
            Ok((now == Some(phase)).then_some(run))
        },
    )
    .await
}

async fn trains_a_model_into_s3(env: &TestEnv, store: &dyn ObjectStore) -> Result<()> {
    let ns = env.namespace("ctl-happy").await?;
    upload_training_data(store, &ns, data("breast_cancer_train.csv")).await?;
    let prefix = ns.name.clone();
    let runs = ns.api::<TrainingRun>();
    runs.create(
        &PostParams::default(),
        &run_manifest("churn", &env.bucket, &prefix, json!({})),
    )
    .await?;
    let run = wait_phase(&runs, "churn", Phase::Succeeded).await?;
    let status = run.status.unwrap();
    let accuracy = status.metrics.as_ref().and_then(|m| m.accuracy).unwrap();
    ensure!(accuracy > 0.93, "accuracy {accuracy}");
    let evaluated_on = status.metrics.as_ref().and_then(|m| m.evaluated_on.clone());
    ensure!(
        evaluated_on.as_deref() == Some("validation"),
        "{evaluated_on:?}"
    );
    let model = status.model.context("status.model")?;
    ensure!(
        model.uri == format!("s3://{}/{prefix}/model/model.json", env.bucket),
        "{}",
        model.uri
    );
    let bytes = store
        .get(&ObjectPath::from(format!("{prefix}/model/model.json")))
        .await?
        .bytes()
        .await?;
    ensure!(
        hex(&Sha256::digest(&bytes)) == model.sha256,
        "sha256 in status differs from the object's"
    );
    ensure!(bytes.len() as u64 == model.bytes);
    let progress = status.progress.context("status.progress")?;
    ensure!(
        progress.percent == 100.0 && progress.iteration > 0,
        "{progress:?}"
    );
    ensure!(status.dataset.map(|d| d.rows) == Some(455));
    for wanted in ["Accepted", "Complete", "ModelReady"] {
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == wanted)
            .context(wanted)?;
        ensure!(c.status == "True", "{wanted} is {}", c.status);
    }
    let jobs = ns
        .api::<Job>()
        .list(&ListParams::default().labels("kubetrain.dev/run=churn"))
        .await?;
    ensure!(
        jobs.items.len() == 1,
        "exactly one Job per run, found {}",
        jobs.items.len()
    );
    // The run's life as `kubectl describe` tells it.
    let events = ns.api::<k8s_openapi::api::events::v1::Event>();
    let wanted = ["CreatedJob", "Running", "Succeeded"];
    wait_for(
        "Events CreatedJob, Running and Succeeded on the run",
        TRAINING_TIMEOUT,
        || async {
            let reasons: Vec<String> = events
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("churn"))
                .filter_map(|e| e.reason)
                .collect();
            Ok(wanted
                .iter()
                .all(|w| reasons.iter().any(|r| r == w))
                .then_some(()))
        },
    )
    .await?;
    ns.delete().await
}

async fn bad_data_fails_at_once(env: &TestEnv, store: &dyn ObjectStore) -> Result<()> {
    let ns = env.namespace("ctl-bad").await?;
    let bad_csv = b"f0,f1,label\n1,2,0\n3,abc,1\n5,6,0\n7,8,1\n".to_vec();
    upload_training_data(store, &ns, bad_csv).await?;
    let prefix = ns.name.clone();
    let runs = ns.api::<TrainingRun>();
    runs.create(
        &PostParams::default(),
        &run_manifest("bad", &env.bucket, &prefix, json!({})),
    )
    .await?;
    let run = wait_phase(&runs, "bad", Phase::Failed).await?;
    let status = run.status.unwrap();
    let message = status.message.unwrap_or_default();
    ensure!(
        message.contains("abc") && message.contains("f1"),
        "message should name the value and column: {message}"
    );
    let failed = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Failed")
        .unwrap();
    ensure!(failed.reason == "BadInput", "reason {}", failed.reason);
    let job = ns.api::<Job>().get(&status.job_name.unwrap()).await?;
    let failures = job.status.and_then(|s| s.failed).unwrap_or(0);
    ensure!(
        failures == 1,
        "bad input must not be retried; {failures} attempts failed"
    );
    ns.delete().await
}

async fn cancel_stops_the_run(env: &TestEnv) -> Result<()> {
    let ns = env.namespace("ctl-cancel").await?;
    let runs = ns.api::<TrainingRun>();
    // Suspended, so it stays put until cancelled.
    runs.create(
        &PostParams::default(),
        &run_manifest("stop", &env.bucket, &ns.name, json!({"suspend": true})),
    )
    .await?;
    wait_phase(&runs, "stop", Phase::Queued).await?;
    runs.patch(
        "stop",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"cancel": true}})),
    )
    .await?;
    wait_phase(&runs, "stop", Phase::Cancelled).await?;
    let jobs = ns.api::<Job>();
    wait_jobs(&jobs, 0, "the cancelled run's Job to be gone").await?;
    ensure!(
        runs.get_opt("stop").await?.is_some(),
        "the cancelled run's record is kept"
    );
    ns.delete().await
}

async fn gpu_run_is_unschedulable_then_fails_at_its_start_deadline(env: &TestEnv) -> Result<()> {
    let ns = env.namespace("ctl-gpu").await?;
    let runs = ns.api::<TrainingRun>();
    let extra = json!({"resources": {"limits": {"nvidia.com/gpu": 1}}, "startDeadlineSeconds": 15});
    runs.create(
        &PostParams::default(),
        &run_manifest("gpu", &env.bucket, &ns.name, extra),
    )
    .await?;
    wait_for(
        "the GPU run to say it is unschedulable",
        TRAINING_TIMEOUT,
        || async {
            let run = runs.get("gpu").await?;
            let message = run.status.and_then(|s| s.message).unwrap_or_default();
            Ok(message
                .contains("Insufficient nvidia.com/gpu")
                .then_some(()))
        },
    )
    .await?;
    let run = wait_phase(&runs, "gpu", Phase::Failed).await?;
    let failed = run
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Failed")
        .unwrap();
    ensure!(
        failed.reason == "StartDeadlineExceeded",
        "reason {}",
        failed.reason
    );
    ensure!(
        failed.message.contains("Insufficient nvidia.com/gpu"),
        "{}",
        failed.message
    );
    ns.delete().await
}

/// The S3 Secret and `<namespace>/train.csv` in the test bucket.
async fn upload_training_data(
    store: &dyn ObjectStore,
    ns: &TestNamespace,
    csv: Vec<u8>,
) -> Result<()> {
    ns.s3_secret("s3").await?;
    let path = ObjectPath::from(format!("{}/train.csv", ns.name));
    store.put(&path, PutPayload::from(csv)).await?;
    Ok(())
}

/// Wait until the namespace holds `count` Jobs.
async fn wait_jobs(jobs: &Api<Job>, count: usize, what: &str) -> Result<()> {
    wait_for(what, TRAINING_TIMEOUT, || async {
        Ok((jobs.list(&ListParams::default()).await?.items.len() == count).then_some(()))
    })
    .await
}

async fn ttl_deletes_the_run_and_its_job(env: &TestEnv, store: &dyn ObjectStore) -> Result<()> {
    let ns = env.namespace("ctl-ttl").await?;
    upload_training_data(store, &ns, data("breast_cancer_train.csv")).await?;
    let runs = ns.api::<TrainingRun>();
    let manifest = run_manifest(
        "short",
        &env.bucket,
        &ns.name,
        json!({"ttlSecondsAfterFinished": 3}),
    );
    runs.create(&PostParams::default(), &manifest).await?;
    let done = wait_phase(&runs, "short", Phase::Succeeded).await?;
    let job_name = done.status.and_then(|s| s.job_name).context("jobName")?;
    wait_for(
        "the run to be deleted by its TTL",
        TRAINING_TIMEOUT,
        || async { Ok(runs.get_opt("short").await?.is_none().then_some(())) },
    )
    .await?;
    let jobs = ns.api::<Job>();
    wait_for(
        "the run's Job to be garbage-collected",
        TRAINING_TIMEOUT,
        || async { Ok(jobs.get_opt(&job_name).await?.is_none().then_some(())) },
    )
    .await?;
    let model = ObjectPath::from(format!("{}/model/model.json", ns.name));
    ensure!(
        store.head(&model).await.is_ok(),
        "the model outlives its run"
    );
    ns.delete().await
}

async fn deleting_a_run_deletes_its_job(env: &TestEnv) -> Result<()> {
    let ns = env.namespace("ctl-delete").await?;
    let runs = ns.api::<TrainingRun>();
    runs.create(
        &PostParams::default(),
        &run_manifest("gone", &env.bucket, &ns.name, json!({"suspend": true})),
    )
    .await?;
    let jobs = ns.api::<Job>();
    wait_jobs(&jobs, 1, "the suspended run's Job to exist").await?;
    runs.delete("gone", &Default::default()).await?;
    wait_jobs(&jobs, 0, "the Job to be garbage-collected with its run").await?;
    ns.delete().await
}

async fn invalid_specs_are_refused_with_the_field_path(env: &TestEnv) -> Result<()> {
    let ns = env.namespace("ctl-invalid").await?;
    let runs = ns.api::<TrainingRun>();
    let mut manifest = run_manifest("bad-spec", &env.bucket, &ns.name, json!({}));
    manifest.spec.dataset.validation_fraction = Some(1.5);
    let error = runs
        .create(&PostParams::default(), &manifest)
        .await
        .err()
        .context("1.5 was accepted")?;
    let message = error.to_string();
    ensure!(
        message.contains("spec.dataset.validationFraction"),
        "{message}"
    );
    // An algorithm on the other task, and a parameter out of its bounds: refused with the
    // field's path, worded as kubetrain local words them (crates/local/src/validate.rs).
    let linear = json!({"linearRegression": {}});
    for (task, algorithm, expected) in [
        (
            "classification",
            linear.clone(),
            format!("spec.task: Invalid value: {LINEAR_NEEDS_REGRESSION}"),
        ),
        (
            "regression",
            json!({"logisticRegression": {}}),
            format!("spec.task: Invalid value: {LOGISTIC_NEEDS_CLASSIFICATION}"),
        ),
        (
            "regression",
            json!({"linearRegression": {"l1Ratio": 1.5}}),
            "spec.algorithm.linearRegression.l1Ratio".to_owned(),
        ),
        (
            "regression",
            json!({"linearRegression": {}, "logisticRegression": {}}),
            format!("spec.algorithm: Invalid value: {ALGORITHM_RULE}"),
        ),
        (
            "classification",
            json!({"gradientBoostedTrees": {"learningRate": 0.0}}),
            "spec.algorithm.gradientBoostedTrees.learningRate".to_owned(),
        ),
        (
            "regression",
            json!({"randomForest": {"maxFeatures": "half"}}),
            "spec.algorithm.randomForest.maxFeatures".to_owned(),
        ),
        (
            "classification",
            json!({"randomForest": {}, "gradientBoostedTrees": {}}),
            format!("spec.algorithm: Invalid value: {ALGORITHM_RULE}"),
        ),
    ] {
        let mut manifest = run_manifest("bad-task", &env.bucket, &ns.name, json!({}));
        manifest.spec.task = serde_json::from_value(json!(task))?;
        manifest.spec.algorithm = serde_json::from_value(algorithm)?;
        let message = runs
            .create(&PostParams::default(), &manifest)
            .await
            .err()
            .with_context(|| format!("{task} with {:?} was accepted", manifest.spec.algorithm))?
            .to_string();
        ensure!(message.contains(&expected), "{message}\nlacks {expected}");
    }
    let created = runs
        .create(
            &PostParams::default(),
            &run_manifest("fine", &env.bucket, &ns.name, json!({"suspend": true})),
        )
        .await?;
    let name = created.metadata.name.as_deref().unwrap_or_default();
    let refused = |change: serde_json::Value, message: &'static str| {
        let runs = runs.clone();
        async move {
            let error = runs
                .patch(name, &PatchParams::default(), &Patch::Merge(&change))
                .await
                .err()
                .with_context(|| format!("{change} was accepted"))?;
            ensure!(error.to_string().contains(message), "{error}");
            anyhow::Ok(())
        }
    };
    // An optional field added: refused by the spec's presence rule.
    refused(
        json!({"spec": {"backoffLimit": 5}}),
        "spec.backoffLimit is immutable",
    )
    .await?;
    // A field that is set, changed: refused by its own rule, named the same way.
    refused(
        json!({"spec": {"algorithm": {"logisticRegression": {"maxIterations": 7}}}}),
        "spec.algorithm is immutable",
    )
    .await?;
    // The mutable fields still change.
    runs.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false, "cancel": true}})),
    )
    .await
    .context("suspend and cancel must stay mutable")?;
    ns.delete().await
}

/// A controller killed mid-run and started again finds the Job it created: one Job, and the
/// run still ends Succeeded.
/// A run whose Job the API server refuses shows why in `kubectl describe`: a Warning Event
/// whose reason is the failed step and whose note is the API server's answer. (Requests above
/// limits pass the CRD's schema but not the Job's validation.)
async fn a_failed_reconcile_is_a_warning_event_on_the_run(env: &TestEnv) -> Result<()> {
    let ns = env.namespace("ctl-refused").await?;
    let runs = ns.api::<TrainingRun>();
    let extra = json!({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}});
    runs.create(
        &PostParams::default(),
        &run_manifest("refused", &env.bucket, &ns.name, extra),
    )
    .await?;
    let described = wait_for(
        "a CreateJobFailed Warning on the run",
        TRAINING_TIMEOUT,
        || async {
            let out =
                env.kubectl(&["describe", "trainingrun", "refused", "-n", ns.name.as_str()])?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            Ok(text.contains("CreateJobFailed").then_some(text))
        },
    )
    .await?;
    let line = described
        .lines()
        .find(|l| l.contains("CreateJobFailed"))
        .unwrap_or_default();
    ensure!(line.contains("Warning"), "not a Warning: {line}");
    ensure!(
        line.contains("cannot create Job refused-")
            && line.contains("must be less than or equal to cpu limit")
            && line.contains("(422 Invalid)"),
        "the note names the Job and the API server's answer: {line}"
    );
    ensure!(
        ns.api::<Job>()
            .list(&ListParams::default())
            .await?
            .items
            .is_empty(),
        "no Job exists"
    );
    ns.delete().await
}

async fn restart_mid_run_keeps_one_job(
    env: &TestEnv,
    store: &dyn ObjectStore,
    controller: &mut ControllerProcess,
) -> Result<()> {
    let ns = env.namespace("ctl-restart").await?;
    upload_training_data(store, &ns, data("breast_cancer_train.csv")).await?;
    let runs = ns.api::<TrainingRun>();
    runs.create(
        &PostParams::default(),
        &run_manifest("again", &env.bucket, &ns.name, json!({})),
    )
    .await?;
    let jobs = ns.api::<Job>();
    wait_jobs(&jobs, 1, "the run's Job to exist").await?;
    controller.kill();
    *controller = start_controller(env)?;
    wait_phase(&runs, "again", Phase::Succeeded).await?;
    let count = jobs.list(&ListParams::default()).await?.items.len();
    ensure!(count == 1, "{count} Jobs for one run after a restart");
    ns.delete().await
}

/// A custom run (`spec.custom`) of the scikit-learn example's image, which the process node
/// maps to the test environment's scikit-learn virtualenv and the example's directory.
fn custom_manifest(
    name: &str,
    ns: &TestNamespace,
    bucket: &str,
    custom: serde_json::Value,
    extra: serde_json::Value,
) -> TrainingRun {
    let mut custom = custom;
    custom["image"] = json!("ghcr.io/kubetrain/example-sklearn:0.1.0");
    let run = run_manifest(
        name,
        bucket,
        &ns.name,
        json!({"algorithm": null, "custom": custom}),
    );
    run.with_spec(&extra.to_string())
}

/// A program that says why on stderr and exits with `code`.
fn failing_program(code: i32, why: &str) -> serde_json::Value {
    json!({"command": ["python", "-c", format!(
        "import sys; print('loading'); print({why:?}, file=sys.stderr); sys.exit({code})"
    )]})
}

/// The user's own code in a Job: progress from its JSON lines while it trains, and a cancel
/// reaches it as SIGTERM (forwarded by the wrapper, which is the container's process).
async fn custom_code_reports_progress_and_gets_sigterm_on_cancel(
    env: &TestEnv,
    store: &dyn ObjectStore,
) -> Result<()> {
    let ns = env.namespace("ctl-custom").await?;
    upload_training_data(store, &ns, data("adult_numeric_train.csv")).await?;
    let marker = env.state_dir.join(format!("{}-sigterm", ns.name));
    let _ = std::fs::remove_file(&marker);
    let runs = ns.api::<TrainingRun>();
    let custom = json!({
        "command": ["python", "/app/train.py"],
        "params": {"n_estimators": "5000", "sigterm_marker": marker.to_str().context("utf-8")?},
    });
    runs.create(
        &PostParams::default(),
        &custom_manifest(
            "byo",
            &ns,
            &env.bucket,
            custom,
            json!({"dataset": {
                "uri": format!("s3://{}/{}/train.csv", env.bucket, ns.name),
                "labelColumn": "income",
            }}),
        ),
    )
    .await?;
    let running = wait_for(
        "progress of the custom run while it runs",
        TRAINING_TIMEOUT,
        || async {
            let run = runs.get("byo").await?;
            let status = run.status.clone().unwrap_or_default();
            ensure!(
                !status.phase.is_some_and(Phase::is_terminal),
                "run ended {:?}: {:?}",
                status.phase,
                status.message
            );
            Ok((status.phase == Some(Phase::Running)
                && status.progress.as_ref().is_some_and(|p| p.iteration > 0))
            .then_some(run))
        },
    )
    .await?;
    let status = running.status.unwrap_or_default();
    ensure!(status.algorithm.as_deref() == Some("custom"), "{status:?}");
    ensure!(
        status
            .progress
            .as_ref()
            .is_some_and(|p| p.total == 5000 && p.loss.is_some()),
        "{:?}",
        status.progress
    );
    runs.patch(
        "byo",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"cancel": true}})),
    )
    .await?;
    wait_phase(&runs, "byo", Phase::Cancelled).await?;
    wait_for(
        "the program to record SIGTERM",
        TRAINING_TIMEOUT,
        || async { Ok(marker.exists().then_some(())) },
    )
    .await?;
    ns.delete().await
}

/// The program's exit code decides: 65 fails the run at once with its last stderr line, 1 is
/// retried up to backoffLimit.
async fn custom_code_exit_codes_decide_retries(
    env: &TestEnv,
    store: &dyn ObjectStore,
) -> Result<()> {
    let ns = env.namespace("ctl-custom-exit").await?;
    upload_training_data(store, &ns, data("breast_cancer_train.csv")).await?;
    let runs = ns.api::<TrainingRun>();
    let bad = failing_program(65, "column 'age' is missing");
    runs.create(
        &PostParams::default(),
        &custom_manifest("bad", &ns, &env.bucket, bad, json!({"backoffLimit": 3})),
    )
    .await?;
    let crash = failing_program(1, "out of ideas");
    runs.create(
        &PostParams::default(),
        &custom_manifest("crash", &ns, &env.bucket, crash, json!({"backoffLimit": 1})),
    )
    .await?;
    let bad = wait_phase(&runs, "bad", Phase::Failed)
        .await?
        .status
        .unwrap_or_default();
    let message = bad.message.clone().unwrap_or_default();
    ensure!(message.contains("column 'age' is missing"), "{message}");
    let jobs = ns.api::<Job>();
    let failed = |status: &kubetrain_api::TrainingRunStatus| {
        let name = status.job_name.clone().unwrap_or_default();
        let jobs = jobs.clone();
        async move {
            anyhow::Ok(
                jobs.get(&name)
                    .await?
                    .status
                    .and_then(|s| s.failed)
                    .unwrap_or(0),
            )
        }
    };
    let attempts = failed(&bad).await?;
    ensure!(
        attempts == 1,
        "exit 65 must not be retried; {attempts} attempts failed"
    );
    let crash = wait_phase(&runs, "crash", Phase::Failed)
        .await?
        .status
        .unwrap_or_default();
    let attempts = failed(&crash).await?;
    ensure!(
        attempts == 2,
        "exit 1 is retried once with backoffLimit 1; {attempts} attempts failed"
    );
    let message = crash.message.unwrap_or_default();
    ensure!(message.contains("out of ideas"), "{message}");
    ns.delete().await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_end_to_end() {
    let Some(env) = TestEnv::from_env() else {
        return;
    };
    let crd = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/crds/trainingruns.kubetrain.dev.yaml");
    let applied = env
        .kubectl(&["apply", "--server-side", "-f", crd.to_str().unwrap()])
        .unwrap();
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    env.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/trainingruns.kubetrain.dev",
        "--timeout=60s",
    ])
    .unwrap();
    let mut controller = start_controller(&env).unwrap();
    let store = env.store().unwrap();
    let (happy, bad, cancel, gpu, ttl, delete, invalid, refused, custom, custom_exit) = tokio::join!(
        trains_a_model_into_s3(&env, store.as_ref()),
        bad_data_fails_at_once(&env, store.as_ref()),
        cancel_stops_the_run(&env),
        gpu_run_is_unschedulable_then_fails_at_its_start_deadline(&env),
        ttl_deletes_the_run_and_its_job(&env, store.as_ref()),
        deleting_a_run_deletes_its_job(&env),
        invalid_specs_are_refused_with_the_field_path(&env),
        a_failed_reconcile_is_a_warning_event_on_the_run(&env),
        custom_code_reports_progress_and_gets_sigterm_on_cancel(&env, store.as_ref()),
        custom_code_exit_codes_decide_retries(&env, store.as_ref()),
    );
    let restart = restart_mid_run_keeps_one_job(&env, store.as_ref(), &mut controller).await;
    let log = env.state_dir.join("controller-e2e.log");
    let outcomes = [
        ("happy path", happy),
        ("bad data", bad),
        ("cancel", cancel),
        ("gpu", gpu),
        ("ttl", ttl),
        ("delete", delete),
        ("invalid spec", invalid),
        ("refused Job", refused),
        ("restart", restart),
        ("custom code", custom),
        ("custom code exit codes", custom_exit),
    ];
    let failures: Vec<String> = outcomes
        .into_iter()
        .filter_map(|(name, result)| result.err().map(|error| format!("{name}: {error:#}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{}\ncontroller log: {}",
        failures.join("\n"),
        log.display()
    );
}
