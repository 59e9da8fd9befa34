//! The process node as the control plane sees it: a pod's process gets its environment and its
//! service account's identity, deletion delivers SIGTERM, `activeDeadlineSeconds` fails a pod,
//! Deployments become available and crashing containers restart; RBAC holds for users.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use kubetrain_e2e::{DEFAULT_TIMEOUT, TestEnv, wait_for, wait_for_pod_phase};
use serde_json::json;

#[tokio::test]
async fn pod_process_gets_its_env_and_service_account_identity() -> Result<()> {
    let Some((env, ns)) = TestEnv::with_namespace("pod-identity").await? else {
        return Ok(());
    };
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"}, "stringData": {"password": "s3cret"},
    }))?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "settings"}, "data": {"mode": "fast"}}),
    )?;
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await?;
    let script = r#"set -e
test "$PASSWORD" = s3cret
test "$MODE" = fast
test -d "$TMPDIR"
test "$TMPDIR" != /tmp
test "$GREETING" = "hello $NS"
me=$(kubectl auth whoami -o jsonpath='{.status.userInfo.username}')
echo "$me"
test "$me" = "system:serviceaccount:$NS:default"
if kubectl get secrets >/dev/null 2>&1; then echo "service account must not read secrets"; exit 1; fi"#;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "identity"},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": "busybox:1.36", "command": ["sh", "-c", script],
            "env": [
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "GREETING", "value": "hello $(NS)"},
            ],
        }]},
    }))?;
    let pods: Api<Pod> = ns.api();
    pods.create(&PostParams::default(), &pod).await?;
    let done = wait_for_pod_phase(&pods, "identity", &["Succeeded", "Failed"]).await?;
    let log = env.container_log_text(&done, "main");
    ensure!(
        done.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"),
        "pod failed; its log:\n{log}"
    );
    ensure!(
        log.trim() == format!("system:serviceaccount:{}:default", ns.name),
        "log: {log}"
    );
    // kubectl describe shows what the node did.
    let events: Api<k8s_openapi::api::core::v1::Event> = ns.api();
    wait_for("a Started event from the node", DEFAULT_TIMEOUT, || async {
        let list = events
            .list(&ListParams::default().fields("involvedObject.name=identity"))
            .await?;
        Ok(list
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Started"))
            .then_some(()))
    })
    .await?;
    ns.delete().await
}

/// A pod whose shell sets `trap`, prints `started` and loops; returned once it printed.
async fn start_looping_pod(
    env: &TestEnv,
    pods: &Api<Pod>,
    name: &str,
    grace_seconds: i64,
    trap: &str,
) -> Result<Pod> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": grace_seconds, "containers": [{
            "name": "main", "image": "busybox:1.36",
            "command": ["sh", "-c", format!("{trap}; echo started; while true; do sleep 0.1; done")],
        }]},
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let running = wait_for_pod_phase(pods, name, &["Running"]).await?;
    wait_for("the process to start", DEFAULT_TIMEOUT, || async {
        Ok(env
            .container_log_text(&running, "main")
            .contains("started")
            .then_some(()))
    })
    .await?;
    Ok(running)
}

#[tokio::test]
async fn deleted_pod_gets_sigterm_and_goes_away() -> Result<()> {
    let Some((env, ns)) = TestEnv::with_namespace("pod-delete").await? else {
        return Ok(());
    };
    let pods: Api<Pod> = ns.api();
    let running = start_looping_pod(
        &env,
        &pods,
        "sleeper",
        20,
        "trap 'echo got TERM; exit 0' TERM",
    )
    .await?;
    let started = std::time::Instant::now();
    pods.delete("sleeper", &DeleteParams::default()).await?;
    wait_for("the pod to be deleted", DEFAULT_TIMEOUT, || async {
        Ok(pods.get_opt("sleeper").await?.is_none().then_some(()))
    })
    .await?;
    // The trap ran, well before the 20 s grace period would have ended in SIGKILL.
    ensure!(
        env.container_log_text(&running, "main")
            .contains("got TERM"),
        "no SIGTERM seen"
    );
    ensure!(
        started.elapsed() < Duration::from_secs(15),
        "deletion took {:?}",
        started.elapsed()
    );
    ns.delete().await
}

