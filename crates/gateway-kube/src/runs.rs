//! [`KubeRuns`]: the gateway's runs are TrainingRun objects. Reads come from a reflector's
//! watch cache; writes go to the API server, which validates them (OpenAPI schema and CEL).
//!
//! # Guarantees
//! - `get` of a run the cache has not seen yet (just created) falls back to a GET, so a
//!   client never sees 404 for a run it was told exists.
//! - `watch` subscribes to changes before it reads the current state, so no change between
//!   the two is lost; when the subscriber lags behind it re-reads the run instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::TryStreamExt;
use futures::stream::BoxStream;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use kubetrain_api::TrainingRun;
use kubetrain_api::meta::strip_managed_fields;
use kubetrain_gateway::watch::{RunChange, Seen, follow, namespace_feed};
use kubetrain_gateway::{BackendError, ListQuery, RunList, Runs, listing};
use tokio::sync::broadcast;
use tracing::{debug, info, warn};

use crate::errors::{Target, from_kube};

/// Field manager of the gateway's writes.
pub const FIELD_MANAGER: &str = "kubetrain-gateway";

/// Changes buffered per `watch` subscriber before it counts as lagging (and re-reads).
const CHANGES_BUFFER: usize = 1024;

/// A change the watch cache saw, in the order it saw them.
#[derive(Debug, Clone)]
enum Change {
    Applied(Arc<TrainingRun>),
    Deleted(Arc<TrainingRun>),
    /// The cache was re-listed: deletions while the watch was down are only visible in the
    /// store now.
    Resynced,
}

struct Shared {
    client: Client,
    /// `Some(ns)`: the cache holds this namespace only.
    scope: Option<String>,
    store: Store<TrainingRun>,
    changes: broadcast::Sender<Change>,
    synced: AtomicBool,
}

