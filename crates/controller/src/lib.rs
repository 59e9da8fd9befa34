//! The kubetrain controller: reconciles each TrainingRun into a `batch/v1` Job running
//! `kubetrain train`, and keeps the run's status true.
//!
//! The reconcile ([`reconcile`]) is a pipeline with a pure middle: [`validate`] and
//! [`job::build_job`] say what should exist, [`status::decide`] says what the status is.
//! [`reporter`] is the trainer's side: it writes progress and results into the status.

pub mod conditions;
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
pub mod validate;
pub mod written;

#[cfg(test)]
mod fixtures;

pub use job::JobSettings;
pub use runner::{Options, run};

/// Errors of one reconcile; each names the action that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A TrainingRun without a namespace (the resource is namespaced, so only a bug does this).
    #[error("TrainingRun has no namespace")]
    NotNamespaced,
    /// A call to the API server failed.
    #[error("{action}: {source}")]
    Kube {
        /// What the controller was doing.
        action: &'static str,
        /// The API server's answer.
        source: kube::Error,
    },
}

impl Error {
    /// The action that failed, for metrics and events.
    pub fn action(&self) -> &'static str {
        match self {
            Error::NotNamespaced => "read run",
            Error::Kube { action, .. } => action,
        }
    }

    /// `map_err` adapter naming the action.
    pub fn kube(action: &'static str) -> impl FnOnce(kube::Error) -> Error {
        move |source| Error::Kube { action, source }
    }
}
