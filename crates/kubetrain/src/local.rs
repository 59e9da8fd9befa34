//! `kubetrain local`: the gateway's REST API on this machine, with runs in SQLite and training
//! in local `kubetrain train` processes (see `kubetrain_local`). Wiring only.
//!
//! On SIGTERM or SIGINT the server stops accepting requests and drains those in flight, then
//! the pool kills the trainers still running and marks their runs Failed with reason
//! `Interrupted` (the same as after a crash); queued runs stay queued and start on the next
//! `kubetrain local` over the same data directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use kubetrain_api::invocation::StorageEnv;
use kubetrain_gateway::{
    AppState, Authorizer, GatewayConfig, NoAuth, StaticTokens, UI_PATH, check_no_auth_address,
};
use kubetrain_local::{Config, LocalRuns};
use kubetrain_storage::Location;

/// Flags of `kubetrain local`.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// Address of the API.
    #[arg(long, env = "KUBETRAIN_LOCAL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the database (and, by default, models and uploaded data) live; default
    /// $XDG_DATA_HOME/kubetrain or ~/.local/share/kubetrain.
    #[arg(long, env = "KUBETRAIN_LOCAL_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Trainer processes at most at once; default: the number of cores.
    #[arg(long, env = "KUBETRAIN_LOCAL_WORKERS", value_name = "N")]
    workers: Option<usize>,
    /// none (loopback only) or static (a token file, see --tokens).
    #[arg(long, env = "KUBETRAIN_LOCAL_AUTH", value_enum, default_value_t = AuthMode::None)]
    auth: AuthMode,
    /// With --auth static: YAML `tokens: [{token, user, namespaces: [ml, "*"]}]`.
    #[arg(long, env = "KUBETRAIN_LOCAL_TOKENS", value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Where uploaded datasets, the seed route's data and its models go: file:///dir/ or
    /// s3://bucket/prefix/ (credentials from AWS_*); default file://<data-dir>/storage/.
    #[arg(long, env = "KUBETRAIN_STORAGE_URI", value_name = "URI")]
    storage_uri: Option<String>,
    /// S3 endpoint for trainers whose run names none (MinIO, SeaweedFS, ...).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    storage_endpoint: Option<String>,
    /// S3 region for trainers whose run names none.
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    storage_region: Option<String>,
    /// Parse every run's data again instead of keeping parsed datasets in
    /// <data-dir>/cache/datasets (at most 1 GiB) for later runs on the same, unchanged data.
    #[arg(long, env = "KUBETRAIN_LOCAL_NO_DATASET_CACHE")]
    no_dataset_cache: bool,
    /// The kubetrain binary trainers run as; default: this one.
    #[arg(
        long,
        env = "KUBETRAIN_LOCAL_TRAINER",
        value_name = "PATH",
        hide = true
    )]
    trainer: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthMode {
    None,
    Static,
}

/// Serve until SIGTERM or SIGINT, then drain and stop the pool.
pub async fn run(args: LocalArgs) -> ExitCode {
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn default_data_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("kubetrain"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither XDG_DATA_HOME nor HOME is set: pass --data-dir DIR")?;
    Ok(PathBuf::from(home).join(".local/share/kubetrain"))
}

async fn serve(args: LocalArgs) -> Result<()> {
    let auth: Arc<dyn Authorizer> = match args.auth {
        AuthMode::None => {
            check_no_auth_address(args.listen).map_err(anyhow::Error::msg)?;
            Arc::new(NoAuth)
        }
        AuthMode::Static => {
            let path = args
                .tokens
                .as_deref()
                .context("--auth static needs --tokens FILE (or KUBETRAIN_LOCAL_TOKENS)")?;
            Arc::new(StaticTokens::from_file(path)?)
        }
    };
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", data_dir.display()))?;
    let storage_uri = match args.storage_uri {
        Some(uri) => uri,
        None => {
            let dir = data_dir.join("storage");
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            format!("file://{}/", dir.display())
        }
    };
    let staging = Location::parse("--storage-uri", &storage_uri)?;

    let mut config = Config::new(&data_dir)?;
    if let Some(workers) = args.workers {
        if workers == 0 {
            bail!("--workers must be at least 1");
        }
        config.workers = workers;
    }
    if let Some(trainer) = args.trainer {
        config.trainer = trainer;
    }
    if args.no_dataset_cache {
        config.dataset_cache = None;
    }
    config.storage = StorageEnv {
        endpoint: args.storage_endpoint,
        region: args.storage_region,
    };
    let workers = config.workers;
    let runs = LocalRuns::open(config).await?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // For people: where to point a browser (a wildcard address is reachable as loopback).
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    eprintln!(
        "kubetrain local: the REST API at http://{host}/, the web UI at http://{host}{UI_PATH}"
    );
    tracing::info!(
        %addr,
        data_dir = %data_dir.display(),
        storage = %storage_uri,
        workers,
        "serving the kubetrain API locally"
    );
    let gateway = GatewayConfig {
        staging: Some(staging),
        ..GatewayConfig::default()
    };
    let router = kubetrain_gateway::app(AppState::new(Arc::new(runs.clone()), auth, gateway));
    let served = kubetrain_gateway::serve(listener, router, crate::shutdown::signal()).await;
    runs.shutdown().await;
    served.context("serving the local API")?;
    tracing::info!("stopped");
    Ok(())
}
