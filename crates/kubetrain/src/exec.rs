//! `kubetrain exec -- COMMAND ARGS...`: a custom run's program under the contract
//! (`kubetrain_exec`), reporting into the run's status (in a Job) or as JSON lines on stdout
//! (for `kubetrain local`); and `kubetrain copy-to DIR`, with which a custom run's init
//! container puts this binary into the Pod.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use kubetrain_api::invocation::{ENV_MODEL_DIR, ENV_RUN_NAME, ENV_RUN_NAMESPACE};
use kubetrain_api::{Iteration, TrainerError, TrainerEvent, exit_code};
use kubetrain_controller::reporter::StatusReporter;
use kubetrain_exec::ExecConfig;

/// Run a training program under kubetrain's custom-code contract: download the dataset, relay
/// the program's JSON-lines progress and metrics, upload what it writes into
/// KUBETRAIN_MODEL_DIR after it exits 0, map its exit code (65 bad input, 75 transient,
/// anything else 1) and forward SIGTERM and SIGINT to it.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Where progress and results go: kubernetes (the status of the run named by
    /// KUBETRAIN_RUN_NAME / KUBETRAIN_RUN_NAMESPACE) or stdout (kubetrain's JSON-lines events).
    #[arg(long, value_enum, default_value_t = Report::Stdout)]
    report: Report,
    /// Download the dataset here before the program starts and hand it the copies in
    /// KUBETRAIN_DATA_FILE and KUBETRAIN_VALIDATION_DATA_FILE; unset, the program reads
    /// KUBETRAIN_DATA itself.
    #[arg(long, value_name = "DIR")]
    download_dir: Option<PathBuf>,
    /// The dataset's URI.
    #[arg(long, env = "KUBETRAIN_DATA", value_name = "URI")]
    data: String,
    /// A separate validation dataset's URI.
    #[arg(long, env = "KUBETRAIN_VALIDATION_DATA", value_name = "URI")]
    validation_data: Option<String>,
    /// The prefix the model directory is uploaded under.
    #[arg(long, env = "KUBETRAIN_OUT", value_name = "URI")]
    out: String,
    /// The directory the program writes its model files into (empty or absent at the start).
    #[arg(long, env = ENV_MODEL_DIR, value_name = "DIR")]
    model_dir: PathBuf,
    /// The program and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Report {
    Kubernetes,
    Stdout,
}

/// Copy this binary into a directory, as `kubetrain` (a custom run's init container does this
/// so the user's image can run `kubetrain exec` without containing it).
#[derive(Debug, Args)]
pub struct CopyToArgs {
    /// The directory, e.g. a shared emptyDir.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// Run `kubetrain exec`.
pub async fn exec(args: ExecArgs) -> ExitCode {
    let config = ExecConfig {
        command: args.command,
        data: args.data,
        validation_data: args.validation_data,
        download_dir: args.download_dir,
        out: args.out,
        model_dir: args.model_dir,
        echo_events: args.report == Report::Kubernetes,
    };
    let outcome = match args.report {
        Report::Stdout => {
            let print = |iteration: &Iteration| {
                println!("{}", TrainerEvent::Progress(iteration.clone()).to_line());
            };
            let outcome = kubetrain_exec::run(&config, &print).await;
            if let Ok(completed) = &outcome {
                let event = TrainerEvent::Completed {
                    results: Box::new(completed.results.clone()),
                    summary: completed.summary.clone(),
                };
                println!("{}", event.to_line());
            }
            outcome
        }
        Report::Kubernetes => to_status(&config).await,
    };
    match outcome {
        Ok(completed) => {
            eprintln!("model: {}", completed.results.model.uri);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}", error.message);
            ExitCode::from(u8::try_from(error.exit_code).unwrap_or(1))
        }
    }
}

/// Run, reporting into the status of the run the environment names.
async fn to_status(config: &ExecConfig) -> Result<kubetrain_exec::Completed, TrainerError> {
    let (Ok(name), Ok(namespace)) = (
        std::env::var(ENV_RUN_NAME),
        std::env::var(ENV_RUN_NAMESPACE),
    ) else {
        return Err(TrainerError::new(
            kubetrain_api::ErrorClass::BadInput,
            format!("--report kubernetes needs {ENV_RUN_NAME} and {ENV_RUN_NAMESPACE}"),
        ));
    };
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            // The program does not need the API server: run anyway, the log keeps the result.
            tracing::warn!(%error, "cannot reach the API server; status will not be reported");
            return kubetrain_exec::run(config, &|_: &Iteration| {}).await;
        }
    };
    let reporter = StatusReporter::start(client, &namespace, &name);
    let forwarder = reporter.sink();
    let outcome = kubetrain_exec::run(config, &|i: &Iteration| forwarder.report(i)).await;
    let reported = match &outcome {
        Ok(completed) => reporter.succeeded(&completed.results).await,
        Err(error) => reporter.failed(error).await,
    };
    if let Err(error) = reported {
        tracing::warn!(%error, run = %name, "could not write the result into the run's status");
    }
    outcome
}

/// Run `kubetrain copy-to`.
pub fn copy_to(args: CopyToArgs) -> ExitCode {
    let copy = || -> std::io::Result<PathBuf> {
        let me = std::env::current_exe()?;
        std::fs::create_dir_all(&args.dir)?;
        let target = args.dir.join("kubetrain");
        // Copy under another name and rename, so a reader never sees half a binary.
        let partial = args.dir.join(".kubetrain.partial");
        std::fs::copy(&me, &partial)?;
        std::fs::rename(&partial, &target)?;
        Ok(target)
    };
    match copy() {
        Ok(target) => {
            eprintln!("copied kubetrain to {}", target.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "error: copying kubetrain into {}: {error}",
                args.dir.display()
            );
            ExitCode::from(exit_code::INTERNAL as u8)
        }
    }
}