#[tokio::test]
async fn active_deadline_fails_the_pod() -> Result<()> {
    let Some((_env, ns)) = TestEnv::with_namespace("pod-deadline").await? else {
        return Ok(());
    };
    let pods: Api<Pod> = ns.api();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "slow"},
        "spec": {"restartPolicy": "Never", "activeDeadlineSeconds": 2, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "600"]}]},
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let failed = wait_for_pod_phase(&pods, "slow", &["Failed", "Succeeded"]).await?;
    let status = failed.status.unwrap_or_default();
    ensure!(
        status.phase.as_deref() == Some("Failed"),
        "phase {:?}",
        status.phase
    );
    ensure!(
        status.reason.as_deref() == Some("DeadlineExceeded"),
        "reason {:?}",
        status.reason
    );
    ns.delete().await
}

#[tokio::test]
async fn unprivileged_user_is_forbidden() -> Result<()> {
    let Some((env, ns)) = TestEnv::with_namespace("user-forbidden").await? else {
        return Ok(());
    };
    let pods: Api<Pod> = Api::namespaced(env.user_client().await?, &ns.name);
    match pods.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) if status.code == 403 => {
            ensure!(
                status.message.contains(&env.user),
                "403 names someone else: {}",
                status.message
            );
        }
        Err(other) => bail!("expected 403 Forbidden, got {other}"),
        Ok(_) => bail!("unprivileged user {} could list pods", env.user),
    }
    ns.delete().await
}

#[tokio::test]
async fn deployment_becomes_available_and_crashing_containers_restart() -> Result<()> {
    let Some((_env, ns)) = TestEnv::with_namespace("deploy-restart").await? else {
        return Ok(());
    };
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                    "name": "main", "image": "busybox:1.36", "command": ["sleep", "600"],
                }]},
            },
        },
    }))?;
    let deployments: Api<Deployment> = ns.api();
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    wait_for(
        "the deployment to be available",
        DEFAULT_TIMEOUT,
        || async {
            let d = deployments.get("web").await?;
            Ok((d.status.and_then(|s| s.available_replicas) == Some(1)).then_some(()))
        },
    )
    .await?;

    // restartPolicy Always: a container that keeps exiting is restarted with back-off.
    let pods: Api<Pod> = ns.api();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "crasher"},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", "exit 1"]}]},
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let last_exit = wait_for("two restarts", DEFAULT_TIMEOUT, || async {
        let pod = pods.get("crasher").await?;
        let status = pod.status.unwrap_or_default();
        let container = status
            .container_statuses
            .unwrap_or_default()
            .into_iter()
            .next();
        Ok(container
            .filter(|c| c.restart_count >= 2)
            .and_then(|c| c.last_state?.terminated.map(|t| t.exit_code)))
    })
    .await?;
    ensure!(last_exit == 1, "last exit code {last_exit}");
    ns.delete().await
}

#[tokio::test]
async fn process_ignoring_sigterm_is_killed_after_the_grace_period() -> Result<()> {
    let Some((env, ns)) = TestEnv::with_namespace("pod-kill").await? else {
        return Ok(());
    };
    let pods: Api<Pod> = ns.api();
    let running = start_looping_pod(&env, &pods, "stubborn", 2, "trap '' TERM").await?;
    let pidfile = env.container_log(&running, "main").with_extension("pid");
    let pid: u32 = std::fs::read_to_string(&pidfile)?
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .parse()?;
    let started = std::time::Instant::now();
    pods.delete("stubborn", &DeleteParams::default()).await?;
    wait_for("the pod to be deleted", DEFAULT_TIMEOUT, || async {
        Ok(pods.get_opt("stubborn").await?.is_none().then_some(()))
    })
    .await?;
    let took = started.elapsed();
    ensure!(
        took >= Duration::from_secs(2),
        "deleted after {took:?}, before the grace period"
    );
    ensure!(took < Duration::from_secs(10), "deletion took {took:?}");
    ensure!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} still runs"
    );
    ns.delete().await
}
