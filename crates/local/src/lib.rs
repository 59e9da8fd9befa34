//! `kubetrain local`: the gateway's REST API on one machine. Runs live in SQLite and train in
//! local `kubetrain train` processes started exactly as the Kubernetes Job starts them.
//!
//! - [`store`]: the runs table (WAL-mode SQLite in the data directory).
//! - [`validate`]: the checks the Kubernetes API server would make (CRD schema, CEL rules,
//!   names and labels), with field paths.
//! - [`status`]: the controller's phases, conditions, reasons and messages, from what the
//!   process pool saw.
//! - [`pool`]: the FIFO queue and the bounded pool of trainer processes: deadlines, retries,
//!   cancel, suspend, TTL, and what a restart does.
//!
//! **Restart.** Finished runs stay. A run that was training when the previous process ended
//! (crash or shutdown) is Failed with reason `Interrupted`: its trainer was killed with it (or
//! is an orphan whose result nobody reads), and retraining silently could double-count work.
//! Queued runs start, in their original order. TTLs fire at their exact time also after a
//! restart.
//!
//! **Shutdown** ([`LocalRuns::shutdown`]): no new process starts, running trainers get
//! SIGTERM and, after at most 5 s, SIGKILL to their process group, and their runs end Failed
//! with reason `Interrupted`, the same as after a crash; queued runs stay queued for the next
//! start.

mod attempt;
mod deadlines;
pub mod pool;
mod process;
mod queue;
mod recovery;
pub mod retry;
pub mod status;
pub mod store;
mod table;
mod timers;
pub mod validate;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kubetrain_api::TrainingRun;
use kubetrain_api::invocation::StorageEnv;
use kubetrain_gateway::watch::{RunChange, namespace_feed};
use kubetrain_gateway::{BackendError, ListQuery, RunList, Runs, listing};
use rand::Rng;

use crate::pool::{Event, Inner, Key, Stop};
use crate::store::{Inserted, Store};
use crate::validate::{MAX_GENERATE_NAME_PREFIX, SchemaValidator, truncate};

/// File name of the database in the data directory.
pub const DATABASE: &str = "kubetrain.db";

/// Settings of the local backend.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database lives (created when missing).
    pub data_dir: PathBuf,
    /// Trainer processes at most at once.
    pub workers: usize,
    /// The `kubetrain` binary the pool starts as `kubetrain train ...`.
    pub trainer: PathBuf,
    /// Storage endpoint and region passed to trainers whose run names none.
    pub storage: StorageEnv,
    /// At most one progress write per run per this interval.
    pub progress_interval: Duration,
    /// Wait before the first retry of a failed attempt; doubles per retry, at most 30 s.
    pub retry_backoff: Duration,
    /// Where trainers keep parsed datasets between runs (`kubetrain train --dataset-cache`);
    /// `None` parses the data for every run.
    pub dataset_cache: Option<PathBuf>,
    /// How long a stopped trainer (cancel, suspend, delete, deadline, shutdown) has between
    /// SIGTERM and SIGKILL: Kubernetes' default `terminationGracePeriodSeconds`, 30 s.
    pub stop_grace: Duration,
}

impl Config {
    /// Defaults: one worker per core, this very binary as the trainer, parsed datasets kept in
    /// `<data_dir>/cache/datasets`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Result<Self, LocalError> {
        let data_dir: PathBuf = data_dir.into();
        Ok(Self {
            dataset_cache: Some(data_dir.join("cache").join("datasets")),
            data_dir,
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            trainer: std::env::current_exe().map_err(|e| LocalError::Trainer(e.to_string()))?,
            storage: StorageEnv::default(),
            progress_interval: Duration::from_secs(1),
            retry_backoff: Duration::from_secs(1),
            stop_grace: Duration::from_secs(30),
        })
    }

    /// SIGTERM-to-SIGKILL time of a trainer stopped for `why`: [`Config::stop_grace`], at most
    /// 5 s when `kubetrain local` itself is stopping (as a stopping node gives its pods), so
    /// every trainer is gone before the process is.
    pub(crate) fn grace_for(&self, why: pool::Stop) -> Duration {
        match why {
            pool::Stop::Shutdown => self.stop_grace.min(Duration::from_secs(5)),
            _ => self.stop_grace,
        }
    }

    /// Threads per trainer when the run's resources do not say: the cores shared out among the
    /// workers, so a full pool does not oversubscribe the machine.
    fn default_threads(&self) -> u32 {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        u32::try_from((cores / self.workers.max(1)).max(1)).unwrap_or(1)
    }
}

