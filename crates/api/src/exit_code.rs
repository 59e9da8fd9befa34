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