/// TrainingRuns in Kubernetes behind the gateway's routes.
pub struct KubeRuns {
    shared: Arc<Shared>,
    cache: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for KubeRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeRuns")
            .field("scope", &self.shared.scope)
            .field("cached", &self.shared.store.len())
            .field("synced", &self.shared.synced.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Drop for KubeRuns {
    fn drop(&mut self) {
        self.cache.abort();
    }
}

impl KubeRuns {
    /// Starts the watch cache of TrainingRuns in every namespace, or in `scope` only, and
    /// returns at once; [`Runs::ready`] says when the first full list is in.
    pub fn start(client: Client, scope: Option<String>) -> Self {
        let api: Api<TrainingRun> = match &scope {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        };
        let (store, writer) = reflector::store::<TrainingRun>();
        let (changes, _) = broadcast::channel(CHANGES_BUFFER);
        let shared = Arc::new(Shared {
            client,
            scope,
            store,
            changes,
            synced: AtomicBool::new(false),
        });
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(strip_managed_fields)
            .reflect(writer);
        let cache = tokio::spawn(feed_changes(events, shared.clone()));
        Self { shared, cache }
    }

    fn api(&self, namespace: &str) -> Result<Api<TrainingRun>, BackendError> {
        self.shared.api(namespace)
    }
}

impl Shared {
    fn api(&self, namespace: &str) -> Result<Api<TrainingRun>, BackendError> {
        match &self.scope {
            Some(scope) if scope != namespace => Err(BackendError::BadRequest(format!(
                "this gateway serves namespace \"{scope}\" only, not \"{namespace}\""
            ))),
            _ => Ok(Api::namespaced(self.client.clone(), namespace)),
        }
    }

    fn cached(&self, namespace: &str, name: &str) -> Option<Arc<TrainingRun>> {
        self.store.get(&ObjectRef::new(name).within(namespace))
    }

    /// The run as it is now, for a watch that may have missed changes; `None` (the end of
    /// the watch) once it is gone.
    async fn reread(&self, namespace: &str, name: &str) -> Option<TrainingRun> {
        match self.current(namespace, name).await {
            Ok(run) => Some(run),
            Err(BackendError::NotFound { .. }) => None,
            Err(error) => {
                warn!(%error, run = %name, "re-reading a watched run failed; ending its watch");
                None
            }
        }
    }

    /// From the cache, else from the API server.
    async fn current(&self, namespace: &str, name: &str) -> Result<TrainingRun, BackendError> {
        let api = self.api(namespace)?;
        if let Some(run) = self.cached(namespace, name) {
            return Ok(run.as_ref().clone());
        }
        let target = Target {
            namespace,
            name,
            creating: false,
        };
        match api.get_opt(name).await {
            Ok(Some(mut run)) => {
                strip_managed_fields(&mut run);
                Ok(run)
            }
            Ok(None) => Err(BackendError::NotFound {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            }),
            Err(error) => Err(from_kube(error, target)),
        }
    }
}

/// Drives the reflector and tells `watch` subscribers what changed.
async fn feed_changes(
    events: impl futures::Stream<Item = Result<watcher::Event<TrainingRun>, watcher::Error>>,
    shared: Arc<Shared>,
) {
    let mut events = std::pin::pin!(events);
    loop {
        match events.try_next().await {
            Ok(Some(event)) => {
                let change = match event {
                    watcher::Event::Apply(run) | watcher::Event::InitApply(run) => {
                        Change::Applied(Arc::new(run))
                    }
                    watcher::Event::Delete(run) => Change::Deleted(Arc::new(run)),
                    watcher::Event::Init => continue,
                    watcher::Event::InitDone => {
                        if !shared.synced.swap(true, Ordering::Relaxed) {
                            info!(runs = shared.store.len(), "TrainingRun cache synced");
                        }
                        Change::Resynced
                    }
                };
                // No subscribers is fine: nobody is watching.
                let _ = shared.changes.send(change);
            }
            Ok(None) => {
                warn!("the TrainingRun watch ended");
                return;
            }
            // The backoff retries; the cache keeps serving what it has.
            Err(error) => warn!(%error, "watching TrainingRuns failed; retrying"),
        }
    }
}

#[async_trait::async_trait]
impl Runs for KubeRuns {
    async fn create(
        &self,
        namespace: &str,
        mut run: TrainingRun,
    ) -> Result<TrainingRun, BackendError> {
        let api = self.api(namespace)?;
        clear_server_fields(&mut run);
        run.metadata.namespace = Some(namespace.to_owned());
        let name = run
            .metadata
            .name
            .clone()
            .or_else(|| run.metadata.generate_name.clone())
            .unwrap_or_default();
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..Default::default()
        };
        let mut created = api.create(&params, &run).await.map_err(|error| {
            from_kube(
                error,
                Target {
                    namespace,
                    name: &name,
                    creating: true,
                },
            )
        })?;
        strip_managed_fields(&mut created);
        debug!(namespace, name = %created.name_any(), "created TrainingRun");
        Ok(created)
    }

    async fn get(&self, namespace: &str, name: &str) -> Result<TrainingRun, BackendError> {
        self.shared.current(namespace, name).await
    }

    async fn list(&self, namespace: &str, query: &ListQuery) -> Result<RunList, BackendError> {
        let api = self.api(namespace)?;
        if self.shared.synced.load(Ordering::Relaxed) {
            return listing::page(self.shared.store.state(), namespace, query);
        }
        // Before the first full list the cache would answer with a partial list.
        let listed = api.list(&Default::default()).await.map_err(|error| {
            from_kube(
                error,
                Target {
                    namespace,
                    name: "",
                    creating: false,
                },
            )
        })?;
        let runs = listed.items.into_iter().map(|mut run| {
            strip_managed_fields(&mut run);
            run
        });
        listing::page(runs, namespace, query)
    }

    async fn delete(&self, namespace: &str, name: &str) -> Result<TrainingRun, BackendError> {
        let last_seen = self.shared.current(namespace, name).await?;
        let api = self.api(namespace)?;
        let target = Target {
            namespace,
            name,
            creating: false,
        };
        let deleted = api
            .delete(name, &DeleteParams::background())
            .await
            .map_err(|error| from_kube(error, target))?;
        Ok(deleted
            .left()
            .map(|mut run| {
                strip_managed_fields(&mut run);
                run
            })
            .unwrap_or(last_seen))
    }

    async fn cancel(&self, namespace: &str, name: &str) -> Result<TrainingRun, BackendError> {
        let api = self.api(namespace)?;
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..Default::default()
        };
        let patch = Patch::Merge(serde_json::json!({"spec": {"cancel": true}}));
        let mut run = api.patch(name, &params, &patch).await.map_err(|error| {
            from_kube(
                error,
                Target {
                    namespace,
                    name,
                    creating: false,
                },
            )
        })?;
        strip_managed_fields(&mut run);
        Ok(run)
    }

