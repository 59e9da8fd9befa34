//! The process pool: a FIFO queue, at most `workers` trainer processes at once, each started
//! as `kubetrain train` with the arguments and environment the Kubernetes Job gets, its
//! progress read from stdout (JSON lines) into the run's status. Also: deadlines, retries,
//! cancel, suspend, TTL and recovery after a restart.

use std::collections::{HashMap, VecDeque};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::jiff::Timestamp;
use kubetrain_api::invocation::{
    ENV_DATASET_CACHE, ENV_PREFIX, EnvValue, StatusReport, trainer_args, trainer_env,
};
use kubetrain_api::{Phase, TrainerError, TrainingRun, exit_code};
use kubetrain_controller::reporter;
use kubetrain_gateway::BackendError;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::Config;
use crate::status::{self, Results};
use crate::store::{Store, StoreError};
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
    /// `kubetrain local` is stopping: the run ends Interrupted.
    Shutdown,
}

/// Most trainer stderr kept for the error message.
const STDERR_TAIL: usize = 16 * 1024;
/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Everything the backend shares between requests and pool tasks.
#[derive(Debug)]
pub struct Inner {
    db: Arc<Mutex<Store>>,
    events: broadcast::Sender<Event>,
    pub(crate) schema: SchemaValidator,
    pub(crate) config: Config,
    threads: u32,
    queue: Mutex<VecDeque<Key>>,
    wake: Notify,
    slots: Arc<Semaphore>,
    active: Mutex<HashMap<Key, watch::Sender<Option<Stop>>>>,
    running: watch::Sender<usize>,
    shutting_down: AtomicBool,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep going.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn internal(error: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(error.to_string())
}

/// From now until `at`, zero when `at` has passed.
fn until(at: Timestamp) -> Duration {
    let now = Timestamp::now();
    if at <= now {
        return Duration::ZERO;
    }
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

fn add_seconds(at: Timestamp, seconds: i64) -> Timestamp {
    at.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(seconds))
        .unwrap_or(Timestamp::MAX)
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
        Arc::new(Self {
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
        })
    }

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

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn publish(&self, key: Key, run: TrainingRun, deleted: bool) {
        // No receiver is fine: nobody is watching.
        let _ = self.events.send(Event { key, run, deleted });
    }

