//! The run's status in local mode (pure): the same phases, conditions, reasons and messages the
//! controller derives from a Job, here from what the process pool saw. Each transition returns
//! whether it changed anything, and none touches a run that already finished.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kubetrain_api::{
    DatasetSummary, Metrics, ModelRef, Phase, Progress, TrainerError, TrainingRun,
    TrainingRunStatus, condition,
};
use kubetrain_controller::conditions::{self, Observation};

/// Reason of the `Suspended` condition once a suspended run was resumed.
pub const RESUMED: &str = "Resumed";

fn status(run: &mut TrainingRun) -> &mut TrainingRunStatus {
    run.status.get_or_insert_with(TrainingRunStatus::default)
}

/// Whether the run has finished (Succeeded, Failed or Cancelled).
pub fn is_terminal(run: &TrainingRun) -> bool {
    run.status
        .as_ref()
        .and_then(|s| s.phase)
        .is_some_and(Phase::is_terminal)
}

/// The run's phase.
pub fn phase(run: &TrainingRun) -> Option<Phase> {
    run.status.as_ref().and_then(|s| s.phase)
}

fn set(
    run: &mut TrainingRun,
    type_: &str,
    value: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let generation = run.metadata.generation.unwrap_or(1);
    let status = status(run);
    status.observed_generation = Some(generation);
    conditions::set(
        &mut status.conditions,
        Observation {
            type_,
            status: value,
            reason,
            message: message.to_owned(),
        },
        generation,
        now,
    );
}

/// A new run (or one that starts again after a restart): Queued, or Queued and Suspended.
pub fn accept(run: &mut TrainingRun, now: Timestamp) {
    let algorithm = run.spec.algorithm.name().map(str::to_owned);
    status(run).algorithm = algorithm;
    set(
        run,
        condition::ACCEPTED,
        true,
        "Accepted",
        "accepted by the local process pool",
        now,
    );
    if run.spec.suspend {
        suspend(run, now);
    } else {
        queue(run, "NotSuspended", now);
    }
}

/// Waiting for a free worker.
pub fn queue(run: &mut TrainingRun, suspended_reason: &str, now: Timestamp) {
    set(
        run,
        condition::SUSPENDED,
        false,
        suspended_reason,
        "the run is not suspended",
        now,
    );
    set(
        run,
        condition::RUNNING,
        false,
        "Waiting",
        "waiting for a free worker",
        now,
    );
    let s = status(run);
    s.phase = Some(Phase::Queued);
    s.message = Some("Queued: waiting for a free worker".to_owned());
}

/// Suspended: does not start until resumed.
pub fn suspend(run: &mut TrainingRun, now: Timestamp) {
    set(
        run,
        condition::SUSPENDED,
        true,
        "Suspended",
        "the run is suspended",
        now,
    );
    set(
        run,
        condition::RUNNING,
        false,
        "Suspended",
        "the run is suspended",
        now,
    );
    let s = status(run);
    s.phase = Some(Phase::Queued);
    s.message = Some("Queued: the run is suspended".to_owned());
}

/// When the start deadline counts from: creation, or the last resume.
pub fn start_clock(run: &TrainingRun) -> Timestamp {
    let created = run
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
    let resumed = run
        .status
        .as_ref()
        .and_then(|s| conditions::get(&s.conditions, condition::SUSPENDED))
        .filter(|c| c.status == "False" && c.reason == RESUMED)
        .map(|c| c.last_transition_time.0);
    resumed.map_or(created, |r| r.max(created))
}

/// An attempt's trainer process started.
pub fn started(run: &mut TrainingRun, attempt: i32, pid: Option<u32>, now: Timestamp) {
    set(
        run,
        condition::RUNNING,
        true,
        "Training",
        &match pid {
            Some(pid) => format!("the trainer is running (process {pid})"),
            None => "the trainer is running".to_owned(),
        },
        now,
    );
    let s = status(run);
    if s.start_time.is_none() {
        s.start_time = Some(Time(now));
    }
    s.attempts = Some(attempt);
    s.phase = Some(Phase::Running);
    s.message = Some("Running: training".to_owned());
}

