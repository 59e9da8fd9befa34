//! The TrainingRun custom resource (`kubetrain.dev/v1alpha1`): types, schema and pure
//! validation. This crate does no I/O; every other kubetrain crate depends on it.

pub mod exit_code;
