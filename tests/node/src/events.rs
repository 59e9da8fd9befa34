//! Events about pods, as kubelet records them (`kubectl describe pod` shows them): Started,
//! Failed, BackOff, Killing, DeadlineExceeded. Best effort: a lost event is logged, not fatal.

use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Records events as `kubelet` on this node.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    pub fn new(client: kube::Client, node_name: &str) -> Self {
        let reporter = Reporter {
            controller: "kubelet".into(),
            instance: Some(node_name.to_owned()),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes an event about the pod in the background.
    pub fn pod(&self, pod: &Pod, warning: bool, reason: &str, note: String) {
        let recorder = self.recorder.clone();
        let reference = pod.object_ref(&());
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note),
            action: reason.to_owned(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(error) = recorder.publish(&event, &reference).await {
                tracing::debug!(%error, reason = event.reason, "recording an event failed");
            }
        });
    }
}