    async fn watch(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BoxStream<'static, TrainingRun>, BackendError> {
        // Subscribe before reading, so nothing between the read and the first change is lost.
        let changes = self.shared.changes.subscribe();
        let first = self.shared.current(namespace, name).await?;
        Ok(watch_run(
            self.shared.clone(),
            namespace,
            name,
            changes,
            first,
        ))
    }

    async fn watch_namespace(
        &self,
        namespace: &str,
    ) -> Result<BoxStream<'static, RunChange>, BackendError> {
        let namespace = namespace.to_owned();
        let ours = move |run: &TrainingRun| run.meta().namespace.as_deref() == Some(&namespace);
        Ok(namespace_feed(
            self.shared.changes.subscribe(),
            move |change: &Change| match change {
                Change::Applied(run) if ours(run) => {
                    Some(RunChange::Applied(Box::new(run.as_ref().clone())))
                }
                Change::Deleted(run) if ours(run) => {
                    Some(RunChange::Deleted(Box::new(run.as_ref().clone())))
                }
                Change::Applied(_) | Change::Deleted(_) => None,
                Change::Resynced => Some(RunChange::Resync),
            },
        ))
    }

    async fn ready(&self) -> bool {
        self.shared.synced.load(Ordering::Relaxed)
    }
}

/// Follow run `namespace/name` through the cache's change feed `changes`, from `first`.
fn watch_run(
    shared: Arc<Shared>,
    namespace: &str,
    name: &str,
    changes: broadcast::Receiver<Change>,
    first: TrainingRun,
) -> BoxStream<'static, TrainingRun> {
    let (ours_ns, ours_name) = (namespace.to_owned(), name.to_owned());
    let is_ours = move |run: &TrainingRun| {
        run.meta().name.as_deref() == Some(ours_name.as_str())
            && run.meta().namespace.as_deref() == Some(ours_ns.as_str())
    };
    let see = move |change: &Change| match change {
        Change::Applied(run) if is_ours(run) => Seen::Changed(Box::new(run.as_ref().clone())),
        Change::Deleted(run) if is_ours(run) => Seen::Gone,
        Change::Applied(_) | Change::Deleted(_) => Seen::Other,
        Change::Resynced => Seen::Stale,
    };
    let (namespace, name) = (namespace.to_owned(), name.to_owned());
    let reread = move || {
        let (shared, namespace, name) = (shared.clone(), namespace.clone(), name.clone());
        async move { shared.reread(&namespace, &name).await }
    };
    follow(first, changes, see, reread)
}

