//! The process pool: a FIFO queue, at most `workers` trainer processes at once, each started
//! as `kubetrain train` with the arguments and environment the Kubernetes Job gets, its
//! progress read from stdout (JSON lines) into the run's status. Also: deadlines, retries,
//! cancel, suspend, TTL and recovery after a restart.
//!
//! [`Inner`] is shared by the REST backend and the pool's tasks; its parts live with their
//! concepts: the run table (`table`), queue and slots (`queue`), one attempt's life
//! (`attempt`) with its process (`process`) and retry policy ([`crate::retry`]), every
//! deadline (`timers`, `deadlines`), and recovery after a restart (`recovery`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kubetrain_api::{Phase, TrainingRun, lifecycle};
use kubetrain_gateway::BackendError;
use tokio::sync::{Notify, Semaphore, broadcast, watch};
use tokio::task::JoinHandle;

use crate::Config;
use crate::status;
use crate::store::Store;
use crate::timers::Timers;
use crate::validate::SchemaValidator;

/// `(namespace, name)` of a run.
pub type Key = (String, String);

/// A change of a run, as watchers see it.
#[derive(Debug, Clone)]
pub struct Event {
    pub(crate) key: Key,
    pub(crate) run: TrainingRun,
    pub(crate) deleted: bool,
}

/// Why a running attempt must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `spec.cancel`: the run ends Cancelled.
    Cancel,
    /// `spec.suspend`: the run goes back to Queued.
    Suspend,
    /// The run was deleted.
    Delete,
    /// `activeDeadlineSeconds` passed: the run ends DeadlineExceeded.
    Deadline,
    /// `kubetrain local` is stopping: the run ends Interrupted.
    Shutdown,
}

/// Everything the backend shares between requests and pool tasks.
#[derive(Debug)]
pub struct Inner {
    /// The run table. A std mutex: every access is a short SQLite call on the blocking pool,
    /// never held across an await.
    pub(crate) db: Arc<Mutex<Store>>,
    /// Every change of a run, for watchers.
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) schema: SchemaValidator,
    pub(crate) config: Config,
    /// Trainer threads of a run that does not say.
    pub(crate) threads: u32,
    /// Runs waiting for a slot, first in first out. A std mutex: pushed and popped, never
    /// held across an await.
    pub(crate) queue: Mutex<VecDeque<Key>>,
    /// Wakes the dispatcher when the queue gets a run.
    pub(crate) wake: Notify,
    /// One permit per worker.
    pub(crate) slots: Arc<Semaphore>,
    /// The stop signal of each run with a trainer (or a retry backoff) in progress. A std
    /// mutex: looked up and changed, never held across an await.
    pub(crate) active: Mutex<HashMap<Key, watch::Sender<Option<Stop>>>>,
    /// How many runs hold a slot, for a shutdown to wait on.
    pub(crate) running: watch::Sender<usize>,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) dispatcher: Mutex<Option<JoinHandle<()>>>,
    /// TTLs, start and active deadlines.
    pub(crate) timers: Timers,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep going.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn internal(error: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(error.to_string())
}

impl Inner {
    pub(crate) fn new(
        store: Store,
        schema: SchemaValidator,
        config: Config,
        threads: u32,
    ) -> Arc<Self> {
        let (events, _) = broadcast::channel(4096);
        let (running, _) = watch::channel(0);
        let inner = Arc::new(Self {
            db: Arc::new(Mutex::new(store)),
            events,
            schema,
            slots: Arc::new(Semaphore::new(config.workers)),
            config,
            threads,
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            active: Mutex::new(HashMap::new()),
            running,
            shutting_down: AtomicBool::new(false),
            dispatcher: Mutex::new(None),
            timers: Timers::default(),
        });
        inner.start_timers();
        inner
    }

    /// Tell the run's running attempt, if any, to stop.
    pub(crate) fn stop(&self, key: &Key, why: Stop) {
        if let Some(sender) = lock(&self.active).get(key) {
            sender.send_replace(Some(why));
        }
    }

    pub(crate) fn running(&self) -> usize {
        *self.running.borrow()
    }

    /// A new run was stored: queue it (which arms its start deadline).
    pub(crate) fn created(self: &Arc<Self>, run: &TrainingRun) {
        if !run.spec.suspend {
            self.enqueue(run);
        }
    }

    /// Set `spec.suspend`: a suspended run's attempt is stopped, a resumed run goes to the
    /// back of the queue with a fresh start deadline.
    pub(crate) async fn set_suspend(
        self: &Arc<Self>,
        key: Key,
        suspend: bool,
    ) -> Result<TrainingRun, BackendError> {
        let now = Timestamp::now();
        let changed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&changed);
        let run = self
            .transition(key.clone(), move |run| {
                if run.spec.suspend == suspend {
                    return false;
                }
                run.spec.suspend = suspend;
                run.metadata.generation = Some(run.metadata.generation.unwrap_or(1) + 1);
                // A running attempt is stopped first; the pool then records the suspension.
                if suspend && status::phase(run) != Some(Phase::Running) {
                    status::suspend(run, now);
                }
                if !suspend {
                    status::queue(run, lifecycle::RESUMED, now);
                }
                flag.store(true, Ordering::SeqCst);
                true
            })
            .await?
            .ok_or_else(|| BackendError::NotFound {
                namespace: key.0.clone(),
                name: key.1.clone(),
            })?;
        if changed.load(Ordering::SeqCst) {
            if suspend {
                self.stop(&key, Stop::Suspend);
            } else {
                self.enqueue(&run);
            }
        }
        Ok(run)
    }

    /// Stop taking runs, stop every trainer (their runs end Interrupted) and wait for them.
    pub(crate) async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        if let Some(dispatcher) = lock(&self.dispatcher).take() {
            dispatcher.abort();
        }
        self.timers.stop();
        for sender in lock(&self.active).values() {
            sender.send_replace(Some(Stop::Shutdown));
        }
        let mut running = self.running.subscribe();
        // Trainers have at most 5 s after SIGTERM (`Config::grace_for`); the bound only guards
        // against a hung disk.
        let _ = tokio::time::timeout(Duration::from_secs(30), running.wait_for(|n| *n == 0)).await;
    }

    /// Put the run at the back of the queue and arm its start deadline.
    pub(crate) fn enqueue(self: &Arc<Self>, run: &TrainingRun) {
        let key = run_key(run);
        lock(&self.queue).push_back(key);
        self.wake.notify_one();
        self.arm_start_deadline(run);
    }
}

/// `(namespace, name)` of `run`.
pub(crate) fn run_key(run: &TrainingRun) -> Key {
    (
        run.metadata.namespace.clone().unwrap_or_default(),
        run.metadata.name.clone().unwrap_or_default(),
    )
}

/// `namespace/name` of `run`, for logs.
pub(crate) fn run_name(run: &TrainingRun) -> String {
    let (namespace, name) = run_key(run);
    format!("{namespace}/{name}")
}
