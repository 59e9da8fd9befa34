//! `kubetrain-testnode`: a test stand-in for kubelet and a container runtime. It registers a
//! Node, keeps its Lease fresh, and runs every Pod bound to it as local processes. See
//! tests/README.md for what it does and does not do.

mod config;
mod env;
mod events;
mod launch;
mod logs_server;
mod node;
mod pod;
mod process;
mod status;
mod supervisor;
mod token;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::config::{Args, Capacity, ImageMap};
use crate::launch::NodeContext;
use crate::token::ApiServer;

#[tokio::main]
async fn main() -> Result<()> {
    // One TLS provider for the process, also when a shared build enables a second one
    // (reqwest's aws-lc-rs next to kube's ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let capacity = Capacity::from_args(&args)?;
    let images = ImageMap::from_args(&args)?;

    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", args.kubeconfig.display()))?;
    let api = api_server(&kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("loading the node's kubeconfig")?;
    let client = kube::Client::try_from(config).context("building the API client")?;

    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("creating {}", args.work_dir.display()))?;
    if args.kubelet_port != 0 {
        let tls = logs_server::Tls {
            cert: args
                .serving_cert
                .clone()
                .context("--kubelet-port needs --serving-cert")?,
            key: args
                .serving_key
                .clone()
                .context("--kubelet-port needs --serving-key")?,
            client_ca: args
                .client_ca
                .clone()
                .context("--kubelet-port needs --client-ca")?,
        };
        logs_server::start(args.kubelet_port, &tls, args.work_dir.clone()).await?;
    }
    node::register(&client, &args.node_name, &capacity, args.kubelet_port).await?;
    let heartbeat = tokio::spawn(node::heartbeat(
        client.clone(),
        args.node_name.clone(),
        capacity.clone(),
        args.kubelet_port,
    ));

    let ctx = Arc::new(NodeContext {
        events: events::Events::new(client.clone(), &args.node_name),
        client,
        api,
        images,
        work_dir: args.work_dir.clone(),
        host_path: std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    });
    let stop_deadline = Duration::from_secs(35);
    supervisor::run(ctx, &args.node_name, shutdown_signal(), stop_deadline).await;
    heartbeat.abort();
    Ok(())
}

/// The API server URL and CA file of the node's kubeconfig, reused for the pods' kubeconfigs.
fn api_server(kubeconfig: &Kubeconfig) -> Result<ApiServer> {
    let context_name = kubeconfig.current_context.as_deref().unwrap_or_default();
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .context("the node's kubeconfig has no current context")?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .context("the node's kubeconfig has no cluster for its current context")?;
    Ok(ApiServer {
        url: cluster
            .server
            .clone()
            .context("the node's kubeconfig has no server")?,
        ca_file: cluster.certificate_authority.as_ref().map(Into::into),
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::warn!("cannot listen for SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down");
}
