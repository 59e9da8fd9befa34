//! `kubetrain gateway`: flags and environment in, the REST API over TrainingRuns out.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use kubetrain_api::{SecretReference, StorageSpec};
use kubetrain_gateway::{
    AppState, Authorizer, GatewayConfig, Limits, NoAuth, Runs, StaticTokens, check_no_auth_address,
};
use kubetrain_gateway_kube::{KubeAuth, KubeRuns};
use kubetrain_storage::Location;

/// Flags of `kubetrain gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Address of the API (and of /healthz, /readyz, /metrics, /openapi.json).
    #[arg(long, env = "KUBETRAIN_GATEWAY_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Who may do what: kubernetes (TokenReview + SubjectAccessReview against the caller's own
    /// RBAC), static (a token file, see --tokens) or none (loopback only).
    #[arg(long, env = "KUBETRAIN_GATEWAY_AUTH", value_enum, default_value_t = AuthMode::Kubernetes)]
    auth: AuthMode,
    /// With --auth static: YAML `tokens: [{token, user, namespaces: [ml, "*"]}]`.
    #[arg(long, env = "KUBETRAIN_GATEWAY_TOKENS", value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Namespace the seed routes (`POST /train/`, `GET /status/{id}`) create and read runs in.
    #[arg(
        long,
        env = "KUBETRAIN_GATEWAY_NAMESPACE",
        value_name = "NS",
        default_value = "default"
    )]
    namespace: String,
    /// Cache (and serve) the runs of this namespace only; default: every namespace.
    #[arg(long, env = "KUBETRAIN_GATEWAY_WATCH_NAMESPACE", value_name = "NS")]
    watch_namespace: Option<String>,
    /// Where uploaded datasets and the seed route's inline data go: s3://bucket/prefix/ or
    /// file:///dir/. Without it those routes answer 501.
    #[arg(long, env = "KUBETRAIN_STAGING_URI", value_name = "URI")]
    staging_uri: Option<String>,
    /// Secret (in the seed namespace, keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) that
    /// runs created by `POST /train/` name in `spec.storage.secretRef`: their trainer pods read
    /// the staged data and write the model with it.
    #[arg(long, env = "KUBETRAIN_GATEWAY_STORAGE_SECRET", value_name = "NAME")]
    storage_secret: Option<String>,
    /// S3 endpoint of the gateway's own storage access, also set as `spec.storage.endpoint` on
    /// runs created by `POST /train/`.
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    storage_endpoint: Option<String>,
    /// S3 region of the gateway's own storage access, also set as `spec.storage.region` on runs
    /// created by `POST /train/`.
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    storage_region: Option<String>,
    /// Largest JSON request body in bytes (413 above it).
    #[arg(long, env = "KUBETRAIN_GATEWAY_MAX_BODY_BYTES", value_name = "BYTES")]
    max_body_bytes: Option<usize>,
    /// Largest dataset upload in bytes (413 above it).
    #[arg(long, env = "KUBETRAIN_GATEWAY_MAX_UPLOAD_BYTES", value_name = "BYTES")]
    max_upload_bytes: Option<u64>,
    /// Seconds a non-streaming request may take (504 after it).
    #[arg(
        long,
        env = "KUBETRAIN_GATEWAY_REQUEST_TIMEOUT",
        value_name = "SECONDS"
    )]
    request_timeout: Option<u64>,
    /// Requests served at once; more are answered 503 with Retry-After.
    #[arg(long, env = "KUBETRAIN_GATEWAY_MAX_CONCURRENCY", value_name = "N")]
    max_concurrency: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthMode {
    Kubernetes,
    Static,
    None,
}