    /// Change the run with `change` (which says whether it changed anything), publish the
    /// change, and arm its TTL when the change finished it. `None`: no such run.
    pub(crate) async fn update(
        self: &Arc<Self>,
        key: Key,
        change: impl FnOnce(&mut TrainingRun) -> bool + Send + 'static,
    ) -> Result<Option<TrainingRun>, BackendError> {
        let (namespace, name) = key.clone();
        let result = self
            .db(move |store| {
                let mut finished = false;
                let updated = store.update(&namespace, &name, |run| {
                    let was_terminal = status::is_terminal(run);
                    let changed = change(run);
                    finished = !was_terminal && status::is_terminal(run);
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

    /// Tell the run's running attempt, if any, to stop.
    pub(crate) fn stop(&self, key: &Key, why: Stop) {
        if let Some(sender) = lock(&self.active).get(key) {
            sender.send_replace(Some(why));
        }
    }

    pub(crate) fn running(&self) -> usize {
        *self.running.borrow()
    }

    /// A new run was stored: queue it and arm its start deadline.
    pub(crate) fn created(self: &Arc<Self>, run: &TrainingRun) {
        if !run.spec.suspend {
            self.enqueue(run);
        }
    }

    fn enqueue(self: &Arc<Self>, run: &TrainingRun) {
        let key = run_key(run);
        lock(&self.queue).push_back(key);
        self.wake.notify_one();
        self.arm_start_deadline(run);
    }

    // ---- recovery -------------------------------------------------------------------------

    /// What a restart does with the runs the previous process left (see the crate docs).
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
                let message = format!(
                    "kubetrain local stopped while the run was training (attempt {attempts}); create the run again to retrain"
                );
                self.update(key, move |run| {
                    if status::is_terminal(run) {
                        return false;
                    }
                    status::fail(run, "Interrupted", &message, now);
                    true
                })
                .await?;
            } else if run.spec.cancel {
                self.update(key, move |run| {
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

    // ---- timers ---------------------------------------------------------------------------

    /// Delete the finished run at completionTime + ttlSecondsAfterFinished.
    fn arm_ttl(self: &Arc<Self>, run: &TrainingRun) {
        let (Some(ttl), Some(done)) = (
            run.spec.ttl_seconds_after_finished,
            run.status.as_ref().and_then(|s| s.completion_time.clone()),
        ) else {
            return;
        };
        let due = add_seconds(done.0, i64::from(ttl));
        let key = run_key(run);
        let uid = run.metadata.uid.clone();
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(until(due)).await;
            match inner.delete(key.clone(), uid).await {
                Ok(Some(_)) => {
                    info!(run = %format!("{}/{}", key.0, key.1), "deleted: ttlSecondsAfterFinished passed")
                }
                Ok(None) => {}
                Err(error) => warn!(%error, "could not delete a run whose TTL passed"),
            }
        });
    }

    /// Fail the run if it has not started startDeadlineSeconds after creation (or resume).
    fn arm_start_deadline(self: &Arc<Self>, run: &TrainingRun) {
        let Some(deadline) = run.spec.start_deadline_seconds else {
            return;
        };
        let clock = status::start_clock(run);
        let due = add_seconds(clock, deadline);
        let key = run_key(run);
        let uid = run.metadata.uid.clone();
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(until(due)).await;
            let result = inner
                .update(key, move |run| {
                    let waiting = matches!(
                        status::phase(run),
                        Some(Phase::Queued) | Some(Phase::Pending)
                    );
                    let started = run.status.as_ref().is_some_and(|s| s.start_time.is_some());
                    if run.metadata.uid != uid
                        || !waiting
                        || started
                        || run.spec.suspend
                        || status::start_clock(run) != clock
                    {
                        return false;
                    }
                    let last = run
                        .status
                        .as_ref()
                        .and_then(|s| s.message.clone())
                        .unwrap_or_default();
                    status::fail(
                        run,
                        "StartDeadlineExceeded",
                        &format!(
                            "not started within startDeadlineSeconds ({deadline}s); last seen: {last}"
                        ),
                        Timestamp::now(),
                    );
                    true
                })
                .await;
            if let Err(error) = result {
                warn!(%error, "could not apply a start deadline");
            }
        });
    }

    // ---- suspend and shutdown -------------------------------------------------------------

    pub(crate) async fn set_suspend(
        self: &Arc<Self>,
        key: Key,
        suspend: bool,
    ) -> Result<TrainingRun, BackendError> {
        let now = Timestamp::now();
        let changed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&changed);
        let run = self
            .update(key.clone(), move |run| {
                if status::is_terminal(run) || run.spec.suspend == suspend {
                    return false;
                }
                run.spec.suspend = suspend;
                run.metadata.generation = Some(run.metadata.generation.unwrap_or(1) + 1);
                // A running attempt is stopped first; the pool then records the suspension.
                if suspend && status::phase(run) != Some(Phase::Running) {
                    status::suspend(run, now);
                }
                if !suspend {
                    status::queue(run, status::RESUMED, now);
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
                // Resumed: to the back of the queue, with a fresh start deadline.
                self.enqueue(&run);
            }
        }
        Ok(run)
    }

    pub(crate) async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        if let Some(dispatcher) = lock(&self.dispatcher).take() {
            dispatcher.abort();
        }
        for sender in lock(&self.active).values() {
            sender.send_replace(Some(Stop::Shutdown));
        }
        let mut running = self.running.subscribe();
        // Killing is immediate; the bound only guards against a hung disk.
        let _ = tokio::time::timeout(Duration::from_secs(30), running.wait_for(|n| *n == 0)).await;
    }

    // ---- the pool -------------------------------------------------------------------------

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
            let (namespace, name) = key.clone();
            let run = match self.db(move |store| store.get(&namespace, &name)).await {
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

    /// Every attempt of one run, holding one worker slot.
    async fn train(
        self: &Arc<Self>,
        key: &Key,
        mut stop: watch::Receiver<Option<Stop>>,
        _slot: OwnedSemaphorePermit,
    ) {
        let mut failures = 0;
        loop {
            match self.attempt(key, &mut stop, &mut failures).await {
                Ok(Next::Done) => return,
                Ok(Next::Retry(delay)) => {
                    let deadline = self.active_deadline(key).await;
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        why = stopped(&mut stop) => { self.stopped(key, why).await; return; }
                        () = sleep_until(deadline) => { self.deadline_exceeded(key).await; return; }
                    }
                }
                Err(error) => {
                    warn!(%error, run = %format!("{}/{}", key.0, key.1), "training attempt failed to run");
                    let message = error.to_string();
                    let _ = self
                        .update(key.clone(), move |run| {
                            if status::is_terminal(run) {
                                return false;
                            }
                            status::fail(run, "Internal", &message, Timestamp::now());
                            true
                        })
                        .await;
                    return;
                }
            }
        }
    }

    async fn active_deadline(&self, key: &Key) -> Option<Instant> {
        let (namespace, name) = key.clone();
        let run = self.db(move |s| s.get(&namespace, &name)).await.ok()??;
        let seconds = run.spec.active_deadline_seconds?;
        let start = run.status.as_ref()?.start_time.as_ref()?.0;
        Some(Instant::now() + until(add_seconds(start, seconds)))
    }

    /// One attempt: start the trainer, follow it, record how it ended.
    async fn attempt(
        self: &Arc<Self>,
        key: &Key,
        stop: &mut watch::Receiver<Option<Stop>>,
        failures: &mut i32,
    ) -> Result<Next, AttemptError> {
        let (namespace, name) = key.clone();
        let Some(run) = self.db(move |s| s.get(&namespace, &name)).await? else {
            return Ok(Next::Done);
        };
        if !runnable(&run) {
            return Ok(Next::Done);
        }
        let why = *stop.borrow();
        if let Some(why) = why {
            self.stopped(key, why).await;
            return Ok(Next::Done);
        }
        let mut child = self.spawn(&run)?;
        let pid = child.id();
        let now = Timestamp::now();
        let started = self
            .update(key.clone(), move |run| {
                if !runnable(run) {
                    return false;
                }
                let attempt = run.status.as_ref().and_then(|s| s.attempts).unwrap_or(0) + 1;
                status::started(run, attempt, pid, now);
                true
            })
            .await?;
        let Some(run) = started.filter(|r| status::phase(r) == Some(Phase::Running)) else {
            kill(&mut child).await;
            let why = *stop.borrow();
            if let Some(why) = why {
                self.stopped(key, why).await;
            }
            return Ok(Next::Done);
        };
        debug!(run = %run_name(&run), ?pid, "trainer started");
        let deadline = run.spec.active_deadline_seconds.and_then(|seconds| {
            let start = run.status.as_ref()?.start_time.as_ref()?.0;
            Some(Instant::now() + until(add_seconds(start, seconds)))
        });
        let ended = self.follow(key, &mut child, stop, deadline).await;
        match ended {
            Ended::Stopped(why) => {
                kill(&mut child).await;
                self.stopped(key, why).await;
                Ok(Next::Done)
            }
            Ended::Deadline => {
                kill(&mut child).await;
                self.deadline_exceeded(key).await;
                Ok(Next::Done)
            }
            Ended::Exited {
                status: exit,
                results,
                stderr,
            } => {
                self.exited(key, &run, exit, results, &stderr, failures)
                    .await
            }
        }
    }

    fn spawn(&self, run: &TrainingRun) -> Result<Child, AttemptError> {
        let threads = kubetrain_controller::job::trainer_threads(run.spec.resources.as_ref())
            .unwrap_or(self.threads);
        let mut command = Command::new(&self.config.trainer);
        command.args(trainer_args(&run.spec, Some(threads)));
        // Only the shared environment decides how the trainer runs: flags it would read from
        // inherited KUBETRAIN_* variables (and a run identity that would make it report into
        // a cluster) are removed.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with(ENV_PREFIX) {
                command.env_remove(name);
            }
        }
        for var in trainer_env(run, &self.config.storage, StatusReport::Stdout) {
            match var.value {
                EnvValue::Value(value) => {
                    command.env(&var.name, value);
                }
                // No Secrets on one machine: the trainer uses the credentials in
                // `kubetrain local`'s own environment (AWS_ACCESS_KEY_ID, ...).
                EnvValue::SecretKey { .. } => {}
            }
        }
        if let Some(dir) = &self.config.dataset_cache {
            command.env(ENV_DATASET_CACHE, dir);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        command.spawn().map_err(|source| AttemptError::Spawn {
            trainer: self.config.trainer.display().to_string(),
            source,
        })
    }

    /// Read the trainer's progress until it exits, is stopped, or passes its deadline.
    async fn follow(
        self: &Arc<Self>,
        key: &Key,
        child: &mut Child,
        stop: &mut watch::Receiver<Option<Stop>>,
        deadline: Option<Instant>,
    ) -> Ended {
        let stderr = child.stderr.take().map(|mut pipe| {
            tokio::spawn(async move {
                let mut tail = Vec::new();
                let mut buffer = vec![0u8; 8192];
                while let Ok(n) = pipe.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    tail.extend_from_slice(&buffer[..n]);
                    if tail.len() > 2 * STDERR_TAIL {
                        tail.drain(..tail.len() - STDERR_TAIL);
                    }
                }
                String::from_utf8_lossy(&tail).into_owned()
            })
        });
        let mut lines = child.stdout.take().map(|out| BufReader::new(out).lines());
        let mut results = None;
        let mut pending: Option<kubetrain_api::Progress> = None;
        let mut next_write = Instant::now();
        loop {
            tokio::select! {
                line = next_line(&mut lines), if lines.is_some() => match line {
                    Some(line) => match parse_line(&line) {
                        Some(Line::Progress(progress)) => pending = Some(progress),
                        Some(Line::Completed(done)) => results = Some(done),
                        None => debug!(line, "trainer output that is not a progress event"),
                    },
                    None => lines = None,
                },
                exit = child.wait(), if lines.is_none() => {
                    let stderr = match stderr {
                        Some(task) => task.await.unwrap_or_default(),
                        None => String::new(),
                    };
                    return match exit {
                        Ok(status) => Ended::Exited { status, results, stderr },
                        Err(error) => Ended::Exited {
                            status: ExitStatus::default(),
                            results: None,
                            stderr: format!("error: cannot wait for the trainer: {error}"),
                        },
                    };
                }
                why = stopped(stop) => return Ended::Stopped(why),
                () = sleep_until(deadline) => return Ended::Deadline,
                () = tokio::time::sleep_until(next_write), if pending.is_some() => {
                    if let Some(progress) = pending.take() {
                        self.write_progress(key, progress).await;
                    }
                    next_write = Instant::now() + self.config.progress_interval;
                }
            }
        }
    }

