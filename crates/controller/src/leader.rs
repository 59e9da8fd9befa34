//! Leader election on a coordination.k8s.io Lease, so several replicas are safe: one
//! reconciles, the others wait to take over.

use std::future::Future;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tracing::{info, warn};

/// Name of the Lease the replicas compete for.
pub const LEASE_NAME: &str = "kubetrain-controller";
/// Seconds a lease stays valid without renewal.
const LEASE_SECONDS: u64 = 15;
/// Seconds before expiry at which the holder renews.
const GRACE_SECONDS: u64 = 5;

/// Errors of leader election.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The Lease could not be read or written.
    #[error("leader election on Lease {namespace}/{LEASE_NAME}: {source}")]
    Lease {
        /// Namespace of the Lease.
        namespace: String,
        /// What failed.
        source: kube_lease_manager::LeaseManagerError,
    },
    /// Another replica took the Lease; this one must stop reconciling at once.
    #[error("lost the Lease {namespace}/{LEASE_NAME} to another replica")]
    Lost {
        /// Namespace of the Lease.
        namespace: String,
    },
}

/// Wait until this replica holds the Lease, run `work` while it does, and return an error as
/// soon as the Lease is lost (the process should exit and restart as a follower).
pub async fn lead<F: Future<Output = ()>>(
    client: Client,
    namespace: &str,
    identity: &str,
    on_standby: impl FnOnce(),
    work: impl FnOnce() -> F,
) -> Result<(), LeaderError> {
    let lease_error = |source| LeaderError::Lease {
        namespace: namespace.to_owned(),
        source,
    };
    let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_SECONDS)
        .with_grace(GRACE_SECONDS)
        .build()
        .await
        .map_err(lease_error)?;
    let (mut leading, task) = manager.watch().await;
    on_standby();
    info!(identity, "waiting to lead");
    while !*leading.borrow_and_update() {
        if leading.changed().await.is_err() {
            return finish(task, namespace).await;
        }
    }
    info!(identity, "leading");
    let kept = {
        let lost = async {
            loop {
                if leading.changed().await.is_err() || !*leading.borrow_and_update() {
                    break;
                }
            }
        };
        tokio::select! {
            () = work() => true,
            () = lost => false,
        }
    };
    if !kept {
        warn!(identity, "lost the lease");
        return Err(LeaderError::Lost {
            namespace: namespace.to_owned(),
        });
    }
    drop(leading);
    finish(task, namespace).await
}

async fn finish(
    task: tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
    namespace: &str,
) -> Result<(), LeaderError> {
    match task.await {
        Ok(Ok(manager)) => manager
            .release()
            .await
            .map_err(|source| LeaderError::Lease {
                namespace: namespace.to_owned(),
                source,
            }),
        Ok(Err(source)) => Err(LeaderError::Lease {
            namespace: namespace.to_owned(),
            source,
        }),
        Err(_) => Ok(()),
    }
}
