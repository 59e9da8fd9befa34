//! What to do about a run (pure): expire it, create or (un)suspend its Job, write its status,
//! which Events to record, and when to look again. The I/O is in [`super::apply`].

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::EventType;
use kubetrain_api::{Phase, TrainingRun, TrainingRunStatus};

use crate::status::Decision;

/// Without a reason to look sooner, a run is looked at again after this long.
pub const RESYNC: Duration = Duration::from_secs(300);

/// What to do to the run's Job before its status is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobChange {
    /// It has none and should have one.
    Create,
    /// Set its `spec.suspend` to this (the run was suspended or resumed).
    Suspend(bool),
    /// Leave it as it is (or without one).
    Keep,
}

/// An Event to record on the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    /// Normal or Warning.
    pub type_: EventType,
    /// CamelCase reason.
    pub reason: String,
    /// What happened, for people.
    pub note: String,
}

/// Whether `run` finished and its `ttlSecondsAfterFinished` ran out at `now`: it is deleted
/// (its model stays in storage).
pub fn expired(run: &TrainingRun, now: Timestamp) -> bool {
    let Some(status) = &run.status else {
        return false;
    };
    status.phase.is_some_and(Phase::is_terminal)
        && ttl_due(run, status, now).is_some_and(|left| left.is_zero())
}

/// What to do to the Job: a run that can run and has none gets one; an existing Job follows
/// `spec.suspend` until the run finished.
pub fn job_change(run: &TrainingRun, job: Option<&Job>, invalid: bool) -> JobChange {
    let terminal = run
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .is_some_and(Phase::is_terminal);
    match job {
        None if !invalid && !terminal && !run.spec.cancel => JobChange::Create,
        None => JobChange::Keep,
        Some(job) => {
            let suspended = job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false);
            if suspended != run.spec.suspend && !terminal {
                JobChange::Suspend(run.spec.suspend)
            } else {
                JobChange::Keep
            }
        }
    }
}

/// Whether the controller-owned part of the run's status differs from `decision`'s (an
/// unchanged status is not written again).
pub fn status_changed(run: &TrainingRun, decision: &Decision) -> bool {
    controller_view(run.status.as_ref()) != decision.status
}