    async fn write_progress(self: &Arc<Self>, key: &Key, progress: kubetrain_api::Progress) {
        let result = self
            .update(key.clone(), move |run| {
                if status::phase(run) != Some(Phase::Running) {
                    return false;
                }
                if let Some(s) = run.status.as_mut() {
                    s.progress = Some(progress);
                }
                true
            })
            .await;
        if let Err(error) = result {
            warn!(%error, "could not record progress");
        }
    }

    async fn exited(
        self: &Arc<Self>,
        key: &Key,
        run: &TrainingRun,
        exit: ExitStatus,
        results: Option<Box<Results>>,
        stderr: &str,
        failures: &mut i32,
    ) -> Result<Next, AttemptError> {
        let now = Timestamp::now();
        let code = exit
            .code()
            .or_else(|| std::os::unix::process::ExitStatusExt::signal(&exit).map(|s| 128 + s));
        if exit.success()
            && let Some(results) = results
        {
            self.update(key.clone(), move |run| {
                if status::is_terminal(run) {
                    return false;
                }
                status::succeed(run, *results, now);
                true
            })
            .await?;
            return Ok(Next::Done);
        }
        let error = trainer_error(code, exit.success(), stderr);
        *failures += 1;
        let permanent = matches!(error.exit_code, exit_code::BAD_INPUT | exit_code::USAGE);
        let retries_left = *failures <= run.spec.backoff_limit;
        if !permanent && retries_left {
            let delay = self
                .config
                .retry_backoff
                .saturating_mul(1 << (*failures - 1).clamp(0, 16))
                .min(MAX_BACKOFF);
            info!(run = %run_name(run), failures = *failures, ?delay, message = %error.message, "attempt failed; retrying");
            self.update(key.clone(), move |run| {
                if status::is_terminal(run) {
                    return false;
                }
                status::retrying(run, error, now);
                true
            })
            .await?;
            return Ok(Next::Retry(delay));
        }
        let (reason, message) = if permanent {
            (error.reason.clone(), error.message.clone())
        } else {
            (
                "BackoffLimitExceeded".to_owned(),
                format!("all attempts failed; the last one: {}", error.message),
            )
        };
        self.update(key.clone(), move |run| {
            if status::is_terminal(run) {
                return false;
            }
            if let Some(s) = run.status.as_mut() {
                s.trainer_error = Some(error);
            }
            status::fail(run, &reason, &message, now);
            true
        })
        .await?;
        Ok(Next::Done)
    }

