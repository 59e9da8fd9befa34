//! The part of a Job the controller reads, as its watch cache holds it.
//!
//! The cache holds one Job per run. k8s-openapi's `Job` takes 2.6 KB before any field is set
//! (its Pod template is stored inline); reconcile only reads a Job's name, owner, `suspend`
//! and status, so watch events are decoded into this view instead (about 0.6 KB).

use k8s_openapi::api::batch::v1::{Job, JobSpec, JobStatus};
use kube::Resource;
use kube::api::ObjectMeta;
use serde::{Deserialize, Serialize};

/// A Job as the controller's cache holds it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, Resource)]
#[resource(inherit = "Job")]
pub struct JobView {
    /// The Job's metadata.
    pub metadata: ObjectMeta,
    /// The one field of the spec reconcile reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<JobViewSpec>,
    /// The Job's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
}

/// `spec.suspend` of a Job.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct JobViewSpec {
    /// Whether the Job is suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

impl JobView {
    /// The view as a `Job` whose spec holds only `suspend`.
    pub fn to_job(&self) -> Job {
        Job {
            metadata: self.metadata.clone(),
            spec: self.spec.as_ref().map(|spec| JobSpec {
                suspend: spec.suspend,
                ..JobSpec::default()
            }),
            status: self.status.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_job_read_through_the_view_keeps_what_reconcile_reads() {
        let job: serde_json::Value = serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "churn-1", "namespace": "ml",
                "ownerReferences": [{"apiVersion": "kubetrain.dev/v1alpha1", "kind": "TrainingRun",
                    "name": "churn", "uid": "u1", "controller": true}]},
            "spec": {"suspend": true, "backoffLimit": 3, "template": {"spec": {"containers": [
                {"name": "trainer", "image": "ghcr.io/kubetrain/kubetrain:0.1.0"}]}}},
            "status": {"active": 1, "conditions": [{"type": "Suspended", "status": "True"}]},
        });
        let view: JobView = serde_json::from_value(job.clone()).unwrap();
        let full: Job = serde_json::from_value(job).unwrap();
        let seen = view.to_job();
        assert_eq!(seen.metadata, full.metadata);
        assert_eq!(seen.status, full.status);
        assert_eq!(seen.spec.unwrap().suspend, Some(true));
        assert_eq!(JobView::kind(&()), "Job");
        assert_eq!(JobView::api_version(&()), "batch/v1");
        assert!(std::mem::size_of::<JobView>() * 3 < std::mem::size_of::<Job>());
    }
}
