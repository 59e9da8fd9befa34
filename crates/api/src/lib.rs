//! The TrainingRun custom resource (`kubetrain.dev/v1alpha1`): types, schema and pure
//! validation. This crate does no I/O; every other kubetrain crate depends on it.
//!
//! - [`spec`]: what to train ([`TrainingRunSpec`]).
//! - [`status`]: what happened ([`TrainingRunStatus`]).
//! - [`crd`]: the CustomResourceDefinition with its CEL rules, and a structural-schema check.
//! - [`exit_code`]: the trainer's exit codes, shared by everything that runs it.
//! - [`invocation`]: the trainer's command line for a run, shared by the Job and local mode.

pub mod crd;
pub mod exit_code;
pub mod invocation;
pub mod spec;
pub mod status;

pub use crd::{crd, crd_yaml};
pub use spec::{
    Algorithm, AlgorithmRef, DataFormat, DatasetSpec, LogisticRegression, OutputSpec,
    SecretReference, StorageSpec, TrainingRun, TrainingRunSpec,
};
pub use status::{
    DatasetSummary, Metrics, ModelRef, Phase, Progress, TrainerError, TrainingRunStatus, condition,
};

/// API group of every kubetrain resource.
pub const GROUP: &str = "kubetrain.dev";
/// Version of the TrainingRun API.
pub const VERSION: &str = "v1alpha1";
