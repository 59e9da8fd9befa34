//! `helm install` of the chart (`charts/kubetrain`) on the real control plane, S3 and process
//! node: the release's controller and gateway serve, train the samples into S3, `helm test`
//! submits a run through the gateway, RBAC is least privilege, and `helm uninstall` removes
//! the release. `chart_render.rs` checks the renderings without installing.
//!
//! # Caveats
//! The installed controller is cluster-wide, like the one `controller.rs` starts: both would
//! reconcile every run. `cargo test` runs one test binary at a time, so they never overlap;
//! this binary's one test uninstalls the release (also when it fails) before it returns.
//! A runner that runs test binaries in parallel (nextest) must put the two in one group.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::ListParams;
use kubetrain_api::{Phase, TrainingRun};
use kubetrain_e2e::cli::{apply, can_i, ok, run};
use kubetrain_e2e::repo::{chart, path_str, repo, sample, storage_secret_sample};
use kubetrain_e2e::{
    DEFAULT_TIMEOUT, TestEnv, TestNamespace, free_port, service_account_token, wait_for,
};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use sha2::Digest;

const TRAINING_TIMEOUT: Duration = Duration::from_secs(180);
const RELEASE: &str = "kubetrain";
const CONTROLLER_SELECTOR: &str =
    "app.kubernetes.io/instance=kubetrain,app.kubernetes.io/component=controller";
const GATEWAY_SELECTOR: &str =
    "app.kubernetes.io/instance=kubetrain,app.kubernetes.io/component=gateway";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_trains_the_samples_and_uninstall_removes_the_release() -> Result<()> {
    let Some(env) = TestEnv::from_env() else {
        return Ok(());
    };
    env.apply_crd()?;
    let ns = env.namespace("chart-install").await?;
    enforce_restricted(&env, &ns.name)?;
    let mut release = Release {
        env: &env,
        namespace: ns.name.clone(),
        installed: false,
    };
    // The team namespace where the samples and the `helm test` run train.
    let team = env.namespace("chart-runs").await?;
    enforce_restricted(&env, &team.name)?;
    let ports = Ports {
        controller: free_port()?,
        gateway: free_port()?,
    };
    // `helm test` trains from this checkout's data into the environment's state directory:
    // on the process node training pods share this host's file system, and a run names no
    // storage Secret (see templates/tests/gateway-submit.yaml).
    let helm_test_out = env.state_dir.join(format!("helm-test-{}", team.name));

    install(&env, &mut release, &team, ports, &helm_test_out)?;
    let pods = release_serves(&env, &ns, ports).await?;
    let trained = samples_train(&env, &team, &pods.controller).await?;
    gateway_reads_the_run(&env, &team, &ns.name, ports.gateway, &trained)
        .await
        .with_context(|| log_hint(&env, &pods.gateway, "gateway"))?;
    helm_test_submits_through_the_gateway(&env, &ns, &team, &helm_test_out)
        .await
        .with_context(|| log_hint(&env, &pods.gateway, "gateway"))?;
    privileges_are_least(&env, &ns, &team).await?;
    uninstall_removes_the_release(&env, &mut release, &ns).await?;
    drop(release);
    team.delete().await
}

/// The host ports of the release's pods (the process node's pods share the host's network).
#[derive(Clone, Copy)]
struct Ports {
    controller: u16,
    gateway: u16,
}

/// The release's running pods.
struct ReleasePods {
    controller: Pod,
    gateway: Pod,
}

/// "`container` log: path", for an error's context: where to look when a step fails.
fn log_hint(env: &TestEnv, pod: &Pod, container: &str) -> String {
    format!(
        "{container} log: {}",
        env.container_log(pod, container).display()
    )
}

