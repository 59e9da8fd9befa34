//! Test fixtures (feature `testing`): TrainingRuns built by chaining, one definition for the
//! tests of every crate.
//!
//! ```
//! use kubetrain_api::{Phase, TrainingRun};
//!
//! let run = TrainingRun::test("churn")
//!     .in_ns("ml")
//!     .with_spec("startDeadlineSeconds: 60")
//!     .suspended()
//!     .in_phase(Phase::Queued);
//! assert!(run.spec.suspend);
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::{Phase, TrainingRun, TrainingRunStatus};

/// `2026-01-01T12:MM:SSZ`, the day every fixture lives in.
///
/// # Panics
/// If `minute_second` is not `MM:SS`.
pub fn at(minute_second: &str) -> Timestamp {
    format!("2026-01-01T12:{minute_second}Z")
        .parse()
        .expect("MM:SS")
}

/// Merge the YAML mapping `yaml` into `value` (an object), key by key.
fn merged(mut value: Value, yaml: &str) -> Value {
    if yaml.trim().is_empty() {
        return value;
    }
    let extra: serde_json::Map<String, Value> = serde_yaml::from_str(yaml).expect("a YAML mapping");
    let object = value.as_object_mut().expect("an object");
    for (key, extra) in extra {
        // As in a JSON merge patch, null removes the field.
        if extra.is_null() {
            object.remove(&key);
        } else {
            object.insert(key, extra);
        }
    }
    value
}

impl TrainingRun {
    /// A run named `name` in namespace `ml` (uid `0b6f-uid`, generation 1, created at
    /// 12:00:00 on the fixtures' day): logistic regression with `maxIterations: 200` on
    /// `s3://data/churn.csv` (seed 7), its model to `s3://models/churn/`; no status.
    pub fn test(name: &str) -> TrainingRun {
        serde_json::from_value(serde_json::json!({
            "apiVersion": crate::API_VERSION,
            "kind": "TrainingRun",
            "metadata": {
                "name": name,
                "namespace": "ml",
                "uid": "0b6f-uid",
                "generation": 1,
                "creationTimestamp": "2026-01-01T12:00:00Z",
            },
            "spec": {
                "algorithm": {"logisticRegression": {"maxIterations": 200}},
                "dataset": {"uri": "s3://data/churn.csv", "seed": 7},
                "output": {"uri": "s3://models/churn/"},
            },
        }))
        .expect("a valid run")
    }

    /// In namespace `namespace`.
    pub fn in_ns(mut self, namespace: &str) -> Self {
        self.metadata.namespace = Some(namespace.to_owned());
        self
    }

    /// Created at `time` (`metadata.creationTimestamp`).
    pub fn created(mut self, time: Timestamp) -> Self {
        self.metadata.creation_timestamp = Some(Time(time));
        self
    }

    /// With `metadata.generateName` `prefix` and no name: the API server picks one.
    pub fn generated(mut self, prefix: &str) -> Self {
        self.metadata.name = None;
        self.metadata.generate_name = Some(prefix.to_owned());
        self
    }

    /// As a client sends it to be created: without the namespace (the request's) and the
    /// fields the API server sets (uid, generation, resourceVersion, creationTimestamp).
    pub fn for_create(mut self) -> Self {
        self.metadata.namespace = None;
        self.metadata.uid = None;
        self.metadata.generation = None;
        self.metadata.resource_version = None;
        self.metadata.creation_timestamp = None;
        self
    }

    /// With uid `uid` (a run re-created under the same name has another).
    pub fn with_uid(mut self, uid: &str) -> Self {
        self.metadata.uid = Some(uid.to_owned());
        self
    }

    /// At `metadata.resourceVersion` `version`.
    pub fn at_version(mut self, version: &str) -> Self {
        self.metadata.resource_version = Some(version.to_owned());
        self
    }

    /// With label `key: value`.
    pub fn labelled(mut self, key: &str, value: &str) -> Self {
        self.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// With the fields of the YAML mapping `yaml` set in its spec (e.g. `"cancel: true"`).
    ///
    /// # Panics
    /// If the spec that results is not a valid spec.
    pub fn with_spec(mut self, yaml: &str) -> Self {
        let spec = merged(serde_json::to_value(&self.spec).expect("a spec"), yaml);
        self.spec = serde_json::from_value(spec).expect("a valid spec");
        self
    }

    /// `spec.suspend: true`.
    pub fn suspended(self) -> Self {
        self.with_spec("suspend: true")
    }

    /// `spec.cancel: true`.
    pub fn cancelled(self) -> Self {
        self.with_spec("cancel: true")
    }

    /// With the fields of the YAML mapping `yaml` set in its status (created if missing).
    ///
    /// # Panics
    /// If the status that results is not a valid status.
    pub fn with_status(mut self, yaml: &str) -> Self {
        let status = self.status.take().unwrap_or_default();
        let status = merged(serde_json::to_value(status).expect("a status"), yaml);
        self.status = Some(serde_json::from_value(status).expect("a valid status"));
        self
    }

    /// In `phase`; a finished phase also sets `completionTime` (12:00:00) when unset.
    pub fn in_phase(mut self, phase: Phase) -> Self {
        let status = self.status.get_or_insert_with(TrainingRunStatus::default);
        status.phase = Some(phase);
        if phase.is_terminal() && status.completion_time.is_none() {
            status.completion_time = Some(Time(at("00:00")));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chained_fixtures_change_only_what_they_name() {
        let plain = TrainingRun::test("churn");
        assert_eq!(plain.metadata.namespace.as_deref(), Some("ml"));
        assert_eq!(plain.spec.dataset.uri, "s3://data/churn.csv");
        assert!(plain.status.is_none());
        let run = TrainingRun::test("churn")
            .in_ns("team-a")
            .with_spec("ttlSecondsAfterFinished: 60")
            .cancelled()
            .with_status("{message: hi}")
            .in_phase(Phase::Cancelled)
            .at_version("7")
            .labelled("app", "x");
        assert_eq!(run.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(run.spec.ttl_seconds_after_finished, Some(60));
        assert!(run.spec.cancel && !run.spec.suspend);
        assert_eq!(run.spec.dataset.uri, plain.spec.dataset.uri);
        let status = run.status.unwrap();
        assert_eq!(status.message.as_deref(), Some("hi"));
        assert_eq!(status.phase, Some(Phase::Cancelled));
        assert_eq!(status.completion_time, Some(Time(at("00:00"))));
        assert_eq!(run.metadata.resource_version.as_deref(), Some("7"));
    }

    #[test]
    fn a_run_for_create_carries_no_server_fields() {
        let run = TrainingRun::test("churn")
            .created(at("05:00"))
            .generated("churn-")
            .for_create();
        assert_eq!(run.metadata.name, None);
        assert_eq!(run.metadata.generate_name.as_deref(), Some("churn-"));
        assert_eq!(run.metadata.namespace, None);
        assert_eq!(run.metadata.uid, None);
        assert_eq!(run.metadata.creation_timestamp, None);
        let created = TrainingRun::test("churn").created(at("05:00"));
        assert_eq!(created.metadata.creation_timestamp, Some(Time(at("05:00"))));
    }
}
