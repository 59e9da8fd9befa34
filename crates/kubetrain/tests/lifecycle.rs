//! A run's lifecycle reads the same wherever it trained: fed the same attempt outcomes, the
//! controller (which sees them on a Job) and `kubetrain local` (which sees them on a process)
//! derive the same phase, message and conditions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kubetrain_api::testing::at;
use kubetrain_api::{TrainerResults, TrainingRun, TrainingRunStatus, condition};
use kubetrain_controller::status::{Observed, decide};
use kubetrain_local::retry::{self, Exit, Outcome};
use kubetrain_local::status;

const BACKOFF_LIMIT: i32 = 2;

/// The conditions that say how a run ended.
const ENDED: [&str; 4] = [
    condition::RUNNING,
    condition::COMPLETE,
    condition::FAILED,
    condition::MODEL_READY,
];
/// The conditions that say why a run waits.
const HELD: [&str; 2] = [condition::RUNNING, condition::SUSPENDED];

/// What both sides derive through `kubetrain_api::lifecycle`: phase, message, and the
/// conditions of `types` (type, status, reason, message).
fn shared(status: &TrainingRunStatus, types: &[&str]) -> (String, String, Vec<[String; 4]>) {
    let conditions = types
        .iter()
        .filter_map(|type_| status.conditions.iter().find(|c| c.type_ == *type_))
        .map(|c| {
            [
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                c.message.clone(),
            ]
        })
        .collect();
    (
        status.phase.map(|p| p.to_string()).unwrap_or_default(),
        status.message.clone().unwrap_or_default(),
        conditions,
    )
}

fn job(status: serde_json::Value) -> Job {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "churn-1234abcd", "namespace": "ml"},
        "spec": {"template": {}, "suspend": false},
        "status": status,
    }))
    .unwrap()
}

/// The controller's status of `run` (with what the trainer wrote into its status) when its
/// Job shows `job`, at 12:05.
fn controller(run: &TrainingRun, job: &Job) -> TrainingRunStatus {
    decide(
        run,
        Observed {
            job: Some(job),
            pods: &[],
            invalid: None,
            now: at("05:00"),
        },
    )
    .status
}

/// Local mode's status of `run` after one started attempt, then `end`.
fn local(run: &TrainingRun, end: impl FnOnce(&mut TrainingRun, Timestamp)) -> TrainingRunStatus {
    let mut run = run.clone();
    status::accept(&mut run, at("00:00"));
    status::started(&mut run, 1, Some(4242), at("00:01"));
    end(&mut run, at("05:00"));
    run.status.unwrap()
}

/// Local mode's status after an attempt that exited with `code` and `stderr`, its
/// `failures_before + 1`-th failure.
fn local_exit(
    run: &TrainingRun,
    code: i32,
    stderr: &str,
    failures_before: i32,
) -> TrainingRunStatus {
    local(run, |run, now| {
        let exit = Exit {
            code: Some(code),
            success: false,
            results: None,
            stderr,
        };
        match retry::after_exit(exit, failures_before, BACKOFF_LIMIT, Duration::from_secs(1)) {
            Outcome::Fail {
                reason, message, ..
            } => status::fail(run, &reason, &message, now),
            other => panic!("expected the run to fail, got {other:?}"),
        }
    })
}

fn failed_job(reason: &str) -> Job {
    job(serde_json::json!({
        "failed": BACKOFF_LIMIT + 1,
        "conditions": [{"type": "Failed", "status": "True", "reason": reason,
            "message": "the Job controller's words"}],
    }))
}

#[test]
fn bad_input_fails_the_same_way() {
    let message = "s3://data/churn.csv: row 2 (line 3), column 'f1': 'abc' is not a number";
    let reported = TrainingRun::test("churn").with_status(&format!(
        "{{trainerError: {{reason: BadInput, message: \"{message}\", exitCode: 65}}}}"
    ));
    let from_job = controller(&reported, &failed_job("PodFailurePolicy"));
    let from_process = local_exit(
        &TrainingRun::test("churn"),
        65,
        &format!("error: {message}\n"),
        0,
    );
    assert_eq!(shared(&from_job, &ENDED), shared(&from_process, &ENDED));
    assert_eq!(
        from_job.message.as_deref(),
        Some(&*format!("BadInput: {message}"))
    );
}

#[test]
fn exhausted_retries_fail_the_same_way() {
    let reported = TrainingRun::test("churn").with_status(
        "{trainerError: {reason: Transient, message: 'could not read s3://data/churn.csv: connection refused', exitCode: 75}}",
    );
    let from_job = controller(&reported, &failed_job("BackoffLimitExceeded"));
    let from_process = local_exit(
        &TrainingRun::test("churn"),
        75,
        "error: could not read s3://data/churn.csv: connection refused\n",
        BACKOFF_LIMIT,
    );
    assert_eq!(shared(&from_job, &ENDED), shared(&from_process, &ENDED));
    assert!(
        from_job
            .message
            .as_deref()
            .unwrap()
            .starts_with("BackoffLimitExceeded: all attempts failed; the last one: could not read")
    );
}

#[test]
fn success_and_the_stored_model_read_the_same() {
    let results: TrainerResults = serde_json::from_value(serde_json::json!({
        "progress": {"iteration": 12, "total": 100, "percent": 100.0},
        "metrics": {"accuracy": 0.9},
        "model": {"uri": "s3://models/churn/model.json", "sha256": "ab12", "bytes": 512},
        "dataset": {"rows": 100, "features": 4, "classes": 2, "sha256": "cd34"},
    }))
    .unwrap();
    let reported = TrainingRun::test("churn")
        .with_status("{model: {uri: s3://models/churn/model.json, sha256: ab12, bytes: 512}}");
    let complete = job(serde_json::json!({
        "succeeded": 1,
        "conditions": [{"type": "Complete", "status": "True"}],
    }));
    let from_job = controller(&reported, &complete);
    let from_process = local(&TrainingRun::test("churn"), |run, now| {
        status::succeed(run, results, now);
    });
    assert_eq!(shared(&from_job, &ENDED), shared(&from_process, &ENDED));
    assert_eq!(from_job.phase.unwrap().to_string(), "Succeeded");
}

#[test]
fn cancel_reads_the_same() {
    let cancelled = TrainingRun::test("churn").cancelled();
    let from_job = controller(&cancelled, &job(serde_json::json!({"active": 1})));
    let from_process = local(&cancelled, status::cancel);
    assert_eq!(shared(&from_job, &ENDED), shared(&from_process, &ENDED));
}

#[test]
fn suspension_reads_the_same() {
    let suspended = TrainingRun::test("churn").suspended();
    let from_job = controller(&suspended, &job(serde_json::json!({})));
    let mut run = suspended.clone();
    status::accept(&mut run, at("00:00"));
    let from_process = run.status.unwrap();
    assert_eq!(shared(&from_job, &HELD), shared(&from_process, &HELD));
    assert_eq!(from_job.phase.unwrap().to_string(), "Queued");
}