/// `helm install --wait` with one replica of each component on `ports`, `helm test` set to
/// submit into `team` and write its model to `helm_test_out`; its NOTES tell how to start.
fn install(
    env: &TestEnv,
    release: &mut Release<'_>,
    team: &TestNamespace,
    ports: Ports,
    helm_test_out: &Path,
) -> Result<()> {
    let helm_test_data = repo().join("tests/data/breast_cancer_train.csv");
    let endpoint = std::env::var("AWS_ENDPOINT_URL")?;
    let region = std::env::var("AWS_REGION")?;
    let sets = [
        // One replica: on the process node every pod shares the host's network, so a second
        // replica could not bind the same port. Leader election stays on.
        "controller.replicas=1".to_owned(),
        format!("controller.port={}", ports.controller),
        format!("storage.endpoint={endpoint}"),
        format!("storage.region={region}"),
        // `--set` splits at commas unless they are escaped.
        r"controller.logLevel=info\,kubetrain_controller=debug".to_owned(),
        // The gateway too: one replica on a port of its own (the node's network is the host's).
        "gateway.replicas=1".to_owned(),
        format!("gateway.port={}", ports.gateway),
        "tests.submit.enabled=true".to_owned(),
        format!("tests.submit.namespace={}", team.name),
        format!("tests.submit.data=file://{}", helm_test_data.display()),
        format!("tests.submit.out=file://{}/", helm_test_out.display()),
        format!("tests.submit.gatewayUrl=http://127.0.0.1:{}", ports.gateway),
    ];
    let chart = chart();
    let mut args = vec![
        "install",
        RELEASE,
        path_str(&chart),
        "--namespace",
        &release.namespace,
    ];
    args.extend(["--wait", "--timeout", "120s"]);
    for set in &sets {
        args.extend(["--set", set.as_str()]);
    }
    // From here on the release may exist: the guard uninstalls it whatever happens.
    release.installed = true;
    let notes = ok(env, "helm", &args, None)?;
    ensure!(
        notes.contains("Submit a first run with kubectl") && notes.contains("curl"),
        "helm install printed no NOTES with kubectl and curl:\n{notes}"
    );
    Ok(())
}

/// Both Deployments become Available; their pods answer what their probes would ask; the
/// controller holds its Lease under its pod's name; the gateway pod runs our gateway.
async fn release_serves(env: &TestEnv, ns: &TestNamespace, ports: Ports) -> Result<ReleasePods> {
    // The Deployment is available: its pod runs as a process on the node.
    let deployments = ns.api::<Deployment>();
    for name in ["kubetrain-controller", "kubetrain-gateway"] {
        wait_for(
            &format!("the Deployment {name} to be Available"),
            DEFAULT_TIMEOUT,
            || async {
                let deployment = deployments.get(name).await?;
                let conditions = deployment
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default();
                Ok(conditions
                    .iter()
                    .any(|c| c.type_ == "Available" && c.status == "True")
                    .then_some(()))
            },
        )
        .await?;
    }
    let pod = running_pod(ns, CONTROLLER_SELECTOR).await?;
    let pod_name = pod.metadata.name.clone().context("pod name")?;

    // What the probes ask, asked for real (the process node runs no probes).
    for path in ["/healthz", "/readyz", "/metrics"] {
        wait_for(
            &format!("{path} to answer 200 on port {}", ports.controller),
            DEFAULT_TIMEOUT,
            || async { Ok((http_status(ports.controller, path)? == 200).then_some(())) },
        )
        .await
        .with_context(|| log_hint(env, &pod, "controller"))?;
    }
    // Leader election in the release namespace, under the pod's own name.
    let leases = ns.api::<Lease>();
    wait_for(
        "the controller to hold its Lease",
        DEFAULT_TIMEOUT,
        || async {
            let lease = leases.get_opt("kubetrain-controller").await?;
            let holder = lease.and_then(|l| l.spec).and_then(|s| s.holder_identity);
            Ok((holder.as_deref() == Some(pod_name.as_str())).then_some(()))
        },
    )
    .await?;

    // The gateway's pod runs our binary as `kubetrain gateway` and answers what its probes ask.
    let gateway_pod = running_pod(ns, GATEWAY_SELECTOR).await?;
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/ui/"] {
        wait_for(
            &format!(
                "the gateway's {path} to answer 200 on port {}",
                ports.gateway
            ),
            DEFAULT_TIMEOUT,
            || async { Ok((http_status(ports.gateway, path)? == 200).then_some(())) },
        )
        .await
        .with_context(|| log_hint(env, &gateway_pod, "gateway"))?;
    }
    let log = env.container_log_text(&gateway_pod, "gateway");
    ensure!(
        log.contains("serving the kubetrain API") && log.contains("TrainingRun cache synced"),
        "the gateway pod is not our gateway:\n{log}"
    );
    Ok(ReleasePods {
        controller: pod,
        gateway: gateway_pod,
    })
}

