//! The TrainingRun custom resource (`kubetrain.dev/v1alpha1`): types, schema and pure
//! validation. This crate does no I/O; every other kubetrain crate depends on it.
//!
//! - [`spec`]: what to train ([`TrainingRunSpec`]); [`custom`]: the user's own program.
//! - [`status`]: what happened ([`TrainingRunStatus`]).
//! - [`crd`]: the CustomResourceDefinition with its CEL rules, and a structural-schema check.
//! - [`exit_code`]: the trainer's exit codes, shared by everything that runs it.
//! - [`invocation`]: the trainer's command line for a run, shared by the Job and local mode.
//! - [`report`]: the trainer's progress events and the status fields it owns.
//! - [`conditions`]: metav1.Condition merging; [`validate`]: what the schema cannot check.

pub mod algorithm;
pub mod conditions;
pub mod crd;
pub mod custom;
pub mod exit_code;
pub mod invocation;
pub mod lifecycle;
pub mod meta;
pub mod names;
pub mod report;
pub mod spec;
pub mod status;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod validate;

pub use crd::{crd, crd_yaml};
pub use exit_code::ErrorClass;
pub use report::{Iteration, TrainerEvent, TrainerResults};
pub use spec::{
    Algorithm, AlgorithmRef, CustomCode, DataFormat, DatasetSpec, GradientBoostedTrees,
    LinearRegression, LogisticRegression, OutputSpec, RandomForest, SUMMARY_FILE, SecretReference,
    StorageSpec, Task, TrainerRef, TrainingRun, TrainingRunSpec,
};
pub use status::{
    DatasetSummary, FeatureWeight, Metrics, ModelRef, Phase, Progress, TrainerError,
    TrainingRunStatus, UnknownPhase, condition,
};
pub use validate::{FieldError, validate_spec};

/// `apiVersion` of a TrainingRun: [`GROUP`]/[`VERSION`].
pub const API_VERSION: &str = "kubetrain.dev/v1alpha1";
/// API group of every kubetrain resource.
pub const GROUP: &str = "kubetrain.dev";
/// Version of the TrainingRun API.
pub const VERSION: &str = "v1alpha1";

#[cfg(test)]
mod tests {
    use kube::Resource;

    #[test]
    fn the_api_version_is_the_resources() {
        assert_eq!(super::API_VERSION, super::TrainingRun::api_version(&()));
        assert_eq!(
            super::API_VERSION,
            format!("{}/{}", super::GROUP, super::VERSION)
        );
    }
}