    /// Record why a stopped attempt stopped (its process is gone).
    async fn stopped(self: &Arc<Self>, key: &Key, why: Stop) {
        let now = Timestamp::now();
        let result = match why {
            Stop::Delete => return,
            Stop::Cancel => {
                self.update(key.clone(), move |run| {
                    if status::is_terminal(run) {
                        return false;
                    }
                    status::cancel(run, now);
                    true
                })
                .await
            }
            Stop::Suspend => {
                self.update(key.clone(), move |run| {
                    if status::is_terminal(run) || !run.spec.suspend {
                        return false;
                    }
                    status::suspend(run, now);
                    true
                })
                .await
            }
            Stop::Shutdown => {
                self.update(key.clone(), move |run| {
                    if status::is_terminal(run) {
                        return false;
                    }
                    let attempts = run.status.as_ref().and_then(|s| s.attempts).unwrap_or(0);
                    status::fail(
                        run,
                        "Interrupted",
                        &format!("kubetrain local stopped while the run was training (attempt {attempts}); create the run again to retrain"),
                        now,
                    );
                    true
                })
                .await
            }
        };
        if let Err(error) = result {
            warn!(%error, "could not record a stopped run");
        }
    }

    async fn deadline_exceeded(self: &Arc<Self>, key: &Key) {
        let now = Timestamp::now();
        let result = self
            .update(key.clone(), move |run| {
                if status::is_terminal(run) {
                    return false;
                }
                let seconds = run.spec.active_deadline_seconds.unwrap_or_default();
                status::fail(
                    run,
                    "DeadlineExceeded",
                    &format!("the run was active longer than activeDeadlineSeconds ({seconds}s)"),
                    now,
                );
                true
            })
            .await;
        if let Err(error) = result {
            warn!(%error, "could not record an exceeded deadline");
        }
    }

