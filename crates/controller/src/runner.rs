//! Wiring: caches, the kube-runtime Controller, the health/metrics server and leader election.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::{Config, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use kubetrain_api::TrainingRun;
use kubetrain_api::meta::strip_managed_fields;
use prometheus_client::registry::Registry;
use tracing::{info, warn};

use crate::job::{JobSettings, RUN_LABEL};
use crate::job_view::JobView;
use crate::leader::{self, LeaderError};
use crate::metrics::Metrics;
use crate::reconcile::{Context, error_policy, reconcile};
use crate::server::{self, Health};

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// What shapes every Job.
    pub settings: JobSettings,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    pub listen: SocketAddr,
    /// Compete for a Lease in this namespace under this identity; `None` runs unconditionally.
    pub leader_election: Option<(String, String)>,
    /// Runs reconciled at once.
    pub concurrency: u16,
}

/// Errors that stop the controller.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The health/metrics address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Leader election failed or the lease was lost.
    #[error(transparent)]
    Leader(#[from] LeaderError),
}

/// Run until SIGTERM/SIGINT (or until the lease is lost).
pub async fn run(client: Client, options: Options) -> Result<(), RunError> {
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let health = Health {
        ready: Arc::new(AtomicBool::new(false)),
        runs: Arc::new(std::sync::RwLock::new(None)),
        registry: Arc::new(registry),
        metrics: metrics.clone(),
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| RunError::Listen {
            addr: options.listen,
            source,
        })?;
    info!(addr = %options.listen, "serving /healthz, /readyz and /metrics");
    let app = server::app(health.clone());
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            warn!(%error, "health server stopped");
        }
    });

    let work = || reconcile_all(client.clone(), options.clone(), metrics, health.clone());
    match &options.leader_election {
        None => {
            work().await;
            Ok(())
        }
        Some((namespace, identity)) => {
            let ready = health.ready.clone();
            leader::lead(
                client.clone(),
                namespace,
                identity,
                move || ready.store(true, Ordering::Relaxed),
                work,
            )
            .await
            .map_err(RunError::from)
        }
    }
}

async fn reconcile_all(client: Client, options: Options, metrics: Arc<Metrics>, health: Health) {
    let labelled = watcher::Config::default().labels(RUN_LABEL);

    let (runs, runs_writer) = reflector::store::<TrainingRun>();
    let run_events = watcher(
        Api::<TrainingRun>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(|run: &mut TrainingRun| strip_managed_fields(run))
    .reflect(runs_writer)
    .touched_objects();
    let (jobs, jobs_writer) = reflector::store::<JobView>();
    let job_events = watcher(Api::<JobView>::all(client.clone()), labelled.clone())
        .default_backoff()
        .modify(|job: &mut JobView| strip_managed_fields(job))
        .reflect(jobs_writer)
        .touched_objects();
    let (pods, pods_writer) = reflector::store::<Pod>();
    let pod_events = watcher(Api::<Pod>::all(client.clone()), labelled)
        .default_backoff()
        .modify(|pod: &mut Pod| strip_managed_fields(pod))
        .reflect(pods_writer)
        .touched_objects();

    let context = Arc::new(Context::new(
        client,
        options.settings,
        jobs.clone(),
        pods.clone(),
        metrics,
    ));
    if let Ok(mut slot) = health.runs.write() {
        *slot = Some(runs.clone());
    }
    let controller = Controller::for_stream(run_events, runs.clone())
        .owns_stream(job_events)
        .watches_stream(pod_events, |pod: Pod| {
            let run = pod.labels().get(RUN_LABEL).cloned()?;
            Some(ObjectRef::new(&run).within(&pod.namespace()?))
        })
        .with_config(Config::default().concurrency(options.concurrency))
        .shutdown_on_signal();

    // Ready once every cache has its first full list: a restarted controller then sees the
    // Jobs it created before and never creates a second one.
    let ready = health.ready.clone();
    let caches = async move {
        let (a, b, c) = tokio::join!(
            runs.wait_until_ready(),
            jobs.wait_until_ready(),
            pods.wait_until_ready()
        );
        if a.is_ok() && b.is_ok() && c.is_ok() {
            ready.store(true, Ordering::Relaxed);
            info!("caches synced; reconciling");
        }
    };
    let reconciling =
        controller
            .run(reconcile, error_policy, context)
            .for_each(|result| async move {
                if let Err(error) = result {
                    tracing::debug!(%error, "reconcile failed");
                }
            });
    tokio::join!(caches, reconciling);
}
