//! The kubetrain controller: reconciles each TrainingRun into a `batch/v1` Job running
//! `kubetrain train`, and keeps the run's status true.
//!
//! The reconcile ([`reconcile`]) is a pipeline with a pure middle:
//! [`kubetrain_api::validate_spec`] and [`job::build_job`] say what should exist,
//! [`status::decide`] says what the status is.
//! [`reporter`] is the trainer's side: it writes progress and results into the status.

pub mod error;
pub mod job;
pub mod job_view;
pub mod leader;
pub mod metrics;
pub mod pods;
pub mod rbac;
pub mod reconcile;
pub mod reporter;
pub mod runner;
pub mod server;
pub mod status;
pub mod written;

#[cfg(test)]
mod fixtures;

pub use error::Error;
pub use job::JobSettings;
pub use runner::{Options, run};
