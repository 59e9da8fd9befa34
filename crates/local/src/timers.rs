//! The pool's timers as data: one ordered map of deadlines, each with what to do when it
//! falls due ([`Timer`]). One task fires them all (see `deadlines`): it sleeps until the
//! earliest, and arming an earlier one wakes it ([`Notify`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::jiff::Timestamp;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a timer does when it fires. Each re-reads its run then and does nothing if the run
/// moved on (another uid, finished, started, resumed later), so a stale timer is harmless
/// and none needs cancelling.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Timer {
    /// Delete the finished run `(namespace, name)` with this uid.
    Ttl {
        key: (String, String),
        uid: Option<String>,
    },
    /// Fail the run with this uid if it has not started since `clock` (its creation or last
    /// resume) plus `seconds`.
    StartDeadline {
        key: (String, String),
        uid: Option<String>,
        clock: Timestamp,
        seconds: i64,
    },
    /// Stop the run with this uid if it is still training.
    ActiveDeadline {
        key: (String, String),
        uid: Option<String>,
    },
}

/// Pending timers.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// By (due, sequence number). A std mutex: inserted into and popped from, never held
    /// across an await.
    due: Mutex<BTreeMap<(Instant, u64), Timer>>,
    next_id: AtomicU64,
    /// Wakes the firing task when an earlier timer is armed, or to stop.
    pub(crate) changed: Arc<Notify>,
    stopped: AtomicBool,
}

impl Timers {
    fn due(&self) -> MutexGuard<'_, BTreeMap<(Instant, u64), Timer>> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fire `timer` at `at`.
    pub(crate) fn arm(&self, at: Instant, timer: Timer) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let earliest = {
            let mut timers = self.due();
            timers.insert((at, id), timer);
            timers.first_key_value().map(|(k, _)| k.1) == Some(id)
        };
        if earliest {
            self.changed.notify_one();
        }
    }

    /// The timers due at `now`, removed and in order; else when the next one is due
    /// (`None`: no timer is armed).
    pub(crate) fn take_due(&self, now: Instant) -> Result<Vec<Timer>, Option<Instant>> {
        let mut timers = self.due();
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

    /// Fire nothing more.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.changed.notify_one();
    }

    /// Whether [`Timers::stop`] was called.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;
    use std::time::Duration;

    fn ttl(name: &str) -> Timer {
        Timer::Ttl {
            key: ("ml".into(), name.into()),
            uid: None,
        }
    }

    #[test]
    fn timers_fall_due_in_order_of_their_time_then_of_arming() {
        let timers = Timers::default();
        let t0 = Instant::now();
        assert_eq!(timers.take_due(t0), Err(None));
        timers.arm(t0 + Duration::from_secs(20), ttl("late"));
        timers.arm(t0 + Duration::from_secs(10), ttl("first"));
        timers.arm(t0 + Duration::from_secs(10), ttl("second"));
        assert_eq!(timers.take_due(t0), Err(Some(t0 + Duration::from_secs(10))));
        assert_eq!(
            timers.take_due(t0 + Duration::from_secs(15)),
            Ok(vec![ttl("first"), ttl("second")])
        );
        assert_eq!(
            timers.take_due(t0 + Duration::from_secs(15)),
            Err(Some(t0 + Duration::from_secs(20)))
        );
        assert_eq!(
            timers.take_due(t0 + Duration::from_secs(20)),
            Ok(vec![ttl("late")])
        );
        assert_eq!(timers.take_due(t0 + Duration::from_secs(60)), Err(None));
    }

    #[tokio::test]
    async fn arming_an_earlier_timer_wakes_the_task_and_a_later_one_does_not() {
        let timers = Timers::default();
        let t0 = Instant::now();
        timers.arm(t0 + Duration::from_secs(10), ttl("a"));
        // The first timer is the earliest: it leaves a wake-up.
        tokio::time::timeout(Duration::from_secs(5), timers.changed.notified())
            .await
            .expect("woken for the earliest timer");
        timers.arm(t0 + Duration::from_secs(20), ttl("b"));
        let woken =
            tokio::time::timeout(Duration::from_millis(50), timers.changed.notified()).await;
        assert!(woken.is_err(), "a later timer must not wake the task");
        timers.arm(t0 + Duration::from_secs(5), ttl("c"));
        tokio::time::timeout(Duration::from_secs(5), timers.changed.notified())
            .await
            .expect("woken for an earlier timer");
    }
}
