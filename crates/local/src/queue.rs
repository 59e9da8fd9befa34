//! The queue and its slots: queued runs go to free workers, first in first out; each gets a
//! slot for all of its attempts.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kubetrain_api::TrainingRun;
use tokio::sync::watch;
use tracing::warn;

use crate::pool::{Inner, lock};
use crate::status;

impl Inner {
    pub(crate) fn start_dispatcher(self: &Arc<Self>) {
        let inner = Arc::clone(self);
        let handle = tokio::spawn(async move { inner.dispatch().await });
        *lock(&self.dispatcher) = Some(handle);
    }

    /// Hand queued runs to free workers, first in first out.
    async fn dispatch(self: Arc<Self>) {
        loop {
            let Ok(permit) = Arc::clone(&self.slots).acquire_owned().await else {
                return;
            };
            let key = loop {
                if self.shutting_down.load(Ordering::SeqCst) {
                    return;
                }
                let next = lock(&self.queue).pop_front();
                match next {
                    Some(key) => break key,
                    None => self.wake.notified().await,
                }
            };
            let run = match self.get(&key).await {
                Ok(run) => run,
                Err(error) => {
                    warn!(%error, "cannot read a queued run; it stays queued");
                    lock(&self.queue).push_front(key);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Some(run) = run else { continue };
            if !runnable(&run) {
                continue;
            }
            if lock(&self.active).contains_key(&key) {
                // Its previous attempt is still winding down (a quick suspend and resume):
                // look again shortly.
                let inner = Arc::clone(&self);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    lock(&inner.queue).push_back(key);
                    inner.wake.notify_one();
                });
                continue;
            }
            let (stop, stop_rx) = watch::channel(None);
            lock(&self.active).insert(key.clone(), stop);
            self.running.send_modify(|n| *n += 1);
            let inner = Arc::clone(&self);
            tokio::spawn(async move {
                inner.train(&key, stop_rx, permit).await;
                lock(&inner.active).remove(&key);
                inner.running.send_modify(|n| *n = n.saturating_sub(1));
            });
        }
    }
}

/// May a trainer start for this run now?
pub(crate) fn runnable(run: &TrainingRun) -> bool {
    !status::is_terminal(run) && !run.spec.cancel && !run.spec.suspend
}