/// What the API server sets on a run, dropped from a run to create: a client that posts back
/// a run it read gets a new run, as with `kubectl create` of an exported object (the API
/// server itself refuses a set resourceVersion with a 500, and ignores a status).
fn clear_server_fields(run: &mut TrainingRun) {
    let meta = run.meta_mut();
    meta.resource_version = None;
    meta.uid = None;
    meta.creation_timestamp = None;
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    meta.generation = None;
    meta.self_link = None;
    meta.managed_fields = None;
    run.status = None;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use kube::runtime::reflector::store::Writer;

    use super::*;
    use futures::StreamExt;

    fn run(name: &str, version: &str, phase: Option<kubetrain_api::Phase>) -> TrainingRun {
        let run = TrainingRun::test(name).at_version(version);
        match phase {
            Some(phase) => run.in_phase(phase),
            None => run,
        }
    }

    /// Shared state over a store the test writes itself, and a client that reaches nothing
    /// (so every answer must come from the cache).
    fn shared() -> (Arc<Shared>, Writer<TrainingRun>) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let (store, writer) = reflector::store::<TrainingRun>();
        let (changes, _) = broadcast::channel(CHANGES_BUFFER);
        let shared = Arc::new(Shared {
            client: Client::try_from(config).unwrap(),
            scope: None,
            store,
            changes,
            synced: AtomicBool::new(true),
        });
        (shared, writer)
    }

    fn apply(shared: &Shared, writer: &mut Writer<TrainingRun>, run: TrainingRun) {
        writer.apply_watcher_event(&watcher::Event::Apply(run.clone()));
        let _ = shared.changes.send(Change::Applied(Arc::new(run)));
    }

    fn watch(shared: &Arc<Shared>, first: TrainingRun) -> BoxStream<'static, TrainingRun> {
        watch_run(
            shared.clone(),
            "ml",
            "churn",
            shared.changes.subscribe(),
            first,
        )
    }

    fn versions(runs: &[TrainingRun]) -> Vec<String> {
        runs.iter().filter_map(|r| r.resource_version()).collect()
    }

    #[tokio::test]
    async fn watch_sends_the_current_run_then_its_changes_once_and_ends_when_it_is_deleted() {
        let (shared, mut writer) = shared();
        apply(&shared, &mut writer, run("churn", "1", None));
        let mut stream = watch(&shared, run("churn", "1", None));
        apply(&shared, &mut writer, run("other", "2", None));
        // A re-list sends what the watch already saw: not sent twice.
        apply(&shared, &mut writer, run("churn", "1", None));
        apply(
            &shared,
            &mut writer,
            run("churn", "3", Some(kubetrain_api::Phase::Running)),
        );
        let _ = shared.changes.send(Change::Resynced);
        let gone = run("churn", "4", Some(kubetrain_api::Phase::Succeeded));
        writer.apply_watcher_event(&watcher::Event::Delete(gone.clone()));
        let _ = shared.changes.send(Change::Deleted(Arc::new(gone)));
        let seen: Vec<TrainingRun> = stream.by_ref().collect().await;
        assert_eq!(versions(&seen), ["1", "3"]);
    }

    #[tokio::test]
    async fn a_lagging_watch_rereads_the_run_instead_of_losing_its_last_state() {
        let (shared, mut writer) = shared();
        apply(&shared, &mut writer, run("churn", "1", None));
        let mut stream = watch(&shared, run("churn", "1", None));
        assert_eq!(versions(&[stream.next().await.unwrap()]), ["1"]);
        // More changes than the subscriber's buffer holds, the last one of our run.
        for i in 0..CHANGES_BUFFER + 10 {
            apply(&shared, &mut writer, run(&format!("busy-{i}"), "9", None));
        }
        apply(
            &shared,
            &mut writer,
            run("churn", "99", Some(kubetrain_api::Phase::Succeeded)),
        );
        let next = stream.next().await.unwrap();
        assert_eq!(next.resource_version().as_deref(), Some("99"));
    }

    #[tokio::test]
    async fn a_run_deleted_while_the_watch_was_down_ends_the_watch_at_the_resync() {
        let (shared, mut writer) = shared();
        apply(&shared, &mut writer, run("churn", "1", None));
        let mut stream = watch(&shared, run("churn", "1", None));
        assert!(stream.next().await.is_some());
        // A re-list without the run (no Delete event was seen), then the resync.
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let _ = shared.changes.send(Change::Resynced);
        // The store misses it, so the watch asks the API server, which is unreachable here:
        // the watch ends rather than hanging.
        assert!(stream.next().await.is_none());
    }
}
