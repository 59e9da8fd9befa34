//! The run table: runs in SQLite, every change published to watchers, and the one way to
//! change a run ([`Inner::transition`]), which refuses finished runs.

use std::sync::Arc;

use kubetrain_api::TrainingRun;
use kubetrain_gateway::BackendError;
use tokio::sync::broadcast;

use crate::pool::{Event, Inner, Key, Stop, internal, lock};
use crate::status;
use crate::store::{Store, StoreError};

impl Inner {
    /// Run `work` on the database off the async runtime.
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, BackendError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&mut lock(&db)))
            .await
            .map_err(internal)?
            .map_err(|e| BackendError::Unavailable(e.to_string()))
    }

    /// The run stored at `key`.
    pub(crate) async fn get(&self, key: &Key) -> Result<Option<TrainingRun>, BackendError> {
        let (namespace, name) = key.clone();
        self.db(move |store| store.get(&namespace, &name)).await
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn publish(&self, key: Key, run: TrainingRun, deleted: bool) {
        // No receiver is fine: nobody is watching.
        let _ = self.events.send(Event { key, run, deleted });
    }

    /// Change an unfinished run with `change` (which says whether it changed anything),
    /// publish the change, and arm the run's TTL when the change finished it. A finished run
    /// is never changed. `None`: no such run.
    pub(crate) async fn transition(
        self: &Arc<Self>,
        key: Key,
        change: impl FnOnce(&mut TrainingRun) -> bool + Send + 'static,
    ) -> Result<Option<TrainingRun>, BackendError> {
        let (namespace, name) = key.clone();
        let result = self
            .db(move |store| {
                let mut finished = false;
                let updated = store.update(&namespace, &name, |run| {
                    if status::is_terminal(run) {
                        return false;
                    }
                    let changed = change(run);
                    finished = status::is_terminal(run);
                    changed
                })?;
                Ok(updated.map(|(run, changed)| (run, changed, finished)))
            })
            .await?;
        let Some((run, changed, finished)) = result else {
            return Ok(None);
        };
        if changed {
            self.publish(key, run.clone(), false);
        }
        if finished {
            self.arm_ttl(&run);
        }
        Ok(Some(run))
    }

    /// Delete the run (only if its uid is `uid`, when given), stopping its trainer.
    pub(crate) async fn delete(
        self: &Arc<Self>,
        key: Key,
        uid: Option<String>,
    ) -> Result<Option<TrainingRun>, BackendError> {
        let (namespace, name) = key.clone();
        let deleted = self
            .db(move |store| {
                if let Some(uid) = uid {
                    let current = store.get(&namespace, &name)?;
                    if current.and_then(|r| r.metadata.uid) != Some(uid) {
                        return Ok(None);
                    }
                }
                store.delete(&namespace, &name)
            })
            .await?;
        if let Some(run) = &deleted {
            self.stop(&key, Stop::Delete);
            self.publish(key, run.clone(), true);
        }
        Ok(deleted)
    }
}