/// Why the local backend cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The data directory cannot be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The SQLite database cannot be opened.
    #[error("cannot open the database {path}: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: store::StoreError,
    },
    /// The CRD's schema cannot be compiled into a validator (a bug).
    #[error(transparent)]
    Schema(#[from] validate::SchemaError),
    /// The trainer binary cannot be found.
    #[error("cannot locate the kubetrain binary to run trainers with: {0}")]
    Trainer(String),
    /// `--workers 0`.
    #[error("workers must be at least 1")]
    NoWorkers,
}

/// The local [`Runs`] backend: SQLite plus a process pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalRuns {
    inner: Arc<Inner>,
}

impl LocalRuns {
    /// Open the data directory, recover what the previous process left (see the crate docs)
    /// and start the pool. Needs a tokio runtime.
    pub async fn open(config: Config) -> Result<Self, LocalError> {
        if config.workers == 0 {
            return Err(LocalError::NoWorkers);
        }
        std::fs::create_dir_all(&config.data_dir).map_err(|source| LocalError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let path = config.data_dir.join(DATABASE);
        let store = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || Store::open(&path))
                .await
                .map_err(|e| LocalError::Trainer(e.to_string()))?
        }
        .map_err(|source| LocalError::Database { path, source })?;
        let schema = SchemaValidator::new()?;
        let threads = config.default_threads();
        let inner = Inner::new(store, schema, config, threads);
        inner
            .recover()
            .await
            .map_err(|e| LocalError::Trainer(e.to_string()))?;
        inner.start_dispatcher();
        Ok(Self { inner })
    }

    /// The database file.
    pub fn database_path(&self) -> PathBuf {
        self.inner.config.data_dir.join(DATABASE)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    /// Set `spec.suspend`: a suspended run does not start (a running one is stopped and
    /// queued again, its attempt not counted); resuming queues it at the back.
    pub async fn set_suspend(
        &self,
        namespace: &str,
        name: &str,
        suspend: bool,
    ) -> Result<TrainingRun, BackendError> {
        self.inner.set_suspend(key(namespace, name), suspend).await
    }

    /// Stop for good: no new trainer starts, running ones are killed and their runs end Failed
    /// with reason `Interrupted`. Queued runs stay queued for the next start.
    pub async fn shutdown(&self) {
        self.inner.shutdown().await;
    }

    /// Trainer processes running right now.
    pub fn running(&self) -> usize {
        self.inner.running()
    }
}

fn key(namespace: &str, name: &str) -> Key {
    (namespace.to_owned(), name.to_owned())
}

