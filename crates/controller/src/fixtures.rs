//! Test fixtures: Jobs and Pods from inline YAML (runs: `kubetrain_api::testing`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;

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
