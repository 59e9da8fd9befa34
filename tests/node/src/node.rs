//! The Node object: registration with capacity, the Ready condition and the heartbeat Lease.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde_json::{Value, json};

use crate::config::Capacity;

const LEASE_SECONDS: i32 = 40;
const HEARTBEAT: Duration = Duration::from_secs(10);
const STATUS_EVERY: u32 = 6;

/// The Node as this process registers it.
pub fn desired_node(name: &str) -> Result<Node> {
    let node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
                "kubetrain.dev/process-node": "true",
            },
        },
        "spec": {},
    }))?;
    Ok(node)
}

/// The node's status: capacity, conditions, addresses and info.
pub fn node_status(capacity: &Capacity, kubelet_port: u16) -> Value {
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut resources = BTreeMap::from([
        ("cpu".to_owned(), capacity.cpu.clone()),
        ("memory".to_owned(), capacity.memory.clone()),
        ("pods".to_owned(), "110".to_owned()),
    ]);
    if capacity.gpu > 0 {
        resources.insert("nvidia.com/gpu".to_owned(), capacity.gpu.to_string());
    }
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "process node"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "process node"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "process node"),
            condition("Ready", "True", "KubeletReady", "kubetrain process node is running pods as local processes"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": "localhost"},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "",
            "kernelVersion": "", "osImage": "kubetrain process node",
            "containerRuntimeVersion": concat!("kubetrain-testnode://", env!("CARGO_PKG_VERSION")),
            "kubeletVersion": "v0.0.0-kubetrain-testnode", "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        },
    })
}

/// Creates the Node (or takes over an existing one of the same name) and reports its status.
pub async fn register(
    client: &Client,
    name: &str,
    capacity: &Capacity,
    kubelet_port: u16,
) -> Result<()> {
    let nodes = Api::<Node>::all(client.clone());
    match nodes
        .create(&PostParams::default(), &desired_node(name)?)
        .await
    {
        Ok(_) => tracing::info!(node = name, "registered"),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            tracing::info!(node = name, "node exists; taking it over");
        }
        Err(error) => return Err(error).with_context(|| format!("registering node {name}")),
    }
    report_status(client, name, capacity, kubelet_port).await
}

async fn report_status(
    client: &Client,
    name: &str,
    capacity: &Capacity,
    kubelet_port: u16,
) -> Result<()> {
    Api::<Node>::all(client.clone())
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": node_status(capacity, kubelet_port)})),
        )
        .await
        .with_context(|| format!("reporting status of node {name}"))?;
    Ok(())
}

/// Renews the node's Lease every 10 s and its status every minute, until the task is dropped.
pub async fn heartbeat(client: Client, name: String, capacity: Capacity, kubelet_port: u16) {
    let leases = Api::<Lease>::namespaced(client.clone(), "kube-node-lease");
    let mut tick = tokio::time::interval(HEARTBEAT);
    let mut beats: u32 = 0;
    loop {
        tick.tick().await;
        if let Err(error) = renew_lease(&client, &leases, &name).await {
            tracing::warn!(%error, "renewing the node lease failed");
        }
        beats = beats.wrapping_add(1);
        if beats.is_multiple_of(STATUS_EVERY)
            && let Err(error) = report_status(&client, &name, &capacity, kubelet_port).await
        {
            tracing::warn!(%error, "reporting node status failed");
        }
    }
}

async fn renew_lease(client: &Client, leases: &Api<Lease>, name: &str) -> Result<()> {
    let node = Api::<Node>::all(client.clone()).get(name).await?;
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: name.to_owned(),
        uid: node.meta().uid.clone().unwrap_or_default(),
        ..OwnerReference::default()
    };
    let mut lease = Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("kube-node-lease".into()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.to_owned()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            ..LeaseSpec::default()
        }),
    };
    match leases.get_opt(name).await? {
        None => {
            leases.create(&PostParams::default(), &lease).await?;
        }
        Some(existing) => {
            lease.metadata.resource_version = existing.metadata.resource_version;
            leases.replace(name, &PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn gpus_are_advertised_only_when_configured() {
        let mut capacity = Capacity {
            cpu: "2".into(),
            memory: "1Gi".into(),
            gpu: 0,
        };
        assert!(
            node_status(&capacity, 0)["capacity"]
                .get("nvidia.com/gpu")
                .is_none()
        );
        capacity.gpu = 2;
        let status = node_status(&capacity, 0);
        assert_eq!(status["allocatable"]["nvidia.com/gpu"], "2");
        assert_eq!(status["capacity"]["cpu"], "2");
    }
}
