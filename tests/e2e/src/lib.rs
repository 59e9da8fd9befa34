//! Helpers for the end-to-end tests: they run against the environment of `tests/cluster/up.sh`
//! (a real API server, controller manager, scheduler, SeaweedFS S3 and the process node), which
//! they find through the variables of its env file.
//!
//! # Expected flow
//! ```no_run
//! # async fn t() -> anyhow::Result<()> {
//! let Some(env) = kubetrain_e2e::TestEnv::from_env() else { return Ok(()) };
//! let ns = env.namespace("my-test").await?;
//! // ... create objects in `ns.name`, then wait on conditions:
//! kubetrain_e2e::wait_for("the job to complete", kubetrain_e2e::DEFAULT_TIMEOUT, || async { Ok(Some(())) }).await?;
//! ns.delete().await?;
//! # Ok(()) }
//! ```
//!
//! # Caveats
//! Tests run in parallel: each one works in its own namespace; cluster-scoped objects (CRDs)
//! must be applied idempotently.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

/// How long a test waits for a state the environment reaches in a few seconds when healthy.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

const POLL: Duration = Duration::from_millis(200);

/// The running test environment, read from the env file's variables.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// State directory of the environment (`KUBETRAIN_TESTENV`).
    pub state_dir: PathBuf,
    /// Admin kubeconfig (`KUBECONFIG`).
    pub kubeconfig: PathBuf,
    /// Kubeconfig of an unprivileged user (`KUBETRAIN_TEST_USER_KUBECONFIG`).
    pub user_kubeconfig: PathBuf,
    /// That user's name (`KUBETRAIN_TEST_USER`).
    pub user: String,
    /// The process node's name (`KUBETRAIN_TEST_NODE`).
    pub node: String,
    /// An existing S3 bucket (`KUBETRAIN_TEST_BUCKET`).
    pub bucket: String,
}

impl TestEnv {
    /// The environment, or `None` (after a loud message) when `KUBETRAIN_E2E=skip` disables
    /// the end-to-end tests.
    ///
    /// # Panics
    /// When the environment is absent and not explicitly disabled: a test that cannot reach
    /// what it tests must fail, not pass.
    pub fn from_env() -> Option<Self> {
        match Self::read() {
            Ok(env) => Some(env),
            Err(missing) if std::env::var("KUBETRAIN_E2E").as_deref() == Ok("skip") => {
                eprintln!(
                    "\n!!!!!!!! SKIPPED: end-to-end test not run: KUBETRAIN_E2E=skip and {missing:#}. !!!!!!!!\n"
                );
                None
            }
            Err(missing) => panic!(
                "no test environment: {missing:#}. Run the tests with `tests/run.sh`, or start the \
                 environment first: `. \"$(tests/cluster/up.sh | tail -1)\"` (stop it with \
                 tests/cluster/down.sh). To skip end-to-end tests on purpose set KUBETRAIN_E2E=skip."
            ),
        }
    }

    fn read() -> Result<Self> {
        let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
        let state_dir = PathBuf::from(var("KUBETRAIN_TESTENV")?);
        if !state_dir.join(".kubetrain-testenv").exists() {
            bail!(
                "KUBETRAIN_TESTENV={} is not a running test environment",
                state_dir.display()
            );
        }
        Ok(Self {
            state_dir,
            kubeconfig: PathBuf::from(var("KUBECONFIG")?),
            user_kubeconfig: PathBuf::from(var("KUBETRAIN_TEST_USER_KUBECONFIG")?),
            user: var("KUBETRAIN_TEST_USER")?,
            node: var("KUBETRAIN_TEST_NODE")?,
            bucket: var("KUBETRAIN_TEST_BUCKET")?,
        })
    }

    /// A client with admin rights.
    pub async fn client(&self) -> Result<Client> {
        client_from(&self.kubeconfig).await
    }

    /// A client acting as the unprivileged test user.
    pub async fn user_client(&self) -> Result<Client> {
        client_from(&self.user_kubeconfig).await
    }

    /// The test bucket through `object_store` (credentials and endpoint from `AWS_*`).
    pub fn store(&self) -> Result<Arc<dyn ObjectStore>> {
        install_crypto_provider();
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(&self.bucket)
            .build()
            .context("building the S3 client from AWS_* variables")?;
        Ok(Arc::new(store))
    }