/// Serve the gateway until SIGTERM or SIGINT, then drain.
pub async fn run(args: GatewayArgs) -> ExitCode {
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: GatewayArgs) -> Result<()> {
    let limits = limits(&args)?;
    let staging = args
        .staging_uri
        .as_deref()
        .map(|uri| Location::parse("--staging-uri", uri))
        .transpose()?;
    let seed_storage = seed_storage(&args)?;
    // Check every flag before reaching out to the cluster.
    let static_tokens = match args.auth {
        AuthMode::Static => {
            let path = args
                .tokens
                .as_deref()
                .context("--auth static needs --tokens FILE (or KUBETRAIN_GATEWAY_TOKENS)")?;
            Some(StaticTokens::from_file(path)?)
        }
        AuthMode::None => {
            check_no_auth_address(args.listen).map_err(anyhow::Error::msg)?;
            None
        }
        AuthMode::Kubernetes => None,
    };
    let client = kube::Client::try_default()
        .await
        .context("cannot reach the Kubernetes API server (the gateway keeps runs there)")?;
    let auth: Arc<dyn Authorizer> = match (args.auth, static_tokens) {
        (AuthMode::Kubernetes, _) => Arc::new(KubeAuth::new(client.clone())),
        (AuthMode::Static, Some(tokens)) => Arc::new(tokens),
        (AuthMode::Static, None) => bail!("--auth static needs --tokens FILE"),
        (AuthMode::None, _) => {
            tracing::warn!(listen = %args.listen, "--auth none: every caller may do everything");
            Arc::new(NoAuth)
        }
    };
    let backend: Arc<dyn Runs> = Arc::new(KubeRuns::start(client, args.watch_namespace.clone()));
    let config = GatewayConfig {
        staging,
        seed_namespace: args.namespace.clone(),
        seed_storage,
        limits,
    };
    tracing::info!(?config, auth = ?args.auth, watch_namespace = ?args.watch_namespace, "starting the gateway");
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, ui = kubetrain_gateway::UI_PATH, "serving the kubetrain API and its web UI");
    let router = kubetrain_gateway::app(AppState::new(backend, auth, config));
    kubetrain_gateway::serve(listener, router, crate::shutdown::signal())
        .await
        .context("serving the gateway")?;
    tracing::info!("gateway stopped");
    Ok(())
}

/// `spec.storage` of seed runs: `None` unless a flag names part of it.
fn seed_storage(args: &GatewayArgs) -> Result<Option<StorageSpec>> {
    let secret = nonblank(&args.storage_secret);
    let endpoint = nonblank(&args.storage_endpoint);
    let region = nonblank(&args.storage_region);
    if let Some(endpoint) = endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        bail!(
            "--storage-endpoint (AWS_ENDPOINT_URL) must be an http:// or https:// URL, got {endpoint:?}"
        );
    }
    if let Some(problem) = secret.and_then(kubetrain_api::names::subdomain_problem) {
        bail!(
            "--storage-secret (KUBETRAIN_GATEWAY_STORAGE_SECRET) is not a Secret name: {problem}"
        );
    }
    if secret.is_none() && endpoint.is_none() && region.is_none() {
        return Ok(None);
    }
    Ok(Some(StorageSpec {
        secret_ref: secret.map(|name| SecretReference {
            name: name.to_owned(),
        }),
        endpoint: endpoint.map(str::to_owned),
        region: region.map(str::to_owned),
    }))
}

/// The flag's value unless unset or blank (an empty environment variable means unset).
fn nonblank(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

fn limits(args: &GatewayArgs) -> Result<Limits> {
    let mut limits = Limits::default();
    if let Some(bytes) = args.max_body_bytes {
        limits.json_body_bytes = bytes;
    }
    if let Some(bytes) = args.max_upload_bytes {
        limits.upload_bytes = bytes;
    }
    if let Some(seconds) = args.request_timeout {
        if seconds == 0 {
            bail!("--request-timeout must be at least 1 second");
        }
        limits.request_timeout = Duration::from_secs(seconds);
    }
    if let Some(n) = args.max_concurrency {
        if n == 0 {
            bail!("--max-concurrency must be at least 1");
        }
        limits.max_concurrent_requests = n;
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        gateway: GatewayArgs,
    }

    /// Flags given explicitly win over the environment (AWS_* may be set where tests run).
    fn storage(flags: &[&str]) -> Result<Option<StorageSpec>> {
        let mut argv = vec!["gateway"];
        argv.extend(flags);
        seed_storage(&Cli::try_parse_from(argv).unwrap().gateway)
    }

    #[test]
    fn storage_flags_make_the_seed_runs_storage() {
        let spec = storage(&[
            "--storage-secret=s3-creds",
            "--storage-endpoint=http://seaweedfs.storage:8333",
            "--storage-region=eu-west-1",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(spec.secret_ref.unwrap().name, "s3-creds");
        assert_eq!(
            spec.endpoint.as_deref(),
            Some("http://seaweedfs.storage:8333")
        );
        assert_eq!(spec.region.as_deref(), Some("eu-west-1"));

        let blank = [
            "--storage-secret=",
            "--storage-endpoint=",
            "--storage-region= ",
        ];
        assert_eq!(storage(&blank).unwrap(), None);

        let error = storage(&["--storage-secret=S3_Creds"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--storage-secret"), "{error}");
        let error = storage(&["--storage-endpoint=seaweedfs:8333"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--storage-endpoint"), "{error}");
    }
}