/// An attempt failed and another one follows.
pub fn retrying(run: &mut TrainingRun, error: TrainerError, now: Timestamp) {
    let waiting = "Pending: starting a new attempt";
    set(run, condition::RUNNING, false, "Waiting", waiting, now);
    let s = status(run);
    s.trainer_error = Some(error);
    s.phase = Some(Phase::Pending);
    s.message = Some(waiting.to_owned());
}

fn finish(run: &mut TrainingRun, phase: Phase, message: String, now: Timestamp) {
    set(
        run,
        condition::RUNNING,
        false,
        "Finished",
        "training ended",
        now,
    );
    let s = status(run);
    s.phase = Some(phase);
    s.message = Some(message);
    if s.completion_time.is_none() {
        s.completion_time = Some(Time(now));
    }
}

/// The run failed for `reason`.
pub fn fail(run: &mut TrainingRun, reason: &str, message: &str, now: Timestamp) {
    set(run, condition::FAILED, true, reason, message, now);
    finish(run, Phase::Failed, format!("{reason}: {message}"), now);
}

/// `spec.cancel` stopped the run.
pub fn cancel(run: &mut TrainingRun, now: Timestamp) {
    set(
        run,
        condition::FAILED,
        true,
        "Cancelled",
        "spec.cancel was set",
        now,
    );
    finish(
        run,
        Phase::Cancelled,
        "Cancelled: spec.cancel was set".to_owned(),
        now,
    );
}

/// What the trainer reported about a successful attempt.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Results {
    pub progress: Progress,
    pub metrics: Metrics,
    pub model: ModelRef,
    pub dataset: DatasetSummary,
}

/// The model is trained and stored.
pub fn succeed(run: &mut TrainingRun, results: Results, now: Timestamp) {
    set(
        run,
        condition::COMPLETE,
        true,
        "Succeeded",
        "the model was trained",
        now,
    );
    finish(
        run,
        Phase::Succeeded,
        "Succeeded: the model was trained".to_owned(),
        now,
    );
    let message = format!(
        "model stored at {} (sha256 {})",
        results.model.uri, results.model.sha256
    );
    set(
        run,
        condition::MODEL_READY,
        true,
        "ModelStored",
        &message,
        now,
    );
    let s = status(run);
    s.progress = Some(results.progress);
    s.metrics = Some(results.metrics);
    s.model = Some(results.model);
    s.dataset = Some(results.dataset);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(spec: &str) -> TrainingRun {
        let mut run = TrainingRun::new("churn", serde_yaml::from_str(spec).unwrap());
        run.metadata.generation = Some(1);
        run
    }

    const SPEC: &str =
        "algorithm: {logisticRegression: {}}\ndataset: {uri: /d.csv}\noutput: {uri: /m/}";

    fn condition_of<'a>(run: &'a TrainingRun, type_: &str) -> (&'a str, &'a str) {
        let c = conditions::get(&run.status.as_ref().unwrap().conditions, type_).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn life_of_a_failed_run_matches_the_controller_words() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut r = run(SPEC);
        accept(&mut r, t0);
        assert_eq!(phase(&r), Some(Phase::Queued));
        assert_eq!(condition_of(&r, condition::ACCEPTED), ("True", "Accepted"));
        started(&mut r, 1, Some(42), t0);
        assert_eq!(phase(&r), Some(Phase::Running));
        assert_eq!(condition_of(&r, condition::RUNNING), ("True", "Training"));
        fail(
            &mut r,
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
            t0,
        );
        let s = r.status.as_ref().unwrap();
        assert_eq!(s.phase, Some(Phase::Failed));
        assert_eq!(
            s.message.as_deref(),
            Some("DeadlineExceeded: Job was active longer than specified deadline")
        );
        assert_eq!(condition_of(&r, condition::RUNNING), ("False", "Finished"));
        assert!(is_terminal(&r));
    }

    #[test]
    fn suspended_runs_are_queued_and_the_start_clock_moves_on_resume() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let mut r = run(&format!("{SPEC}\nsuspend: true"));
        r.metadata.creation_timestamp = Some(Time(t0));
        accept(&mut r, t0);
        assert_eq!(
            condition_of(&r, condition::SUSPENDED),
            ("True", "Suspended")
        );
        assert_eq!(start_clock(&r), t0);
        queue(&mut r, RESUMED, t1);
        assert_eq!(phase(&r), Some(Phase::Queued));
        assert_eq!(start_clock(&r), t1);
    }
}
