//! Smoke tests of the test environment itself: the real Job controller, scheduler and process
//! node run Jobs; the scheduler keeps what does not fit Pending; S3 stores objects; the
//! TrainingRun CRD is served with its schema; helm reaches the API server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ListParams, PostParams};
use kubetrain_e2e::{DEFAULT_TIMEOUT, TestEnv, wait_for};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde_json::json;

fn job(name: &str, script: &str, backoff_limit: i32) -> Job {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", script]}],
            }},
        },
    }))
    .unwrap()
}

/// Waits until the Job has a true condition of one of `types`, and returns its type and reason.
async fn job_outcome(jobs: &Api<Job>, name: &str, types: &[&str]) -> Result<(String, String)> {
    wait_for(
        &format!("job {name} to reach one of {types:?}"),
        DEFAULT_TIMEOUT,
        || async {
            let job = jobs.get(name).await?;
            let conditions = job.status.and_then(|s| s.conditions).unwrap_or_default();
            Ok(conditions
                .into_iter()
                .find(|c| c.status == "True" && types.contains(&c.type_.as_str()))
                .map(|c| (c.type_, c.reason.unwrap_or_default())))
        },
    )
    .await
}

#[tokio::test]
async fn job_runs_to_complete_through_controller_scheduler_and_node() -> Result<()> {
    let Some((env, ns)) = TestEnv::with_namespace("job-complete").await? else {
        return Ok(());
    };
    let jobs: Api<Job> = ns.api();
    jobs.create(&PostParams::default(), &job("echo", "echo ok", 0))
        .await?;
    let (outcome, _) = job_outcome(&jobs, "echo", &["Complete", "Failed"]).await?;
    ensure!(outcome == "Complete", "job echo ended {outcome}");

    let pods: Api<Pod> = ns.api();
    let list = pods
        .list(&ListParams::default().labels("job-name=echo"))
        .await?;
    ensure!(
        list.items.len() == 1,
        "expected one pod, got {}",
        list.items.len()
    );
    let pod = &list.items[0];
    ensure!(pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(env.node.as_str()));
    ensure!(
        env.container_log_text(pod, "main") == "ok\n",
        "log: {:?}",
        env.container_log_text(pod, "main")
    );
    // kubectl logs goes through the API server to the node's logs endpoint.
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let logs = env.kubectl(&["logs", "-n", &ns.name, name])?;
    ensure!(
        logs.status.success() && logs.stdout == b"ok\n",
        "kubectl logs: {:?} {}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
    ns.delete().await
}

#[tokio::test]
async fn failing_job_honours_backoff_limit() -> Result<()> {
    let Some((_env, ns)) = TestEnv::with_namespace("job-fail").await? else {
        return Ok(());
    };
    let jobs: Api<Job> = ns.api();
    jobs.create(&PostParams::default(), &job("exit3", "exit 3", 1))
        .await?;
    let (outcome, reason) = job_outcome(&jobs, "exit3", &["Complete", "Failed"]).await?;
    ensure!(
        outcome == "Failed" && reason == "BackoffLimitExceeded",
        "job ended {outcome} ({reason})"
    );

    // backoffLimit 1: the first pod and exactly one retry, both exiting 3.
    let pods: Api<Pod> = ns.api();
    let list = pods
        .list(&ListParams::default().labels("job-name=exit3"))
        .await?;
    ensure!(
        list.items.len() == 2,
        "expected 2 pods, got {}",
        list.items.len()
    );
    for pod in &list.items {
        let status = pod.status.as_ref().context("pod without status")?;
        let terminated = status
            .container_statuses
            .iter()
            .flatten()
            .find_map(|c| c.state.as_ref()?.terminated.as_ref())
            .context("container not terminated")?;
        ensure!(status.phase.as_deref() == Some("Failed"));
        ensure!(terminated.exit_code == 3 && terminated.reason.as_deref() == Some("Error"));
    }
    ns.delete().await
}

#[tokio::test]
async fn gpu_pod_stays_pending_with_the_schedulers_reason() -> Result<()> {
    let Some((_env, ns)) = TestEnv::with_namespace("gpu-pending").await? else {
        return Ok(());
    };
    let pods: Api<Pod> = ns.api();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "gpu"},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": "busybox:1.36", "command": ["true"],
            "resources": {"limits": {"nvidia.com/gpu": "1"}},
        }]},
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let message = wait_for(
        "the scheduler to mark the pod unschedulable",
        DEFAULT_TIMEOUT,
        || async {
            let pod = pods.get("gpu").await?;
            let status = pod.status.unwrap_or_default();
            Ok(status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .find_map(|c| {
                    (c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable"))
                    .then(|| c.message.unwrap_or_default())
                }))
        },
    )
    .await?;
    ensure!(
        message.contains("Insufficient nvidia.com/gpu"),
        "scheduler said: {message}"
    );
    let pod = pods.get("gpu").await?;
    let status = pod.status.unwrap_or_default();
    ensure!(
        status.phase.as_deref() == Some("Pending"),
        "phase {:?}",
        status.phase
    );
    ensure!(
        pod.spec.and_then(|s| s.node_name).is_none(),
        "the pod was bound"
    );
    ns.delete().await
}