/// The binary and multiclass samples, with their data in the real S3, trained by the chart's
/// controller in a namespace of its own, as a team would use it: the finished binary run.
async fn samples_train(env: &TestEnv, team: &TestNamespace, pod: &Pod) -> Result<TrainingRun> {
    let prefix = team.name.clone();
    let store = env.store()?;
    for (file, object) in [
        ("breast_cancer_train.csv", "breast-cancer/train.csv"),
        ("breast_cancer_test.csv", "breast-cancer/test.csv"),
        ("digits_train.csv", "digits/train.csv"),
        ("diabetes_train.csv", "diabetes/train.csv"),
        ("diabetes_test.csv", "diabetes/test.csv"),
    ] {
        let data = std::fs::read(repo().join("tests/data").join(file))?;
        store
            .put(
                &ObjectPath::from(format!("{prefix}/{object}")),
                PutPayload::from(data),
            )
            .await?;
    }
    let secret = storage_secret_sample()?;
    apply(env, &team.name, &secret)?;
    let binary = sample("logistic-regression-binary.yaml", &env.bucket, &prefix)?;
    apply(env, &team.name, &binary)?;
    let multiclass = sample("logistic-regression-multiclass.yaml", &env.bucket, &prefix)?;
    apply(env, &team.name, &multiclass)?;
    let regression = sample("linear-regression-diabetes.yaml", &env.bucket, &prefix)?;
    apply(env, &team.name, &regression)?;
    let boosted = sample(
        "gradient-boosted-trees-breast-cancer.yaml",
        &env.bucket,
        &prefix,
    )?;
    apply(env, &team.name, &boosted)?;
    let forest = sample("random-forest-diabetes.yaml", &env.bucket, &prefix)?;
    apply(env, &team.name, &forest)?;
    let custom = sample("custom-sklearn/trainingrun.yaml", &env.bucket, &prefix)?;
    apply(env, &team.name, &custom)?;
    let runs = team.api::<TrainingRun>();
    let controller_log = || log_hint(env, pod, "controller");
    let done = succeeded(&runs, "breast-cancer")
        .await
        .with_context(controller_log)?;
    let digits = succeeded(&runs, "digits")
        .await
        .with_context(controller_log)?;
    let digits = digits.status.context("digits status")?;
    ensure!(
        digits.dataset.as_ref().map(|d| d.classes) == Some(10),
        "the multiclass sample saw {:?}",
        digits.dataset
    );
    let accuracy = digits.metrics.and_then(|m| m.accuracy).unwrap_or_default();
    ensure!(accuracy > 0.9, "digits accuracy {accuracy}");
    // The regression sample: R² as scikit-learn's Ridge(alpha=1.0) scores it (0.3311), shown
    // as the run's Score.
    let diabetes = succeeded(&runs, "diabetes")
        .await
        .with_context(controller_log)?;
    let metrics = diabetes
        .status
        .and_then(|s| s.metrics)
        .context("diabetes metrics")?;
    ensure!(
        metrics.score_name.as_deref() == Some("r2")
            && metrics.score == metrics.r2
            && metrics.r2.is_some_and(|r2| (r2 - 0.3311).abs() < 0.001)
            && metrics.rmse.is_some_and(|rmse| (rmse - 58.57).abs() < 0.05),
        "the regression sample reported {metrics:?}"
    );
    // The tree samples, near the scores of LightGBM (accuracy 0.9737) and scikit-learn's
    // random forest (R² 0.2687) on the same splits (tests/oracle/README.md).
    let boosted = succeeded(&runs, "breast-cancer-boosted")
        .await
        .with_context(controller_log)?;
    let metrics = boosted
        .status
        .and_then(|s| s.metrics)
        .context("breast-cancer-boosted metrics")?;
    ensure!(
        metrics.accuracy.is_some_and(|accuracy| accuracy > 0.95),
        "the gradient-boosted trees sample reported {metrics:?}"
    );
    let forest = succeeded(&runs, "diabetes-forest")
        .await
        .with_context(controller_log)?;
    let metrics = forest
        .status
        .and_then(|s| s.metrics)
        .context("diabetes-forest metrics")?;
    ensure!(
        metrics.score_name.as_deref() == Some("r2") && metrics.r2.is_some_and(|r2| r2 > 0.2),
        "the random forest sample reported {metrics:?}"
    );
    // The custom-code sample: the user's scikit-learn script in its own image (the process
    // node maps it to the test environment's scikit-learn virtualenv), under kubetrain's
    // wrapper. Its metrics and its model file's digest are in the status.
    let sklearn = succeeded(&runs, "breast-cancer-sklearn")
        .await
        .with_context(controller_log)?;
    let status = sklearn.status.context("breast-cancer-sklearn status")?;
    ensure!(status.algorithm.as_deref() == Some("custom"), "{status:?}");
    let metrics = status.metrics.context("breast-cancer-sklearn metrics")?;
    ensure!(
        metrics.accuracy.is_some_and(|accuracy| accuracy > 0.95)
            && metrics.reported.contains_key("macro_f1"),
        "the custom-code sample reported {metrics:?}"
    );
    let model = status.model.context("breast-cancer-sklearn model")?;
    ensure!(
        model.uri
            == format!(
                "s3://{}/{prefix}/breast-cancer-sklearn/model/model.joblib",
                env.bucket
            ),
        "{}",
        model.uri
    );
    let stored = store
        .get(&ObjectPath::from(format!(
            "{prefix}/breast-cancer-sklearn/model/model.joblib"
        )))
        .await?
        .bytes()
        .await?;
    ensure!(
        sha2::Sha256::digest(&stored)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            == model.sha256,
        "the stored model.joblib is not the one whose digest is in the status"
    );
    let summary = store
        .get(&ObjectPath::from(format!(
            "{prefix}/breast-cancer-sklearn/model/summary.json"
        )))
        .await?
        .bytes()
        .await?;
    let summary: serde_json::Value = serde_json::from_slice(&summary)?;
    ensure!(
        summary["files"]
            .as_array()
            .is_some_and(|files| files.iter().any(|f| f["sha256"] == model.sha256.as_str())),
        "summary.json does not list the model: {summary}"
    );
    let status = done.status.clone().context("status")?;
    let model = status.model.context("status.model")?;
    let expected = format!(
        "s3://{}/{prefix}/breast-cancer/model/model.json",
        env.bucket
    );
    ensure!(
        model.uri == expected,
        "model at {}, expected {expected}",
        model.uri
    );
    let stored = store
        .head(&ObjectPath::from(format!(
            "{prefix}/breast-cancer/model/model.json"
        )))
        .await?;
    ensure!(
        stored.size == model.bytes,
        "model in S3 has {} bytes, status says {}",
        stored.size,
        model.bytes
    );
    let accuracy = status
        .metrics
        .and_then(|m| m.accuracy)
        .context("status.metrics.accuracy")?;
    ensure!(
        accuracy > 0.93,
        "accuracy {accuracy} on the held-out test data"
    );
    let log = std::fs::read_to_string(env.container_log(pod, "controller")).unwrap_or_default();
    ensure!(
        log.contains("breast-cancer"),
        "the chart's controller did not log the run:\n{log}"
    );
    Ok(done)
}

