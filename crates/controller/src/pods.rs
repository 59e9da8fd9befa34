//! What a run's Pods say (pure): running, or why not (unschedulable, image pull failure).

use k8s_openapi::api::core::v1::Pod;

/// Why a Pod is not running yet, in the words of the component that knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodTrouble {
    /// `Unschedulable`, `ErrImagePull`, `ImagePullBackOff`, `CreateContainerConfigError`, ...
    pub reason: String,
    /// The scheduler's or node's message, e.g. `0/1 nodes are available: 1 Insufficient
    /// nvidia.com/gpu.`
    pub message: String,
}

/// Whether any Pod has its trainer container running.
pub fn any_running(pods: &[Pod]) -> bool {
    pods.iter().any(|pod| {
        pod.status
            .as_ref()
            .is_some_and(|s| s.phase.as_deref() == Some("Running"))
    })
}

/// Whether a Pod of the Job has finished its work: the trainer exited 0 and the Job
/// controller has not yet marked the Job complete. The run is still Running then, not Pending.
pub fn any_succeeded(pods: &[Pod]) -> bool {
    pods.iter().any(|pod| {
        pod.status
            .as_ref()
            .is_some_and(|s| s.phase.as_deref() == Some("Succeeded"))
    })
}

/// The most telling reason a Pending Pod gives for not running.
pub fn trouble(pods: &[Pod]) -> Option<PodTrouble> {
    let pending = pods.iter().filter(|pod| {
        pod.metadata.deletion_timestamp.is_none()
            && pod
                .status
                .as_ref()
                .is_none_or(|s| s.phase.as_deref().is_none_or(|p| p == "Pending"))
    });
    pending.filter_map(pod_trouble).next()
}

fn pod_trouble(pod: &Pod) -> Option<PodTrouble> {
    let status = pod.status.as_ref()?;
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(condition) = unschedulable {
        return Some(PodTrouble {
            reason: "Unschedulable".to_owned(),
            message: condition.message.clone().unwrap_or_default(),
        });
    }
    status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
        .find(|w| {
            w.reason
                .as_deref()
                .is_some_and(|r| r != "ContainerCreating")
        })
        .map(|waiting| PodTrouble {
            reason: waiting.reason.clone().unwrap_or_default(),
            message: waiting.message.clone().unwrap_or_default(),
        })
}
