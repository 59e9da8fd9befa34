//! `kubetrain train` inside a TrainingRun's Job: the same training, plus progress, results and
//! errors written into the run's status (the Job sets `KUBETRAIN_RUN_NAME` and
//! `KUBETRAIN_RUN_NAMESPACE`).

use std::process::ExitCode;

use k8s_openapi::jiff::Timestamp;
use kubetrain_api::invocation::{ENV_RUN_NAME, ENV_RUN_NAMESPACE};
use kubetrain_api::{Iteration, TrainerError};
use kubetrain_controller::reporter::{ProgressForwarder, StatusReporter};
use kubetrain_trainer::ProgressSink;

use crate::train::{self, TrainArgs};

/// Train, reporting into the run named by the environment when there is one.
pub async fn train(args: TrainArgs) -> ExitCode {
    let (Ok(name), Ok(namespace)) = (
        std::env::var(ENV_RUN_NAME),
        std::env::var(ENV_RUN_NAMESPACE),
    ) else {
        return blocking(move || train::train(args)).await;
    };
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            // Training does not need the API server: train anyway, the log keeps the result.
            tracing::warn!(%error, "cannot reach the API server; status will not be reported");
            return blocking(move || train::train(args)).await;
        }
    };
    let reporter = StatusReporter::start(client, &namespace, &name);
    let sink = ToStatus(reporter.sink());
    let (args, result) = match tokio::task::spawn_blocking(move || {
        let result = train::train_with(&args, &sink);
        (args, result)
    })
    .await
    {
        Ok(done) => done,
        Err(error) => {
            eprintln!("error: training crashed: {error}");
            return ExitCode::from(kubetrain_api::exit_code::INTERNAL as u8);
        }
    };
    let reported = match &result {
        Ok(summary) => reporter.succeeded(&summary.results(Timestamp::now())).await,
        Err(error) => {
            let report = TrainerError::new(error.class(), error.to_string());
            reporter.failed(&report).await
        }
    };
    if let Err(error) = reported {
        tracing::warn!(%error, run = %name, "could not write the result into the run's status");
    }
    train::finish(&args, &result)
}

/// The trainer's iterations, forwarded into the run's status.
struct ToStatus(ProgressForwarder);

impl ProgressSink for ToStatus {
    fn report(&self, iteration: &Iteration) {
        self.0.report(iteration);
    }
}

async fn blocking(work: impl FnOnce() -> ExitCode + Send + 'static) -> ExitCode {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or(ExitCode::from(kubetrain_api::exit_code::INTERNAL as u8))
}
