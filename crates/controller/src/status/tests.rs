#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::fixtures::{job, pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kubetrain_api::conditions;
use kubetrain_api::testing::at;

fn decide_at(run: &TrainingRun, job: Option<&Job>, pods: &[Pod], now: &str) -> Decision {
    decide(
        run,
        Observed {
            job,
            pods,
            invalid: None,
            now: at(now),
        },
    )
}

fn condition_of<'a>(
    d: &'a Decision,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    conditions::get(&d.status.conditions, type_).unwrap_or_else(|| panic!("no {type_} condition"))
}

#[test]
fn no_job_yet_is_pending() {
    let d = decide_at(&TrainingRun::test("churn"), None, &[], "00:01");
    assert_eq!(d.status.phase, Some(Phase::Pending));
    assert_eq!(d.status.algorithm.as_deref(), Some("logisticRegression"));
    assert_eq!(d.status.observed_generation, Some(1));
}

#[test]
fn running_pod_is_running_with_start_time() {
    let j = job("{active: 1}");
    let d = decide_at(
        &TrainingRun::test("churn"),
        Some(&j),
        &[pod("{phase: Running}")],
        "00:05",
    );
    assert_eq!(d.status.phase, Some(Phase::Running));
    assert_eq!(d.status.start_time, Some(Time(at("00:05"))));
    assert_eq!(condition_of(&d, condition::RUNNING).status, "True");
    assert_eq!(condition_of(&d, condition::ACCEPTED).status, "True");
    assert_eq!(d.status.job_name.as_deref(), Some("churn-1234abcd"));
    assert_eq!(d.status.attempts, Some(1));
}

#[test]
fn a_finished_pod_keeps_the_run_running_until_the_job_completes() {
    // The trainer exited 0; the Job controller has not counted it yet.
    let j = job("{active: 1}");
    let d = decide_at(
        &TrainingRun::test("churn"),
        Some(&j),
        &[pod("{phase: Succeeded}")],
        "00:05",
    );
    assert_eq!(d.status.phase, Some(Phase::Running));
    assert_eq!(condition_of(&d, condition::RUNNING).reason, "Finishing");
    assert!(!d.delete_job);
}

#[test]
fn complete_job_succeeds_and_model_ready_follows_the_trainer_report() {
    let j = job("{succeeded: 1, conditions: [{type: Complete, status: 'True'}]}");
    let d = decide_at(&TrainingRun::test("churn"), Some(&j), &[], "01:00");
    assert_eq!(d.status.phase, Some(Phase::Succeeded));
    assert_eq!(condition_of(&d, condition::COMPLETE).status, "True");
    assert_eq!(condition_of(&d, condition::MODEL_READY).status, "False");
    assert_eq!(d.status.completion_time, Some(Time(at("01:00"))));

    let reported = TrainingRun::test("churn").with_status(&format!(
            "{{phase: Succeeded, model: {{uri: s3://models/churn/model.json, sha256: abc, bytes: 10}}, conditions: {}}}",
            serde_json::to_string(&d.status.conditions).unwrap()
        ));
    let later = decide_at(&reported, Some(&j), &[], "01:10");
    assert_eq!(condition_of(&later, condition::MODEL_READY).status, "True");
    assert!(
        condition_of(&later, condition::MODEL_READY)
            .message
            .contains("sha256 abc")
    );
    assert_eq!(
        condition_of(&later, condition::COMPLETE).last_transition_time,
        Time(at("01:00")),
        "terminal conditions keep their transition time"
    );
}

#[test]
fn bad_input_fails_with_the_trainers_message() {
    let j = job(
        "{failed: 1, conditions: [{type: Failed, status: 'True', reason: PodFailurePolicy, message: 'Container trainer for pod ml/x failed with exit code 65'}]}",
    );
    let r = TrainingRun::test("churn").with_status("{trainerError: {reason: BadInput, message: 'row 7, column f3: \"abc\" is not a number', exitCode: 65}}");
    let d = decide_at(&r, Some(&j), &[], "00:30");
    assert_eq!(d.status.phase, Some(Phase::Failed));
    let failed = condition_of(&d, condition::FAILED);
    assert_eq!(failed.reason, "BadInput");
    assert!(
        d.status
            .message
            .as_deref()
            .unwrap()
            .contains("row 7, column f3"),
        "{:?}",
        d.status.message
    );
    assert_eq!(d.status.attempts, Some(1));
}

