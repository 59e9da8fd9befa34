//! Test fixtures: runs, Jobs and Pods from inline YAML.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kubetrain_api::TrainingRun;

/// A run named `name` in namespace `ml`, created at 12:00:00, with the base spec plus
/// `extra_spec` (YAML lines merged into the spec).
pub fn run(name: &str, extra_spec: &str) -> TrainingRun {
    let mut spec: serde_yaml::Value = serde_yaml::from_str(
        "algorithm: {logisticRegression: {maxIterations: 200}}\n\
         dataset: {uri: s3://data/churn.csv, seed: 7}\n\
         output: {uri: s3://models/churn/}\n",
    )
    .unwrap();
    if !extra_spec.trim().is_empty() {
        let extra: serde_yaml::Mapping = serde_yaml::from_str(extra_spec).unwrap();
        spec.as_mapping_mut().unwrap().extend(extra);
    }
    let mut run: TrainingRun = serde_yaml::from_value(serde_yaml::Value::Mapping(
        [
            ("apiVersion".into(), "kubetrain.dev/v1alpha1".into()),
            ("kind".into(), "TrainingRun".into()),
            (
                "metadata".into(),
                serde_yaml::from_str(&format!(
                    "{{name: '{name}', namespace: ml, uid: 0b6f-uid, generation: 1, creationTimestamp: '2026-01-01T12:00:00Z'}}"
                ))
                .unwrap(),
            ),
            ("spec".into(), spec),
        ]
        .into_iter()
        .collect(),
    ))
    .unwrap();
    run.status = None;
    run
}

/// A run with a status given as YAML.
pub fn with_status(mut run: TrainingRun, status: &str) -> TrainingRun {
    run.status = Some(serde_yaml::from_str(status).unwrap());
    run
}

/// A Job with the given `status` YAML.
pub fn job(status: &str) -> Job {
    let mut job: Job = serde_yaml::from_str(
        "metadata: {name: churn-1234abcd, namespace: ml}\nspec: {template: {}}",
    )
    .unwrap();
    job.status = Some(serde_yaml::from_str(status).unwrap());
    job
}

/// A Pod with the given `status` YAML.
pub fn pod(status: &str) -> Pod {
    let mut pod: Pod =
        serde_yaml::from_str("metadata: {name: churn-1234abcd-x, namespace: ml}").unwrap();
    pod.status = Some(serde_yaml::from_str(status).unwrap());
    pod
}

/// `2026-01-01T12:MM:SSZ`.
pub fn at(minute_second: &str) -> Timestamp {
    format!("2026-01-01T12:{minute_second}Z").parse().unwrap()
}