    /// A fresh namespace named after the test, unique across parallel tests and runs.
    pub async fn namespace(&self, test: &str) -> Result<TestNamespace> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let client = self.client().await?;
        let suffix = format!(
            "{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut base: String = test
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        base.truncate(62 - suffix.len());
        let name = format!("{}-{suffix}", base.trim_matches('-'));
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"kubetrain.dev/e2e": "true"}}
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        // Pods need the namespace's default ServiceAccount, made by the controller manager.
        let accounts =
            Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), &name);
        wait_for("the default ServiceAccount", DEFAULT_TIMEOUT, || async {
            Ok(accounts.get_opt("default").await?.map(|_| ()))
        })
        .await?;
        Ok(TestNamespace { name, client })
    }

    /// The environment and a fresh namespace for `test`, or `None` when end-to-end tests are
    /// disabled (see [`TestEnv::from_env`]).
    pub async fn with_namespace(test: &str) -> Result<Option<(Self, TestNamespace)>> {
        let Some(env) = Self::from_env() else {
            return Ok(None);
        };
        let ns = env.namespace(test).await?;
        Ok(Some((env, ns)))
    }

    /// What a container of a pod has written so far (empty if nothing yet).
    pub fn container_log_text(&self, pod: &Pod, container: &str) -> String {
        std::fs::read_to_string(self.container_log(pod, container)).unwrap_or_default()
    }

    /// The log file the process node writes for a container of a pod.
    pub fn container_log(&self, pod: &Pod, container: &str) -> PathBuf {
        let meta = &pod.metadata;
        self.state_dir
            .join("node/pods")
            .join(format!(
                "{}_{}_{}",
                meta.namespace.as_deref().unwrap_or_default(),
                meta.name.as_deref().unwrap_or_default(),
                meta.uid.as_deref().unwrap_or_default()
            ))
            .join(format!("{container}.log"))
    }

    /// The TrainingRun CRD of `deploy/crds/` applied (server-side, so idempotent: tests run
    /// in parallel) and Established.
    pub fn apply_crd(&self) -> Result<()> {
        let crd = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/crds/trainingruns.kubetrain.dev.yaml");
        let crd = crd.to_string_lossy();
        let apply = ["apply", "--server-side", "-f", &crd];
        let wait = [
            "wait",
            "--for=condition=Established",
            "crd/trainingruns.kubetrain.dev",
            "--timeout=60s",
        ];
        for args in [&apply[..], &wait[..]] {
            let out = self.kubectl(args)?;
            if !out.status.success() {
                bail!(
                    "kubectl {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Ok(())
    }

    /// Runs the environment's `kubectl` (first on PATH) with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Result<Output> {
        let output = std::process::Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .context("running kubectl (is the env file's PATH set?)")?;
        Ok(output)
    }
}

/// A namespace owned by one test.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TestNamespace {
    /// An API handle for namespaced objects of this test.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Creates the Secret `name` holding the test S3 credentials (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`) that runs name in `spec.storage.secretRef`.
    pub async fn s3_secret(&self, name: &str) -> Result<()> {
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "stringData": {
                "AWS_ACCESS_KEY_ID": std::env::var("AWS_ACCESS_KEY_ID")?,
                "AWS_SECRET_ACCESS_KEY": std::env::var("AWS_SECRET_ACCESS_KEY")?,
            },
        }))?;
        self.api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await
            .with_context(|| format!("creating Secret {name} in {}", self.name))?;
        Ok(())
    }

    /// Deletes the namespace (the namespace controller removes what is in it).
    pub async fn delete(self) -> Result<()> {
        Api::<Namespace>::all(self.client)
            .delete(&self.name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting namespace {}", self.name))?;
        Ok(())
    }
}

/// kube (ring) and object_store (aws-lc-rs) both link a rustls crypto provider; with two
/// present, rustls needs the process to pick one.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Waits until the pod is in one of `phases` and returns it.
pub async fn wait_for_pod_phase(pods: &Api<Pod>, name: &str, phases: &[&str]) -> Result<Pod> {
    wait_for(
        &format!("pod {name} to be {phases:?}"),
        DEFAULT_TIMEOUT,
        || async {
            let pod = pods.get(name).await?;
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            Ok(phases.contains(&phase.as_str()).then_some(pod))
        },
    )
    .await
}

/// The `kubetrain` binary the tests start: `$KUBETRAIN_BIN`, else the workspace's debug build.
pub fn kubetrain_bin() -> PathBuf {
    std::env::var_os("KUBETRAIN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/kubetrain")
        })
}

/// A file of `tests/data`.
pub fn test_data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name)
}

/// A port free on 127.0.0.1 now. The process node runs pods on the host's network, so
/// processes a test starts must not take a fixed port another test or environment may hold.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A token of the ServiceAccount `namespace/name` from the TokenRequest API (one hour, the
/// API server's own audience), as a workload in a pod would hold.
pub async fn service_account_token(client: &Client, namespace: &str, name: &str) -> Result<String> {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    let request: TokenRequest = serde_json::from_value(serde_json::json!({
        "spec": {"audiences": [], "expirationSeconds": 3600}
    }))?;
    let granted =
        Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), namespace)
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .with_context(|| format!("TokenRequest for ServiceAccount {namespace}/{name}"))?;
    granted
        .status
        .and_then(|s| s.token)
        .filter(|t| !t.is_empty())
        .context("the TokenRequest returned no token")
}

/// A client from a kubeconfig file.
pub async fn client_from(path: &Path) -> Result<Client> {
    install_crypto_provider();
    let kubeconfig = Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", path.display()))?;
    Client::try_from(config).context("building the API client")
}