#[test]
fn job_failures_keep_the_job_controllers_reason() {
    for reason in ["BackoffLimitExceeded", "DeadlineExceeded"] {
        let j = job(&format!(
            "{{failed: 3, conditions: [{{type: Failed, status: 'True', reason: {reason}, message: m}}]}}"
        ));
        let d = decide_at(&TrainingRun::test("churn"), Some(&j), &[], "00:30");
        assert_eq!(d.status.phase, Some(Phase::Failed));
        assert_eq!(condition_of(&d, condition::FAILED).reason, reason);
        assert!(d.status.message.as_deref().unwrap().starts_with(reason));
        assert_eq!(d.status.attempts, Some(3));
    }
}

#[test]
fn unschedulable_says_why_and_fails_at_the_start_deadline() {
    let r = TrainingRun::test("gpu").with_spec("startDeadlineSeconds: 60");
    let j = job("{active: 1}");
    let p = pod(
        "{phase: Pending, conditions: [{type: PodScheduled, status: 'False', reason: Unschedulable, message: '0/1 nodes are available: 1 Insufficient nvidia.com/gpu.'}]}",
    );
    let waiting = decide_at(&r, Some(&j), std::slice::from_ref(&p), "00:20");
    assert_eq!(waiting.status.phase, Some(Phase::Pending));
    let message = waiting.status.message.clone().unwrap();
    assert!(
        message
            .starts_with("Unschedulable: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu."),
        "{message}"
    );
    assert_eq!(waiting.requeue_after, Some(Duration::from_secs(40)));
    assert!(!waiting.delete_job);

    let late = decide_at(&r, Some(&j), &[p], "01:00");
    assert_eq!(late.status.phase, Some(Phase::Failed));
    assert_eq!(
        condition_of(&late, condition::FAILED).reason,
        "StartDeadlineExceeded"
    );
    assert!(
        late.status
            .message
            .unwrap()
            .contains("Insufficient nvidia.com/gpu")
    );
    assert!(late.delete_job);
}

#[test]
fn image_pull_failures_are_reported() {
    let j = job("{active: 1}");
    let p = pod(
        "{phase: Pending, containerStatuses: [{name: trainer, image: x, imageID: '', ready: false, restartCount: 0, state: {waiting: {reason: ImagePullBackOff, message: 'Back-off pulling image \"nope:1\"'}}}]}",
    );
    let d = decide_at(&TrainingRun::test("churn"), Some(&j), &[p], "00:10");
    assert!(
        d.status
            .message
            .unwrap()
            .starts_with("ImagePullBackOff: Back-off pulling image")
    );
}

#[test]
fn suspended_runs_are_queued_and_the_start_deadline_waits() {
    let j: Job = {
        let mut j = job("{}");
        j.spec.as_mut().unwrap().suspend = Some(true);
        j
    };
    let r = TrainingRun::test("churn").with_spec("suspend: true\nstartDeadlineSeconds: 60");
    let d = decide_at(&r, Some(&j), &[], "05:00");
    assert_eq!(d.status.phase, Some(Phase::Queued));
    assert_eq!(condition_of(&d, condition::SUSPENDED).status, "True");
    assert!(!d.delete_job);

    // Resumed at 05:30: the deadline counts from then, not from creation at 00:00.
    let resumed = TrainingRun::test("churn")
        .with_spec("startDeadlineSeconds: 60")
        .with_status(&format!(
            "{{phase: Queued, conditions: {}}}",
            serde_json::to_string(&d.status.conditions).unwrap()
        ));
    let j2 = job("{active: 1}");
    let d2 = decide_at(&resumed, Some(&j2), &[], "05:30");
    assert_eq!(d2.status.phase, Some(Phase::Pending));
    assert_eq!(d2.requeue_after, Some(Duration::from_secs(60)));
}

#[test]
fn cancel_ends_cancelled_and_deletes_the_job() {
    let j = job("{active: 1}");
    let d = decide_at(
        &TrainingRun::test("churn").with_spec("cancel: true"),
        Some(&j),
        &[],
        "00:10",
    );
    assert_eq!(d.status.phase, Some(Phase::Cancelled));
    assert_eq!(condition_of(&d, condition::FAILED).reason, "Cancelled");
    assert!(d.delete_job);
    let gone = decide_at(
        &TrainingRun::test("churn")
            .with_spec("cancel: true")
            .with_status("{phase: Cancelled}"),
        None,
        &[],
        "00:20",
    );
    assert_eq!(gone.status.phase, Some(Phase::Cancelled));
    assert!(!gone.delete_job);
}

#[test]
fn invalid_specs_fail_without_a_job() {
    let d = decide(
        &TrainingRun::test("churn"),
        Observed {
            job: None,
            pods: &[],
            invalid: Some("spec.dataset.format: parquet is not supported yet"),
            now: at("00:01"),
        },
    );
    assert_eq!(d.status.phase, Some(Phase::Failed));
    assert_eq!(condition_of(&d, condition::ACCEPTED).status, "False");
    assert!(d.status.message.unwrap().contains("parquet"));
}
