//! metav1.Condition bookkeeping: merged, never overwritten.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// A condition to record: type, status (`True`/`False`/`Unknown`), reason and message.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation<'a> {
    /// Condition type, e.g. `Running`.
    pub type_: &'a str,
    /// `true` -> `True`, `false` -> `False`.
    pub status: bool,
    /// CamelCase machine-readable reason.
    pub reason: &'a str,
    /// Human-readable message.
    pub message: String,
}

/// Set a condition: `lastTransitionTime` moves only when the status flips, so it always says
/// since when the condition has held.
pub fn set(
    conditions: &mut Vec<Condition>,
    observed: Observation<'_>,
    generation: i64,
    now: Timestamp,
) {
    let status = if observed.status { "True" } else { "False" };
    match conditions.iter_mut().find(|c| c.type_ == observed.type_) {
        Some(existing) => {
            if existing.status != status {
                existing.last_transition_time = Time(now);
            }
            existing.status = status.to_owned();
            existing.reason = observed.reason.to_owned();
            existing.message = observed.message;
            existing.observed_generation = Some(generation);
        }
        None => conditions.push(Condition {
            type_: observed.type_.to_owned(),
            status: status.to_owned(),
            reason: observed.reason.to_owned(),
            message: observed.message,
            last_transition_time: Time(now),
            observed_generation: Some(generation),
        }),
    }
}

/// Whether `type_` is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == "True")
}

/// The condition of `type_`, if recorded.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn observe(status: bool, reason: &'static str) -> Observation<'static> {
        Observation {
            type_: "Running",
            status,
            reason,
            message: reason.to_owned(),
        }
    }

    #[test]
    fn transition_time_moves_only_on_flips() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let t2: Timestamp = "2026-01-01T00:02:00Z".parse().unwrap();
        let mut conditions = Vec::new();
        set(&mut conditions, observe(true, "Training"), 1, t0);
        set(&mut conditions, observe(true, "StillTraining"), 2, t1);
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, Time(t0));
        assert_eq!(conditions[0].reason, "StillTraining");
        assert_eq!(conditions[0].observed_generation, Some(2));
        set(&mut conditions, observe(false, "Finished"), 2, t2);
        assert_eq!(conditions[0].last_transition_time, Time(t2));
        assert!(!is_true(&conditions, "Running"));
    }
}
