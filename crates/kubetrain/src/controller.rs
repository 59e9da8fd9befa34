//! `kubetrain controller`: flags and environment in, the reconcile loop out.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
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
    /// CPU request of trainers whose run sets no CPU request or limit ("" for none). With
    /// requests the scheduler starts only as many runs as the nodes have room for and
    /// queues the rest; without, every run starts at once as a BestEffort Pod.
    #[arg(long, env = "KUBETRAIN_DEFAULT_CPU_REQUEST", default_value = "1", value_parser = quantity)]
    default_cpu_request: String,
    /// Memory request of trainers whose run sets no memory request or limit ("" for none).
    #[arg(long, env = "KUBETRAIN_DEFAULT_MEMORY_REQUEST", default_value = "256Mi", value_parser = quantity)]
    default_memory_request: String,
    /// Runs reconciled at once.
    #[arg(long, env = "KUBETRAIN_CONCURRENCY", default_value_t = 32)]
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
            default_requests: [
                ("cpu", args.default_cpu_request),
                ("memory", args.default_memory_request),
            ]
            .into_iter()
            .filter(|(_, quantity)| !quantity.is_empty())
            .map(|(name, quantity)| (name.to_owned(), Quantity(quantity)))
            .collect(),
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

/// A Kubernetes resource quantity (`1`, `500m`, `1.5`, `256Mi`, `1e3`, `2G`), or "" for none.
fn quantity(text: &str) -> Result<String, String> {
    const SUFFIXES: [&str; 15] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ];
    let text = text.trim();
    let number = SUFFIXES
        .iter()
        .find_map(|suffix| text.strip_suffix(suffix))
        .unwrap_or(text);
    let valid = text.is_empty()
        || (number
            .parse::<f64>()
            .is_ok_and(|n| n.is_finite() && n >= 0.0)
            && number.starts_with(|c: char| c.is_ascii_digit() || c == '.'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a Kubernetes quantity (examples: 1, 500m, 256Mi, 2Gi; \"\" for none)"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::quantity;

    #[test]
    fn quantities_are_checked_before_any_job_carries_them() {
        for ok in ["1", "500m", "1.5", "256Mi", "2Gi", "1e3", "100k", ""] {
            assert_eq!(quantity(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in ["one", "-1", "1 Gi", "1GB", "Mi", "inf"] {
            let error = quantity(bad).unwrap_err();
            assert!(
                error.contains("not a Kubernetes quantity"),
                "{bad}: {error}"
            );
        }
    }
}
