//! `kubetrain`: one binary, one image. Each subcommand wires a library crate to the outside
//! world (flags, environment, logging, exit codes) and does nothing else.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod client;
mod controller;
mod exec;
mod gateway;
mod in_cluster;
mod local;
mod logging;
mod shutdown;
mod train;

/// Model training behind an API, the Kubernetes way.
#[derive(Debug, Parser)]
#[command(name = "kubetrain", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the TrainingRun CustomResourceDefinition as YAML.
    Crd,
    /// Train a model on a CSV dataset and write it and its summary to storage.
    Train(train::TrainArgs),
    /// Run your own training program under kubetrain's contract (what a custom run's
    /// container runs): progress and metrics from its JSON lines, its model directory uploaded.
    Exec(Box<exec::ExecArgs>),
    /// Copy this binary into a directory (a custom run's init container does this).
    CopyTo(exec::CopyToArgs),
    /// Predict a CSV dataset with a trained model (CSV to stdout).
    Predict(train::PredictArgs),
    /// Run the controller: reconcile TrainingRuns into Jobs and keep their status true.
    Controller(controller::ControllerArgs),
    /// Serve the REST API: TrainingRuns over HTTP, authorized by Kubernetes RBAC.
    Gateway(Box<gateway::GatewayArgs>),
    /// Serve the same REST API on this machine: runs in SQLite, training in local processes.
    Local(Box<local::LocalArgs>),
    /// Submit a TrainingRun to a gateway and follow it to the end with a progress bar.
    Submit(Box<client::SubmitArgs>),
    /// Show one TrainingRun of a gateway.
    Get(client::GetArgs),
    /// List the TrainingRuns of a gateway.
    List(client::ListArgs),
    /// Cancel a TrainingRun: its training stops and it ends Cancelled.
    Cancel(client::CancelArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    // kube (ring) and object_store (aws-lc-rs) both link a rustls provider; name the one to use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Crd => print_crd(),
        Command::Train(args) => in_cluster::train(args).await,
        Command::Exec(args) => exec::exec(*args).await,
        Command::CopyTo(args) => exec::copy_to(args),
        Command::Predict(args) => train::predict(args),
        Command::Controller(args) => controller::run(args).await,
        Command::Gateway(args) => gateway::run(*args).await,
        Command::Local(args) => local::run(*args).await,
        Command::Submit(args) => client::submit(*args).await,
        Command::Get(args) => client::get(args).await,
        Command::List(args) => client::list(args).await,
        Command::Cancel(args) => client::cancel(args).await,
    }
}

fn print_crd() -> ExitCode {
    match kubetrain_api::crd_yaml() {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