/// `helm test`: `kubetrain submit` in a pod, through the gateway with its own token, follows a
/// new run to Succeeded (the pod fails otherwise), whose model lands in `helm_test_out`.
async fn helm_test_submits_through_the_gateway(
    env: &TestEnv,
    ns: &TestNamespace,
    team: &TestNamespace,
    helm_test_out: &Path,
) -> Result<()> {
    let tested = run(
        env,
        "helm",
        &[
            "test",
            RELEASE,
            "--namespace",
            &ns.name,
            "--timeout",
            "180s",
            "--logs",
        ],
        None,
    )?;
    ensure!(
        tested.status.success(),
        "helm test failed:\n{}{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr)
    );
    let helm_test_runs = team
        .api::<TrainingRun>()
        .list(&ListParams::default().labels("app.kubernetes.io/instance=kubetrain"))
        .await?;
    let helm_test_run = helm_test_runs
        .items
        .iter()
        .find(|r| {
            r.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("helm-test-"))
        })
        .context("helm test created no run")?;
    let phase = helm_test_run.status.as_ref().and_then(|s| s.phase);
    ensure!(
        phase == Some(Phase::Succeeded),
        "the helm test run is {phase:?}"
    );
    ensure!(
        helm_test_out.join("model.json").exists(),
        "no model at {}",
        helm_test_out.display()
    );
    Ok(())
}

