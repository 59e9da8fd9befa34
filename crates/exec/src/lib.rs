//! `kubetrain exec -- COMMAND ARGS...`: the user's own training program (`spec.custom`) run
//! under the custom-code contract, version [`kubetrain_api::custom::CONTRACT_VERSION`].
//!
//! One attempt is a pipeline: [`inputs`] downloads the dataset next to the program, [`program`]
//! runs it (JSON lines relayed, stderr's tail kept, SIGTERM forwarded), [`outcome`] maps how it
//! ended to the trainer's exit codes, and [`upload`] stores the model directory under the
//! output URI with every file's digest. Where the progress and results go (the run's status,
//! or stdout for `kubetrain local`) is the caller's choice.

use std::path::PathBuf;
use std::time::Instant;

use kubetrain_api::{Iteration, TrainerError, TrainerResults};

pub mod inputs;
pub mod outcome;
pub mod program;
pub mod signals;
pub mod upload;

/// What one attempt runs and where its files go.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// The program and its arguments (`spec.custom.command` then `args`).
    pub command: Vec<String>,
    /// `KUBETRAIN_DATA`: the dataset's URI.
    pub data: String,
    /// `KUBETRAIN_VALIDATION_DATA`: a separate validation dataset's URI.
    pub validation_data: Option<String>,
    /// Where the datasets are downloaded before the program starts; `None` leaves reading
    /// them to the program (no `KUBETRAIN_DATA_FILE`).
    pub download_dir: Option<PathBuf>,
    /// `KUBETRAIN_OUT`: the prefix the model directory is uploaded under.
    pub out: String,
    /// `KUBETRAIN_MODEL_DIR`: what the program writes here is uploaded; it must be empty or
    /// absent when the attempt starts.
    pub model_dir: PathBuf,
    /// Echo the program's event lines to stdout (as log lines in a Pod); off when stdout
    /// carries kubetrain's own events (`kubetrain local`), which the caller writes.
    pub echo_events: bool,
}

/// A successful attempt: the status fields and the `summary.json` that was stored.
#[derive(Debug, Clone)]
pub struct Completed {
    /// The status fields the wrapper owns: final progress, metrics, the main model file.
    pub results: TrainerResults,
    /// The stored summary: every file with its digest, the metrics, the command.
    pub summary: serde_json::Value,
}

/// Run one attempt of `config`, handing each progress report to `progress` as it arrives.
///
/// # Errors
/// Why the attempt failed, classified as the contract says: the program's exit 65 is bad
/// input, 75 transient, anything else internal; a missing dataset or an empty model
/// directory is bad input, unreachable storage transient.
pub async fn run(
    config: &ExecConfig,
    progress: &(dyn Fn(&Iteration) + Sync),
) -> Result<Completed, TrainerError> {
    let started = Instant::now();
    let mut signals = signals::StopSignals::install()?;
    upload::prepare_model_dir(&config.model_dir)?;
    let files = tokio::select! {
        files = inputs::download(config) => files?,
        signal = signals.recv() => {
            return Err(signals::stopped(signal, "while downloading the dataset"));
        }
    };
    let ended = program::run(config, &files, progress, &mut signals).await?;
    outcome::check(&ended)?;
    let stored = upload::model_dir(config, &ended, started.elapsed(), &mut signals).await?;
    Ok(Completed {
        results: outcome::results(&ended, stored.main),
        summary: stored.summary,
    })
}