/// Polls `check` until it returns `Some`, failing after `timeout` with what was awaited.
/// Errors from `check` are kept and reported if the deadline passes (the state may still be
/// settling), never swallowed.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if Instant::now() >= deadline {
            match last_error {
                Some(error) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {error:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// CPU seconds (user + system) used so far by each component of the test environment and
/// by `others` (name, PID), from `/proc/<pid>/stat`, children that exited included.
pub fn cpu_seconds(env: &TestEnv, others: &[(&str, u32)]) -> Vec<(String, f64)> {
    // clock ticks per second; 100 on every Linux this runs on.
    const TICKS: f64 = 100.0;
    let of_pid = |pid: u32| -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime, stime, and those of reaped children (the process node's trainers).
        let ticks: f64 = fields
            .get(11..15)?
            .iter()
            .map(|f| f.parse::<f64>().ok())
            .sum::<Option<f64>>()?;
        Some(ticks / TICKS)
    };
    let mut out: Vec<(String, f64)> = std::fs::read_dir(env.state_dir.join("pids"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.path().file_stem()?.to_string_lossy().into_owned();
            let text = std::fs::read_to_string(entry.path()).ok()?;
            let pid = text.split_whitespace().next()?.parse().ok()?;
            Some((name, of_pid(pid)?))
        })
        .collect();
    for (name, pid) in others {
        out.extend(of_pid(*pid).map(|s| ((*name).to_owned(), s)));
    }
    out.extend(of_pid(std::process::id()).map(|s| ("bench client".to_owned(), s)));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// How much each named counter of `after` grew since `before` (a name new in `after` from 0).
fn growth<'a>(
    before: &'a [(String, f64)],
    after: &'a [(String, f64)],
) -> impl Iterator<Item = (&'a str, f64)> {
    after.iter().map(|(name, end)| {
        let start = before
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, s)| *s);
        (name.as_str(), end - start)
    })
}

/// Prints the CPU seconds each component used between two [`cpu_seconds`] readings.
pub fn print_cpu(phase: &str, wall: Duration, before: &[(String, f64)], after: &[(String, f64)]) {
    let used: Vec<String> = growth(before, after)
        .map(|(name, used)| format!("{name} {used:.2}"))
        .collect();
    println!(
        "  CPU seconds during {phase} ({:.2}s wall, {} cores): {}",
        wall.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        used.join(", ")
    );
}

/// The API server's request counters (`apiserver_request_total`, all codes) by
/// "VERB resource[/subresource]", read with `kubectl get --raw /metrics`.
pub fn api_requests(env: &TestEnv) -> Result<Vec<(String, f64)>> {
    let out = env.kubectl(&["get", "--raw", "/metrics"])?;
    Ok(parse_api_requests(&String::from_utf8_lossy(&out.stdout)))
}

fn parse_api_requests(metrics: &str) -> Vec<(String, f64)> {
    let mut counts = std::collections::BTreeMap::<String, f64>::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| {
                    kv.strip_prefix(name)?
                        .strip_prefix("=\"")?
                        .strip_suffix('"')
                })
                .unwrap_or_default()
        };
        let mut key = format!("{} {}", label("verb"), label("resource"));
        if !label("subresource").is_empty() {
            key = format!("{key}/{}", label("subresource"));
        }
        *counts.entry(key).or_default() += value.trim().parse::<f64>().unwrap_or(0.0);
    }
    counts.into_iter().collect()
}

/// Prints the API requests made between two [`api_requests`] readings, most frequent first,
/// also per `per` (e.g. per run submitted).
pub fn print_api_requests(
    phase: &str,
    before: &[(String, f64)],
    after: &[(String, f64)],
    per: f64,
) {
    let mut diff: Vec<(&str, f64)> = growth(before, after).filter(|(_, n)| *n > 0.0).collect();
    diff.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = diff.iter().map(|(_, n)| n).sum();
    let list: Vec<String> = diff
        .iter()
        .filter(|(key, _)| !key.starts_with("WATCH"))
        .take(16)
        .map(|(key, n)| format!("{key} {:.2}", n / per))
        .collect();
    println!(
        "  API requests during {phase}: {total:.0} ({:.1} per run); per run: {}",
        total / per,
        list.join(", ")
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn api_request_counters_are_summed_by_verb_and_resource() {
        let text = r#"# HELP apiserver_request_total x
apiserver_request_total{code="201",component="apiserver",dry_run="",group="batch",resource="jobs",scope="resource",subresource="",verb="POST",version="v1"} 3
apiserver_request_total{code="409",component="apiserver",dry_run="",group="batch",resource="jobs",scope="resource",subresource="",verb="POST",version="v1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="",group="kubetrain.dev",resource="trainingruns",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 7
"#;
        assert_eq!(
            parse_api_requests(text),
            vec![
                ("APPLY trainingruns/status".to_owned(), 7.0),
                ("POST jobs".to_owned(), 4.0)
            ]
        );
    }

    #[tokio::test]
    async fn wait_for_returns_the_value_or_times_out_with_the_last_error() {
        let mut calls = 0;
        let got = wait_for("three calls", Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move { Ok((n >= 3).then_some(n)) }
        })
        .await
        .unwrap();
        assert_eq!(got, 3);

        let error = wait_for::<(), _, _>("never", Duration::from_millis(300), || async {
            bail!("still broken")
        })
        .await
        .unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("never") && message.contains("still broken"),
            "{message}"
        );
    }
}
