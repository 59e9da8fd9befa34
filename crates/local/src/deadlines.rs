//! The pool's deadlines: arming a run's TTL, start deadline and active deadline on
//! [`Timers`], and the one task that fires them all.

use std::sync::{Arc, Weak};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kubetrain_api::{Phase, TrainingRun, lifecycle};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::pool::{Inner, Stop, run_key};
use crate::status;
use crate::timers::Timer;

/// The monotonic instant of wall-clock time `at`: now when `at` has passed.
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

impl Inner {
    /// Start the task that fires the pool's timers; it ends with [`crate::timers::Timers::stop`]
    /// or when the pool is dropped.
    pub(crate) fn start_timers(self: &Arc<Self>) {
        tokio::spawn(fire_timers(Arc::downgrade(self)));
    }

    /// Delete the finished `run` at completionTime + ttlSecondsAfterFinished.
    pub(crate) fn arm_ttl(&self, run: &TrainingRun) {
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
        self.timers
            .arm(instant_at(add_seconds(done.0, i64::from(ttl))), timer);
    }

    /// Fail `run` if it has not started startDeadlineSeconds after its creation (or resume).
    pub(crate) fn arm_start_deadline(&self, run: &TrainingRun) {
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
        self.timers
            .arm(instant_at(add_seconds(clock, seconds)), timer);
    }

    /// Stop `run` once it has been active activeDeadlineSeconds since it first started.
    pub(crate) fn arm_active_deadline(&self, run: &TrainingRun) {
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
        self.timers
            .arm(instant_at(add_seconds(start.0, seconds)), timer);
    }
}

async fn fire_timers(inner: Weak<Inner>) {
    loop {
        let Some(pool) = inner.upgrade() else { return };
        if pool.timers.is_stopped() {
            return;
        }
        match pool.timers.take_due(Instant::now()) {
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
