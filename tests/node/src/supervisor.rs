//! Watches the Pods bound to this node and keeps one task per pod instance (by UID) fed with
//! the latest object; on shutdown tells every task to stop its processes and waits for them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::launch::NodeContext;
use crate::pod::{self, Control};

/// Runs until `shutdown` resolves, then stops all pods (bounded by `stop_deadline`).
pub async fn run(
    ctx: Arc<NodeContext>,
    node_name: &str,
    shutdown: impl std::future::Future<Output = ()>,
    stop_deadline: Duration,
) {
    let pods = Api::<Pod>::all(ctx.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node_name}"));
    let mut events = watcher(pods, config).default_backoff().boxed();
    let mut handles: HashMap<String, watch::Sender<Control>> = HashMap::new();
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            event = events.try_next() => match event {
                Ok(Some(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                    seen(&ctx, &mut handles, &mut tasks, pod);
                }
                Ok(Some(watcher::Event::Delete(pod))) => {
                    if let Some(tx) = pod.metadata.uid.as_ref().and_then(|uid| handles.remove(uid)) {
                        tx.send_modify(|c| c.gone = true);
                    }
                }
                Ok(Some(watcher::Event::Init | watcher::Event::InitDone)) => {}
                Ok(None) => break,
                Err(error) => tracing::warn!(%error, "watching pods failed; retrying"),
            },
        }
    }
    tracing::info!(pods = handles.len(), "stopping all pods");
    for tx in handles.values() {
        tx.send_modify(|c| c.shutdown = true);
    }
    let all_done = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(stop_deadline, all_done).await.is_err() {
        tracing::warn!("pods did not stop in time");
    }
}

fn seen(
    ctx: &Arc<NodeContext>,
    handles: &mut HashMap<String, watch::Sender<Control>>,
    tasks: &mut JoinSet<()>,
    pod: Pod,
) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    let pod = Arc::new(pod);
    if let Some(tx) = handles.get(&uid) {
        tx.send_modify(|c| c.pod = pod);
        return;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return;
    }
    let (tx, rx) = watch::channel(Control {
        pod,
        gone: false,
        shutdown: false,
    });
    handles.insert(uid, tx);
    tasks.spawn(pod::run(ctx.clone(), rx));
}
