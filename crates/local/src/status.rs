//! The run's status in local mode (pure): the same phases, conditions, reasons and messages the
//! controller derives from a Job, here from what the process pool saw. Each transition returns
//! whether it changed anything, and none touches a run that already finished.

use k8s_openapi::jiff::Timestamp;
use kubetrain_api::lifecycle::{self, StatusChange};
use kubetrain_api::{
    Phase, TrainerError, TrainerResults, TrainingRun, TrainingRunStatus, condition,
};

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

/// Change the run's status at `now` (observing its current generation).
fn change(run: &mut TrainingRun, now: Timestamp, apply: impl FnOnce(&mut StatusChange<'_>)) {
    let generation = run.metadata.generation.unwrap_or(1);
    let status = status(run);
    status.observed_generation = Some(generation);
    apply(&mut StatusChange {
        status,
        generation,
        now,
    });
}

/// A new run (or one that starts again after a restart): Queued, or Queued and Suspended.
pub fn accept(run: &mut TrainingRun, now: Timestamp) {
    let algorithm = run.spec.algorithm_name().map(str::to_owned);
    status(run).algorithm = algorithm;
    let suspended = run.spec.suspend;
    change(run, now, |c| {
        c.condition(
            condition::ACCEPTED,
            true,
            "Accepted",
            "accepted by the local process pool",
        );
        if suspended {
            c.suspend();
        } else {
            queue_with(c, lifecycle::NOT_SUSPENDED);
        }
    });
}

fn queue_with(c: &mut StatusChange<'_>, suspended_reason: &str) {
    const WAITING: &str = "waiting for a free worker";
    c.not_suspended(suspended_reason);
    c.wait(
        Phase::Queued,
        WAITING,
        lifecycle::phase_message("Queued", WAITING),
    );
}

/// Waiting for a free worker.
pub fn queue(run: &mut TrainingRun, suspended_reason: &str, now: Timestamp) {
    change(run, now, |c| queue_with(c, suspended_reason));
}

/// Suspended: does not start until resumed.
pub fn suspend(run: &mut TrainingRun, now: Timestamp) {
    change(run, now, |c| c.suspend());
}

/// When the start deadline counts from: creation, or the last resume.
pub fn start_clock(run: &TrainingRun) -> Timestamp {
    let created = run.metadata.creation_timestamp.as_ref().map(|t| t.0);
    lifecycle::start_clock(created, run.status.as_ref())
}

/// An attempt's trainer process started.
pub fn started(run: &mut TrainingRun, attempt: i32, pid: Option<u32>, now: Timestamp) {
    let message = match pid {
        Some(pid) => format!("the trainer is running (process {pid})"),
        None => "the trainer is running".to_owned(),
    };
    change(run, now, |c| {
        c.run(lifecycle::TRAINING, message, "Running: training");
        c.status.attempts = Some(attempt);
    });
}

/// An attempt failed and another one follows.
pub fn retrying(run: &mut TrainingRun, error: TrainerError, now: Timestamp) {
    change(run, now, |c| {
        const WAITING: &str = "Pending: starting a new attempt";
        c.wait(Phase::Pending, WAITING, WAITING.to_owned());
        c.status.trainer_error = Some(error);
    });
}

/// The run failed for `reason`.
pub fn fail(run: &mut TrainingRun, reason: &str, message: &str, now: Timestamp) {
    change(run, now, |c| c.fail(reason, message));
}

/// `spec.cancel` stopped the run.
pub fn cancel(run: &mut TrainingRun, now: Timestamp) {
    change(run, now, |c| c.cancel());
}

/// The model is trained and stored.
pub fn succeed(run: &mut TrainingRun, results: TrainerResults, now: Timestamp) {
    change(run, now, |c| {
        c.succeed();
        c.model_ready(Some(&results.model));
        c.status.progress = Some(results.progress);
        c.status.metrics = Some(results.metrics);
        c.status.model = Some(results.model);
        c.status.dataset = results.dataset;
        c.status.top_features = results.top_features;
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kubetrain_api::conditions;
    use kubetrain_api::lifecycle::RESUMED;

    fn condition_of<'a>(run: &'a TrainingRun, type_: &str) -> (&'a str, &'a str) {
        let c = conditions::get(&run.status.as_ref().unwrap().conditions, type_).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn life_of_a_failed_run_matches_the_controller_words() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut r = TrainingRun::test("churn");
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
        let mut r = TrainingRun::test("churn").suspended();
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
