//! The run's status from what the cluster shows (pure): the Job, its Pods and the clock.
//!
//! The controller owns `phase`, `conditions`, `message` and the bookkeeping fields; the
//! trainer owns `progress`, `metrics`, `model`, `dataset` and `trainerError` (each side writes
//! its own with server-side apply). This module only reads the trainer's fields.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kubetrain_api::lifecycle::{self, StatusChange};
use kubetrain_api::{Phase, TrainingRun, TrainingRunStatus, condition};

use crate::pods::{self, PodTrouble};

/// What the controller should write and do after looking at a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The controller-owned part of the status.
    pub status: TrainingRunStatus,
    /// Delete the Job (cancelled, or failed to start in time).
    pub delete_job: bool,
    /// Look again after this long even if nothing changes (a deadline falls due).
    pub requeue_after: Option<Duration>,
}

/// Everything [`decide`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    /// The run's Job, if it exists.
    pub job: Option<&'a Job>,
    /// The Job's Pods.
    pub pods: &'a [Pod],
    /// Why the spec cannot run, if it cannot (see [`crate::validate`]).
    pub invalid: Option<&'a str>,
    /// Now.
    pub now: Timestamp,
}

/// Derive the controller's status for `run`.
pub fn decide(run: &TrainingRun, observed: Observed<'_>) -> Decision {
    let previous = run.status.clone().unwrap_or_default();
    let mut status = TrainingRunStatus {
        phase: previous.phase,
        conditions: previous.conditions.clone(),
        observed_generation: run.metadata.generation,
        algorithm: run.spec.algorithm_name().map(str::to_owned),
        job_name: observed
            .job
            .map(ResourceExt::name_any)
            .or(previous.job_name.clone()),
        start_time: previous.start_time.clone(),
        completion_time: previous.completion_time.clone(),
        attempts: previous.attempts,
        message: previous.message.clone(),
        ..TrainingRunStatus::default()
    };
    let mut decision = Decision {
        status: TrainingRunStatus::default(),
        delete_job: false,
        requeue_after: None,
    };
    let mut change = StatusChange {
        status: &mut status,
        generation: run.metadata.generation.unwrap_or_default(),
        now: observed.now,
    };
    step(run, &previous, observed, &mut change, &mut decision);
    decision.status = status;
    decision
}

fn step(
    run: &TrainingRun,
    previous: &TrainingRunStatus,
    observed: Observed<'_>,
    b: &mut StatusChange<'_>,
    decision: &mut Decision,
) {
    // Terminal runs stay terminal; only the model may still become ready.
    if previous.phase.is_some_and(Phase::is_terminal) {
        decision.delete_job = previous.phase == Some(Phase::Cancelled) && observed.job.is_some();
        if previous.phase == Some(Phase::Succeeded) {
            b.model_ready(previous.model.as_ref());
        }
        return;
    }
    if let Some(reason) = observed.invalid {
        b.condition(condition::ACCEPTED, false, lifecycle::INVALID_SPEC, reason);
        b.fail(lifecycle::INVALID_SPEC, reason);
        return;
    }
    if run.spec.cancel {
        b.cancel();
        decision.delete_job = observed.job.is_some();
        return;
    }
    let Some(job) = observed.job else {
        b.status.phase = Some(Phase::Pending);
        b.status.message = Some("creating the training Job".to_owned());
        return;
    };
    let job_name = job.name_any();
    b.condition(
        condition::ACCEPTED,
        true,
        "JobCreated",
        format!("training in Job {job_name}"),
    );
    let job_status = job.status.clone().unwrap_or_default();
    let attempts = job_status.failed.unwrap_or(0)
        + job_status.succeeded.unwrap_or(0)
        + job_status.active.unwrap_or(0);
    b.status.attempts = Some(attempts.max(previous.attempts.unwrap_or(0)));

    if let Some(failed) = job_condition(job, "Failed") {
        let (reason, message) = failure_reason(previous, failed);
        b.fail(&reason, &message);
        return;
    }
    if job_condition(job, "Complete").is_some() {
        b.succeed();
        b.model_ready(previous.model.as_ref());
        return;
    }

    let suspended = run.spec.suspend || job.spec.as_ref().and_then(|s| s.suspend) == Some(true);
    if suspended {
        b.suspend();
        return;
    }
    // "Resumed" only after a real suspension: the start deadline counts from then.
    b.not_suspended(if lifecycle::was_suspended(previous) {
        lifecycle::RESUMED
    } else {
        lifecycle::NOT_SUSPENDED
    });

    let finishing = pods::any_succeeded(observed.pods);
    if finishing || pods::any_running(observed.pods) {
        let (reason, message, summary) = if finishing {
            (
                "Finishing",
                "the trainer finished; the Job is completing",
                "Running: the trainer finished, the Job is completing",
            )
        } else {
            (
                lifecycle::TRAINING,
                "the trainer is running",
                "Running: training",
            )
        };
        b.run(reason, message, summary);
        return;
    }

    // Waiting to start: say why, and fail once startDeadlineSeconds has passed.
    let trouble = pods::trouble(observed.pods);
    let waiting = match &trouble {
        Some(PodTrouble { reason, message }) => format!("{reason}: {message}"),
        None if b.status.start_time.is_some() => "Pending: starting a new attempt".to_owned(),
        None => "Pending: waiting for the training Pod to start".to_owned(),
    };
    b.wait(Phase::Pending, &waiting, waiting.clone());
    if let Some(deadline) = run.spec.start_deadline_seconds
        && b.status.start_time.is_none()
    {
        let created = run.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let clock_start = lifecycle::start_clock(created, Some(&*b.status));
        let due = clock_start.as_second().saturating_add(deadline);
        let left = due - b.now.as_second();
        if left <= 0 {
            b.fail(
                lifecycle::START_DEADLINE_EXCEEDED,
                &lifecycle::start_deadline_exceeded(deadline, &waiting),
            );
            decision.delete_job = true;
        } else {
            decision.requeue_after = Some(Duration::from_secs(left.unsigned_abs()));
        }
    }
}

fn job_condition<'a>(
    job: &'a Job,
    type_: &str,
) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// Why the Job failed, in the run's words: the trainer's own error for bad input.
fn failure_reason(
    previous: &TrainingRunStatus,
    failed: &k8s_openapi::api::batch::v1::JobCondition,
) -> (String, String) {
    let job_reason = failed.reason.clone().unwrap_or_else(|| "Failed".to_owned());
    let job_message = failed.message.clone().unwrap_or_default();
    match (job_reason.as_str(), &previous.trainer_error) {
        ("PodFailurePolicy", Some(error)) => (error.reason.clone(), error.message.clone()),
        ("PodFailurePolicy", None) => ("BadInput".to_owned(), job_message),
        (lifecycle::BACKOFF_LIMIT_EXCEEDED, Some(error)) => {
            (job_reason, lifecycle::all_attempts_failed(&error.message))
        }
        _ => (job_reason, job_message),
    }
}

#[cfg(test)]
mod tests;
