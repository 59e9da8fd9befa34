//! Pod and container status as kubelet reports it, built from what the node observed.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// The state of one container.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Waiting {
        reason: String,
        message: String,
    },
    Running {
        started: DateTime<Utc>,
        container_id: String,
    },
    Terminated {
        exit_code: i32,
        signal: Option<i32>,
        reason: String,
        message: String,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
        container_id: String,
    },
}

impl State {
    /// Terminated with kubelet's reason for the exit code: Completed for 0, Error otherwise.
    pub fn exited(
        exit_code: i32,
        signal: Option<i32>,
        started: DateTime<Utc>,
        container_id: String,
    ) -> Self {
        let reason = if exit_code == 0 { "Completed" } else { "Error" };
        State::Terminated {
            exit_code,
            signal,
            reason: reason.to_owned(),
            message: String::new(),
            started,
            finished: Utc::now(),
            container_id,
        }
    }

    pub fn waiting(reason: &str, message: impl Into<String>) -> Self {
        State::Waiting {
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            State::Waiting { reason, message } => {
                json!({"waiting": {"reason": reason, "message": message}})
            }
            State::Running { started, .. } => json!({"running": {"startedAt": time(started)}}),
            State::Terminated {
                exit_code,
                signal,
                reason,
                message,
                started,
                finished,
                container_id,
            } => {
                let mut t = json!({"exitCode": exit_code, "reason": reason, "startedAt": time(started),
                                   "finishedAt": time(finished), "containerID": container_id});
                if let Some(signal) = signal {
                    t["signal"] = json!(signal);
                }
                if !message.is_empty() {
                    t["message"] = json!(message);
                }
                json!({"terminated": t})
            }
        }
    }
}

/// What the node knows about one container.
#[derive(Debug, Clone)]
pub struct ContainerReport {
    pub name: String,
    pub image: String,
    pub state: State,
    pub last_state: Option<State>,
    pub restart_count: i32,
}

impl ContainerReport {
    pub fn new(name: &str, image: &str) -> Self {
        Self {
            name: name.to_owned(),
            image: image.to_owned(),
            state: State::waiting("ContainerCreating", ""),
            last_state: None,
            restart_count: 0,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    fn to_json(&self) -> Value {
        let mut status = json!({
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.is_running(),
            "started": self.is_running(),
            "restartCount": self.restart_count,
            "state": self.state.to_json(),
            "lastState": self.last_state.as_ref().map_or(json!({}), State::to_json),
        });
        if let State::Running { container_id, .. } | State::Terminated { container_id, .. } =
            &self.state
        {
            status["containerID"] = json!(container_id);
        }
        status
    }
}

/// The pod's phase, with kubelet's reason and message when the pod itself failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub phase: &'static str,
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl Phase {
    pub fn plain(phase: &'static str) -> Self {
        Self {
            phase,
            reason: None,
            message: None,
        }
    }
}

/// The phase that follows from the containers once none of them will run again: Succeeded if
/// all exited 0, else Failed.
pub fn terminal_phase(containers: &[ContainerReport]) -> Phase {
    let all_ok = containers
        .iter()
        .all(|c| matches!(c.state, State::Terminated { exit_code: 0, .. }));
    Phase::plain(if all_ok { "Succeeded" } else { "Failed" })
}

/// The body of a strategic-merge patch of the pod's status subresource.
pub fn pod_status_patch(
    phase: &Phase,
    start_time: DateTime<Utc>,
    init: &[ContainerReport],
    containers: &[ContainerReport],
) -> Value {
    let now = time(&Utc::now());
    let ready = phase.phase == "Running" && containers.iter().all(ContainerReport::is_running);
    let initialized = init
        .iter()
        .all(|c| matches!(c.state, State::Terminated { exit_code: 0, .. }));
    let condition = |kind: &str, value: bool| {
        json!({"type": kind, "status": if value { "True" } else { "False" }, "lastTransitionTime": now,
               "lastProbeTime": null})
    };
    let mut status = json!({
        "phase": phase.phase,
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": time(&start_time),
        "conditions": [
            condition("PodReadyToStartContainers", true),
            condition("Initialized", initialized),
            condition("ContainersReady", ready),
            condition("Ready", ready),
        ],
        "containerStatuses": containers.iter().map(ContainerReport::to_json).collect::<Vec<_>>(),
    });
    if !init.is_empty() {
        status["initContainerStatuses"] = init.iter().map(ContainerReport::to_json).collect();
    }
    if let Some(reason) = &phase.reason {
        status["reason"] = json!(reason);
    }
    if let Some(message) = &phase.message {
        status["message"] = json!(message);
    }
    json!({"status": status})
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn exited(code: i32) -> ContainerReport {
        ContainerReport {
            state: State::exited(code, None, Utc::now(), "process://1".into()),
            ..ContainerReport::new("main", "busybox")
        }
    }

    #[test]
    fn terminal_phase_needs_every_container_to_succeed() {
        assert_eq!(terminal_phase(&[exited(0), exited(0)]).phase, "Succeeded");
        assert_eq!(terminal_phase(&[exited(0), exited(3)]).phase, "Failed");
    }

    #[test]
    fn patch_reports_exit_code_and_reason() {
        let patch = pod_status_patch(&Phase::plain("Failed"), Utc::now(), &[], &[exited(3)]);
        let c = &patch["status"]["containerStatuses"][0];
        assert_eq!(c["state"]["terminated"]["exitCode"], 3);
        assert_eq!(c["state"]["terminated"]["reason"], "Error");
        assert_eq!(c["ready"], false);
        assert_eq!(patch["status"]["phase"], "Failed");
        assert!(patch["status"].get("initContainerStatuses").is_none());
    }

    #[test]
    fn running_pod_is_ready() {
        let running = ContainerReport {
            state: State::Running {
                started: Utc::now(),
                container_id: "process://7".into(),
            },
            ..ContainerReport::new("main", "kubetrain:dev")
        };
        let patch = pod_status_patch(&Phase::plain("Running"), Utc::now(), &[], &[running]);
        let conditions = patch["status"]["conditions"].as_array().unwrap();
        let ready = conditions.iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(ready["status"], "True");
        assert_eq!(
            patch["status"]["containerStatuses"][0]["containerID"],
            "process://7"
        );
    }
}
