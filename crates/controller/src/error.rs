//! Errors of one reconcile: one variant per step that can fail, named after what it was doing,
//! with the object it was doing it to.
//!
//! [`Error::category`] is the reason of the Warning Event a failed reconcile leaves on its run
//! (`kubectl describe trainingrun`), and [`event_note`] its note: the error's whole source
//! chain, cut to what an Event holds.

use std::error::Error as _;

/// Errors of one reconcile; each names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A TrainingRun without a namespace (the resource is namespaced, so only a bug does this).
    #[error("TrainingRun has no namespace")]
    NotNamespaced,
    /// Deleting a run whose `ttlSecondsAfterFinished` ran out failed.
    #[error("cannot delete the run after ttlSecondsAfterFinished")]
    ExpireRun {
        /// The API server's answer.
        source: kube::Error,
    },
    /// Creating the trainer's ServiceAccount, Role or RoleBinding failed.
    #[error("cannot create the trainer's {kind} {name}")]
    ProvisionTrainerRbac {
        /// `ServiceAccount`, `Role` or `RoleBinding`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The API server's answer.
        source: kube::Error,
    },
    /// Creating the run's Job failed.
    #[error("cannot create Job {job}")]
    CreateJob {
        /// The Job's name.
        job: String,
        /// The API server's answer.
        source: kube::Error,
    },
    /// Reading the run's existing Job (after a create answered 409) failed.
    #[error("cannot read the existing Job {job}")]
    ReadJob {
        /// The Job's name.
        job: String,
        /// The API server's answer.
        source: kube::Error,
    },
    /// Setting the Job's `spec.suspend` failed.
    #[error("cannot set spec.suspend={suspend} on Job {job}")]
    SuspendJob {
        /// The Job's name.
        job: String,
        /// The value being set.
        suspend: bool,
        /// The API server's answer.
        source: kube::Error,
    },
    /// Deleting the Job of a cancelled or stuck run failed.
    #[error("cannot delete Job {job}")]
    DeleteJob {
        /// The Job's name.
        job: String,
        /// The API server's answer.
        source: kube::Error,
    },
    /// Writing the run's status failed.
    #[error("cannot write the run's status")]
    WriteStatus {
        /// The API server's answer.
        source: kube::Error,
    },
}

impl Error {
    /// The CamelCase reason of the Warning Event this error leaves on its run.
    pub fn category(&self) -> &'static str {
        match self {
            Error::NotNamespaced => "NotNamespaced",
            Error::ExpireRun { .. } => "ExpireRunFailed",
            Error::ProvisionTrainerRbac { .. } => "ProvisionTrainerRbacFailed",
            Error::CreateJob { .. } => "CreateJobFailed",
            Error::ReadJob { .. } => "ReadJobFailed",
            Error::SuspendJob { .. } => "SuspendJobFailed",
            Error::DeleteJob { .. } => "DeleteJobFailed",
            Error::WriteStatus { .. } => "WriteStatusFailed",
        }
    }

    /// The step that failed, as the `action` label of `kubetrain_reconcile_errors_total`.
    pub fn action(&self) -> &'static str {
        match self {
            Error::NotNamespaced => "read run",
            Error::ExpireRun { .. } => "delete expired run",
            Error::ProvisionTrainerRbac { kind, .. } => match *kind {
                "ServiceAccount" => "create trainer ServiceAccount",
                "Role" => "create trainer Role",
                _ => "create trainer RoleBinding",
            },
            Error::CreateJob { .. } => "create Job",
            Error::ReadJob { .. } => "read existing Job",
            Error::SuspendJob { .. } => "suspend Job",
            Error::DeleteJob { .. } => "delete Job",
            Error::WriteStatus { .. } => "write status",
        }
    }

    /// Whether the API server refused because the run's namespace is being deleted: nothing
    /// can be created there any more, and the run goes with its namespace.
    pub fn namespace_terminating(&self) -> bool {
        let Some(kube::Error::Api(status)) = self.source().and_then(|s| s.downcast_ref()) else {
            return false;
        };
        status.code == 403
            && status
                .details
                .as_ref()
                .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
    }
}

/// The most an Event's note holds (events.k8s.io/v1 `note`: 1 kB).
pub const EVENT_NOTE_MAX_BYTES: usize = 1024;

/// `error` and every source under it, joined with `: `, cut on a character boundary to at
/// most [`EVENT_NOTE_MAX_BYTES`] (an ellipsis marks a cut). An answer of the API server is
/// given as its message, code and reason (its other fields say nothing to a person).
pub fn event_note(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        if let Some(kube::Error::Api(status)) = cause.downcast_ref::<kube::Error>() {
            parts.push(format!(
                "{} ({} {})",
                status.message, status.code, status.reason
            ));
            break;
        }
        parts.push(cause.to_string());
        next = cause.source();
    }
    truncate(parts.join(": "), EVENT_NOTE_MAX_BYTES)
}

fn truncate(mut text: String, max: usize) -> String {
    const ELLIPSIS: char = '…';
    if text.len() <= max {
        return text;
    }
    let mut end = max - ELLIPSIS.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push(ELLIPSIS);
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn api_error(status: serde_json::Value) -> kube::Error {
        kube::Error::Api(Box::new(serde_json::from_value(status).unwrap()))
    }

    fn create_job(status: serde_json::Value) -> Error {
        Error::CreateJob {
            job: "r-1".into(),
            source: api_error(status),
        }
    }

    #[test]
    fn a_terminating_namespace_is_told_apart_from_other_refusals() {
        // What the API server's NamespaceLifecycle admission answers.
        let terminating = create_job(serde_json::json!({
            "status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "jobs.batch \"r-1\" is forbidden: unable to create new content in namespace ml because it is being terminated",
            "details": {"name": "r-1", "group": "batch", "kind": "jobs", "causes": [
                {"reason": "NamespaceTerminating", "message": "namespace ml is being terminated", "field": "metadata.namespace"}
            ]}
        }));
        assert!(terminating.namespace_terminating());
        let rbac = create_job(serde_json::json!({
            "status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "jobs.batch is forbidden: User \"x\" cannot create resource \"jobs\""
        }));
        assert!(!rbac.namespace_terminating());
        assert!(!Error::NotNamespaced.namespace_terminating());
    }

    #[test]
    fn the_note_carries_the_whole_chain() {
        let error = create_job(serde_json::json!({
            "status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "jobs.batch is forbidden: User \"x\" cannot create resource \"jobs\""
        }));
        assert_eq!(error.category(), "CreateJobFailed");
        assert_eq!(error.action(), "create Job");
        let note = event_note(&error);
        assert_eq!(
            note,
            "cannot create Job r-1: jobs.batch is forbidden: User \"x\" cannot create resource \"jobs\" (403 Forbidden)"
        );
    }

    #[test]
    fn notes_are_cut_on_a_character_boundary() {
        for text in ["a".repeat(5000), "é".repeat(3000), "日本".repeat(1000)] {
            let cut = truncate(text.clone(), EVENT_NOTE_MAX_BYTES);
            assert!(cut.len() <= EVENT_NOTE_MAX_BYTES, "{}", cut.len());
            assert!(cut.ends_with('…'));
            assert!(text.starts_with(cut.trim_end_matches('…')));
        }
        assert_eq!(truncate("short".into(), EVENT_NOTE_MAX_BYTES), "short");
    }
}