/// Least privilege, as the authorizer sees it; the controller gave the team namespace the
/// trainer's identity.
async fn privileges_are_least(
    env: &TestEnv,
    ns: &TestNamespace,
    team: &TestNamespace,
) -> Result<()> {
    let gateway_sa = format!("system:serviceaccount:{}:kubetrain-gateway", ns.name);
    let controller_sa = format!("system:serviceaccount:{}:kubetrain-controller", ns.name);
    let trainer_sa = format!("system:serviceaccount:{}:kubetrain-trainer", team.name);
    for (user, verb, resource, namespace, allowed) in [
        (
            &controller_sa,
            "watch",
            "trainingruns.kubetrain.dev",
            &team.name,
            true,
        ),
        (&controller_sa, "create", "jobs.batch", &team.name, true),
        (&controller_sa, "get", "secrets", &team.name, false),
        (&controller_sa, "create", "pods", &team.name, false),
        (
            &controller_sa,
            "create",
            "trainingruns.kubetrain.dev",
            &team.name,
            false,
        ),
        (
            &controller_sa,
            "update",
            "leases.coordination.k8s.io",
            &team.name,
            false,
        ),
        (
            &trainer_sa,
            "patch",
            "trainingruns.kubetrain.dev/status",
            &team.name,
            true,
        ),
        (
            &trainer_sa,
            "get",
            "trainingruns.kubetrain.dev",
            &team.name,
            false,
        ),
        (&trainer_sa, "get", "secrets", &team.name, false),
        (
            &gateway_sa,
            "create",
            "trainingruns.kubetrain.dev",
            &team.name,
            true,
        ),
        (
            &gateway_sa,
            "watch",
            "trainingruns.kubetrain.dev",
            &team.name,
            true,
        ),
        (
            &gateway_sa,
            "create",
            "tokenreviews.authentication.k8s.io",
            &team.name,
            true,
        ),
        (
            &gateway_sa,
            "create",
            "subjectaccessreviews.authorization.k8s.io",
            &team.name,
            true,
        ),
        (&gateway_sa, "get", "secrets", &team.name, false),
        (&gateway_sa, "create", "jobs.batch", &team.name, false),
        (
            &gateway_sa,
            "patch",
            "trainingruns.kubetrain.dev/status",
            &team.name,
            false,
        ),
        (
            &trainer_sa,
            "patch",
            "trainingruns.kubetrain.dev/status",
            &ns.name,
            false,
        ),
    ] {
        let may = can_i(env, user, verb, resource, namespace)?;
        ensure!(
            may == allowed,
            "{user} may {verb} {resource} in {namespace}: {may}, expected {allowed}"
        );
    }
    // The controller gave the team namespace the trainer's identity (it may grant
    // `patch trainingruns/status` because the chart's ClusterRole holds it).
    let trainer = team
        .api::<ServiceAccount>()
        .get("kubetrain-trainer")
        .await
        .context("the trainer ServiceAccount in the run's namespace")?;
    let labels = trainer.metadata.labels.unwrap_or_default();
    ensure!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str)
            == Some("kubetrain"),
        "the trainer ServiceAccount was not made by the controller: {labels:?}"
    );
    Ok(())
}

/// Uninstall removes every object of the release and its pods; the CRD stays (Helm's crds/
/// rule).
async fn uninstall_removes_the_release(
    env: &TestEnv,
    release: &mut Release<'_>,
    ns: &TestNamespace,
) -> Result<()> {
    let manifest = ok(
        env,
        "helm",
        &["get", "manifest", RELEASE, "--namespace", &ns.name],
        None,
    )?;
    ensure!(
        manifest.contains("kind: ClusterRole"),
        "release manifest:\n{manifest}"
    );
    ok(
        env,
        "helm",
        &[
            "uninstall",
            RELEASE,
            "--namespace",
            &ns.name,
            "--wait",
            "--timeout",
            "120s",
        ],
        None,
    )?;
    release.installed = false;
    let left = ok(
        env,
        "kubectl",
        &[
            "get",
            "--ignore-not-found",
            "--namespace",
            &ns.name,
            "-o",
            "name",
            "-f",
            "-",
        ],
        Some(manifest.as_bytes()),
    )?;
    ensure!(
        left.trim().is_empty(),
        "left behind by helm uninstall:\n{left}"
    );
    let pods = ns.api::<Pod>();
    for selector in [CONTROLLER_SELECTOR, GATEWAY_SELECTOR] {
        wait_for(
            &format!("the pods of {selector} to be gone"),
            DEFAULT_TIMEOUT,
            || async {
                let list = pods.list(&ListParams::default().labels(selector)).await?;
                Ok(list.items.is_empty().then_some(()))
            },
        )
        .await?;
    }
    ok(
        env,
        "kubectl",
        &["get", "crd", "trainingruns.kubetrain.dev"],
        None,
    )
    .context("the CRD must outlive the release")?;
    Ok(())
}

