//! Exit codes of `kubetrain train`: the contract between the trainer and whatever runs it.
//!
//! The controller turns [`BAD_INPUT`] into an immediate failure of the run (a Job
//! `podFailurePolicy` rule), because retrying cannot fix bad data, while [`TRANSIENT`]
//! failures are retried up to `backoffLimit`. The values follow BSD `sysexits.h`.

/// Training finished and the model and summary were written.
pub const SUCCESS: i32 = 0;
/// Any failure that is neither bad input nor known to be transient (a bug, a panic).
pub const INTERNAL: i32 = 1;
/// Command-line usage error (unknown flag, missing argument): clap's own code.
pub const USAGE: i32 = 2;
/// The input is wrong and retrying cannot help: missing file or bucket, unreadable CSV,
/// missing label column, non-numeric or non-finite value, a single class, empty data.
/// (`EX_DATAERR`.)
pub const BAD_INPUT: i32 = 65;
/// A failure that may pass on retry: storage unreachable, timeouts, throttling.
/// (`EX_TEMPFAIL`.)
pub const TRANSIENT: i32 = 75;

/// What kind of failure an exit code (or an error) is, which decides whether retrying can
/// help. Its [`ErrorClass::reason`] is `status.trainerError.reason` and, for a run that failed
/// on bad input, the reason of its `Failed` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The input (data, flags, model file, credentials) is wrong; retrying cannot help.
    BadInput,
    /// A failure that may pass on retry: storage unreachable, timeouts, throttling.
    Transient,
    /// A bug or an unexpected state of the trainer itself.
    Internal,
}

impl ErrorClass {
    /// The process exit code for this class.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorClass::BadInput => BAD_INPUT,
            ErrorClass::Transient => TRANSIENT,
            ErrorClass::Internal => INTERNAL,
        }
    }

    /// The class of a trainer's exit code: [`BAD_INPUT`] and [`USAGE`] are bad input,
    /// [`TRANSIENT`] transient, anything else (signals included) internal.
    pub fn of_exit_code(code: i32) -> ErrorClass {
        match code {
            BAD_INPUT | USAGE => ErrorClass::BadInput,
            TRANSIENT => ErrorClass::Transient,
            _ => ErrorClass::Internal,
        }
    }

    /// The CamelCase reason naming this class: `BadInput`, `Transient` or `Internal`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorClass::BadInput => "BadInput",
            ErrorClass::Transient => "Transient",
            ErrorClass::Internal => "Internal",
        }
    }

    /// Whether another attempt could end differently.
    pub fn is_retryable(self) -> bool {
        self != ErrorClass::BadInput
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_round_trips_through_its_exit_code() {
        for class in [
            ErrorClass::BadInput,
            ErrorClass::Transient,
            ErrorClass::Internal,
        ] {
            assert_eq!(ErrorClass::of_exit_code(class.exit_code()), class);
            assert_eq!(format!("{class:?}"), class.reason());
        }
        assert_eq!(ErrorClass::of_exit_code(USAGE), ErrorClass::BadInput);
        assert_eq!(ErrorClass::of_exit_code(137), ErrorClass::Internal);
        assert!(!ErrorClass::BadInput.is_retryable());
    }
}