#[tokio::test]
async fn s3_object_is_read_back() -> Result<()> {
    let Some(env) = TestEnv::from_env() else {
        return Ok(());
    };
    let store = env.store()?;
    let path = ObjectPath::from(format!("smoke/{}/hello.txt", std::process::id()));
    let body = b"kubetrain smoke test\n".to_vec();
    store
        .put(&path, body.clone().into())
        .await
        .context("writing to S3")?;
    let read = store
        .get(&path)
        .await
        .context("reading from S3")?
        .bytes()
        .await?;
    ensure!(read.as_ref() == body.as_slice(), "read back {read:?}");
    store.delete(&path).await?;
    ensure!(
        store.get(&path).await.is_err(),
        "object still there after delete"
    );
    Ok(())
}

#[tokio::test]
async fn trainingrun_crd_is_accepted_and_explained() -> Result<()> {
    let Some(env) = TestEnv::from_env() else {
        return Ok(());
    };
    let crd_file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/crds/trainingruns.kubetrain.dev.yaml"
    );
    // kubectl apply also checks that the API server serves valid /openapi documents.
    let applied = env.kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        crd_file,
    ])?;
    ensure!(
        applied.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&applied.stderr)
    );

    let crds = Api::<CustomResourceDefinition>::all(env.client().await?);
    let crd = wait_for("the CRD to be Established", DEFAULT_TIMEOUT, || async {
        let crd = crds.get("trainingruns.kubetrain.dev").await?;
        let established = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        Ok(established.then_some(crd))
    })
    .await?;

    // Every documented spec field shows up with its description (kubectl wraps lines, so
    // compare with whitespace collapsed). The discovery cache may lag the CRD by a moment.
    let schema = serde_json::to_value(&crd.spec.versions[0].schema)?;
    let fields = schema["openAPIV3Schema"]["properties"]["spec"]["properties"]
        .as_object()
        .context("the CRD has no spec properties")?
        .clone();
    ensure!(!fields.is_empty(), "spec has no fields");
    let explained = wait_for(
        "kubectl explain trainingrun.spec",
        DEFAULT_TIMEOUT,
        || async {
            let out = env.kubectl(&["explain", "trainingrun.spec"])?;
            Ok(out
                .status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
        },
    )
    .await?;
    let flat = explained.split_whitespace().collect::<Vec<_>>().join(" ");
    for (name, property) in &fields {
        let description = property["description"]
            .as_str()
            .with_context(|| format!("spec.{name} has no description"))?;
        let start: String = description
            .split_whitespace()
            .take(6)
            .collect::<Vec<_>>()
            .join(" ");
        ensure!(
            flat.contains(&format!("{name}\t")) || flat.contains(&format!("{name} ")),
            "kubectl explain does not list spec.{name}:\n{explained}"
        );
        ensure!(
            flat.contains(&start),
            "kubectl explain lacks the description of spec.{name} ({start:?}):\n{explained}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn helm_reaches_the_api_server() -> Result<()> {
    let Some(env) = TestEnv::from_env() else {
        return Ok(());
    };
    let out = std::process::Command::new("helm")
        .args(["list", "--all-namespaces", "--output", "json"])
        .env("KUBECONFIG", &env.kubeconfig)
        .output()
        .context("running helm (is the env file's PATH set?)")?;
    ensure!(
        out.status.success(),
        "helm list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let releases: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    ensure!(releases.is_array(), "helm list printed {releases}");
    Ok(())
}
