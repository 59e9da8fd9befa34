//! What follows a trainer's exit (pure): the run succeeded, is tried again after a backoff, or
//! failed. The same policy as the Job's: bad input fails at once (`podFailurePolicy`), other
//! failures are retried up to `spec.backoffLimit` times with an exponential backoff.

use std::time::Duration;

use kubetrain_api::{TrainerError, TrainerResults, lifecycle};

/// Longest wait between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a trainer process ended, as the pool saw it.
#[derive(Debug)]
pub struct Exit<'a> {
    /// Its exit code, or 128 + the signal that killed it.
    pub code: Option<i32>,
    /// Whether it exited 0.
    pub success: bool,
    /// What it reported on completion, if it did.
    pub results: Option<Box<TrainerResults>>,
    /// The tail of its stderr.
    pub stderr: &'a str,
}

/// What to do with the run after an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The model is stored: the run succeeded.
    Succeeded(Box<TrainerResults>),
    /// Try again after `delay`; `error` is why this attempt failed.
    Retry {
        /// The backoff before the next attempt.
        delay: Duration,
        /// The failed attempt's report.
        error: TrainerError,
    },
    /// The run failed with `reason` and `message`; `error` is the last attempt's report.
    Fail {
        /// The `Failed` condition's reason.
        reason: String,
        /// Its message.
        message: String,
        /// The last attempt's report.
        error: TrainerError,
    },
}

/// The outcome of attempt number `failures_before + 1` that ended as `exit`, for a run with
/// `backoff_limit` and a first backoff of `base` (doubled per failure, at most
/// [`MAX_BACKOFF`]).
pub fn after_exit(
    exit: Exit<'_>,
    failures_before: i32,
    backoff_limit: i32,
    base: Duration,
) -> Outcome {
    if exit.success
        && let Some(results) = exit.results
    {
        return Outcome::Succeeded(results);
    }
    let error = TrainerError::from_exit(exit.code, exit.success, exit.stderr);
    let failures = failures_before + 1;
    if !error.class().is_retryable() {
        return Outcome::Fail {
            reason: error.reason.clone(),
            message: error.message.clone(),
            error,
        };
    }
    if failures <= backoff_limit {
        let delay = base
            .saturating_mul(1 << (failures - 1).clamp(0, 16))
            .min(MAX_BACKOFF);
        return Outcome::Retry { delay, error };
    }
    Outcome::Fail {
        reason: lifecycle::BACKOFF_LIMIT_EXCEEDED.to_owned(),
        message: lifecycle::all_attempts_failed(&error.message),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubetrain_api::exit_code;

    fn exit(code: i32, stderr: &str) -> Exit<'_> {
        Exit {
            code: Some(code),
            success: code == 0,
            results: None,
            stderr,
        }
    }

    const BASE: Duration = Duration::from_secs(1);

    #[test]
    fn bad_input_fails_at_once_whatever_the_backoff_limit() {
        for code in [exit_code::BAD_INPUT, exit_code::USAGE] {
            let outcome = after_exit(exit(code, "error: row 2: 'x' is not a number"), 0, 6, BASE);
            let Outcome::Fail {
                reason, message, ..
            } = outcome
            else {
                panic!("{outcome:?}")
            };
            assert_eq!(reason, "BadInput");
            assert_eq!(message, "row 2: 'x' is not a number");
        }
    }

    #[test]
    fn transient_and_internal_failures_back_off_exponentially_up_to_the_limit() {
        for code in [exit_code::TRANSIENT, exit_code::INTERNAL, 137] {
            let delays: Vec<Duration> = (0..3)
                .map(|before| match after_exit(exit(code, ""), before, 3, BASE) {
                    Outcome::Retry { delay, .. } => delay,
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(delays, [BASE, BASE * 2, BASE * 4], "code {code}");
            let Outcome::Fail {
                reason, message, ..
            } = after_exit(exit(code, "error: storage unreachable"), 3, 3, BASE)
            else {
                panic!("the fourth failure with backoffLimit 3 fails the run")
            };
            assert_eq!(reason, "BackoffLimitExceeded");
            assert_eq!(
                message,
                "all attempts failed; the last one: storage unreachable"
            );
        }
        let long = after_exit(exit(exit_code::TRANSIENT, ""), 30, 100, BASE);
        assert_eq!(
            long,
            Outcome::Retry {
                delay: MAX_BACKOFF,
                error: TrainerError::from_exit(Some(exit_code::TRANSIENT), false, "")
            }
        );
    }

    #[test]
    fn exiting_zero_without_results_is_a_failure() {
        let outcome = after_exit(exit(0, ""), 0, 0, BASE);
        let Outcome::Fail { error, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            error.message,
            "the trainer exited without reporting its results"
        );
    }
}