    // ---- watch ----------------------------------------------------------------------------

    pub(crate) fn watch_stream(
        self: &Arc<Self>,
        key: Key,
        current: TrainingRun,
        events: broadcast::Receiver<Event>,
    ) -> BoxStream<'static, TrainingRun> {
        struct State {
            inner: Arc<Inner>,
            key: Key,
            events: broadcast::Receiver<Event>,
            first: Option<TrainingRun>,
            seen: u64,
            done: bool,
        }
        let seen = version(&current);
        let state = State {
            inner: Arc::clone(self),
            key,
            events,
            first: Some(current),
            seen,
            done: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            if let Some(first) = state.first.take() {
                return Some((first, state));
            }
            loop {
                if state.done {
                    return None;
                }
                match state.events.recv().await {
                    Ok(event) if event.key == state.key => {
                        if event.deleted {
                            return None;
                        }
                        let v = version(&event.run);
                        if v > state.seen {
                            state.seen = v;
                            return Some((event.run, state));
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Missed events: the stored run is the truth.
                        let (namespace, name) = state.key.clone();
                        match state.inner.db(move |s| s.get(&namespace, &name)).await {
                            Ok(Some(run)) if version(&run) > state.seen => {
                                state.seen = version(&run);
                                return Some((run, state));
                            }
                            Ok(Some(_)) => {}
                            Ok(None) | Err(_) => state.done = true,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }
}

fn version(run: &TrainingRun) -> u64 {
    run.metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn run_key(run: &TrainingRun) -> Key {
    (
        run.metadata.namespace.clone().unwrap_or_default(),
        run.metadata.name.clone().unwrap_or_default(),
    )
}

fn run_name(run: &TrainingRun) -> String {
    let (namespace, name) = run_key(run);
    format!("{namespace}/{name}")
}

/// May a trainer start for this run now?
fn runnable(run: &TrainingRun) -> bool {
    !status::is_terminal(run) && !run.spec.cancel && !run.spec.suspend
}

/// What to do after an attempt.
enum Next {
    Done,
    Retry(Duration),
}

/// How following a trainer ended.
enum Ended {
    Exited {
        status: ExitStatus,
        results: Option<Box<Results>>,
        stderr: String,
    },
    Stopped(Stop),
    Deadline,
}

/// The pool itself could not run an attempt (not a training failure).
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("cannot start the trainer {trainer}: {source}")]
    Spawn {
        trainer: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

async fn next_line(
    lines: &mut Option<tokio::io::Lines<BufReader<tokio::process::ChildStdout>>>,
) -> Option<String> {
    match lines {
        Some(lines) => lines.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

async fn stopped(stop: &mut watch::Receiver<Option<Stop>>) -> Stop {
    loop {
        if let Some(why) = *stop.borrow_and_update() {
            return why;
        }
        if stop.changed().await.is_err() {
            // The sender lives as long as the attempt; without it nothing can stop us.
            std::future::pending::<()>().await;
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Kill the trainer's whole process group and reap it.
async fn kill(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill().await;
}

/// One line of `kubetrain train --progress json`.
enum Line {
    Progress(kubetrain_api::Progress),
    Completed(Box<Results>),
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLine {
    event: String,
    #[serde(default)]
    iteration: u64,
    #[serde(default)]
    total: u64,
    #[serde(default)]
    loss: f64,
    #[serde(default)]
    elapsed_seconds: f64,
    #[serde(default)]
    summary: Option<serde_json::Value>,
}

/// Parse a progress or completion event into the status fields the trainer owns, with the
/// same functions the in-cluster trainer reports through.
fn parse_line(line: &str) -> Option<Line> {
    let raw: RawLine = serde_json::from_str(line).ok()?;
    let now = Timestamp::now();
    match raw.event.as_str() {
        "progress" => Some(Line::Progress(reporter::to_status_progress(
            &kubetrain_trainer::Progress {
                iteration: raw.iteration,
                total: raw.total,
                loss: raw.loss,
                elapsed: Duration::try_from_secs_f64(raw.elapsed_seconds).unwrap_or_default(),
            },
            now,
        ))),
        "completed" => {
            let summary: kubetrain_trainer::TrainSummary =
                serde_json::from_value(raw.summary?).ok()?;
            let progress = reporter::final_progress(&summary, now);
            let results = serde_json::from_value(reporter::results(&summary, progress)).ok()?;
            Some(Line::Completed(Box::new(results)))
        }
        _ => None,
    }
}

/// The trainer's own report of a failed attempt, from its exit code and stderr
/// (`error: <what is wrong>`).
fn trainer_error(code: Option<i32>, exited_zero: bool, stderr: &str) -> TrainerError {
    let code = code.unwrap_or(exit_code::INTERNAL);
    let reason = match code {
        exit_code::BAD_INPUT | exit_code::USAGE => "BadInput",
        exit_code::TRANSIENT => "Transient",
        _ => "Internal",
    };
    let said = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
        .map(str::trim)
        .map(str::to_owned);
    let message = match (said, exited_zero) {
        (_, true) => "the trainer exited without reporting its results".to_owned(),
        (Some(said), _) => said,
        (None, _) if code > 128 => format!("the trainer was killed by signal {}", code - 128),
        (None, _) => format!("the trainer exited with code {code}"),
    };
    TrainerError {
        reason: reason.to_owned(),
        message,
        exit_code: code,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn trainer_errors_are_classified_by_exit_code() {
        let bad = trainer_error(
            Some(65),
            false,
            "some log\nerror: /d.csv: row 2 (line 3), column 'f1': 'abc' is not a number\n",
        );
        assert_eq!(bad.reason, "BadInput");
        assert_eq!(bad.exit_code, 65);
        assert_eq!(
            bad.message,
            "/d.csv: row 2 (line 3), column 'f1': 'abc' is not a number"
        );
        assert_eq!(trainer_error(Some(75), false, "").reason, "Transient");
        assert_eq!(
            trainer_error(Some(137), false, "").message,
            "the trainer was killed by signal 9"
        );
    }

    #[test]
    fn progress_lines_become_status_progress() {
        let Some(Line::Progress(p)) = parse_line(
            r#"{"event":"progress","iteration":25,"total":200,"loss":0.31,"elapsedSeconds":5.0}"#,
        ) else {
            panic!("a progress line")
        };
        assert_eq!(p.percent, 12.5);
        assert_eq!(p.estimated_remaining_seconds, Some(35.0));
        assert!(parse_line("not json").is_none());
        assert!(parse_line(r#"{"event":"other"}"#).is_none());
    }
}
