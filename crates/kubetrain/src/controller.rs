//! `kubetrain controller`: flags and environment in, the reconcile loop out.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use kubetrain_controller::{JobSettings, Options};

/// Flags of `kubetrain controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Trainer image used when a run names none.
    #[arg(long, env = "KUBETRAIN_TRAINER_IMAGE", default_value = concat!("ghcr.io/kubetrain/kubetrain:", env!("CARGO_PKG_VERSION")))]
    trainer_image: String,
    /// S3 endpoint passed to trainers whose run names none.
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    storage_endpoint: Option<String>,
    /// S3 region passed to trainers whose run names none.
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    storage_region: Option<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "KUBETRAIN_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Compete for the Lease `kubetrain-controller` so that only one replica reconciles.
    #[arg(long, env = "KUBETRAIN_LEADER_ELECTION")]
    leader_election: bool,
    /// Namespace of the Lease (default: the Pod's own, from POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", value_name = "NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// This replica's identity in the Lease (default: the Pod's name, from POD_NAME).
    #[arg(long, env = "POD_NAME", value_name = "NAME")]
    identity: Option<String>,
    /// Runs reconciled at once.
    #[arg(long, env = "KUBETRAIN_CONCURRENCY", default_value_t = 64)]
    concurrency: u16,
}

/// Run the controller until SIGTERM or SIGINT.
pub async fn run(args: ControllerArgs) -> ExitCode {
    let leader_election = if args.leader_election {
        let Some(namespace) = args.leader_election_namespace else {
            eprintln!(
                "error: --leader-election needs --leader-election-namespace (or POD_NAMESPACE)"
            );
            return ExitCode::from(2);
        };
        let identity = args
            .identity
            .unwrap_or_else(|| format!("kubetrain-controller-{}", std::process::id()));
        Some((namespace, identity))
    } else {
        None
    };
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: cannot reach the Kubernetes API server: {error}");
            return ExitCode::FAILURE;
        }
    };
    let options = Options {
        settings: JobSettings {
            trainer_image: args.trainer_image,
            storage_endpoint: args.storage_endpoint,
            storage_region: args.storage_region,
        },
        listen: args.listen,
        leader_election,
        concurrency: args.concurrency,
    };
    tracing::info!(?options, "starting the TrainingRun controller");
    match kubetrain_controller::run(client, options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