/// Waits until the run succeeds; fails (at the deadline) with its message if it ends otherwise.
async fn succeeded(runs: &Api<TrainingRun>, name: &str) -> Result<TrainingRun> {
    wait_for(
        &format!("run {name} to succeed"),
        TRAINING_TIMEOUT,
        || async {
            let run = runs.get(name).await?;
            let status = run.status.clone().unwrap_or_default();
            if status
                .phase
                .is_some_and(|p| p.is_terminal() && p != Phase::Succeeded)
            {
                bail!("run {name} ended {:?}: {:?}", status.phase, status.message);
            }
            Ok((status.phase == Some(Phase::Succeeded)).then_some(run))
        },
    )
    .await
}

/// Pod Security admission (on in every kube-apiserver) rejects, in this namespace, any pod
/// that breaks the restricted standard: the chart's and the training Jobs' pods must pass it.
fn enforce_restricted(env: &TestEnv, namespace: &str) -> Result<()> {
    let label = "pod-security.kubernetes.io/enforce=restricted";
    ok(
        env,
        "kubectl",
        &["label", "namespace", namespace, label],
        None,
    )?;
    Ok(())
}

/// The release, uninstalled (if the test has not done so) and its namespace deleted on drop.
struct Release<'a> {
    env: &'a TestEnv,
    namespace: String,
    installed: bool,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if self.installed {
            let _ = run(
                self.env,
                "helm",
                &[
                    "uninstall",
                    RELEASE,
                    "--namespace",
                    &self.namespace,
                    "--wait",
                ],
                None,
            );
        }
        let _ = run(
            self.env,
            "kubectl",
            &["delete", "namespace", &self.namespace, "--wait=false"],
            None,
        );
    }
}

/// The HTTP status of GET `path` on 127.0.0.1:`port` (the process node's pod IP).
fn http_status(port: u16, path: &str) -> Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .context("empty HTTP response")?;
    Ok(status.parse()?)
}

async fn running_pod(ns: &TestNamespace, selector: &str) -> Result<Pod> {
    let pods = ns.api::<Pod>();
    wait_for(
        &format!("a pod of {selector} to run"),
        DEFAULT_TIMEOUT,
        || async {
            let list = pods.list(&ListParams::default().labels(selector)).await?;
            Ok(list.items.into_iter().find(|pod| {
                pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            }))
        },
    )
    .await
}

/// `GET /v1/namespaces/{team}/trainingruns/{name}` through the chart's gateway with a token of
/// a ServiceAccount that may `get trainingruns` in `team` only: 200 with the run as the API
/// server has it; the same token in `elsewhere` is 403.
async fn gateway_reads_the_run(
    env: &TestEnv,
    team: &TestNamespace,
    elsewhere: &str,
    port: u16,
    run: &TrainingRun,
) -> Result<()> {
    let reader = "run-reader";
    let objects = format!(
        r#"
apiVersion: v1
kind: ServiceAccount
metadata: {{name: {reader}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: {reader}}}
rules:
  - {{apiGroups: [kubetrain.dev], resources: [trainingruns], verbs: [get]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {reader}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {reader}}}
subjects: [{{kind: ServiceAccount, name: {reader}, namespace: {namespace}}}]
"#,
        namespace = team.name
    );
    apply(env, &team.name, &objects)?;
    let token = service_account_token(&env.client().await?, &team.name, reader).await?;
    let name = run.metadata.name.as_deref().context("run name")?;
    let http = reqwest::Client::new();
    let url = |namespace: &str| {
        format!("http://127.0.0.1:{port}/v1/namespaces/{namespace}/trainingruns/{name}")
    };
    let response = http.get(url(&team.name)).bearer_auth(&token).send().await?;
    let status = response.status();
    let body = response.text().await?;
    ensure!(
        status == reqwest::StatusCode::OK,
        "GET through the gateway: {status} {body}"
    );
    let read: TrainingRun = serde_json::from_str(&body)?;
    let phase = read.status.as_ref().and_then(|s| s.phase);
    ensure!(
        phase == Some(Phase::Succeeded),
        "the gateway says {phase:?}"
    );
    let sha = |r: &TrainingRun| {
        r.status
            .as_ref()
            .and_then(|s| s.model.as_ref())
            .map(|m| m.sha256.clone())
    };
    ensure!(
        sha(&read).is_some() && sha(&read) == sha(run),
        "the gateway's model {:?} differs from the API server's {:?}",
        sha(&read),
        sha(run)
    );
    let response = http.get(url(elsewhere)).bearer_auth(&token).send().await?;
    ensure!(
        response.status() == reqwest::StatusCode::FORBIDDEN,
        "the reader outside its namespace: {}",
        response.status()
    );
    Ok(())
}
