//! The running test environment (read from `tests/cluster/up.sh`'s env file), namespaces
//! owned by one test, and the programs, files and credentials tests use.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

use crate::wait::{DEFAULT_TIMEOUT, wait_for};

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
        crate::cli::run(self, "kubectl", args, None)
    }
}

/// A namespace owned by one test.
pub struct TestNamespace {
    /// The namespace's name.
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
