//! `kubetrain controller`: flags and environment in, the reconcile loop out.

use std::process::ExitCode;

use clap::Args;
use kubetrain_controller::JobSettings;

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
}

/// Run the controller until SIGTERM or SIGINT.
pub async fn run(args: ControllerArgs) -> ExitCode {
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: cannot reach the Kubernetes API server: {error}");
            return ExitCode::FAILURE;
        }
    };
    let settings = JobSettings {
        trainer_image: args.trainer_image,
        storage_endpoint: args.storage_endpoint,
        storage_region: args.storage_region,
    };
    tracing::info!(?settings, "starting the TrainingRun controller");
    kubetrain_controller::run(client, settings).await;
    ExitCode::SUCCESS
}