/// Five characters from the alphabet Kubernetes uses for generated names (no vowels, no
/// look-alikes).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn not_found(namespace: &str, name: &str) -> BackendError {
    BackendError::NotFound {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

#[async_trait::async_trait]
impl Runs for LocalRuns {
    async fn create(
        &self,
        namespace: &str,
        mut run: TrainingRun,
    ) -> Result<TrainingRun, BackendError> {
        let meta = &mut run.metadata;
        meta.namespace = Some(namespace.to_owned());
        if meta.name.as_deref() == Some("") {
            meta.name = None;
        }
        let errors = self.inner.schema.validate(&run);
        if !errors.is_empty() {
            return Err(BackendError::Invalid(errors));
        }
        let now = Timestamp::now();
        let meta = &mut run.metadata;
        meta.uid = Some(uuid::Uuid::new_v4().to_string());
        meta.creation_timestamp = Some(Time(now));
        meta.generation = Some(1);
        meta.resource_version = None;
        meta.managed_fields = None;
        meta.deletion_timestamp = None;
        run.status = None;
        status::accept(&mut run, now);
        let generated = run.metadata.name.is_none();
        let prefix = run.metadata.generate_name.clone().unwrap_or_default();
        // A taken generated name is drawn again, as the API server does on a collision.
        for _ in 0..8 {
            if generated {
                run.metadata.name = Some(format!(
                    "{}{}",
                    truncate(&prefix, MAX_GENERATE_NAME_PREFIX),
                    random_suffix()
                ));
            }
            let candidate = run.clone();
            match self.inner.db(move |store| store.insert(candidate)).await? {
                Inserted::Created(created) => {
                    let created = *created;
                    self.inner.created(&created);
                    return Ok(created);
                }
                Inserted::Exists if generated => continue,
                Inserted::Exists => {
                    return Err(BackendError::AlreadyExists {
                        namespace: namespace.to_owned(),
                        name: run.metadata.name.unwrap_or_default(),
                    });
                }
            }
        }
        Err(BackendError::Conflict(format!(
            "could not find a free name for generateName {prefix:?}; try again"
        )))
    }

    async fn get(&self, namespace: &str, name: &str) -> Result<TrainingRun, BackendError> {
        let (ns, n) = key(namespace, name);
        self.inner
            .db(move |store| store.get(&ns, &n))
            .await?
            .ok_or_else(|| not_found(namespace, name))
    }

    async fn list(&self, namespace: &str, query: &ListQuery) -> Result<RunList, BackendError> {
        let scope = (!namespace.is_empty()).then(|| namespace.to_owned());
        let runs = self
            .inner
            .db(move |store| store.all(scope.as_deref()))
            .await?;
        listing::page(runs, namespace, query)
    }

    async fn delete(&self, namespace: &str, name: &str) -> Result<TrainingRun, BackendError> {
        self.inner
            .delete(key(namespace, name), None)
            .await?
            .ok_or_else(|| not_found(namespace, name))
    }

    async fn cancel(&self, namespace: &str, name: &str) -> Result<TrainingRun, BackendError> {
        let now = Timestamp::now();
        let run = self
            .inner
            .transition(key(namespace, name), move |run| {
                if run.spec.cancel {
                    return false;
                }
                run.spec.cancel = true;
                run.metadata.generation = Some(run.metadata.generation.unwrap_or(1) + 1);
                // A running trainer is killed first; the pool then records Cancelled.
                if status::phase(run) != Some(kubetrain_api::Phase::Running) {
                    status::cancel(run, now);
                }
                true
            })
            .await?
            .ok_or_else(|| not_found(namespace, name))?;
        self.inner.stop(&key(namespace, name), Stop::Cancel);
        Ok(run)
    }

    async fn watch(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BoxStream<'static, TrainingRun>, BackendError> {
        // Subscribe before reading, so no change between the read and the stream is lost.
        let events = self.inner.subscribe();
        let current = self.get(namespace, name).await?;
        Ok(self
            .inner
            .watch_stream(key(namespace, name), current, events))
    }

    async fn watch_namespace(
        &self,
        namespace: &str,
    ) -> Result<BoxStream<'static, RunChange>, BackendError> {
        let namespace = namespace.to_owned();
        Ok(namespace_feed(
            self.inner.subscribe(),
            move |event: &Event| {
                (event.key.0 == namespace).then(|| {
                    let run = Box::new(event.run.clone());
                    if event.deleted {
                        RunChange::Deleted(run)
                    } else {
                        RunChange::Applied(run)
                    }
                })
            },
        ))
    }

    async fn ready(&self) -> bool {
        self.inner.db(|store| store.get("", "")).await.is_ok()
    }
}

impl Event {
    /// The run the event is about.
    pub fn run(&self) -> &TrainingRun {
        &self.run
    }
}
