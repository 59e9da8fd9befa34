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

    /// Whether the API server refused because the run's namespace is being deleted: nothing
    /// can be created there any more, and the run goes with its namespace.
    pub fn namespace_terminating(&self) -> bool {
        let Error::Kube {
            source: kube::Error::Api(status),
            ..
        } = self
        else {
            return false;
        };
        status.code == 403
            && status
                .details
                .as_ref()
                .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn api_error(status: serde_json::Value) -> Error {
        Error::kube("create Job")(kube::Error::Api(Box::new(
            serde_json::from_value(status).unwrap(),
        )))
    }

    #[test]
    fn a_terminating_namespace_is_told_apart_from_other_refusals() {
        // What the API server's NamespaceLifecycle admission answers.
        let terminating = api_error(serde_json::json!({
            "status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "jobs.batch \"r-1\" is forbidden: unable to create new content in namespace ml because it is being terminated",
            "details": {"name": "r-1", "group": "batch", "kind": "jobs", "causes": [
                {"reason": "NamespaceTerminating", "message": "namespace ml is being terminated", "field": "metadata.namespace"}
            ]}
        }));
        assert!(terminating.namespace_terminating());
        let rbac = api_error(serde_json::json!({
            "status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "jobs.batch is forbidden: User \"x\" cannot create resource \"jobs\""
        }));
        assert!(!rbac.namespace_terminating());
        assert!(!Error::NotNamespaced.namespace_terminating());
    }
}
