//! What a restart does with the runs the previous process left (see the crate docs): runs
//! that were training end Interrupted, cancelled ones Cancelled, queued ones queue again in
//! their order, and finished ones get their TTL back.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kubetrain_api::{Phase, lifecycle};
use kubetrain_gateway::BackendError;
use tracing::info;

use crate::pool::{Inner, run_key, run_name};
use crate::status;

impl Inner {
    /// Recover every stored run.
    pub(crate) async fn recover(self: &Arc<Self>) -> Result<(), BackendError> {
        let runs = self.db(|store| store.all(None)).await?;
        let now = Timestamp::now();
        for run in runs {
            let key = run_key(&run);
            if status::is_terminal(&run) {
                self.arm_ttl(&run);
                continue;
            }
            let attempts = run.status.as_ref().and_then(|s| s.attempts).unwrap_or(0);
            let was_training = matches!(
                status::phase(&run),
                Some(Phase::Running) | Some(Phase::Pending)
            ) && attempts > 0;
            if was_training {
                let message = lifecycle::interrupted(attempts);
                self.transition(key, move |run| {
                    status::fail(run, lifecycle::INTERRUPTED, &message, now);
                    true
                })
                .await?;
            } else if run.spec.cancel {
                self.transition(key, move |run| {
                    status::cancel(run, now);
                    true
                })
                .await?;
            } else if !run.spec.suspend {
                info!(run = %run_name(&run), "queued again after a restart");
                self.enqueue(&run);
            }
        }
        Ok(())
    }
}
