//! `kubetrain`: one binary, one image. Each subcommand wires a library crate to the outside
//! world (flags, environment, logging, exit codes) and does nothing else.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod logging;
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
    /// Predict a CSV dataset with a trained model (CSV to stdout).
    Predict(train::PredictArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    match cli.command {
        Command::Crd => print_crd(),
        Command::Train(args) => train::train(args),
        Command::Predict(args) => train::predict(args),
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