/// The Event of a phase change: none for waiting phases (`kubectl get` shows those), a
/// Warning for Failed, Normal otherwise.
pub fn phase_event(previous: Option<Phase>, decision: &Decision) -> Option<PlannedEvent> {
    let phase = decision.status.phase?;
    if Some(phase) == previous || matches!(phase, Phase::Pending | Phase::Queued) {
        return None;
    }
    Some(PlannedEvent {
        type_: if phase == Phase::Failed {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: phase.as_str().to_owned(),
        note: decision.status.message.clone().unwrap_or_default(),
    })
}

/// The Event of a created Job.
pub fn created_event(job: &str) -> PlannedEvent {
    PlannedEvent {
        type_: EventType::Normal,
        reason: "CreatedJob".to_owned(),
        note: format!("created Job {job}"),
    }
}

/// When to look at the run again: the earliest deadline of `decision` or of the run's TTL,
/// else after [`RESYNC`].
pub fn requeue_after(run: &TrainingRun, decision: &Decision, now: Timestamp) -> Duration {
    [decision.requeue_after, ttl_due(run, &decision.status, now)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(RESYNC)
}

/// How long until the run's `ttlSecondsAfterFinished` runs out, if it is finished and has one.
fn ttl_due(run: &TrainingRun, status: &TrainingRunStatus, now: Timestamp) -> Option<Duration> {
    let ttl = i64::from(run.spec.ttl_seconds_after_finished?);
    let finished = status.completion_time.as_ref()?.0;
    let left = finished.as_second().saturating_add(ttl) - now.as_second();
    Some(Duration::from_secs(left.max(0).unsigned_abs()))
}

/// The fields of `status` the controller owns, as [`crate::status::decide`] produces them.
fn controller_view(status: Option<&TrainingRunStatus>) -> TrainingRunStatus {
    let Some(status) = status else {
        return TrainingRunStatus::default();
    };
    TrainingRunStatus {
        phase: status.phase,
        conditions: status.conditions.clone(),
        observed_generation: status.observed_generation,
        algorithm: status.algorithm.clone(),
        job_name: status.job_name.clone(),
        start_time: status.start_time.clone(),
        completion_time: status.completion_time.clone(),
        attempts: status.attempts,
        message: status.message.clone(),
        ..TrainingRunStatus::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fixtures::job;
    use crate::status::{Observed, decide};
    use kubetrain_api::testing::at;

    fn suspended_job(suspend: bool) -> Job {
        let mut job = job("{}");
        job.spec.as_mut().unwrap().suspend = Some(suspend);
        job
    }

    fn decision(run: &TrainingRun, job: Option<&Job>) -> Decision {
        decide(
            run,
            Observed {
                job,
                pods: &[],
                invalid: None,
                now: at("00:10"),
            },
        )
    }

    #[test]
    fn a_runnable_run_without_a_job_gets_one() {
        assert_eq!(
            job_change(&TrainingRun::test("a"), None, false),
            JobChange::Create
        );
    }

    #[test]
    fn invalid_cancelled_or_finished_runs_get_no_job() {
        assert_eq!(
            job_change(&TrainingRun::test("a"), None, true),
            JobChange::Keep
        );
        assert_eq!(
            job_change(
                &TrainingRun::test("a").with_spec("cancel: true"),
                None,
                false
            ),
            JobChange::Keep
        );
        let done = TrainingRun::test("a").with_status("{phase: Succeeded}");
        assert_eq!(job_change(&done, None, false), JobChange::Keep);
    }

    #[test]
    fn the_job_follows_spec_suspend_until_the_run_finished() {
        let suspended = TrainingRun::test("a").with_spec("suspend: true");
        assert_eq!(
            job_change(&suspended, Some(&suspended_job(false)), false),
            JobChange::Suspend(true)
        );
        assert_eq!(
            job_change(&TrainingRun::test("a"), Some(&suspended_job(true)), false),
            JobChange::Suspend(false)
        );
        assert_eq!(
            job_change(&suspended, Some(&suspended_job(true)), false),
            JobChange::Keep
        );
        let failed = TrainingRun::test("a")
            .with_spec("suspend: true")
            .with_status("{phase: Failed}");
        assert_eq!(
            job_change(&failed, Some(&suspended_job(false)), false),
            JobChange::Keep
        );
    }

    #[test]
    fn a_finished_run_expires_when_its_ttl_ran_out() {
        let finished = |ttl: &str| {
            TrainingRun::test("a")
                .with_spec(ttl)
                .with_status("{phase: Succeeded, completionTime: '2026-01-01T12:00:00Z'}")
        };
        assert!(!expired(&finished(""), at("59:00")));
        assert!(!expired(
            &finished("ttlSecondsAfterFinished: 60"),
            at("00:59")
        ));
        assert!(expired(
            &finished("ttlSecondsAfterFinished: 60"),
            at("01:00")
        ));
        let running = TrainingRun::test("a")
            .with_spec("ttlSecondsAfterFinished: 0")
            .with_status("{phase: Running}");
        assert!(!expired(&running, at("59:00")));
    }

    #[test]
    fn an_unchanged_status_is_not_written_again() {
        let fresh = TrainingRun::test("a");
        let first = decision(&fresh, None);
        assert!(status_changed(&fresh, &first));
        let mut written = fresh.with_status("{}");
        written.status = Some(first.status.clone());
        // The trainer's fields are not the controller's: they do not make a write.
        written.status.as_mut().unwrap().trainer_error = None;
        assert!(!status_changed(&written, &decision(&written, None)));
    }

    #[test]
    fn phase_changes_are_events_and_failures_are_warnings() {
        let cancelled = decision(
            &TrainingRun::test("a")
                .with_spec("cancel: true")
                .with_status("{phase: Running}"),
            Some(&job("{active: 1}")),
        );
        let event = phase_event(Some(Phase::Running), &cancelled).unwrap();
        assert_eq!(event.reason, "Cancelled");
        assert_eq!(event.type_, EventType::Normal);
        assert_eq!(phase_event(cancelled.status.phase, &cancelled), None);
        let pending = decision(&TrainingRun::test("a"), None);
        assert_eq!(phase_event(None, &pending), None);
        let bad = decide(
            &TrainingRun::test("a"),
            Observed {
                job: None,
                pods: &[],
                invalid: Some("spec.algorithm: exactly one"),
                now: at("00:10"),
            },
        );
        let warning = phase_event(None, &bad).unwrap();
        assert_eq!(warning.type_, EventType::Warning);
        assert_eq!(warning.reason, "Failed");
    }

    #[test]
    fn the_next_look_is_the_earliest_deadline() {
        let finished = TrainingRun::test("a")
            .with_spec("ttlSecondsAfterFinished: 90")
            .with_status("{phase: Succeeded, completionTime: '2026-01-01T12:00:00Z'}");
        let mut d = decision(&finished, None);
        d.status.completion_time = finished.status.as_ref().unwrap().completion_time.clone();
        d.requeue_after = None;
        assert_eq!(
            requeue_after(&finished, &d, at("00:30")),
            Duration::from_secs(60)
        );
        d.requeue_after = Some(Duration::from_secs(5));
        assert_eq!(
            requeue_after(&finished, &d, at("00:30")),
            Duration::from_secs(5)
        );
        assert_eq!(
            requeue_after(
                &TrainingRun::test("a"),
                &decision(&TrainingRun::test("a"), None),
                at("00:30")
            ),
            RESYNC
        );
    }
}
