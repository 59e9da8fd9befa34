//! Every timer of the pool in one task: TTLs (delete a finished run), start deadlines (fail a
//! run that has not started in time) and active deadlines (stop a run that trains too long).
//!
//! The deadlines sit in one ordered map; the task sleeps until the earliest, and a new earlier
//! one wakes it ([`Notify`]). Each timer re-reads its run when it fires and does nothing if the
//! run moved on (another uid, finished, started, resumed later), so a stale timer is harmless
//! and none needs cancelling.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kubetrain_api::{Phase, TrainingRun, lifecycle};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::pool::{Inner, Key, Stop, lock};
use crate::status;
use crate::table::run_key;

/// What a timer does when it fires.
#[derive(Debug, Clone, PartialEq)]
enum Timer {
    /// Delete the finished run with this uid.
    Ttl { key: Key, uid: Option<String> },
    /// Fail the run with this uid if it has not started since `clock` (its creation or last
    /// resume) plus `seconds`.
    StartDeadline {
        key: Key,
        uid: Option<String>,
        clock: Timestamp,
        seconds: i64,
    },
    /// Stop the run with this uid if it is still training.
    ActiveDeadline { key: Key, uid: Option<String> },
}

/// The pool's timers.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// Pending timers by (due, sequence number). A std mutex: inserted into and popped from,
    /// never held across an await.
    due: Mutex<BTreeMap<(Instant, u64), Timer>>,
    next_id: AtomicU64,
    /// Wakes the task when an earlier timer is armed, or to stop.
    changed: Arc<Notify>,
    stopped: AtomicBool,
}

/// From now until `at`, zero when `at` has passed.
fn instant_at(at: Timestamp) -> Instant {
    let now = Timestamp::now();
    let left = if at <= now {
        std::time::Duration::ZERO
    } else {
        std::time::Duration::try_from(at.duration_since(now)).unwrap_or_default()
    };
    Instant::now() + left
}

fn add_seconds(at: Timestamp, seconds: i64) -> Timestamp {
    at.checked_add(SignedDuration::from_secs(seconds))
        .unwrap_or(Timestamp::MAX)
}

impl Timers {
    /// Start the task that fires `inner`'s timers; it ends with [`Timers::stop`] or when
    /// `inner` is dropped.
    pub(crate) fn start(inner: &Arc<Inner>) {
        let weak = Arc::downgrade(inner);
        tokio::spawn(run(weak));
    }

    /// Fire nothing more.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.changed.notify_one();
    }

    fn arm(&self, at: Timestamp, timer: Timer) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let due = instant_at(at);
        let earliest = {
            let mut timers = lock(&self.due);
            timers.insert((due, id), timer);
            timers.first_key_value().map(|(k, _)| k.1) == Some(id)
        };
        if earliest {
            self.changed.notify_one();
        }
    }

    /// Delete the finished `run` at completionTime + ttlSecondsAfterFinished.
    pub(crate) fn ttl(&self, run: &TrainingRun) {
        let (Some(ttl), Some(done)) = (
            run.spec.ttl_seconds_after_finished,
            run.status.as_ref().and_then(|s| s.completion_time.clone()),
        ) else {
            return;
        };
        let timer = Timer::Ttl {
            key: run_key(run),
            uid: run.metadata.uid.clone(),
        };
        self.arm(add_seconds(done.0, i64::from(ttl)), timer);
    }

    /// Fail `run` if it has not started startDeadlineSeconds after its creation (or resume).
    pub(crate) fn start_deadline(&self, run: &TrainingRun) {
        let Some(seconds) = run.spec.start_deadline_seconds else {
            return;
        };
        let clock = status::start_clock(run);
        let timer = Timer::StartDeadline {
            key: run_key(run),
            uid: run.metadata.uid.clone(),
            clock,
            seconds,
        };
        self.arm(add_seconds(clock, seconds), timer);
    }

    /// Stop `run` once it has been active activeDeadlineSeconds since it first started.
    pub(crate) fn active_deadline(&self, run: &TrainingRun) {
        let (Some(seconds), Some(start)) = (
            run.spec.active_deadline_seconds,
            run.status.as_ref().and_then(|s| s.start_time.clone()),
        ) else {
            return;
        };
        let timer = Timer::ActiveDeadline {
            key: run_key(run),
            uid: run.metadata.uid.clone(),
        };
        self.arm(add_seconds(start.0, seconds), timer);
    }

    /// The timers due now, removed; else when the next one is due.
    fn take_due(&self) -> Result<Vec<Timer>, Option<Instant>> {
        let now = Instant::now();
        let mut timers = lock(&self.due);
        let mut due = Vec::new();
        while let Some(entry) = timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        if due.is_empty() {
            Err(timers.first_key_value().map(|(k, _)| k.0))
        } else {
            Ok(due)
        }
    }
}

async fn run(inner: Weak<Inner>) {
    loop {
        let Some(pool) = inner.upgrade() else { return };
        if pool.timers.stopped.load(Ordering::SeqCst) {
            return;
        }
        match pool.timers.take_due() {
            Ok(due) => {
                for timer in due {
                    fire(&pool, timer).await;
                }
            }
            Err(next) => {
                // Hold only the Notify while asleep, so a dropped pool ends this task.
                let changed = Arc::clone(&pool.timers.changed);
                drop(pool);
                match next {
                    Some(at) => {
                        tokio::select! {
                            () = tokio::time::sleep_until(at) => {}
                            () = changed.notified() => {}
                        }
                    }
                    None => changed.notified().await,
                }
            }
        }
    }
}

async fn fire(inner: &Arc<Inner>, timer: Timer) {
    match timer {
        Timer::Ttl { key, uid } => match inner.delete(key.clone(), uid).await {
            Ok(Some(_)) => {
                info!(run = %format!("{}/{}", key.0, key.1), "deleted: ttlSecondsAfterFinished passed");
            }
            Ok(None) => {}
            Err(error) => warn!(%error, "could not delete a run whose TTL passed"),
        },
        Timer::StartDeadline {
            key,
            uid,
            clock,
            seconds,
        } => {
            let result = inner
                .transition(key, move |run| {
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
                        lifecycle::START_DEADLINE_EXCEEDED,
                        &lifecycle::start_deadline_exceeded(seconds, &last),
                        Timestamp::now(),
                    );
                    true
                })
                .await;
            if let Err(error) = result {
                warn!(%error, "could not apply a start deadline");
            }
        }
        Timer::ActiveDeadline { key, uid } => match inner.get(&key).await {
            Ok(Some(run)) if run.metadata.uid == uid && !status::is_terminal(&run) => {
                inner.stop(&key, Stop::Deadline);
            }
            Ok(_) => {}
            Err(error) => warn!(%error, "could not apply an active deadline"),
        },
    }
}
